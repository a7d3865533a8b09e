/*
 * Loader: plan_load_buffer on literal YAML — ids and full ids, shorthands,
 * durations, retry, semaphores, defaults, typed vars, overrides, the step
 * index and step references.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "plan/plan.h"

static const char *const full_plan =
	"name: Deploy Web\n"
	"description: a test plan\n"
	"vars:\n"
	"  plain: 3\n"
	"  quoted: \"3\"\n"
	"  version: 1.40\n"
	"  ratio: 1.5\n"
	"  flag: true\n"
	"  nothing: null\n"
	"  list: [a, b]\n"
	"  nested: {k: v}\n"
	"concurrency: 8\n"
	"semaphores: { registry: 2, db: 1 }\n"
	"timeout: 1h\n"
	"defaults:\n"
	"  timeout: 5m\n"
	"  retry: { attempts: 3, delay: 2s, backoff: 3, max_delay: 30s, jitter: 0.5 }\n"
	"  shell: bash\n"
	"steps:\n"
	"  - name: prepare\n"
	"    parallel:\n"
	"      - run: git fetch --all\n"
	"      - run: make lint\n"
	"        continue_on_error: true\n"
	"  - name: Build It!\n"
	"    run: make build VERSION=${{ vars.version }}\n"
	"  - name: test\n"
	"    stages:\n"
	"      - { name: unit, steps: [make test-unit, make test-lint] }\n"
	"      - { name: integration, steps: [make test-integration] }\n"
	"  - sleep: 10s\n"
	"  - run: [echo, hello world, \"${{ vars.version }}\"]\n"
	"  - id: custom\n"
	"    name: Custom Name\n"
	"    run: echo custom\n";

static size_t count_tree(const struct step *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n_children; i++)
		n += 1 + count_tree(s->children[i]);
	return n;
}

Test(loader, valid_plan_loads_with_top_level_fields)
{
	struct plan *p = th_load_ok(full_plan);
	cr_assert_str_eq(p->file, "plan.yaml");
	cr_assert_str_eq(p->name, "Deploy Web");
	cr_assert_str_eq(p->description, "a test plan");
	cr_assert_eq(p->concurrency, 8);
	cr_assert_eq(p->timeout_ms, 3600000u);
	cr_assert_not_null(p->root);
	cr_assert_eq(p->root->kind, STEP_STEPS);
	cr_assert_eq(p->root->n_children, 6);
	cr_assert_eq(p->root->children[0]->kind, STEP_PARALLEL);
	cr_assert_eq(p->root->children[1]->kind, STEP_RUN);
	cr_assert_eq(p->root->children[2]->kind, STEP_STAGES);
	cr_assert_eq(p->root->children[3]->kind, STEP_SLEEP);
	cr_assert_eq(p->root->children[3]->sleep_ms, 10000u);
	cr_assert_eq(p->root->children[4]->kind, STEP_RUN);
	cr_assert(p->root->children[0]->children[1]->continue_on_error);
	cr_assert_not(p->root->children[0]->children[0]->continue_on_error);
	plan_free(p);
}

Test(loader, plan_name_defaults_to_file_name_without_extension)
{
	struct diags d = {0};
	const char *y = "steps: [echo hi]\n";
	struct plan *p = plan_load_buffer("dir/deploy.prod.yaml", y, strlen(y), NULL, &d);
	cr_assert_not_null(p);
	cr_assert_eq(d.n, 0);
	cr_assert_str_eq(p->name, "deploy.prod");
	plan_free(p);
	diags_free(&d);
}

Test(loader, ids_default_to_slug_then_kind_n_and_explicit_ids_are_kept)
{
	struct plan *p = th_load_ok(full_plan);
	struct step **c = p->root->children;
	cr_assert_str_eq(c[0]->id, "prepare");
	cr_assert_str_eq(c[1]->id, "build-it");
	cr_assert_str_eq(c[1]->name, "Build It!");
	cr_assert_str_eq(c[2]->id, "test");
	cr_assert_str_eq(c[3]->id, "sleep-4");
	cr_assert_str_eq(c[4]->id, "run-5");
	cr_assert_str_eq(c[5]->id, "custom"); /* explicit id wins over the name's slug */
	cr_assert_str_eq(c[5]->name, "Custom Name");
	cr_assert_str_eq(c[0]->children[0]->id, "run-1");
	cr_assert_str_eq(c[0]->children[1]->id, "run-2");
	plan_free(p);
}

