/*
 * show.c — what `baton runs` and `baton status` print: the table of runs,
 * a run's tree of steps and tasks like the end-of-run summary of the live
 * view (the same marks, colours and columns: human.c's summary_row), its
 * failures, counts and, while it runs, what runs, the ETA and the slowest
 * tasks; and both as JSON. Everything read from the store came from outside
 * (plans, hosts, commands): it is made visible (str_visible) before it is
 * shown on a terminal.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/internal.h"
#include "util/util.h"

#define SGR_RESET "\033[0m"
#define SGR_RUNNING "\033[36m"
#define SGR_DIM "\033[2m"
#define SHOW_FAILURES 20 /* failures listed by status; --json has them all */
#define SHOW_RUNNING 8   /* running tasks listed, the longest-running first (the live view's LIVE_ROWS) */
#define SHOW_SLOWEST 5
#define PLAN_COL_MAX 30

/* s made visible, in b (or s itself when nothing in it needs it); "" for NULL. */
static const char *vis(struct buf *b, const char *s)
{
	if (!s)
		return "";
	size_t n = strlen(s);
	if (str_is_visible(s, n))
		return s;
	buf_reset(b);
	str_visible(b, s, n);
	return b->data;
}

static const char *sgr(bool color, const char *code)
{
	return color ? code : "";
}

/* The status a run's state ends with, for its mark and colour; ST__COUNT for running and crashed. */
static enum status state_status(enum run_state s)
{
	switch (s) {
	case RS_SUCCESS:
		return ST_SUCCESS;
	case RS_FAILED:
		return ST_FAILED;
	case RS_CANCELLED:
		return ST_CANCELLED;
	case RS_TIMEOUT:
		return ST_TIMEOUT;
	default:
		return ST__COUNT;
	}
}

static const char *state_color(enum run_state s)
{
	enum status st = state_status(s);
	if (st != ST__COUNT)
		return status_color(st);
	return s == RS_RUNNING ? SGR_RUNNING : "\033[31m";
}

/* How long a run took, or has run so far; 0 when that is not known (crashed). */
static uint64_t run_duration(const struct store_run *r, uint64_t now)
{
	if (r->state == RS_RUNNING)
		return now > r->start_ms ? now - r->start_ms : 0;
	if (r->state == RS_CRASHED || r->end_ms < r->start_ms)
		return 0;
	return r->end_ms - r->start_ms;
}

static void local_time(uint64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (!localtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(out, len, "?");
}

static void iso_time(uint64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char s[32];
	if (!gmtime_r(&t, &tm) || !strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm))
		snprintf(s, sizeof s, "1970-01-01T00:00:00");
	snprintf(out, len, "%s.%03uZ", s, (unsigned)(ms % 1000));
}

/* Columns a UTF-8 string takes (one a character); *cut: the bytes that fit in max columns. */
static size_t utf8_cols(const char *s, size_t max, size_t *cut)
{
	size_t cols = 0;
	*cut = strlen(s);
	for (size_t i = 0; s[i];) {
		if (cols == max && *cut == strlen(s))
			*cut = i;
		cols++;
		for (i++; s[i] && ((unsigned char)s[i] & 0xc0) == 0x80; i++)
			;
	}
	return cols;
}

/* s in exactly width columns: padded, or cut with "…". */
static void put_col(FILE *f, const char *s, size_t width)
{
	size_t cut, cols = utf8_cols(s, width - 1, &cut);
	if (cols > width) {
		fwrite(s, 1, cut, f);
		fputs("…", f);
		return;
	}
	fputs(s, f);
	fprintf(f, "%*s", (int)(width - cols), "");
}

