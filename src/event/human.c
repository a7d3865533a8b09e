/*
 * human.c — the sinks people read: `plain` (every line prefixed with its
 * task id, ::group:: folding on GitHub Actions) and `tty` (the same output
 * scrolling above a live area of running tasks and a progress bar). Both end
 * with a summary: each top-level step's status and duration, and for each
 * failure its reason and the last lines of its output. Every string that
 * came from outside (a plan, a value, a command, a remote side) is made
 * visible (str_visible) as the event comes in, so none can drive the terminal.
 */
#include <stdlib.h>
#include <string.h>

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

static const char *col(const struct human *H, const char *code)
{
	return H->o.color ? code : "";
}

const char *status_color(enum status s)
{
	switch (s) {
	case ST_SUCCESS:
		return "\033[32m";
	case ST_SKIPPED:
	case ST_CANCELLED:
		return "\033[33m";
	default:
		return "\033[31m";
	}
}

const char *status_mark(enum status s)
{
	switch (s) {
	case ST_SUCCESS:
		return "✓";
	case ST_SKIPPED:
		return "-";
	case ST_CANCELLED:
		return "○";
	default:
		return "✗";
	}
}

void summary_row(FILE *f, bool color, const char *sgr, const char *mark, const char *status, int depth,
		 const char *id, const char *duration, const char *note)
{
	int indent = 2 * (depth - 1);
	int idw = 34 - indent > 10 ? 34 - indent : 10;
	fprintf(f, "  %s%s %-10s%s %*s%-*s %8s%s%s\n", color ? sgr : "", mark, status, color ? "\033[0m" : "", indent,
		"", idw, id, duration, note ? "  " : "", note ? note : "");
}

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

static void tail_free(struct tail *t)
{
	for (size_t i = 0; i < TAIL_LINES; i++)
		free(t->lines[i]);
	memset(t, 0, sizeof *t);
}

/* id with its instance's label, as people see it (event_display_id); valid until the next call. */
static const char *display(struct human *H, const char *id, const char *label)
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

/* The fleet whose instance is `id` (STEP@HOST), or NULL; *host points at HOST. */
static struct fleet *fleet_of_instance(struct human *H, const char *id, const char **host)
{
	for (size_t i = 0; i < H->n_fleets; i++) {
		size_t n = strlen(H->fleets[i].id);
		if (!strncmp(id, H->fleets[i].id, n) && id[n] == '@' && !strpbrk(id + n + 1, "@#")) {
			*host = id + n + 1;
			return &H->fleets[i];
		}
	}
	return NULL;
}

/* True when a task (or step) id lies inside a fleet: FLEET[.STEP...]@HOST. */
static bool in_fleet(const struct human *H, const char *id)
{
	const char *at = strchr(id, '@');
	if (!at)
		return false;
	size_t len = (size_t)(at - id);
	for (size_t i = 0; i < H->n_fleets; i++) {
		size_t n = strlen(H->fleets[i].id);
		if (n <= len && !strncmp(id, H->fleets[i].id, n) && (n == len || id[n] == '.'))
			return true;
	}
	return false;
}

static void fleet_free(struct fleet *f)
{
	for (size_t i = 0; i < f->n_run; i++)
		free(f->run[i].host);
	free(f->run);
	free(f->id);
}

/* The terminal's width in columns. */
static int term_cols(const struct human *H)
{
	return H->o.width > 20 ? H->o.width : 80;
}

/*
 * Removes the live area from the screen so ordinary output can scroll. After
 * the terminal narrowed, a row wider than it was wrapped onto several lines
 * (terminals reflow their lines), and all of them go.
 */
static void live_erase(struct human *H)
{
	if (!H->tty || !H->live_rows)
		return;
	int width = term_cols(H), lines = 0;
	for (int i = 0; i < H->live_rows; i++)
		lines += H->live_cols[i] > width ? (H->live_cols[i] + width - 1) / width : 1;
	fprintf(H->f, "\r\033[%dA\033[J", lines);
	H->live_rows = 0;
}

/* Columns that text takes on a terminal: colour codes take none, a UTF-8 character one. */
static int columns(const char *s, size_t len, size_t *fit, int max)
{
	int cols = 0;
	*fit = len;
	for (size_t i = 0; i < len;) {
		if (s[i] == '\033') { /* our own colour codes: ESC [ ... m */
			while (i < len && s[i] != 'm')
				i++;
			i++;
			continue;
		}
		if (cols == max && *fit == len)
			*fit = i;
		cols++;
		for (i++; i < len && ((unsigned char)s[i] & 0xc0) == 0x80; i++)
			;
	}
	return cols;
}

