/*
 * --only / --from with task ids (src/graph/select.c): reading an id into the
 * instance it names per fan-out, the errors that name what exists, which
 * nodes run inside which instances (graph_admits), the task count over
 * classes of instances, and what is left to run time for lists known only
 * then.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "graph/graph.h"
#include "helpers.h"

static const char *const plan_src = "vars:\n"
				    "  three: [p, q, r]\n"
				    "inventory:\n"
				    "  hosts:\n"
				    "    web1: { address: 192.0.2.1 }\n"
				    "    web2: { address: 192.0.2.2 }\n"
				    "    web3: { address: 192.0.2.3 }\n"
				    "steps:\n"
				    "  - id: pre\n"
				    "    run: x\n"
				    "  - id: rollout\n"
				    "    for_each: [a, b, c, d]\n"
				    "    steps:\n"
				    "      - id: install\n"
				    "        run: i\n"
				    "      - id: inner\n"
				    "        for_each: ${{ vars.three }}\n"
				    "        run: n\n"
				    "      - id: dyn\n"
				    "        for_each: ${{ steps.pre.stdout_lines }}\n"
				    "        run: d\n"
				    "  - id: deploy\n"
				    "    on: [web1, web2, web3]\n"
				    "    run: y\n"
				    "  - id: push\n"
				    "    on: [web1, web2]\n"
				    "    for_each: [u, v, w]\n"
				    "    run: z\n"
				    "    on_failure:\n"
				    "      - id: note\n"
				    "        run: n\n"
				    "  - id: post\n"
				    "    run: p\n";

static struct plan *P;
static struct graph *G;

static void teardown(void)
{
	graph_free(G);
	plan_free(P);
	G = NULL;
	P = NULL;
}

TestSuite(select, .fini = teardown);

static struct plan *load(const char *src)
{
	struct load_options lo = {.home = "/nonexistent/baton-test-home"};
	struct diags d = {0};
	struct plan *p = plan_load_buffer_opts("plan.yaml", src, strlen(src), &lo, &d);
	if (!p || d.n) {
		char *t = th_diags_text(&d);
		cr_assert_fail("plan did not load:\n%s", t);
	}
	diags_free(&d);
	return p;
}

/* Compiles the plan with these --only ids and --from id (or NULL); fails the test on an error. */
static struct graph *compile_src(const char *src, const char **only, size_t n_only, const char *from)
{
	P = load(src);
	struct graph_options o = {.only = only, .n_only = n_only, .from = from};
	struct diags d = {0};
	G = graph_compile(P, &o, &d);
	if (!G) {
		char *t = th_diags_text(&d);
		cr_assert_fail("graph_compile failed:\n%s", t);
	}
	cr_assert_eq(d.n, 0);
	diags_free(&d);
	return G;
}

static struct graph *compile(const char **only, size_t n_only, const char *from)
{
	return compile_src(plan_src, only, n_only, from);
}

/* The diagnostics of ids that must be refused, one line each. */
static char *refused(const char **only, size_t n_only, const char *from, size_t n_errors)
{
	P = load(plan_src);
	struct graph_options o = {.only = only, .n_only = n_only, .from = from};
	struct diags d = {0};
	G = graph_compile(P, &o, &d);
	cr_assert_null(G, "the ids were accepted");
	cr_assert_eq(d.n, n_errors, "%zu diagnostics, expected %zu", d.n, n_errors);
	for (size_t i = 0; i < d.n; i++)
		cr_assert_str_eq(d.v[i].file, "plan.yaml");
	char *t = th_diags_text(&d);
	diags_free(&d);
	return t;
}

