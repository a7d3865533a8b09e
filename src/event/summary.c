/*
 * summary.c — the end-of-run summary of the human sinks: the tree of steps
 * kept as they start and end (entry_for), and the rows it prints.
 */
#include <stdlib.h>
#include <string.h>

#include "event/human_int.h"

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

/*
 * True when step (or task) id d lies inside step a. An id is a base (the
 * step's full id) and a suffix (the @HOST and #INDEX of the instances it is
 * in): d is inside a when its base is a's, or under it (a.), and its suffix
 * carries a's and goes on from there — the item roll#2 holds roll.one#2,
 * the for_each roll holds roll#2 and roll.one#2.
 */
bool event_id_inside(const char *d, const char *a)
{
	size_t ab = strcspn(a, "@#");
	if (strncmp(d, a, ab))
		return false;
	size_t db = strcspn(d, "@#");
	const char *as = a + ab, *ds = d + db;
	size_t asl = strlen(as);
	if (strncmp(ds, as, asl) || (ds[asl] && ds[asl] != '@' && ds[asl] != '#'))
		return false; /* not in the same instances */
	if (db == ab)
		return ds[asl]; /* an instance of a */
	return db > ab && d[ab] == '.';
}

/* The entry of the innermost step that holds id, or SIZE_MAX. */
static size_t parent_entry(const struct human *H, const char *id)
{
	size_t found = SIZE_MAX;
	for (size_t i = 0; i < H->n_top; i++)
		if (event_id_inside(id, H->top[i].step) &&
		    (found == SIZE_MAX || event_id_inside(H->top[i].step, H->top[found].step)))
			found = i;
	return found;
}

/* The summary entry of a step, added at its first event; NULL when not kept. */
struct entry *entry_for(struct human *H, const struct event *e)
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
	/* a step first seen at its end (never started) goes before what it holds (kept already) */
	size_t at = H->n_top;
	for (size_t i = 0; e->type == EV_STEP_END && i < H->n_top; i++)
		if (event_id_inside(H->top[i].step, e->step)) {
			at = i;
			break;
		}
	if (at == H->n_top && e->depth > 1) {
		/* otherwise at the end of its parent's block, so an item's steps stay under it */
		size_t p = parent_entry(H, e->step);
		if (p != SIZE_MAX)
			for (at = p + 1; at < H->n_top && event_id_inside(H->top[at].step, H->top[p].step); at++)
				;
	}
	memmove(&H->top[at + 1], &H->top[at], (H->n_top - at) * sizeof *H->top);
	H->n_top++;
	const char *shown = display(H, e->step, e->label);
	H->top[at] = (struct entry){xstrdup(e->step), strcmp(shown, e->step) ? xstrdup(shown) : NULL,
				    e->name && !same ? xstrdup(e->name) : NULL, e->status, 0, e->depth, false, false};
	return &H->top[at];
}

static struct fanout *fanout_find(struct human *H, const char *id, size_t len)
{
	for (size_t i = 0; i < H->n_fanouts; i++)
		if (strlen(H->fanouts[i].id) == len && !strncmp(H->fanouts[i].id, id, len))
			return &H->fanouts[i];
	return NULL;
}

/* One instance of f ended after ms: counted, and its time kept (a uniform sample past FANOUT_SAMPLE). */
static void fanout_add(struct human *H, struct fanout *f, bool ok, uint64_t ms)
{
	f->n++;
	f->ok += ok;
	if (f->n == 1 || ms < f->min_ms)
		f->min_ms = ms;
	if (ms > f->max_ms)
		f->max_ms = ms;
	if (f->n_sample < FANOUT_SAMPLE) {
		if ((f->n_sample & (f->n_sample - 1)) == 0) /* grown at each power of two */
			f->sample = xrealloc(f->sample, (f->n_sample ? 2 * f->n_sample : 1) * sizeof *f->sample);
		f->sample[f->n_sample++] = ms;
		return;
	}
	H->rand ^= H->rand << 13; /* xorshift64 */
	H->rand ^= H->rand >> 7;
	H->rand ^= H->rand << 17;
	uint64_t j = H->rand % f->n;
	if (j < FANOUT_SAMPLE)
		f->sample[j] = ms;
}

