/*
 * Validator: every plan error comes back as a diagnostic with its exact
 * line:col and a helpful message, all errors of a file at once, and hostile
 * YAML (alias bombs, deep nesting) is refused with a bounded cost.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "plan/plan.h"

Test(validate, unknown_key_suggests_the_close_one)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: make\n"
		     "    timout: 5s\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown key 'timout' in a step; did you mean 'timeout'?", 3, 5);
	cr_assert_eq(d.n, 1);
	diags_free(&d);
}

Test(validate, unknown_key_without_a_close_one_has_no_hint)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: make\n"
		     "    zzzzzzzz: 1\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown key 'zzzzzzzz' in a step", 3, 5);
	cr_assert_null(th_diag_find(&d, "did you mean"));
	diags_free(&d);
}

Test(validate, unknown_top_level_key)
{
	struct diags d = {0};
	th_load_fail("name: x\n"
		     "stepz: [a]\n"
		     "steps: [a]\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown key 'stepz' in the plan; did you mean 'steps'?", 2, 1);
	diags_free(&d);
}

Test(validate, unknown_key_in_retry_and_defaults)
{
	struct diags d = {0};
	th_load_fail("defaults:\n"
		     "  timeot: 5s\n"
		     "steps:\n"
		     "  - run: a\n"
		     "    retry: { attemps: 3 }\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown key 'timeot' in defaults; did you mean 'timeout'?", 2, 3);
	TH_ASSERT_DIAG(&d, "unknown key 'attemps' in retry; did you mean 'attempts'?", 5, 14);
	diags_free(&d);
}

Test(validate, two_kinds_in_one_step)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    sleep: 5s\n",
		     &d);
	TH_ASSERT_DIAG(&d, "exactly one kind", 3, 5);
	TH_ASSERT_DIAG(&d, "both 'run' (line 2) and 'sleep'", 3, 5);
	diags_free(&d);
}

Test(validate, step_without_a_kind)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - name: nothing\n"
		     "    timeout: 5s\n",
		     &d);
	TH_ASSERT_DIAG(&d, "a step needs one of: run, steps, parallel", 2, 5);
	diags_free(&d);
}

Test(validate, duplicate_sibling_id)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - { id: x, run: a }\n"
		     "  - { id: x, run: b }\n",
		     &d);
	TH_ASSERT_DIAG(&d, "duplicate id 'x' (also used by the step at line 2)", 3, 5);
	cr_assert_eq(d.n, 1);
	diags_free(&d);
}

Test(validate, same_id_in_different_parents_is_fine)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - { id: a, steps: [{ id: x, run: a }] }\n"
				    "  - { id: b, steps: [{ id: x, run: b }] }\n");
	cr_assert_not_null(plan_find_step(p, "a.x"));
	cr_assert_not_null(plan_find_step(p, "b.x"));
	plan_free(p);
}

Test(validate, bad_id_characters)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - { id: Build.Step, run: a }\n",
		     &d);
	TH_ASSERT_DIAG(&d, "bad id 'Build.Step'", 2, 11);
	diags_free(&d);
}

/* plan-format.md: an id is [a-z0-9_-]+ — for a stage's id too. */
Test(validate, bad_stage_id_characters)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - stages:\n"
		     "      - { id: Unit Tests, steps: [a] }\n",
		     &d);
	TH_ASSERT_DIAG(&d, "bad id 'Unit Tests'", 3, 15);
	diags_free(&d);
}

Test(validate, duplicate_yaml_key)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    timeout: 1s\n"
		     "    timeout: 2s\n",
		     &d);
	TH_ASSERT_DIAG(&d, "duplicate key 'timeout' (first at line 3)", 4, 5);
	cr_assert_eq(d.n, 1);
	diags_free(&d);
}

Test(validate, bad_duration)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    timeout: 5 minutes\n"
		     "  - sleep: 1m30\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'timeout': bad duration '5 minutes'", 3, 14);
	TH_ASSERT_DIAG(&d, "'sleep': bad duration '1m30'", 4, 12);
	cr_assert_eq(d.n, 2);
	diags_free(&d);
}

Test(validate, wrong_type_for_a_duration)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    timeout: [1s]\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'timeout' must be a duration, not a list", 3, 14);
	diags_free(&d);
}

