/*
 * graph.c — compiles a plan into the node tree the scheduler walks: resolves
 * inherited modifiers once, assigns each run step the list of limiters it
 * must take together; select.c marks what --only / --from leave out.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

#define DEFAULT_KILL_GRACE_MS 5000

struct gnode *const gnode_no_handlers[HANDLER__COUNT];

int graph_default_concurrency(void)
{
	int n = cpu_count();
	return n < 4 ? 4 : n;
}

struct builder {
	struct graph *g;
	size_t next;
	size_t pool_used;
	size_t pool_cap;
};

static size_t count_steps(const struct step *s)
{
	size_t n = 1;
	for (size_t i = 0; i < s->n_children; i++)
		n += count_steps(s->children[i]);
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (s->handlers[k])
			n += count_steps(s->handlers[k]);
	return n;
}

static unsigned add_limit(struct graph *g, char *name, int cap)
{
	g->limits = xrealloc(g->limits, (g->n_limits + 1) * sizeof *g->limits);
	g->limits[g->n_limits].name = name;
	g->limits[g->n_limits].capacity = cap;
	return (unsigned)g->n_limits++;
}

static unsigned semaphore_limit(struct graph *g, const char *name)
{
	for (size_t i = 0; i < g->plan->n_semaphores; i++)
		if (!strcmp(g->plan->semaphores[i].name, name))
			return (unsigned)(1 + i); /* semaphores follow the global limit */
	return 0;
}

/* Builds node for step s under parent, inheriting what s does not set. */
static struct gnode *build(struct builder *B, const struct step *s, struct gnode *parent, const unsigned *lim,
			   unsigned nlim)
{
	struct graph *g = B->g;
	struct gnode *n = &g->nodes[B->next];
	n->index = B->next++;
	n->step = s;
	n->parent = parent;
	n->selected = true;
	const struct gnode *from = parent;
	const struct step *d = &g->plan->defaults;
	n->timeout_ms = s->has_timeout ? s->timeout_ms : from ? from->timeout_ms : d->has_timeout ? d->timeout_ms : 0;
	n->kill_grace_ms = s->has_kill_grace ? s->mods->kill_grace_ms
			   : from		 ? from->kill_grace_ms
			   : d->has_kill_grace	 ? d->mods->kill_grace_ms
						 : DEFAULT_KILL_GRACE_MS;
	n->retry = s->has_retry ? s->retry : from ? from->retry : d->retry;
	n->shell = s->mods->shell ? s->mods->shell : from ? from->shell : d->mods->shell ? d->mods->shell : "/bin/sh";
	n->priority = s->has_priority ? s->priority : from ? from->priority : 0;

	/* this node's limiters: the inherited ones plus its own max_concurrency and semaphores */
	unsigned extra = (s->max_concurrency ? 1u : 0u) + (unsigned)s->mods->n_semaphores;
	unsigned *mine = (unsigned *)lim;
	unsigned nmine = nlim;
	if (extra) {
		if (B->pool_used + nlim + extra > B->pool_cap) {
			/* pool is sized up front; see graph_compile */
			abort();
		}
		mine = g->limiter_pool + B->pool_used;
		memcpy(mine, lim, nlim * sizeof *lim);
		nmine = nlim;
		if (s->max_concurrency)
			mine[nmine++] = add_limit(g, xasprintf("max_concurrency of %s", s->full_id), s->max_concurrency);
		for (size_t i = 0; i < s->mods->n_semaphores; i++) {
			unsigned id = semaphore_limit(g, s->mods->semaphores[i]);
			bool dup = false;
			for (unsigned k = 0; k < nmine; k++)
				dup |= mine[k] == id;
			if (!dup)
				mine[nmine++] = id;
		}
		B->pool_used += nmine;
	}
	n->limiters = mine;
	n->n_limiters = nmine;
	if (s->n_children) {
		n->kids = xcalloc(s->n_children, sizeof *n->kids);
		n->nkids = s->n_children;
		for (size_t i = 0; i < s->n_children; i++)
			n->kids[i] = build(B, s->children[i], n, mine, nmine);
	}
	/* handlers run with the step's own limits: they hang below it */
	n->handlers = gnode_no_handlers;
	if (s->handlers != step_no_handlers) {
		struct gnode **h = xcalloc(HANDLER__COUNT, sizeof *h);
		for (int k = 0; k < HANDLER__COUNT; k++)
			if (s->handlers[k])
				h[k] = build(B, s->handlers[k], n, mine, nmine);
		n->handlers = h;
	}
	return n;
}

