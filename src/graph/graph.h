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

/* `handlers` of a node whose step has none */
extern struct gnode *const gnode_no_handlers[HANDLER__COUNT];

/* One node per plan step (all in one array); the root is the plan's own sequence. */
struct gnode {
	const struct step *step;
	struct gnode *parent;
	struct gnode **kids;
	uint32_t nkids;
	bool selected; /* false: skipped by --only / --from (in every instance around it, when ids name instances) */
	bool list_known; /* a for_each whose list's length was known before the run */
	size_t index; /* position in graph.nodes (pre-order) */

	/* inherited modifiers, resolved */
	uint64_t timeout_ms; /* 0: none */
	uint64_t kill_grace_ms;
	const struct retry_spec *retry;
	const char *shell;
	int priority;
	unsigned n_limiters;
	const unsigned *limiters; /* indexes into graph.limits; [0] is the global one */
	struct gnode *const *handlers; /* on_success, on_failure, finally; gnode_no_handlers when none */
	size_t n_runs; /* run steps in this subtree, handlers excluded, for progress totals */
};

struct glimit {
	char *name; /* "concurrency", "max_concurrency of ID", or "semaphore NAME" */
	int capacity;
};

struct gselection; /* select.c: --only / --from ids that name instances */

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
	struct gselection *sel; /* non-NULL when an --only or --from id names instances: see graph_admits */
};

struct graph_options {
	int concurrency;   /* -j; 0: the plan's or the default */
	const char **only; /* --only ids: full ids, or task ids (STEP[@HOST][#INDEX]...) */
	size_t n_only;
	const char *from; /* --from id, or NULL */
};

/*
 * Compiles plan p. Returns NULL and adds a diagnostic when an --only or
 * --from id does not exist. The graph borrows p; free it first.
 */
struct graph *graph_compile(const struct plan *p, const struct graph_options *o, struct diags *d);
void graph_free(struct graph *g);

/* The default global limit: online CPUs, at least 4. */
int graph_default_concurrency(void);

/*
 * Selection by instance (select.c). An instance is one host and/or one item
 * of one fan-out (a for_each, an `on:` step); a node at run time sits inside
 * one instance per fan-out around it. Task ids name them as baton prints
 * them: the step's full id, then per fan-out from the outermost down @HOST
 * (with `on:`) and #INDEX (with for_each): deploy@web2, rollout.install#3,
 * rollout.inner#0#1, push@web1#2.
 */
struct ginst {
	long host;  /* inventory index; -1: the fan-out has no `on:` (in an id: any host) */
	long index; /* item index; -1: the fan-out has no for_each (in an id: any item) */
};

/*
 * Whether the node of step n inside the instances path[0..depth) (one per
 * fan-out around it, outermost first; an instance's own comes last) runs
 * under g->sel. Nodes inside handlers are not asked: they follow their step.
 */
bool graph_admits(const struct graph *g, const struct gnode *n, const struct ginst *path, size_t depth);
/*
 * The tasks that run in fan-out f, inside path[0..depth), when its list has
 * n_items items (SIZE_MAX: as counted before the run, when it was not known).
 */
size_t graph_fanout_tasks(const struct graph *g, const struct gnode *f, const struct ginst *path, size_t depth,
			  size_t n_items);
/* NULL, or why an id names an item of fan-out f past the n_items its list has at run time (caller frees). */
char *graph_missing_item(const struct graph *g, const struct gnode *f, const struct ginst *path, size_t depth,
			 size_t n_items);
/*
 * For the dry run: per instance of fan-out n (host-major: host position ×
 * items + index), 1 when it runs inside some instance around n. NULL when
 * ids name no instance or n's list is known only at run time.
 */
const unsigned char *graph_instance_marks(const struct graph *g, const struct gnode *n);
/* Appends the ids that pick among n's own instances ("--only big#5"); false when there is none. */
bool graph_level_ids(const struct graph *g, const struct gnode *n, struct buf *b);

/* Prints the dry-run tree: kinds, modifiers, commands with variables resolved. */
void graph_render(const struct graph *g, const char *const *secrets, size_t n_secrets, FILE *out, bool color);

#endif
