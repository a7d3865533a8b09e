/*
 * quiet.c — what `--output quiet` shows: nothing while the run goes well;
 * on standard error, a line for each task (or step) that failed or timed
 * out, with its reason, and the final status line of a run that did not
 * succeed. A tolerated failure (continue_on_error, max_failures) says
 * nothing: the run it is part of may still succeed.
 */
#include <stdlib.h>
#include <string.h>

#include "event/event.h"
#include "util/util.h"

struct quiet {
	struct sink base;
	FILE *f;
	bool color;
};

static const char *col(const struct quiet *Q, const char *sgr)
{
	return Q->color ? sgr : "";
}

static void quiet_emit(struct sink *s, const struct event *e)
{
	struct quiet *Q = (struct quiet *)s;
	if (e->type == EV_STEP_END && (e->status == ST_FAILED || e->status == ST_TIMEOUT) && e->reason_own &&
	    !e->tolerated) {
		/* a task's last attempt, or a step's own failure (not a group passing a child's up) */
		struct buf id = {0};
		event_display_id(&id, e->step, e->label);
		fprintf(Q->f, "%s✗ %s%s: %s\n", col(Q, "\033[31m"), id.data, col(Q, "\033[0m"),
			e->reason ? e->reason : status_name(e->status));
		buf_free(&id);
	} else if (e->type == EV_RUN_END && e->status != ST_SUCCESS) {
		char t[32];
		duration_format(e->duration_ms, t, sizeof t);
		struct buf counts = {0};
		summary_counts(&counts, e->counts, e->n_tolerated);
		fprintf(Q->f, "%s%s run %s%s in %s (exit %d): %s\n", col(Q, status_color(e->status)),
			status_mark(e->status), status_name(e->status), col(Q, "\033[0m"), t, e->exit_code_run,
			counts.data);
		buf_free(&counts);
	}
}

static void quiet_flush(struct sink *s)
{
	fflush(((struct quiet *)s)->f);
}

static void quiet_close(struct sink *s)
{
	quiet_flush(s);
	free(s);
}

struct sink *sink_quiet_new(FILE *f, bool color)
{
	struct quiet *Q = xcalloc(1, sizeof *Q);
	Q->base.emit = quiet_emit;
	Q->base.flush = quiet_flush;
	Q->base.close = quiet_close;
	Q->f = f;
	Q->color = color;
	return &Q->base;
}
