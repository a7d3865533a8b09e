/*
 * Private to src/graph: what graph.c and select.c share. Other modules see
 * only graph.h.
 */
#ifndef BATON_GRAPH_INTERNAL_H
#define BATON_GRAPH_INTERNAL_H

#include "graph/graph.h"

/* One --only or --from id. */
struct gsel {
	char *text; /* as given */
	bool from;
	const struct gnode *node; /* the step it names */
	struct ginst *levels;     /* the instance it names in each of the first n_levels fan-outs around node */
	const struct gnode **fans; /* those fan-outs, outermost first */
	size_t n_levels;
};

struct gselection {
	struct gsel *v;
	size_t n;
	size_t n_nodes;
	size_t *fan_depth;      /* per node: the fan-outs among it and its ancestors */
	size_t *items;          /* per node: its list's length if known before the run, else SIZE_MAX; 1: no list */
	unsigned char **marks;  /* per fan-out with a known list: graph_instance_marks */
	size_t n_tasks;         /* the tasks that run, handlers apart */
};

/*
 * Applies --only and --from: marks gnode.selected and, when an id names
 * instances, sets g->sel. False after adding a diagnostic for each bad id.
 */
bool graph_select(struct graph *g, const struct graph_options *o, struct diags *d);
void graph_selection_free(struct gselection *x);

/*
 * preview.c: the lookup of the contexts known before the run without an
 * instance (vars, inputs, env), ud the struct preview; others are errors,
 * as in an expr_scope.
 */
json_t *preview_lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used,
		       char **err);

#endif
