/*
 * report.c — `baton report [RUN] (--junit FILE | --html FILE | --markdown
 * FILE)...`: the reports of a recorded run, built from its event stream in
 * the run store as `run --junit` builds them live.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "report/report.h"
#include "store/store.h"
#include "util/util.h"

static const char report_help[] =
	"usage: baton report [RUN] (--junit FILE | --html FILE | --markdown FILE)...\n"
	"\n"
	"Writes reports of a recorded run (RUN: its id or a unique prefix of one; the\n"
	"newest run when left out), from its events in the run store, as 'baton run\n"
	"--junit/--report/--markdown' writes them at the end of the run. Several may be\n"
	"given at once; FILE '-' is standard output. A run still going gets a report of\n"
	"what it did so far.\n"
	"\n"
	"  --junit FILE        JUnit XML (Jenkins, GitLab): one testcase per task\n"
	"  --html FILE         the HTML timeline: one self-contained file\n"
	"  --markdown FILE     a Markdown summary: status, counts, failures, slowest tasks\n"
	"  --state-dir DIR     the run store (see 'baton runs --help')\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 written, 1 the store or a report could not be read or written,\n"
	"2 usage error, no run recorded, RUN unknown or ambiguous.\n";

struct out {
	enum report_format fmt;
	const char *path;
};

const struct option report_opts[] = {{"junit", required_argument, 0, 'j'},
				     {"html", required_argument, 0, 'H'},
				     {"markdown", required_argument, 0, 'm'},
				     {"state-dir", required_argument, 0, 'S'},
				     {"help", no_argument, 0, 'h'},
				     {0, 0, 0, 0}};
const char report_shorts[] = "h";

int cmd_report(int argc, char **argv)
{
	const struct option *opts = report_opts;
	struct out outs[16];
	size_t n = 0;
	const char *state_dir = NULL;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, report_shorts, opts, NULL)) != -1) {
		switch (c) {
		case 'j':
		case 'H':
		case 'm':
			if (n == ARRAY_LEN(outs))
				return cmd_usage_error("report", "at most %zu reports at once", ARRAY_LEN(outs));
			outs[n++] = (struct out){c == 'j' ? REPORT_JUNIT : c == 'H' ? REPORT_HTML : REPORT_MARKDOWN,
						 optarg};
			break;
		case 'S':
			state_dir = optarg;
			break;
		case 'h':
			fputs(report_help, stdout);
			return 0;
		default:
			return cmd_bad_option("report", argc, argv, opts, report_shorts);
		}
	}
	const char *ref = optind < argc ? argv[optind++] : NULL;
	if (optind < argc)
		return cmd_usage_error("report", "one run at a time (got %s and %s)", ref, argv[optind]);
	if (!n)
		return cmd_usage_error("report", "say which report to write: --junit FILE, --html FILE or --markdown FILE");
	size_t to_stdout = 0;
	for (size_t i = 0; i < n; i++)
		to_stdout += !strcmp(outs[i].path, "-");
	if (to_stdout > 1)
		return cmd_usage_error("report", "only one report may go to standard output ('-')");

	char *err = NULL;
	char *dir = store_dir(state_dir, &err);
	if (!dir) {
		fprintf(stderr, "baton report: %s\n", err);
		free(err);
		return 2;
	}
	char *db = xasprintf("%s/runs.db", dir);
	bool exists = access(db, F_OK) == 0;
	free(db);
	if (!exists) {
		fprintf(stderr, "baton report: no runs recorded in %s\n", dir);
		free(dir);
		return 2;
	}
	struct store *st = store_open(dir, false, &err);
	free(dir);
	if (!st) {
		fprintf(stderr, "baton report: %s\n", err);
		free(err);
		return 1;
	}
	struct store_run run;
	if (!store_find(st, ref, NULL, &run, &err)) {
		fprintf(stderr, "baton report: %s\n", err);
		free(err);
		store_close(st);
		return 2;
	}
	char *events = store_events_path(st, run.id);
	store_run_free(&run);
	store_close(st);

	/* every file can be created before anything is read */
	struct report_file *files[ARRAY_LEN(outs)];
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		files[i] = report_file_open(outs[i].fmt, outs[i].path, &err);
		if (!files[i]) {
			fprintf(stderr, "baton report: %s\n", err);
			free(err);
			for (size_t k = 0; k < i; k++)
				report_file_discard(files[k]);
			free(events);
			return 1;
		}
	}
	struct report *r = report_new();
	if (!report_replay(r, events, &err)) {
		fprintf(stderr, "baton report: %s\n", err);
		free(err);
		for (size_t i = 0; i < n; i++)
			report_file_discard(files[i]);
		rc = 1;
	} else {
		for (size_t i = 0; i < n; i++) {
			bool std = !strcmp(outs[i].path, "-");
			if (!report_file_commit(files[i], r, &err)) {
				fprintf(stderr, "baton report: %s\n", std ? "standard output" : err);
				free(err);
				err = NULL;
				rc = 1;
			}
		}
	}
	report_free(r);
	free(events);
	if (fflush(stdout) != 0 && rc == 0 && errno != EPIPE) {
		fprintf(stderr, "baton report: cannot write standard output: %s\n", strerror(errno));
		rc = 1;
	}
	return rc;
}