static void refused_with(const char *id, const char *msg)
{
	const char *only[] = {id};
	char *t = refused(only, 1, NULL, 1);
	cr_assert(strstr(t, msg) != NULL, "--only %s:\n%s\nexpected: %s", id, t, msg);
	free(t);
	graph_free(G);
	plan_free(P);
	G = NULL;
	P = NULL;
	/* --from reads ids the same way */
	t = refused(NULL, 0, id, 1);
	cr_assert(strstr(t, "--from ") != NULL && strstr(t, msg + (strncmp(msg, "--only", 6) ? 0 : 6)) != NULL,
		  "--from %s:\n%s", id, t);
	free(t);
	graph_free(G);
	plan_free(P);
	G = NULL;
	P = NULL;
}

static const struct gnode *node(const char *full_id)
{
	const struct step *s = plan_find_step(G->plan, full_id);
	cr_assert_not_null(s, "no step %s", full_id);
	return &G->nodes[s->order];
}

static long host(const char *name)
{
	for (size_t i = 0; i < P->inventory.n_hosts; i++)
		if (!strcmp(P->inventory.hosts[i].name, name))
			return (long)i;
	cr_assert_fail("no host %s", name);
	return -1;
}

#define ITEM(i) ((struct ginst){-1, (i)})

static bool admits1(const char *step, struct ginst a)
{
	return graph_admits(G, node(step), &a, 1);
}

static bool admits2(const char *step, struct ginst a, struct ginst b)
{
	struct ginst p[] = {a, b};
	return graph_admits(G, node(step), p, 2);
}

Test(select, full_ids_alone_need_no_work_per_instance)
{
	const char *only[] = {"rollout.install", "deploy"};
	compile(only, 2, "post");
	cr_assert_null(G->sel);
	cr_assert(node("rollout")->selected);
	cr_assert(node("rollout.install")->selected);
	cr_assert_not(node("rollout.inner")->selected);
	cr_assert_not(node("push")->selected);
	cr_assert_eq(G->n_tasks, 4 + 3 + 1);
}

Test(select, an_item_runs_alone_in_its_for_each)
{
	const char *only[] = {"rollout#1"};
	compile(only, 1, NULL);
	cr_assert_not_null(G->sel);
	cr_assert(graph_admits(G, node("rollout"), NULL, 0), "the for_each itself runs");
	cr_assert(admits1("rollout", ITEM(1)));
	cr_assert_not(admits1("rollout", ITEM(0)));
	cr_assert_not(admits1("rollout", ITEM(3)));
	cr_assert(admits1("rollout.install", ITEM(1)), "what the instance holds runs");
	cr_assert(admits2("rollout.inner", ITEM(1), ITEM(2)));
	cr_assert_not(admits1("rollout.install", ITEM(2)));
	cr_assert_not(node("pre")->selected);
	cr_assert_not(node("deploy")->selected);
	/* install, 3 of inner, and dyn counted as one item until its list is known */
	cr_assert_eq(G->n_tasks, 5);
}

Test(select, a_step_in_an_item)
{
	const char *only[] = {"rollout.install#2"};
	compile(only, 1, NULL);
	cr_assert(admits1("rollout", ITEM(2)));
	cr_assert(admits1("rollout.install", ITEM(2)));
	cr_assert_not(admits1("rollout.install", ITEM(1)));
	cr_assert_not(graph_admits(G, node("rollout.inner"), (struct ginst[]){ITEM(2)}, 1));
	cr_assert_not(node("rollout.inner")->selected, "inner runs in no instance");
	cr_assert_eq(G->n_tasks, 1);
}

Test(select, nested_for_each_ids_name_one_index_per_level)
{
	const char *only[] = {"rollout.inner#2#1"};
	compile(only, 1, NULL);
	cr_assert(admits2("rollout.inner", ITEM(2), ITEM(1)));
	cr_assert_not(admits2("rollout.inner", ITEM(2), ITEM(0)));
	cr_assert_not(admits2("rollout.inner", ITEM(1), ITEM(1)));
	cr_assert(admits1("rollout.inner", ITEM(2)), "the inner for_each of item 2 runs");
	cr_assert_not(admits1("rollout.install", ITEM(2)));
	cr_assert_eq(G->n_tasks, 1);
	/* the inner levels may be left out: every item of inner in rollout#0 */
	teardown();
	const char *outer[] = {"rollout.inner#0"};
	compile(outer, 1, NULL);
	cr_assert(admits2("rollout.inner", ITEM(0), ITEM(2)));
	cr_assert_not(admits2("rollout.inner", ITEM(1), ITEM(2)));
	cr_assert_eq(G->n_tasks, 3);
}

