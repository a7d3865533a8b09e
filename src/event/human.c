/*
 * human.c — the sinks people read: `plain` (every line prefixed with its
 * task id, ::group:: folding on GitHub Actions) and `tty` (the same output
 * scrolling above a live area of running tasks and a progress bar). Both end
 * with a summary: each top-level step's status and duration, and for each
 * failure its reason and the last lines of its output. Every string that
 * came from outside (a plan, a value, a command, a remote side) is made
 * visible (str_visible) as the event comes in, so none can drive the terminal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event/human_int.h"

void summary_counts(struct buf *b, const uint64_t counts[ST__COUNT], uint64_t tolerated)
{
	buf_printf(b, "%llu succeeded, ", (unsigned long long)counts[ST_SUCCESS]);
	if (tolerated)
		buf_printf(b, "%llu tolerated failure%s, ", (unsigned long long)tolerated, tolerated == 1 ? "" : "s");
	buf_printf(b, "%llu failed, %llu timed out, %llu cancelled, %llu skipped", (unsigned long long)counts[ST_FAILED],
		   (unsigned long long)counts[ST_TIMEOUT], (unsigned long long)counts[ST_CANCELLED],
		   (unsigned long long)counts[ST_SKIPPED]);
}

void event_display_id(struct buf *b, const char *id, const char *label)
{
	buf_adds(b, id);
	if (!label || !*label)
		return;
	/* the innermost instance's index is the last #N of the id (a.b#1#2, deploy@web1#2, a.b#1@h2) */
	const char *hash = strrchr(id, '#');
	if (hash) {
		size_t nd = strspn(hash + 1, "0123456789");
		if (nd && strlen(label) == nd && !strncmp(hash + 1, label, nd))
			return;
	}
	buf_printf(b, " (%s)", label);
}

static void tail_add(struct tail *t, const char *line, size_t len)
{
	if (len > TAIL_LINE_MAX)
		len = TAIL_LINE_MAX;
	free(t->lines[t->next]);
	/* kept as a C string: a NUL byte is stored as ^@, as put_line shows it, so the line is not cut there */
	struct buf b = {0};
	for (size_t i = 0; i < len; i++) {
		if (line[i])
			buf_addc(&b, line[i]);
		else
			buf_adds(&b, "^@");
	}
	t->lines[t->next] = buf_detach(&b);
	t->next = (t->next + 1) % TAIL_LINES;
	if (t->count < TAIL_LINES)
		t->count++;
}

void tail_free(struct tail *t)
{
	for (size_t i = 0; i < TAIL_LINES; i++)
		free(t->lines[i]);
	memset(t, 0, sizeof *t);
}

/* id with its instance's label, as people see it (event_display_id); valid until the next call. */
const char *display(struct human *H, const char *id, const char *label)
{
	buf_reset(&H->shown);
	event_display_id(&H->shown, id, label);
	return H->shown.data;
}

static struct running *find_running(struct human *H, const char *task)
{
	for (size_t i = 0; i < H->n_run; i++)
		if (!strcmp(H->run[i].task, task))
			return &H->run[i];
	return NULL;
}

/* One line of a task's output, already made visible. */
static void put_line(struct human *H, const char *prefix, bool err, const char *text, size_t len)
{
	fprintf(H->f, "%s[%s]%s", col(H, "\033[2m"), prefix, col(H, "\033[0m"));
	/* on a terminal, a line of stderr is marked: "[task]! line", the ! in red */
	if (err && H->tty)
		fprintf(H->f, "%s!%s", col(H, "\033[1;31m"), col(H, "\033[0m"));
	fputc(' ', H->f);
	fwrite(text, 1, len, H->f);
	fputc('\n', H->f);
}

void progress_bar(struct human *H, struct buf *b, int width)
{
	int w = width > 60 ? 30 : 10;
	uint64_t tot = H->total ? H->total : 1;
	int filled = (int)((H->done * (uint64_t)w) / tot);
	if (filled > w)
		filled = w;
	buf_adds(b, "[");
	for (int i = 0; i < w; i++)
		buf_adds(b, i < filled ? "█" : "░");
	char t[32];
	duration_format(clock_ms() - H->start_ms, t, sizeof t);
	buf_printf(b, "] %llu/%llu", (unsigned long long)H->done, (unsigned long long)H->total);
	if (H->failed)
		buf_printf(b, " · %s%llu failed%s", col(H, "\033[31m"), (unsigned long long)H->failed,
			   col(H, "\033[0m"));
	buf_printf(b, " · %zu running · %s", H->n_run, t);
}

