/*
 * model.c — the report model: a run's events folded into what the writers
 * need (tasks per attempt with their output's tail, steps, batches, barrier
 * releases, warnings). Memory per task attempt is bounded: its last
 * REPORT_TAIL_LINES lines of at most REPORT_LINE_MAX bytes each.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report/internal.h"

/* --- text --- */

/*
 * s[0..n) as valid UTF-8: a byte that is not becomes the text \xNN (as the
 * JSON sink writes it), and so does NUL. With max, cut on a character boundary to at most
 * max bytes, with "…" after the cut.
 */
static char *clean(const char *s, size_t n, size_t max)
{
	if (!s)
		return NULL;
	const unsigned char *u = (const unsigned char *)s;
	struct buf b = {0};
	buf_grow(&b, n < 64 ? 64 : n + 1);
	bool cut = false;
	for (size_t i = 0; i < n;) {
		/* NUL would end the text: it is shown as the text \x00 too */
		size_t k = !u[i] ? 0 : u[i] < 0x80 ? 1 : utf8_seq_len(u + i, n - i);
		size_t add = k ? k : 4;
		if (max && b.len + add > max) {
			cut = true;
			break;
		}
		if (k) {
			buf_add(&b, s + i, k);
			i += k;
		} else {
			buf_printf(&b, "\\x%02X", u[i]);
			i++;
		}
	}
	if (cut)
		buf_adds(&b, "\xE2\x80\xA6");
	if (!b.data)
		buf_grow(&b, 1);
	b.data[b.len] = 0;
	return buf_detach(&b);
}

static char *cleans(const char *s)
{
	return s ? clean(s, strlen(s), 0) : NULL;
}

/* --- a string -> index map --- */

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static bool map_get(const struct rmap *m, const char *k, size_t n, size_t *out)
{
	if (!m->cap)
		return false;
	for (size_t i = hash(k, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->keys[i])
			return false;
		if (!strncmp(m->keys[i], k, n) && !m->keys[i][n]) {
			*out = m->vals[i];
			return true;
		}
	}
}

/* Sets k (borrowed: it must live as long as the map) to v. */
static void map_put(struct rmap *m, const char *k, size_t v)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct rmap g = {.cap = m->cap ? m->cap * 2 : 64};
		g.keys = xcalloc(g.cap, sizeof *g.keys);
		g.vals = xcalloc(g.cap, sizeof *g.vals);
		for (size_t i = 0; i < m->cap; i++)
			if (m->keys[i])
				map_put(&g, m->keys[i], m->vals[i]);
		free(m->keys);
		free(m->vals);
		*m = g;
	}
	size_t n = strlen(k);
	size_t i = hash(k, n) & (m->cap - 1);
	while (m->keys[i] && strcmp(m->keys[i], k))
		i = (i + 1) & (m->cap - 1);
	if (!m->keys[i])
		m->n++;
	m->keys[i] = k;
	m->vals[i] = v;
}

static void map_free(struct rmap *m)
{
	free(m->keys);
	free(m->vals);
}

/* --- the model --- */

#define GROW(arr, n, cap)                                                   \
	do {                                                                \
		if ((n) == (cap)) {                                         \
			(cap) = (cap) ? (cap) * 2 : 16;                     \
			(arr) = xrealloc((arr), (cap) * sizeof *(arr));     \
		}                                                           \
	} while (0)

struct report *report_new(void)
{
	struct report *r = xcalloc(1, sizeof *r);
	r->start_epoch_ms = -1;
	r->status = -1;
	r->exit_code = -1;
	return r;
}

static void free_task(struct rtask *t)
{
	free(t->id);
	free(t->step);
	free(t->host);
	free(t->item);
	free(t->label);
	free(t->command);
	free(t->reason);
	for (size_t i = 0; i < REPORT_TAIL_LINES; i++)
		free(t->out[i].text);
}

