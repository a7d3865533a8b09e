/*
 * runs.c — the verbs that read the run store (design/runs.md): `baton runs`
 * lists runs (and prunes them), `baton status` shows one, `baton logs`
 * prints its output. Argument parsing only: the store's show.c and logs.c
 * say what is printed.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "store/store.h"
#include "util/util.h"

static const char runs_help[] =
	"usage: baton runs [-n N | --all] [--plan FILE] [--json] [--state-dir DIR]\n"
	"       baton runs --prune [--keep N] [--state-dir DIR]\n"
	"\n"
	"Lists the recorded runs, newest first: id, plan, state (running, success,\n"
	"failed, cancelled, timeout, or crashed: recorded running, its controller gone),\n"
	"start (local time), duration and counts.\n"
	"\n"
	"  -n N                the newest N runs (default 20)\n"
	"  --all               every run\n"
	"  --plan FILE         only the runs of plan FILE\n"
	"  --json              a JSON array of runs\n"
	"  --prune             delete the finished runs beyond the newest N (never a live one)\n"
	"  --keep N            with --prune: how many to keep (default $BATON_KEEP_RUNS, else 200)\n"
	"  --state-dir DIR     the run store (default $BATON_STATE_DIR, else\n"
	"                      $XDG_STATE_HOME/baton, else ~/.local/state/baton)\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 (also when no run is recorded yet), 1 the store cannot be read\n"
	"or pruned, 2 usage error.\n";

static const char status_help[] =
	"usage: baton status [RUN] [--json | --watch] [--state-dir DIR]\n"
	"\n"
	"Shows a run: its state, the tree of its steps and tasks with their status and\n"
	"duration, its failures and counts and, while it runs, its running tasks, the\n"
	"ETA and the slowest tasks. Works from any terminal, during the run and after.\n"
	"RUN is a run id or a unique prefix of one; the newest run when left out.\n"
	"\n"
	"  --json              the run and every task row (each attempt) as JSON\n"
	"  --watch             redraw every 500 ms until the run ends (not on a terminal:\n"
	"                      print the status once, when it has ended)\n"
	"  --state-dir DIR     the run store (see 'baton runs --help')\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 shown, 1 the store cannot be read, 2 usage error, no run\n"
	"recorded, or RUN unknown or ambiguous.\n";

static const char logs_help[] =
	"usage: baton logs [RUN] [TASK...] [-f | --follow] [--events] [--state-dir DIR]\n"
	"\n"
	"Prints a run's output lines as '--output plain' does ('[TASK] line', and\n"
	"'[deploy#2 (web3)] line' with a for_each instance's label), from its\n"
	"recorded event stream. RUN is a run id or a unique prefix of one; the newest\n"
	"run when left out (or when the first argument names no run but a task of the\n"
	"newest). A TASK is a task id, or a step id: that step's tasks and those under\n"
	"it (deploy: deploy.push#0, deploy@web1, ...).\n"
	"\n"
	"  -f, --follow        follow a running run: print its lines as they come,\n"
	"                      until it ends\n"
	"  --events            the raw event lines (JSON, man baton-events(7)) instead\n"
	"  --state-dir DIR     the run store (see 'baton runs --help')\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 printed (a running run without -f: what there is so far),\n"
	"1 the events cannot be read, or the followed run crashed (its controller died\n"
	"before the run ended), 2 usage error, no run recorded, RUN unknown or\n"
	"ambiguous, or a TASK that names nothing in a run that has ended.\n";

static bool want_color(void)
{
	const char *v = getenv("NO_COLOR");
	return isatty(STDOUT_FILENO) && !cmd_dumb_terminal() && !(v && *v);
}

/* A count option's value: a whole number from min; false when it is not one. */
static bool parse_count(const char *s, size_t min, size_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(s, &end, 10);
	if (!*s || *end || errno || n < (long long)min || n > INT_MAX)
		return false;
	*out = (size_t)n;
	return true;
}

/*
 * Opens the store in --state-dir (or the default) for verb. NULL when it
 * cannot, said on stderr, with the exit status in *rc: none_ok (runs) makes
 * a store that does not exist yet no error (0), else 2; a store that cannot
 * be read 1.
 */
static struct store *open_store(const char *verb, const char *cli, bool writer, bool none_ok, int *rc)
{
	char *err = NULL;
	char *dir = store_dir(cli, &err);
	if (!dir) {
		fprintf(stderr, "baton %s: %s\n", verb, err);
		free(err);
		*rc = 2;
		return NULL;
	}
	char *db = xasprintf("%s/runs.db", dir);
	bool exists = access(db, F_OK) == 0;
	free(db);
	struct store *st = NULL;
	if (!exists) {
		fprintf(stderr, "baton %s: no runs recorded in %s\n", verb, dir);
		*rc = none_ok ? 0 : 2;
	} else if (!(st = store_open(dir, writer, &err))) {
		fprintf(stderr, "baton %s: %s\n", verb, err);
		*rc = 1;
	}
	free(err);
	free(dir);
	return st;
}

