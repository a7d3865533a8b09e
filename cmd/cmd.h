/*
 * cmd: the command line. main.c dispatches to one cmd_NAME per subcommand;
 * each is a thin layer over src/. common.c holds what several share.
 */
#ifndef BATON_CMD_H
#define BATON_CMD_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define BATON_VERSION "0.1.0"

struct load_options;
struct var_source;

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_completion(int argc, char **argv);

/* A subcommand as main.c dispatches it, with its options as its getopt_long reads them (completion offers those). */
struct cmd_def {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
	const struct option *opts; /* NULL: none */
	const char *shorts;        /* getopt's optstring */
};
extern const struct cmd_def cmd_defs[];
extern const size_t cmd_n_defs;
/* run's are plan's and resume's too (resume adds its own, which it reads by hand) */
extern const struct option run_opts[], check_opts[], runs_opts[], status_opts[], logs_opts[], resume_opts[],
	wait_opts[], cancel_opts[], completion_opts[], report_opts[];
extern const char run_shorts[], check_shorts[], runs_shorts[], status_shorts[], logs_shorts[], resume_shorts[],
	wait_shorts[], cancel_shorts[], completion_shorts[], report_shorts[];

struct sched_reuse;
struct sched_preamble;
/*
 * A run that resumes an earlier one (cmd/resume.c): what it carries over,
 * and from where. run_main does the rest as for `baton run`.
 */
struct run_resume {
	const char *from;      /* the run resumed */
	const char *plan_text; /* --snapshot: the recorded plan text, loaded under the plan's path; or NULL */
	size_t plan_len;
	/* as sched_options.reuse, with the command's secrets masked as the store has it */
	bool (*match)(void *ud, const char *task, const char *command, const char *env, const char *host,
		      struct sched_reuse *r);
	void *ud;
	/* of a crashed run: what ends what it left on remote hosts, run before anything else */
	const struct sched_preamble *remote;
	size_t n_remote;
};
/* `baton run` with argv (argv[0] "run"), resuming rr. */
/*
 * approve.c: the approver of `approve` gates (--yes, BATON_APPROVE=all, else
 * /dev/tty). echo: keep the terminal's echo (no live view redraws there);
 * prompt: write the question to the terminal too (the human output does not go there).
 */
struct sched_approver;
struct uv_loop_s;
struct sched_approver *cmd_approver_new(struct uv_loop_s *loop, bool yes, bool echo, bool prompt);
/* The live view (sink_tty_new) shows the answer as it is typed, the terminal not echoing it. */
struct sink;
void cmd_approver_view(struct sched_approver *a, struct sink *view);
void cmd_approver_free(struct sched_approver *a);

int cmd_run_resumed(int argc, char **argv, const struct run_resume *rr);
int cmd_resume(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* --var K=V and --var-file F, applied in command-line order by the loader, and --secret-file K=PATH. */
struct var_args {
	struct var_source *sources; /* each points into argv */
	size_t n_sources;
	json_t *cli_names;    /* the names --var set (object used as a set): never a secret's */
	json_t *secret_files; /* name -> the value read from its --secret-file */
	bool bad;
};
void var_args_init(struct var_args *v);
/* Notes one --var or --var-file (arg must outlive v); prints an error and sets bad when a --var is not NAME=VALUE. */
void var_args_add(struct var_args *v, bool is_file, const char *arg);
/* Handles one --secret-file NAME=PATH: reads the file now; prints an error and sets bad on failure. */
void var_args_secret_file(struct var_args *v, const char *arg);
/* Points the load options at what the command line gave (--var, --var-file, --secret-file). */
void var_args_load_options(const struct var_args *v, struct load_options *o);
void var_args_free(struct var_args *v);

/* Loads plan `path` with the command line's options (--var, --inventory, --limit), printing every error. NULL on error. */
struct plan *cmd_load_plan(const char *path, const struct load_options *o);

/* Prints "baton NAME: MSG" and a hint to see --help; returns 2. */
int cmd_usage_error(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * After getopt_long (with opterr = 0) returned '?' for argv: reports why in
 * the words of cmd_usage_error — an unknown option with the closest of opts
 * ("did you mean '--dry-run'?"), an ambiguous one, a value missing or not
 * wanted. shorts is the optstring given to getopt_long. Returns 2.
 */
int cmd_bad_option(const char *name, int argc, char *const *argv, const struct option *opts, const char *shorts);

/* True when TERM is unset, empty or dumb: a terminal that cannot move its cursor, to get no escapes. */
bool cmd_dumb_terminal(void);

#endif
