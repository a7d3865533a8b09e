/*
 * Structured outputs: the $BATON_OUTPUT parser (KEY=VALUE, KEY<<DELIM
 * blocks, what is refused and where), from_json(), and the fields that may
 * be ${{ }} (continue_on_error, batch): where they are refused at load, and
 * what their values give at run time.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "exec/exec.h"
#include "helpers.h"
#include "plan/plan.h"

static json_t *parse_ok(const char *text)
{
	char *err = NULL;
	json_t *o = exec_output_parse(text, strlen(text), &err);
	cr_assert_not_null(o, "parse of `%s` failed: %s", text, err ? err : "?");
	cr_assert_null(err);
	return o;
}

static void parse_fails(const char *text, const char *want)
{
	char *err = NULL;
	json_t *o = exec_output_parse(text, strlen(text), &err);
	cr_assert_null(o, "`%s` parsed", text);
	cr_assert_str_eq(err, want);
	free(err);
}

static const char *get(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	cr_assert(json_is_string(v), "no string '%s'", k);
	return json_string_value(v);
}

Test(outputs, key_value_lines_the_value_is_everything_after_the_first_equals)
{
	json_t *o = parse_ok("a=1\nb=x=y\n\nempty=\nc-d_E9=sp ace \r\nlast=no newline");
	cr_assert_eq(json_object_size(o), 5);
	cr_assert_str_eq(get(o, "a"), "1");
	cr_assert_str_eq(get(o, "b"), "x=y");
	cr_assert_str_eq(get(o, "empty"), "");
	cr_assert_str_eq(get(o, "c-d_E9"), "sp ace "); /* a CRLF ending goes, the spaces stay */
	cr_assert_str_eq(get(o, "last"), "no newline");
	json_decref(o);
}

Test(outputs, a_later_key_replaces_an_earlier_one)
{
	json_t *o = parse_ok("v=1\nv=2\n");
	cr_assert_str_eq(get(o, "v"), "2");
	json_decref(o);
}

Test(outputs, heredoc_blocks_keep_inner_lines_and_empty_lines_without_the_last_newline)
{
	json_t *o = parse_ok("notes<<EOF\nfirst\n\nk=v inside\nEOF\nafter=1\nempty<<X\nX\n");
	cr_assert_str_eq(get(o, "notes"), "first\n\nk=v inside");
	cr_assert_str_eq(get(o, "after"), "1");
	cr_assert_str_eq(get(o, "empty"), "");
	cr_assert_null(json_object_get(o, "k"), "a line inside a block is not a key");
	json_decref(o);
}

Test(outputs, equals_before_the_heredoc_marker_is_a_plain_value)
{
	json_t *o = parse_ok("a=b<<c\n");
	cr_assert_str_eq(get(o, "a"), "b<<c");
	json_decref(o);
}

Test(outputs, malformed_lines_name_the_line)
{
	parse_fails("ok=1\n\njust text\n", "$BATON_OUTPUT line 3: expected KEY=VALUE or KEY<<DELIMITER, got 'just text'");
	parse_fails("a=1\nx<<EOF\nline\n",
		    "$BATON_OUTPUT line 2: the block 'x<<EOF' has no line 'EOF' to end it");
	parse_fails("x<<\nEOF\n", "$BATON_OUTPUT line 1: 'x<<' needs a delimiter after '<<'");
	parse_fails("9lives=1\n", "$BATON_OUTPUT line 1: '9lives' is not a valid output name (letters, digits, _ and "
				  "-, not starting with a digit or -)");
	parse_fails("=1\n", "$BATON_OUTPUT line 1: '' is not a valid output name (letters, digits, _ and -, not "
			    "starting with a digit or -)");
	parse_fails("a b=1\n", "$BATON_OUTPUT line 1: 'a b' is not a valid output name (letters, digits, _ and -, "
			       "not starting with a digit or -)");
}

Test(outputs, a_long_bad_line_is_cut_in_the_message_and_control_bytes_escaped)
{
	char *err = NULL;
	const char text[] = "0123456789012345678901234567890123456789-and-more\n";
	json_t *o = exec_output_parse(text, strlen(text), &err);
	cr_assert_null(o);
	cr_assert(strstr(err, "got '0123456789012345678901234567890123456789...'"), "%s", err);
	free(err);
	const char bell[] = "a\007b\n";
	o = exec_output_parse(bell, strlen(bell), &err);
	cr_assert_null(o);
	cr_assert_null(strchr(err, '\007'), "%s", err);
	free(err);
}