/* "12 ok, 1 failed, 3 skipped": ok always, the others when there are some. */
static void counts_brief(struct buf *b, const struct store_run *r)
{
	buf_printf(b, "%llu ok", (unsigned long long)r->counts[ST_SUCCESS]);
	static const char *const words[ST__COUNT] = {
		[ST_FAILED] = "failed", [ST_TIMEOUT] = "timed out", [ST_CANCELLED] = "cancelled",
		[ST_SKIPPED] = "skipped"};
	if (r->tolerated)
		buf_printf(b, ", %llu tolerated", (unsigned long long)r->tolerated);
	for (int i = ST_FAILED; i < ST__COUNT; i++)
		if (r->counts[i])
			buf_printf(b, ", %llu %s", (unsigned long long)r->counts[i], words[i]);
	if (r->running)
		buf_printf(b, ", %llu %s", (unsigned long long)r->running,
			   r->state == RS_CRASHED ? "unfinished" : "running");
}

static const char *run_plan(const struct store_run *r)
{
	return r->name && *r->name ? r->name : r->plan ? r->plan : "?";
}

void store_show_runs(FILE *f, const struct store_run *v, size_t n, bool color)
{
	if (!n)
		return;
	struct buf b = {0}, c = {0};
	size_t pw = 4, cut;
	for (size_t i = 0; i < n; i++) {
		size_t w = utf8_cols(vis(&b, run_plan(&v[i])), SIZE_MAX, &cut);
		pw = w > pw ? w : pw;
	}
	pw = pw > PLAN_COL_MAX ? PLAN_COL_MAX : pw;
	fprintf(f, "%-23s  ", "ID");
	put_col(f, "PLAN", pw);
	fprintf(f, "  %-9s  %-19s  %8s  %s\n", "STATE", "STARTED", "DURATION", "TASKS");
	uint64_t now = store_now_ms();
	for (size_t i = 0; i < n; i++) {
		const struct store_run *r = &v[i];
		char start[40], dur[32] = "-";
		local_time(r->start_ms, start, sizeof start);
		if (r->state != RS_CRASHED)
			duration_format(run_duration(r, now), dur, sizeof dur);
		buf_reset(&c);
		counts_brief(&c, r);
		fprintf(f, "%-23s  ", vis(&b, r->id));
		put_col(f, vis(&b, run_plan(r)), pw);
		fprintf(f, "  %s%-9s%s  %-19s  %8s  %s\n", sgr(color, state_color(r->state)), run_state_name(r->state),
			sgr(color, SGR_RESET), start, dur, c.data);
	}
	buf_free(&b);
	buf_free(&c);
}

/* A JSON string of s (NULL: null); bytes that are not UTF-8 become the text \xNN, as in the event stream. */
static json_t *jstr(const char *s)
{
	if (!s)
		return json_null();
	json_t *j = json_string(s);
	if (j)
		return j;
	struct buf b = {0};
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x80) {
			buf_addc(&b, (char)*p);
			continue;
		}
		/* the longest valid sequence here, else the byte as \xNN */
		size_t k = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 1;
		char tmp[5] = {0};
		size_t m = 0;
		while (m < k && p[m])
			m++;
		memcpy(tmp, p, m);
		json_t *probe = m == k && k > 1 ? json_string(tmp) : NULL;
		if (probe) {
			buf_add(&b, tmp, k);
			p += k - 1;
			json_decref(probe);
		} else {
			buf_printf(&b, "\\x%02X", *p);
		}
	}
	j = json_string(b.data ? b.data : "");
	buf_free(&b);
	return j ? j : json_null();
}

static json_t *jtime(uint64_t ms)
{
	if (!ms)
		return json_null();
	char t[40];
	iso_time(ms, t, sizeof t);
	return json_string(t);
}