/* Writes one row of the live area, cut to the terminal's width so that it never wraps. */
static void live_row(struct human *H, struct buf *b)
{
	int max = term_cols(H) - 1;
	size_t fit;
	int cols = columns(b->data ? b->data : "", b->len, &fit, max);
	if (cols > max) {
		fwrite(b->data, 1, fit, H->f);
		fputs(col(H, "\033[0m"), H->f);
		cols = max;
	} else {
		fwrite(b->data ? b->data : "", 1, b->len, H->f);
	}
	fputc('\n', H->f);
	if (H->live_rows < LIVE_MAX)
		H->live_cols[H->live_rows++] = cols;
	buf_reset(b);
}

/* One line of a task's output, already made visible. */
static void put_line(struct human *H, const char *prefix, const char *text, size_t len)
{
	fprintf(H->f, "%s[%s]%s ", col(H, "\033[2m"), prefix, col(H, "\033[0m"));
	fwrite(text, 1, len, H->f);
	fputc('\n', H->f);
}

static void progress_bar(struct human *H, struct buf *b, int width)
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

/* The live row of a fleet: hosts done, failed and running, and the slowest ones. */
static void fleet_row(struct human *H, const struct fleet *f, uint64_t now, struct buf *b)
{
	buf_printf(b, "  %s▸%s %s on %zu hosts: %zu done", col(H, "\033[36m"), col(H, "\033[0m"), f->id, f->total,
		   f->ok + f->failed + f->other);
	if (f->failed)
		buf_printf(b, " · %s%zu failed%s", col(H, "\033[31m"), f->failed, col(H, "\033[0m"));
	buf_printf(b, " · %zu running", f->n_run);
	/* the slowest hosts still running: the ones holding the step up */
	size_t pickf[FLEET_SLOWEST], np = 0;
	for (; np < FLEET_SLOWEST && np < f->n_run; np++) {
		size_t best = SIZE_MAX;
		for (size_t j = 0; j < f->n_run; j++) {
			bool taken = false;
			for (size_t q = 0; q < np; q++)
				taken |= pickf[q] == j;
			if (!taken && (best == SIZE_MAX || f->run[j].start_ms < f->run[best].start_ms))
				best = j;
		}
		pickf[np] = best;
	}
	for (size_t k = 0; k < np; k++) {
		char t[32];
		duration_format(now - f->run[pickf[k]].start_ms, t, sizeof t);
		buf_printf(b, "%s %s %s", k ? "," : " · slowest:", f->run[pickf[k]].host, t);
	}
}

/* Draws the live area: fleets, running tasks with elapsed time, then the progress bar. */
static void live_draw(struct human *H)
{
	if (!H->tty || H->live_rows)
		return;
	int width = term_cols(H);
	uint64_t now = clock_ms();
	struct buf b = {0};
	for (size_t i = 0; i < H->n_fleets && i < FLEET_ROWS; i++) {
		fleet_row(H, &H->fleets[i], now, &b);
		live_row(H, &b);
	}
	size_t n_plain = 0;
	for (size_t j = 0; j < H->n_run; j++)
		n_plain += !in_fleet(H, H->run[j].task);
	size_t shown = n_plain < LIVE_ROWS ? n_plain : LIVE_ROWS;
	/* the longest-running first: they are the ones a person waits for */
	size_t pick[LIVE_ROWS];
	for (size_t k = 0; k < shown; k++) {
		size_t best = SIZE_MAX;
		for (size_t j = 0; j < H->n_run; j++) {
			bool taken = in_fleet(H, H->run[j].task);
			for (size_t q = 0; q < k; q++)
				taken |= pick[q] == j;
			if (!taken && (best == SIZE_MAX || H->run[j].start_ms < H->run[best].start_ms))
				best = j;
		}
		pick[k] = best;
	}
	for (size_t k = 0; k < shown; k++) {
		size_t i = pick[k];
		char t[32];
		duration_format(now - H->run[i].start_ms, t, sizeof t);
		int room = width - 14;
		buf_printf(&b, "  %s▸%s %-*.*s %s%8s%s", col(H, "\033[36m"), col(H, "\033[0m"), room > 10 ? room : 10,
			   room > 10 ? room : 10, H->run[i].shown, col(H, "\033[2m"), t, col(H, "\033[0m"));
		live_row(H, &b);
	}
	if (n_plain > shown) {
		buf_printf(&b, "  %s… and %zu more running%s", col(H, "\033[2m"), n_plain - shown, col(H, "\033[0m"));
		live_row(H, &b);
	}
	progress_bar(H, &b, width);
	live_row(H, &b);
	buf_free(&b);
	fflush(H->f);
}

