/*
 * Fan-out arithmetic and compilation (plan-format.md section 4): batch sizes
 * and amounts, the barrier release rule, and what graph_compile makes of
 * handlers and for_each (gnode handlers, task counts).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "graph/graph.h"
#include "helpers.h"
#include "plan/plan.h"
#include "sched/sched.h"

/* ---- batch sizes and amounts ---- */

static struct amount cnt(double v)
{
	return (struct amount){.set = true, .percent = false, .value = v};
}

static struct amount pct(double v)
{
	return (struct amount){.set = true, .percent = true, .value = v};
}

/*
 * Runs batch_sizes over n instances with the given sizes and checks the
 * result is exactly want[0..nwant).
 */
static void check_batches(const struct amount *sizes, size_t n_sizes, size_t n, const size_t *want, size_t nwant)
{
	struct batch_spec b = {.sizes = (struct amount *)sizes, .n_sizes = n_sizes};
	size_t out[64];
	cr_assert_leq(n, 64);
	memset(out, 0xff, sizeof out);
	size_t nb = batch_sizes(&b, n, out);
	cr_assert_eq(nb, nwant, "over %zu instances: %zu batches, expected %zu", n, nb, nwant);
	size_t total = 0;
	for (size_t i = 0; i < nb; i++) {
		cr_assert_eq(out[i], want[i], "over %zu instances: batch %zu has %zu, expected %zu", n, i, out[i],
			     want[i]);
		total += out[i];
	}
	cr_assert_eq(total, n);
}

#define BATCHES(n, sizes, ...)                                                                                   \
	do {                                                                                                     \
		const struct amount th_s[] = sizes;                                                              \
		const size_t th_w[] = {__VA_ARGS__};                                                             \
		check_batches(th_s, sizeof th_s / sizeof th_s[0], (n), th_w, sizeof th_w / sizeof th_w[0]);     \
	} while (0)

#define L(...) {__VA_ARGS__}

Test(batch, int_size_splits_in_order_with_a_short_last_batch)
{
	BATCHES(5, L(cnt(2)), 2, 2, 1);
	BATCHES(6, L(cnt(3)), 3, 3);
	BATCHES(3, L(cnt(1)), 1, 1, 1);
}

Test(batch, percent_is_of_all_instances_rounded_up)
{
	BATCHES(6, L(pct(25)), 2, 2, 2); /* 1.5 -> 2 */
	BATCHES(10, L(pct(30)), 3, 3, 3, 1);
	BATCHES(3, L(pct(34)), 2, 1); /* 1.02 -> 2 */
	BATCHES(6, L(pct(100)), 6);
	BATCHES(7, L(pct(50)), 4, 3); /* 3.5 -> 4 */
}

Test(batch, percent_is_at_least_one)
{
	BATCHES(3, L(pct(1)), 1, 1, 1); /* 0.03 -> 1 */
	BATCHES(4, L(pct(0.5)), 1, 1, 1, 1);
}

/*
 * The loader accepts any percentage above 0, even one so small that P% of n
 * comes out as 0 in floating point: a batch still holds one instance.
 */
Test(batch, percent_that_vanishes_is_still_one)
{
	struct amount tiny = pct(4.9e-324);
	cr_assert_eq(amount_of(&tiny, 2), 0, "precondition: the amount itself underflows");
	BATCHES(2, L(pct(4.9e-324)), 1, 1);
	BATCHES(3, L(cnt(2), pct(4.9e-324)), 2, 1);
}

Test(batch, staged_list_last_size_repeats)
{
	BATCHES(6, L(cnt(1), pct(25), pct(100)), 1, 2, 3);
	BATCHES(7, L(cnt(1), cnt(2)), 1, 2, 2, 2);
	BATCHES(20, L(cnt(1), pct(10)), 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1);
}

Test(batch, sizes_larger_than_what_is_left_are_clipped)
{
	BATCHES(4, L(cnt(10)), 4);
	BATCHES(7, L(cnt(5), cnt(5)), 5, 2);
	BATCHES(5, L(cnt(2), pct(100)), 2, 3);
	BATCHES(3, L(cnt(1), cnt(1), cnt(50)), 1, 1, 1);
}

Test(batch, one_instance_is_one_batch_of_one)
{
	BATCHES(1, L(cnt(1)), 1);
	BATCHES(1, L(cnt(3)), 1);
	BATCHES(1, L(pct(1)), 1);
	BATCHES(1, L(pct(100)), 1);
	BATCHES(1, L(cnt(1), pct(25), pct(100)), 1);
}

