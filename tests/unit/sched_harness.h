/*
 * A harness for the scheduler's unit tests: a plan from literal YAML runs
 * through the real sched_run() on a real libuv loop, with a fake executor
 * whose "processes" obey their command words and a sink that records every
 * event. Both write one log, in the order things happened, so a test can
 * assert on the sequence.
 */
#ifndef BATON_TEST_SCHED_HARNESS_H
#define BATON_TEST_SCHED_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "event/event.h"
#include "exec/exec.h"
#include "graph/graph.h"
#include "plan/plan.h"

/*
 * The fake executor's command language: a command's words (argv, or the
 * words of a `sh -c` script), any of
 *   w:MS        exit after MS ms of loop time (default 0)
 *   x:N         exit with N (default 0)
 *   okat:N      from attempt N on, exit 0 whatever x: says
 *   failitem:V  exit 1 when the item (BATON_ITEM) is V
 *   say:TEXT    print the line TEXT on stdout just before exiting
 *   hang        never exit of its own accord
 *   hang1       hang on the first attempt only
 *   noterm      ignore SIGTERM (only SIGKILL ends it)
 *   termwait:MS take MS ms to die after SIGTERM
 *   nostart     the executor cannot start it
 * Unknown words are ignored, so a step's command may carry a tag. The fake
 * runs remote hosts' commands as well (sched_options.ssh is the fake too):
 * the words are the script's, and the record says remote.
 */

enum rec_kind { REC_EVENT, REC_START, REC_SIGNAL, REC_DONE };

/* One thing that happened: an event on the bus, or what the fake executor saw or did. */
struct rec {
	enum rec_kind kind;
	enum event_type type; /* REC_EVENT */
	uint64_t seq;         /* REC_EVENT: the bus's seq */
	uint64_t t_ms;        /* ms of loop time since the run began */
	char *id;             /* the event's step (step.*, batch.*, barrier.*) or task (task.*); fake: the task */
	char *cmd;            /* task.start and REC_START: the command */
	char *barrier;
	char *reason;
	char *label;          /* task.*, step.*: the event's label; batch.*: its labels joined by ','; warning: its message */
	enum status status;
	int attempt;
	int sig;       /* REC_SIGNAL: sent; REC_DONE: what it died of (0: exited) */
	int exit_code; /* task.end, REC_DONE */
	int run_exit;  /* run.end */
	long batch;
	uint64_t arrived, expected, delay_ms;
	size_t proc; /* fake records: which process, in start order */
	bool tolerated; /* task.end, step.end */
	bool remote;    /* REC_START: the executor was given a host (an `on:` host reached over SSH) */
	uint64_t counts[ST__COUNT], n_tolerated; /* run.end (n_tolerated: progress too) */
	uint64_t done, failed, total;             /* progress */
};

/*
 * A signal raised from the sink when an event of a kind (and id, if set) goes
 * by, or at a seq, or from the fake executor when a task's process is signalled.
 */
struct trigger {
	enum event_type type;
	const char *id;
	uint64_t seq;  /* when set: at this seq, whatever the event (never run.end or progress) */
	bool signalled; /* when set: as the fake's process of task id gets a signal */
	int sig;
	bool fired;
};

struct fake_proc;

struct fake {
	struct executor base;
	struct harness *h;
	uv_loop_t *loop;
	struct exec_fds *fds; /* the descriptor budget the fake's processes count against, or NULL */
	size_t n_started, n_live;
};

struct harness {
	char *yaml;
	struct plan *p;
	struct graph *g;
	uv_loop_t loop;
	struct bus bus;
	struct sink sink;
	struct fake fake;
	struct exec_fds fds;
	bool use_fds;
	struct rec *v;
	size_t n, cap;
	struct trigger trig[4];
	size_t n_trig;
	char *last_task; /* the task of the latest task.start: the fake's start comes right after it */
	uint64_t t0;         /* the loop's time when the run began */
	int rc;
	uint64_t elapsed_ms; /* how long sched_run took (monotonic clock) */
	char *err;           /* what baton printed on stderr during the run */
};

/* Loads and compiles yaml (the test fails if it does not load). */
struct harness *h_new(const char *yaml);
/* The same, compiled with options (-j, --max-hosts, --only...). */
struct harness *h_new_with(const char *yaml, const struct graph_options *go);
void h_free(struct harness *h);
/* Raises sig from the sink at the first event of type (and id, when not NULL). */
void h_signal_at(struct harness *h, enum event_type type, const char *id, int sig);
/* Raises sig from the sink at event number seq (unless that is progress or run.end). */
void h_signal_at_seq(struct harness *h, uint64_t seq, int sig);
/* Raises sig as the fake's process of task id is first signalled. */
void h_signal_when_signalled(struct harness *h, const char *id, int sig);
/* The fake executor admits a process only while `budget` descriptors (3 per process) are free. */
void h_limit_fds(struct harness *h, long budget);
/* Runs the plan to its end; returns the exit status. */
int h_run(struct harness *h);

/* The log as text, one record a line, for failure messages (caller frees). */
char *h_dump(const struct harness *h);
/* Index of the n-th (0-based) event of type with id (NULL: any), or -1. */
long h_find(const struct harness *h, enum event_type type, const char *id, size_t nth);
/* How many events of type with id (NULL: any). */
size_t h_count(const struct harness *h, enum event_type type, const char *id);
/* Index of the first fake record of kind for task id (NULL: any), or -1. */
long h_find_fake(const struct harness *h, enum rec_kind kind, const char *id);
/* The status of the one step.end of id; fails the test if there is not exactly one. */
enum status h_status(const struct harness *h, const char *id);
/* The run.end record; fails the test if there is not exactly one. */
const struct rec *h_run_end(const struct harness *h);
/* The tasks the fake started, in order, as "a,b#1,c" (caller frees). */
char *h_started(const struct harness *h);

/*
 * The scheduler's invariants over a finished run, whatever the plan: run.start
 * first and exactly one run.end, last; every step node ends exactly once,
 * after its start, before its parent (async steps apart) and after its
 * handlers; every node a started or ended parent holds ends; every task.start
 * has one task.end; every fake process started ends once and none is left;
 * baton never said the run stalled.
 */
void h_check_invariants(const struct harness *h);

#endif
