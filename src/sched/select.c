/*
 * select.c — --only and --from at run time. The graph marks steps; when an
 * id names instances (deploy@web2, rollout.install#3), which instances run
 * is known only once a fan-out makes them, so each node asks graph_admits
 * with the instances around it. A fan-out then counts only its selected
 * instances: its batches, min_success and max_failures are of those.
 */
#include <stdlib.h>

#include "sched/internal.h"

/* The instances around n (n's own last, for an instance), outermost first, *depth of them; NULL if none. */
static struct ginst *path_of(const struct snode *n, size_t *depth)
{
	size_t k = 0;
	for (const struct snode *a = n; a; a = a->parent)
		k += a->role == ROLE_INSTANCE;
	*depth = k;
	if (!k)
		return NULL;
	struct ginst *p = xcalloc(k, sizeof *p);
	for (const struct snode *a = n; a; a = a->parent)
		if (a->role == ROLE_INSTANCE)
			p[--k] = (struct ginst){a->host, a->index};
	return p;
}

/* Whether the graph's selection decides per instance for n: not inside handlers, which follow their step. */
static bool by_instance(const struct sched *S, const struct snode *n)
{
	return S->g->sel && !n->in_handler && !step_of(n)->is_handler;
}

void sel_mark(struct sched *S, struct snode *n)
{
	if (!by_instance(S, n)) {
		n->selected = n->g->selected;
		return;
	}
	if (n->parent && !n->parent->selected) {
		n->selected = false; /* what a skipped node holds is skipped with it */
		return;
	}
	size_t depth;
	struct ginst *p = path_of(n, &depth);
	n->selected = depth ? graph_admits(S->g, n->g, p, depth) : n->g->selected;
	free(p);
}

bool sel_fanout_begin(struct sched *S, struct snode *f, size_t n_items, size_t n_hosts)
{
	if (!by_instance(S, f)) {
		if (!f->g->list_known) {
			/* a computed list: the total counted it once per host; now its length is known */
			uint64_t once = f->g->n_runs * n_hosts;
			uint64_t now = f->g->n_runs * n_hosts * n_items;
			S->total = S->total + now >= once ? S->total + now - once : 0;
		}
		return true;
	}
	size_t depth;
	struct ginst *p = path_of(f, &depth);
	char *why = graph_missing_item(S->g, f->g, p, depth, n_items);
	if (why) {
		free(p);
		char *r = xasprintf("for_each: %s", why);
		free(why);
		node_finish(S, f, ST_FAILED, r);
		free(r);
		return false;
	}
	if (!f->g->list_known) {
		/* counted before the run as one item; now the selected ones of the list as it is */
		size_t once = graph_fanout_tasks(S->g, f->g, p, depth, SIZE_MAX);
		size_t now = graph_fanout_tasks(S->g, f->g, p, depth, n_items);
		S->total = S->total + now >= once ? S->total + now - once : 0;
	}
	free(p);
	return true;
}

size_t sel_fanout_counted(struct sched *S, const struct snode *f)
{
	if (f->in_handler || step_of(f)->is_handler)
		return 0; /* a handler's tasks join the total as they run */
	if (!by_instance(S, f))
		return f->selected ? f->g->n_total : 0;
	size_t depth;
	struct ginst *p = path_of(f, &depth);
	size_t n = graph_fanout_tasks(S->g, f->g, p, depth, SIZE_MAX);
	free(p);
	return n;
}

size_t sel_batches(const struct snode *f, const struct batch_spec *b, size_t *sizes)
{
	size_t n = f->nkids, k = f->n_selected;
	if (k == n)
		return batch_sizes(b, n, sizes);
	if (!k) {
		sizes[0] = n; /* every one skipped: one batch, no pauses */
		return 1;
	}
	/* each batch spans its selected instances and the skipped ones before them; the last, those after too */
	size_t *want = xcalloc(k, sizeof *want);
	size_t nb = batch_sizes(b, k, want), at = 0;
	for (size_t i = 0; i < nb; i++) {
		size_t span = 0;
		for (size_t w = want[i]; w && at < n; at++, span++)
			w -= f->kids[at]->selected;
		sizes[i] = span;
	}
	sizes[nb - 1] += n - at;
	free(want);
	return nb;
}

size_t sel_fan_size(const struct snode *p)
{
	return p->role == ROLE_FOREACH ? p->n_selected : p->nkids;
}

size_t sel_amount(const struct snode *p, const struct amount *a)
{
	size_t n = sel_fan_size(p);
	size_t v = amount_of(a, n);
	/* a count written for the whole fan-out asks at most every selected instance */
	return n < p->nkids && v > n ? n : v;
}