static void summary(struct human *H, const struct event *e)
{
	char t[32];
	fprintf(H->f, "\n%ssummary%s\n", col(H, "\033[1m"), col(H, "\033[0m"));
	summary_tree(H);
	for (size_t i = 0; i < H->n_fails; i++) {
		struct failure *f = &H->fails[i];
		fprintf(H->f, "\n%s✗ %s%s%s: %s\n", col(H, f->tolerated ? "\033[33m" : "\033[31m"), f->shown ? f->shown : f->step,
			f->tolerated ? " (tolerated)" : "", col(H, "\033[0m"),
			f->reason);
		if (f->command) {
			fputs("  ", H->f);
			put_command(H, f->command, H->o.verbose, "    ");
			fputc('\n', H->f);
		}
		size_t start = (f->tail.next + TAIL_LINES - f->tail.count) % TAIL_LINES;
		if (f->tail.count)
			fprintf(H->f, "  last %zu line%s of output:\n", f->tail.count, f->tail.count == 1 ? "" : "s");
		for (size_t k = 0; k < f->tail.count; k++)
			fprintf(H->f, "  %s│%s %s\n", col(H, "\033[2m"), col(H, "\033[0m"),
				f->tail.lines[(start + k) % TAIL_LINES]);
	}
	size_t shown = 0;
	for (size_t i = 0; i < H->n_fails; i++)
		shown += H->fails[i].final;
	if (H->n_failures > shown)
		fprintf(H->f, "\n… and %zu more failure%s (see --events for all)\n", H->n_failures - shown,
			H->n_failures - shown == 1 ? "" : "s");
	for (size_t i = 0; i < H->n_warnings; i++)
		fprintf(H->f, "\n%s⚠ warning:%s %s\n", col(H, "\033[33m"), col(H, "\033[0m"), H->warnings[i]);
	if (H->n_warnings_more)
		fprintf(H->f, "\n… and %zu more warning%s (see --events for all)\n", H->n_warnings_more,
			H->n_warnings_more == 1 ? "" : "s");
	duration_format(e->duration_ms, t, sizeof t);
	struct buf counts = {0};
	summary_counts(&counts, e->counts, e->n_tolerated);
	fprintf(H->f, "\n%s%s run %s%s in %s (exit %d): %s\n", col(H, status_color(e->status)), status_mark(e->status),
		status_name(e->status), col(H, "\033[0m"), t, e->exit_code_run, counts.data);
	buf_free(&counts);
}

void put_command(struct human *H, const char *c, bool full, const char *cont)
{
	size_t first = strcspn(c, "\n");
	bool more = c[first] == '\n' && c[first + 1] != '\0';
	fprintf(H->f, "%s$ %.*s%s%s", col(H, "\033[36m"), (int)first, c, more && !full ? " …" : "", col(H, "\033[0m"));
	if (!full)
		return;
	for (const char *p = c + first; *p == '\n' && p[1];) {
		p++;
		size_t n = strcspn(p, "\n");
		fprintf(H->f, "\n%s%s%.*s%s", cont, col(H, "\033[36m"), (int)n, p, col(H, "\033[0m"));
		p += n;
	}
}

