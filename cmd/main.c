/*
 * main.c — baton's entry point: makes the process safe to run children from
 * (standard descriptors open, SIGPIPE ignored) and dispatches subcommands.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "util/util.h"

const struct cmd_def cmd_defs[] = {
	{"run", cmd_run, "run a plan", run_opts, run_shorts},
	{"check", cmd_check, "validate plans and report every error", check_opts, check_shorts},
	{"plan", cmd_plan, "preview a plan: the expanded tree, running nothing", run_opts, run_shorts},
	{"runs", cmd_runs, "list the recorded runs, newest first (--prune: delete old ones)", runs_opts, runs_shorts},
	{"status", cmd_status, "show a run: its tree of steps and tasks, failures, progress", status_opts, status_shorts},
	{"logs", cmd_logs, "print a run's output lines (-f: follow it to its end)", logs_opts, logs_shorts},
	{"resume", cmd_resume, "re-run what a recorded run did not finish with success", resume_opts, resume_shorts},
	{"wait", cmd_wait, "wait for recorded runs to end; exit with their status", wait_opts, wait_shorts},
	{"cancel", cmd_cancel, "stop a running run, as Ctrl-C would", cancel_opts, cancel_shorts},
	{"report", cmd_report, "write a recorded run's JUnit XML, HTML timeline or Markdown summary", report_opts,
	 report_shorts},
	{"completion", cmd_completion, "print the shell completion script for bash, zsh or fish", completion_opts,
	 completion_shorts},
	{"version", cmd_version, "print baton's version", NULL, NULL},
};
const size_t cmd_n_defs = ARRAY_LEN(cmd_defs);

static void usage(FILE *f)
{
	fprintf(f, "usage: baton COMMAND [OPTIONS] PLAN\n\ncommands:\n");
	for (size_t i = 0; i < ARRAY_LEN(cmd_defs); i++)
		fprintf(f, "  %-10s %s\n", cmd_defs[i].name, cmd_defs[i].help);
	fprintf(f, "\n'baton COMMAND --help' describes each; man baton(1), baton-plan(5), baton-events(7).\n");
}

/* Reports argv[1] that names no command: the closest one, else the list of them. */
static int unknown_command(const char *name)
{
	if (name[0] == '-') {
		fprintf(stderr, "baton: unknown option '%s' (a command comes first: baton COMMAND [OPTIONS])\n"
				"Try 'baton --help'.\n", name);
		return 2;
	}
	const char *names[ARRAY_LEN(cmd_defs)];
	for (size_t i = 0; i < ARRAY_LEN(cmd_defs); i++)
		names[i] = cmd_defs[i].name;
	const char *hint = closest_name(name, names, ARRAY_LEN(names));
	if (hint) {
		fprintf(stderr, "baton: unknown command '%s'; did you mean '%s'?\nTry 'baton --help'.\n", name, hint);
		return 2;
	}
	if (access(name, F_OK) == 0) {
		fprintf(stderr, "baton: unknown command '%s' (to run that plan: baton run %s)\nTry 'baton --help'.\n",
			name, name);
		return 2;
	}
	fprintf(stderr, "baton: unknown command '%s'\n\n", name);
	usage(stderr);
	return 2;
}

/* Children inherit 0, 1 and 2: make sure they are open, on /dev/null if need be. */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0) {
			int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
			if (n >= 0 && n != fd) {
				dup2(n, fd);
				close(n);
			}
		}
}

int main(int argc, char **argv)
{
	ensure_std_fds();
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V"))
		return cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < ARRAY_LEN(cmd_defs); i++)
		if (!strcmp(name, cmd_defs[i].name))
			return cmd_defs[i].fn(argc - 1, argv + 1);
	return unknown_command(name);
}