void summary_track(struct human *H, const struct event *e)
{
	/* every top-level fan-out, and up to FANOUT_MAX others (fan-outs inside items): time and memory stay bounded */
	if (e->type == EV_STEP_START && (e->hosts || (e->kind && !strcmp(e->kind, "for_each"))) &&
	    (e->depth == 1 || H->n_fanouts < FANOUT_MAX) && !fanout_find(H, e->step, strlen(e->step))) {
		H->fanouts = xrealloc(H->fanouts, (H->n_fanouts + 1) * sizeof *H->fanouts);
		H->fanouts[H->n_fanouts++] = (struct fanout){.id = xstrdup(e->step)};
		if (!H->rand)
			H->rand = 0x9e3779b97f4a7c15ull;
		return;
	}
	if (e->type != EV_STEP_END)
		return;
	/* an instance is its fan-out's id and one more @HOST or #INDEX: deploy@web1, roll#3 */
	const char *hash = strrchr(e->step, '#'), *at = strrchr(e->step, '@');
	const char *q = hash > at ? hash : at;
	struct fanout *f = q ? fanout_find(H, e->step, (size_t)(q - e->step)) : NULL;
	if (f)
		fanout_add(H, f, e->status == ST_SUCCESS, e->duration_ms);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* "N instances: min A · median B · max C" of a fan-out. */
static void fanout_note(const struct fanout *f, struct buf *b)
{
	uint64_t *s = xmalloc(f->n_sample * sizeof *s);
	memcpy(s, f->sample, f->n_sample * sizeof *s);
	qsort(s, f->n_sample, sizeof *s, cmp_u64);
	uint64_t med = (s[(f->n_sample - 1) / 2] + s[f->n_sample / 2]) / 2;
	free(s);
	char lo[32], mid[32], hi[32];
	duration_format(f->min_ms, lo, sizeof lo);
	duration_format(med, mid, sizeof mid);
	duration_format(f->max_ms, hi, sizeof hi);
	buf_printf(b, "%llu instances: min %s · median %s · max %s", (unsigned long long)f->n, lo, mid, hi);
}

void summary_tree(struct human *H)
{
	char t[32];
	struct buf note = {0};
	for (size_t i = 0; i < H->n_top; i++) {
		struct entry *x = &H->top[i];
		struct fanout *f = fanout_find(H, x->step, strlen(x->step));
		bool fold = f && f->n >= FANOUT_FOLD_MIN && f->ok == f->n && x->status == ST_SUCCESS && x->ended;
		buf_reset(&note);
		if (x->name)
			buf_printf(&note, "%s%s", x->name, fold ? " · " : "");
		if (fold)
			fanout_note(f, &note);
		duration_format(x->duration_ms, t, sizeof t);
		summary_row(H->f, H->o.color, x->tolerated ? "\033[33m" : status_color(x->status), status_mark(x->status),
			    x->tolerated ? "tolerated" : status_name(x->status),
			    x->depth, x->shown ? x->shown : x->step,
			    x->status == ST_SKIPPED || !x->ended || (x->status == ST_CANCELLED && !x->duration_ms) ? "" : t,
			    note.len ? note.data : NULL);
		/* a fan-out that succeeded in full is its one row: its instances' rows are left out */
		while (fold && i + 1 < H->n_top && event_id_inside(H->top[i + 1].step, x->step))
			i++;
	}
	buf_free(&note);
}

void summary_free(struct human *H)
{
	for (size_t i = 0; i < H->n_fanouts; i++) {
		free(H->fanouts[i].id);
		free(H->fanouts[i].sample);
	}
	free(H->fanouts);
}