static void on_task_start(struct human *H, const struct event *e)
{
	if (H->n_run == H->cap_run) {
		H->cap_run = H->cap_run ? H->cap_run * 2 : 16;
		H->run = xrealloc(H->run, H->cap_run * sizeof *H->run);
	}
	struct running *r = &H->run[H->n_run++];
	memset(r, 0, sizeof *r);
	r->task = xstrdup(e->task);
	r->shown = xstrdup(display(H, e->task, e->label));
	r->step = xstrdup(e->step);
	r->command = xstrdup(e->command ? e->command : "");
	r->start_ms = clock_ms();
	if (H->tty && in_fleet(H, e->task) && e->attempt == 1)
		return; /* the fleet's live row counts it */
	live_erase(H);
	fprintf(H->f, "%s[%s]%s ", col(H, "\033[2m"), r->shown, col(H, "\033[0m"));
	struct buf cont = {0};
	buf_printf(&cont, "%s[%s]%s %s>%s ", col(H, "\033[2m"), r->shown, col(H, "\033[0m"), col(H, "\033[36m"),
		   col(H, "\033[0m"));
	put_command(H, r->command, H->o.verbose, cont.data);
	buf_free(&cont);
	if (e->attempt > 1)
		fprintf(H->f, "  (attempt %d)", e->attempt);
	fputc('\n', H->f);
}

/* A copy's end, as people read it: ", 5.2 MB sent", ", changed" or ", unchanged" (empty for other tasks). */
static void copy_note(const struct event *e, char *b, size_t n)
{
	*b = 0;
	if (!e->copy || e->status != ST_SUCCESS)
		return;
	if (!e->changed)
		snprintf(b, n, ", unchanged");
	else if (e->bytes >= 1000000)
		snprintf(b, n, ", %.1f MB sent", (double)e->bytes / 1e6);
	else if (e->bytes)
		snprintf(b, n, ", %llu bytes sent", (unsigned long long)e->bytes);
	else
		snprintf(b, n, ", changed");
}

static void on_task_end(struct human *H, const struct event *e)
{
	struct running *r = find_running(H, e->task);
	const char *shown = r ? r->shown : display(H, e->task, e->label);
	char t[64];
	duration_format(e->duration_ms, t, 32);
	copy_note(e, t + strlen(t), sizeof t - strlen(t));
	bool bad = e->status == ST_FAILED || e->status == ST_TIMEOUT;
	bool quiet = H->tty && !bad && in_fleet(H, e->task);
	if (!quiet)
		live_erase(H);
	if (!quiet)
		fprintf(H->f, "%s[%s]%s %s%s %s%s %s %s%s%s%s\n", col(H, "\033[2m"), shown, col(H, "\033[0m"),
		col(H, e->tolerated ? "\033[33m" : status_color(e->status)), status_mark(e->status),
		status_name(e->status), col(H, "\033[0m"), e->reused ? "earlier, not run again (resume); took" : "in", t,
		bad && e->reason ? ": " : "", bad && e->reason ? e->reason : "",
		e->tolerated ? " (tolerated: the run goes on)" : "");
	if (!r)
		return;
	if (bad) {
		/* keep the last failed attempt of each task, for the summary */
		struct failure *f = NULL;
		for (size_t i = 0; i < H->n_fails; i++)
			if (!strcmp(H->fails[i].step, e->task))
				f = &H->fails[i];
		if (!f && H->n_fails < MAX_FAILURE_DETAILS)
			f = &H->fails[H->n_fails++]; /* past that, the summary only counts it (at its step's end) */
		if (f) {
			free(f->step);
			free(f->shown);
			free(f->reason);
			tail_free(&f->tail);
			f->step = xstrdup(e->task);
			f->shown = xstrdup(shown);
			f->reason = xstrdup(e->reason ? e->reason : status_name(e->status));
			free(f->command);
			f->command = r->command;
			r->command = NULL;
			f->tail = r->tail;
			f->final = false;
			f->tolerated = e->tolerated;
			memset(&r->tail, 0, sizeof r->tail);
		}
	}
	free(r->task);
	free(r->shown);
	free(r->step);
	free(r->command);
	tail_free(&r->tail);
	*r = H->run[--H->n_run];
}