Test(loader, full_ids_join_ancestor_ids_with_dots)
{
	struct plan *p = th_load_ok(full_plan);
	struct step *test = p->root->children[2];
	cr_assert_str_eq(test->full_id, "test");
	cr_assert_eq(test->n_children, 2);
	cr_assert_eq(test->children[0]->kind, STEP_STAGE);
	cr_assert_str_eq(test->children[0]->full_id, "test.unit");
	cr_assert_str_eq(test->children[0]->children[0]->full_id, "test.unit.run-1");
	cr_assert_str_eq(test->children[0]->children[1]->full_id, "test.unit.run-2");
	cr_assert_str_eq(test->children[1]->full_id, "test.integration");
	cr_assert_str_eq(test->children[1]->children[0]->full_id, "test.integration.run-1");
	cr_assert_str_eq(p->root->children[0]->children[1]->full_id, "prepare.run-2");
	cr_assert_eq(test->children[0]->children[0]->parent, test->children[0]);
	cr_assert_eq(test->parent, p->root);
	plan_free(p);
}

Test(loader, step_order_is_pre_order_position)
{
	struct plan *p = th_load_ok(full_plan);
	struct step **c = p->root->children;
	cr_assert_eq(c[0]->order, 1);
	cr_assert_eq(c[0]->children[0]->order, 2);
	cr_assert_eq(c[0]->children[1]->order, 3);
	cr_assert_eq(c[1]->order, 4);
	cr_assert_eq(c[2]->order, 5);
	cr_assert_eq(c[2]->children[0]->order, 6);
	cr_assert_eq(c[2]->children[0]->children[0]->order, 7);
	cr_assert(c[5]->order > c[4]->order);
	plan_free(p);
}

Test(loader, default_id_collisions_get_a_position_suffix)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - { name: build, run: a }\n"
				    "  - { name: Build, run: b }\n"
				    "  - { name: other, run: c }\n");
	struct step **c = p->root->children;
	cr_assert_str_eq(c[0]->id, "build");
	cr_assert_str_eq(c[1]->id, "build-2");
	cr_assert_str_eq(c[2]->id, "other");
	plan_free(p);
}

Test(loader, default_slug_avoids_an_explicit_sibling_id)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - { name: deploy, run: a }\n"
				    "  - { id: deploy, run: b }\n");
	struct step **c = p->root->children;
	cr_assert_str_eq(c[1]->id, "deploy");
	cr_assert_str_neq(c[0]->id, "deploy");
	cr_assert_str_eq(c[0]->id, "deploy-1");
	plan_free(p);
}

/* Sibling ids must be unique: a generated id may not take an id written later in the list. */
Test(loader, generated_ids_never_duplicate_an_explicit_sibling_id)
{
	struct diags d = {0};
	const char *y = "steps:\n"
			"  - echo a\n"
			"  - { id: run-1, run: echo b }\n"
			"  - { name: build, run: c }\n"
			"  - { name: build, run: d }\n"
			"  - { id: build-4, run: e }\n";
	struct plan *p = plan_load_buffer("plan.yaml", y, strlen(y), NULL, &d);
	/* loading may refuse the plan; it may not give two siblings one id */
	char msg[256] = "";
	if (p) {
		struct step **c = p->root->children;
		for (size_t i = 0; i < p->root->n_children && !*msg; i++)
			for (size_t j = i + 1; j < p->root->n_children && !*msg; j++)
				if (!strcmp(c[i]->id, c[j]->id))
					snprintf(msg, sizeof msg, "steps %zu and %zu both have id '%s'", i + 1, j + 1,
						 c[i]->id);
		if (!*msg && plan_find_step(p, "run-1") != c[1])
			snprintf(msg, sizeof msg, "run-1 does not find the step that declared it");
		if (!*msg && plan_find_step(p, "build-4") != c[4])
			snprintf(msg, sizeof msg, "build-4 does not find the step that declared it");
		plan_free(p);
	} else {
		cr_assert_gt(d.n, 0);
	}
	diags_free(&d);
	cr_assert_str_empty(msg, "%s", msg);
}

Test(loader, bare_string_step_is_a_run_step)
{
	struct plan *p = th_load_ok("steps:\n  - make build\n");
	struct step *s = p->root->children[0];
	cr_assert_eq(s->kind, STEP_RUN);
	cr_assert_not_null(s->run);
	cr_assert_null(s->argv);
	cr_assert_str_eq(tmpl_source(s->run), "make build");
	cr_assert(tmpl_is_literal(s->run));
	cr_assert_str_eq(s->id, "run-1");
	plan_free(p);
}