Test(outputs, an_empty_file_has_no_outputs)
{
	json_t *o = parse_ok("");
	cr_assert_eq(json_object_size(o), 0);
	json_decref(o);
	o = parse_ok("\n\n");
	cr_assert_eq(json_object_size(o), 0);
	json_decref(o);
}

/* ---- from_json ---- */

static json_t *lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used, char **err)
{
	(void)segs;
	(void)nsegs;
	json_t *v = json_object_get((json_t *)ud, root);
	if (!v) {
		*err = xasprintf("unknown context '%s'", root);
		return NULL;
	}
	*used = 0;
	return json_incref(v);
}

static json_t *eval_in(const char *src, json_t *ctx, char **err)
{
	struct expr_scope scope = {lookup, ctx};
	struct expr *e = expr_parse(src, strlen(src), err);
	cr_assert_not_null(e, "parse of `%s`: %s", src, *err ? *err : "?");
	json_t *v = expr_eval(e, &scope, err);
	expr_free(e);
	return v;
}

Test(outputs, from_json_parses_any_value_and_its_fields_can_be_read)
{
	json_t *ctx = json_pack("{s:{s:s, s:s}}", "steps", "out", "{\"healthy\": true, \"hosts\": [\"a\", \"b\"]}", "n",
				"42");
	char *err = NULL;
	json_t *v = eval_in("from_json(steps.out).healthy", ctx, &err);
	cr_assert(json_is_true(v));
	json_decref(v);
	v = eval_in("from_json(steps.out).hosts[1]", ctx, &err);
	cr_assert_str_eq(json_string_value(v), "b");
	json_decref(v);
	v = eval_in("from_json(steps.out)['hosts'][0] == 'a' && from_json(steps.n) > 41", ctx, &err);
	cr_assert(json_is_true(v));
	json_decref(v);
	v = eval_in("len(from_json('[1, 2, 3]'))", ctx, &err);
	cr_assert_eq(json_integer_value(v), 3);
	json_decref(v);
	v = eval_in("from_json('null')", ctx, &err);
	cr_assert(json_is_null(v));
	json_decref(v);
	json_decref(ctx);
}

Test(outputs, from_json_of_bad_text_names_the_function_and_the_position)
{
	json_t *ctx = json_object();
	char *err = NULL;
	json_t *v = eval_in("from_json('{\"a\": 1,\n  oops}')", ctx, &err);
	cr_assert_null(v);
	cr_assert(strstr(err, "from_json(): not JSON at line 2, column 6"), "%s", err);
	free(err);
	err = NULL;
	v = eval_in("from_json(3)", ctx, &err);
	cr_assert_null(v);
	cr_assert_str_eq(err, "from_json() takes a string of JSON text");
	free(err);
	err = NULL;
	cr_assert_null(expr_parse("from_json()", 11, &err));
	cr_assert_str_eq(err, "from_json() takes 1 argument");
	free(err);
	json_decref(ctx);
}

/* ---- continue_on_error and batch as ${{ }} ---- */

static json_t *static_lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used,
			     char **err)
{
	return plan_lookup_static(ud, root, segs, nsegs, used, err);
}

Test(outputs, field_expressions_reading_steps_or_results_are_errors_at_their_place)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - id: a\n"
		     "    run: 'true'\n"
		     "  - run: 'true'\n"
		     "    continue_on_error: ${{ steps.a.status == 'failed' }}\n"
		     "  - for_each: [1, 2]\n"
		     "    batch: { size: '${{ item }}', max_failures: '${{ run.status }}' }\n"
		     "    run: 'true'\n"
		     "  - run: 'true'\n"
		     "    continue_on_error: 'yes ${{ 1 }}'\n"
		     "  - run: 'true'\n"
		     "    continue_on_error: ${{ ( }}\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'continue_on_error' may read only vars, inputs, env, item, index and host, not 'steps'", 5,
		       24);
	TH_ASSERT_DIAG(&d, "'batch.size': 'item' is defined only inside a for_each step", 7, 20);
	TH_ASSERT_DIAG(&d, "'batch.max_failures' may read only vars, inputs, env, item, index and host, not 'run'", 7,
		       49);
	TH_ASSERT_DIAG(&d, "'continue_on_error' is a value or one ${{ expression }} alone, not text around one", 10, 24);
	TH_ASSERT_DIAG(&d, "'continue_on_error': ", 12, 24);
	diags_free(&d);
}