static void on_step_end(struct human *H, const struct event *e)
{
	if (event_kind_is_task(e->kind)) {
		H->done++;
		if ((e->status == ST_FAILED || e->status == ST_TIMEOUT) && !e->tolerated)
			H->failed++;
	}
	bool bad = e->status == ST_FAILED || e->status == ST_TIMEOUT;
	if (bad && e->reason && e->reason_own) {
		/* a step's own failure with no task to tell it (a `when` that failed, min_success
		 * not met), not a group failing because a child did */
		bool known = false;
		for (size_t i = 0; i < H->n_fails; i++)
			known |= !strcmp(H->fails[i].step, e->step);
		if (!known && H->n_fails < MAX_FAILURE_DETAILS) {
			struct failure *f = &H->fails[H->n_fails++];
			memset(f, 0, sizeof *f);
			f->step = xstrdup(e->step);
			f->shown = xstrdup(display(H, e->step, e->label));
			f->reason = xstrdup(e->reason);
		}
	}
	if (bad && (event_kind_is_task(e->kind) || (e->reason && e->reason_own))) {
		/* one failure per task or step, counted once, when no retry can undo it */
		H->n_failures++;
		for (size_t i = 0; i < H->n_fails; i++)
			if (!strcmp(H->fails[i].step, e->step))
				H->fails[i].final = true;
	}
	if (e->status == ST_SUCCESS) {
		/* a step that failed and then passed on a retry is not a failure */
		for (size_t i = 0; i < H->n_fails; i++)
			if (!strcmp(H->fails[i].step, e->step)) {
				free(H->fails[i].step);
				free(H->fails[i].shown);
				free(H->fails[i].reason);
				free(H->fails[i].command);
				tail_free(&H->fails[i].tail);
				H->fails[i] = H->fails[--H->n_fails];
				memset(&H->fails[H->n_fails], 0, sizeof H->fails[0]);
				break;
			}
	}
	struct entry *x = entry_for(H, e);
	if (x) {
		x->status = e->status;
		x->duration_ms = e->duration_ms;
		x->ended = true;
		x->tolerated = e->tolerated;
	}
	if (e->depth == 1) {
		if (H->o.github && H->open_group) {
			live_erase(H);
			fputs("::endgroup::\n", H->f);
			free(H->open_group);
			H->open_group = NULL;
		}
	}
}

/*
 * Makes a field visible in the buffer of its slot (or returns it as it is
 * when nothing in it needs showing); *len, when given, is its length in and out.
 */
static const char *visible(struct human *H, int slot, const char *s, size_t *len)
{
	if (!s)
		return NULL;
	size_t n = len ? *len : strlen(s);
	if (str_is_visible(s, n))
		return s;
	struct buf *b = &H->clean[slot];
	buf_reset(b);
	str_visible(b, s, n);
	if (len)
		*len = b->len;
	return b->data;
}

/* A command made visible line by line: its newlines stay, to show its first line. */
static const char *visible_command(struct human *H, const char *s)
{
	if (!s || str_is_visible(s, strlen(s)))
		return s;
	struct buf *b = &H->clean[C_COMMAND];
	buf_reset(b);
	for (const char *p = s;; p++) {
		size_t n = strcspn(p, "\n");
		str_visible(b, p, n);
		p += n;
		if (!*p)
			break;
		buf_addc(b, '\n');
	}
	return b->data;
}

/*
 * The sink's boundary: a copy of e whose strings from outside (plan, step
 * and task ids, names, hosts, items, commands, output, reasons, messages)
 * show every control character instead of sending it to the terminal.
 */
static const struct event *visible_event(struct human *H, const struct event *e, struct event *c)
{
	*c = *e;
	c->plan = visible(H, C_PLAN, e->plan, NULL);
	c->name = visible(H, C_NAME, e->name, NULL);
	c->step = visible(H, C_STEP, e->step, NULL);
	c->kind = visible(H, C_KIND, e->kind, NULL);
	c->task = visible(H, C_TASK, e->task, NULL);
	c->host = visible(H, C_HOST, e->host, NULL);
	c->item = visible(H, C_ITEM, e->item, NULL);
	c->label = visible(H, C_LABEL, e->label, NULL);
	c->command = visible_command(H, e->command);
	c->reason = visible(H, C_REASON, e->reason, NULL);
	c->barrier = visible(H, C_BARRIER, e->barrier, NULL);
	c->message = visible(H, C_MESSAGE, e->message, NULL);
	if (e->line) {
		/* a line that ended in CR LF is shown without the CR */
		c->line_len = e->line_len && e->line[e->line_len - 1] == '\r' ? e->line_len - 1 : e->line_len;
		c->line = visible(H, C_LINE, e->line, &c->line_len);
	}
	return c;
}

