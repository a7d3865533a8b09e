/*
 * Expressions: parsing, evaluation with GitHub Actions semantics against a
 * small JSON context, functions, errors, and the bound on nesting.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "plan/plan.h"

/* Serves roots from a JSON object; consumes no segments (member access walks them). */
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

static json_t *ctx;
static struct expr_scope scope;

static void setup(void)
{
	json_error_t je;
	ctx = json_loads("{\"vars\": {\"n\": 3, \"s\": \"3\", \"name\": \"web-1\", \"empty\": \"\", \"zero\": 0,"
			 " \"nul\": null, \"t\": true, \"f\": false, \"half\": 1.5, \"i\": 1,"
			 " \"list\": [\"a\", \"b\", \"c\"], \"nums\": [1, 2, 3],"
			 " \"map\": {\"k\": \"v\", \"inner\": {\"deep\": 42}},"
			 " \"hosts\": [{\"name\": \"h1\"}, {\"name\": \"h2\"}]}}",
			 0, &je);
	cr_assert_not_null(ctx, "%s", je.text);
	scope.lookup = lookup;
	scope.ud = ctx;
}

static void teardown(void)
{
	json_decref(ctx);
}

/* Parses and evaluates src; fails the test on any error. Caller decrefs. */
static json_t *ev(const char *src)
{
	char *err = NULL;
	struct expr *e = expr_parse(src, strlen(src), &err);
	cr_assert_not_null(e, "parse of `%s` failed: %s", src, err ? err : "?");
	json_t *v = expr_eval(e, &scope, &err);
	cr_assert_not_null(v, "eval of `%s` failed: %s", src, err ? err : "?");
	cr_assert_null(err);
	expr_free(e);
	return v;
}

/* Evaluates src expecting an evaluation error containing sub. */
static void ev_err(const char *src, const char *sub)
{
	char *err = NULL;
	struct expr *e = expr_parse(src, strlen(src), &err);
	cr_assert_not_null(e, "parse of `%s` failed: %s", src, err ? err : "?");
	json_t *v = expr_eval(e, &scope, &err);
	cr_assert_null(v, "`%s` evaluated but should fail", src);
	cr_assert_not_null(err);
	cr_assert(strstr(err, sub) != NULL, "`%s`: error \"%s\" lacks \"%s\"", src, err, sub);
	free(err);
	expr_free(e);
}

/* Expects a parse error containing sub. */
static void parse_err(const char *src, const char *sub)
{
	char *err = NULL;
	struct expr *e = expr_parse(src, strlen(src), &err);
	cr_assert_null(e, "`%s` parsed but should not", src);
	cr_assert_not_null(err, "`%s`: no error message", src);
	cr_assert(strstr(err, sub) != NULL, "`%s`: error \"%s\" lacks \"%s\"", src, err, sub);
	free(err);
}

static void is_bool(const char *src, bool want)
{
	json_t *v = ev(src);
	cr_assert(json_is_boolean(v), "`%s` is not a boolean", src);
	cr_assert_eq(json_is_true(v), want, "`%s` is %s, expected %s", src, json_is_true(v) ? "true" : "false",
		     want ? "true" : "false");
	json_decref(v);
}

static void is_str(const char *src, const char *want)
{
	json_t *v = ev(src);
	cr_assert(json_is_string(v), "`%s` is not a string", src);
	cr_assert_str_eq(json_string_value(v), want, "`%s`", src);
	json_decref(v);
}

static void is_int(const char *src, long long want)
{
	json_t *v = ev(src);
	cr_assert(json_is_integer(v), "`%s` is not an integer", src);
	cr_assert_eq(json_integer_value(v), want, "`%s` is %lld, expected %lld", src,
		     (long long)json_integer_value(v), want);
	json_decref(v);
}

TestSuite(expr, .init = setup, .fini = teardown);

Test(expr, literals)
{
	is_str("'hello'", "hello");
	is_str("\"dq\"", "dq");
	is_str("'it''s'", "it's");
	is_str("\"a\\\"b\\n\"", "a\"b\n");
	is_str("''", "");
	is_int("42", 42);
	is_int("-3", -3);
	json_t *v = ev("1.5");
	cr_assert(json_is_real(v));
	cr_assert_float_eq(json_real_value(v), 1.5, 1e-12);
	json_decref(v);
	is_bool("true", true);
	is_bool("false", false);
	v = ev("null");
	cr_assert(json_is_null(v));
	json_decref(v);
	is_str("  'spaces around'  ", "spaces around");
}