Test(loader, run_as_a_list_is_an_argv)
{
	struct plan *p = th_load_ok(full_plan);
	struct step *s = p->root->children[4];
	cr_assert_eq(s->kind, STEP_RUN);
	cr_assert_null(s->run);
	cr_assert_eq(s->argc, 3);
	cr_assert_str_eq(tmpl_source(s->argv[0]), "echo");
	cr_assert_str_eq(tmpl_source(s->argv[1]), "hello world");
	cr_assert_str_eq(tmpl_source(s->argv[2]), "${{ vars.version }}");
	cr_assert_not(tmpl_is_literal(s->argv[2]));
	plan_free(p);
}

Test(loader, durations_in_every_unit)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - { run: a, timeout: 250ms }\n"
				    "  - { run: b, timeout: 10s }\n"
				    "  - { run: c, timeout: 5m }\n"
				    "  - { run: d, timeout: 1h30m }\n"
				    "  - { run: e, timeout: 7 }\n"
				    "  - { run: f, kill_grace: 2s }\n"
				    "  - sleep: 250ms\n");
	struct step **c = p->root->children;
	cr_assert(c[0]->has_timeout);
	cr_assert_eq(c[0]->timeout_ms, 250u);
	cr_assert_eq(c[1]->timeout_ms, 10000u);
	cr_assert_eq(c[2]->timeout_ms, 300000u);
	cr_assert_eq(c[3]->timeout_ms, 5400000u);
	cr_assert_eq(c[4]->timeout_ms, 7000u);
	cr_assert_not(c[5]->has_timeout);
	cr_assert(c[5]->has_kill_grace);
	cr_assert_eq(c[5]->mods->kill_grace_ms, 2000u);
	cr_assert_eq(c[6]->sleep_ms, 250u);
	plan_free(p);
}

Test(loader, retry_integer_means_that_many_retries)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - { run: a, retry: 2 }\n"
				    "  - { run: b, retry: 0 }\n"
				    "  - run: c\n");
	struct step **c = p->root->children;
	cr_assert(c[0]->has_retry);
	cr_assert_eq(c[0]->retry->attempts, 3);
	cr_assert_eq(c[1]->retry->attempts, 1);
	cr_assert_not(c[2]->has_retry);
	cr_assert_eq(c[2]->retry->attempts, 1);
	/* the documented defaults for the rest */
	cr_assert_eq(c[0]->retry->delay_ms, 1000u);
	cr_assert_float_eq(c[0]->retry->backoff, 2.0, 1e-9);
	cr_assert_float_eq(c[0]->retry->jitter, 0.1, 1e-9);
	cr_assert_eq(c[0]->retry->max_delay_ms, 0u);
	cr_assert_null(c[0]->retry->on_exit);
	plan_free(p);
}

Test(loader, retry_map_sets_every_field)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - run: a\n"
				    "    retry: { attempts: 5, delay: 250ms, backoff: 1.5, max_delay: 1m, jitter: 0.25,"
				    " on_exit: [1, 75] }\n"
				    "  - run: b\n"
				    "    retry: { attempts: 2, on_exit: 3 }\n");
	const struct retry_spec *r = p->root->children[0]->retry;
	cr_assert_eq(r->attempts, 5);
	cr_assert_eq(r->delay_ms, 250u);
	cr_assert_float_eq(r->backoff, 1.5, 1e-9);
	cr_assert_eq(r->max_delay_ms, 60000u);
	cr_assert_float_eq(r->jitter, 0.25, 1e-9);
	cr_assert_eq(r->n_on_exit, 2);
	cr_assert_eq(r->on_exit[0], 1);
	cr_assert_eq(r->on_exit[1], 75);
	r = p->root->children[1]->retry;
	cr_assert_eq(r->attempts, 2);
	cr_assert_eq(r->n_on_exit, 1);
	cr_assert_eq(r->on_exit[0], 3);
	cr_assert_eq(r->delay_ms, 1000u);
	plan_free(p);
}

