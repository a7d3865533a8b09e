/*
 * graph_compile: inherited modifiers, the limiters each task must take,
 * --only / --from selection and the task count.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "graph/graph.h"
#include "helpers.h"

static const char *const plan_src = "concurrency: 6\n"
				    "semaphores: { registry: 2, db: 1 }\n"
				    "defaults:\n"
				    "  timeout: 5m\n"
				    "  retry: 2\n"
				    "  shell: bash\n"
				    "  kill_grace: 3s\n"
				    "steps:\n"
				    "  - id: a\n"
				    "    run: x\n"
				    "  - id: grp\n"
				    "    priority: 5\n"
				    "    timeout: 10s\n"
				    "    retry: { attempts: 4 }\n"
				    "    shell: /bin/zsh\n"
				    "    kill_grace: 1s\n"
				    "    max_concurrency: 2\n"
				    "    semaphore: registry\n"
				    "    steps:\n"
				    "      - id: inner\n"
				    "        run: y\n"
				    "      - id: own\n"
				    "        run: z\n"
				    "        timeout: 1s\n"
				    "        priority: -1\n"
				    "        retry: 0\n"
				    "        semaphore: [db, registry]\n"
				    "  - id: par\n"
				    "    parallel: [p1, p2]\n"
				    "  - id: st\n"
				    "    stages:\n"
				    "      - { name: one, timeout: 2s, priority: 9, max_concurrency: 1, steps: [s1] }\n";

static struct plan *P;
static struct graph *G;

static void teardown(void)
{
	graph_free(G);
	plan_free(P);
	G = NULL;
	P = NULL;
}

static struct graph *compile(const struct graph_options *o)
{
	P = th_load_ok(plan_src);
	struct diags d = {0};
	G = graph_compile(P, o, &d);
	if (!G) {
		char *t = th_diags_text(&d);
		cr_assert_fail("graph_compile failed:\n%s", t);
	}
	cr_assert_eq(d.n, 0);
	diags_free(&d);
	return G;
}

static const struct gnode *node(const struct graph *g, const char *full_id)
{
	const struct step *s = plan_find_step(g->plan, full_id);
	cr_assert_not_null(s, "no step %s", full_id);
	for (size_t i = 0; i < g->n; i++)
		if (g->nodes[i].step == s)
			return &g->nodes[i];
	cr_assert_fail("no node for %s", full_id);
	return NULL;
}

static bool has_limit(const struct graph *g, const struct gnode *n, const char *name)
{
	for (unsigned i = 0; i < n->n_limiters; i++) {
		cr_assert_lt(n->limiters[i], g->n_limits);
		if (!strcmp(g->limits[n->limiters[i]].name, name))
			return true;
	}
	return false;
}

static int limit_capacity(const struct graph *g, const char *name)
{
	for (size_t i = 0; i < g->n_limits; i++)
		if (!strcmp(g->limits[i].name, name))
			return g->limits[i].capacity;
	cr_assert_fail("no limit named %s", name);
	return -1;
}

TestSuite(graph, .fini = teardown);

Test(graph, nodes_mirror_the_plan_in_pre_order)
{
	struct graph_options o = {0};
	struct graph *g = compile(&o);
	cr_assert_eq(g->n, 11, "root + 10 steps");
	cr_assert_eq(g->nodes[0].step, P->root);
	cr_assert_null(g->nodes[0].parent);
	for (size_t i = 0; i < g->n; i++) {
		cr_assert_eq(g->nodes[i].index, i);
		cr_assert(g->nodes[i].selected);
	}
	const struct gnode *grp = node(g, "grp");
	cr_assert_eq(grp->nkids, 2);
	cr_assert_eq(grp->kids[0], node(g, "grp.inner"));
	cr_assert_eq(node(g, "grp.own")->parent, grp);
	cr_assert_eq(g->plan, P);
}

Test(graph, defaults_apply_to_steps_that_set_nothing)
{
	struct graph_options o = {0};
	struct graph *g = compile(&o);
	const struct gnode *a = node(g, "a");
	cr_assert_eq(a->timeout_ms, 300000u);
	cr_assert_eq(a->kill_grace_ms, 3000u);
	cr_assert_not_null(a->retry);
	cr_assert_eq(a->retry->attempts, 3);
	cr_assert_str_eq(a->shell, "bash");
	cr_assert_eq(a->priority, 0);
	const struct gnode *p1 = node(g, "par.run-1");
	cr_assert_eq(p1->timeout_ms, 300000u);
	cr_assert_str_eq(p1->shell, "bash");
}

Test(graph, descendants_inherit_from_ancestors)
{
	struct graph_options o = {0};
	struct graph *g = compile(&o);
	const struct gnode *inner = node(g, "grp.inner");
	cr_assert_eq(inner->timeout_ms, 10000u);
	cr_assert_eq(inner->kill_grace_ms, 1000u);
	cr_assert_eq(inner->retry->attempts, 4);
	cr_assert_str_eq(inner->shell, "/bin/zsh");
	cr_assert_eq(inner->priority, 5);
	const struct gnode *s1 = node(g, "st.one.run-1");
	cr_assert_eq(s1->timeout_ms, 2000u);
	cr_assert_eq(s1->priority, 9);
}

Test(graph, own_modifiers_override_inherited_ones)
{
	struct graph_options o = {0};
	struct graph *g = compile(&o);
	const struct gnode *own = node(g, "grp.own");
	cr_assert_eq(own->timeout_ms, 1000u);
	cr_assert_eq(own->priority, -1);
	cr_assert_eq(own->retry->attempts, 1);
	cr_assert_str_eq(own->shell, "/bin/zsh");
	cr_assert_eq(own->kill_grace_ms, 1000u);
}

Test(graph, builtin_defaults_without_plan_defaults)
{
	P = th_load_ok("steps: [a]\n");
	struct graph_options o = {0};
	struct diags d = {0};
	G = graph_compile(P, &o, &d);
	cr_assert_not_null(G);
	const struct gnode *n = &G->nodes[1];
	cr_assert_eq(n->timeout_ms, 0u);
	cr_assert_eq(n->kill_grace_ms, 5000u);
	cr_assert_str_eq(n->shell, "/bin/sh");
	cr_assert_eq(n->retry->attempts, 1);
	cr_assert_eq(n->priority, 0);
	cr_assert_eq(G->concurrency, graph_default_concurrency());
	cr_assert_geq(G->concurrency, 4);
	cr_assert_eq(n->n_limiters, 1);
	cr_assert_eq(n->limiters[0], 0);
	cr_assert_eq(G->n_tasks, 1);
	diags_free(&d);
}

Test(graph, global_limit_from_plan_or_option)
{
	struct graph_options o = {0};
	struct graph *g = compile(&o);
	cr_assert_eq(g->concurrency, 6);
	cr_assert_str_eq(g->limits[0].name, "concurrency");
	cr_assert_eq(g->limits[0].capacity, 6);
	teardown();
	o.concurrency = 3;
	g = compile(&o);
	cr_assert_eq(g->concurrency, 3, "-j overrides the plan");
	cr_assert_eq(g->limits[0].capacity, 3);
}

Test(graph, limiters_of_a_step_under_max_concurrency_and_semaphores)
{
	struct graph_options o = {0};
	struct graph *g = compile(&o);
	cr_assert_eq(limit_capacity(g, "semaphore registry"), 2);
	cr_assert_eq(limit_capacity(g, "semaphore db"), 1);
	cr_assert_eq(limit_capacity(g, "max_concurrency of grp"), 2);
	cr_assert_eq(limit_capacity(g, "max_concurrency of st.one"), 1);

	const struct gnode *a = node(g, "a");
	cr_assert_eq(a->n_limiters, 1);
	cr_assert_eq(a->limiters[0], 0, "[0] is the global limit");

	const struct gnode *inner = node(g, "grp.inner");
	cr_assert_eq(inner->n_limiters, 3);
	cr_assert_eq(inner->limiters[0], 0);
	cr_assert(has_limit(g, inner, "max_concurrency of grp"));
	cr_assert(has_limit(g, inner, "semaphore registry"));

	const struct gnode *own = node(g, "grp.own");
	cr_assert_eq(own->n_limiters, 4, "registry is held once, not twice");
	cr_assert_eq(own->limiters[0], 0);
	cr_assert(has_limit(g, own, "max_concurrency of grp"));
	cr_assert(has_limit(g, own, "semaphore registry"));
	cr_assert(has_limit(g, own, "semaphore db"));

	const struct gnode *s1 = node(g, "st.one.run-1");
	cr_assert_eq(s1->n_limiters, 2);
	cr_assert(has_limit(g, s1, "max_concurrency of st.one"));
	cr_assert_not(has_limit(g, s1, "max_concurrency of grp"));

	const struct gnode *p2 = node(g, "par.run-2");
	cr_assert_eq(p2->n_limiters, 1);
}

Test(graph, n_tasks_counts_run_steps)
{
	struct graph_options o = {0};
	struct graph *g = compile(&o);
	cr_assert_eq(g->n_tasks, 6);
}

static bool sel(const struct graph *g, const char *id)
{
	return node(g, id)->selected;
}

Test(graph, only_selects_the_subtree_and_its_ancestors)
{
	const char *only[] = {"grp.own"};
	struct graph_options o = {.only = only, .n_only = 1};
	struct graph *g = compile(&o);
	cr_assert(g->nodes[0].selected);
	cr_assert(sel(g, "grp"));
	cr_assert(sel(g, "grp.own"));
	cr_assert_not(sel(g, "grp.inner"));
	cr_assert_not(sel(g, "a"));
	cr_assert_not(sel(g, "par"));
	cr_assert_not(sel(g, "par.run-1"));
	cr_assert_not(sel(g, "st.one.run-1"));
	cr_assert_eq(g->n_tasks, 1);
}

Test(graph, only_with_a_group_and_several_ids)
{
	const char *only[] = {"grp", "par.run-2"};
	struct graph_options o = {.only = only, .n_only = 2};
	struct graph *g = compile(&o);
	cr_assert(sel(g, "grp.inner"));
	cr_assert(sel(g, "grp.own"));
	cr_assert(sel(g, "par"));
	cr_assert(sel(g, "par.run-2"));
	cr_assert_not(sel(g, "par.run-1"));
	cr_assert_not(sel(g, "a"));
	cr_assert_eq(g->n_tasks, 3);
}

Test(graph, from_selects_the_step_and_everything_after_it)
{
	struct graph_options o = {.from = "grp.own"};
	struct graph *g = compile(&o);
	cr_assert_not(sel(g, "a"));
	cr_assert_not(sel(g, "grp.inner"));
	cr_assert(sel(g, "grp"));
	cr_assert(sel(g, "grp.own"));
	cr_assert(sel(g, "par"));
	cr_assert(sel(g, "par.run-1"));
	cr_assert(sel(g, "par.run-2"));
	cr_assert(sel(g, "st.one.run-1"));
	cr_assert_eq(g->n_tasks, 4);
}

Test(graph, from_the_first_step_selects_everything)
{
	struct graph_options o = {.from = "a"};
	struct graph *g = compile(&o);
	for (size_t i = 0; i < g->n; i++)
		cr_assert(g->nodes[i].selected);
	cr_assert_eq(g->n_tasks, 6);
}

Test(graph, unknown_only_id_fails_with_a_diagnostic)
{
	P = th_load_ok(plan_src);
	const char *only[] = {"a", "nope.x"};
	struct graph_options o = {.only = only, .n_only = 2};
	struct diags d = {0};
	G = graph_compile(P, &o, &d);
	cr_assert_null(G);
	cr_assert_eq(d.n, 1);
	cr_assert(strstr(d.v[0].msg, "--only nope.x: no step with that full id") != NULL, "%s", d.v[0].msg);
	cr_assert_str_eq(d.v[0].file, "plan.yaml");
	diags_free(&d);
}

Test(graph, unknown_from_id_fails_with_a_diagnostic)
{
	P = th_load_ok(plan_src);
	struct graph_options o = {.from = "inner"};
	struct diags d = {0};
	G = graph_compile(P, &o, &d);
	cr_assert_null(G, "'inner' is not a full id");
	cr_assert_eq(d.n, 1);
	cr_assert(strstr(d.v[0].msg, "--from inner: no step with that full id") != NULL, "%s", d.v[0].msg);
	diags_free(&d);
}

Test(graph, many_nested_limits_fit_the_limiter_pool)
{
	/* every level adds a max_concurrency and a semaphore */
	struct buf y = {0};
	buf_adds(&y, "semaphores: { s: 3 }\nsteps:\n");
	int depth = 20;
	for (int i = 0; i < depth; i++) {
		for (int k = 0; k < 2 * i + 1; k++)
			buf_addc(&y, ' ');
		buf_printf(&y, " - id: l%d\n", i);
		for (int k = 0; k < 2 * i + 1; k++)
			buf_addc(&y, ' ');
		buf_adds(&y, "   max_concurrency: 2\n");
		for (int k = 0; k < 2 * i + 1; k++)
			buf_addc(&y, ' ');
		buf_adds(&y, "   semaphore: s\n");
		for (int k = 0; k < 2 * i + 1; k++)
			buf_addc(&y, ' ');
		buf_adds(&y, i == depth - 1 ? "   run: x\n" : "   steps:\n");
	}
	P = th_load_ok(y.data);
	buf_free(&y);
	struct graph_options o = {0};
	struct diags d = {0};
	G = graph_compile(P, &o, &d);
	cr_assert_not_null(G);
	const struct gnode *leaf = &G->nodes[G->n - 1];
	cr_assert_eq(leaf->step->kind, STEP_RUN);
	/* global + semaphore s once + one max_concurrency per level */
	cr_assert_eq(leaf->n_limiters, 2 + (unsigned)depth);
	cr_assert_eq(G->n_limits, 2 + (size_t)depth);
	diags_free(&d);
}
