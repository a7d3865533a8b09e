/*
 * Loader and validator for the fan-out keys (plan-format.md sections 3-6):
 * for_each, batch, barrier, async / join, on_success / on_failure / finally,
 * and where item, index, result, error, results and async.NAME may be read.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "plan/plan.h"

static const struct step *step_at(const struct plan *p, const char *full_id)
{
	const struct step *s = plan_find_step(p, full_id);
	cr_assert_not_null(s, "no step with full id %s", full_id);
	return s;
}

static json_t *static_lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used,
			     char **err)
{
	return plan_lookup_static(ud, root, segs, nsegs, used, err);
}

/* ---- for_each ---- */

Test(fanout_load, for_each_literal_list)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - id: greet\n"
				    "    for_each: [a, 2, true, \"x ${{ vars.v }}\"]\n"
				    "    run: echo ${{ item }} ${{ index }}\n"
				    "vars: { v: 1 }\n");
	const struct step *s = step_at(p, "greet");
	cr_assert(step_is_foreach(s));
	cr_assert_null(s->fan->for_each_expr);
	cr_assert(json_is_array(s->fan->for_each));
	cr_assert_eq(json_array_size(s->fan->for_each), 4);
	cr_assert_str_eq(json_string_value(json_array_get(s->fan->for_each, 0)), "a");
	cr_assert(json_is_integer(json_array_get(s->fan->for_each, 1)));
	cr_assert_eq(json_integer_value(json_array_get(s->fan->for_each, 1)), 2);
	cr_assert(json_is_true(json_array_get(s->fan->for_each, 2)));
	cr_assert_str_eq(json_string_value(json_array_get(s->fan->for_each, 3)), "x ${{ vars.v }}",
			 "strings keep their ${{ }} for the run");
	plan_free(p);
}

Test(fanout_load, a_step_without_for_each_is_not_a_fan_out_over_items)
{
	struct plan *p = th_load_ok("steps: [a]\n");
	const struct step *s = step_at(p, "run-1");
	cr_assert_not(step_is_foreach(s));
	cr_assert_null(s->fan->for_each);
	cr_assert_null(s->fan->for_each_expr);
	cr_assert_not(s->fan->has_batch);
	plan_free(p);
}

Test(fanout_load, for_each_expression_with_and_without_braces)
{
	struct plan *p = th_load_ok("vars:\n"
				    "  hosts: [web1, web2]\n"
				    "steps:\n"
				    "  - id: braced\n"
				    "    for_each: ${{ vars.hosts }}\n"
				    "    run: echo ${{ item }}\n"
				    "  - id: bare\n"
				    "    for_each: vars.hosts\n"
				    "    run: echo ${{ item }}\n");
	const char *const ids[] = {"braced", "bare"};
	for (size_t i = 0; i < 2; i++) {
		const struct step *s = step_at(p, ids[i]);
		cr_assert(step_is_foreach(s), "%s", ids[i]);
		cr_assert_null(s->fan->for_each, "%s", ids[i]);
		cr_assert_not_null(s->fan->for_each_expr, "%s", ids[i]);
		struct expr_scope scope = {static_lookup, p};
		char *err = NULL;
		json_t *v = expr_eval(s->fan->for_each_expr, &scope, &err);
		cr_assert_not_null(v, "%s: %s", ids[i], err ? err : "");
		cr_assert(json_is_array(v), "%s", ids[i]);
		cr_assert_eq(json_array_size(v), 2, "%s", ids[i]);
		cr_assert_str_eq(json_string_value(json_array_get(v, 1)), "web2", "%s", ids[i]);
		json_decref(v);
	}
	plan_free(p);
}

Test(fanout_load, for_each_on_a_map_is_an_error)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    for_each: { x: 1 }\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'for_each' must be a list or an expression giving a list, not a map", 3, 15);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

Test(fanout_load, for_each_expression_that_does_not_parse)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    for_each: ${{ vars.l == }}\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'for_each': ", 3, 15);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

/* ---- batch ---- */