Test(loader, semaphores_are_declared_and_referenced)
{
	struct plan *p = th_load_ok("semaphores: { registry: 2, db: 1 }\n"
				    "steps:\n"
				    "  - { run: a, semaphore: db }\n"
				    "  - { run: b, semaphore: [registry, db] }\n");
	cr_assert_eq(p->n_semaphores, 2);
	cr_assert_str_eq(p->semaphores[0].name, "registry");
	cr_assert_eq(p->semaphores[0].capacity, 2);
	cr_assert_str_eq(p->semaphores[1].name, "db");
	cr_assert_eq(p->semaphores[1].capacity, 1);
	struct step **c = p->root->children;
	cr_assert_eq(c[0]->mods->n_semaphores, 1);
	cr_assert_str_eq(c[0]->mods->semaphores[0], "db");
	cr_assert_eq(c[1]->mods->n_semaphores, 2);
	cr_assert_str_eq(c[1]->mods->semaphores[0], "registry");
	cr_assert_str_eq(c[1]->mods->semaphores[1], "db");
	plan_free(p);
}

Test(loader, defaults_are_parsed_into_the_plan)
{
	struct plan *p = th_load_ok(full_plan);
	cr_assert(p->defaults.has_timeout);
	cr_assert_eq(p->defaults.timeout_ms, 300000u);
	cr_assert(p->defaults.has_retry);
	cr_assert_eq(p->defaults.retry->attempts, 3);
	cr_assert_eq(p->defaults.retry->delay_ms, 2000u);
	cr_assert_float_eq(p->defaults.retry->backoff, 3.0, 1e-9);
	cr_assert_eq(p->defaults.retry->max_delay_ms, 30000u);
	cr_assert_float_eq(p->defaults.retry->jitter, 0.5, 1e-9);
	cr_assert_str_eq(p->defaults.mods->shell, "bash");
	plan_free(p);
}

Test(loader, modifiers_are_parsed)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - parallel: [a, b, c]\n"
				    "    mode: settle\n"
				    "    min_success: 2\n"
				    "    max_concurrency: 2\n"
				    "    priority: -5\n"
				    "  - parallel: [a, b]\n"
				    "    min_success: \"50%\"\n"
				    "  - run: x\n"
				    "    when: ${{ vars.go }}\n"
				    "    env: { A: one, B: \"${{ vars.go }}\" }\n"
				    "    cwd: /tmp\n"
				    "    shell: /bin/bash -e\n"
				    "vars: { go: true }\n");
	struct step **c = p->root->children;
	cr_assert(c[0]->fan->has_mode);
	cr_assert_eq(c[0]->fan->mode, MODE_SETTLE);
	cr_assert(c[0]->fan->min_success.set);
	cr_assert_not(c[0]->fan->min_success.percent);
	cr_assert_float_eq(c[0]->fan->min_success.value, 2.0, 1e-9);
	cr_assert_eq(c[0]->max_concurrency, 2);
	cr_assert(c[0]->has_priority);
	cr_assert_eq(c[0]->priority, -5);
	cr_assert(c[1]->fan->min_success.percent);
	cr_assert_float_eq(c[1]->fan->min_success.value, 50.0, 1e-9);
	cr_assert_not_null(c[2]->mods->when);
	cr_assert_str_eq(c[2]->mods->when_src, " vars.go ");
	cr_assert_eq(c[2]->mods->n_env, 2);
	cr_assert_str_eq(c[2]->mods->env[0].key, "A");
	cr_assert_str_eq(c[2]->mods->env[0].value, "one");
	cr_assert_str_eq(c[2]->mods->env[1].key, "B");
	cr_assert_not_null(c[2]->mods->cwd);
	cr_assert_str_eq(tmpl_source(c[2]->mods->cwd), "/tmp");
	cr_assert_str_eq(c[2]->mods->shell, "/bin/bash -e");
	plan_free(p);
}

Test(loader, vars_keep_their_yaml_types)
{
	struct plan *p = th_load_ok(full_plan);
	json_t *v = p->vars;
	cr_assert(json_is_object(v));
	cr_assert(json_is_integer(json_object_get(v, "plain")));
	cr_assert_eq(json_integer_value(json_object_get(v, "plain")), 3);
	cr_assert(json_is_string(json_object_get(v, "quoted")));
	cr_assert_str_eq(json_string_value(json_object_get(v, "quoted")), "3");
	cr_assert(json_is_string(json_object_get(v, "version")), "1.40 must stay the string \"1.40\"");
	cr_assert_str_eq(json_string_value(json_object_get(v, "version")), "1.40");
	cr_assert(json_is_real(json_object_get(v, "ratio")));
	cr_assert_float_eq(json_real_value(json_object_get(v, "ratio")), 1.5, 1e-12);
	cr_assert(json_is_true(json_object_get(v, "flag")));
	cr_assert(json_is_null(json_object_get(v, "nothing")));
	cr_assert(json_is_array(json_object_get(v, "list")));
	cr_assert_eq(json_array_size(json_object_get(v, "list")), 2);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(v, "list"), 1)), "b");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(v, "nested"), "k")), "v");
	plan_free(p);
}