static json_t *run_json(const struct store_run *r, uint64_t now)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", jstr(r->id));
	json_object_set_new(o, "plan", jstr(r->plan));
	json_object_set_new(o, "plan_abs", jstr(r->plan_abs));
	json_object_set_new(o, "name", jstr(r->name));
	json_object_set_new(o, "state", json_string(run_state_name(r->state)));
	json_object_set_new(o, "exit_code", r->exit_code >= 0 ? json_integer(r->exit_code) : json_null());
	json_object_set_new(o, "start", jtime(r->start_ms));
	bool ended = r->state != RS_RUNNING && r->state != RS_CRASHED;
	json_object_set_new(o, "end", ended ? jtime(r->end_ms) : json_null());
	json_object_set_new(o, "duration_ms",
			    r->state == RS_CRASHED ? json_null() : json_integer((json_int_t)run_duration(r, now)));
	json_object_set_new(o, "tasks", r->tasks >= 0 ? json_integer(r->tasks) : json_null());
	json_t *c = json_object();
	for (int i = 0; i < ST__COUNT; i++)
		json_object_set_new(c, status_name((enum status)i), json_integer((json_int_t)r->counts[i]));
	json_object_set_new(c, "tolerated", json_integer((json_int_t)r->tolerated));
	json_object_set_new(o, "counts", c);
	json_object_set_new(o, "running", json_integer((json_int_t)r->running));
	json_object_set_new(o, "resumed_from", jstr(r->resumed_from));
	json_object_set_new(o, "pid", r->pid > 0 ? json_integer(r->pid) : json_null());
	json_object_set_new(o, "user", jstr(r->user));
	json_object_set_new(o, "cwd", jstr(r->cwd));
	return o;
}

/* Writes j (taking it) and a newline; false when f failed. */
static bool put_json(FILE *f, json_t *j)
{
	int rc = json_dumpf(j, f, JSON_INDENT(2));
	json_decref(j);
	fputc('\n', f);
	return rc == 0 && !ferror(f);
}

bool store_show_runs_json(FILE *f, const struct store_run *v, size_t n)
{
	json_t *a = json_array();
	uint64_t now = store_now_ms();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, run_json(&v[i], now));
	return put_json(f, a);
}

/* --- a run's tree --- */

/*
 * One row of the tree: a task (its last attempt; key is where its first
 * started), a step that is not one task, or a step still open that has no
 * row yet (a group ends after its children: while it runs, the event stream
 * tells of it).
 */
struct node {
	const char *id, *kind, *status, *reason;
	const char *label; /* its for_each instance's label, or NULL */
	const struct store_task *t; /* NULL: an open step, from the event stream */
	size_t key;                 /* the earliest row at or under it: siblings go in this order */
	size_t parent, child, next, last_child;
	uint64_t start_ms;    /* its (last attempt's) start */
	uint64_t first_ms;    /* its first attempt's start */
	int depth;
};

#define NONE SIZE_MAX

struct tree {
	struct node *v;
	size_t n, cap;
	size_t *tab; /* id -> node, open addressing, a power of two */
	size_t tab_cap;
	char **own; /* strings the open steps own */
	size_t n_own;
};

static size_t hash_n(const char *s, size_t n)
{
	size_t h = 1469598103934665603u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211u;
	return h;
}

/* The slot of id[0..len): where its node is, or the empty slot where it would go. */
static size_t tree_slot(const struct tree *T, const char *id, size_t len)
{
	size_t m = T->tab_cap - 1;
	for (size_t i = hash_n(id, len) & m;; i = (i + 1) & m) {
		size_t k = T->tab[i];
		if (k == NONE || (!strncmp(T->v[k].id, id, len) && !T->v[k].id[len]))
			return i;
	}
}

static size_t tree_find(const struct tree *T, const char *id, size_t len)
{
	return T->tab_cap ? T->tab[tree_slot(T, id, len)] : NONE;
}

static struct node *tree_add(struct tree *T, const char *id)
{
	if (T->n == T->cap) {
		T->cap = T->cap ? 2 * T->cap : 64;
		T->v = xrealloc(T->v, T->cap * sizeof *T->v);
	}
	if ((T->n + 1) * 2 > T->tab_cap) {
		free(T->tab);
		T->tab_cap = T->tab_cap ? 2 * T->tab_cap : 128;
		while ((T->n + 1) * 2 > T->tab_cap)
			T->tab_cap *= 2;
		T->tab = xmalloc(T->tab_cap * sizeof *T->tab);
		memset(T->tab, 0xff, T->tab_cap * sizeof *T->tab);
		for (size_t i = 0; i < T->n; i++)
			T->tab[tree_slot(T, T->v[i].id, strlen(T->v[i].id))] = i;
	}
	struct node *x = &T->v[T->n];
	memset(x, 0, sizeof *x);
	x->id = id;
	x->parent = x->child = x->next = x->last_child = NONE;
	T->tab[tree_slot(T, id, strlen(id))] = T->n++;
	return x;
}

