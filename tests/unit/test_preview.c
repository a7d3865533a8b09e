/*
 * The preview model (src/graph/preview.c): which tasks a plan would start,
 * with the ids, items, commands, env, shells, batches and states the walk
 * gives them, before anything runs.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "graph/graph.h"
#include "helpers.h"

/* Every task the walk gives, one line each: ID STATE [host] [item] [batch] $ COMMAND | shell | env… */
struct collect {
	struct buf b;
	struct buf steps;
};

static void on_task(void *ud, const struct pv_task *t)
{
	struct collect *C = ud;
	buf_printf(&C->b, "%s %s", t->id, pv_state_name(t->state));
	if (t->host)
		buf_printf(&C->b, " @%s", t->host);
	if (t->label)
		buf_printf(&C->b, " (%s)", t->label);
	if (t->batch >= 0)
		buf_printf(&C->b, " b%ld", t->batch);
	if (t->handler >= 0)
		buf_printf(&C->b, " [%s]", handler_name((enum handler_kind)t->handler));
	buf_printf(&C->b, " $ %s | %s", t->command, t->shell ? t->shell : "argv");
	if (t->cwd)
		buf_printf(&C->b, " | cwd %s", t->cwd);
	for (size_t i = 0; i < t->n_env; i++)
		buf_printf(&C->b, " | %s", t->env[i]);
	if (t->why)
		buf_printf(&C->b, " | why: %s", t->why);
	if (t->runtime)
		buf_printf(&C->b, " | runtime: %s", t->runtime);
	buf_addc(&C->b, '\n');
}

static void on_step(void *ud, const struct pv_step *s)
{
	struct collect *C = ud;
	buf_printf(&C->steps, "%s when=%s\n", s->node->step->full_id, pv_when_name(s->when));
}

static char *tasks_of(const char *yaml, json_t *vars, char **steps, struct pv_counts *k)
{
	struct plan *p = th_load_ok_with(yaml, vars);
	struct diags d = {0};
	struct graph_options o = {0};
	struct graph *g = graph_compile(p, &o, &d);
	cr_assert_not_null(g);
	size_t n;
	char **sec = plan_secret_values(p, &n);
	struct preview *pv = preview_new(g, (const char *const *)sec, n);
	struct collect C = {{0}, {0}};
	buf_adds(&C.b, "");
	buf_adds(&C.steps, "");
	struct pv_visitor v = {on_step, on_task, NULL, SIZE_MAX, &C};
	preview_walk(pv, &v);
	if (k)
		preview_count(pv, k);
	preview_free(pv);
	for (size_t i = 0; i < n; i++)
		free(sec[i]);
	free(sec);
	graph_free(g);
	plan_free(p);
	diags_free(&d);
	if (steps)
		*steps = buf_detach(&C.steps);
	else
		buf_free(&C.steps);
	return buf_detach(&C.b);
}

Test(preview, when_on_vars_skips_and_a_var_turns_it)
{
	const char *y = "vars: { branch: main }\n"
			"steps:\n"
			"  - id: deploy\n"
			"    when: vars.branch == \"main\"\n"
			"    run: echo ${{ vars.branch }}\n";
	char *steps = NULL;
	char *t = tasks_of(y, NULL, &steps, NULL);
	cr_assert_str_eq(t, "deploy runs $ echo main | /bin/sh -c\n");
	cr_assert_str_eq(steps, "deploy when=true\n");
	free(t);
	free(steps);
	json_t *o = json_pack("{s:s}", "branch", "feature-x");
	struct pv_counts k;
	t = tasks_of(y, o, &steps, &k);
	cr_assert_str_eq(t, "deploy skipped $ echo feature-x | /bin/sh -c | why: when of deploy is false\n");
	cr_assert_str_eq(steps, "deploy when=false\n");
	cr_assert_eq(k.tasks, 1);
	cr_assert_eq(k.runs, 0);
	cr_assert_eq(k.skipped, 1);
	json_decref(o);
	free(t);
	free(steps);
}

Test(preview, for_each_instances_get_their_item_env_cwd_and_batch)
{
	char *t = tasks_of("vars: { xs: [a, b, c] }\n"
			   "env: { G: \"g\" }\n"
			   "defaults: { shell: /bin/bash -eu, env: { D: d } }\n"
			   "steps:\n"
			   "  - id: each\n"
			   "    for_each: ${{ vars.xs }}\n"
			   "    batch: { size: [1, 2] }\n"
			   "    env: { IT: \"${{ item }}-${{ index }}\" }\n"
			   "    cwd: /srv/${{ item }}\n"
			   "    run: deploy ${{ item }}\n",
			   NULL, NULL, NULL);
	cr_assert_str_eq(t, "each#0 runs (a) b0 $ deploy a | /bin/bash -eu -c | cwd /srv/a | G=g | D=d | IT=a-0\n"
			    "each#1 runs (b) b1 $ deploy b | /bin/bash -eu -c | cwd /srv/b | G=g | D=d | IT=b-1\n"
			    "each#2 runs (c) b1 $ deploy c | /bin/bash -eu -c | cwd /srv/c | G=g | D=d | IT=c-2\n");
	free(t);
}

Test(preview, when_on_item_is_decided_per_instance)
{
	char *steps = NULL;
	char *t = tasks_of("steps:\n"
			   "  - id: s\n"
			   "    for_each: [x, y]\n"
			   "    when: item == \"y\"\n"
			   "    run: [echo, \"${{ item }}\"]\n",
			   NULL, &steps, NULL);
	cr_assert_str_eq(t, "s#0 skipped (x) $ echo x | argv | why: when of s is false\n"
			    "s#1 runs (y) $ echo y | argv\n");
	cr_assert_str_eq(steps, "s when=each\n");
	free(t);
	free(steps);
}