Test(validate, unknown_semaphore_with_hint)
{
	struct diags d = {0};
	th_load_fail("semaphores: { registry: 2 }\n"
		     "steps:\n"
		     "  - run: a\n"
		     "    semaphore: registy\n"
		     "  - run: b\n"
		     "    semaphore: [registry, gpu]\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown semaphore 'registy'; did you mean 'registry'?", 4, 16);
	TH_ASSERT_DIAG(&d, "unknown semaphore 'gpu' (declare it under 'semaphores:')", 6, 27);
	cr_assert_eq(d.n, 2);
	diags_free(&d);
}

Test(validate, semaphore_capacity_must_be_positive)
{
	struct diags d = {0};
	th_load_fail("semaphores: { registry: 0 }\n"
		     "steps: [a]\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'registry' must be at least 1, not 0", 1, 25);
	diags_free(&d);
}

Test(validate, empty_lists)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - parallel: []\n"
		     "  - steps: []\n"
		     "  - run: []\n"
		     "  - stages: []\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'parallel' needs at least one step", 2, 15);
	TH_ASSERT_DIAG(&d, "'steps' needs at least one step", 3, 12);
	TH_ASSERT_DIAG(&d, "'run' as a list needs at least the program name", 4, 10);
	TH_ASSERT_DIAG(&d, "'stages' must be a non-empty list", 5, 13);
	cr_assert_eq(d.n, 4);
	diags_free(&d);
}

Test(validate, empty_top_level_steps)
{
	struct diags d = {0};
	th_load_fail("steps: []\n", &d);
	TH_ASSERT_DIAG(&d, "'steps' needs at least one step", 1, 8);
	diags_free(&d);
}

Test(validate, missing_steps)
{
	struct diags d = {0};
	th_load_fail("name: x\n", &d);
	TH_ASSERT_DIAG(&d, "the plan needs 'steps'", 1, 1);
	diags_free(&d);
}

Test(validate, empty_run_string)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: \"  \"\n"
		     "  - \"\"\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'run' is empty", 2, 10);
	TH_ASSERT_DIAG(&d, "empty step", 3, 5);
	diags_free(&d);
}

Test(validate, plan_must_be_a_map)
{
	struct diags d = {0};
	th_load_fail("- a\n- b\n", &d);
	TH_ASSERT_DIAG(&d, "a plan must be a map with 'steps', not a list", 1, 1);
	diags_free(&d);
}

Test(validate, empty_document)
{
	struct diags d = {0};
	th_load_fail("# nothing here\n", &d);
	TH_ASSERT_DIAG(&d, "the plan is empty", 1, 1);
	diags_free(&d);
}

Test(validate, mode_on_a_run_step)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    mode: settle\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'mode' applies only to a fan-out", 3, 11);
	TH_ASSERT_DIAG(&d, "not to a 'run' step", 3, 11);
	diags_free(&d);
}

Test(validate, unknown_mode_has_hint)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - parallel: [a, b]\n"
		     "    mode: setle\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown mode 'setle'; did you mean 'settle'?", 3, 11);
	diags_free(&d);
}

Test(validate, min_success_larger_than_the_fan_out)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - parallel: [a, b]\n"
		     "    min_success: 3\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'min_success' is 3 but the fan-out has only 2 instances", 3, 18);
	diags_free(&d);
}

Test(validate, min_success_equal_to_the_fan_out_is_fine)
{
	struct plan *p = th_load_ok("steps:\n"
				    "  - parallel: [a, b]\n"
				    "    min_success: 2\n");
	plan_free(p);
}

Test(validate, min_success_with_another_mode)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - parallel: [a, b]\n"
		     "    mode: any\n"
		     "    min_success: 1\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'min_success' implies mode 'settle'", 4, 18);
	diags_free(&d);
}

Test(validate, bad_percentage)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - parallel: [a, b]\n"
		     "    min_success: \"150%\"\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'min_success': bad percentage '150%'", 3, 18);
	diags_free(&d);
}