static void tree_free(struct tree *T)
{
	free(T->v);
	free(T->tab);
	for (size_t i = 0; i < T->n_own; i++)
		free(T->own[i]);
	free(T->own);
}

/*
 * The parent of a row, from its id (man baton-events(7), TASK IDS): an id is
 * a dotted path of steps, then a suffix (@HOST, #INDEX) per enclosing
 * fan-out, outermost first. Going up either drops the path's last step and
 * keeps the suffix (deploy.push#2 is in deploy#2, item 2 of deploy) or drops
 * the suffix's last element (deploy#2 is in deploy, a.b#0#1 in a.b#0): the
 * first of the two that is a row. When neither is (a step with no row, as a
 * group that has not ended), the search goes on up from them. bufs: scratch.
 */
static size_t tree_parent(const struct tree *T, const char *id, struct buf bufs[3])
{
	struct buf *cur = &bufs[0], *c1 = &bufs[1], *c2 = &bufs[2];
	buf_reset(cur);
	buf_adds(cur, id);
	for (;;) {
		const char *s = cur->data;
		size_t len = cur->len, base = strcspn(s, "@#");
		const char *dot = memrchr(s, '.', base);
		buf_reset(c1);
		buf_reset(c2);
		if (dot) {
			buf_add(c1, s, (size_t)(dot - s));
			buf_add(c1, s + base, len - base);
		}
		if (base < len) {
			size_t last = len;
			while (s[last - 1] != '@' && s[last - 1] != '#')
				last--;
			buf_add(c2, s, last - 1);
		}
		size_t k;
		if (dot && (k = tree_find(T, c1->data, c1->len)) != NONE)
			return k;
		if (base < len && (k = tree_find(T, c2->data, c2->len)) != NONE)
			return k;
		if (!dot && base == len)
			return NONE;
		struct buf *next = dot ? c1 : c2;
		buf_reset(cur);
		buf_add(cur, next->data, next->len);
	}
}

/* ms since the epoch of an event's ts (2026-11-23T17:43:00.123Z); 0 when it is not one. */
static uint64_t ts_ms(const char *ts)
{
	struct tm tm = {0};
	unsigned ms = 0;
	if (!ts || sscanf(ts, "%d-%d-%dT%d:%d:%d.%3uZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
			  &tm.tm_sec, &ms) != 7)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	return t < 0 ? 0 : (uint64_t)t * 1000 + ms;
}

static char *own(struct tree *T, const char *s)
{
	T->own = xrealloc(T->own, (T->n_own + 1) * sizeof *T->own);
	return T->own[T->n_own++] = xstrdup(s);
}

/*
 * Steps still open in a run that has not ended: a group's row is written at
 * its end, so while it runs only the event stream knows of it. Its
 * step.start and step.end lines (the run steps' aside: their tasks have
 * rows) say which started and did not end; those with no row join T.
 */
static void open_steps(struct tree *T, struct store *st, const char *run_id)
{
	char *path = store_events_path(st, run_id);
	FILE *f = fopen(path, "re");
	free(path);
	if (!f)
		return;
	struct tree open = {0};
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		bool start = memmem(line, (size_t)len, ",\"type\":\"step.start\",", 21) != NULL;
		if (!start && !memmem(line, (size_t)len, ",\"type\":\"step.end\",", 19))
			continue;
		if (memmem(line, (size_t)len, ",\"kind\":\"run\"", 13))
			continue;
		json_t *e = json_loadb(line, (size_t)len, 0, NULL);
		const char *id = json_string_value(json_object_get(e, "step"));
		if (id && start && tree_find(&open, id, strlen(id)) == NONE) {
			const char *kind = json_string_value(json_object_get(e, "kind"));
			struct node *x = tree_add(&open, own(T, id));
			x->kind = own(T, kind ? kind : "steps");
			const char *label = json_string_value(json_object_get(e, "label"));
			x->label = label ? own(T, label) : NULL;
			x->start_ms = ts_ms(json_string_value(json_object_get(e, "ts")));
			x->status = "running";
		} else if (id && !start) {
			size_t k = tree_find(&open, id, strlen(id));
			if (k != NONE)
				open.v[k].status = NULL; /* ended */
		}
		json_decref(e);
	}
	free(line);
	fclose(f);
	for (size_t i = 0; i < open.n; i++) {
		const struct node *o = &open.v[i];
		if (!o->status || tree_find(T, o->id, strlen(o->id)) != NONE)
			continue;
		struct node *x = tree_add(T, o->id);
		x->kind = o->kind;
		x->label = o->label;
		x->status = o->status;
		x->start_ms = o->start_ms;
		x->key = SIZE_MAX / 2 + i; /* after every row, until a child says where */
	}
	free(open.v);
	free(open.tab);
}

