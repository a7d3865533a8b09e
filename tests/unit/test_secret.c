/*
 * Secrets: where a secret's value comes from (--secret-file, BATON_SECRET_NAME,
 * vars; never --var), every form of it that masking hides, and that a
 * command rendered in any quoting context keeps no piece of it once masked.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "helpers.h"
#include "plan/plan.h"

/* ---- the forms ---- */

struct forms {
	char **v;
	size_t n;
};

static struct forms forms_of(const char *yaml)
{
	struct plan *p = th_load_ok(yaml);
	struct forms f;
	f.v = plan_secret_values(p, &f.n);
	plan_free(p);
	return f;
}

static void forms_free(struct forms *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i]);
	free(f->v);
}

static bool has(const struct forms *f, const char *s)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->v[i], s))
			return true;
	return false;
}

static char *all(const struct forms *f)
{
	struct buf b = {0};
	buf_add(&b, "", 0);
	for (size_t i = 0; i < f->n; i++)
		buf_printf(&b, "  [%s]\n", f->v[i]);
	return buf_detach(&b);
}

#define ASSERT_FORM(f, s)                                                                                   \
	do {                                                                                                \
		if (!has(&(f), (s))) {                                                                      \
			char *a_ = all(&(f));                                                               \
			cr_assert_fail("no form [%s] among:\n%s", (s), a_);                                 \
		}                                                                                           \
	} while (0)

#define ASSERT_NO_FORM(f, s)                                                                                \
	do {                                                                                                \
		if (has(&(f), (s))) {                                                                       \
			char *a_ = all(&(f));                                                               \
			cr_assert_fail("unexpected form [%s] among:\n%s", (s), a_);                         \
		}                                                                                           \
	} while (0)

Test(secret_forms, a_value_with_a_quote_in_every_shell_form)
{
	struct forms f = forms_of("vars: { tok: \"s3cr'et\" }\nsecrets: [tok]\nsteps: [a]\n");
	ASSERT_FORM(f, "s3cr'et");           /* raw */
	ASSERT_FORM(f, "'s3cr'\\''et'");     /* shell_quote: one whole word */
	ASSERT_FORM(f, "s3cr'\\''et");       /* the body inside single quotes */
	forms_free(&f);
}

Test(secret_forms, escaped_for_double_quotes_and_here_documents)
{
	struct forms f = forms_of("vars: { dq: 'p@ss\"w$rd\\x`y' }\nsecrets: [dq]\nsteps: [a]\n");
	ASSERT_FORM(f, "p@ss\"w$rd\\x`y");
	ASSERT_FORM(f, "p@ss\\\"w\\$rd\\\\x\\`y"); /* "...": \ before $ ` " \ */
	ASSERT_FORM(f, "p@ss\"w\\$rd\\\\x\\`y");   /* <<EOF: \ before $ ` \ */
	ASSERT_FORM(f, "'p@ss\"w$rd\\x`y'");
	forms_free(&f);
}

Test(secret_forms, a_list_secret_as_json_and_each_element_in_every_form)
{
	struct forms f = forms_of("vars: { lst: [alpha1, \"be ta2\", \"g'3\"] }\nsecrets: [lst]\nsteps: [a]\n");
	ASSERT_FORM(f, "[\"alpha1\",\"be ta2\",\"g'3\"]");          /* JSON text */
	ASSERT_FORM(f, "'[\"alpha1\",\"be ta2\",\"g'\\''3\"]'");    /* ... as one shell word */
	ASSERT_FORM(f, "[\\\"alpha1\\\",\\\"be ta2\\\",\\\"g'3\\\"]"); /* ... inside double quotes */
	ASSERT_FORM(f, "alpha1");
	ASSERT_FORM(f, "be ta2");
	ASSERT_FORM(f, "'be ta2'");
	ASSERT_FORM(f, "g'3");
	ASSERT_FORM(f, "'g'\\''3'");
	ASSERT_FORM(f, "g'\\''3");
	forms_free(&f);
}