Test(batch, no_instances_is_no_batch)
{
	struct amount s[] = {cnt(2)};
	struct batch_spec b = {.sizes = s, .n_sizes = 1};
	size_t out[1] = {99};
	cr_assert_eq(batch_sizes(&b, 0, out), 0);
	cr_assert_eq(out[0], 99, "nothing written for 0 instances");
}

/* Every batch holds at least one instance, at most n batches, and together they hold exactly n. */
Test(batch, totals_always_equal_n)
{
	const struct amount specs[][3] = {
		{cnt(1)},	      {cnt(2)},		  {cnt(7)},		 {pct(1)},
		{pct(25)},	      {pct(33)},	  {pct(99.5)},		 {pct(100)},
		{cnt(1), pct(25), pct(100)}, {pct(10), cnt(3), cnt(1)}, {cnt(100), cnt(1), cnt(1)},
	};
	const size_t lens[] = {1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3};
	for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
		struct batch_spec b = {.sizes = (struct amount *)specs[k], .n_sizes = lens[k]};
		for (size_t n = 1; n <= 64; n++) {
			size_t out[64];
			size_t nb = batch_sizes(&b, n, out);
			cr_assert_geq(nb, 1, "spec %zu, n %zu", k, n);
			cr_assert_leq(nb, n, "spec %zu, n %zu", k, n);
			size_t total = 0;
			for (size_t i = 0; i < nb; i++) {
				cr_assert_geq(out[i], 1, "spec %zu, n %zu: empty batch %zu", k, n, i);
				total += out[i];
			}
			cr_assert_eq(total, n, "spec %zu: batches hold %zu of %zu instances", k, total, n);
		}
	}
}

Test(amount, count_is_taken_as_is)
{
	struct amount a = cnt(3);
	cr_assert_eq(amount_of(&a, 10), 3);
	cr_assert_eq(amount_of(&a, 1000), 3);
	a = cnt(0);
	cr_assert_eq(amount_of(&a, 10), 0);
}

Test(amount, percent_rounds_up)
{
	struct amount a = pct(10);
	cr_assert_eq(amount_of(&a, 30), 3);
	cr_assert_eq(amount_of(&a, 31), 4);
	cr_assert_eq(amount_of(&a, 1), 1);
	a = pct(25);
	cr_assert_eq(amount_of(&a, 6), 2);
	a = pct(33);
	cr_assert_eq(amount_of(&a, 3), 1); /* 0.99 */
	a = pct(100);
	cr_assert_eq(amount_of(&a, 7), 7);
	a = pct(0);
	cr_assert_eq(amount_of(&a, 7), 0);
	a = pct(50);
	cr_assert_eq(amount_of(&a, 0), 0);
}

/* max_failures as the loader parses it: a count, a percentage of all instances, or unset (0). */
Test(amount, max_failures_from_a_plan)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - id: count\n"
				    "    for_each: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
				    "    batch: { size: 2, max_failures: 2 }\n"
				    "    run: echo ${{ item }}\n"
				    "  - id: share\n"
				    "    for_each: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]\n"
				    "    batch: { size: 4, max_failures: \"20%\" }\n"
				    "    run: echo ${{ item }}\n"
				    "  - id: none\n"
				    "    for_each: [1, 2, 3]\n"
				    "    batch: { size: 1 }\n"
				    "    run: echo ${{ item }}\n");
	const struct step *s = plan_find_step(p, "count");
	cr_assert_not_null(s);
	cr_assert(s->fan->batch.max_failures.set);
	cr_assert_not(s->fan->batch.max_failures.percent);
	cr_assert_eq(amount_of(&s->fan->batch.max_failures, json_array_size(s->fan->for_each)), 2);

	s = plan_find_step(p, "share");
	cr_assert_not_null(s);
	cr_assert(s->fan->batch.max_failures.set);
	cr_assert(s->fan->batch.max_failures.percent);
	cr_assert_eq(amount_of(&s->fan->batch.max_failures, json_array_size(s->fan->for_each)), 3,
		     "20%% of 12 = 2.4 -> 3");

	s = plan_find_step(p, "none");
	cr_assert_not_null(s);
	cr_assert_not(s->fan->batch.max_failures.set);
	cr_assert_eq(amount_of(&s->fan->batch.max_failures, 3), 0, "default max_failures is 0");
	plan_free(p);
}

/* ---- the barrier release rule ---- */

#define RELEASE(st, aw) barrier_can_release((st), (aw), sizeof(st) / sizeof((st)[0]))

