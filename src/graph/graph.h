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
	size_t n_total; /* the tasks the run's total holds for one occurrence of this step: its fan-out multiplied in
			 * (a list known only at run time as one item), selection apart */
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
	int concurrency; /* the global limit in force: local tasks only */
	int max_hosts;   /* remote hosts worked on at once, in force (remote tasks take it instead of concurrency) */
	struct gselection *sel; /* non-NULL when an --only or --from id names instances: see graph_admits */
};

struct graph_options {
	int concurrency;   /* -j; 0: the plan's or the default */
	int max_hosts;     /* --max-hosts; 0: the plan's ssh.max_hosts (default 64) */
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

/*
 * The truthful preview (preview.c; architecture.md "The preview tells the
 * truth"): everything known before the run, evaluated per task — `when` on
 * vars, inputs, env, item and host; each instance of a fan-out with its item,
 * label, host, command, env, shell, cwd and batch — and what is known only at
 * run time, with the references that make it so. Nothing is kept per task:
 * a walk computes each task as it goes, so a for_each over a million items
 * costs time, not memory. Every text it gives is masked.
 */
struct preview;

enum pv_state {
	PV_RUNS,    /* runs, if the steps before it succeed */
	PV_SKIPPED, /* a `when` is false, or --only / --from leave it out */
	PV_RUNTIME, /* whether it runs is known only at run time (a `when` reads steps.…, result, …) */
};
const char *pv_state_name(enum pv_state s);

/* One task the run would start: a run step in one instance of every fan-out around it. */
struct pv_task {
	const char *id; /* STEP[@HOST][#INDEX]…, as the run names it */
	const struct gnode *node;
	const char *host;  /* or NULL */
	const char *item;  /* as text, or NULL */
	long index;        /* the item's index, or -1 */
	const char *label; /* the instance's label (step_label), or NULL outside a for_each */
	const char *command;
	const char *shell; /* "/bin/sh -c" and the like; NULL: an argv, exec'd with no shell */
	const char *cwd;   /* or NULL */
	const char *const *env; /* "K=V" the plan gives it (plan env, defaults, steps), in order */
	size_t n_env;
	long batch;        /* 0-based batch of the innermost batched fan-out around it, or -1 */
	int handler;       /* the enum handler_kind of the continuation it is inside, or -1 */
	enum pv_state state;
	const char *why;     /* skipped or runtime: why */
	const char *runtime; /* the references its command, env or cwd read that are known only at run time, or NULL */
};

/* What a step's `when` is before the run. */
enum pv_when { PVW_NONE, PVW_TRUE, PVW_FALSE, PVW_EACH, PVW_RUNTIME, PVW_ERROR };
const char *pv_when_name(enum pv_when w);

/* One step, as the walk meets it (once per step, not per instance). */
struct pv_step {
	const struct gnode *node;
	int handler;    /* this node is the on_success / on_failure / finally sequence of its parent: its kind; else -1 */
	int depth;      /* top-level steps are 1 */
	enum pv_when when;
	const char *when_why; /* PVW_RUNTIME: the references; PVW_ERROR: the message; PVW_EACH: what it reads */
	bool skipped;         /* every instance of it is skipped: not selected, or a `when` here or above is false */
	/* at step_end: its tasks */
	size_t n_tasks, n_runs, n_skipped, n_runtime;
	bool unknown;           /* some of its tasks are known only at run time (a for_each list around it) */
	bool fails;             /* or never exist: a list around it is not a list, and that for_each fails */
	const char *unknown_why; /* then: why */
};

struct pv_visitor {
	void (*step)(void *ud, const struct pv_step *s);     /* before its tasks and children */
	void (*task)(void *ud, const struct pv_task *t);     /* the first `detail` tasks of each step */
	void (*step_end)(void *ud, const struct pv_step *s); /* after its children: counts filled */
	size_t detail; /* per step; SIZE_MAX: all */
	void *ud;
};

/* The preview of g, masking the n secrets (sorted, as plan_secret_values gives them). Borrows all three. */
struct preview *preview_new(const struct graph *g, const char *const *secrets, size_t n_secrets);
void preview_free(struct preview *pv);
const struct graph *preview_graph(const struct preview *pv);
/* Walks the steps in plan order (children, then handlers), each step's tasks in instance order. */
void preview_walk(const struct preview *pv, const struct pv_visitor *v);

struct pv_counts {
	size_t tasks;    /* tasks outside handlers that are known */
	size_t runs, skipped, runtime; /* of those, by state */
	size_t handler_tasks; /* tasks inside on_success / on_failure / finally */
	bool exact;      /* no for_each list is known only at run time */
	bool fails;      /* a for_each's list is not a list (a --var of the wrong type): the run fails there */
};
void preview_count(const struct preview *pv, struct pv_counts *c);

/* Appends s with the secrets masked and control characters made visible (for text). */
void preview_masked_text(const struct preview *pv, const char *s, size_t len, struct buf *out);
/* Appends s with the secrets masked (for data). */
void preview_masked(const struct preview *pv, const char *s, size_t len, struct buf *out);
/* The plan's name as people see it: "<stdin>" for a plan read from standard input with no name of its own. */
const char *preview_plan_name(const struct preview *pv);

/* The preview as text (render.c): the tree, with tasks listed (a long list cut, with a count). */
void preview_text(const struct preview *pv, FILE *out, bool color);
/* As one JSON document, {"v":1,"kind":"baton.plan",…}, written as it is walked (preview_json.c). */
void preview_json(const struct preview *pv, FILE *out);
/* As a Graphviz digraph of the steps (preview_dot.c). */
void preview_dot(const struct preview *pv, FILE *out);
/* The old entry point: preview_text of a preview of g. */
void graph_render(const struct graph *g, const char *const *secrets, size_t n_secrets, FILE *out, bool color);

#endif