Test(fanout_load, batch_staged_sizes_pause_and_max_failures)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - id: roll\n"
				    "    for_each: [1, 2, 3, 4, 5, 6]\n"
				    "    batch:\n"
				    "      size: [1, \"25%\", \"100%\"]\n"
				    "      pause: 90s\n"
				    "      max_failures: \"20%\"\n"
				    "    run: echo ${{ item }}\n");
	const struct step *s = step_at(p, "roll");
	cr_assert(s->fan->has_batch);
	const struct batch_spec *b = &s->fan->batch;
	cr_assert_eq(b->n_sizes, 3);
	cr_assert(b->sizes[0].set);
	cr_assert_not(b->sizes[0].percent);
	cr_assert_float_eq(b->sizes[0].value, 1.0, 1e-9);
	cr_assert(b->sizes[1].percent);
	cr_assert_float_eq(b->sizes[1].value, 25.0, 1e-9);
	cr_assert(b->sizes[2].percent);
	cr_assert_float_eq(b->sizes[2].value, 100.0, 1e-9);
	cr_assert_eq(b->pause_ms, 90000);
	cr_assert(b->max_failures.set);
	cr_assert(b->max_failures.percent);
	cr_assert_float_eq(b->max_failures.value, 20.0, 1e-9);
	size_t out[6];
	size_t nb = batch_sizes(b, json_array_size(s->fan->for_each), out);
	cr_assert_eq(nb, 3);
	cr_assert_eq(out[0], 1);
	cr_assert_eq(out[1], 2);
	cr_assert_eq(out[2], 3);
	plan_free(p);
}

Test(fanout_load, batch_single_int_and_percent_sizes)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - id: two\n"
				    "    for_each: [a, b, c]\n"
				    "    batch: { size: 2 }\n"
				    "    run: x\n"
				    "  - id: half\n"
				    "    for_each: [a, b, c]\n"
				    "    batch: { size: 50%, max_failures: 1 }\n"
				    "    run: x\n");
	const struct step *s = step_at(p, "two");
	cr_assert(s->fan->has_batch);
	cr_assert_eq(s->fan->batch.n_sizes, 1);
	cr_assert_not(s->fan->batch.sizes[0].percent);
	cr_assert_float_eq(s->fan->batch.sizes[0].value, 2.0, 1e-9);
	cr_assert_eq(s->fan->batch.pause_ms, 0);
	cr_assert_not(s->fan->batch.max_failures.set);

	s = step_at(p, "half");
	cr_assert_eq(s->fan->batch.n_sizes, 1);
	cr_assert(s->fan->batch.sizes[0].percent);
	cr_assert_float_eq(s->fan->batch.sizes[0].value, 50.0, 1e-9);
	cr_assert(s->fan->batch.max_failures.set);
	cr_assert_not(s->fan->batch.max_failures.percent);
	cr_assert_float_eq(s->fan->batch.max_failures.value, 1.0, 1e-9);
	plan_free(p);
}

Test(fanout_load, batch_without_for_each_is_an_error)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    batch: { size: 2 }\n"
		     "  - parallel: [b, c]\n"
		     "    batch: { size: 1 }\n",
		     &d);
	cr_assert_not_null(th_diag_find(&d, "'batch' needs a fan-out over items or hosts"));
	cr_assert_eq(d.v[0].line, 3);
	cr_assert_eq(d.v[0].col, 12);
	cr_assert_not_null(strstr(d.v[1].msg, "'batch' needs a fan-out over items or hosts"), "%s", d.v[1].msg);
	cr_assert_eq(d.v[1].line, 5);
	cr_assert_eq(d.v[1].col, 12);
	EXPECT_N(&d, 2);
	diags_free(&d);
}

Test(fanout_load, batch_size_zero_is_an_error)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - for_each: [a, b]\n"
		     "    run: x\n"
		     "    batch: { size: 0 }\n"
		     "  - for_each: [a, b]\n"
		     "    run: y\n"
		     "    batch:\n"
		     "      size: [1, \"0%\"]\n",
		     &d);
	TH_ASSERT_DIAG(&d, "a batch size must be at least 1", 4, 20);
	cr_assert_eq(d.v[1].line, 8);
	cr_assert_eq(d.v[1].col, 17);
	cr_assert_not_null(strstr(d.v[1].msg, "a batch size must be at least 1"));
	EXPECT_N(&d, 2);
	diags_free(&d);
}