Test(secret_forms, a_map_secret_masks_its_values_not_its_keys)
{
	struct forms f = forms_of("vars: { creds: { user: deploy-user, pass: \"pw'1x\" } }\nsecrets: [creds]\nsteps: [a]\n");
	ASSERT_FORM(f, "{\"user\":\"deploy-user\",\"pass\":\"pw'1x\"}");
	ASSERT_FORM(f, "deploy-user");
	ASSERT_FORM(f, "pw'1x");
	ASSERT_FORM(f, "'pw'\\''1x'");
	ASSERT_NO_FORM(f, "user");
	ASSERT_NO_FORM(f, "pass");
	forms_free(&f);
}

Test(secret_forms, numbers_and_booleans_as_text)
{
	struct forms f = forms_of("vars: { n: 12345, r: 2.5, b: true, nested: [7, false] }\n"
				  "secrets: [n, r, b, nested]\nsteps: [a]\n");
	ASSERT_FORM(f, "12345");
	ASSERT_FORM(f, "2.5");
	ASSERT_FORM(f, "true");
	ASSERT_FORM(f, "[7,false]");
	ASSERT_FORM(f, "7");
	ASSERT_FORM(f, "false");
	forms_free(&f);
}

Test(secret_forms, a_json_string_body_for_text_that_json_escapes)
{
	struct forms f = forms_of("vars: { t: \"tab\\there\\\\x\" }\nsecrets: [t]\nsteps: [a]\n");
	ASSERT_FORM(f, "tab\there\\x");
	ASSERT_FORM(f, "tab\\there\\\\x"); /* inside JSON text: json(vars), a map */
	forms_free(&f);
}

Test(secret_forms, a_multi_line_secret_by_lines_of_four_bytes_or_more_and_folded)
{
	struct forms f = forms_of("vars: { k: \"line-one\\r\\nline-two\\nab\" }\nsecrets: [k]\nsteps: [a]\n");
	ASSERT_FORM(f, "line-one\r\nline-two\nab");
	ASSERT_FORM(f, "line-one"); /* the \r of a CRLF line is not part of it */
	ASSERT_FORM(f, "line-two");
	ASSERT_NO_FORM(f, "ab");                  /* too short to mask on its own */
	ASSERT_FORM(f, "line-one  line-two ab"); /* folded onto one line in a # comment */
	forms_free(&f);
}

Test(secret_forms, sorted_bytewise_without_repeats_or_empty_strings)
{
	struct forms f = forms_of("vars: { a: same, b: same, e: \"\", l: [x1y2, \"\"] }\nsecrets: [a, b, e, l]\nsteps: [a]\n");
	for (size_t i = 0; i < f.n; i++) {
		cr_assert_gt(strlen(f.v[i]), 0, "an empty form");
		if (i)
			cr_assert_lt(strcmp(f.v[i - 1], f.v[i]), 0, "[%s] before [%s]", f.v[i - 1], f.v[i]);
	}
	ASSERT_FORM(f, "same");
	ASSERT_FORM(f, "[\"x1y2\",\"\"]");
	ASSERT_NO_FORM(f, "''"); /* an empty value quoted: it would hide nothing secret */
	cr_assert_null(f.v[f.n], "the array ends with NULL");
	forms_free(&f);
}

Test(secret_forms, empty_values_lists_and_maps_give_no_form)
{
	struct forms f = forms_of("vars: { a: x, e: \"\", l: [], m: {} }\nsecrets: [e, l, m]\nsteps: [a]\n");
	cr_assert_eq(f.n, 0);
	cr_assert_null(f.v[0]);
	forms_free(&f);
}

/* ---- masking what a command looks like ---- */

static json_t *static_lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used,
			     char **err)
{
	return plan_lookup_static(ud, root, segs, nsegs, used, err);
}

/* The plan's first step's command rendered for a shell, then masked (caller frees). */
static char *shown(const char *yaml)
{
	struct plan *p = th_load_ok(yaml);
	const struct step *s = p->root->children[0];
	struct expr_scope scope = {static_lookup, p};
	struct buf cmd = {0}, out = {0};
	char *err = NULL;
	cr_assert(tmpl_render(s->run, TMPL_SHELL, &scope, &cmd, &err), "render: %s", err ? err : "");
	size_t n;
	char **sec = plan_secret_values(p, &n);
	mask_secrets(cmd.data ? cmd.data : "", cmd.len, (const char *const *)sec, n, &out);
	for (size_t i = 0; i < n; i++)
		free(sec[i]);
	free(sec);
	buf_free(&cmd);
	plan_free(p);
	buf_add(&out, "", 0);
	return buf_detach(&out);
}