Test(barrier_rule, releases_when_every_participant_waits)
{
	const unsigned char st[] = {1, 1, 1};
	const bool aw[] = {true, true, true};
	cr_assert(RELEASE(st, aw));
}

Test(barrier_rule, holds_while_an_awaited_participant_has_not_arrived)
{
	const unsigned char st[] = {1, 0, 1};
	const bool aw[] = {true, true, true};
	cr_assert_not(RELEASE(st, aw));
	const unsigned char st2[] = {0, 0, 1};
	cr_assert_not(RELEASE(st2, aw));
}

Test(barrier_rule, a_participant_that_ended_is_not_waited_for)
{
	const unsigned char st[] = {1, 0, 1};
	const bool aw[] = {true, false, true};
	cr_assert(RELEASE(st, aw));
	/* one arrived, the others all ended */
	const unsigned char st2[] = {0, 1, 0};
	const bool aw2[] = {false, true, false};
	cr_assert(RELEASE(st2, aw2));
}

Test(barrier_rule, nobody_waiting_does_not_release)
{
	const unsigned char st[] = {0, 0, 0};
	const bool aw[] = {true, true, true};
	cr_assert_not(RELEASE(st, aw));
	cr_assert_not(barrier_can_release(NULL, NULL, 0), "no participants at all");
}

Test(barrier_rule, all_ended_does_not_release)
{
	const unsigned char st[] = {0, 0, 0};
	const bool aw[] = {false, false, false};
	cr_assert_not(RELEASE(st, aw));
}

/* A batched for_each: the instances of later (or earlier) batches are not awaited. */
Test(barrier_rule, instances_outside_the_running_batch_do_not_block)
{
	const unsigned char st[] = {0, 0, 1, 1, 0, 0};
	const bool aw[] = {false, false, true, true, false, false};
	cr_assert(RELEASE(st, aw));
	const unsigned char st2[] = {0, 0, 1, 0, 0, 0};
	cr_assert_not(RELEASE(st2, aw), "instance 3 is in the batch and has not arrived");
}

/* ---- graph_compile: handlers and for_each ---- */

static struct plan *GP;
static struct graph *GG;

static void graph_teardown(void)
{
	graph_free(GG);
	plan_free(GP);
	GG = NULL;
	GP = NULL;
}

static struct graph *compile_src(const char *src)
{
	GP = th_load_ok(src);
	struct graph_options o = {0};
	struct diags d = {0};
	GG = graph_compile(GP, &o, &d);
	if (!GG) {
		char *t = th_diags_text(&d);
		cr_assert_fail("graph_compile failed:\n%s", t);
	}
	cr_assert_eq(d.n, 0);
	diags_free(&d);
	return GG;
}

static const struct gnode *gnode_of(const struct graph *g, const struct step *s)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->nodes[i].step == s)
			return &g->nodes[i];
	cr_assert_fail("no node for step %s", s->full_id);
	return NULL;
}

static const struct gnode *gnode_id(const struct graph *g, const char *full_id)
{
	const struct step *s = plan_find_step(g->plan, full_id);
	cr_assert_not_null(s, "no step %s", full_id);
	return gnode_of(g, s);
}

static void assert_same_limiters(const struct gnode *a, const struct gnode *b)
{
	cr_assert_eq(a->n_limiters, b->n_limiters, "%s has %u limiters, %s has %u", a->step->full_id, a->n_limiters,
		     b->step->full_id, b->n_limiters);
	for (unsigned i = 0; i < a->n_limiters; i++)
		cr_assert_eq(a->limiters[i], b->limiters[i], "%s and %s differ at limiter %u", a->step->full_id,
			     b->step->full_id, i);
}

TestSuite(fanout_graph, .fini = graph_teardown);

static const char *const handler_plan = "semaphores: { db: 1 }\n"
					"steps:\n"
					"  - id: deploy\n"
					"    run: ./deploy\n"
					"    timeout: 10s\n"
					"    max_concurrency: 1\n"
					"    semaphore: db\n"
					"    on_failure: [echo a, echo b]\n"
					"    finally: [echo c]\n"
					"  - id: plain\n"
					"    run: x\n"
					"finally:\n"
					"  - echo end\n";