Test(validate, unterminated_expression_in_run)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: echo ${{ vars.x\n",
		     &d);
	/* the column of the '${{' */
	TH_ASSERT_DIAG(&d, "'run': '${{' without a closing '}}'", 2, 15);
	cr_assert_eq(d.n, 1);
	diags_free(&d);
}

Test(validate, expression_that_does_not_parse)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: echo ok ${{ nosuchfn(1) }}\n",
		     &d);
	TH_ASSERT_DIAG(&d, "unknown function 'nosuchfn'", 2, 18);
	diags_free(&d);
}

Test(validate, bad_when_expression)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    when: vars.x ==\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'when': ", 3, 11);
	diags_free(&d);
}

/*
 * A reference error belongs where the expression is: the run value (or its
 * '${{'), not the first line of the step.
 */
Test(validate, unknown_context_points_at_the_expression)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - name: greet\n"
		     "    run: echo ${{ stepz.a.stdout }}\n",
		     &d);
	const struct diag *g = th_diag_find(&d, "'run': unknown context 'stepz'; did you mean 'steps'?");
	cr_assert_not_null(g, "no 'unknown context' diagnostic");
	cr_assert_eq(d.n, 1);
	int line = g->line, col = g->col;
	diags_free(&d);
	cr_assert_eq(line, 3, "line %d, expected 3 (the run line)", line);
	cr_assert_eq(col, 15, "col %d, expected 15 (its '${{')", col);
}

Test(validate, unknown_context_in_a_first_line_run)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: echo ${{ zzzz.a }}\n",
		     &d);
	const struct diag *g = th_diag_find(&d, "'run': unknown context 'zzzz' (known: vars, inputs, env, steps");
	cr_assert_not_null(g);
	cr_assert_eq(g->line, 2);
	diags_free(&d);
}

Test(validate, unknown_step_in_a_steps_reference)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - { id: build, run: make }\n"
		     "  - name: show\n"
		     "    run: echo ${{ steps.biuld.stdout }}\n",
		     &d);
	const struct diag *g = th_diag_find(&d, "'run': no step with id 'biuld'");
	cr_assert_not_null(g, "no 'no step with id' diagnostic");
	cr_assert_eq(d.n, 1);
	int line = g->line, col = g->col;
	diags_free(&d);
	cr_assert_eq(line, 4, "line %d, expected 4 (the run line)", line);
	cr_assert_eq(col, 15, "col %d, expected 15 (its '${{')", col);
}

Test(validate, unknown_field_of_a_step_reference)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - { id: build, run: make }\n"
		     "  - run: echo ${{ steps.build.stdot }}\n",
		     &d);
	const struct diag *g = th_diag_find(&d, "steps.build has no 'stdot'");
	cr_assert_not_null(g);
	cr_assert_eq(g->line, 3);
	diags_free(&d);
}

Test(validate, references_in_env_point_at_the_env_value)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    env:\n"
		     "      X: \"${{ steps.nope.stdout }}\"\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'X': no step with id 'nope'", 4, 11);
	diags_free(&d);
}

Test(validate, contexts_of_later_features_are_refused)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: echo ${{ item }}\n"
		     "  - run: echo ${{ host.name }}\n"
		     "  - run: echo ${{ result.stdout }}\n"
		     "  - run: echo ${{ run.nope }}\n",
		     &d);
	cr_assert_not_null(th_diag_find(&d, "'item' is defined only inside a for_each step"));
	cr_assert_not_null(th_diag_find(&d, "'host' is defined only inside an 'on' step"));
	cr_assert_not_null(th_diag_find(&d, "'result' is defined only inside on_success"));
	cr_assert_not_null(th_diag_find(&d, "'run' has 'id' and 'status', not 'nope'"));
	cr_assert_eq(d.n, 4);
	diags_free(&d);
}

/* The host keys once answered "not supported yet"; now they are checked like the rest. */
Test(validate, host_keys_are_validated_not_refused)
{
	struct diags d = {0};
	th_load_fail("inventory: hosts.yaml\n"
		     "ssh: { known_hosts: strict }\n"
		     "steps:\n"
		     "  - run: a\n"
		     "    on: web\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'inventory': hosts.yaml: cannot open", 1, 12);
	cr_assert_null(th_diag_find(&d, "not supported yet"));
	cr_assert_eq(d.n, 1, "the steps' patterns are not resolved against an inventory that failed");
	diags_free(&d);
}