static int by_key(const void *a, const void *b, void *ud)
{
	const struct node *v = ud;
	size_t x = v[*(const size_t *)a].key, y = v[*(const size_t *)b].key;
	return x < y ? -1 : x > y;
}

/*
 * The tree of a run's rows: a node per id (a retried task's last attempt, at
 * the place of its first), each under its parent (tree_parent), siblings in
 * the order of the earliest row under them — so a group, whose row is
 * written when it ends, comes before its first child. Returns the roots'
 * first node (NONE: none).
 */
static size_t tree_build(struct tree *T, const struct store_task *rows, size_t n, struct store *st,
			 const struct store_run *r)
{
	for (size_t i = 0; i < n; i++) {
		const struct store_task *t = &rows[i];
		if (!t->id)
			continue;
		size_t k = tree_find(T, t->id, strlen(t->id));
		struct node *x = k == NONE ? tree_add(T, t->id) : &T->v[k];
		if (k == NONE) {
			x->key = i;
			x->first_ms = t->start_ms;
		}
		x->t = t;
		x->kind = t->kind;
		x->status = t->status ? t->status : "?";
		x->reason = t->reason;
		x->label = t->label;
		x->start_ms = t->start_ms;
	}
	if (r->state == RS_RUNNING || r->state == RS_CRASHED)
		open_steps(T, st, r->id);
	struct buf bufs[3] = {{0}};
	for (size_t i = 0; i < T->n; i++)
		T->v[i].parent = tree_parent(T, T->v[i].id, bufs);
	for (int i = 0; i < 3; i++)
		buf_free(&bufs[i]);
	/* nodes are in the order of their own keys: each lowers its ancestors' down to its own */
	for (size_t i = 0; i < T->n; i++)
		for (size_t p = T->v[i].parent; p != NONE && T->v[p].key > T->v[i].key; p = T->v[p].parent)
			T->v[p].key = T->v[i].key;
	size_t *order = xmalloc((T->n ? T->n : 1) * sizeof *order);
	for (size_t i = 0; i < T->n; i++)
		order[i] = i;
	qsort_r(order, T->n, sizeof *order, by_key, T->v);
	size_t root = NONE, root_last = NONE;
	for (size_t j = 0; j < T->n; j++) {
		size_t i = order[j];
		size_t p = T->v[i].parent;
		size_t *first = p == NONE ? &root : &T->v[p].child, *last = p == NONE ? &root_last : &T->v[p].last_child;
		if (*first == NONE)
			*first = i;
		else
			T->v[*last].next = i;
		*last = i;
	}
	free(order);
	return root;
}

/* --- status --- */

struct status_view {
	FILE *f;
	bool color;
	bool crashed;
	uint64_t now;
	struct tree T;
	struct buf b, d, s;
	size_t *fails; /* failed rows in tree order */
	size_t n_fails;
	size_t done; /* run steps ended */
};

/* x's id as the live view shows it, with its instance's label (event_display_id), made visible. */
static const char *shown(struct status_view *V, const struct node *x)
{
	buf_reset(&V->s);
	event_display_id(&V->s, x->id, x->label);
	return vis(&V->b, V->s.data);
}

static bool is_bad(const char *status)
{
	return !strcmp(status, "failed") || !strcmp(status, "timeout");
}

