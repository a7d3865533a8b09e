/*
 * internal.h — the report model's layout, shared by the module's writers
 * (data.c, junit.c, markdown.c). Nothing outside src/report/ sees it.
 */
#ifndef BATON_REPORT_INTERNAL_H
#define BATON_REPORT_INTERNAL_H

#include <stdint.h>

#include "report/report.h"
#include "util/util.h"

#define REPORT_MAX_WARNINGS 1000

struct rline {
	char *text;
	bool err; /* from stderr */
};

/* One attempt of one task. */
struct rtask {
	char *id, *step, *host, *item, *label, *command, *reason;
	int attempt;
	int status; /* an enum status, -1 while it runs */
	int exit_code; /* -1: none */
	int signal;    /* 0: none */
	int64_t start_ms, end_ms; /* from the run's start; end -1 while it runs */
	uint64_t duration_ms;
	bool tolerated, reused;
	struct rline out[REPORT_TAIL_LINES]; /* a ring: the last lines */
	size_t out_head, out_n;
	uint64_t dropped; /* lines before those */
	long prev, next;  /* the task's other attempts (index), -1: none */
};

struct rstep {
	char *id, *kind, *label, *reason;
	int depth;
	int status; /* -1: not ended */
	int64_t start_ms, end_ms; /* -1: not known */
	bool started;
	bool has_child; /* a step or task inside it started */
};

struct rbatch {
	char *step;
	long batch;
	int64_t start_ms, end_ms;
	size_t instances;
	uint64_t failed;
};

struct rbarrier {
	char *barrier, *step;
	int64_t release_ms;
	uint64_t arrived, expected;
};

/* What a JUnit testcase is made of, in the order things happened. */
struct rcase {
	bool step;  /* a step that never ran (skipped or cancelled), else a task */
	size_t idx; /* its first attempt, or the step */
};

/* A string -> index map (open addressing); keys are owned by the entries. */
struct rmap {
	const char **keys;
	size_t *vals;
	size_t cap, n;
};

struct report {
	char *run_id, *plan, *name, *start_iso;
	int64_t start_epoch_ms; /* run.start's ts, ms since the epoch; -1 before it */
	bool dry_run, ended;
	int status; /* run.end's, -1 before it */
	int exit_code;
	uint64_t duration_ms;
	uint64_t counts[ST__COUNT]; /* run.end's (a tolerated failure is in n_tolerated only) */
	uint64_t n_tolerated;       /* run.end's */

	struct rtask *tasks;
	size_t n_tasks, cap_tasks;
	struct rstep *steps;
	size_t n_steps, cap_steps;
	struct rbatch *batches;
	size_t n_batches, cap_batches;
	struct rbarrier *barriers;
	size_t n_barriers, cap_barriers;
	char **warnings;
	size_t n_warnings;
	uint64_t warnings_dropped;
	struct rcase *cases;
	size_t n_cases, cap_cases;

	struct rmap task_map; /* task id -> its latest attempt */
	struct rmap step_map;
};

/* The i-th (0: oldest) of the attempt's kept lines. */
const struct rline *rtask_line(const struct rtask *t, size_t i);
/*
 * The counts by status, and of tolerated failures apart (not in failed or
 * timeout): run.end's when there was one, else the tasks' (last attempts)
 * and never-run steps'.
 */
void report_counts(const struct report *r, uint64_t counts[ST__COUNT], uint64_t *tolerated);
/* The task's last attempt (following next from its first). */
const struct rtask *rtask_last(const struct report *r, size_t first);
/* The run's status name: run.end's, else "running". */
const char *report_status_name(const struct report *r);

#endif