Test(expr, equality)
{
	is_bool("1 == 1", true);
	is_bool("1 == 2", false);
	is_bool("'a' == 'a'", true);
	is_bool("'a' == 'b'", false);
	is_bool("'a' != 'b'", true);
	is_bool("1 != 1", false);
	is_bool("null == null", true);
	is_bool("true == true", true);
	is_bool("true != false", true);
	is_bool("vars.name == 'web-1'", true);
	is_bool("vars.list == vars.list", true);
}

Test(expr, string_comparison_coerces_numbers)
{
	is_bool("'3' == 3", true);
	is_bool("3 == '3'", true);
	is_bool("vars.n == '3'", true);
	is_bool("vars.s == 3", true);
	is_bool("vars.s == vars.n", true);
	is_bool("'3.0' == 3", true);
	is_bool("'1.5' == vars.half", true);
	is_bool("'3' != 3", false);
	is_bool("'abc' == 3", false);
	is_bool("'2' < 10", true); /* numeric order when one side is a number */
	is_bool("10 > '9'", true);
	/* two strings compare as text */
	is_bool("'10' < '9'", true);
	is_bool("'3' == '3.0'", false);
}

Test(expr, ordering_operators)
{
	is_bool("1 < 2", true);
	is_bool("2 < 1", false);
	is_bool("2 <= 2", true);
	is_bool("3 <= 2", false);
	is_bool("3 > 2", true);
	is_bool("2 > 3", false);
	is_bool("3 >= 3", true);
	is_bool("2 >= 3", false);
	is_bool("-1 < 0", true);
	is_bool("1.5 < 2", true);
	is_bool("'apple' < 'banana'", true);
	is_bool("'b' >= 'a'", true);
	is_bool("vars.n > 2", true);
	ev_err("1 < 'abc'", "compare two numbers or two strings");
	ev_err("vars.list < 1", "compare two numbers or two strings");
}

Test(expr, and_or_return_operand_values)
{
	is_str("'' || 'fallback'", "fallback");
	is_str("'first' || 'second'", "first");
	is_str("'a' && 'b'", "b");
	is_int("0 && 'x'", 0);
	is_int("vars.zero || 7", 7);
	is_str("vars.nul || 'x'", "x");
	json_t *v = ev("vars.nul && 'x'");
	cr_assert(json_is_null(v));
	json_decref(v);
	is_str("false || '' || 'last'", "last");
	is_bool("true && true", true);
	is_bool("true && false", false);
	is_bool("false || false", false);
}

Test(expr, and_or_short_circuit)
{
	/* the right side is never evaluated, so its error never happens */
	is_bool("false && vars.missing", false);
	is_bool("true || nosuchctx.x", true);
	ev_err("true && vars.missing", "missing");
}

Test(expr, and_binds_tighter_than_or)
{
	is_bool("true || false && false", true);
	is_bool("false && false || true", true);
	is_bool("(true || false) && false", false);
}

Test(expr, not_operator)
{
	is_bool("!true", false);
	is_bool("!false", true);
	is_bool("!0", true);
	is_bool("!''", true);
	is_bool("!'a'", false);
	is_bool("!null", true);
	is_bool("!!'a'", true);
	is_bool("!vars.list", false);
	is_bool("!true == false", true);
	is_bool("1 != 2", true);
}

Test(expr, parentheses)
{
	is_bool("(1 == 1) && !(2 == 3)", true);
	is_int("((((7))))", 7);
	is_bool("!(vars.n == 3)", false);
	is_str("(vars.map).k", "v");
}

Test(expr, member_access_and_index)
{
	is_str("vars.map.k", "v");
	is_int("vars.map.inner.deep", 42);
	is_str("vars.list[1]", "b");
	is_str("vars.list[vars.i]", "b");
	is_str("vars.list['2']", "c");
	is_str("vars['name']", "web-1");
	is_str("vars.map['k']", "v");
	is_int("vars.map['inner'].deep", 42);
	is_str("vars.hosts[1].name", "h2");
	is_str("vars.hosts[0]['name']", "h1");
	ev_err("vars.list[3]", "list index out of range");
	ev_err("vars.list[-1]", "list index out of range");
	ev_err("vars.list[0.5]", "list index out of range");
	ev_err("vars.nothing", "no key 'nothing'");
	ev_err("vars.name.x", "cannot read '.x' of a string");
	ev_err("vars.list.x", "cannot read '.x' of a list");
	ev_err("vars.n[0]", "[ ] takes a list with a number or a map with a string");
	ev_err("vars.map[0]", "[ ] takes a list with a number or a map with a string");
	ev_err("nosuchctx.a", "unknown context 'nosuchctx'");
}