Test(outputs, field_expressions_may_read_an_enclosing_item_and_plain_values_still_parse)
{
	struct plan *p = th_load_ok("vars: { n: 2 }\n"
				    "steps:\n"
				    "  - id: outer\n"
				    "    for_each: [1, 2]\n"
				    "    steps:\n"
				    "      - id: inner\n"
				    "        for_each: [a, b, c]\n"
				    "        batch: { size: '${{ item }}', pause: '${{ vars.n }}' }\n"
				    "        continue_on_error: ${{ item == 'b' }}\n"
				    "        run: 'true'\n"
				    "  - run: 'true'\n"
				    "    continue_on_error: true\n");
	const struct step *in = plan_find_step(p, "outer.inner");
	cr_assert_not_null(in->fan->batch.size_x.e);
	cr_assert_not_null(in->fan->batch.pause_x.e);
	cr_assert_null(in->fan->batch.max_failures_x.e);
	cr_assert_not_null(in->mods->continue_x.e);
	cr_assert_eq(in->fan->batch.n_sizes, 0);
	cr_assert(plan_find_step(p, "run-2")->continue_on_error);
	plan_free(p);
}

Test(outputs, batch_resolve_takes_counts_percentages_lists_and_durations_and_refuses_other_types)
{
	struct plan *p = th_load_ok("vars: { one: 1, stages: [1, '50%'], pause: 1m30s, secs: 2, bad: lots, zero: 0 }\n"
				    "steps:\n"
				    "  - id: a\n"
				    "    for_each: [1, 2, 3]\n"
				    "    batch: { size: '${{ vars.stages }}', pause: '${{ vars.pause }}', max_failures: '${{ "
				    "vars.one }}' }\n"
				    "    run: 'true'\n"
				    "  - id: b\n"
				    "    for_each: [1, 2, 3]\n"
				    "    batch: { size: '${{ vars.bad }}', pause: '${{ vars.secs }}' }\n"
				    "    run: 'true'\n"
				    "  - id: c\n"
				    "    for_each: [1]\n"
				    "    batch: { size: '${{ vars.zero }}' }\n"
				    "    run: 'true'\n"
				    "  - id: d\n"
				    "    for_each: [1]\n"
				    "    batch: { size: 1, pause: '${{ vars.stages }}' }\n"
				    "    run: 'true'\n");
	struct expr_scope scope = {static_lookup, p};
	struct batch_spec out;
	char *err = NULL;
	cr_assert(batch_resolve(&plan_find_step(p, "a")->fan->batch, &scope, &out, &err), "%s", err);
	cr_assert_eq(out.n_sizes, 2);
	cr_assert(!out.sizes[0].percent && out.sizes[0].value == 1);
	cr_assert(out.sizes[1].percent && out.sizes[1].value == 50);
	cr_assert_eq(out.pause_ms, 90000);
	cr_assert(!out.max_failures.percent && out.max_failures.value == 1);
	free(out.sizes);
	cr_assert_not(batch_resolve(&plan_find_step(p, "b")->fan->batch, &scope, &out, &err));
	cr_assert_str_eq(err, "'batch.size': the expression gave 'lots'; expected a count of at least 1 or a percentage "
			      "like \"25%\"");
	free(err);
	cr_assert_not(batch_resolve(&plan_find_step(p, "c")->fan->batch, &scope, &out, &err));
	cr_assert_str_eq(err, "'batch.size': the expression gave 0; expected a count of at least 1 or a percentage");
	free(err);
	cr_assert_not(batch_resolve(&plan_find_step(p, "d")->fan->batch, &scope, &out, &err));
	cr_assert_str_eq(err, "'batch.pause': the expression gave a list; expected a duration like 5s or 1m30s");
	free(err);
	plan_free(p);
}

Test(outputs, continue_on_error_eval_gives_booleans_only)
{
	struct plan *p = th_load_ok("vars: { t: true, s: 'yes' }\n"
				    "steps:\n"
				    "  - id: a\n"
				    "    continue_on_error: ${{ vars.t }}\n"
				    "    run: 'true'\n"
				    "  - id: b\n"
				    "    continue_on_error: ${{ vars.s }}\n"
				    "    run: 'true'\n"
				    "  - id: c\n"
				    "    continue_on_error: ${{ !vars.t }}\n"
				    "    run: 'true'\n");
	struct expr_scope scope = {static_lookup, p};
	char *err = NULL;
	cr_assert_eq(continue_on_error_eval(plan_find_step(p, "a"), &scope, &err), 1);
	cr_assert_eq(continue_on_error_eval(plan_find_step(p, "c"), &scope, &err), 0);
	cr_assert_eq(continue_on_error_eval(plan_find_step(p, "b"), &scope, &err), -1);
	cr_assert_str_eq(err, "'continue_on_error': the expression gave a string, not true or false");
	free(err);
	plan_free(p);
}