Test(select, a_host_of_an_on_step)
{
	const char *only[] = {"deploy@web2"};
	compile(only, 1, NULL);
	cr_assert(admits1("deploy", ((struct ginst){host("web2"), -1})));
	cr_assert_not(admits1("deploy", ((struct ginst){host("web1"), -1})));
	cr_assert_not(admits1("deploy", ((struct ginst){host("web3"), -1})));
	cr_assert_eq(G->n_tasks, 1);
}

Test(select, hosts_and_items_of_a_step_with_both)
{
	const char *one[] = {"push@web1#2"};
	compile(one, 1, NULL);
	cr_assert(admits1("push", ((struct ginst){host("web1"), 2})));
	cr_assert_not(admits1("push", ((struct ginst){host("web2"), 2})));
	cr_assert_not(admits1("push", ((struct ginst){host("web1"), 1})));
	cr_assert_eq(G->n_tasks, 1);
	teardown();
	const char *item[] = {"push#2"}; /* the host left out: item 2 on every host */
	compile(item, 1, NULL);
	cr_assert(admits1("push", ((struct ginst){host("web2"), 2})));
	cr_assert_not(admits1("push", ((struct ginst){host("web2"), 0})));
	cr_assert_eq(G->n_tasks, 2);
	teardown();
	const char *on[] = {"push@web2"}; /* every item on web2 */
	compile(on, 1, NULL);
	cr_assert_eq(G->n_tasks, 3);
}

Test(select, several_ids_run_their_union_and_nothing_more)
{
	const char *only[] = {"rollout.install#1", "rollout.inner#2", "deploy@web3", "pre"};
	compile(only, 4, NULL);
	cr_assert(admits1("rollout.install", ITEM(1)));
	cr_assert_not(admits1("rollout.install", ITEM(2)), "install runs in item 1 only");
	cr_assert(admits2("rollout.inner", ITEM(2), ITEM(0)));
	cr_assert_not(admits2("rollout.inner", ITEM(1), ITEM(0)), "inner runs in item 2 only");
	cr_assert_not(admits1("rollout", ITEM(0)));
	cr_assert_eq(G->n_tasks, 1 + 3 + 1 + 1);
	/* an id for the whole step wins over one of its instances */
	teardown();
	const char *all[] = {"rollout#1", "rollout"};
	compile(all, 2, NULL);
	cr_assert(admits1("rollout", ITEM(0)));
	cr_assert_eq(G->n_tasks, 4 * 5);
	/* two ids of one instance count it once */
	teardown();
	const char *twice[] = {"rollout#1", "rollout.install#1", "push@web1#1", "push#1"};
	compile(twice, 4, NULL);
	cr_assert_eq(G->n_tasks, 5 + 2);
}

Test(select, from_an_item_skips_the_items_before_it)
{
	compile(NULL, 0, "rollout.install#2");
	cr_assert_not(node("pre")->selected);
	cr_assert_not(admits1("rollout", ITEM(1)));
	cr_assert(admits1("rollout", ITEM(2)));
	cr_assert(admits1("rollout.install", ITEM(2)));
	cr_assert(admits1("rollout.install", ITEM(3)));
	cr_assert(node("post")->selected);
	/* items 2 and 3 whole (install, inner, dyn as one), then deploy, push and post */
	cr_assert_eq(G->n_tasks, 2 * 5 + 3 + 6 + 1);
	teardown();
	/* inside the named item, the steps before the named one are skipped; later items run whole */
	compile(NULL, 0, "rollout.inner#2#1");
	cr_assert_not(admits1("rollout.install", ITEM(2)));
	cr_assert_not(admits2("rollout.inner", ITEM(2), ITEM(0)));
	cr_assert(admits2("rollout.inner", ITEM(2), ITEM(1)));
	cr_assert(admits1("rollout.dyn", ITEM(2)));
	cr_assert(admits1("rollout.install", ITEM(3)));
	cr_assert(node("rollout.install")->selected, "install runs in item 3");
	cr_assert_eq(G->n_tasks, (2 + 1) + 5 + 3 + 6 + 1);
}

