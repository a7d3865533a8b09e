/*
 * human_int.h — what the human sinks' files share (private to src/event/):
 * the state of a plain or tty sink. human.c handles the events, live.c draws
 * the live area of a terminal, summary.c keeps and prints the end-of-run summary.
 */
#ifndef BATON_EVENT_HUMAN_INT_H
#define BATON_EVENT_HUMAN_INT_H

#include "event/event.h"
#include "util/util.h"

#define TAIL_LINES 10
#define TAIL_LINE_MAX 300
#define MAX_FAILURE_DETAILS 20
#define LIVE_ROWS 8
#define MAX_WARNINGS 10
#define BATCH_LABELS 8 /* a batch's line names this many of its instances */

struct tail {
	char *lines[TAIL_LINES];
	size_t next;
	size_t count;
};

struct running {
	char *task;
	char *shown; /* the task as people see it: with its instance's label (event_display_id) */
	char *step;
	char *command; /* as task.start gave it (secrets masked), made visible */
	uint64_t start_ms;
	struct tail tail;
	/* a copy or fetch, from its latest task.transfer: bytes so far, of total (-1: unknown), and the rate */
	bool xfer;
	uint64_t xfer_bytes, xfer_ms;
	int64_t xfer_total;
	double xfer_rate; /* bytes per second */
};

struct failure {
	char *step;
	char *shown; /* with its instance's label */
	char *reason;
	struct tail tail;
	bool final; /* its step ended failed: no retry can undo it */
	bool tolerated; /* continue_on_error or max_failures absorbed it */
	char *command; /* the failed task's command, or NULL (a step's own failure) */
};

struct entry {
	char *step;
	char *shown; /* with its instance's label, or NULL: the step id says it all */
	char *name;
	enum status status;
	uint64_t duration_ms;
	int depth;
	bool ended;
	bool tolerated; /* a failure continue_on_error or max_failures absorbed */
};

/*
 * A step on many hosts (a fleet) is shown on a terminal as one live row of
 * counts and its slowest hosts, not a line per host and task; failures
 * and output still print. Plain output keeps every line.
 */
#define FLEET_MIN 5
#define FLEET_ROWS 3
#define FLEET_SLOWEST 3

struct fleet_run {
	char *host;
	uint64_t start_ms;
};

struct fleet {
	char *id; /* the `on` step */
	size_t total, ok, failed, other;
	struct fleet_run *run;
	size_t n_run, cap_run;
	uint64_t start_ms;
};

/* Up to this many steps the summary shows every one; past it, top-level steps only. */
#define SUMMARY_ALL_MAX 60

/* The string fields of an event that came from outside, each made visible in its own buffer. */
enum { C_PLAN, C_NAME, C_STEP, C_KIND, C_TASK, C_HOST, C_ITEM, C_LABEL, C_COMMAND, C_LINE, C_REASON, C_BARRIER,
       C_MESSAGE, C__COUNT };

/* Rows the live area can have: fleets, running tasks, "… more", the progress bar. */
/* Rows of waits the live area shows at most: batch pauses, barriers. */
#define WAIT_ROWS 4
#define LIVE_MAX (FLEET_ROWS + LIVE_ROWS + WAIT_ROWS + 3)

/* A batched fan-out between two batches: the next one starts at until_ms. */
struct pause {
	char *step;
	uint64_t until_ms;
};

/* An instance waiting at a barrier. */
struct waiter {
	char *id;     /* the barrier step's id */
	char *shown;  /* with its instance's label */
	char *barrier;
	uint64_t arrived, expected;
};

/*
 * The instances of a fan-out (a for_each or an on step) as they end: how
 * many, how many succeeded, and their durations (min, max, and a bounded
 * sample for the median), for the summary's one row of a fan-out that
 * succeeded in full.
 */
#define FANOUT_SAMPLE 4096
#define FANOUT_FOLD_MIN 5 /* a fan-out of this many instances or more is folded */
#define FANOUT_MAX 256     /* fan-outs below the top level followed at most */
struct fanout {
	char *id;
	uint64_t n, ok;
	uint64_t min_ms, max_ms;
	uint64_t *sample;
	size_t n_sample;
};