void report_free(struct report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_tasks; i++)
		free_task(&r->tasks[i]);
	for (size_t i = 0; i < r->n_steps; i++) {
		free(r->steps[i].id);
		free(r->steps[i].kind);
		free(r->steps[i].label);
		free(r->steps[i].reason);
	}
	for (size_t i = 0; i < r->n_batches; i++)
		free(r->batches[i].step);
	for (size_t i = 0; i < r->n_barriers; i++) {
		free(r->barriers[i].barrier);
		free(r->barriers[i].step);
	}
	for (size_t i = 0; i < r->n_warnings; i++)
		free(r->warnings[i]);
	free(r->tasks);
	free(r->steps);
	free(r->batches);
	free(r->barriers);
	free(r->warnings);
	free(r->cases);
	map_free(&r->task_map);
	map_free(&r->step_map);
	free(r->run_id);
	free(r->plan);
	free(r->name);
	free(r->start_iso);
	free(r);
}

/* An event's ts ("2026-11-22T10:00:00.123Z") as ms since the epoch; -1 when it is not one. */
static int64_t ts_ms(const char *ts)
{
	int Y, M, D, h, m, s, ms = 0, n = 0;
	if (sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%n", &Y, &M, &D, &h, &m, &s, &ms, &n) != 7 &&
	    sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &s, &n) != 6)
		return -1;
	struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h, .tm_min = m, .tm_sec = s};
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	return (int64_t)t * 1000 + ms;
}

/* The event's time from the run's start (0 before run.start or without a ts). */
static int64_t rel(const struct report *r, const struct event *e)
{
	int64_t t = ts_ms(e->ts);
	if (t < 0 || r->start_epoch_ms < 0)
		return 0;
	return t - r->start_epoch_ms;
}

/*
 * Marks the steps that contain id as having something inside them; returns
 * how many there are. An id is a path of steps joined by '.', with the
 * #INDEX and @HOST of the instances it is in at its end (deploy#2 holds
 * deploy.push#2, rollout@web1 holds rollout.drain@web1): each shorter path
 * with each leading part of that suffix.
 */
static int mark_parents(struct report *r, const char *id)
{
	size_t len = strlen(id);
	const char *dot = strrchr(id, '.');
	size_t base = dot ? (size_t)(dot - id) : 0;
	base += strcspn(id + base, "#@");
	int n = 0;
	struct buf k = {0};
	for (size_t i = 1; i <= base; i++) {
		if (i < base && id[i] != '.')
			continue;
		for (size_t j = base; j <= len; j++) {
			if ((j < len && id[j] != '#' && id[j] != '@') || (i == base && j == len))
				continue;
			buf_reset(&k);
			buf_add(&k, id, i);
			buf_add(&k, id + base, j - base);
			size_t s;
			if (map_get(&r->step_map, k.data, k.len, &s)) {
				r->steps[s].has_child = true;
				n++;
			}
		}
	}
	buf_free(&k);
	return n;
}

static struct rstep *step_get(struct report *r, const char *id)
{
	size_t k;
	if (map_get(&r->step_map, id, strlen(id), &k))
		return &r->steps[k];
	GROW(r->steps, r->n_steps, r->cap_steps);
	struct rstep *s = &r->steps[r->n_steps];
	*s = (struct rstep){.id = cleans(id), .status = -1, .start_ms = -1, .end_ms = -1};
	s->depth = 1 + mark_parents(r, id);
	map_put(&r->step_map, s->id, r->n_steps);
	r->n_steps++;
	return s;
}

static struct rtask *task_new(struct report *r, const struct event *e, const char *step)
{
	GROW(r->tasks, r->n_tasks, r->cap_tasks);
	size_t idx = r->n_tasks++;
	struct rtask *t = &r->tasks[idx];
	*t = (struct rtask){.id = cleans(e->task), .step = cleans(step), .host = cleans(e->host),
			    .item = cleans(e->item), .label = cleans(e->label), .command = cleans(e->command),
			    .attempt = e->attempt > 0 ? e->attempt : 1, .status = -1, .exit_code = -1,
			    .start_ms = rel(r, e), .end_ms = -1, .prev = -1, .next = -1};
	size_t prev;
	if (map_get(&r->task_map, t->id, strlen(t->id), &prev)) {
		t->prev = (long)prev;
		r->tasks[prev].next = (long)idx;
	} else {
		GROW(r->cases, r->n_cases, r->cap_cases);
		r->cases[r->n_cases++] = (struct rcase){false, idx};
	}
	map_put(&r->task_map, t->id, idx);
	mark_parents(r, t->id);
	size_t k;
	if (map_get(&r->step_map, t->id, strlen(t->id), &k))
		r->steps[k].has_child = true;
	return t;
}