Test(validate, yaml_syntax_error)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a: b\n"
		     "  - run: c\n",
		     &d);
	TH_ASSERT_DIAG(&d, "invalid YAML: mapping values are not allowed in this context", 2, 11);
	cr_assert_eq(d.n, 1);
	diags_free(&d);
}

Test(validate, yaml_unterminated_quote)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: \"abc\n",
		     &d);
	cr_assert_eq(d.n, 1);
	cr_assert(strstr(d.v[0].msg, "invalid YAML: ") == d.v[0].msg, "%s", d.v[0].msg);
	cr_assert(strstr(d.v[0].msg, "quoted scalar") != NULL, "%s", d.v[0].msg);
	cr_assert_eq(d.v[0].line, 3, "%s at %d:%d", d.v[0].msg, d.v[0].line, d.v[0].col);
	diags_free(&d);
}

Test(validate, yaml_tab_indentation_is_a_syntax_error)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "\t- run: a\n",
		     &d);
	TH_ASSERT_DIAG(&d, "invalid YAML: found character that cannot start any token", 2, 1);
	diags_free(&d);
}

/* Loads a buffer that may hold NUL bytes; expects failure. */
static void load_bytes_fail(const char *data, size_t len, struct diags *d)
{
	struct plan *p = plan_load_buffer("plan.yaml", data, len, NULL, d);
	cr_assert_null(p, "a plan with a bad byte loaded");
	cr_assert_gt(d->n, 0);
}

Test(validate, a_nul_byte_is_reported_where_it_stands)
{
	static const char y[] = "steps:\n  - run: echo hi\n  - run: \"a\0b\"\n";
	struct diags d = {0};
	load_bytes_fail(y, sizeof y - 1, &d);
	TH_ASSERT_DIAG(&d, "invalid YAML: control characters are not allowed (byte 0x00)", 3, 12);
	cr_assert_eq(d.n, 1);
	diags_free(&d);
}

Test(validate, bytes_that_are_not_utf8_are_reported_where_they_stand)
{
	struct diags d = {0};
	th_load_fail("steps:\n  - run: echo hi\n  - run: \"a\xff" "b\"\n", &d);
	TH_ASSERT_DIAG(&d, "invalid YAML: invalid leading UTF-8 octet (byte 0xFF)", 3, 12);
	diags_free(&d);
	/* columns count characters: é is one; a CRLF ends a line once */
	th_load_fail("steps:\r\n  - run: \"h\xc3\xa9\x01x\"\r\n", &d);
	TH_ASSERT_DIAG(&d, "invalid YAML: control characters are not allowed (byte 0x01)", 2, 13);
	diags_free(&d);
	/* a byte order mark is no character */
	th_load_fail("\xef\xbb\xbfsteps: [\"\x02\"]\n", &d);
	TH_ASSERT_DIAG(&d, "(byte 0x02)", 1, 10);
	diags_free(&d);
}

/* ---- env names on remote steps ---- */

static const char remote_inv[] = "inventory:\n"
				 "  hosts:\n"
				 "    web1: { address: 10.0.0.11 }\n";

Test(validate, env_names_a_remote_shell_cannot_export_are_errors_at_their_key)
{
	struct diags d = {0};
	char *y = xasprintf("%s"
			    "env: { \"A-B\": x, OK_1: y }\n"
			    "defaults:\n"
			    "  env: { \"1X\": z }\n"
			    "steps:\n"
			    "  - id: grp\n"
			    "    on: web1\n"
			    "    env: { \"G.1\": 1 }\n"
			    "    steps:\n"
			    "      - run: echo hi\n"
			    "        env: { \"S P\": 1, GOOD: 2 }\n",
			    remote_inv);
	th_load_fail(y, &d);
	const char *why = "step 'grp.run-1' runs on remote host 'web1', whose shell cannot export this name";
	TH_ASSERT_DIAG(&d, "env 'A-B': step 'grp.run-1' runs on remote host 'web1'", 4, 8);
	TH_ASSERT_DIAG(&d, "env '1X'", 6, 10);
	TH_ASSERT_DIAG(&d, "env 'G.1'", 10, 12);
	TH_ASSERT_DIAG(&d, "env 'S P'", 13, 16);
	cr_assert_not_null(th_diag_find(&d, why));
	cr_assert_eq(d.n, 4, "%s", th_diags_text(&d));
	diags_free(&d);
	free(y);
}

