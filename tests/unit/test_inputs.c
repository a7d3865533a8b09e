/*
 * Inputs and what the command line gives (plan-format.md section 2): the
 * `inputs:` declarations and their errors, --var and --var-file typed against
 * an input's type or a var's default, every error at once with its exact
 * place (FILE:LINE:COL, or the --var it came from), and the static checks of
 * vars./inputs./steps./host. references with "did you mean".
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "plan/plan.h"

/* Loads yaml as plan.yaml with --var and --var-file sources (each "NAME=TEXT", or "@PATH" for a file). */
static struct plan *load_given(const char *yaml, const char *const *args, size_t n, bool check, struct diags *d)
{
	struct var_source *src = calloc(n + 1, sizeof *src);
	for (size_t i = 0; i < n; i++)
		src[i] = args[i][0] == '@' ? (struct var_source){true, args[i] + 1} : (struct var_source){false, args[i]};
	struct load_options o = {.var_sources = src, .n_var_sources = n, .inputs_optional = check};
	struct plan *p = plan_load_buffer_opts("plan.yaml", yaml, strlen(yaml), &o, d);
	free(src);
	return p;
}

static struct plan *load_given_ok(const char *yaml, const char *const *args, size_t n)
{
	struct diags d = {0};
	struct plan *p = load_given(yaml, args, n, false, &d);
	if (!p || d.n)
		cr_assert_fail("plan did not load cleanly:\n%s", th_diags_text(&d));
	return p;
}

