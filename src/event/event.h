/*
 * event: everything that happens in a run becomes a struct event, handed by
 * the bus to every sink in turn — JSON lines, plain text, the live terminal
 * view. Sinks know nothing about executors or plans; nothing else writes to
 * the terminal while a run is going.
 */
#ifndef BATON_EVENT_H
#define BATON_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum event_type {
	EV_RUN_START,
	EV_STEP_START,
	EV_STEP_END,
	EV_TASK_START,
	EV_TASK_OUTPUT,
	EV_TASK_RETRY,
	EV_TASK_END,
	EV_PROGRESS,
	EV_RUN_END,
	EV_BATCH_START,
	EV_BATCH_END,
	EV_BARRIER_WAIT,
	EV_BARRIER_RELEASE,
	EV_WARNING,
	EV_TASK_PROCESS, /* a task's process group is known: the run store records it, to end it after a crash */
	EV_PLAN_TASK,    /* a dry run: one task the run would start (the preview's) */
	EV_RUN_CANCEL,   /* SIGINT or SIGTERM: the run is being cancelled (kill: a second one) */
	EV_APPROVE_WAIT, /* an approve gate asks a person (message) */
	EV_APPROVE_END,  /* an approve gate is decided: approved, by */
	EV_TASK_TRANSFER, /* a running copy or fetch moved bytes: bytes so far, size (at most every 500 ms) */
};

enum status { ST_SUCCESS, ST_FAILED, ST_TIMEOUT, ST_CANCELLED, ST_SKIPPED, ST__COUNT };

const char *status_name(enum status s);
const char *event_type_name(enum event_type t);
/* Is a step of this kind (step.start/end `kind`) one task: run, copy or fetch? */
bool event_kind_is_task(const char *kind);

/*
 * One event. Only the fields of its type are meaningful; strings are
 * borrowed. The bus masks secrets in each text field before any sink sees
 * it: a new string field must be listed in bus.c's text_fields.
 */
struct event {
	enum event_type type;
	uint64_t seq;  /* filled by the bus */
	char ts[32];   /* filled by the bus */
	const char *run_id;

	/* run.start / run.end */
	const char *plan;
	const char *name;
	bool dry_run;
	long tasks; /* -1: unknown */
	const char *resumed_from; /* run.start: the run this one resumes, or NULL */
	int exit_code_run;
	uint64_t counts[ST__COUNT]; /* run.end: tasks by status; a tolerated failure is in n_tolerated only */
	uint64_t n_tolerated;       /* run.end and progress: failed or timed-out tasks that continue_on_error or max_failures absorbed */

	/* step.* and task.* */
	const char *step;
	const char *kind;
	int depth; /* nesting of the step (top-level steps are 1) */
	size_t hosts; /* step.start of an `on` step: how many hosts it runs on */
	enum status status;
	uint64_t duration_ms;
	const char *task;
	const char *host;
	const char *item;
	/*
	 * task.*, and step.* of a for_each instance or of a step inside one: how
	 * the (innermost) instance is shown to people (its `label:`, else the
	 * item, else its index); NULL outside any for_each instance.
	 */
	const char *label;
	int attempt;
	const char *command;
	bool stream_stderr;
	const char *line;
	size_t line_len;
	int exit_code; /* -1: none */
	int signal;    /* 0: none */
	uint64_t delay_ms;
	const char *reason; /* task.retry, failed task.end and step.end */
	bool reason_own;    /* step.end: the step's own failure, not a child's passed up */
	bool reused;        /* task.end: carried over from an earlier run by `resume`, not run */
	bool copy;          /* task.end of a copy or fetch: changed and bytes are written */
	bool changed;       /* task.end of a copy: something at the destination was written */
	uint64_t bytes;     /* task.end of a copy: the bytes transferred; task.transfer: so far */
	int64_t size;       /* task.transfer: the bytes the copy will write in all; -1: not known (a directory) */
	bool tolerated;     /* task.end (the last attempt) and step.end: a failure continue_on_error or max_failures absorbed */
	/*
	 * task.start (and a reused task.end): the environment the plan gives the
	 * task, "K=V\n" sorted (not baton's own, not BATON_*), for the run store,
	 * which resume compares; NULL: none. Not written by the JSON sink.
	 */
	const char *env;
	/* task.end: the output an expression can read (steps that are read only), for the run store */
	const char *out, *err;
	size_t out_len, err_len;
	const char *outputs; /* task.end of such a step: its $BATON_OUTPUT values, a JSON object; for the run store */
	/* task.process */
	long pgid;
	bool remote; /* the process group is on host, not here */

