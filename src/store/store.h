/*
 * store: the run store (design/runs.md). Every run is recorded in
 * STATE_DIR/runs.db (SQLite, WAL), written only by the run's own controller
 * and read by any number of baton processes at once, and its whole event
 * stream in STATE_DIR/runs/RUN_ID/events.jsonl. The writer is one more sink
 * of the event bus (sink.c); the reader (read.c) serves `runs`, `status`,
 * `logs`, `wait`, `cancel` and `resume`. lock.c holds the cross-run locks
 * (`lock:`), OS file locks under STATE_DIR/locks. The scheduler knows
 * nothing of any of it.
 */
#ifndef BATON_STORE_H
#define BATON_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "event/event.h"

#define STORE_KEEP_RUNS 200 /* runs kept by default (BATON_KEEP_RUNS) */

/*
 * The state directory: cli (--state-dir) if set, else $BATON_STATE_DIR, else
 * $XDG_STATE_HOME/baton, else ~/.local/state/baton. NULL (with *err) when
 * none can be named (no HOME).
 */
char *store_dir(const char *cli, char **err);

/*
 * Opens the store in dir. writer: creates dir (0700) and the database (0600)
 * when missing, and upgrades its schema; else the database must exist.
 * NULL with *err (caller frees) when it cannot be opened.
 */
struct store *store_open(const char *dir, bool writer, char **err);
void store_close(struct store *st);
const char *store_path(const struct store *st); /* the state directory */

/* What a run is recorded with, at its start. */
struct store_file {
	const char *path;
	const char *text;
	size_t len;
};
struct store_run_info {
	const char *id;
	const char *plan;      /* path as given */
	const char *plan_abs;  /* absolute path, to find it again from any cwd */
	const char *name;
	const char *vars_json; /* the vars given on the command line (never a secret's value) */
	const char *argv_json;
	const char *resumed_from; /* NULL: none */
	long tasks;               /* -1: not known before the run */
	const struct store_file *files; /* files[0] is the plan; then inventory, var files */
	size_t n_files;
};

/*
 * Records the start of a run (state running, this process as its
 * controller), after pruning old runs down to keep (finished ones only),
 * and creates its directory. False with *err when it cannot.
 */
bool store_begin(struct store *st, const struct store_run_info *ri, size_t keep, char **err);

/*
 * The writer: a sink that records tasks and the run's end in the database
 * and writes the event stream to runs/RUN_ID/events.jsonl. Takes st (closes
 * it with the sink). Durability: a task's end is committed before the next
 * step, batch or barrier release starts, and before any output stream of
 * the run writes (bus_barrier), so nothing is shown that is not recorded.
 */
struct sink *store_sink_new(struct store *st, struct uv_loop_s *loop, struct bus *bus);

/* --- reading --- */

enum run_state { RS_RUNNING, RS_SUCCESS, RS_FAILED, RS_CANCELLED, RS_TIMEOUT, RS_CRASHED };
const char *run_state_name(enum run_state s);

struct store_run {
	char *id, *plan, *plan_abs, *name, *user, *cwd, *argv_json, *vars_json, *resumed_from, *boot_id;
	char *plan_sha256;
	enum run_state state; /* RS_CRASHED: recorded running, its controller gone */
	int exit_code;        /* -1 while running or crashed */
	long pid;
	uint64_t pid_start;   /* the controller's start time (clock ticks since boot, /proc/PID/stat) */
	uint64_t start_ms, end_ms; /* wall clock, ms since the epoch; end 0 while running */
	long tasks;                /* -1: unknown */
	uint64_t counts[ST__COUNT]; /* tasks by status, a tolerated failure apart; while it runs (or crashed), as its rows say so far */
	uint64_t tolerated;         /* failed or timed-out tasks that continue_on_error or max_failures absorbed */
	uint64_t running;          /* tasks recorded running */
};
void store_run_free(struct store_run *r);

/*
 * Finds a run: ref is an id or a unique prefix of one, NULL for the newest
 * (of plan, when plan is set: compared with the recorded absolute path).
 * False with *err ("no run ...", "... is ambiguous: ...").
 */
bool store_find(struct store *st, const char *ref, const char *plan, struct store_run *out, char **err);
/* The newest n runs (0: all), of plan when set, newest first. */
struct store_run *store_list(struct store *st, size_t n, const char *plan, size_t *count);

struct store_task {
	char *id, *step, *host, *item, *command, *status, *reason;
	char *label; /* its for_each instance's label (event.label), or NULL */
	char *kind; /* NULL: a task (a command); else a step that is not one task (group, fan-out), with its depth */
	char *env_hash; /* store_text_hash of the plan's part of its environment (secrets masked); NULL: none */
	int depth;
	char *out, *err; /* captured output (secrets masked); NULL: none */
	size_t out_len, err_len;
	char *outputs; /* its $BATON_OUTPUT values, a JSON object (secrets masked); NULL: none */
	int attempt, exit_code, signal;
	uint64_t start_ms, end_ms, duration_ms;
	long pgid;          /* local process group, 0: none */
	uint64_t pgid_start_ms; /* when it was started (wall clock, ms) */
	char *remote_host;  /* the host its remote process group runs on, NULL: local */
	long remote_pgid;
	bool reused;
};
void store_task_free(struct store_task *t);
/*
 * The rows of a run: tasks in the order they started (a retried one once per
 * attempt, the last being its state) and steps that are not one task, as
 * they ended. with_output: captured output too.
 */