Test(expr, path_without_a_resolver_is_an_error)
{
	char *err = NULL;
	struct expr *e = expr_parse("vars.x", 6, &err);
	cr_assert_not_null(e);
	struct expr_scope none = {0};
	json_t *v = expr_eval(e, &none, &err);
	cr_assert_null(v);
	cr_assert_not_null(err);
	cr_assert(strstr(err, "'vars' is not available here") != NULL, "%s", err);
	free(err);
	v = expr_eval(e, NULL, &err);
	cr_assert_null(v);
	cr_assert_not_null(err);
	free(err);
	expr_free(e);
}

Test(expr, contains_on_strings_and_lists)
{
	is_bool("contains('hello', 'ell')", true);
	is_bool("contains('hello', 'xyz')", false);
	is_bool("contains('hello', '')", true);
	is_bool("contains(vars.name, 1)", true);
	is_bool("contains(vars.list, 'b')", true);
	is_bool("contains(vars.list, 'z')", false);
	is_bool("contains(vars.list, 'a b')", false);
	is_bool("contains(vars.nums, 2)", true);
	is_bool("contains(vars.nums, '2')", true);
	is_bool("contains(vars.nums, 4)", false);
}

Test(expr, starts_with_and_ends_with)
{
	is_bool("starts_with('hello', 'he')", true);
	is_bool("starts_with('hello', 'lo')", false);
	is_bool("starts_with('he', 'hello')", false);
	is_bool("starts_with(vars.name, 'web')", true);
	is_bool("starts_with('x', '')", true);
	is_bool("ends_with('hello', 'lo')", true);
	is_bool("ends_with('hello', 'he')", false);
	is_bool("ends_with('lo', 'hello')", false);
	is_bool("ends_with(vars.name, 1)", true);
}

Test(expr, len_of_strings_lists_and_maps)
{
	is_int("len('hello')", 5);
	is_int("len('')", 0);
	is_int("len(vars.list)", 3);
	is_int("len(vars.map)", 2);
	is_int("len(vars.empty)", 0);
	ev_err("len(5)", "len() takes a string, list or map");
	ev_err("len(null)", "len() takes a string, list or map");
}

Test(expr, default_rescues_an_error_and_null)
{
	is_str("default(vars.missing, 'fallback')", "fallback");
	is_str("default(nosuchctx.x, 'fallback')", "fallback");
	is_str("default(vars.nul, 'fallback')", "fallback");
	is_str("default(null, 'y')", "y");
	is_str("default(vars.name, 'fallback')", "web-1");
	is_int("default(vars.zero, 9)", 0);
	is_bool("default(vars.f, true)", false);
	is_str("default(vars.list[9], default(vars.nope, 'inner'))", "inner");
	ev_err("default(vars.missing, vars.alsomissing)", "alsomissing");
}

Test(expr, json_encodes_values)
{
	is_str("json(vars.map.k)", "\"v\"");
	is_str("json(vars.list)", "[\"a\",\"b\",\"c\"]");
	is_str("json(vars.map.inner)", "{\"deep\":42}");
	is_str("json(null)", "null");
	is_str("json(vars.n)", "3");
	is_str("json(true)", "true");
}

Test(expr, raw_returns_its_argument)
{
	is_str("raw('a $b')", "a $b");
	is_int("raw(vars.n)", 3);
	json_t *v = ev("raw(vars.list)");
	cr_assert(json_is_array(v));
	cr_assert_eq(json_array_size(v), 3);
	json_decref(v);
}

Test(expr, function_names_are_checked_at_parse_time)
{
	parse_err("nosuch(1)", "unknown function 'nosuch'");
	parse_err("len(1, 2)", "len() takes 1 argument");
	parse_err("contains('a')", "contains() takes 2 arguments");
	parse_err("default()", "default() takes 2 arguments");
	parse_err("json()", "json() takes 1 argument");
	parse_err("raw(1, 2)", "raw() takes 1 argument");
	parse_err("len(1", "expected ')' after the arguments of len()");
}

Test(expr, parse_errors_have_messages)
{
	parse_err("'abc", "unterminated string");
	parse_err("\"abc", "unterminated string");
	parse_err("1 2", "unexpected '2'");
	parse_err("vars.x )", "unexpected ')'");
	parse_err("1 ==", "expression ends too early");
	parse_err("", "expression ends too early");
	parse_err("   ", "expression ends too early");
	parse_err("(1", "expected ')'");
	parse_err("vars.list[1", "expected ']'");
	parse_err("vars.", "expected a name after '.'");
	parse_err("@", "unexpected '@'");
	parse_err("1 == 2 == 3", "unexpected '== 3'");
	parse_err("a &&", "expression ends too early");
}