/* Writes text to a fresh temporary file; returns its path (caller frees, unlinks). */
static char *temp_file(const char *text)
{
	char *path = strdup("/tmp/baton-test-varfile-XXXXXX");
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static const char deploy[] = "vars:\n"
			     "  version: \"1.4.2\"\n"
			     "  servers: [app01]\n"
			     "  replicas: 3\n"
			     "  ratio: 0.5\n"
			     "  dry: false\n"
			     "  cfg: {a: 1}\n"
			     "  anything: ~\n"
			     "inputs:\n"
			     "  region:\n"
			     "    description: AWS region to deploy to\n"
			     "    required: true\n"
			     "    choices: [eu-west-1, us-east-1]\n"
			     "  count:\n"
			     "    type: int\n"
			     "    description: Number of pods\n"
			     "    default: 2\n"
			     "  canary: { type: bool, default: false }\n"
			     "  hosts: { type: list, default: [a, b] }\n"
			     "  opts: { type: map }\n"
			     "  tag:\n"
			     "steps:\n"
			     "  - run: echo ${{ inputs.region }} ${{ vars.version }}\n";

/* ---- declarations ---- */

Test(inputs, declarations_are_parsed_with_their_defaults)
{
	const char *args[] = {"region=eu-west-1"};
	struct plan *p = load_given_ok(deploy, args, 1);
	cr_assert_eq(p->n_inputs, 6);
	const struct input_def *in = &p->input_defs[0];
	cr_assert_str_eq(in->name, "region");
	cr_assert_eq(in->type, INPUT_STRING);
	cr_assert(in->required);
	cr_assert_str_eq(in->description, "AWS region to deploy to");
	cr_assert_eq(json_array_size(in->choices), 2);
	cr_assert_eq(in->line, 10);
	cr_assert_eq(in->col, 3);
	cr_assert_eq(p->input_defs[1].type, INPUT_INT);
	cr_assert_eq(p->input_defs[2].type, INPUT_BOOL);
	cr_assert_eq(p->input_defs[3].type, INPUT_LIST);
	cr_assert_eq(p->input_defs[4].type, INPUT_MAP);
	cr_assert_eq(p->input_defs[5].type, INPUT_STRING, "`tag:` alone is an optional string");
	cr_assert_str_eq(json_string_value(json_object_get(p->inputs, "region")), "eu-west-1");
	cr_assert_eq(json_integer_value(json_object_get(p->inputs, "count")), 2);
	cr_assert(json_is_false(json_object_get(p->inputs, "canary")));
	cr_assert_eq(json_array_size(json_object_get(p->inputs, "hosts")), 2);
	cr_assert_null(json_object_get(p->inputs, "opts"), "optional, no default, not given: absent");
	plan_free(p);
}

Test(inputs, lookup_gives_the_value_null_for_an_unset_optional_and_an_error_for_an_undeclared)
{
	const char *args[] = {"region=us-east-1"};
	struct plan *p = load_given_ok(deploy, args, 1);
	size_t used = 0;
	char *err = NULL;
	const char *const r[] = {"region"}, *const t[] = {"tag"}, *const x[] = {"nope"};
	json_t *v = plan_lookup_static(p, "inputs", r, 1, &used, &err);
	cr_assert_str_eq(json_string_value(v), "us-east-1");
	cr_assert_eq(used, 1);
	json_decref(v);
	v = plan_lookup_static(p, "inputs", t, 1, &used, &err);
	cr_assert(json_is_null(v), "an optional input neither given nor defaulted reads as null");
	json_decref(v);
	cr_assert_null(plan_lookup_static(p, "inputs", x, 1, &used, &err));
	cr_assert_not_null(strstr(err, "inputs.nope is not declared"), "%s", err);
	free(err);
	plan_free(p);
}

Test(inputs, a_string_default_keeps_its_text)
{
	struct plan *p = th_load_ok("inputs: { v: { default: 1.40 } }\nsteps: [a]\n");
	cr_assert_str_eq(json_string_value(json_object_get(p->inputs, "v")), "1.40");
	plan_free(p);
}

/* GitHub Actions allows both: the default satisfies the requirement. */
Test(inputs, required_with_a_default_is_satisfied_by_the_default)
{
	struct plan *p = th_load_ok("inputs: { env: { required: true, default: staging } }\nsteps: [a]\n");
	cr_assert_str_eq(json_string_value(json_object_get(p->inputs, "env")), "staging");
	plan_free(p);
}

Test(inputs, declaration_errors_at_their_exact_places)
{
	struct diags d = {0};
	th_load_fail("vars: { both: 1 }\n"
		     "inputs:\n"
		     "  a: { tyep: int }\n"
		     "  b: { type: integer }\n"
		     "  c: { type: int, default: abc }\n"
		     "  d: { choices: [x, y], default: z }\n"
		     "  e: { type: bool, choices: [true] }\n"
		     "  f: { type: int, choices: [1, two] }\n"
		     "  g: { required: maybe }\n"
		     "  both: {}\n"
		     "  h i: {}\n"
		     "  j: [1]\n"
		     "  k: { choices: [] }\n"
		     "steps: [a]\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown key 'tyep' in input 'a'; did you mean 'type'?", 3, 8);
	TH_ASSERT_DIAG(&d, "input 'b': unknown type 'integer'; did you mean 'int'?", 4, 14);
	TH_ASSERT_DIAG(&d, "input 'c': the default must be an int, like the input (type: int)", 5, 28);
	TH_ASSERT_DIAG(&d, "input 'd': the default is not one of its choices (x or y)", 6, 34);
	TH_ASSERT_DIAG(&d, "input 'e': 'choices' applies to string and int inputs, not to a bool", 7, 29);
	TH_ASSERT_DIAG(&d, "input 'f': each choice must be an int, like the input", 8, 32);
	TH_ASSERT_DIAG(&d, "input 'g': 'required' must be true or false", 9, 18);
	TH_ASSERT_DIAG(&d, "'both' is both a var and an input", 10, 3);
	TH_ASSERT_DIAG(&d, "bad input name 'h i'", 11, 3);
	TH_ASSERT_DIAG(&d, "input 'j' must be a map of type, required, default, description and choices, not a list", 12,
		       6);
	TH_ASSERT_DIAG(&d, "input 'k': 'choices' must be a non-empty list", 13, 17);
	EXPECT_N(&d, 11);
	diags_free(&d);
}

Test(inputs, inputs_must_be_a_map)
{
	struct diags d = {0};
	th_load_fail("inputs: [a, b]\nsteps: [a]\n", &d);
	TH_ASSERT_DIAG(&d, "'inputs' must be a map of NAME: {type, required, default, description, choices}", 1, 9);
	diags_free(&d);
}

Test(inputs, a_secret_cannot_also_be_an_input)
{
	struct diags d = {0};
	th_load_fail("secrets: [token]\ninputs: { token: {} }\nsteps: [a]\n", &d);
	TH_ASSERT_DIAG(&d, "'token' is both a var and an input", 2, 11);
	diags_free(&d);
}

/* ---- values: every error at once, with the input's description ---- */

Test(inputs, every_bad_value_is_reported_at_once_with_descriptions)
{
	const char *args[] = {"count=x", "region=eu-west", "canary=yes", "hosts=web1"};
	struct diags d = {0};
	cr_assert_null(load_given(deploy, args, 4, false, &d));
	ASSERT_DIAG_IN(&d, "--var count=x", "input 'count' (Number of pods) must be an int, not 'x'", 0, 0);
	ASSERT_DIAG_IN(&d, "--var region=eu-west",
		       "input 'region' (AWS region to deploy to) must be one of eu-west-1 or us-east-1, not 'eu-west'; "
		       "did you mean 'eu-west-1'?",
		       0, 0);
	ASSERT_DIAG_IN(&d, "--var canary=yes", "input 'canary' must be a bool (true or false), not 'yes'", 0, 0);
	ASSERT_DIAG_IN(&d, "--var hosts=web1",
		       "input 'hosts' must be a list, in YAML flow syntax as in --var 'hosts=[a, b]', not 'web1'", 0, 0);
	EXPECT_N(&d, 4); /* region was given, though wrong: not reported again as missing */
	diags_free(&d);
}

Test(inputs, a_missing_required_input_is_reported_at_its_declaration)
{
	struct diags d = {0};
	cr_assert_null(load_given(deploy, NULL, 0, false, &d));
	TH_ASSERT_DIAG(&d,
		       "input 'region' (AWS region to deploy to) is required and was not given: give it with --var "
		       "region=VALUE",
		       10, 3);
	EXPECT_N(&d, 1);
	diags_free(&d);
}

Test(inputs, check_does_not_require_required_inputs_but_types_those_given)
{
	struct diags d = {0};
	struct plan *p = load_given(deploy, NULL, 0, true, &d);
	cr_assert_not_null(p, "%s", th_diags_text(&d));
	cr_assert_null(json_object_get(p->inputs, "region"));
	plan_free(p);
	const char *args[] = {"count=x"};
	cr_assert_null(load_given(deploy, args, 1, true, &d));
	EXPECT_N(&d, 1);
	diags_free(&d);
}

Test(inputs, given_values_take_the_input_type)
{
	const char *args[] = {"region=us-east-1", "count=-5", "canary=true", "hosts=[web1, web2]",
			      "opts={a: 1, b: [x]}", "tag=1.40"};
	struct plan *p = load_given_ok(deploy, args, 6);
	cr_assert_eq(json_integer_value(json_object_get(p->inputs, "count")), -5);
	cr_assert(json_is_true(json_object_get(p->inputs, "canary")));
	json_t *h = json_object_get(p->inputs, "hosts");
	cr_assert_eq(json_array_size(h), 2);
	cr_assert_str_eq(json_string_value(json_array_get(h, 1)), "web2");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(p->inputs, "opts"), "a")), 1);
	cr_assert_str_eq(json_string_value(json_object_get(p->inputs, "tag")), "1.40");
	/* what a run records: typed, in one object */
	cr_assert_eq(json_integer_value(json_object_get(p->given, "count")), -5);
	cr_assert_eq(json_object_size(p->given), 6);
	plan_free(p);
}