static void summary(struct human *H, const struct event *e)
{
	char t[32];
	fprintf(H->f, "\n%ssummary%s\n", col(H, "\033[1m"), col(H, "\033[0m"));
	for (size_t i = 0; i < H->n_top; i++) {
		struct entry *x = &H->top[i];
		duration_format(x->duration_ms, t, sizeof t);
		summary_row(H->f, H->o.color, status_color(x->status), status_mark(x->status), status_name(x->status),
			    x->depth, x->shown ? x->shown : x->step,
			    x->status == ST_SKIPPED || !x->ended || (x->status == ST_CANCELLED && !x->duration_ms) ? "" : t,
			    x->name);
	}
	for (size_t i = 0; i < H->n_fails; i++) {
		struct failure *f = &H->fails[i];
		fprintf(H->f, "\n%s✗ %s%s: %s\n", col(H, "\033[31m"), f->shown ? f->shown : f->step, col(H, "\033[0m"),
			f->reason);
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
	r->start_ms = clock_ms();
	if (H->tty && in_fleet(H, e->task) && e->attempt == 1)
		return; /* the fleet's live row counts it */
	live_erase(H);
	/* a script shows its first line, and … when there is more */
	const char *c = e->command ? e->command : "";
	size_t first = strcspn(c, "\n");
	bool more = c[first] == '\n' && c[first + 1] != '\0';
	fprintf(H->f, "%s[%s]%s %s$ %.*s%s%s", col(H, "\033[2m"), r->shown, col(H, "\033[0m"), col(H, "\033[36m"),
		(int)first, c, more ? " …" : "", col(H, "\033[0m"));
	if (e->attempt > 1)
		fprintf(H->f, "  (attempt %d)", e->attempt);
	fputc('\n', H->f);
}

static void on_task_end(struct human *H, const struct event *e)
{
	struct running *r = find_running(H, e->task);
	const char *shown = r ? r->shown : display(H, e->task, e->label);
	char t[32];
	duration_format(e->duration_ms, t, sizeof t);
	bool bad = e->status == ST_FAILED || e->status == ST_TIMEOUT;
	bool quiet = H->tty && !bad && in_fleet(H, e->task);
	if (!quiet)
		live_erase(H);
	if (!quiet)
		fprintf(H->f, "%s[%s]%s %s%s %s%s %s %s%s%s\n", col(H, "\033[2m"), shown, col(H, "\033[0m"),
		col(H, status_color(e->status)), status_mark(e->status), status_name(e->status), col(H, "\033[0m"),
		e->reused ? "earlier, not run again (resume); took" : "in", t, bad && e->reason ? ": " : "",
		bad && e->reason ? e->reason : "");
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
			f->tail = r->tail;
			f->final = false;
			memset(&r->tail, 0, sizeof r->tail);
		}
	}
	free(r->task);
	free(r->shown);
	free(r->step);
	tail_free(&r->tail);
	*r = H->run[--H->n_run];
}

static size_t find_entry(const struct human *H, const char *id)
{
	for (size_t i = H->n_top; i-- > 0;)
		if (!strcmp(H->top[i].step, id))
			return i;
	return SIZE_MAX;
}

/* The entry of a step's parent: a.b#0 is step b of item a#0, or item 0 of the for_each a.b. */
static size_t parent_entry(const struct human *H, const char *id)
{
	const char *hash = strchr(id, '#');
	size_t blen = hash ? (size_t)(hash - id) : strlen(id);
	const char *suf = hash ? hash : "";
	size_t found = SIZE_MAX;
	const char *dot = memrchr(id, '.', blen);
	if (dot) {
		char *c = xasprintf("%.*s%s", (int)(dot - id), id, suf);
		found = find_entry(H, c);
		free(c);
	}
	if (found == SIZE_MAX && *suf) {
		char *c = xstrndup(id, (size_t)(strrchr(id, '#') - id));
		found = find_entry(H, c);
		free(c);
	}
	return found;
}