Test(expr, hundred_thousand_open_parens_are_an_error, .timeout = 10)
{
	size_t n = 100000;
	char *s = xmalloc(n + 2);
	memset(s, '(', n);
	s[n] = '1';
	s[n + 1] = '\0';
	parse_err(s, "nested too deeply");
	free(s);
}

Test(expr, hundred_thousand_nots_are_an_error, .timeout = 10)
{
	size_t n = 100000;
	char *s = xmalloc(n + 2);
	memset(s, '!', n);
	s[n] = '1';
	s[n + 1] = '\0';
	parse_err(s, "nested too deeply");
	free(s);
}

Test(expr, deeply_nested_indexes_are_an_error, .timeout = 10)
{
	struct buf b = {0};
	for (int i = 0; i < 100000; i++)
		buf_adds(&b, "vars.list[");
	buf_adds(&b, "0");
	parse_err(b.data, "nested too deeply");
	buf_free(&b);
}

Test(expr, nesting_within_the_bound_works)
{
	struct buf b = {0};
	for (int i = 0; i < 30; i++)
		buf_addc(&b, '(');
	buf_adds(&b, "5");
	for (int i = 0; i < 30; i++)
		buf_addc(&b, ')');
	is_int(b.data, 5);
	buf_free(&b);
}

/* A long flat chain is not nesting: it must evaluate like a short one. */
Test(expr, long_and_chain_evaluates, .timeout = 10)
{
	struct buf b = {0};
	buf_adds(&b, "true");
	for (int i = 0; i < 300; i++)
		buf_adds(&b, " && true");
	buf_adds(&b, " && 'end'");
	is_str(b.data, "end");
	buf_free(&b);
}

Test(expr, huge_or_chain_does_not_crash, .timeout = 10)
{
	struct buf b = {0};
	buf_adds(&b, "false");
	for (int i = 0; i < 1000000; i++)
		buf_adds(&b, " || false");
	char *err = NULL;
	struct expr *e = expr_parse(b.data, b.len, &err);
	if (e) {
		json_t *v = expr_eval(e, &scope, &err);
		if (v)
			cr_assert(json_is_false(v));
		json_decref(v);
		free(err);
		expr_free(e);
	} else {
		cr_assert_not_null(err);
		free(err);
	}
	buf_free(&b);
}

Test(expr, truthiness)
{
	cr_assert_not(expr_truthy(NULL));
	json_t *v;
	struct {
		const char *json;
		bool want;
	} cases[] = {
		{"null", false},  {"false", false}, {"true", true},	 {"0", false},	 {"0.0", false},
		{"1", true},	  {"-1", true},	    {"0.5", true},	 {"\"\"", false}, {"\"0\"", true},
		{"\"false\"", true}, {"[]", true},   {"{}", true},	 {"[0]", true},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
		cr_assert_not_null(v, "%s", cases[i].json);
		cr_assert_eq(expr_truthy(v), cases[i].want, "truthy(%s)", cases[i].json);
		json_decref(v);
	}
}

struct paths {
	char seen[8][64];
	size_t n;
};

static void collect(void *ud, const char *root, const char *const *segs, size_t nsegs)
{
	struct paths *P = ud;
	struct buf b = {0};
	buf_adds(&b, root);
	for (size_t i = 0; i < nsegs; i++)
		buf_printf(&b, ".%s", segs[i]);
	cr_assert_lt(P->n, 8);
	snprintf(P->seen[P->n++], 64, "%s", b.data);
	buf_free(&b);
}

Test(expr, walk_paths_visits_every_context_path)
{
	char *err = NULL;
	const char *src = "steps.build.stdout == 'x' && contains(vars.list, env.HOME) || !run.status";
	struct expr *e = expr_parse(src, strlen(src), &err);
	cr_assert_not_null(e, "%s", err);
	struct paths P = {0};
	expr_walk_paths(e, collect, &P);
	cr_assert_eq(P.n, 4);
	cr_assert_str_eq(P.seen[0], "steps.build.stdout");
	cr_assert_str_eq(P.seen[1], "vars.list");
	cr_assert_str_eq(P.seen[2], "env.HOME");
	cr_assert_str_eq(P.seen[3], "run.status");
	expr_free(e);
}