static struct rtask *task_find(struct report *r, const char *id)
{
	size_t k;
	if (!id || !map_get(&r->task_map, id, strlen(id), &k))
		return NULL;
	return &r->tasks[k];
}

/* The step a task id belongs to when no event says: the id without its #INDEX and @HOST. */
static char *step_of(const char *id)
{
	size_t n = strcspn(id, "#@");
	return xstrndup(id, n);
}

static void add_line(struct rtask *t, const struct event *e)
{
	size_t slot;
	if (t->out_n < REPORT_TAIL_LINES) {
		slot = (t->out_head + t->out_n++) % REPORT_TAIL_LINES;
	} else {
		slot = t->out_head;
		t->out_head = (t->out_head + 1) % REPORT_TAIL_LINES;
		t->dropped++;
		free(t->out[slot].text);
	}
	const char *line = e->line ? e->line : "";
	size_t len = e->line ? e->line_len : 0;
	t->out[slot] = (struct rline){clean(line, len, REPORT_LINE_MAX), e->stream_stderr};
}

const struct rline *rtask_line(const struct rtask *t, size_t i)
{
	return &t->out[(t->out_head + i) % REPORT_TAIL_LINES];
}

const struct rtask *rtask_last(const struct report *r, size_t first)
{
	const struct rtask *t = &r->tasks[first];
	while (t->next >= 0)
		t = &r->tasks[t->next];
	return t;
}

static void end_task(struct report *r, const struct event *e)
{
	struct rtask *t = task_find(r, e->task);
	if (!t || t->status >= 0) {
		/* carried over by resume (no task.start), or an end without a start */
		char *step = step_of(e->task ? e->task : "");
		t = task_new(r, e, step);
		free(step);
		int64_t end = rel(r, e);
		t->start_ms = end - (int64_t)e->duration_ms > 0 ? end - (int64_t)e->duration_ms : 0;
	}
	t->status = (int)e->status;
	t->exit_code = e->exit_code;
	t->signal = e->signal;
	t->end_ms = rel(r, e);
	t->duration_ms = e->duration_ms;
	t->tolerated = e->tolerated;
	t->reused = e->reused;
	if (e->attempt > 0)
		t->attempt = e->attempt;
	free(t->reason);
	t->reason = cleans(e->reason);
	if (!t->label && e->label)
		t->label = cleans(e->label);
}

static void end_step(struct report *r, const struct event *e)
{
	struct rstep *s = step_get(r, e->step);
	s->status = (int)e->status;
	s->end_ms = rel(r, e);
	if (!s->kind)
		s->kind = cleans(e->kind);
	if (!s->label && e->label)
		s->label = cleans(e->label);
	free(s->reason);
	s->reason = cleans(e->reason);
	if (s->start_ms < 0 && s->started)
		s->start_ms = s->end_ms - (int64_t)e->duration_ms;
	/* a step skipped or cancelled with nothing of it run is a testcase of its own */
	if ((e->status == ST_SKIPPED || e->status == ST_CANCELLED) && !s->has_child &&
	    !task_find(r, s->id)) {
		GROW(r->cases, r->n_cases, r->cap_cases);
		r->cases[r->n_cases++] = (struct rcase){true, (size_t)(s - r->steps)};
	}
}