Test(validate, env_names_of_local_steps_are_not_checked)
{
	/* locally any name but one with '=' goes into the environment */
	char *y = xasprintf("%s"
			    "env: { \"A-B\": x }\n"
			    "steps:\n"
			    "  - run: echo local\n"
			    "    env: { \"LOC.AL\": 1 }\n"
			    "  - id: lh\n"
			    "    on: localhost\n"
			    "    run: echo here\n"
			    "    env: { \"L-H\": 1 }\n"
			    "  - id: grp\n"
			    "    on: web1\n"
			    "    steps: [echo remote]\n"
			    "    finally:\n"
			    "      - run: echo after\n"
			    "        env: { \"F-1\": 1 }\n",
			    remote_inv);
	struct diags d = {0};
	th_load_fail(y, &d);
	/* the plan's env reaches the remote step; the rest run locally (a handler of an on step too) */
	TH_ASSERT_DIAG(&d, "env 'A-B': step 'grp.run-1' runs on remote host 'web1'", 4, 8);
	cr_assert_eq(d.n, 1, "%s", th_diags_text(&d));
	diags_free(&d);
	free(y);
	struct plan *p = th_load_ok("env: { \"A-B\": x }\nsteps:\n  - run: echo\n    on: localhost\n");
	plan_free(p);
}

Test(validate, an_env_name_inherited_from_an_enclosing_step_is_checked_once)
{
	char *y = xasprintf("%s"
			    "steps:\n"
			    "  - id: outer\n"
			    "    env: { \"X-Y\": 1 }\n"
			    "    steps:\n"
			    "      - run: echo a\n"
			    "        on: web1\n"
			    "      - run: echo b\n"
			    "        on: web1\n",
			    remote_inv);
	struct diags d = {0};
	th_load_fail(y, &d);
	TH_ASSERT_DIAG(&d, "env 'X-Y': step 'outer.run-1' runs on remote host 'web1'", 6, 12);
	cr_assert_eq(d.n, 1, "%s", th_diags_text(&d));
	diags_free(&d);
	free(y);
}

Test(validate, alias_bomb_hits_the_alias_budget, .timeout = 10)
{
	/* 10 levels of 10 aliases each would expand to 10^10 nodes */
	struct buf y = {0};
	buf_adds(&y, "a: &a [x, x, x, x, x, x, x, x, x, x]\n");
	const char *names = "abcdefghij";
	for (int lvl = 1; lvl < 10; lvl++) {
		buf_printf(&y, "%c: &%c [", names[lvl], names[lvl]);
		for (int i = 0; i < 10; i++)
			buf_printf(&y, "%s*%c", i ? ", " : "", names[lvl - 1]);
		buf_adds(&y, "]\n");
	}
	buf_adds(&y, "steps: [a]\n");
	struct diags d = {0};
	th_load_fail(y.data, &d);
	/*
	 * Level k (a = 1) costs 10 copies of a level k-1 node of 1.11..*10^(k-2)
	 * nodes: b..d cost 12330, and the 8th '*d' on line 5 passes 100000.
	 */
	TH_ASSERT_DIAG(&d, "aliases expand to more than 100000 nodes", 5, 36);
	cr_assert_eq(d.n, 1);
	buf_free(&y);
	diags_free(&d);
}

Test(validate, alias_to_its_own_container_is_refused, .timeout = 10)
{
	struct diags d = {0};
	th_load_fail("steps: &s [a, *s]\n", &d);
	TH_ASSERT_DIAG(&d, "refers to a node that contains it", 1, 15);
	diags_free(&d);
}

Test(validate, unknown_alias)
{
	struct diags d = {0};
	th_load_fail("steps: [*nothing]\n", &d);
	TH_ASSERT_DIAG(&d, "unknown alias '*nothing'", 1, 9);
	cr_assert_eq(d.n, 1);
	diags_free(&d);
}