static void show_node(struct status_view *V, size_t i, int depth)
{
	struct node *x = &V->T.v[i];
	x->depth = depth;
	const char *mark = "?", *label = x->status, *color = "\033[31m";
	char dur[32] = "", note[64] = "";
	bool known = false;
	for (int s = 0; s < ST__COUNT; s++)
		if (!strcmp(x->status, status_name((enum status)s))) {
			mark = status_mark((enum status)s);
			color = status_color((enum status)s);
			known = true;
			uint64_t ms = x->t ? x->t->duration_ms : 0;
			/* a retried task: its step's time, every attempt and the delays between them, as the summary */
			if (x->t && x->t->attempt > 1 && x->t->end_ms > x->first_ms && x->first_ms)
				ms = x->t->end_ms - x->first_ms;
			if (s != ST_SKIPPED && !(s == ST_CANCELLED && !ms))
				duration_format(ms, dur, sizeof dur);
		}
	if (!known && !strcmp(x->status, "running")) {
		if (V->crashed) {
			label = "unfinished";
		} else {
			mark = "▸";
			color = SGR_RUNNING;
			if (x->start_ms)
				duration_format(V->now > x->start_ms ? V->now - x->start_ms : 0, dur, sizeof dur);
		}
	}
	if (x->t && x->t->attempt > 1)
		snprintf(note, sizeof note, "(attempt %d%s)", x->t->attempt, x->t->reused ? ", reused" : "");
	else if (x->t && x->t->reused)
		snprintf(note, sizeof note, "(reused)");
	summary_row(V->f, V->color, color, mark, label, depth, shown(V, x), dur, *note ? note : NULL);
	if (is_bad(x->status) && x->reason) {
		V->fails = xrealloc(V->fails, (V->n_fails + 1) * sizeof *V->fails);
		V->fails[V->n_fails++] = i;
	}
	if (strcmp(x->status, "running") && (!x->kind || !strcmp(x->kind, "run") || !strcmp(x->kind, "copy") || !strcmp(x->kind, "fetch")))
		V->done++;
	for (size_t c = x->child; c != NONE; c = V->T.v[c].next)
		show_node(V, c, depth + 1);
}

static void show_header(struct status_view *V, const struct store_run *r)
{
	FILE *f = V->f;
	char t[40];
	fprintf(f, "run       %s\n", vis(&V->b, r->id));
	if (r->name && *r->name)
		fprintf(f, "plan      %s (%s)\n", vis(&V->b, r->name), vis(&V->d, r->plan));
	else
		fprintf(f, "plan      %s\n", vis(&V->b, r->plan));
	fprintf(f, "state     %s%s%s", sgr(V->color, state_color(r->state)), run_state_name(r->state),
		sgr(V->color, SGR_RESET));
	if (r->state == RS_RUNNING)
		fprintf(f, " (pid %ld, user %s)\n", r->pid, vis(&V->b, r->user));
	else if (r->state == RS_CRASHED)
		fprintf(f, " (its controller, pid %ld, is gone; 'baton resume' re-runs what did not succeed)\n", r->pid);
	else
		fprintf(f, " (exit %d)\n", r->exit_code);
	local_time(r->start_ms, t, sizeof t);
	fprintf(f, "started   %s\n", t);
	if (r->state != RS_CRASHED) {
		duration_format(run_duration(r, V->now), t, sizeof t);
		fprintf(f, "duration  %s%s\n", t, r->state == RS_RUNNING ? " so far" : "");
	}
	if (r->resumed_from)
		fprintf(f, "resumes   %s\n", vis(&V->b, r->resumed_from));
}

static int by_start(const void *a, const void *b, void *ud)
{
	const struct node *v = ud;
	uint64_t x = v[*(const size_t *)a].start_ms, y = v[*(const size_t *)b].start_ms;
	return x < y ? -1 : x > y;
}

static int by_duration(const void *a, const void *b, void *ud)
{
	const struct node *v = ud;
	uint64_t x = v[*(const size_t *)a].t->duration_ms, y = v[*(const size_t *)b].t->duration_ms;
	return x > y ? -1 : x < y;
}