Test(fanout_graph, handlers_get_nodes)
{
	struct graph *g = compile_src(handler_plan);
	const struct step *deploy = plan_find_step(GP, "deploy");
	cr_assert_not_null(deploy);
	const struct gnode *n = gnode_of(g, deploy);
	cr_assert_null(n->handlers[HANDLER_SUCCESS]);
	cr_assert_not_null(n->handlers[HANDLER_FAILURE]);
	cr_assert_not_null(n->handlers[HANDLER_FINALLY]);
	cr_assert_eq(n->handlers[HANDLER_FAILURE]->step, deploy->handlers[HANDLER_FAILURE]);
	cr_assert_eq(n->handlers[HANDLER_FINALLY]->step, deploy->handlers[HANDLER_FINALLY]);
	cr_assert_eq(n->handlers[HANDLER_FAILURE]->nkids, 2);
	cr_assert_eq(n->handlers[HANDLER_FAILURE]->kids[1], gnode_id(g, "deploy.on_failure.run-2"));
	cr_assert_eq(n->nkids, 0, "handlers are not children");
	/* the plan's own handlers hang on the root node */
	cr_assert_not_null(g->nodes[0].handlers[HANDLER_FINALLY]);
	cr_assert_eq(g->nodes[0].handlers[HANDLER_FINALLY]->step, GP->root->handlers[HANDLER_FINALLY]);
	cr_assert_eq(g->nodes[0].handlers[HANDLER_FINALLY]->kids[0], gnode_id(g, "finally.run-1"));
	/* root, deploy, on_failure + 2, finally + 1, plain, plan finally + 1 */
	cr_assert_eq(g->n, 10);
	for (size_t i = 0; i < g->n; i++)
		cr_assert_eq(g->nodes[i].index, i);
}

Test(fanout_graph, handlers_inherit_the_steps_limiters_and_timeout)
{
	struct graph *g = compile_src(handler_plan);
	const struct gnode *n = gnode_id(g, "deploy");
	cr_assert_eq(n->timeout_ms, 10000);
	cr_assert_eq(n->n_limiters, 3, "global, max_concurrency, semaphore");
	const char *const hs[] = {"deploy.on_failure", "deploy.on_failure.run-1", "deploy.on_failure.run-2",
				  "deploy.finally", "deploy.finally.run-1"};
	for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
		const struct gnode *h = gnode_id(g, hs[i]);
		cr_assert_eq(h->timeout_ms, 10000, "%s: timeout %llu", hs[i], (unsigned long long)h->timeout_ms);
		assert_same_limiters(h, n);
	}
	/* a sibling without them keeps only the global limit */
	const struct gnode *plain = gnode_id(g, "plain");
	cr_assert_eq(plain->n_limiters, 1);
	cr_assert_eq(plain->timeout_ms, 0);
}

Test(fanout_graph, handlers_are_not_counted_as_tasks)
{
	struct graph *g = compile_src(handler_plan);
	cr_assert_eq(g->n_tasks, 2, "deploy and plain; handlers excluded");
	cr_assert(g->tasks_exact);
}

Test(fanout_graph, literal_for_each_multiplies_tasks)
{
	struct graph *g = compile_src("steps:\n"
				      "  - id: fan\n"
				      "    for_each: [a, b, c]\n"
				      "    steps: [x, y]\n"
				      "  - id: one\n"
				      "    run: z\n"
				      "  - id: each\n"
				      "    for_each: [1, 2]\n"
				      "    run: echo ${{ item }}\n");
	cr_assert_eq(g->n_tasks, 3 * 2 + 1 + 2);
	cr_assert(g->tasks_exact);
}

Test(fanout_graph, nested_literal_for_each_multiplies_twice)
{
	struct graph *g = compile_src("steps:\n"
				      "  - for_each: [a, b]\n"
				      "    steps:\n"
				      "      - run: setup\n"
				      "      - for_each: [1, 2, 3]\n"
				      "        run: echo ${{ item }}\n");
	cr_assert_eq(g->n_tasks, 2 * (1 + 3));
	cr_assert(g->tasks_exact);
}

/* A list from vars is known before the run; one from a step's output is not. */
Test(fanout_graph, expression_for_each_over_vars_is_exact)
{
	struct graph *g = compile_src("vars:\n"
				      "  l: [a, b, c]\n"
				      "steps:\n"
				      "  - run: first\n"
				      "  - for_each: ${{ vars.l }}\n"
				      "    run: echo ${{ item }}\n");
	cr_assert(g->tasks_exact);
	cr_assert_eq(g->n_tasks, 4);
}

Test(fanout_graph, expression_for_each_over_output_is_not_exact)
{
	struct graph *g = compile_src("steps:\n"
				      "  - id: list\n"
				      "    run: printf 'a\\nb\\n'\n"
				      "  - for_each: ${{ steps.list.stdout_lines }}\n"
				      "    run: echo ${{ item }}\n");
	cr_assert_not(g->tasks_exact);
	cr_assert_geq(g->n_tasks, 2);
}