struct human {
	struct sink base;
	FILE *f;
	struct human_options o;
	bool tty;

	struct running *run;
	size_t n_run, cap_run;
	struct failure fails[MAX_FAILURE_DETAILS];
	size_t n_fails;
	size_t n_failures; /* tasks and steps that ended failed, shown or not */
	char *warnings[MAX_WARNINGS];
	size_t n_warnings, n_warnings_more;
	struct entry *top;
	size_t n_top;
	bool many; /* past SUMMARY_ALL_MAX: only top-level steps are kept */
	uint64_t total, done, failed;
	uint64_t start_ms;
	char *open_group;

	struct fleet *fleets;
	size_t n_fleets;

	struct pause *pauses;
	size_t n_pauses;
	struct waiter *waiters;
	size_t n_waiters;
	char *ask_shown;   /* approve.wait: the gate asking now (its id as shown), or NULL */
	char *ask_message; /* and its question */
	char *ask_typed;   /* what was typed so far (sink_tty_typed), or NULL */
	uint64_t ask_since;
	int cancel_signal; /* run.cancel: the signal that cancels the run, or 0 */
	bool cancel_kill;  /* a second one: running tasks are killed */

	struct fanout *fanouts;
	size_t n_fanouts;
	uint64_t rand; /* the fan-outs' sampling */

	FILE *stamp; /* --timestamps: what an event prints goes here first (a memory stream), or NULL */
	char *stamp_buf;
	size_t stamp_len;

	bool ended; /* run.end came: the summary is out, no live area below it */
	int live_rows; /* rows of the live area now on screen */
	int live_cols[LIVE_MAX]; /* the columns each of them takes */
	struct buf clean[C__COUNT];
	struct buf shown; /* display()'s */
};

static inline const char *col(const struct human *H, const char *code)
{
	return H->o.color ? code : "";
}

/* human.c */
/* id with its instance's label, as people see it (event_display_id); valid until the next call. */
const char *display(struct human *H, const char *id, const char *label);
void tail_free(struct tail *t);
/*
 * A command after "$ ": its first line, and " …" when there is more; with
 * full (--verbose), every line, those after the first on lines of their own
 * that start with cont.
 */
void put_command(struct human *H, const char *command, bool full, const char *cont);
/* The progress bar: tasks done of all, failed, running, elapsed. */
void progress_bar(struct human *H, struct buf *b, int width);

/* live.c */
struct fleet *fleet_of_instance(struct human *H, const char *id, const char **host);
bool in_fleet(const struct human *H, const char *id);
void fleet_free(struct fleet *f);
int term_cols(const struct human *H);
void live_erase(struct human *H);
void live_draw(struct human *H);
void fleet_step_end(struct human *H, const struct event *e);
/* id in exactly room columns, cut in the middle when longer (its @HOST, #N and label kept). */
void live_cut_id(struct buf *b, const char *id, size_t room);

/* A copy's task.transfer (bytes so far, of total or -1) at now_ms, for its live row. */
void live_transfer(struct running *r, uint64_t bytes, int64_t total, uint64_t now_ms);
/* Waits and cancelling, as the events tell them, for the live area's rows. */
void live_track(struct human *H, const struct event *e);
void live_free(struct human *H);
/* "cancelling — N tasks stopping (Ctrl-C again to kill)", or what a second interrupt does. */
void live_cancel_text(struct human *H, struct buf *b, size_t running);

/* summary.c */
struct entry *entry_for(struct human *H, const struct event *e);
/* True when step (or task) id d lies inside step a (roll.one#2 inside roll#2 and roll). */
bool event_id_inside(const char *d, const char *a);
/* A step started or ended: a fan-out's instances are counted for the summary. */
void summary_track(struct human *H, const struct event *e);
/* The summary's tree of steps, a fan-out that succeeded in full as one row. */
void summary_tree(struct human *H);
void summary_free(struct human *H);

#endif