Test(secret_mask, a_command_in_every_quoting_context_keeps_no_piece_of_the_secret)
{
	static const char *const runs[] = {
		"echo ${{ vars.s }}",
		"echo '${{ vars.s }}'",
		"echo \"${{ vars.s }}\"",
		"echo \"x${{ vars.s }}y\"",
		"echo $'${{ vars.s }}'",
		"echo $(echo ${{ vars.s }})",
		"echo \"${{ json(vars.s) }}\"",
		"echo ${{ json(vars) }}",
		"echo \"${{ json(vars) }}\"",
		"cat <<EOF\n${{ vars.s }}\nEOF",
		"cat <<EOF\n\"${{ json(vars) }}\"\nEOF",
		"true # ${{ vars.s }}",
		"echo ${{ vars.l }} \"${{ vars.l }}\" '${{ vars.l }}'",
		"echo ${{ json(vars.l) }} \"${{ json(vars.l) }}\"",
	};
	for (size_t i = 0; i < ARRAY_LEN(runs); i++) {
		struct buf script = {0}; /* a block scalar: every line indented */
		for (const char *c = runs[i]; *c; c++)
			buf_adds(&script, *c == '\n' ? "\n      " : (char[]){*c, 0});
		char *yaml = xasprintf("vars:\n"
				       "  s: \"s3cr'e\\\"t $HOME \\\\ `x` T41L\"\n"
				       "  l: [\"alpha'1\", \"b3ta \\\"2\"]\n"
				       "secrets: [s, l]\n"
				       "steps:\n"
				       "  - run: |\n"
				       "      %s\n",
				       script.data);
		buf_free(&script);
		char *m = shown(yaml);
		cr_assert_null(strstr(m, "s3cr"), "[%s] shows %s", runs[i], m);
		cr_assert_null(strstr(m, "T41L"), "[%s] shows %s", runs[i], m);
		cr_assert_null(strstr(m, "alpha"), "[%s] shows %s", runs[i], m);
		cr_assert_null(strstr(m, "b3ta"), "[%s] shows %s", runs[i], m);
		cr_assert_not_null(strstr(m, "***"), "[%s] shows %s", runs[i], m);
		free(m);
		free(yaml);
	}
}

/* n distinct strings "kNNNNNN-..." sorted bytewise, as plan_secret_values would give them (caller frees). */
static char **many_secrets(size_t n)
{
	char **v = xcalloc(n + 1, sizeof *v);
	for (size_t i = 0; i < n; i++)
		v[i] = xasprintf("k%06zu-secret-value", i);
	return v;
}

Test(secret_mask, thousands_of_secrets_cost_log_n_per_byte, .timeout = 60)
{
	/* every byte of the text starts some secret's prefix: the worst case for a scan over all of them */
	size_t n = 20000;
	char **v = many_secrets(n);
	struct buf text = {0};
	for (int i = 0; i < 200000; i++)
		buf_addc(&text, 'k');
	buf_adds(&text, "k000123-secret-value!k019999-secret-valuek");
	clock_t t0 = clock(); /* CPU time: the machine may be busy */
	struct buf out = {0};
	cr_assert(mask_secrets(text.data, text.len, (const char *const *)v, n, &out));
	double ms = (double)(clock() - t0) * 1000.0 / CLOCKS_PER_SEC;
	cr_assert_lt(ms, 2000, "%.0f ms of CPU to mask 200 kB against %zu secrets", ms, n);
	cr_assert_eq(out.len, 200000 + strlen("***!***k"));
	cr_assert_str_eq(out.data + 200000, "***!***k");
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	buf_free(&out);
	buf_free(&text);
}

static char *masked_with(const char *s, const char *const *sec, size_t n)
{
	struct buf b = {0};
	mask_secrets(s, strlen(s), sec, n, &b);
	buf_add(&b, "", 0);
	return buf_detach(&b);
}