	/* progress; `failed` is also batch.end's */
	uint64_t done, failed, running, waiting, total;

	/* batch.* and barrier.* */
	long batch;
	const long *instances; /* item indexes */
	const char *const *instance_names; /* or host names, when set */
	const char *const *labels;         /* each instance's label (a host name over hosts alone); may be NULL */
	size_t n_instances;
	const char *barrier;
	uint64_t arrived, expected;
	uint64_t pause_ms; /* batch.end: the pause before the next batch (0: none, or no next batch) */

	/* run.cancel (with signal, running) */
	bool kill; /* a second interrupt: running tasks are killed, handlers too */

	/* warning; approve.* (the gate's question) */
	const char *message;
	/* approve.end: the answer, and who gave it: "tty", "--yes", "BATON_APPROVE", "timeout", "no terminal", "cancelled" */
	bool approved;
	const char *by;

	/* plan.task (with task, step, host, item, label, attempt, command, batch) */
	const char *shell;     /* "/bin/sh -c", or NULL for an argv */
	const char *cwd;       /* or NULL */
	const char *handler;   /* "on_success", "on_failure", "finally" when inside one, or NULL */
	const char *condition; /* NULL: it runs if the steps before it succeed; else what it also depends on */
};

struct sink {
	void (*emit)(struct sink *s, const struct event *e);
	void (*tick)(struct sink *s);  /* periodic redraw, may be NULL */
	void (*flush)(struct sink *s); /* a burst of events is over, may be NULL */
	void (*close)(struct sink *s); /* flush and free */
	/*
	 * What was emitted so far must be durable before anything is shown: the
	 * run store commits. Called before an output stream of the run writes
	 * (bus_barrier). May be NULL.
	 */
	void (*barrier)(struct sink *s);
};

struct bus {
	struct sink **sinks;
	size_t n;
	uint64_t seq;
	char *run_id;
	const char *const *secrets;
	size_t n_secrets;

	FILE *err;   /* where bus_warn tells people at once; stderr when NULL */
	bool lost;   /* some output could not be written: the exit status says so */
	bool busy;   /* inside bus_emit or bus_flush: warnings wait */
	bool ended;  /* run.end was emitted: no event may follow it */
	char **pending; /* warnings that wait for the bus to be free */
	size_t n_pending;
};

void bus_init(struct bus *b, const char *run_id, const char *const *secrets, size_t n_secrets);
void bus_add(struct bus *b, struct sink *s);
/* Stamps seq and ts, masks secrets in every text field (bus.c: text_fields), and hands e to every sink. */
void bus_emit(struct bus *b, struct event *e);
void bus_tick(struct bus *b);
void bus_flush(struct bus *b);
/* Calls every sink's barrier: what was emitted is recorded before an output stream writes it. */
void bus_barrier(struct bus *b);
/* Closes every sink; err and lost stay, for outputs closed after the sinks. */
void bus_close(struct bus *b);
/*
 * Says "baton: MESSAGE" on b->err at once (unless from, the output that
 * failed, is b->err itself) and emits a `warning` event with MESSAGE as soon
 * as the bus is free (never after run.end). lost: output was lost, and the
 * run's exit status must say so (b->lost).
 */
