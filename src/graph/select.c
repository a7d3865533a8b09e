/*
 * select.c — --only and --from. An id is a step's full id, alone (the step
 * and what it contains) or followed by the instance it names in each fan-out
 * around it, outermost first: @HOST for an `on:` step, #INDEX for a for_each,
 * @HOST#INDEX for a step with both — the task ids baton prints. Steps are
 * marked here; instances exist only at run time, so the scheduler asks
 * graph_admits for each node inside one. The task count (and the dry run's
 * marks) are worked out over classes of instances that every id treats
 * alike, never one instance at a time: a list of a million items costs what
 * a list of three does.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

/* Hosts named in an error about an unknown host, at most. */
#define HOSTS_SHOWN 8

static bool is_fan(const struct gnode *n)
{
	return step_is_foreach(n->step);
}

static bool has_items(const struct gnode *n)
{
	return n->step->fan->for_each || n->step->fan->for_each_expr;
}

/* Is a an ancestor of b, or b itself? */
static bool contains(const struct gnode *a, const struct gnode *b)
{
	for (; b; b = b->parent)
		if (a == b)
			return true;
	return false;
}

/* The fan-out at level j (0: the outermost) among n and its ancestors. */
static const struct gnode *fan_at(const struct gselection *X, const struct gnode *n, size_t j)
{
	for (; n; n = n->parent)
		if (is_fan(n) && X->fan_depth[n->index] == j + 1)
			return n;
	return NULL;
}

static long host_pos(const struct step *s, long host)
{
	for (size_t i = 0; i < s->fan->n_hosts; i++)
		if ((long)s->fan->hosts[i] == host)
			return (long)i;
	return -1;
}

/* "items #0..#2", "one item, #0", "no items" */
static char *items_text(size_t n)
{
	if (!n)
		return xstrdup("no items");
	if (n == 1)
		return xstrdup("one item, #0");
	return xasprintf("items #0..#%zu", n - 1);
}

/* ---- what one id says of a node ---- */

/*
 * An id's state along the instances around a node: LIVE while every level
 * compared matched (--only) or was the named instance itself (--from), DEAD
 * once one did not, ALL once a --from id's named instance came before this
 * one (everything inside runs).
 */
enum { SEL_DEAD, SEL_LIVE, SEL_ALL };

/* Id x's state once past instance v of fan-out f, at level j. */
static unsigned char sel_step(const struct gsel *x, unsigned char st, const struct gnode *f, size_t j,
			      const struct ginst *v)
{
	if (st != SEL_LIVE || j >= x->n_levels || x->fans[j] != f)
		return st;
	const struct ginst *c = &x->levels[j];
	if (!x->from) {
		bool match = (c->host < 0 || c->host == v->host) && (c->index < 0 || c->index == v->index);
		return match ? SEL_LIVE : SEL_DEAD;
	}
	/* --from: in the fan-out's order (host-major), the instances before the named one are skipped */
	int cmp = 0;
	if (c->host >= 0 && v->host != c->host)
		cmp = host_pos(f->step, v->host) < host_pos(f->step, c->host) ? -1 : 1;
	else if (c->index >= 0 && v->index != c->index)
		cmp = v->index < c->index ? -1 : 1;
	return cmp < 0 ? SEL_DEAD : cmp > 0 ? SEL_ALL : SEL_LIVE;
}

/* Does id x, in state st, let node n run? Past the instances, the rules for steps. */
static bool sel_lets(const struct gsel *x, unsigned char st, const struct gnode *n)
{
	if (st != SEL_LIVE)
		return st == SEL_ALL;
	if (x->from)
		return n->index >= x->node->index || contains(n, x->node);
	return contains(n, x->node) || contains(x->node, n);
}

static bool any_lets(const struct gselection *X, const unsigned char *st, const struct gnode *n)
{
	for (size_t i = 0; i < X->n; i++)
		if (sel_lets(&X->v[i], st[i], n))
			return true;
	return false;
}

/* Every id's state inside path[0..depth) around node n; st holds X->n. */
static void states_along(const struct gselection *X, const struct gnode *n, const struct ginst *path, size_t depth,
			 unsigned char *st)
{
	memset(st, SEL_LIVE, X->n);
	for (size_t j = 0; j < depth; j++) {
		const struct gnode *f = fan_at(X, n, j);
		if (!f)
			break;
		for (size_t i = 0; i < X->n; i++)
			st[i] = sel_step(&X->v[i], st[i], f, j, &path[j]);
	}
}