Test(secret_mask, overlapping_occurrences_of_different_secrets_hide_every_byte)
{
	/* "ab" then "bcdef": left to right alone, "cdef" would show */
	const char *sec[] = {"ab", "bcdef"};
	char *m = masked_with("xabcdefx", sec, 2);
	cr_assert_str_eq(m, "x***x");
	free(m);
}

Test(secret_mask, a_one_character_secret_masks_every_occurrence)
{
	const char *sec[] = {"1"};
	char *m = masked_with("run-1 took 10ms, exit 1", sec, 1);
	cr_assert_str_eq(m, "run-*** took ***0ms, exit ***");
	free(m);
}

/* ---- where values come from ---- */

static struct plan *load_with(const char *yaml, struct load_options *o, struct diags *d)
{
	return plan_load_buffer_opts("plan.yaml", yaml, strlen(yaml), o, d);
}

static const char *var_text(const struct plan *p, const char *name)
{
	return json_string_value(json_object_get(p->vars, name));
}

static const char two_secrets[] = "vars: { token: from-plan }\n"
				  "secrets: [token, other]\n"
				  "steps: [a]\n";

Test(secret_source, secret_file_then_environment_then_vars)
{
	json_t *files = json_pack("{s:s}", "other", "from-file");
	struct load_options o = {.secret_files = files};
	setenv("BATON_SECRET_OTHER", "from-env", 1);
	setenv("BATON_SECRET_TOKEN", "token-env", 1);
	struct diags d = {0};
	struct plan *p = load_with(two_secrets, &o, &d);
	cr_assert_not_null(p, "%s", th_diags_text(&d));
	cr_assert_str_eq(var_text(p, "other"), "from-file", "--secret-file wins over the environment");
	cr_assert_str_eq(var_text(p, "token"), "token-env", "the environment wins over the plan's default");
	plan_free(p);
	unsetenv("BATON_SECRET_TOKEN");
	setenv("BATON_SECRET_OTHER", "x", 1);
	p = load_with(two_secrets, &o, &d);
	cr_assert_not_null(p);
	cr_assert_str_eq(var_text(p, "token"), "from-plan", "the plan's default, when nothing else gives one");
	plan_free(p);
	json_decref(files);
}

Test(secret_source, the_var_file_value_comes_after_the_environment)
{
	json_t *over = json_pack("{s:s,s:s}", "token", "from-var-file", "other", "other-var-file");
	struct load_options o = {.overrides = over};
	setenv("BATON_SECRET_TOKEN", "token-env", 1);
	unsetenv("BATON_SECRET_OTHER");
	struct diags d = {0};
	struct plan *p = load_with(two_secrets, &o, &d);
	cr_assert_not_null(p, "%s", th_diags_text(&d));
	cr_assert_str_eq(var_text(p, "token"), "token-env");
	cr_assert_str_eq(var_text(p, "other"), "other-var-file");
	plan_free(p);
	json_decref(over);
}

Test(secret_source, an_empty_environment_variable_counts_as_unset)
{
	setenv("BATON_SECRET_TOKEN", "", 1);
	setenv("BATON_SECRET_OTHER", "x", 1);
	struct load_options o = {0};
	struct diags d = {0};
	struct plan *p = load_with(two_secrets, &o, &d);
	cr_assert_not_null(p);
	cr_assert_str_eq(var_text(p, "token"), "from-plan");
	plan_free(p);
}

Test(secret_source, the_name_is_upper_cased_for_the_environment)
{
	char *e = plan_secret_env_name("db_Pass2");
	cr_assert_str_eq(e, "BATON_SECRET_DB_PASS2");
	free(e);
	setenv("BATON_SECRET_DB_PASS2", "pw", 1);
	struct diags d = {0};
	struct load_options o = {0};
	struct plan *p = load_with("secrets: [db_Pass2]\nsteps: [a]\n", &o, &d);
	cr_assert_not_null(p, "%s", th_diags_text(&d));
	cr_assert_str_eq(var_text(p, "db_Pass2"), "pw");
	plan_free(p);
}