struct store_task *store_tasks(struct store *st, const char *run_id, bool with_output, size_t *count);
/* The recorded plan text of a run (files[0]), for resume --snapshot. */
char *store_plan_text(struct store *st, const char *run_id, size_t *len);
/* STATE_DIR/runs/RUN_ID/events.jsonl */
char *store_events_path(const struct store *st, const char *run_id);

/*
 * resume (carry.c): the last recorded state of every task of run r and of
 * the runs it resumed (the newest run's winning).
 */
struct store_carried;
struct store_carried *store_carried_load(struct store *st, const struct store_run *r);
/*
 * The row to carry over for task, about to run command with env (the plan's
 * part of its environment; both with secrets masked) on host (NULL: local):
 * its last state is success, with that command and environment on that
 * host. NULL otherwise; *changed when it succeeded with another command or
 * environment.
 */
const struct store_task *store_carried_find(const struct store_carried *c, const char *task, const char *command,
					    const char *env, const char *host, bool *changed);
void store_carried_free(struct store_carried *c);

/* A file's whole text (NUL-terminated; *len its length), for the store's copies; NULL when it cannot be read. */
char *store_read_file(const char *path, size_t *len);

/* True when the file at path is not the one whose sha256 (hex) was recorded (or cannot be read). */
bool store_file_changed(const char *path, const char *sha256);

/* The run-time version of libnettle, loaded as the store loads it for hashes; false with *why when it cannot be. */
bool store_nettle_version(int *major, int *minor, const char **why);
/* The run-time version of SQLite ("3.40.1"). */
const char *store_sqlite_version(void);

/* True while the controller of r (pid, its start time, this boot) is alive. */
bool store_run_alive(const struct store_run *r);

/*
 * Ends what the crashed run r left running here (procs.c): the process
 * groups of its tasks recorded running (t, n: store_tasks), when their
 * leader is still the process recorded, and any process that carries r's
 * BATON_RUN_ID. SIGTERM, 2 s, then SIGKILL. Returns how many groups.
 */
size_t store_end_local(const struct store_run *r, const struct store_task *t, size_t n);

/* How many runs are kept: $BATON_KEEP_RUNS when it is a number >= 1, else STORE_KEEP_RUNS. */
size_t store_keep_runs(void);

/*
 * Deletes the finished runs beyond the newest keep (never one whose
 * controller is alive): their rows, then their directories. st must be
 * opened as a writer. *removed: how many. False with *err (which must be
 * NULL on the way in).
 */
bool store_prune(struct store *st, size_t keep, size_t *removed, char **err);

/* --- showing (show.c, logs.c): what `runs`, `status` and `logs` print --- */

/* The table of runs: id, plan (its name, else its path), state, start (local time), duration, counts. */
void store_show_runs(FILE *f, const struct store_run *v, size_t n, bool color);
/* runs --json: an array of runs. False when f failed. */
bool store_show_runs_json(FILE *f, const struct store_run *v, size_t n);
/*
 * A run's status: a header, the tree of its steps and tasks as the live
 * view's summary shows it, its failures, its counts and, while it runs, its
 * running tasks, ETA and slowest tasks. False when f failed.
 */
bool store_show_status(FILE *f, struct store *st, const struct store_run *r, bool color);
/* status --json: {run: {...}, tasks: [every row]}. False when f failed. */
bool store_show_status_json(FILE *f, struct store *st, const struct store_run *r);
/*
 * status --watch: on a terminal (tty) redraws the status every 500 ms until
 * the run ends; elsewhere prints it once, when it has ended. The exit status;
 * 1 with *err when it cannot go on.
 */
int store_watch(FILE *f, struct store *st, const char *run_id, bool tty, bool color, char **err);

/*
 * True when task or step id is filter or lies under it: the same path or one
 * under it (deploy: deploy.push), with the filter's suffix, if any, leading
 * the id's (deploy#2: deploy.push#2, deploy.push#2#0; not deploy#20).
 */
bool store_id_matches(const char *filter, const char *id);

struct store_logs_options {
	const char *const *tasks; /* filters (store_id_matches); none: every task */
	size_t n_tasks;
	bool events; /* the raw event lines, not output lines */
	bool follow; /* to the run's end */
};
/*
 * logs: the output lines of run r from its events.jsonl, as --output plain
 * prints them ("[TASK] line"), or its raw event lines. With follow, reads
 * what is appended (every 100 ms) until run.end, or the run's controller is
 * gone. The exit status: 0; 1 with *err (caller frees) when the events cannot
 * be read, out cannot be written, or the followed run crashed.
 */
int store_logs(FILE *out, struct store *st, const struct store_run *r, const struct store_logs_options *o,
	       char **err);

/* --- cross-run locks (lock.c) --- */

struct store_lock;
/*
 * Takes lock name under dir/locks, waiting up to wait_ms (0: not at all),
 * saying on err once who holds it while it waits. NULL with *why (caller
 * frees; says who holds it: run id, user, since) when it could not be taken.
 */
struct store_lock *store_lock_take(const char *dir, const char *name, uint64_t wait_ms, const char *run_id,
				   FILE *err, char **why);
void store_lock_release(struct store_lock *l);

#endif