bool graph_admits(const struct graph *g, const struct gnode *n, const struct ginst *path, size_t depth)
{
	const struct gselection *X = g->sel;
	if (!X)
		return n->selected;
	unsigned char small[16];
	unsigned char *st = X->n <= sizeof small ? small : xmalloc(X->n);
	states_along(X, n, path, depth, st);
	bool ok = any_lets(X, st, n);
	if (st != small)
		free(st);
	return ok;
}

/* ---- counting and marking over classes of instances ---- */

struct walk {
	const struct gselection *X;
	struct gselection *marks; /* the dry run's pass: marks what runs anywhere; NULL when counting */
	struct gnode *nodes;      /* with marks: the graph's nodes, to mark selected */
};

/* The length of f's list as this pass sees it. */
static size_t list_len(const struct walk *W, const struct gnode *f, size_t depth)
{
	size_t n = W->X->items[f->index];
	if (n != SIZE_MAX)
		return n;
	if (!W->marks)
		return 1; /* as the count before the run has it, until the list is known */
	/* the dry run: room for every item an id names, and one more that none does */
	size_t m = 0;
	for (size_t i = 0; i < W->X->n; i++) {
		const struct gsel *x = &W->X->v[i];
		if (depth < x->n_levels && x->fans[depth] == f && x->levels[depth].index >= 0 &&
		    (size_t)x->levels[depth].index + 1 > m)
			m = (size_t)x->levels[depth].index + 1;
	}
	return m + 1;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * Cuts [0, n) at the k values ids name (sorted in place): each piece, one
 * named value or a run between two, holds values every id treats alike.
 * lo and hi have room for 2k + 1 pieces; returns how many there are.
 */
static size_t pieces(size_t *named, size_t k, size_t n, size_t *lo, size_t *hi)
{
	qsort(named, k, sizeof *named, cmp_size);
	size_t m = 0, at = 0;
	for (size_t i = 0; i < k; i++) {
		size_t v = named[i];
		if (v >= n || v < at)
			continue; /* past the list (known only at run time), or named twice */
		if (at < v)
			lo[m] = at, hi[m++] = v;
		lo[m] = v, hi[m++] = v + 1;
		at = v + 1;
	}
	if (at < n)
		lo[m] = at, hi[m++] = n;
	return m;
}

static size_t walk_node(const struct walk *W, const struct gnode *n, size_t depth, const unsigned char *st);

/* The tasks of n's own run (if it is one) and of its children, handlers apart. */
static size_t walk_body(const struct walk *W, const struct gnode *n, size_t depth, const unsigned char *st)
{
	size_t c = n->step->kind == STEP_RUN ? 1 : 0;
	for (size_t i = 0; i < n->nkids; i++)
		c += walk_node(W, n->kids[i], depth, st);
	return c;
}

/* The instances of fan-out f at level depth, its list n_items long, class by class. */
static size_t walk_fanout(const struct walk *W, const struct gnode *f, size_t depth, const unsigned char *st,
			  size_t n_items)
{
	const struct gselection *X = W->X;
	const struct step *s = f->step;
	size_t nh = s->fan->on ? s->fan->n_hosts : 1, ni = has_items(f) ? n_items : 1;
	size_t k = X->n;
	size_t *hn = xcalloc(k + 1, sizeof *hn), *in = xcalloc(k + 1, sizeof *in);
	size_t nhn = 0, nin = 0;
	for (size_t i = 0; i < k; i++) {
		const struct gsel *x = &X->v[i];
		if (st[i] != SEL_LIVE || depth >= x->n_levels || x->fans[depth] != f)
			continue;
		if (x->levels[depth].host >= 0)
			hn[nhn++] = (size_t)host_pos(s, x->levels[depth].host);
		if (x->levels[depth].index >= 0)
			in[nin++] = (size_t)x->levels[depth].index;
	}
	size_t *hlo = xcalloc(2 * k + 1, sizeof *hlo), *hhi = xcalloc(2 * k + 1, sizeof *hhi);
	size_t *ilo = xcalloc(2 * k + 1, sizeof *ilo), *ihi = xcalloc(2 * k + 1, sizeof *ihi);
	size_t nhp = pieces(hn, nhn, nh, hlo, hhi), nip = pieces(in, nin, ni, ilo, ihi);
	unsigned char *mk = NULL;
	if (W->marks && X->items[f->index] != SIZE_MAX && nh && ni) {
		unsigned char **slot = &W->marks->marks[f->index];
		if (!*slot)
			*slot = xcalloc(nh * ni, 1);
		mk = *slot;
	}
	unsigned char *st2 = xmalloc(k ? k : 1);
	size_t total = 0;
	for (size_t a = 0; a < nhp; a++)
		for (size_t b = 0; b < nip; b++) {
			struct ginst v = {s->fan->on ? (long)s->fan->hosts[hlo[a]] : -1,
					  has_items(f) ? (long)ilo[b] : -1};
			for (size_t i = 0; i < k; i++)
				st2[i] = sel_step(&X->v[i], st[i], f, depth, &v);
			if (!any_lets(X, st2, f))
				continue;
			total += (hhi[a] - hlo[a]) * (ihi[b] - ilo[b]) * walk_body(W, f, depth + 1, st2);
			for (size_t h = hlo[a]; mk && h < hhi[a]; h++)
				memset(mk + h * ni + ilo[b], 1, ihi[b] - ilo[b]);
		}
	free(st2);
	free(hn);
	free(in);
	free(hlo);
	free(hhi);
	free(ilo);
	free(ihi);
	return total;
}

static size_t walk_node(const struct walk *W, const struct gnode *n, size_t depth, const unsigned char *st)
{
	if (!any_lets(W->X, st, n))
		return 0;
	if (W->marks)
		W->nodes[n->index].selected = true;
	if (is_fan(n))
		return walk_fanout(W, n, depth, st, list_len(W, n, depth));
	return walk_body(W, n, depth, st);
}

size_t graph_fanout_tasks(const struct graph *g, const struct gnode *f, const struct ginst *path, size_t depth,
			  size_t n_items)
{
	const struct gselection *X = g->sel;
	if (!X)
		return 0;
	unsigned char *st = xmalloc(X->n ? X->n : 1);
	states_along(X, f, path, depth, st);
	size_t r = 0;
	if (any_lets(X, st, f)) {
		struct walk W = {X, NULL, NULL};
		r = walk_fanout(&W, f, depth, st, n_items == SIZE_MAX ? list_len(&W, f, depth) : n_items);
	}
	free(st);
	return r;
}

char *graph_missing_item(const struct graph *g, const struct gnode *f, const struct ginst *path, size_t depth,
			 size_t n_items)
{
	const struct gselection *X = g->sel;
	if (!X || !has_items(f))
		return NULL;
	unsigned char *st = xmalloc(X->n ? X->n : 1);
	states_along(X, f, path, depth, st);
	char *why = NULL;
	for (size_t i = 0; i < X->n && !why; i++) {
		const struct gsel *x = &X->v[i];
		if (st[i] == SEL_LIVE && depth < x->n_levels && x->fans[depth] == f && x->levels[depth].index >= 0 &&
		    (size_t)x->levels[depth].index >= n_items) {
			char *have = items_text(n_items);
			why = xasprintf("%s %s: the list has %s; there is no #%ld", x->from ? "--from" : "--only",
					x->text, have, x->levels[depth].index);
			free(have);
		}
	}
	free(st);
	return why;
}

const unsigned char *graph_instance_marks(const struct graph *g, const struct gnode *n)
{
	return g->sel ? g->sel->marks[n->index] : NULL;
}

bool graph_level_ids(const struct graph *g, const struct gnode *n, struct buf *b)
{
	const struct gselection *X = g->sel;
	if (!X || !is_fan(n))
		return false;
	size_t level = X->fan_depth[n->index] - 1;
	bool any = false;
	for (size_t i = 0; i < X->n; i++) {
		const struct gsel *x = &X->v[i];
		const struct ginst *c = level < x->n_levels && x->fans[level] == n ? &x->levels[level] : NULL;
		if (c && (c->host >= 0 || c->index >= 0)) {
			buf_printf(b, "%s%s %s", any ? ", " : "", x->from ? "--from" : "--only", x->text);
			any = true;
		}
	}
	return any;
}

/* ---- reading the ids ---- */

/* The form of the ids of step n's instances, as in rollout.loc#INDEX@HOST. */
static char *id_form(const struct gselection *X, const struct gnode *n)
{
	struct buf b = {0};
	buf_adds(&b, n->step->full_id);
	for (size_t j = 0; j < X->fan_depth[n->index]; j++) {
		const struct gnode *f = fan_at(X, n, j);
		if (f->step->fan->on)
			buf_adds(&b, "@HOST");
		if (has_items(f))
			buf_adds(&b, "#INDEX");
	}
	return buf_detach(&b);
}

/* The end of full id f with as many ids as id has (id "b.c", f "a.b.c": "b.c"). */
static const char *id_tail(const char *f, const char *id)
{
	size_t dots = 0;
	for (const char *p = id; *p; p++)
		dots += *p == '.';
	for (const char *p = f + strlen(f); p > f; p--)
		if (p[-1] == '.' && dots-- == 0)
			return p;
	return f;
}

/* The step whose full id ends with ids close to id, when only one does; NULL if none. */
static const char *closest_tail(const struct graph *g, const char **ids, const char *id)
{
	for (size_t i = 1; i < g->n; i++)
		ids[i - 1] = id_tail(g->nodes[i].step->full_id, id);
	const char *tail = closest_name(id, ids, g->n - 1);
	const char *best = NULL;
	for (size_t i = 1; tail && i < g->n; i++)
		if (!strcmp(ids[i - 1], tail)) {
			if (best)
				return NULL; /* more than one: no guess */
			best = g->nodes[i].step->full_id;
		}
	return best;
}

/* A step whose full id is close to id, or ends with ids close to it ('inner' for 'grp.inner'); NULL if none. */
static const char *closest_step(const struct graph *g, const char *id)
{
	if (g->n < 2 || !*id)
		return NULL;
	const char **ids = xmalloc((g->n - 1) * sizeof *ids);
	for (size_t i = 1; i < g->n; i++)
		ids[i - 1] = g->nodes[i].step->full_id;
	const char *best = closest_name(id, ids, g->n - 1);
	if (!best)
		best = closest_tail(g, ids, id);
	free(ids);
	return best;
}

/* Full ids listed in an error about an unknown one, at most. */
#define IDS_SHOWN 8

/* Appends "; full ids: a, b, ... (N in all)" naming the plan's steps, outermost first. */
static void list_steps(const struct graph *g, struct buf *b)
{
	size_t shown = 0;
	for (size_t i = 1; i < g->n && shown < IDS_SHOWN; i++)
		buf_printf(b, "%s%s", shown++ ? ", " : "; full ids: ", g->nodes[i].step->full_id);
	if (g->n - 1 > IDS_SHOWN)
		buf_printf(b, ", ... (%zu in all)", g->n - 1);
}

/* What one id is read against: the graph, its flag and text, and where errors go. */
struct reader {
	struct graph *g;
	const struct gselection *X;
	const char *flag; /* "--only" or "--from" */
	const char *text;
	struct diags *d;
};

static void refuse(const struct reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Adds "FILE: error: FLAG ID: message". */
static void refuse(const struct reader *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct buf b = {0};
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	diags_add(r->d, r->g->plan->file, 0, 0, "%s %s: %s", r->flag, r->text, b.data);
	buf_free(&b);
}

/* The step an id starts with (its first len bytes), or NULL after an error with a guess. */
static const struct step *read_step(const struct reader *r, size_t len)
{
	char *base = xstrndup(r->text, len);
	const struct step *s = *base ? plan_find_step(r->g->plan, base) : NULL;
	if (!s) {
		const char *file = r->g->plan->file;
		const char *hint = closest_step(r->g, base);
		struct buf guess = {0};
		if (hint) /* the whole id, its @HOST#INDEX kept: a task id when it named one */
			buf_printf(&guess, "; did you mean '%s%s'?", hint, r->text + len);
		else
			list_steps(r->g, &guess);
		if (!*base)
			refuse(r, "an id starts with a step's full id (see 'baton plan %s')", file);
		else if (r->text[len])
			refuse(r, "no step with the full id '%s'%s (see 'baton plan %s')", base, guess.data ? guess.data : "", file);
		else
			refuse(r, "no step with that full id%s (see 'baton plan %s')", guess.data ? guess.data : "", file);
		buf_free(&guess);
	}
	free(base);
	return s;
}

/* Reads @HOST at *p for fan-out f into c->host; false after an error. */
static bool read_host(const struct reader *r, const struct step *f, const char **p, struct ginst *c)
{
	size_t len = strcspn(*p + 1, "@#");
	char *name = xstrndup(*p + 1, len);
	*p += 1 + len;
	for (size_t i = 0; i < f->fan->n_hosts && c->host < 0; i++)
		if (!strcmp(r->g->plan->inventory.hosts[f->fan->hosts[i]].name, name))
			c->host = (long)f->fan->hosts[i];
	if (!len) {
		refuse(r, "a host name must follow '@'");
	} else if (c->host < 0 && !f->fan->n_hosts) {
		refuse(r, "%s runs on no host (see --limit)", f->full_id);
	} else if (c->host < 0) {
		struct buf b = {0};
		for (size_t i = 0; i < f->fan->n_hosts && i < HOSTS_SHOWN; i++)
			buf_printf(&b, "%s%s", i ? ", " : "", r->g->plan->inventory.hosts[f->fan->hosts[i]].name);
		if (f->fan->n_hosts > HOSTS_SHOWN)
			buf_printf(&b, ", ... (%zu in all)", f->fan->n_hosts);
		refuse(r, "%s does not run on %s; its hosts: %s", f->full_id, name, b.data);
		buf_free(&b);
	}
	free(name);
	return c->host >= 0;
}

/* Reads #INDEX at *p for fan-out f into c->index; false after an error (past a list known now, too). */
static bool read_index(const struct reader *r, const struct gnode *f, const char **p, struct ginst *c)
{
	const char *digits = *p + 1;
	size_t len = strspn(digits, "0123456789");
	*p += 1 + len;
	if (!len) {
		refuse(r, "an item index (0, 1, ...) must follow '#'");
		return false;
	}
	unsigned long long v = 0;
	bool big = false;
	for (size_t i = 0; i < len && !big; i++) {
		big = v > (unsigned long long)(LONG_MAX / 10);
		v = v * 10 + (unsigned long long)(digits[i] - '0');
	}
	size_t known = r->X->items[f->index];
	if (big || v > (unsigned long long)LONG_MAX || (known != SIZE_MAX && v >= known)) {
		char *have = known != SIZE_MAX ? items_text(known) : xstrdup("fewer items");
		refuse(r, "%s has %s; there is no #%.*s", f->step->full_id, have, (int)len, digits);
		free(have);
		return false;
	}
	c->index = (long)v;
	return true;
}

/* Reads the @HOST and #INDEX parts at p into x's levels, one level per fan-out; false after an error. */
static bool read_levels(const struct reader *r, const char *p, struct gsel *x)
{
	const struct step *s = x->node->step;
	size_t depth = r->X->fan_depth[x->node->index];
	if (!depth) {
		refuse(r, "%s is inside no for_each or on: step, so it has no instances", s->full_id);
		return false;
	}
	for (const struct step *a = s; a; a = a->parent)
		if (a->is_handler) {
			refuse(r, "%s is in a step's %s, which runs as that step does: name the step instead",
			       s->full_id, a->id);
			return false;
		}
	x->levels = xcalloc(depth, sizeof *x->levels);
	x->fans = xcalloc(depth, sizeof *x->fans);
	for (size_t j = 0; j < depth; j++)
		x->fans[j] = fan_at(r->X, x->node, j);
	/* outermost first; a level takes @HOST if its step has on:, then #INDEX if it has for_each */
	for (x->n_levels = 0; *p; x->n_levels++) {
		const struct gnode *f = x->n_levels < depth ? x->fans[x->n_levels] : NULL;
		struct ginst c = {-1, -1};
		bool took = false;
		if (f && *p == '@' && f->step->fan->on) {
			if (!read_host(r, f->step, &p, &c))
				return false;
			took = true;
		}
		if (f && *p == '#' && has_items(f)) {
			if (!read_index(r, f, &p, &c))
				return false;
			took = true;
		}
		if (!took) {
			char *form = id_form(r->X, x->node);
			refuse(r, "no such instance: the ids of %s's instances have the form %s", s->full_id, form);
			free(form);
			return false;
		}
		x->levels[x->n_levels] = c;
	}
	return true;
}

/* Reads one id into x; false after adding a diagnostic. */
static bool parse_id(struct graph *g, const struct gselection *X, const char *flag, const char *text,
		     struct gsel *x, struct diags *d)
{
	struct reader r = {g, X, flag, text, d};
	size_t base_len = strcspn(text, "@#");
	const struct step *s = read_step(&r, base_len);
	if (!s)
		return false;
	x->text = xstrdup(text);
	x->from = !strcmp(flag, "--from");
	x->node = &g->nodes[s->order];
	return !text[base_len] || read_levels(&r, text + base_len, x);
}

/* ---- applying them ---- */

static void select_subtree(struct gnode *n, bool v)
{
	n->selected = v;
	for (size_t i = 0; i < n->nkids; i++)
		select_subtree(n->kids[i], v);
}

static void select_ancestors(struct gnode *n)
{
	for (; n; n = n->parent)
		n->selected = true;
}

/* Before the run: a for_each's list length, when literal or from vars and env. */
static json_t *static_lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used,
			     char **err)
{
	return plan_lookup_static(ud, root, segs, nsegs, used, err);
}

static size_t known_items(const struct graph *g, const struct step *s)
{
	if (s->fan->for_each)
		return json_array_size(s->fan->for_each);
	if (!s->fan->for_each_expr)
		return 1;
	struct expr_scope scope = {static_lookup, (void *)g->plan};
	char *err = NULL;
	json_t *v = expr_eval(s->fan->for_each_expr, &scope, &err);
	free(err);
	size_t n = v && json_is_array(v) ? json_array_size(v) : SIZE_MAX;
	json_decref(v);
	return n;
}

void graph_selection_free(struct gselection *X)
{
	if (!X)
		return;
	for (size_t i = 0; i < X->n; i++) {
		free(X->v[i].text);
		free(X->v[i].levels);
		free(X->v[i].fans);
	}
	free(X->v);
	free(X->fan_depth);
	free(X->items);
	for (size_t i = 0; i < X->n_nodes; i++)
		free(X->marks[i]);
	free(X->marks);
	free(X);
}

bool graph_select(struct graph *g, const struct graph_options *o, struct diags *d)
{
	struct gselection *X = xcalloc(1, sizeof *X);
	X->n_nodes = g->n;
	X->fan_depth = xcalloc(g->n, sizeof *X->fan_depth);
	X->items = xcalloc(g->n, sizeof *X->items);
	X->marks = xcalloc(g->n, sizeof *X->marks);
	for (size_t i = 0; i < g->n; i++) {
		const struct gnode *n = &g->nodes[i]; /* pre-order: the parent's depth is known */
		X->fan_depth[i] = (n->parent ? X->fan_depth[n->parent->index] : 0) + (is_fan(n) ? 1 : 0);
		X->items[i] = known_items(g, n->step); /* 1 without a for_each */
	}
	size_t n_ids = o->n_only + (o->from ? 1 : 0);
	X->v = xcalloc(n_ids ? n_ids : 1, sizeof *X->v);
	bool ok = true, by_instance = false;
	for (size_t i = 0; i < n_ids; i++) {
		bool from = i == o->n_only;
		struct gsel *x = &X->v[X->n];
		if (!parse_id(g, X, from ? "--from" : "--only", from ? o->from : o->only[i], x, d)) {
			ok = false;
			free(x->text);
			free(x->levels);
			free(x->fans);
			memset(x, 0, sizeof *x);
			continue;
		}
		by_instance |= x->n_levels > 0;
		X->n++;
	}
	if (!ok || !by_instance) {
		/* steps only: as ever, no per-instance work at run time */
		select_subtree(&g->nodes[0], false);
		for (size_t i = 0; ok && i < X->n; i++) {
			struct gnode *n = (struct gnode *)X->v[i].node;
			if (X->v[i].from) {
				/* pre-order: the named step and everything after it */
				for (size_t k = n->index; k < g->n; k++)
					g->nodes[k].selected = true;
			} else {
				select_subtree(n, true);
			}
			select_ancestors(n);
		}
		graph_selection_free(X);
		return ok;
	}
	/* a step runs if it runs in some instance; handlers (never walked) follow their step */
	select_subtree(&g->nodes[0], false);
	unsigned char *st = xmalloc(X->n);
	memset(st, SEL_LIVE, X->n);
	struct walk mark = {X, X, g->nodes};
	walk_node(&mark, &g->nodes[0], 0, st);
	struct walk count = {X, NULL, NULL};
	X->n_tasks = walk_node(&count, &g->nodes[0], 0, st);
	free(st);
	g->sel = X;
	return true;
}