Test(preview, nested_fan_outs_and_a_fan_outs_handlers)
{
	char *t = tasks_of("steps:\n"
			   "  - id: out\n"
			   "    for_each: [a, b]\n"
			   "    steps:\n"
			   "      - id: in\n"
			   "        for_each: [1, 2]\n"
			   "        run: echo ${{ item }}\n"
			   "    finally:\n"
			   "      - id: f\n"
			   "        run: echo done\n",
			   NULL, NULL, NULL);
	/* the handler hangs on the fan-out: once, outside its instances */
	cr_assert_str_eq(t, "out.in#0#0 runs (1) $ echo 1 | /bin/sh -c\n"
			    "out.in#0#1 runs (2) $ echo 2 | /bin/sh -c\n"
			    "out.in#1#0 runs (1) $ echo 1 | /bin/sh -c\n"
			    "out.in#1#1 runs (2) $ echo 2 | /bin/sh -c\n"
			    "out.finally.f runs [finally] $ echo done | /bin/sh -c\n");
	free(t);
}

Test(preview, what_only_the_run_knows_is_marked_with_its_reference)
{
	char *steps = NULL;
	struct pv_counts k;
	char *t = tasks_of("steps:\n"
			   "  - id: a\n"
			   "    run: echo hi\n"
			   "  - id: b\n"
			   "    when: steps.a.status == \"success\"\n"
			   "    run: echo ${{ steps.a.stdout }} ${{ run.id }}\n"
			   "  - id: c\n"
			   "    for_each: ${{ steps.a.stdout_lines }}\n"
			   "    run: echo ${{ item }}\n",
			   NULL, &steps, &k);
	cr_assert_str_eq(t, "a runs $ echo hi | /bin/sh -c\n"
			    "b runtime $ echo ${{ steps.a.stdout }} ${{ run.id }} | /bin/sh -c | why: when of b reads "
			    "steps.a.status, known at run time | runtime: steps.a.stdout, run.id\n");
	cr_assert_str_eq(steps, "a when=none\nb when=runtime\nc when=none\n");
	cr_assert_eq(k.tasks, 2);
	cr_assert_eq(k.runtime, 1);
	cr_assert_not(k.exact);
	free(t);
	free(steps);
}

Test(preview, secrets_are_masked_in_commands_env_and_items)
{
	char *t = tasks_of("vars: { tok: s3cr3t-value }\n"
			   "secrets: [tok]\n"
			   "steps:\n"
			   "  - id: s\n"
			   "    for_each: [\"${{ vars.tok }}\"]\n"
			   "    env: { T: \"${{ vars.tok }}\" }\n"
			   "    run: echo ${{ item }}\n",
			   NULL, NULL, NULL);
	cr_assert_null(strstr(t, "s3cr3t"), "%s", t);
	cr_assert_str_eq(t, "s#0 runs (***) $ echo *** | /bin/sh -c | T=***\n");
	free(t);
}

/* What a preview prints, as text or JSON, for plan p. */
static char *render_of(const struct plan *p, bool json)
{
	struct diags d = {0};
	struct graph_options o = {0};
	struct graph *g = graph_compile(p, &o, &d);
	cr_assert_not_null(g);
	struct preview *pv = preview_new(g, NULL, 0);
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	cr_assert_not_null(f);
	if (json)
		preview_json(pv, f);
	else
		preview_text(pv, f, false);
	fclose(f);
	preview_free(pv);
	graph_free(g);
	diags_free(&d);
	return s;
}

Test(preview, inputs_are_listed_with_type_default_choices_value_and_description)
{
	struct plan *p = th_load_ok("steps:\n  - run: echo hi\n");
	/* as the loader will fill them once `inputs:` is parsed */
	p->input_defs = xcalloc(2, sizeof *p->input_defs);
	p->n_inputs = 2;
	p->input_defs[0] = (struct input_def){.name = xstrdup("env"), .type = INPUT_STRING, .required = true,
					      .description = xstrdup("where to deploy"),
					      .choices = json_pack("[ss]", "staging", "prod")};
	p->input_defs[1] = (struct input_def){.name = xstrdup("replicas"), .type = INPUT_INT,
					      .def = json_integer(3)};
	json_decref(p->inputs);
	p->inputs = json_pack("{s:s,s:i}", "env", "prod", "replicas", 3);
	char *t = render_of(p, false);
	cr_assert(strstr(t, "  inputs:\n"
			    "    env (string, required, choices [\"staging\",\"prod\"]): \"prod\"  — where to deploy\n"
			    "    replicas (int, default 3): 3\n"),
		  "%s", t);
	free(t);
	char *j = render_of(p, true);
	json_error_t e;
	json_t *doc = json_loads(j, 0, &e);
	cr_assert_not_null(doc, "%s: %s", e.text, j);
	char *in = json_dumps(json_object_get(doc, "inputs"), JSON_COMPACT);
	cr_assert_str_eq(in, "[{\"name\":\"env\",\"type\":\"string\",\"required\":true,\"default\":null,"
			     "\"description\":\"where to deploy\",\"choices\":[\"staging\",\"prod\"],\"value\":\"prod\"},"
			     "{\"name\":\"replicas\",\"type\":\"int\",\"required\":false,\"default\":3,"
			     "\"description\":null,\"choices\":null,\"value\":3}]");
	free(in);
	json_decref(doc);
	free(j);
	plan_free(p);
}