Test(fanout_load, batch_needs_a_size_and_a_map)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - for_each: [a, b]\n"
		     "    run: x\n"
		     "    batch: { pause: 1s }\n"
		     "  - for_each: [a, b]\n"
		     "    run: y\n"
		     "    batch: 2\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'batch' needs a 'size'", 4, 12);
	TH_ASSERT_DIAG(&d, "'batch' must be a map with size, pause and max_failures", 7, 12);
	diags_free(&d);
}

Test(fanout_load, batch_bad_percentage)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - for_each: [a, b]\n"
		     "    run: x\n"
		     "    batch:\n"
		     "      size: 150%\n"
		     "      max_failures: lots\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'size': bad percentage '150%'", 5, 13);
	TH_ASSERT_DIAG(&d, "'max_failures' must be a count or a percentage", 6, 21);
	EXPECT_N(&d, 2);
	diags_free(&d);
}

Test(fanout_load, unknown_batch_key_suggests_the_close_one)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - for_each: [a, b]\n"
		     "    run: x\n"
		     "    batch:\n"
		     "      size: 1\n"
		     "      max_failure: 2\n"
		     "      pasue: 5s\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown key 'max_failure' in batch; did you mean 'max_failures'?", 6, 7);
	TH_ASSERT_DIAG(&d, "unknown key 'pasue' in batch; did you mean 'pause'?", 7, 7);
	EXPECT_N(&d, 2);
	diags_free(&d);
}

/* ---- barrier ---- */

Test(fanout_load, barrier_name_and_map_form)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - id: par\n"
				    "    parallel:\n"
				    "      - id: one\n"
				    "        steps:\n"
				    "          - run: a\n"
				    "          - barrier: ready\n"
				    "      - id: two\n"
				    "        steps:\n"
				    "          - run: b\n"
				    "          - barrier: { name: ready, timeout: 30s }\n");
	const struct step *b1 = step_at(p, "par.one.barrier-2");
	cr_assert_eq(b1->kind, STEP_BARRIER);
	cr_assert_str_eq(b1->barrier, "ready");
	cr_assert_eq(b1->barrier_timeout_ms, 0);
	const struct step *b2 = step_at(p, "par.two.barrier-2");
	cr_assert_eq(b2->kind, STEP_BARRIER);
	cr_assert_str_eq(b2->barrier, "ready");
	cr_assert_eq(b2->barrier_timeout_ms, 30000);
	plan_free(p);
}

Test(fanout_load, barrier_map_needs_a_name)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - for_each: [a, b]\n"
		     "    steps:\n"
		     "      - barrier: { timeout: 5s, nmae: x }\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown key 'nmae' in barrier; did you mean 'name'?", 4, 33);
	TH_ASSERT_DIAG(&d, "a barrier needs a 'name'", 4, 18);
	diags_free(&d);
}

Test(fanout_load, barrier_outside_any_fan_out_is_an_error)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "  - barrier: ready\n"
		     "  - steps:\n"
		     "      - barrier: { name: inner }\n",
		     &d);
	TH_ASSERT_DIAG(&d, "barrier 'ready' is outside any fan-out", 3, 5);
	TH_ASSERT_DIAG(&d, "barrier 'inner' is outside any fan-out", 5, 9);
	EXPECT_N(&d, 2);
	diags_free(&d);
}

Test(fanout_load, barrier_in_plan_handlers_is_outside_any_fan_out)
{
	struct diags d = {0};
	th_load_fail("steps: [a]\n"
		     "finally:\n"
		     "  - barrier: end\n",
		     &d);
	TH_ASSERT_DIAG(&d, "barrier 'end' is outside any fan-out", 3, 5);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

Test(fanout_load, barrier_directly_as_a_parallel_branch_is_an_error)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - parallel:\n"
		     "      - run: a\n"
		     "      - barrier: ready\n",
		     &d);
	TH_ASSERT_DIAG(&d, "barrier 'ready' is itself a branch, so it has nothing to wait for", 4, 9);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