Test(select, from_a_host_follows_the_step_s_host_order)
{
	compile(NULL, 0, "deploy@web2");
	cr_assert_not(admits1("deploy", ((struct ginst){host("web1"), -1})));
	cr_assert(admits1("deploy", ((struct ginst){host("web2"), -1})));
	cr_assert(admits1("deploy", ((struct ginst){host("web3"), -1})));
	cr_assert_eq(G->n_tasks, 2 + 6 + 1);
	teardown();
	/* host-major: web1's items, then web2's */
	compile(NULL, 0, "push@web1#1");
	cr_assert_not(admits1("push", ((struct ginst){host("web1"), 0})));
	cr_assert(admits1("push", ((struct ginst){host("web1"), 1})));
	cr_assert(admits1("push", ((struct ginst){host("web2"), 0})));
	cr_assert_eq(G->n_tasks, 2 + 3 + 1);
	teardown();
	/* the host left out: the smaller indexes on every host */
	compile(NULL, 0, "push#2");
	cr_assert_not(admits1("push", ((struct ginst){host("web2"), 1})));
	cr_assert(admits1("push", ((struct ginst){host("web1"), 2})));
	cr_assert_eq(G->n_tasks, 2 + 1);
}

Test(select, only_and_from_together_run_the_union)
{
	const char *only[] = {"pre"};
	compile(only, 1, "push@web2#2");
	cr_assert(node("pre")->selected);
	cr_assert_not(node("deploy")->selected);
	cr_assert_eq(G->n_tasks, 1 + 1 + 1);
}

Test(select, bad_ids_are_errors_that_name_what_exists)
{
	refused_with("rollout#4", "--only rollout#4: rollout has items #0..#3; there is no #4");
	refused_with("rollout.inner#0#3", "rollout.inner has items #0..#2; there is no #3");
	refused_with("deploy@web9", "--only deploy@web9: deploy does not run on web9; its hosts: web1, web2, web3");
	refused_with("deploy#1", "no such instance: the ids of deploy's instances have the form deploy@HOST");
	refused_with("rollout@web1", "the form rollout#INDEX");
	refused_with("push#1@web1", "the form push@HOST#INDEX");
	refused_with("rollout.inner#1#2#0", "the form rollout.inner#INDEX#INDEX");
	refused_with("rollout#", "an item index (0, 1, ...) must follow '#'");
	refused_with("rollout#x", "an item index (0, 1, ...) must follow '#'");
	refused_with("rollout#99999999999999999999", "there is no #99999999999999999999");
	refused_with("deploy@", "a host name must follow '@'");
	refused_with("pre#0", "pre is inside no for_each or on: step, so it has no instances");
	refused_with("push.on_failure.note@web1#0", "push.on_failure.note is in a step's on_failure");
	refused_with("#1", "an id starts with a step's full id");
	refused_with("rolout#1", "no step with the full id 'rolout'; did you mean 'rollout#1'?");
	refused_with("install", "--only install: no step with that full id; did you mean 'rollout.install'?");
}

Test(select, an_unknown_id_gets_the_closest_task_id_or_the_list_of_ids)
{
	/* a typo of a step's last id, its @HOST#INDEX kept */
	refused_with("instal#2", "--only instal#2: no step with the full id 'instal'; did you mean 'rollout.install#2'?");
	refused_with("rollout.instal", "no step with that full id; did you mean 'rollout.install'?");
	refused_with("dploy@web2", "did you mean 'deploy@web2'?");
	/* nothing close: what exists */
	refused_with("zzzzzz", "--only zzzzzz: no step with that full id; full ids: pre, rollout, rollout.install, ");
}