/* The labels of a batch's first instances, on the line that says it started. */
static void batch_labels(struct human *H, const struct event *e)
{
	struct buf b = {0};
	size_t n = e->n_instances < BATCH_LABELS ? e->n_instances : BATCH_LABELS;
	for (size_t i = 0; i < n; i++) {
		buf_adds(&b, i ? ", " : ": ");
		str_visible(&b, e->labels[i], strlen(e->labels[i]));
	}
	if (e->n_instances > n)
		buf_printf(&b, ", … %zu more", e->n_instances - n);
	fputs(b.data ? b.data : "", H->f);
	buf_free(&b);
}

/* A warning (an output that failed, lines dropped): kept for the summary; stderr has it already. */
static void on_warning(struct human *H, const struct event *e)
{
	if (H->n_warnings < MAX_WARNINGS)
		H->warnings[H->n_warnings++] = xstrdup(e->message ? e->message : "");
	else
		H->n_warnings_more++;
}

static void human_handle(struct human *H, const struct event *e)
{
	struct running *r;
	switch (e->type) {
	case EV_RUN_START:
		H->total = e->tasks > 0 ? (uint64_t)e->tasks : 0;
		H->start_ms = clock_ms();
		break;
	case EV_STEP_START:
		if (H->tty && e->hosts >= FLEET_MIN) {
			H->fleets = xrealloc(H->fleets, (H->n_fleets + 1) * sizeof *H->fleets);
			H->fleets[H->n_fleets++] = (struct fleet){.id = xstrdup(e->step), .total = e->hosts,
								  .start_ms = clock_ms()};
		} else if (H->tty) {
			const char *host;
			struct fleet *f = fleet_of_instance(H, e->step, &host);
			if (f) {
				if (f->n_run == f->cap_run) {
					f->cap_run = f->cap_run ? 2 * f->cap_run : 16;
					f->run = xrealloc(f->run, f->cap_run * sizeof *f->run);
				}
				f->run[f->n_run++] = (struct fleet_run){xstrdup(host), clock_ms()};
			}
		}
		entry_for(H, e);
		if (e->depth == 1 && H->o.github) {
			live_erase(H);
			fprintf(H->f, "::group::%s%s%s\n", e->step, e->name ? " — " : "", e->name ? e->name : "");
			free(H->open_group);
			H->open_group = xstrdup(e->step);
		}
		break;
	case EV_STEP_END:
		if (H->tty)
			fleet_step_end(H, e);
		on_step_end(H, e);
		break;
	case EV_TASK_START:
		on_task_start(H, e);
		break;
	case EV_TASK_OUTPUT:
		live_erase(H);
		r = find_running(H, e->task);
		put_line(H, r ? r->shown : display(H, e->task, e->label), e->stream_stderr, e->line, e->line_len);
		if (r)
			tail_add(&r->tail, e->line, e->line_len);
		break;
	case EV_TASK_RETRY: {
		live_erase(H);
		char t[32];
		duration_format(e->delay_ms, t, sizeof t);
		fprintf(H->f, "%s[%s]%s %s↻ retrying in %s (attempt %d): %s%s\n", col(H, "\033[2m"),
			display(H, e->task, e->label),
			col(H, "\033[0m"), col(H, "\033[33m"), t, e->attempt, e->reason ? e->reason : "",
			col(H, "\033[0m"));
		break;
	}
	case EV_TASK_END:
		on_task_end(H, e);
		break;
	case EV_PROGRESS:
		/* the scheduler's own counts: tasks only, a tolerated failure apart, the total as it grows */
		H->done = e->done;
		H->failed = e->failed;
		H->total = e->total;
		break;
	case EV_BATCH_START:
	case EV_BATCH_END:
		live_erase(H);
		fprintf(H->f, "%s[%s]%s %sbatch %ld %s (%zu instance%s)", col(H, "\033[2m"), e->step, col(H, "\033[0m"),
			col(H, "\033[35m"), e->batch + 1, e->type == EV_BATCH_START ? "started" : "ended", e->n_instances,
			e->n_instances == 1 ? "" : "s");
		if (e->type == EV_BATCH_START && e->labels)
			batch_labels(H, e);
		if (e->type == EV_BATCH_END && e->failed)
			fprintf(H->f, ", %llu failed", (unsigned long long)e->failed);
		if (e->type == EV_BATCH_END && e->pause_ms) {
			char t[32];
			duration_format(e->pause_ms, t, sizeof t);
			fprintf(H->f, "; next batch in %s", t);
		}
		fprintf(H->f, "%s\n", col(H, "\033[0m"));
		break;
	case EV_BARRIER_WAIT:
	case EV_BARRIER_RELEASE:
		if (H->tty && e->type == EV_BARRIER_WAIT && H->n_fleets && e->expected >= FLEET_MIN)
			break; /* a line per host arriving would flood the screen */
		live_erase(H);
		if (e->type == EV_BARRIER_WAIT) {
			struct buf who = {0};
			event_display_id(&who, e->step, e->label);
			fprintf(H->f, "%s[%s]%s %s⏸ waiting at barrier %s (%llu/%llu)%s\n", col(H, "\033[2m"), who.data,
				col(H, "\033[0m"), col(H, "\033[35m"), e->barrier, (unsigned long long)e->arrived,
				(unsigned long long)e->expected, col(H, "\033[0m"));
			buf_free(&who);
		}
		else
			fprintf(H->f, "%s[%s]%s %s▶ barrier %s released (%llu/%llu)%s\n", col(H, "\033[2m"), e->step,
				col(H, "\033[0m"), col(H, "\033[35m"), e->barrier, (unsigned long long)e->arrived,
				(unsigned long long)e->expected, col(H, "\033[0m"));
		break;
	case EV_WARNING:
		on_warning(H, e);
		break;
	case EV_APPROVE_WAIT:
		live_erase(H);
		fprintf(H->f, "%s⏸ approve %s: %s [y/N]%s\n", col(H, "\033[1;35m"), display(H, e->step, e->label),
			e->message ? e->message : "", col(H, "\033[0m"));
		break;
	case EV_APPROVE_END:
		live_erase(H);
		if (e->approved)
			fprintf(H->f, "%s✓ approved %s (%s)%s\n", col(H, "\033[32m"), display(H, e->step, e->label),
				e->by ? e->by : "", col(H, "\033[0m"));
		else
			fprintf(H->f, "%s✗ not approved %s (%s)%s\n", col(H, "\033[31m"), display(H, e->step, e->label),
				e->by ? e->by : "", col(H, "\033[0m"));
		break;
	case EV_RUN_CANCEL: {
		live_erase(H);
		struct buf b = {0};
		live_cancel_text(H, &b, (size_t)e->running);
		fprintf(H->f, "%s⚠ %s%s\n", col(H, "\033[33m"), b.data, col(H, "\033[0m"));
		buf_free(&b);
		break;
	}
	case EV_TASK_TRANSFER:
		/* the live row's bytes and rate; plain output says nothing (too many) */
		if (H->tty && (r = find_running(H, e->task))) {
			live_transfer(r, e->bytes, e->size, clock_ms());
			live_erase(H); /* redrawn with it at the flush */
		}
		break;
	case EV_TASK_PROCESS:
	case EV_PLAN_TASK:
		break;
	case EV_RUN_END:
		live_erase(H);
		H->ended = true;
		if (H->open_group) {
			fputs("::endgroup::\n", H->f);
			free(H->open_group);
			H->open_group = NULL;
		}
		if (H->o.summary)
			summary(H, e);
		fflush(H->f);
		break;
	}
}