Test(validate, small_aliases_are_expanded)
{
	struct plan *p = th_load_ok("vars:\n"
				    "  base: &b { a: 1, b: [x, y] }\n"
				    "  copy: *b\n"
				    "steps: [echo]\n");
	json_t *c = json_object_get(p->vars, "copy");
	cr_assert_eq(json_integer_value(json_object_get(c, "a")), 1);
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(c, "b"), 1)), "y");
	plan_free(p);
}

Test(validate, nesting_deeper_than_64_is_refused, .timeout = 10)
{
	struct buf y = {0};
	for (int i = 0; i < 100; i++)
		buf_addc(&y, '[');
	for (int i = 0; i < 100; i++)
		buf_addc(&y, ']');
	buf_addc(&y, '\n');
	struct diags d = {0};
	th_load_fail(y.data, &d);
	/* the 65th '[' opens level 65 */
	TH_ASSERT_DIAG(&d, "nesting deeper than 64 levels", 1, 65);
	cr_assert_eq(d.n, 1);
	buf_free(&y);
	diags_free(&d);
}

Test(validate, very_deep_nesting_is_bounded, .timeout = 10)
{
	struct buf y = {0};
	buf_adds(&y, "steps: ");
	for (int i = 0; i < 200000; i++)
		buf_addc(&y, '[');
	struct diags d = {0};
	th_load_fail(y.data, &d);
	cr_assert_not_null(th_diag_find(&d, "nesting deeper than 64 levels"));
	buf_free(&y);
	diags_free(&d);
}

Test(validate, nesting_of_64_levels_is_allowed_by_the_yaml_layer)
{
	/* 1 (plan map) + 1 (vars map) + 62 lists = 64 */
	struct buf y = {0};
	buf_adds(&y, "vars:\n  deep: ");
	for (int i = 0; i < 62; i++)
		buf_addc(&y, '[');
	for (int i = 0; i < 62; i++)
		buf_addc(&y, ']');
	buf_adds(&y, "\nsteps: [a]\n");
	struct plan *p = th_load_ok(y.data);
	plan_free(p);
	buf_free(&y);
}

Test(validate, a_second_document_is_an_error)
{
	struct diags d = {0};
	th_load_fail("steps: [a]\n"
		     "---\n"
		     "steps: [b]\n",
		     &d);
	TH_ASSERT_DIAG(&d, "a plan is one YAML document; found a second one", 2, 1);
	cr_assert_eq(d.n, 1);
	diags_free(&d);
}

Test(validate, all_errors_of_a_file_are_reported)
{
	struct diags d = {0};
	th_load_fail("concurrency: 0\n"
		     "steps:\n"
		     "  - run: a\n"
		     "    timout: 5s\n"
		     "  - run: b\n"
		     "    retry: lots\n"
		     "  - { id: x, run: c }\n"
		     "  - { id: x, run: d }\n"
		     "  - sleep: soon\n"
		     "  - run: e\n"
		     "    continue_on_error: maybe\n"
		     "  - parallel: [f]\n"
		     "    max_concurrency: 0\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'concurrency' must be at least 1, not 0", 1, 14);
	TH_ASSERT_DIAG(&d, "unknown key 'timout'", 4, 5);
	TH_ASSERT_DIAG(&d, "'retry' must be an integer, not 'lots'", 6, 12);
	TH_ASSERT_DIAG(&d, "duplicate id 'x'", 8, 5);
	TH_ASSERT_DIAG(&d, "'sleep': bad duration 'soon'", 9, 12);
	TH_ASSERT_DIAG(&d, "'continue_on_error' must be true or false, not 'maybe'", 11, 24);
	TH_ASSERT_DIAG(&d, "'max_concurrency' must be at least 1, not 0", 13, 22);
	cr_assert_eq(d.n, 7);
	diags_free(&d);
}

Test(validate, errors_in_several_places_keep_their_own_lines)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - stages:\n"
		     "      - name: unit\n"
		     "        steps:\n"
		     "          - run: a\n"
		     "            timeout: x\n"
		     "      - name: lint\n"
		     "        stepz: [b]\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'timeout': bad duration 'x'", 6, 22);
	TH_ASSERT_DIAG(&d, "unknown key 'stepz' in a stage; did you mean 'steps'?", 8, 9);
	TH_ASSERT_DIAG(&d, "a stage needs 'steps'", 7, 9);
	diags_free(&d);
}