void bus_warn(struct bus *b, bool lost, FILE *from, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A new run id: UTC time plus random hex, e.g. 20261123T174300Z-3f9a1c. */
char *event_new_run_id(void);

/*
 * A stream for every output of a run (stdout, stderr, the events file) that
 * writes whole lines only and, with a loop, never stalls it: a pipe or a
 * terminal whose reader is slow gets its lines from memory, then from an
 * unlinked spill file in $TMPDIR, in order (a slow reader must not delay
 * timeouts). A failed write is told through the bus (bus_warn). name is how
 * messages call the output; own: fd is closed with the stream. Close it with
 * fclose (which waits until the reader took everything, and returns EOF when
 * output was lost) before the loop's last run. NULL loop: writes may wait.
 */
struct uv_loop_s;
FILE *event_stream_open(struct uv_loop_s *loop, struct bus *bus, int fd, bool own, const char *name);
/* The same, for an output that is not one of the run's own (the run store's log): a failed write is said, and does not make the exit status 5. */
FILE *event_stream_open_opt(struct uv_loop_s *loop, struct bus *bus, int fd, bool own, const char *name, bool optional);
/* True when fds a and b write to the same pipe, terminal or file (one stream must serve both). */
bool event_stream_same(int a, int b);

/* JSON lines (schema 1) to f; closes f at the end if own is true. */
struct sink *sink_json_new(FILE *f, bool own);

struct human_options {
	bool color;
	bool github;   /* ::group:: folding, for GITHUB_ACTIONS=true */
	bool summary;  /* print the summary at run.end */
	bool verbose;  /* multi-line commands in full */
	bool timestamps; /* each line of the run (not the summary) starts with its time, HH:MM:SS.mmm UTC */
	int width;     /* terminal columns (tty) */
};
/* Every output line prefixed with its task id; a summary at the end. */
struct sink *sink_plain_new(FILE *f, const struct human_options *o);
/*
 * The end-of-run summary's pieces, shared with `baton status` (src/store/show.c):
 * a status's mark (✓ ✗ ○ -) and colour (an SGR sequence); one row of the tree
 * (mark, status, id indented by depth, duration, an optional note); the counts
 * of the final line ("N succeeded, [N tolerated failures, ]N failed, N timed out, N cancelled, N skipped").
 */
const char *status_mark(enum status s);
const char *status_color(enum status s);
void summary_row(FILE *f, bool color, const char *sgr, const char *mark, const char *status, int depth,
		 const char *id, const char *duration, const char *note);
struct buf;
void summary_counts(struct buf *b, const uint64_t counts[ST__COUNT], uint64_t tolerated);
/*
 * How people see a task or step id: "ID (LABEL)" with the label of its
 * for_each instance (rollout#2 (app02)), ID alone when there is no label or
 * the label only repeats the instance's #INDEX. Appended to b.
 */
void event_display_id(struct buf *b, const char *id, const char *label);
/*
 * What a CI system reads beside the plain output (ci.c): GitHub Actions
 * annotations, GitLab sections, Buildkite groups. where: the line and column
 * of a plan step (its full id), for annotations; may be NULL.
 */
enum ci_kind { CI_NONE, CI_GITHUB, CI_GITLAB, CI_BUILDKITE };
struct ci_options {
	enum ci_kind kind;
	const char *plan; /* the plan file as given, named by annotations */
	bool (*where)(void *ud, const char *step, int *line, int *col);
	void *ud;
};
/* The CI system this runs in, from its environment (GITHUB_ACTIONS, GITLAB_CI, BUILDKITE). */
enum ci_kind ci_detect(void);
/* Writes to f, the plain sink's stream; add it to the bus after the plain sink. */
struct sink *sink_ci_new(FILE *f, const struct ci_options *o);

/*
 * --output quiet: on f (stderr), a line for each task or step that failed or
 * timed out (not a tolerated one), with its reason, and the final status line
 * of a run that did not succeed. Nothing else.
 */
struct sink *sink_quiet_new(FILE *f, bool color);
/* A live area of running tasks and a progress bar under scrolling output. */
struct sink *sink_tty_new(FILE *f, const struct human_options *o);
/* An approve gate's answer as typed so far (the terminal does not echo it): shown on its live row. */
void sink_tty_typed(struct sink *s, const char *typed);
/* The terminal is now width columns wide (SIGWINCH): the live area is redrawn for it. */
void sink_tty_resize(struct sink *s, int width);

#endif