/* ---- --var against a var's default ---- */

Test(vars_given, a_var_takes_the_type_of_its_default)
{
	const char *args[] = {"region=eu-west-1", "version=1.40",    "replicas=7", "ratio=2", "dry=true",
			      "servers=[app04, app05]", "cfg={a: 2}", "anything=3", "version=1.50"};
	struct plan *p = load_given_ok(deploy, args, 9);
	cr_assert_str_eq(json_string_value(json_object_get(p->vars, "version")), "1.50", "the later --var wins");
	cr_assert_eq(json_integer_value(json_object_get(p->vars, "replicas")), 7);
	cr_assert(json_is_number(json_object_get(p->vars, "ratio")));
	cr_assert(json_is_true(json_object_get(p->vars, "dry")));
	json_t *s = json_object_get(p->vars, "servers");
	cr_assert(json_is_array(s));
	cr_assert_str_eq(json_string_value(json_array_get(s, 0)), "app04");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(p->vars, "cfg"), "a")), 2);
	cr_assert(json_is_integer(json_object_get(p->vars, "anything")), "a null default: a plain YAML scalar");
	plan_free(p);
}

Test(vars_given, a_string_var_keeps_a_list_as_text)
{
	const char *args[] = {"region=eu-west-1", "version=[a, b]"};
	struct plan *p = load_given_ok(deploy, args, 2);
	cr_assert_str_eq(json_string_value(json_object_get(p->vars, "version")), "[a, b]");
	plan_free(p);
}