/*
 * --timestamps: what an event printed (in H->stamp) goes out with its time
 * before each line, HH:MM:SS.mmm (UTC, as the event's ts); a GitHub
 * workflow command (::group::) stays at the start of its line.
 */
static void stamp_lines(struct human *H, FILE *out, const char *ts)
{
	if (fflush(H->stamp) != 0) {
		rewind(H->stamp);
		return;
	}
	long len = ftell(H->stamp);
	const char *p = H->stamp_buf, *end = p + (len > 0 ? len : 0);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		if (strncmp(p, "::", 2) != 0)
			fprintf(out, "%s%.12s%s ", col(H, "\033[2m"), strlen(ts) > 11 ? ts + 11 : ts, col(H, "\033[0m"));
		fwrite(p, 1, n, out);
		p += n;
	}
	rewind(H->stamp);
}

static void human_emit(struct sink *s, const struct event *raw)
{
	struct human *H = (struct human *)s;
	struct event copy;
	const struct event *e = visible_event(H, raw, &copy);
	live_track(H, e);
	summary_track(H, e);
	if (!H->stamp || e->type == EV_RUN_END) {
		human_handle(H, e);
		return;
	}
	live_erase(H); /* so that what the event prints is lines only */
	FILE *out = H->f;
	H->f = H->stamp;
	human_handle(H, e);
	H->f = out;
	stamp_lines(H, out, e->ts);
}