Test(loader, overrides_replace_plan_vars)
{
	json_t *o = json_pack("{s:s, s:i}", "version", "2.0.0", "quoted", 7);
	struct plan *p = th_load_ok_with(full_plan, o);
	cr_assert_str_eq(json_string_value(json_object_get(p->vars, "version")), "2.0.0");
	/* a string var takes a number as its text */
	cr_assert_str_eq(json_string_value(json_object_get(p->vars, "quoted")), "7");
	/* vars not overridden stay */
	cr_assert_eq(json_integer_value(json_object_get(p->vars, "plain")), 3);
	/* the caller's object is untouched */
	cr_assert_eq(json_object_size(o), 2);
	plan_free(p);
	json_decref(o);
}

/* Overrides cannot add a var: the plan's vars are the complete set, so vars.NAME is checked before the run. */
Test(loader, overrides_cannot_add_a_var)
{
	json_t *o = json_pack("{s:s}", "who", "world");
	struct diags d = {0};
	const char *y = "vars: { whom: x }\nsteps: [\"echo ${{ vars.who }}\"]\n";
	cr_assert_null(plan_load_buffer("plan.yaml", y, strlen(y), o, &d));
	const struct diag *g = th_diag_find(&d, "the plan has no var or input 'who'; did you mean 'whom'?");
	cr_assert_not_null(g, "%s", th_diags_text(&d));
	cr_assert_str_eq(g->file, "--var");
	TH_ASSERT_DIAG(&d, "'run': vars.who is not defined; did you mean 'whom'?", 2, 15);
	cr_assert_eq(d.n, 2);
	diags_free(&d);
	json_decref(o);
}

Test(loader, n_steps_counts_every_step_but_the_root)
{
	struct plan *p = th_load_ok(full_plan);
	size_t tree = count_tree(p->root);
	cr_assert_eq(tree, 13);
	cr_assert_eq(p->n_steps, tree, "n_steps is %zu but the plan has %zu steps (stages included)", p->n_steps,
		     tree);
	plan_free(p);
}

Test(loader, n_steps_of_a_flat_plan)
{
	struct plan *p = th_load_ok("steps: [a, b, {parallel: [c, d]}]\n");
	cr_assert_eq(p->n_steps, 5);
	plan_free(p);
}

Test(loader, find_step_by_full_id)
{
	struct plan *p = th_load_ok(full_plan);
	struct step *s = plan_find_step(p, "test.unit.run-2");
	cr_assert_not_null(s);
	cr_assert_str_eq(tmpl_source(s->run), "make test-lint");
	cr_assert_eq(plan_find_step(p, "test.unit"), p->root->children[2]->children[0]);
	cr_assert_eq(plan_find_step(p, "custom"), p->root->children[5]);
	cr_assert_null(plan_find_step(p, "run-2"), "own ids of nested steps are not full ids");
	cr_assert_null(plan_find_step(p, "nope"));
	cr_assert_null(plan_find_step(p, "test.unit.run-3"));
	cr_assert_null(plan_find_step(p, ""));
	plan_free(p);
}

Test(loader, every_step_is_in_the_index)
{
	struct plan *p = th_load_ok(full_plan);
	struct step *stack[64];
	size_t n = 0, seen = 0;
	for (size_t i = 0; i < p->root->n_children; i++)
		stack[n++] = p->root->children[i];
	while (n) {
		struct step *s = stack[--n];
		cr_assert_eq(plan_find_step(p, s->full_id), s, "%s", s->full_id);
		seen++;
		for (size_t i = 0; i < s->n_children; i++)
			stack[n++] = s->children[i];
	}
	cr_assert_eq(seen, 13);
	plan_free(p);
}

static const char *const ref_plan = "steps:\n"
				    "  - id: build\n"
				    "    steps:\n"
				    "      - { id: compile, run: make }\n"
				    "      - { id: pack, run: tar }\n"
				    "  - id: deploy\n"
				    "    steps:\n"
				    "      - { id: push, run: push }\n"
				    "      - id: inner\n"
				    "        steps:\n"
				    "          - { id: leaf, run: x }\n";