Test(vars_given, ill_typed_values_name_the_var_and_its_default)
{
	const char *args[] = {"region=eu-west-1", "replicas=abc", "ratio=x", "dry=1", "servers=[a, b", "cfg=[1]"};
	struct diags d = {0};
	cr_assert_null(load_given(deploy, args, 6, false, &d));
	ASSERT_DIAG_IN(&d, "--var replicas=abc", "var 'replicas' must be an int like its default (3), not 'abc'", 0, 0);
	ASSERT_DIAG_IN(&d, "--var ratio=x", "var 'ratio' must be a number like its default (0.5), not 'x'", 0, 0);
	ASSERT_DIAG_IN(&d, "--var dry=1", "var 'dry' must be a bool (true or false) like its default (false), not '1'",
		       0, 0);
	ASSERT_DIAG_IN(&d, "--var servers=[a, b",
		       "var 'servers' must be a list like its default, in YAML flow syntax as in --var "
		       "'servers=[a, b]', not '[a, b' (invalid YAML:",
		       0, 0);
	ASSERT_DIAG_IN(&d, "--var cfg=[1]",
		       "var 'cfg' must be a map like its default, in YAML flow syntax as in --var 'cfg={key: value}', "
		       "not '[1]'",
		       0, 0);
	EXPECT_N(&d, 5);
	diags_free(&d);
}

Test(vars_given, a_var_naming_nothing_is_an_error_with_did_you_mean)
{
	const char *args[] = {"region=eu-west-1", "verison=9.9", "zzzzzz=1", "regoin=x", "novalue"};
	struct diags d = {0};
	cr_assert_null(load_given(deploy, args, 5, false, &d));
	ASSERT_DIAG_IN(&d, "--var verison=9.9", "the plan has no var or input 'verison'; did you mean 'version'?", 0, 0);
	ASSERT_DIAG_IN(&d, "--var zzzzzz=1", "the plan has no var or input 'zzzzzz' (declare it under 'vars:' or "
					     "'inputs:')",
		       0, 0);
	ASSERT_DIAG_IN(&d, "--var regoin=x", "did you mean 'region'?", 0, 0);
	ASSERT_DIAG_IN(&d, "--var novalue", "expected NAME=VALUE", 0, 0);
	EXPECT_N(&d, 4);
	diags_free(&d);
}

Test(vars_given, a_secret_given_with_var_gets_only_the_secret_error)
{
	struct var_source src[] = {{false, "token=x"}};
	json_t *names = json_pack("{s:b}", "token", 1);
	struct load_options o = {.var_sources = src, .n_var_sources = 1, .cli_vars = names};
	const char *y = "secrets: [token]\nsteps: [a]\n";
	struct diags d = {0};
	cr_assert_null(plan_load_buffer_opts("plan.yaml", y, strlen(y), &o, &d));
	TH_ASSERT_DIAG(&d, "secret 'token' cannot be set with --var", 1, 11);
	EXPECT_N(&d, 1);
	diags_free(&d);
	json_decref(names);
}