/* While a run runs: progress and ETA, its running tasks (longest-running first), the slowest so far. */
static void show_live(struct status_view *V, const struct store_run *r)
{
	FILE *f = V->f;
	char t[32];
	uint64_t elapsed = run_duration(r, V->now);
	if (r->tasks >= 0) {
		uint64_t total = (uint64_t)r->tasks, done = V->done < total ? V->done : total;
		fprintf(f, "  %llu/%llu tasks done", (unsigned long long)done, (unsigned long long)total);
		if (done && done < total) {
			duration_format(elapsed / done * (total - done), t, sizeof t);
			fprintf(f, " · ETA %s", t);
		}
		fputc('\n', f);
	} else {
		fprintf(f, "  %zu tasks done (the total is not known before the run's lists are)\n", V->done);
	}
	size_t *run = NULL, n_run = 0, *fin = NULL, n_fin = 0;
	for (size_t i = 0; i < V->T.n; i++) {
		const struct node *x = &V->T.v[i];
		if (!x->t || x->kind)
			continue;
		size_t **v = !strcmp(x->status, "running") ? &run : &fin, *n = v == &run ? &n_run : &n_fin;
		*v = xrealloc(*v, (*n + 1) * sizeof **v);
		(*v)[(*n)++] = i;
	}
	if (n_run) {
		qsort_r(run, n_run, sizeof *run, by_start, V->T.v);
		fprintf(f, "\nrunning:\n");
		for (size_t k = 0; k < n_run && k < SHOW_RUNNING; k++) {
			const struct node *x = &V->T.v[run[k]];
			duration_format(V->now > x->start_ms ? V->now - x->start_ms : 0, t, sizeof t);
			fprintf(f, "  %s▸%s %-34s %s%8s%s\n", sgr(V->color, SGR_RUNNING), sgr(V->color, SGR_RESET),
				shown(V, x), sgr(V->color, SGR_DIM), t, sgr(V->color, SGR_RESET));
		}
		if (n_run > SHOW_RUNNING)
			fprintf(f, "  %s… and %zu more running%s\n", sgr(V->color, SGR_DIM), n_run - SHOW_RUNNING,
				sgr(V->color, SGR_RESET));
	}
	if (n_fin) {
		qsort_r(fin, n_fin, sizeof *fin, by_duration, V->T.v);
		fprintf(f, "\nslowest:\n");
		for (size_t k = 0; k < n_fin && k < SHOW_SLOWEST; k++) {
			const struct node *x = &V->T.v[fin[k]];
			duration_format(x->t->duration_ms, t, sizeof t);
			fprintf(f, "    %-34s %8s\n", shown(V, x), t);
		}
	}
	free(run);
	free(fin);
}

bool store_show_status(FILE *f, struct store *st, const struct store_run *r, bool color)
{
	struct status_view V = {.f = f, .color = color, .crashed = r->state == RS_CRASHED, .now = store_now_ms()};
	size_t n;
	struct store_task *rows = store_tasks(st, r->id, false, &n);
	show_header(&V, r);
	size_t root = tree_build(&V.T, rows, n, st, r);
	if (root != NONE)
		fputc('\n', f);
	for (size_t i = root; i != NONE; i = V.T.v[i].next)
		show_node(&V, i, 1);
	if (V.n_fails) {
		fputc('\n', f);
		for (size_t k = 0; k < V.n_fails && k < SHOW_FAILURES; k++) {
			const struct node *x = &V.T.v[V.fails[k]];
			fprintf(f, "%s✗ %s%s: %s\n", sgr(color, "\033[31m"), shown(&V, x), sgr(color, SGR_RESET),
				vis(&V.d, x->reason));
		}
		if (V.n_fails > SHOW_FAILURES)
			fprintf(f, "… and %zu more failure%s (baton status --json lists them all)\n",
				V.n_fails - SHOW_FAILURES, V.n_fails - SHOW_FAILURES == 1 ? "" : "s");
		fprintf(f, "('baton logs %s TASK' prints a task's output)\n", vis(&V.b, r->id));
	}
	struct buf c = {0};
	summary_counts(&c, r->counts, r->tolerated);
	char t[32];
	duration_format(run_duration(r, V.now), t, sizeof t);
	enum status s = state_status(r->state);
	if (s != ST__COUNT)
		fprintf(f, "\n%s%s run %s%s in %s (exit %d): %s\n", sgr(color, status_color(s)), status_mark(s),
			status_name(s), sgr(color, SGR_RESET), t, r->exit_code, c.data);
	else if (r->state == RS_RUNNING)
		fprintf(f, "\n%s▸ running%s for %s: %s, %llu running\n", sgr(color, SGR_RUNNING), sgr(color, SGR_RESET),
			t, c.data, (unsigned long long)r->running);
	else
		fprintf(f, "\n%s✗ run crashed%s: %s, %llu unfinished\n", sgr(color, "\033[31m"), sgr(color, SGR_RESET),
			c.data, (unsigned long long)r->running);
	buf_free(&c);
	if (r->state == RS_RUNNING)
		show_live(&V, r);
	for (size_t i = 0; i < n; i++)
		store_task_free(&rows[i]);
	free(rows);
	free(V.fails);
	tree_free(&V.T);
	buf_free(&V.b);
	buf_free(&V.d);
	buf_free(&V.s);
	return !ferror(f);
}