Test(resolve, sibling_id)
{
	struct plan *p = th_load_ok(ref_plan);
	const struct step *from = plan_find_step(p, "build.pack");
	const char *segs[] = {"compile", "stdout"};
	size_t used = 99;
	struct step *t = plan_resolve_step_ref(p, from, segs, 2, &used);
	cr_assert_eq(t, plan_find_step(p, "build.compile"));
	cr_assert_eq(used, 1);
	plan_free(p);
}

Test(resolve, full_id)
{
	struct plan *p = th_load_ok(ref_plan);
	const struct step *from = plan_find_step(p, "deploy.push");
	const char *segs[] = {"build", "compile", "exit_code"};
	size_t used = 0;
	struct step *t = plan_resolve_step_ref(p, from, segs, 3, &used);
	cr_assert_eq(t, plan_find_step(p, "build.compile"));
	cr_assert_eq(used, 2, "the longest run of segments naming a step");
	plan_free(p);
}

Test(resolve, ancestors_sibling)
{
	struct plan *p = th_load_ok(ref_plan);
	const struct step *from = plan_find_step(p, "deploy.inner.leaf");
	const char *segs[] = {"push", "status"};
	size_t used = 0;
	struct step *t = plan_resolve_step_ref(p, from, segs, 2, &used);
	cr_assert_eq(t, plan_find_step(p, "deploy.push"));
	cr_assert_eq(used, 1);
	const char *top[] = {"build"};
	t = plan_resolve_step_ref(p, from, top, 1, &used);
	cr_assert_eq(t, plan_find_step(p, "build"));
	cr_assert_eq(used, 1);
	plan_free(p);
}

Test(resolve, unknown_id_is_null)
{
	struct plan *p = th_load_ok(ref_plan);
	const struct step *from = plan_find_step(p, "deploy.push");
	const char *segs[] = {"pack", "stdout"};
	size_t used = 0;
	cr_assert_null(plan_resolve_step_ref(p, from, segs, 2, &used), "pack is not a sibling of deploy.push");
	const char *none[] = {"nothing"};
	cr_assert_null(plan_resolve_step_ref(p, from, none, 1, &used));
	plan_free(p);
}

Test(resolve, from_a_top_level_step)
{
	struct plan *p = th_load_ok(ref_plan);
	const struct step *from = plan_find_step(p, "deploy");
	const char *segs[] = {"build", "status"};
	size_t used = 0;
	cr_assert_eq(plan_resolve_step_ref(p, from, segs, 2, &used), plan_find_step(p, "build"));
	cr_assert_eq(used, 1);
	plan_free(p);
}

Test(loader, step_references_mark_the_target_captured)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - { id: a, run: date }\n"
				    "  - { id: b, run: \"echo ${{ steps.a.stdout }}\" }\n");
	cr_assert(plan_find_step(p, "a")->captured);
	cr_assert_not(plan_find_step(p, "b")->captured);
	plan_free(p);
}

Test(loader, static_lookup_serves_vars_and_env)
{
	struct plan *p = th_load_ok("vars: { x: 5 }\nenv: { MYVAR: hello }\nsteps: [a]\n");
	const char *segs[] = {"x"};
	size_t used = 0;
	char *err = NULL;
	json_t *v = plan_lookup_static(p, "vars", segs, 1, &used, &err);
	cr_assert_not_null(v);
	cr_assert_eq(used, 1);
	cr_assert_eq(json_integer_value(v), 5);
	json_decref(v);
	const char *e[] = {"MYVAR"};
	v = plan_lookup_static(p, "env", e, 1, &used, &err);
	cr_assert_not_null(v);
	cr_assert_str_eq(json_string_value(v), "hello");
	json_decref(v);
	const char *missing[] = {"nope"};
	v = plan_lookup_static(p, "vars", missing, 1, &used, &err);
	cr_assert_null(v);
	cr_assert_not_null(err);
	cr_assert(strstr(err, "vars.nope") != NULL, "%s", err);
	free(err);
	plan_free(p);
}

Test(loader, secret_values_come_from_vars)
{
	struct plan *p = th_load_ok("vars: { token: abc123, num: 42, empty: \"\" }\n"
				    "secrets: [token, num, empty]\n"
				    "steps: [a]\n");
	size_t n = 0;
	char **v = plan_secret_values(p, &n);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(v[0], "42"); /* sorted bytewise */
	cr_assert_str_eq(v[1], "abc123");
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	plan_free(p);
}
