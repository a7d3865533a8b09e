/*
 * graph: compiles a validated plan into the tree the scheduler runs — each
 * step with its inherited modifiers resolved (timeout, retry, shell, cwd,
 * priority, limits) and its selection under --only/--from — and renders that
 * tree for the dry run.
 */
#ifndef BATON_GRAPH_H
#define BATON_GRAPH_H

#include <stdio.h>

#include "plan/plan.h"

/* One node per plan step; the root is the plan's own sequence. */
struct gnode {
	const struct step *step;
	struct gnode *parent;
	struct gnode **kids;
	size_t nkids;
	size_t index; /* position in graph.nodes (pre-order) */
	bool selected; /* false: skipped by --only / --from */

	/* inherited modifiers, resolved */
	uint64_t timeout_ms; /* 0: none */
	uint64_t kill_grace_ms;
	const struct retry_spec *retry;
	const char *shell;
	long priority;
	const unsigned *limiters; /* indexes into graph.limits; [0] is the global one */
	unsigned n_limiters;
	struct gnode *handlers[HANDLER__COUNT]; /* on_success, on_failure, finally */
	size_t n_runs; /* run steps in this subtree, handlers excluded, for progress totals */
	bool list_known; /* a for_each whose list's length was known before the run */
};

struct glimit {
	char *name; /* "concurrency", "max_concurrency of ID", or "semaphore NAME" */
	int capacity;
};

struct graph {
	const struct plan *plan;
	struct gnode *nodes; /* nodes[0] is the root */
	size_t n;
	struct glimit *limits;
	size_t n_limits;
	unsigned *limiter_pool; /* storage behind gnode.limiters */
	size_t n_tasks;  /* tasks known before the run: for_each lists of literal length multiply */
	bool tasks_exact; /* false when a for_each list is only known at run time */
	int concurrency; /* the global limit in force */
};

struct graph_options {
	int concurrency;   /* -j; 0: the plan's or the default */
	const char **only; /* --only full ids */
	size_t n_only;
	const char *from; /* --from full id, or NULL */
};

/*
 * Compiles plan p. Returns NULL and adds a diagnostic when an --only or
 * --from id does not exist. The graph borrows p; free it first.
 */
struct graph *graph_compile(const struct plan *p, const struct graph_options *o, struct diags *d);
void graph_free(struct graph *g);

/* The default global limit: online CPUs, at least 4. */
int graph_default_concurrency(void);

/* Prints the dry-run tree: kinds, modifiers, commands with variables resolved. */
void graph_render(const struct graph *g, const char *const *secrets, size_t n_secrets, FILE *out, bool color);

#endif