bool store_show_status_json(FILE *f, struct store *st, const struct store_run *r)
{
	size_t n;
	struct store_task *rows = store_tasks(st, r->id, false, &n);
	json_t *o = json_object(), *a = json_array();
	json_object_set_new(o, "run", run_json(r, store_now_ms()));
	for (size_t i = 0; i < n; i++) {
		const struct store_task *t = &rows[i];
		json_t *j = json_object();
		json_object_set_new(j, "id", jstr(t->id));
		json_object_set_new(j, "kind", jstr(t->kind));
		json_object_set_new(j, "step", jstr(t->step));
		json_object_set_new(j, "host", jstr(t->host));
		json_object_set_new(j, "item", jstr(t->item));
		json_object_set_new(j, "label", jstr(t->label));
		json_object_set_new(j, "status", jstr(t->status));
		json_object_set_new(j, "exit_code", t->exit_code >= 0 ? json_integer(t->exit_code) : json_null());
		json_object_set_new(j, "signal", t->signal ? json_integer(t->signal) : json_null());
		json_object_set_new(j, "reason", jstr(t->reason));
		json_object_set_new(j, "attempt", t->kind ? json_null() : json_integer(t->attempt));
		json_object_set_new(j, "start", jtime(t->start_ms));
		json_object_set_new(j, "end", jtime(t->end_ms));
		json_object_set_new(j, "duration_ms",
				    t->end_ms || t->kind ? json_integer((json_int_t)t->duration_ms) : json_null());
		json_object_set_new(j, "command", jstr(t->command));
		json_object_set_new(j, "reused", json_boolean(t->reused));
		json_array_append_new(a, j);
		store_task_free(&rows[i]);
	}
	free(rows);
	json_object_set_new(o, "tasks", a);
	return put_json(f, o);
}

int store_watch(FILE *f, struct store *st, const char *run_id, bool tty, bool color, char **err)
{
	for (;;) {
		struct store_run r;
		if (!store_find(st, run_id, NULL, &r, err))
			return 1;
		bool ended = r.state != RS_RUNNING;
		if (tty) {
			/* drawn whole, then shown at once: no half-drawn screen */
			char *text = NULL;
			size_t len = 0;
			FILE *m = open_memstream(&text, &len);
			if (!m) {
				*err = xasprintf("cannot draw: %s", strerror(errno));
				store_run_free(&r);
				return 1;
			}
			store_show_status(m, st, &r, color);
			fclose(m);
			fputs("\033[H\033[2J", f);
			fwrite(text, 1, len, f);
			free(text);
		} else if (ended) {
			store_show_status(f, st, &r, color);
		}
		store_run_free(&r);
		if (fflush(f) != 0 || ferror(f))
			return 1;
		if (ended)
			return 0;
		struct timespec ts = {0, 500 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}