Test(validate, retry_on_exit_codes_are_bounded)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: a\n"
		     "    retry: { attempts: 2, on_exit: [1, 300] }\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'on_exit': exit codes are 0 to 255, not 300", 3, 40);
	diags_free(&d);
}

/* A stage list whose stages have no steps must still fail fast, not hang. */
Test(validate, many_empty_stages_fail_without_hanging, .timeout = 5)
{
	struct buf y = {0};
	buf_adds(&y, "steps:\n  - stages:\n");
	for (int i = 0; i < 40; i++)
		buf_printf(&y, "      - { name: s%d, steps: [] }\n", i);
	struct diags d = {0};
	th_load_fail(y.data, &d);
	TH_ASSERT_DIAG(&d, "'steps' needs at least one step", 3, 28);
	cr_assert_eq(d.n, 40);
	buf_free(&y);
	diags_free(&d);
}

Test(validate, many_stages_load, .timeout = 5)
{
	struct buf y = {0};
	buf_adds(&y, "steps:\n  - stages:\n");
	for (int i = 0; i < 40; i++)
		buf_printf(&y, "      - { name: s%d, steps: [a] }\n", i);
	struct plan *p = th_load_ok(y.data);
	cr_assert_eq(p->root->children[0]->n_children, 40);
	cr_assert_not_null(plan_find_step(p, "stages-1.s39.run-1"));
	plan_free(p);
	buf_free(&y);
}

Test(validate, diagnostics_name_the_file)
{
	struct diags d = {0};
	const char *y = "steps: []\n";
	struct plan *p = plan_load_buffer("some/dir/x.yaml", y, strlen(y), NULL, &d);
	cr_assert_null(p);
	cr_assert_eq(d.n, 1);
	cr_assert_str_eq(d.v[0].file, "some/dir/x.yaml");
	diags_free(&d);
}

/* References are checked everywhere a template can stand, the plan's own env and defaults included. */
Test(validate, references_in_plan_env_and_defaults_are_checked)
{
	struct diags d = {0};
	struct plan *p = plan_load_buffer("plan.yaml",
					  "env:\n"
					  "  X: \"${{ stepz.a }}\"\n"
					  "  Y: \"${{ steps.nope.stdout }}\"\n"
					  "defaults:\n"
					  "  cwd: \"${{ zz.q }}\"\n"
					  "steps: [echo]\n",
					  strlen("env:\n"
						 "  X: \"${{ stepz.a }}\"\n"
						 "  Y: \"${{ steps.nope.stdout }}\"\n"
						 "defaults:\n"
						 "  cwd: \"${{ zz.q }}\"\n"
						 "steps: [echo]\n"),
					  NULL, &d);
	bool loaded = p != NULL;
	plan_free(p);
	if (loaded) {
		diags_free(&d);
		cr_assert_fail("a plan whose env and defaults name unknown contexts and steps loaded");
	}
	TH_ASSERT_DIAG(&d, "'X': unknown context 'stepz'", 2, 7);
	TH_ASSERT_DIAG(&d, "'Y': no step with id 'nope'", 3, 7);
	const struct diag *g = th_diag_find(&d, "unknown context 'zz'");
	cr_assert_not_null(g, "defaults.cwd was not checked");
	cr_assert_eq(g->line, 5);
	diags_free(&d);
}

/* retry: N means N + 1 attempts; the largest N the loader accepts must not overflow. */
Test(validate, retry_count_at_int_max_does_not_overflow)
{
	struct diags d = {0};
	const char *y = "steps:\n"
			"  - run: a\n"
			"    retry: 2147483647\n";
	struct plan *p = plan_load_buffer("plan.yaml", y, strlen(y), NULL, &d);
	int attempts = p ? p->root->children[0]->retry->attempts : 1;
	bool refused = !p && d.n > 0;
	plan_free(p);
	diags_free(&d);
	cr_assert(refused || attempts >= 1, "retry 2147483647 gave attempts = %d", attempts);
}