Test(secret_source, a_secret_given_with_var_is_an_error_at_its_entry)
{
	json_t *over = json_pack("{s:s}", "token", "on-the-command-line");
	json_t *names = json_pack("{s:b}", "token", 1);
	struct load_options o = {.overrides = over, .cli_vars = names};
	setenv("BATON_SECRET_OTHER", "x", 1);
	struct diags d = {0};
	cr_assert_null(load_with(two_secrets, &o, &d));
	TH_ASSERT_DIAG(&d, "secret 'token' cannot be set with --var", 2, 11);
	TH_ASSERT_DIAG(&d, "use --secret-file token=PATH or the environment variable BATON_SECRET_TOKEN", 2, 11);
	cr_assert_eq(d.n, 1);
	diags_free(&d);
	json_decref(over);
	json_decref(names);
}

Test(secret_source, a_secret_without_any_value_names_the_ways_to_give_one)
{
	unsetenv("BATON_SECRET_OTHER");
	struct diags d = {0};
	struct load_options o = {0};
	cr_assert_null(load_with("vars: { token: ~ }\nsecrets: [token, other]\nsteps: [a]\n", &o, &d));
	TH_ASSERT_DIAG(&d,
		       "secret 'token' has no value: give it with --secret-file token=PATH or the environment "
		       "variable BATON_SECRET_TOKEN (or a default under 'vars')",
		       2, 11);
	TH_ASSERT_DIAG(&d, "secret 'other' has no value", 2, 18);
	cr_assert_eq(d.n, 2);
	diags_free(&d);
}

Test(secret_source, a_secret_file_naming_no_secret_is_an_error_with_a_hint)
{
	json_t *files = json_pack("{s:s,s:s}", "tokn", "x", "zzz", "y");
	struct load_options o = {.secret_files = files};
	setenv("BATON_SECRET_OTHER", "x", 1);
	struct diags d = {0};
	cr_assert_null(load_with(two_secrets, &o, &d));
	const struct diag *g = th_diag_find(&d, "'tokn' is not one of the plan's secrets; did you mean 'token'?");
	cr_assert_not_null(g, "%s", th_diags_text(&d));
	cr_assert_str_eq(g->file, "--secret-file");
	cr_assert_not_null(th_diag_find(&d, "'zzz' is not one of the plan's secrets"));
	cr_assert_eq(d.n, 2);
	diags_free(&d);
	json_decref(files);
}

Test(secret_source, two_secrets_read_from_one_variable_are_an_error)
{
	struct diags d = {0};
	struct load_options o = {0};
	cr_assert_null(load_with("vars: { tok: a, TOK: b }\nsecrets: [tok, TOK]\nsteps: [a]\n", &o, &d));
	TH_ASSERT_DIAG(&d, "secrets 'tok' (line 2) and 'TOK' would both be read from BATON_SECRET_TOK", 2, 16);
	diags_free(&d);
}

Test(secret_source, ten_thousand_secrets_load_in_linear_time, .timeout = 60)
{
	struct buf y = {0};
	buf_adds(&y, "vars:\n");
	for (int i = 0; i < 10000; i++)
		buf_printf(&y, "  s%d: value-%d\n", i, i);
	buf_adds(&y, "secrets:\n");
	for (int i = 0; i < 10000; i++)
		buf_printf(&y, "  - s%d\n", i);
	buf_adds(&y, "steps: [a]\n");
	clock_t t0 = clock(); /* CPU time: the machine may be busy */
	struct plan *p = th_load_ok(y.data);
	double ms = (double)(clock() - t0) * 1000.0 / CLOCKS_PER_SEC;
	cr_assert_eq(p->n_secrets, 10000);
	cr_assert_lt(ms, 3000, "%.0f ms of CPU to load 10,000 secrets", ms);
	plan_free(p);
	buf_free(&y);
}

Test(secret_source, env_context_does_not_show_baton_secret_variables)
{
	setenv("BATON_SECRET_TOKEN", "s3cret-env", 1);
	struct plan *p = th_load_ok("secrets: [token]\nsteps: [a]\n");
	const char *segs[] = {"BATON_SECRET_TOKEN"};
	size_t used = 0;
	char *err = NULL;
	cr_assert_null(plan_lookup_static(p, "env", segs, 1, &used, &err));
	cr_assert_not_null(strstr(err, "read it as vars.token"), "%s", err);
	free(err);
	plan_free(p);
}