/* The summary entry of a step, added at its first event; NULL when not kept. */
static struct entry *entry_for(struct human *H, const struct event *e)
{
	for (size_t i = H->n_top; i-- > 0;)
		if (!strcmp(H->top[i].step, e->step))
			return &H->top[i];
	if (H->many && e->depth != 1)
		return NULL;
	if (!H->many && H->n_top >= SUMMARY_ALL_MAX) {
		/* a large plan: keep the top level only, so memory does not grow with it */
		size_t w = 0;
		for (size_t i = 0; i < H->n_top; i++) {
			if (H->top[i].depth == 1) {
				H->top[w++] = H->top[i];
			} else {
				free(H->top[i].step);
				free(H->top[i].shown);
				free(H->top[i].name);
			}
		}
		H->n_top = w;
		H->many = true;
		if (e->depth != 1)
			return NULL;
	}
	H->top = xrealloc(H->top, (H->n_top + 1) * sizeof *H->top);
	/* the display name only when it says more than the id does */
	const char *last = strrchr(e->step, '.');
	last = last ? last + 1 : e->step;
	char *slug = e->name ? str_slug(e->name) : NULL;
	size_t ll = strcspn(last, "#"); /* an item's #INDEX is not part of its name */
	bool same = slug && strlen(slug) == ll && !strncmp(slug, last, ll);
	free(slug);
	/* a step first seen at its end (never started) goes before its descendants */
	size_t at = H->n_top, sl = strlen(e->step);
	for (size_t i = 0; i < H->n_top; i++)
		if (!strncmp(H->top[i].step, e->step, sl) && H->top[i].step[sl] == '.') {
			at = i;
			break;
		}
	if (at == H->n_top) {
		/* otherwise at the end of its parent's block, so an item's steps stay under it */
		size_t p = parent_entry(H, e->step);
		if (p != SIZE_MAX)
			for (at = p + 1; at < H->n_top && H->top[at].depth > H->top[p].depth; at++)
				;
	}
	memmove(&H->top[at + 1], &H->top[at], (H->n_top - at) * sizeof *H->top);
	H->n_top++;
	const char *shown = display(H, e->step, e->label);
	H->top[at] = (struct entry){xstrdup(e->step), strcmp(shown, e->step) ? xstrdup(shown) : NULL,
				    e->name && !same ? xstrdup(e->name) : NULL, e->status, 0, e->depth, false};
	return &H->top[at];
}

static void on_step_end(struct human *H, const struct event *e)
{
	if (!strcmp(e->kind, "run")) {
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
	if (bad && (!strcmp(e->kind, "run") || (e->reason && e->reason_own))) {
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

/* An instance of a fleet ended (counted), or the fleet itself (one line for it all). */
static void fleet_step_end(struct human *H, const struct event *e)
{
	const char *host;
	struct fleet *f = fleet_of_instance(H, e->step, &host);
	if (f) {
		for (size_t i = 0; i < f->n_run; i++)
			if (!strcmp(f->run[i].host, host)) {
				free(f->run[i].host);
				f->run[i] = f->run[--f->n_run];
				break;
			}
		if (e->status == ST_SUCCESS)
			f->ok++;
		else if (e->status == ST_FAILED || e->status == ST_TIMEOUT)
			f->failed++;
		else
			f->other++;
		return;
	}
	for (size_t i = 0; i < H->n_fleets; i++) {
		f = &H->fleets[i];
		if (strcmp(f->id, e->step))
			continue;
		live_erase(H);
		char t[32];
		duration_format(e->duration_ms, t, sizeof t);
		size_t ended = f->ok + f->failed + f->other;
		fprintf(H->f, "%s[%s]%s %s%s on %zu hosts: %zu succeeded, %zu failed, %zu cancelled or skipped, %zu not "
			      "started, in %s%s\n",
			col(H, "\033[2m"), f->id, col(H, "\033[0m"), col(H, status_color(e->status)), status_mark(e->status),
			f->total, f->ok, f->failed, f->other, f->total > ended ? f->total - ended : 0, t, col(H, "\033[0m"));
		fleet_free(f);
		H->fleets[i] = H->fleets[--H->n_fleets];
		return;
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

static void human_emit(struct sink *s, const struct event *raw)
{
	struct human *H = (struct human *)s;
	struct event copy;
	const struct event *e = visible_event(H, raw, &copy);
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
		put_line(H, r ? r->shown : display(H, e->task, e->label), e->line, e->line_len);
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
	case EV_TASK_PROCESS:
	case EV_PLAN_TASK:
		break;
	case EV_RUN_END:
		live_erase(H);
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
		tail_free(&H->run[i].tail);
	}
	free(H->run);
	for (size_t i = 0; i < H->n_fails; i++) {
		free(H->fails[i].step);
		free(H->fails[i].shown);
		free(H->fails[i].reason);
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
	free(H->open_group);
	for (int i = 0; i < C__COUNT; i++)
		buf_free(&H->clean[i]);
	buf_free(&H->shown);
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

void sink_tty_resize(struct sink *s, int width)
{
	struct human *H = (struct human *)s;
	H->o.width = width; /* first, so the erase counts the rows the old ones wrapped onto */
	live_erase(H);
	live_draw(H);
}