static void human_flush(struct sink *s)
{
	struct human *H = (struct human *)s;
	live_draw(H);
	fflush(H->f);
}

static void plain_flush(struct sink *s)
{
	fflush(((struct human *)s)->f);
}

static void human_tick(struct sink *s)
{
	struct human *H = (struct human *)s;
	live_erase(H);
	live_draw(H);
}

static void human_close(struct sink *s)
{
	struct human *H = (struct human *)s;
	live_erase(H);
	fflush(H->f);
	for (size_t i = 0; i < H->n_run; i++) {
		free(H->run[i].task);
		free(H->run[i].shown);
		free(H->run[i].step);
		free(H->run[i].command);
		tail_free(&H->run[i].tail);
	}
	free(H->run);
	for (size_t i = 0; i < H->n_fails; i++) {
		free(H->fails[i].step);
		free(H->fails[i].shown);
		free(H->fails[i].reason);
		free(H->fails[i].command);
		tail_free(&H->fails[i].tail);
	}
	for (size_t i = 0; i < H->n_warnings; i++)
		free(H->warnings[i]);
	for (size_t i = 0; i < H->n_top; i++) {
		free(H->top[i].step);
		free(H->top[i].shown);
		free(H->top[i].name);
	}
	free(H->top);
	for (size_t i = 0; i < H->n_fleets; i++)
		fleet_free(&H->fleets[i]);
	free(H->fleets);
	live_free(H);
	summary_free(H);
	free(H->open_group);
	for (int i = 0; i < C__COUNT; i++)
		buf_free(&H->clean[i]);
	buf_free(&H->shown);
	if (H->stamp)
		fclose(H->stamp);
	free(H->stamp_buf);
	free(H);
}

static struct sink *human_new(FILE *f, const struct human_options *o, bool tty)
{
	struct human *H = xcalloc(1, sizeof *H);
	H->base.emit = human_emit;
	H->base.close = human_close;
	H->base.flush = tty ? human_flush : plain_flush;
	H->base.tick = tty ? human_tick : NULL;
	H->f = f;
	H->o = *o;
	H->tty = tty;
	if (o->timestamps && !(H->stamp = open_memstream(&H->stamp_buf, &H->stamp_len)))
		fprintf(stderr, "baton: --timestamps: %s; lines are shown without their time\n", strerror(errno));
	H->start_ms = clock_ms();
	return &H->base;
}

struct sink *sink_plain_new(FILE *f, const struct human_options *o)
{
	return human_new(f, o, false);
}

struct sink *sink_tty_new(FILE *f, const struct human_options *o)
{
	return human_new(f, o, true);
}

void sink_tty_typed(struct sink *s, const char *typed)
{
	struct human *H = (struct human *)s;
	free(H->ask_typed);
	H->ask_typed = NULL;
	if (typed && *typed) {
		struct buf b = {0};
		str_visible(&b, typed, strlen(typed));
		H->ask_typed = buf_detach(&b);
	}
	live_erase(H);
	live_draw(H);
}

void sink_tty_resize(struct sink *s, int width)
{
	struct human *H = (struct human *)s;
	H->o.width = width; /* first, so the erase counts the rows the old ones wrapped onto */
	live_erase(H);
	live_draw(H);
}