Test(fanout_load, barrier_inside_branches_stages_and_for_each_groups_is_fine)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - parallel:\n"
				    "      - steps: [a, { barrier: p }, b]\n"
				    "      - steps: [c, { barrier: p }]\n"
				    "  - for_each: [x, y]\n"
				    "    steps:\n"
				    "      - run: echo ${{ item }}\n"
				    "      - barrier: mid\n"
				    "      - steps:\n"
				    "          - barrier: deeper\n"
				    "      - run: echo after\n"
				    "  - stages:\n"
				    "      - name: one\n"
				    "        steps:\n"
				    "          - steps: [a, { barrier: s }]\n"
				    "          - steps: [b, { barrier: s }]\n");
	const struct step *b = step_at(p, "steps-2.barrier-2");
	cr_assert_eq(b->kind, STEP_BARRIER);
	cr_assert_str_eq(b->barrier, "mid");
	cr_assert_str_eq(step_at(p, "steps-2.steps-3.barrier-1")->barrier, "deeper");
	cr_assert_str_eq(step_at(p, "parallel-1.steps-2.barrier-2")->barrier, "p");
	plan_free(p);
}

/* ---- async and join ---- */

Test(fanout_load, async_name_and_join)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - id: warm\n"
				    "    run: ./warm-cache\n"
				    "    async: cache\n"
				    "  - id: build\n"
				    "    run: make\n"
				    "    async: build\n"
				    "  - run: echo meanwhile\n"
				    "  - id: one\n"
				    "    join: cache\n"
				    "  - id: both\n"
				    "    join: [cache, build]\n");
	cr_assert_str_eq(step_at(p, "warm")->mods->async, "cache");
	cr_assert_str_eq(step_at(p, "build")->mods->async, "build");
	cr_assert_null(step_at(p, "run-3")->mods->async);
	const struct step *j = step_at(p, "one");
	cr_assert_eq(j->kind, STEP_JOIN);
	cr_assert_eq(j->n_join, 1);
	cr_assert_str_eq(j->join[0], "cache");
	j = step_at(p, "both");
	cr_assert_eq(j->kind, STEP_JOIN);
	cr_assert_eq(j->n_join, 2);
	cr_assert_str_eq(j->join[0], "cache");
	cr_assert_str_eq(j->join[1], "build");
	plan_free(p);
}

Test(fanout_load, async_in_a_nested_sequence_and_in_a_handler_is_fine)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - id: grp\n"
				    "    steps:\n"
				    "      - run: a\n"
				    "        async: inner\n"
				    "      - join: inner\n"
				    "    finally:\n"
				    "      - run: b\n"
				    "        async: cleanup\n"
				    "      - join: cleanup\n");
	cr_assert_str_eq(step_at(p, "grp.run-1")->mods->async, "inner");
	cr_assert_str_eq(step_at(p, "grp.finally.run-1")->mods->async, "cleanup");
	plan_free(p);
}

Test(fanout_load, duplicate_async_names)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    async: warm\n"
		     "  - run: b\n"
		     "    async: warm\n",
		     &d);
	TH_ASSERT_DIAG(&d, "async name 'warm' is already used at line 3", 5, 12);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

Test(fanout_load, async_inside_a_for_each_is_an_error)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - for_each: [a, b]\n"
		     "    steps:\n"
		     "      - run: x\n"
		     "        async: bg\n"
		     "  - for_each: [c]\n"
		     "    run: y\n"
		     "    async: self\n",
		     &d);
	TH_ASSERT_DIAG(&d, "async step 'bg' must stand in a sequence of steps, outside any for_each", 4, 9);
	TH_ASSERT_DIAG(&d, "async step 'self' must stand in a sequence of steps, outside any for_each", 6, 5);
	EXPECT_N(&d, 2);
	diags_free(&d);
}

Test(fanout_load, async_directly_in_a_parallel_is_an_error)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - parallel:\n"
		     "      - run: x\n"
		     "        async: bg\n"
		     "      - run: y\n",
		     &d);
	TH_ASSERT_DIAG(&d, "async step 'bg' must stand in a sequence of steps", 3, 9);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