static void batch(struct report *r, const struct event *e)
{
	if (e->type == EV_BATCH_END) {
		for (size_t i = r->n_batches; i-- > 0;) {
			struct rbatch *b = &r->batches[i];
			if (b->batch == e->batch && !strcmp(b->step, e->step ? e->step : "") && b->end_ms < 0) {
				b->end_ms = rel(r, e);
				b->failed = e->failed;
				return;
			}
		}
		return;
	}
	GROW(r->batches, r->n_batches, r->cap_batches);
	r->batches[r->n_batches++] = (struct rbatch){.step = clean(e->step ? e->step : "", e->step ? strlen(e->step) : 0, 0),
						     .batch = e->batch, .start_ms = rel(r, e), .end_ms = -1,
						     .instances = e->n_instances};
}

void report_feed(struct report *r, const struct event *e)
{
	switch (e->type) {
	case EV_RUN_START:
		free(r->run_id);
		free(r->plan);
		free(r->name);
		free(r->start_iso);
		r->run_id = cleans(e->run_id);
		r->plan = cleans(e->plan);
		r->name = cleans(e->name);
		r->start_iso = cleans(e->ts);
		r->start_epoch_ms = ts_ms(e->ts);
		r->dry_run = e->dry_run;
		break;
	case EV_STEP_START: {
		if (!e->step)
			break;
		struct rstep *s = step_get(r, e->step);
		s->started = true;
		s->start_ms = rel(r, e);
		if (!s->kind)
			s->kind = cleans(e->kind);
		if (!s->label && e->label)
			s->label = cleans(e->label);
		break;
	}
	case EV_STEP_END:
		if (e->step)
			end_step(r, e);
		break;
	case EV_TASK_START:
		if (e->task)
			task_new(r, e, e->step ? e->step : "");
		break;
	case EV_TASK_OUTPUT: {
		struct rtask *t = task_find(r, e->task);
		if (t && t->status < 0)
			add_line(t, e);
		break;
	}
	case EV_TASK_END:
		if (e->task)
			end_task(r, e);
		break;
	case EV_BATCH_START:
	case EV_BATCH_END:
		batch(r, e);
		break;
	case EV_BARRIER_RELEASE:
		GROW(r->barriers, r->n_barriers, r->cap_barriers);
		r->barriers[r->n_barriers++] = (struct rbarrier){.barrier = cleans(e->barrier ? e->barrier : ""),
								 .step = cleans(e->step ? e->step : ""),
								 .release_ms = rel(r, e), .arrived = e->arrived,
								 .expected = e->expected};
		break;
	case EV_WARNING:
		if (r->n_warnings >= REPORT_MAX_WARNINGS) {
			r->warnings_dropped++;
			break;
		}
		r->warnings = xrealloc(r->warnings, (r->n_warnings + 1) * sizeof *r->warnings);
		r->warnings[r->n_warnings++] = cleans(e->message ? e->message : "");
		break;
	case EV_RUN_END:
		r->ended = true;
		r->status = (int)e->status;
		r->exit_code = e->exit_code_run;
		r->duration_ms = e->duration_ms;
		memcpy(r->counts, e->counts, sizeof r->counts);
		r->n_tolerated = e->n_tolerated;
		break;
	default:
		break;
	}
}

void report_counts(const struct report *r, uint64_t counts[ST__COUNT], uint64_t *tolerated)
{
	uint64_t c[ST__COUNT] = {0};
	uint64_t tol = 0;
	for (size_t i = 0; i < r->n_cases; i++) {
		const struct rcase *k = &r->cases[i];
		int st = k->step ? r->steps[k->idx].status : rtask_last(r, k->idx)->status;
		if (!k->step && rtask_last(r, k->idx)->tolerated)
			tol++;
		else if (st >= 0 && st < ST__COUNT)
			c[st]++;
	}
	if (r->ended) {
		memcpy(counts, r->counts, sizeof c);
		tol = r->n_tolerated;
	} else {
		memcpy(counts, c, sizeof c);
	}
	if (tolerated)
		*tolerated = tol;
}

const char *report_status_name(const struct report *r)
{
	return r->status >= 0 ? status_name((enum status)r->status) : "running";
}