/* Writes out stdout; false, said on stderr, when that failed (not for a reader that went away). */
static bool out_ok(const char *verb)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return true;
	if (errno != EPIPE)
		fprintf(stderr, "baton %s: cannot write standard output: %s\n", verb, strerror(errno ? errno : EIO));
	return false;
}

/* --plan FILE as the store records it: the absolute path (the file may be gone). */
static char *plan_abs(const char *path)
{
	char *abs = realpath(path, NULL);
	if (abs || path[0] == '/')
		return abs ? abs : xstrdup(path);
	char *cwd = getcwd(NULL, 0);
	char *p = xasprintf("%s/%s", cwd ? cwd : ".", path);
	free(cwd);
	return p;
}

/* the options of 'baton runs' as getopt_long reads them (completion offers them too) */
const char runs_shorts[] = "n:h";
const struct option runs_opts[] = {{"all", no_argument, 0, 'a'},      {"plan", required_argument, 0, 'p'},
					     {"json", no_argument, 0, 'J'},     {"prune", no_argument, 0, 'P'},
					     {"keep", required_argument, 0, 'k'}, {"state-dir", required_argument, 0, 'S'},
					     {"help", no_argument, 0, 'h'},     {0, 0, 0, 0}};

int cmd_runs(int argc, char **argv)
{
	size_t n = 20, keep = 0;
	bool all = false, json = false, prune = false, have_n = false, have_keep = false;
	const char *plan = NULL, *state_dir = NULL;
	int c;
	optind = 0;
	opterr = 0; /* cmd_bad_option says why, with "did you mean" */
	while ((c = getopt_long(argc, argv, runs_shorts, runs_opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (!parse_count(optarg, 1, &n))
				return cmd_usage_error("runs", "-n takes a number from 1, not '%s'", optarg);
			have_n = true;
			break;
		case 'a':
			all = true;
			break;
		case 'p':
			plan = optarg;
			break;
		case 'J':
			json = true;
			break;
		case 'P':
			prune = true;
			break;
		case 'k':
			if (!parse_count(optarg, 0, &keep))
				return cmd_usage_error("runs", "--keep takes a number from 0, not '%s'", optarg);
			have_keep = true;
			break;
		case 'S':
			state_dir = optarg;
			break;
		case 'h':
			fputs(runs_help, stdout);
			return 0;
		default:
			return cmd_bad_option("runs", argc, argv, runs_opts, runs_shorts);
		}
	}
	if (optind < argc)
		return cmd_usage_error("runs", "unexpected argument '%s' ('baton status RUN' shows one run)", argv[optind]);
	if (all && have_n)
		return cmd_usage_error("runs", "-n and --all do not go together");
	if (have_keep && !prune)
		return cmd_usage_error("runs", "--keep goes with --prune");
	if (prune && (all || have_n || plan || json))
		return cmd_usage_error("runs", "--prune takes only --keep and --state-dir");
	int rc = 0;
	struct store *st = open_store("runs", state_dir, prune, true, &rc);
	if (!st)
		return rc;
	if (prune) {
		char *err = NULL;
		size_t removed = 0;
		if (!have_keep)
			keep = store_keep_runs();
		if (store_prune(st, keep, &removed, &err)) {
			printf("pruned %zu run%s (kept the newest %zu, and any still running)\n", removed,
			       removed == 1 ? "" : "s", keep);
		} else {
			fprintf(stderr, "baton runs: cannot prune: %s\n", err);
			rc = 1;
		}
		free(err);
		store_close(st);
		return rc || out_ok("runs") ? rc : 1;
	}
	char *abs = plan ? plan_abs(plan) : NULL;
	size_t count;
	struct store_run *v = store_list(st, all ? 0 : n, abs, &count);
	if (json)
		store_show_runs_json(stdout, v, count);
	else
		store_show_runs(stdout, v, count, want_color());
	for (size_t i = 0; i < count; i++)
		store_run_free(&v[i]);
	free(v);
	free(abs);
	store_close(st);
	return out_ok("runs") ? 0 : 1;
}

/* the options of 'baton status' as getopt_long reads them (completion offers them too) */
const char status_shorts[] = "h";
const struct option status_opts[] = {{"json", no_argument, 0, 'J'},
					     {"watch", no_argument, 0, 'w'},
					     {"state-dir", required_argument, 0, 'S'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};

int cmd_status(int argc, char **argv)
{
	bool json = false, watch = false;
	const char *state_dir = NULL;
	int c;
	optind = 0;
	opterr = 0; /* cmd_bad_option says why, with "did you mean" */
	while ((c = getopt_long(argc, argv, status_shorts, status_opts, NULL)) != -1) {
		switch (c) {
		case 'J':
			json = true;
			break;
		case 'w':
			watch = true;
			break;
		case 'S':
			state_dir = optarg;
			break;
		case 'h':
			fputs(status_help, stdout);
			return 0;
		default:
			return cmd_bad_option("status", argc, argv, status_opts, status_shorts);
		}
	}
	const char *ref = optind < argc ? argv[optind++] : NULL;
	if (optind < argc)
		return cmd_usage_error("status", "one run at a time (got %s and %s)", ref, argv[optind]);
	if (json && watch)
		return cmd_usage_error("status", "--json and --watch do not go together");
	int rc = 0;
	struct store *st = open_store("status", state_dir, false, false, &rc);
	if (!st)
		return rc;
	struct store_run r;
	char *err = NULL;
	if (!store_find(st, ref, NULL, &r, &err)) {
		fprintf(stderr, "baton status: %s\n", err);
		free(err);
		store_close(st);
		return 2;
	}
	if (watch) {
		rc = store_watch(stdout, st, r.id, isatty(STDOUT_FILENO) && !cmd_dumb_terminal(), want_color(), &err);
		if (err)
			fprintf(stderr, "baton status: %s\n", err);
		free(err);
	} else if (json) {
		store_show_status_json(stdout, st, &r);
	} else {
		store_show_status(stdout, st, &r, want_color());
	}
	store_run_free(&r);
	store_close(st);
	return out_ok("status") ? rc : 1;
}

/* True when filter names some row of run_id (a task or a step). */
static bool names_something(struct store *st, const char *run_id, const char *filter)
{
	size_t n;
	struct store_task *v = store_tasks(st, run_id, false, &n);
	bool found = false;
	for (size_t i = 0; i < n; i++) {
		found |= v[i].id && store_id_matches(filter, v[i].id);
		store_task_free(&v[i]);
	}
	free(v);
	return found;
}

/* the options of 'baton logs' as getopt_long reads them (completion offers them too) */
const char logs_shorts[] = "fh";
const struct option logs_opts[] = {{"follow", no_argument, 0, 'f'},
					     {"events", no_argument, 0, 'e'},
					     {"state-dir", required_argument, 0, 'S'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};

int cmd_logs(int argc, char **argv)
{
	struct store_logs_options o = {0};
	const char *state_dir = NULL;
	int c;
	optind = 0;
	opterr = 0; /* cmd_bad_option says why, with "did you mean" */
	while ((c = getopt_long(argc, argv, logs_shorts, logs_opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o.follow = true;
			break;
		case 'e':
			o.events = true;
			break;
		case 'S':
			state_dir = optarg;
			break;
		case 'h':
			fputs(logs_help, stdout);
			return 0;
		default:
			return cmd_bad_option("logs", argc, argv, logs_opts, logs_shorts);
		}
	}
	int rc = 0;
	struct store *st = open_store("logs", state_dir, false, false, &rc);
	if (!st)
		return rc;
	struct store_run r;
	char *err = NULL;
	const char *ref = optind < argc ? argv[optind] : NULL;
	if (store_find(st, ref, NULL, &r, &err)) {
		optind += ref != NULL;
	} else {
		/* `baton logs build`: no run, but a task of the newest one */
		char *err2 = NULL;
		bool task = ref && store_find(st, NULL, NULL, &r, &err2) && names_something(st, r.id, ref);
		free(err2);
		if (!task) {
			store_run_free(&r);
			fprintf(stderr, "baton logs: %s\n", err);
			free(err);
			store_close(st);
			return 2;
		}
		free(err);
		err = NULL;
	}
	o.tasks = (const char *const *)argv + optind;
	o.n_tasks = (size_t)(argc - optind);
	/* a run that has ended has all its rows: a TASK that names none of them is a mistake worth saying */
	for (size_t i = 0; r.state != RS_RUNNING && i < o.n_tasks; i++)
		if (!names_something(st, r.id, o.tasks[i])) {
			fprintf(stderr, "baton logs: no task or step '%s' in run %s ('baton status %s' lists them)\n",
				o.tasks[i], r.id, r.id);
			store_run_free(&r);
			store_close(st);
			return 2;
		}
	rc = store_logs(stdout, st, &r, &o, &err);
	if (err)
		fprintf(stderr, "baton logs: %s\n", err);
	else if (r.state == RS_CRASHED && !o.follow)
		fprintf(stderr, "baton logs: run %s crashed: its controller (pid %ld) is gone and the run did not end\n",
			r.id, r.pid);
	free(err);
	store_run_free(&r);
	store_close(st);
	return out_ok("logs") ? rc : 1;
}