Test(fanout_load, join_of_an_unknown_name)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    async: warm\n"
		     "  - join: [warm, cold]\n"
		     "  - join: colder\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'join': no async step named 'cold'", 4, 18);
	TH_ASSERT_DIAG(&d, "'join': no async step named 'colder'", 5, 11);
	EXPECT_N(&d, 2);
	diags_free(&d);
}

Test(fanout_load, join_must_name_something)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    async: warm\n"
		     "  - join: []\n"
		     "  - join: { name: warm }\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'join' takes an async name or a list of them", 4, 11);
	cr_assert_eq(d.v[1].line, 5);
	cr_assert_eq(d.v[1].col, 11);
	EXPECT_N(&d, 2);
	diags_free(&d);
}

/* ---- handlers ---- */

static const char *const handlers_src = "steps:\n"
					"  - id: deploy\n"
					"    run: ./deploy\n"
					"    on_success:\n"
					"      - echo ok\n"
					"    on_failure:\n"
					"      - run: echo failed ${{ error }}\n"
					"      - run: echo ${{ result.exit_code }} ${{ result.stderr }}\n"
					"    finally: [echo done]\n"
					"  - id: after\n"
					"    run: echo next\n"
					"on_failure:\n"
					"  - echo plan failed\n"
					"finally:\n"
					"  - run: echo ${{ results }}\n"
					"  - run: echo two\n";

Test(fanout_load, step_handlers_parsed_with_full_ids)
{
	struct plan *p = th_load_ok(handlers_src);
	const struct step *s = step_at(p, "deploy");
	const char *const names[] = {"deploy.on_success", "deploy.on_failure", "deploy.finally"};
	const size_t kids[] = {1, 2, 1};
	for (int k = 0; k < HANDLER__COUNT; k++) {
		const struct step *h = s->handlers[k];
		cr_assert_not_null(h, "%s", handler_name((enum handler_kind)k));
		cr_assert_eq(h->kind, STEP_STEPS);
		cr_assert(h->is_handler);
		cr_assert_eq(h->parent, s);
		cr_assert_str_eq(h->id, handler_name((enum handler_kind)k));
		cr_assert_str_eq(h->full_id, names[k]);
		cr_assert_eq(h->n_children, kids[k]);
		cr_assert_eq(plan_find_step(p, names[k]), h);
		cr_assert_not(h->children[0]->is_handler);
	}
	cr_assert_eq(s->n_children, 0, "handlers are not children");
	cr_assert_str_eq(s->handlers[HANDLER_SUCCESS]->children[0]->full_id, "deploy.on_success.run-1");
	cr_assert_str_eq(s->handlers[HANDLER_FAILURE]->children[0]->full_id, "deploy.on_failure.run-1");
	cr_assert_str_eq(s->handlers[HANDLER_FAILURE]->children[1]->full_id, "deploy.on_failure.run-2");
	cr_assert_str_eq(s->handlers[HANDLER_FINALLY]->children[0]->full_id, "deploy.finally.run-1");
	cr_assert_eq(step_at(p, "deploy.on_failure.run-2"), s->handlers[HANDLER_FAILURE]->children[1]);
	cr_assert_eq(step_at(p, "deploy.on_failure.run-2")->parent, s->handlers[HANDLER_FAILURE]);
	for (int k = 0; k < HANDLER__COUNT; k++)
		cr_assert_null(step_at(p, "after")->handlers[k]);
	plan_free(p);
}

Test(fanout_load, plan_handlers_hang_on_the_root)
{
	struct plan *p = th_load_ok(handlers_src);
	const struct step *r = p->root;
	cr_assert_null(r->handlers[HANDLER_SUCCESS]);
	const struct step *f = r->handlers[HANDLER_FAILURE];
	cr_assert_not_null(f);
	cr_assert(f->is_handler);
	cr_assert_str_eq(f->full_id, "on_failure");
	cr_assert_eq(f->n_children, 1);
	cr_assert_str_eq(f->children[0]->full_id, "on_failure.run-1");
	const struct step *fin = r->handlers[HANDLER_FINALLY];
	cr_assert_not_null(fin);
	cr_assert_str_eq(fin->full_id, "finally");
	cr_assert_eq(fin->n_children, 2);
	cr_assert_str_eq(fin->children[0]->full_id, "finally.run-1");
	cr_assert_str_eq(fin->children[1]->full_id, "finally.run-2");
	cr_assert_eq(step_at(p, "finally.run-2"), fin->children[1]);
	cr_assert_eq(r->n_children, 2, "plan handlers are not steps of the plan");
	plan_free(p);
}

