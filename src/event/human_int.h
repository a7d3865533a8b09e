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
	uint64_t start_ms;
	struct tail tail;
};

struct failure {
	char *step;
	char *shown; /* with its instance's label */
	char *reason;
	struct tail tail;
	bool final; /* its step ended failed: no retry can undo it */
};

struct entry {
	char *step;
	char *shown; /* with its instance's label, or NULL: the step id says it all */
	char *name;
	enum status status;
	uint64_t duration_ms;
	int depth;
	bool ended;
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
#define LIVE_MAX (FLEET_ROWS + LIVE_ROWS + 2)

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

/* summary.c */
struct entry *entry_for(struct human *H, const struct event *e);

#endif