/* ---- --var-file ---- */

Test(vars_given, a_var_file_is_held_to_the_same_rules_at_its_keys)
{
	char *path = temp_file("version: 1.40\n"
			       "verison: 2\n"
			       "replicas: many\n"
			       "region: us-east-1\n"
			       "count: [1]\n"
			       "token: s3cret\n");
	char *arg = malloc(strlen(path) + 2);
	sprintf(arg, "@%s", path);
	const char *args[] = {arg};
	struct diags d = {0};
	char *yaml = malloc(sizeof deploy + 32);
	sprintf(yaml, "secrets: [token]\n%s", deploy);
	cr_assert_null(load_given(yaml, args, 1, false, &d));
	ASSERT_DIAG_IN(&d, path, "the plan has no var or input 'verison'; did you mean 'version'?", 2, 1);
	ASSERT_DIAG_IN(&d, path, "var 'replicas' must be an int like its default (3), not 'many'", 3, 11);
	ASSERT_DIAG_IN(&d, path, "input 'count' (Number of pods) must be an int, not a list", 5, 8);
	EXPECT_N(&d, 3);
	diags_free(&d);
	/* fixed, the file's string value keeps its text and the secret is not recorded as given */
	unlink(path);
	free(path);
	path = temp_file("version: 1.40\nregion: us-east-1\ntoken: s3cret\n");
	sprintf(arg, "@%s", path);
	struct plan *p = load_given(yaml, args, 1, false, &d);
	cr_assert_not_null(p, "%s", th_diags_text(&d));
	cr_assert_str_eq(json_string_value(json_object_get(p->vars, "version")), "1.40");
	cr_assert_str_eq(json_string_value(json_object_get(p->vars, "token")), "s3cret");
	cr_assert_null(json_object_get(p->given, "token"), "a secret's value is never recorded");
	cr_assert_not_null(json_object_get(p->given, "version"));
	plan_free(p);
	unlink(path);
	free(path);
	free(arg);
	free(yaml);
}

Test(vars_given, a_var_file_that_is_not_a_map)
{
	char *path = temp_file("[1, 2]\n");
	char *arg = malloc(strlen(path) + 2);
	sprintf(arg, "@%s", path);
	const char *args[] = {arg};
	struct diags d = {0};
	cr_assert_null(load_given("vars: {a: 1}\nsteps: [a]\n", args, 1, false, &d));
	ASSERT_DIAG_IN(&d, path, "a var file must be a map of name: value, not a list", 1, 1);
	diags_free(&d);
	unlink(path);
	free(path);
	free(arg);
}

/* ---- static references ---- */

Test(refs, an_unknown_var_is_an_error_at_its_expression)
{
	struct diags d = {0};
	th_load_fail("vars: { version: \"1.4\" }\n"
		     "steps:\n"
		     "  - run: echo ${{ vars.version }} ${{ vars.verison }}\n"
		     "  - run: |\n"
		     "      echo one\n"
		     "      echo ${{ vars.zzzzzz }}\n"
		     "  - run: \"echo ${{ vars.versoin }}\"\n"
		     "    when: vars.verzion == '1'\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'run': vars.verison is not defined; did you mean 'version'?", 3, 35);
	TH_ASSERT_DIAG(&d, "'run': vars.zzzzzz is not defined (declare it under 'vars:')", 6, 12);
	TH_ASSERT_DIAG(&d, "'run': vars.versoin is not defined; did you mean 'version'?", 7, 16);
	TH_ASSERT_DIAG(&d, "'when': vars.verzion is not defined; did you mean 'version'?", 8, 11);
	EXPECT_N(&d, 4);
	diags_free(&d);
}