Test(fanout_load, handler_must_be_a_non_empty_list)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    on_failure: echo oops\n"
		     "  - run: b\n"
		     "    finally: []\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'on_failure' must be a list of steps", 3, 17);
	TH_ASSERT_DIAG(&d, "'finally' needs at least one step", 5, 14);
	EXPECT_N(&d, 2);
	diags_free(&d);
}

/* ---- where item, index, result, error, results and async.NAME may be read ---- */

Test(fanout_load, item_and_index_outside_for_each)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: echo ${{ item }}\n"
		     "  - run: echo x\n"
		     "    when: index > 0\n"
		     "  - steps:\n"
		     "      - run: [echo, \"${{ index }}\"]\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'run': 'item' is defined only inside a for_each step", 2, 15);
	TH_ASSERT_DIAG(&d, "'when': 'index' is defined only inside a for_each step", 4, 11);
	cr_assert_eq(d.v[2].line, 6);
	cr_assert_eq(d.v[2].col, 22); /* the ${{ inside the quotes */
	cr_assert_not_null(strstr(d.v[2].msg, "'index' is defined only inside a for_each step"), "%s", d.v[2].msg);
	EXPECT_N(&d, 3);
	diags_free(&d);
}

Test(fanout_load, item_and_index_inside_for_each)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - for_each: [a, b]\n"
				    "    when: item != \"b\" && index < 5\n"
				    "    env: { ITEM: \"${{ item }}\" }\n"
				    "    cwd: /tmp/${{ index }}\n"
				    "    run: echo ${{ item }} ${{ index }}\n"
				    "  - for_each: [1, 2]\n"
				    "    steps:\n"
				    "      - run: echo ${{ item }}\n"
				    "        when: index == 0\n"
				    "        env: { I: \"${{ index }}\" }\n"
				    "      - steps:\n"
				    "          - run: [echo, \"${{ item }}\"]\n"
				    "      - parallel:\n"
				    "          - echo ${{ index }}\n");
	plan_free(p);
}

Test(fanout_load, item_in_for_each_own_expression)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: x\n"
		     "    for_each: ${{ item }}\n",
		     &d);
	/* reported where the expression stands, as 'when' and templates are */
	TH_ASSERT_DIAG(&d, "'for_each': 'item' is defined only inside a for_each step", 3, 15);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

Test(fanout_load, index_in_for_each_own_bare_expression)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: x\n"
		     "    for_each: index\n",
		     &d);
	cr_assert_not_null(th_diag_find(&d, "'for_each': 'index' is defined only inside a for_each step"));
	EXPECT_N(&d, 1);
	diags_free(&d);
}

/* The list of an inner for_each is computed inside the outer one's instance: the outer item is there. */
Test(fanout_load, outer_item_in_a_nested_for_each_list)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - for_each: [[1, 2], [3]]\n"
				    "    steps:\n"
				    "      - id: inner\n"
				    "        for_each: ${{ item }}\n"
				    "        run: echo ${{ item }}\n");
	cr_assert_not_null(step_at(p, "steps-1.inner")->fan->for_each_expr);
	plan_free(p);
}

/* Literal list items may hold ${{ }}; they are computed before any item exists, like the expression form. */
Test(fanout_load, item_in_for_each_own_literal_list)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: x\n"
		     "    for_each: [a, \"${{ item }}-2\"]\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'item' is defined only inside a for_each step", 3, 20);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

/* A literal list item is checked like any other string: unknown contexts are errors. */
Test(fanout_load, for_each_literal_items_are_checked)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: x\n"
		     "    for_each: [a, \"${{ varz.b }}\"]\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown context 'varz'; did you mean 'vars'?", 3, 20);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