Test(select, every_bad_id_is_reported)
{
	const char *only[] = {"rollout#9", "deploy", "nope"};
	char *t = refused(only, 3, "deploy@web7", 3);
	cr_assert(strstr(t, "rollout#9") && strstr(t, "nope") && strstr(t, "web7"), "%s", t);
	free(t);
}

Test(select, a_list_known_only_at_run_time_is_checked_then)
{
	const char *only[] = {"rollout.dyn#1#5"};
	compile(only, 1, NULL);
	cr_assert(node("rollout.dyn")->selected);
	cr_assert_eq(G->n_tasks, 0, "counted as one item before the run: not #5");
	struct ginst in1[] = {ITEM(1)}, in0[] = {ITEM(0)};
	const struct gnode *dyn = node("rollout.dyn");
	char *why = graph_missing_item(G, dyn, in1, 1, 3);
	cr_assert_not_null(why);
	cr_assert_str_eq(why, "--only rollout.dyn#1#5: the list has items #0..#2; there is no #5");
	free(why);
	cr_assert_null(graph_missing_item(G, dyn, in1, 1, 6));
	cr_assert_null(graph_missing_item(G, dyn, in0, 1, 3), "the id names nothing in item 0");
	/* the run's total: 0 as counted before, 1 once the list has a #5 */
	cr_assert_eq(graph_fanout_tasks(G, dyn, in1, 1, SIZE_MAX), 0);
	cr_assert_eq(graph_fanout_tasks(G, dyn, in1, 1, 6), 1);
	cr_assert_eq(graph_fanout_tasks(G, dyn, in0, 1, 6), 0);
	struct buf b = {0};
	cr_assert(graph_level_ids(G, dyn, &b));
	cr_assert_str_eq(b.data, "--only rollout.dyn#1#5");
	buf_free(&b);
	cr_assert_not(graph_level_ids(G, node("rollout.inner"), &b));
}

Test(select, the_dry_run_marks_say_which_instances_run_anywhere)
{
	const char *only[] = {"rollout#1", "rollout.inner#3#2", "push@web2#0"};
	compile(only, 3, NULL);
	const unsigned char *m = graph_instance_marks(G, node("rollout"));
	cr_assert_not_null(m);
	cr_assert(!m[0] && m[1] && !m[2] && m[3]);
	m = graph_instance_marks(G, node("rollout.inner"));
	cr_assert(m[0] && m[1] && m[2], "every item of inner runs in rollout#1");
	m = graph_instance_marks(G, node("push"));
	for (size_t i = 0; i < 6; i++)
		cr_assert_eq(m[i], i == 3, "push instance %zu", i); /* host-major: web2's #0 is 3 */
	cr_assert_null(graph_instance_marks(G, node("rollout.dyn")), "its list is known only at run time");
}

Test(select, a_long_list_is_counted_by_classes_not_by_items)
{
	struct buf y = {0};
	buf_adds(&y, "vars:\n  many: [");
	for (int i = 0; i < 50000; i++)
		buf_printf(&y, "%s%d", i ? ", " : "", i);
	buf_adds(&y, "]\nsteps:\n  - id: big\n    for_each: ${{ vars.many }}\n    steps:\n"
		     "      - id: a\n        run: a\n      - id: b\n        for_each: [x, y]\n        run: b\n");
	const char *only[] = {"big.b#41234#1", "big#7"};
	compile_src(y.data, only, 2, NULL);
	cr_assert_eq(G->n_tasks, 1 + 3);
	teardown();
	compile_src(y.data, NULL, 0, "big.b#49998#1");
	cr_assert_eq(G->n_tasks, 1 + 3);
	buf_free(&y);
}