Test(refs, inputs_and_vars_are_not_confused)
{
	struct diags d = {0};
	th_load_fail("vars: { v: 1 }\n"
		     "inputs: { region: {}, env: {} }\n"
		     "steps:\n"
		     "  - run: echo ${{ vars.region }}\n"
		     "  - run: echo ${{ inputs.v }}\n"
		     "  - run: echo ${{ inputs.regoin }} ${{ inputs.zzzzzz }}\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'run': vars.region is not defined; 'region' is an input: read it as inputs.region", 4, 15);
	TH_ASSERT_DIAG(&d, "'run': inputs.v is not declared; 'v' is a var: read it as vars.v", 5, 15);
	TH_ASSERT_DIAG(&d, "'run': inputs.regoin is not declared; did you mean 'region'?", 6, 15);
	TH_ASSERT_DIAG(&d, "'run': inputs.zzzzzz is not declared (declare it under 'inputs:')", 6, 36);
	EXPECT_N(&d, 4);
	diags_free(&d);
}

Test(refs, secrets_are_vars_and_inputs_are_known_in_every_place)
{
	struct plan *p = th_load_ok("vars: { token: x, other: y }\n"
				    "secrets: [token, other]\n"
				    "inputs: { env: { default: staging } }\n"
				    "env: { E: \"${{ inputs.env }}\" }\n"
				    "steps:\n"
				    "  - run: echo ${{ vars.token }} ${{ vars.other }}\n"
				    "    when: inputs.env == 'staging'\n"
				    "    env: { X: \"${{ inputs.env }}\" }\n"
				    "  - for_each: ${{ inputs }}\n"
				    "    run: echo ${{ item }}\n");
	plan_free(p);
}

Test(refs, unknown_step_ids_and_fields_suggest_the_closest)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - id: build\n"
		     "    steps:\n"
		     "      - id: compile\n"
		     "        run: make\n"
		     "  - run: echo ${{ steps.biuld.stdout }}\n"
		     "  - run: echo ${{ steps.build.compil.stdout }}\n"
		     "  - run: echo ${{ steps.build.stdot }}\n"
		     "  - run: echo ${{ steps.build.outputs.anything }} ${{ steps.build.compile.outputs.x.y }}\n"
		     "  - run: echo ${{ steps.zzzzzz.stdout }}\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'run': no step with id 'biuld'; did you mean 'build'?", 6, 15);
	TH_ASSERT_DIAG(&d, "'run': steps.build has no 'compil'; did you mean 'compile'?", 7, 15);
	TH_ASSERT_DIAG(&d, "'run': steps.build has no 'stdot'; did you mean 'stdout'?", 8, 15);
	TH_ASSERT_DIAG(&d, "'run': no step with id 'zzzzzz' (ids are a sibling's id or a full id", 10, 15);
	EXPECT_N(&d, 4);
	diags_free(&d);
}

Test(refs, host_run_and_async_fields_suggest_the_closest)
{
	struct diags d = {0};
	th_load_fail("inventory: { hosts: { web1: {} } }\n"
		     "steps:\n"
		     "  - run: echo ${{ host.nmae }}\n"
		     "    on: web1\n"
		     "  - run: echo ${{ run.stauts }}\n"
		     "  - run: echo ${{ item }}\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'run': 'host' has name, address, user, port and vars, not 'nmae'; did you mean 'name'?", 3,
		       15);
	TH_ASSERT_DIAG(&d, "'run': 'run' has 'id' and 'status', not 'stauts'; did you mean 'status'?", 5, 15);
	TH_ASSERT_DIAG(&d, "'run': 'item' is defined only inside a for_each step", 6, 15);
	EXPECT_N(&d, 3);
	diags_free(&d);
}

Test(refs, a_cwd_env_and_argv_reference_points_at_its_expression)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: [echo, \"x ${{ vars.a }}\"]\n"
		     "    cwd: /tmp/${{ vars.b }}\n"
		     "    env: { X: 'a ${{ vars.c }}' }\n",
		     &d);
	TH_ASSERT_DIAG(&d, "vars.a is not defined", 2, 20);
	TH_ASSERT_DIAG(&d, "vars.b is not defined", 3, 15);
	TH_ASSERT_DIAG(&d, "vars.c is not defined", 4, 18);
	EXPECT_N(&d, 3);
	diags_free(&d);
}