Test(fanout_load, result_error_results_outside_handlers)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: echo ${{ result.stdout }}\n"
		     "  - run: echo ${{ error }}\n"
		     "  - run: echo ${{ results }}\n"
		     "  - run: x\n"
		     "    when: result.exit_code == 0\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'run': 'result' is defined only inside on_success, on_failure and finally", 2, 15);
	TH_ASSERT_DIAG(&d, "'run': 'error' is defined only inside on_success, on_failure and finally", 3, 15);
	TH_ASSERT_DIAG(&d, "'run': 'results' is defined only inside on_success, on_failure and finally", 4, 15);
	TH_ASSERT_DIAG(&d, "'when': 'result' is defined only inside on_success", 6, 11);
	EXPECT_N(&d, 4);
	diags_free(&d);
}

Test(fanout_load, result_error_results_inside_handlers)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - parallel: [a, b]\n"
				    "    on_success:\n"
				    "      - run: echo ${{ results }}\n"
				    "    on_failure:\n"
				    "      - steps:\n"
				    "          - run: echo ${{ error }}\n"
				    "            when: result.status == \"failed\"\n"
				    "    finally:\n"
				    "      - run: echo ${{ result.duration_ms }}\n"
				    "finally:\n"
				    "  - run: echo ${{ result.status }} ${{ error }}\n");
	plan_free(p);
}

Test(fanout_load, async_context_must_name_an_async_step)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: make\n"
		     "    async: build\n"
		     "  - join: build\n"
		     "  - run: echo ${{ async.build.stdout }}\n"
		     "  - run: echo ${{ async.biuld.stdout }}\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'run': no async step named 'biuld'; did you mean 'build'?", 6, 15);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

Test(fanout_load, async_context_alone_is_not_enough)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: make\n"
		     "    async: build\n"
		     "  - run: x\n"
		     "    when: async\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'when': no async step named", 5, 11);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

/* ---- modes on for_each ---- */

Test(fanout_load, mode_and_min_success_on_a_for_each_step)
{
	struct plan *p = th_load_ok("vars: { l: [a, b] }\n"
				    "steps:\n"
				    "  - id: any\n"
				    "    for_each: [a, b, c]\n"
				    "    mode: any\n"
				    "    run: x\n"
				    "  - id: half\n"
				    "    for_each: [a, b, c]\n"
				    "    min_success: \"50%\"\n"
				    "    run: y\n"
				    "  - id: two\n"
				    "    for_each: ${{ vars.l }}\n"
				    "    min_success: 2\n"
				    "    mode: settle\n"
				    "    steps: [z]\n");
	const struct step *s = step_at(p, "any");
	cr_assert(s->fan->has_mode);
	cr_assert_eq(s->fan->mode, MODE_ANY);
	s = step_at(p, "half");
	cr_assert(s->fan->min_success.set);
	cr_assert(s->fan->min_success.percent);
	cr_assert_float_eq(s->fan->min_success.value, 50.0, 1e-9);
	s = step_at(p, "two");
	cr_assert_eq(s->fan->mode, MODE_SETTLE);
	cr_assert_float_eq(s->fan->min_success.value, 2.0, 1e-9);
	plan_free(p);
}

Test(fanout_load, mode_on_a_plain_run_step_is_still_an_error)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: x\n"
		     "    min_success: 1\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'min_success' applies only to a fan-out", 3, 18);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

/* ---- hosts ---- */

/* The host keys no longer count as "not supported yet": their errors are ordinary ones. */
Test(fanout_load, hosts_keys_are_supported_now)
{
	struct diags d = {0};
	th_load_fail("inventory: { hosts: { web1: {} } }\n"
		     "ssh: { user: deploy }\n"
		     "steps:\n"
		     "  - run: a\n"
		     "    on: web1\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown key 'user' in ssh", 2, 8);
	cr_assert_null(th_diag_find(&d, "not supported yet"));
	EXPECT_N(&d, 1);
	diags_free(&d);
}

/* The keys issue 3 brought no longer count as "not supported yet". */
Test(fanout_load, fan_out_keys_are_supported_now)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - run: b\n"
				    "    for_each: [1, 2]\n"
				    "  - run: c\n"
				    "    async: bg\n"
				    "  - for_each: [1, 2]\n"
				    "    steps: [{ barrier: drained }]\n"
				    "  - join: bg\n");
	plan_free(p);
}