static size_t pool_need(const struct step *s, size_t depth_sum)
{
	size_t extra = (s->max_concurrency ? 1u : 0u) + s->mods->n_semaphores;
	size_t here = extra ? depth_sum + extra : 0;
	size_t total = here;
	for (size_t i = 0; i < s->n_children; i++)
		total += pool_need(s->children[i], depth_sum + extra);
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (s->handlers[k])
			total += pool_need(s->handlers[k], depth_sum + extra);
	return total;
}

static json_t *static_lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used,
			     char **err)
{
	return plan_lookup_static(ud, root, segs, nsegs, used, err);
}

/* Run steps below n (handlers apart), each for_each multiplying by its list's length when known. */
static size_t count_runs(struct graph *g, struct gnode *n)
{
	size_t c = n->step->kind == STEP_RUN ? 1 : 0;
	for (size_t i = 0; i < n->nkids; i++)
		c += count_runs(g, n->kids[i]);
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (n->handlers[k])
			count_runs(g, n->handlers[k]);
	n->n_runs = c;
	if (n->step->fan->on) {
		c *= n->step->fan->n_hosts; /* once per host, and per item on each */
		if (!n->step->fan->for_each && !n->step->fan->for_each_expr)
			n->list_known = true;
	}
	if (n->step->fan->for_each) {
		c *= json_array_size(n->step->fan->for_each);
		n->list_known = true;
	} else if (n->step->fan->for_each_expr) {
		/* a list from vars or env is known now; one from a step's output only at run time */
		struct expr_scope scope = {static_lookup, (void *)g->plan};
		char *err = NULL;
		json_t *v = expr_eval(n->step->fan->for_each_expr, &scope, &err);
		free(err);
		if (v && json_is_array(v)) {
			c *= json_array_size(v);
			n->list_known = true;
		} else {
			g->tasks_exact = false;
		}
		json_decref(v);
	}
	n->n_total = c;
	return n->selected ? c : 0;
}

struct graph *graph_compile(const struct plan *p, const struct graph_options *o, struct diags *d)
{
	struct graph *g = xcalloc(1, sizeof *g);
	g->plan = p;
	g->n = count_steps(p->root);
	g->nodes = xcalloc(g->n, sizeof *g->nodes);
	g->concurrency = o->concurrency > 0 ? o->concurrency : p->concurrency > 0 ? p->concurrency
									 : graph_default_concurrency();
	add_limit(g, xstrdup("concurrency"), g->concurrency);
	g->max_hosts = o->max_hosts > 0 ? o->max_hosts : p->ssh.max_hosts > 0 ? p->ssh.max_hosts : 64;
	for (size_t i = 0; i < p->n_semaphores; i++)
		add_limit(g, xasprintf("semaphore %s", p->semaphores[i].name), p->semaphores[i].capacity);
	struct builder B = {.g = g};
	B.pool_cap = 1 + pool_need(p->root, 1);
	g->limiter_pool = xcalloc(B.pool_cap, sizeof *g->limiter_pool);
	g->limiter_pool[0] = 0; /* the global limit alone */
	B.pool_used = 1;
	build(&B, p->root, NULL, g->limiter_pool, 1);
	if ((o->n_only || o->from) && !graph_select(g, o, d)) {
		graph_free(g);
		return NULL;
	}
	g->tasks_exact = true;
	g->n_tasks = count_runs(g, &g->nodes[0]);
	if (g->sel)
		g->n_tasks = g->sel->n_tasks; /* only the instances that run */
	return g;
}

void graph_free(struct graph *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++) {
		free(g->nodes[i].kids);
		if (g->nodes[i].handlers != gnode_no_handlers)
			free((void *)g->nodes[i].handlers);
	}
	free(g->nodes);
	for (size_t i = 0; i < g->n_limits; i++)
		free(g->limits[i].name);
	free(g->limits);
	free(g->limiter_pool);
	graph_selection_free(g->sel);
	free(g);
}
