/*
 * Quoting and templates: shell_quote must turn every value into literal
 * shell text, and a `run:` script must get every value by reference, never
 * as code, which dash and bash themselves confirm; plus where no reference
 * is safe, TMPL_TEXT, previews and value_to_text.
 */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "plan/plan.h"

static const char *const hostile[] = {
	"",
	"plain",
	"two words",
	"  leading and trailing  ",
	"it's",
	"a'b\"c$(x)",
	"$HOME",
	"${HOME}",
	"`id`",
	"$(echo INJECTED)",
	"line1\nline2\n",
	"tab\there",
	"back\\slash\\",
	"*",
	"~",
	"~root",
	"-n",
	"--",
	"a;b|c&d>e<f",
	"#not a comment",
	"=x",
	"x=y",
	"!",
	"{a,b}",
	"[abc]",
	"'",
	"''",
	"\"",
	"\\",
	"%s%d",
	"caf\xc3\xa9",
	"a\\'b",
	"$'\\n'",
};

static char *quote(const char *s)
{
	struct buf b = {0};
	shell_quote(&b, s, strlen(s));
	return buf_detach(&b);
}

Test(quote, shell_quote_round_trips_through_sh)
{
	for (size_t i = 0; i < ARRAY_LEN(hostile); i++) {
		const char *s = hostile[i];
		char *w = quote(s);
		char *script = xasprintf("printf '%%s' %s", w);
		int st = -1;
		char *out = th_sh(script, &st);
		cr_assert_eq(st, 0, "sh failed on %s", script);
		cr_assert_str_eq(out, s, "value [%s] quoted as [%s] came back as [%s]", s, w, out);
		free(out);
		free(script);
		free(w);
	}
}

Test(quote, shell_quote_is_exactly_one_word)
{
	for (size_t i = 0; i < ARRAY_LEN(hostile); i++) {
		char *w = quote(hostile[i]);
		char *script = xasprintf("set -- %s; printf '%%s' \"$#\"", w);
		char *out = th_sh(script, NULL);
		cr_assert_str_eq(out, "1", "[%s] quoted as [%s] is %s words", hostile[i], w, out);
		free(out);
		free(script);
		free(w);
	}
}

Test(quote, shell_quote_leaves_safe_words_alone)
{
	/* "=" is not here: NAME=x at a command start would be an assignment */
	const char *safe[] = {"abc", "a-b_c.d/e:f,g+h@i%j", "/usr/bin/env", "v1.2.3", "-x"};
	for (size_t i = 0; i < ARRAY_LEN(safe); i++) {
		char *w = quote(safe[i]);
		cr_assert_str_eq(w, safe[i]);
		free(w);
	}
}

Test(quote, shell_quote_of_the_empty_string_is_two_quotes)
{
	char *w = quote("");
	cr_assert_str_eq(w, "''");
	free(w);
	w = quote("it's");
	cr_assert_str_eq(w, "'it'\\''s'");
	free(w);
}

Test(quote, shell_quote_appends_to_the_buffer)
{
	struct buf b = {0};
	buf_adds(&b, "echo ");
	shell_quote(&b, "a b", 3);
	buf_addc(&b, ' ');
	shell_quote(&b, "c", 1);
	cr_assert_str_eq(b.data, "echo 'a b' c");
	cr_assert_eq(b.len, strlen("echo 'a b' c"));
	buf_free(&b);
}

/* In command position an unquoted NAME=value is an assignment, not a word. */
Test(quote, value_in_command_position_is_not_an_assignment)
{
	char *w = quote("FOO=bar");
	char *script = xasprintf("%s; printf '%%s' \"${FOO-unset}\"", w);
	int st = -1;
	char *out = th_sh(script, &st);
	bool ok = !strcmp(out, "unset");
	char msg[512] = "";
	if (!ok)
		snprintf(msg, sizeof msg, "[%s] became an assignment (script: %s)", w, script);
	free(out);
	free(script);
	free(w);
	cr_assert(ok, "%s", msg);
}

/* In command position an unquoted reserved word is syntax, not a word. */
Test(quote, value_in_command_position_is_not_a_reserved_word)
{
	const char *words[] = {"if", "then", "fi", "while", "do", "done", "case", "esac", "for", "{", "}", "!"};
	for (size_t i = 0; i < ARRAY_LEN(words); i++) {
		char *w = quote(words[i]);
		/* as a word, it is a command that does not exist: status 127, not a syntax error (2) */
		char *script = xasprintf("%s", w);
		int st = -1;
		char *out = th_sh(script, &st);
		char msg[512] = "";
		if (st != 127)
			snprintf(msg, sizeof msg, "[%s] quoted as [%s]: sh exit %d, expected 127 (command not found)",
				 words[i], w, st);
		free(out);
		free(script);
		free(w);
		cr_assert_eq(st, 127, "%s", msg);
	}
}

/* ---- templates ---- */

static json_t *vars;

static json_t *lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used, char **err)
{
	(void)ud;
	if (strcmp(root, "vars") != 0) {
		*err = xasprintf("unknown context '%s'", root);
		return NULL;
	}
	if (!nsegs) {
		*used = 0;
		return json_incref(vars);
	}
	json_t *v = json_object_get(vars, segs[0]);
	if (!v) {
		*err = xasprintf("vars.%s is not defined", segs[0]);
		return NULL;
	}
	*used = 1;
	return json_incref(v);
}

static const struct expr_scope scope = {lookup, NULL};

static void setup(void)
{
	vars = json_object();
}

static void teardown(void)
{
	json_decref(vars);
}

TestSuite(tmpl, .init = setup, .fini = teardown);

static struct tmpl *parse(const char *src)
{
	char *err = NULL;
	size_t off = 0;
	struct tmpl *t = tmpl_parse(src, strlen(src), &err, &off);
	cr_assert_not_null(t, "tmpl_parse(%s): %s", src, err ? err : "?");
	return t;
}

static char *render(const char *src, enum tmpl_quote q)
{
	struct tmpl *t = parse(src);
	struct buf b = {0};
	char *err = NULL;
	bool ok = tmpl_render(t, q, &scope, &b, &err);
	cr_assert(ok, "render of [%s] failed: %s", src, err ? err : "?");
	cr_assert_null(err);
	tmpl_free(t);
	return buf_detach(&b);
}

/* Parses src as a `run:` script and prepares it for a shell; asserts it is accepted. */
static struct tmpl *parse_shell(const char *src)
{
	struct tmpl *t = parse(src);
	char *err = NULL;
	size_t off = 0;
	bool ok = tmpl_shell_prepare(t, &err, &off);
	char msg[1024] = "";
	if (!ok)
		snprintf(msg, sizeof msg, "[%s] refused: %s", src, err ? err : "?");
	free(err);
	cr_assert(ok, "%s", msg);
	return t;
}

/* The refusal message for src as a `run:` script (caller frees); fails the test if it is accepted. */
static char *refusal(const char *src)
{
	struct tmpl *t = parse(src);
	char *err = NULL;
	size_t off = 0;
	bool ok = tmpl_shell_prepare(t, &err, &off);
	tmpl_free(t);
	cr_assert_not(ok, "[%s] was accepted", src);
	cr_assert_not_null(err);
	return err;
}

/* Renders a prepared script by reference and runs it under shell; returns stdout. */
static char *run_script(const char *shell, struct tmpl *t, char **script_out, int *status)
{
	struct shell_cmd c;
	char *err = NULL;
	bool ok = tmpl_render_shell(t, &scope, &c, &err);
	cr_assert(ok, "render failed: %s", err ? err : "?");
	char *out = th_shell_env(shell, c.script, c.env, status);
	if (script_out)
		*script_out = xstrdup(c.script);
	shell_cmd_free(&c);
	return out;
}

/* Renders src as a shell script with vars.v = value, runs it under shell and returns stdout. */
static char *run_with(const char *shell, const char *src, const char *value, char **script_out)
{
	json_object_set_new(vars, "v", json_string(value));
	struct tmpl *t = parse_shell(src);
	char *out = run_script(shell, t, script_out, NULL);
	tmpl_free(t);
	return out;
}

static const char *const shells[] = {"/bin/sh", "/bin/bash"};

static void check_context(const char *src, const char *pre, const char *post)
{
	for (size_t s = 0; s < ARRAY_LEN(shells); s++)
		for (size_t i = 0; i < ARRAY_LEN(hostile); i++) {
			char *script = NULL;
			char *out = run_with(shells[s], src, hostile[i], &script);
			char *want = xasprintf("%s%s%s", pre, hostile[i], post);
			bool ok = !strcmp(out, want);
			char msg[1024] = "";
			if (!ok)
				snprintf(msg, sizeof msg, "%s: template [%s] with value [%s] as [%s] printed [%s]",
					 shells[s], src, hostile[i], script, out);
			free(want);
			free(out);
			free(script);
			cr_assert(ok, "%s", msg);
		}
}

Test(tmpl, shell_value_unquoted_is_literal)
{
	check_context("printf '%s' ${{ vars.v }}", "", "");
	check_context("printf '%s' x${{ vars.v }}y", "x", "y");
}

Test(tmpl, shell_value_inside_double_quotes_is_literal)
{
	check_context("printf '%s' \"${{ vars.v }}\"", "", "");
	check_context("printf '%s' \"pre ${{ vars.v }} post\"", "pre ", " post");
	check_context("printf '%s' \"q\\\"${{ vars.v }}\\\"\"", "q\"", "\"");
}

Test(tmpl, shell_value_inside_single_quotes_is_literal)
{
	check_context("printf '%s' '${{ vars.v }}'", "", "");
	check_context("printf '%s' 'pre ${{ vars.v }} post'", "pre ", " post");
}

Test(tmpl, shell_quote_state_follows_the_script)
{
	/* a double quote inside single quotes, and a single quote inside double quotes */
	check_context("printf '%s' '\"' ${{ vars.v }}", "\"", "");
	check_context("printf '%s' \"'\" ${{ vars.v }}", "'", "");
	check_context("printf '%s' \\' ${{ vars.v }}", "'", "");
	check_context("printf '%s' \"a\" '${{ vars.v }}'", "a", "");
}

Test(tmpl, shell_value_in_parameter_default_and_here_documents)
{
	check_context("unset x; printf '%s' \"${x:-${{ vars.v }}}\"", "", "");
	check_context("unset x; printf '%s' ${x:-${{ vars.v }}}", "", "");
	check_context("cat <<EOF\n<${{ vars.v }}>\nEOF\n", "<", ">\n");
	check_context("cat <<-EOF\n\t<${{ vars.v }}>\n\tEOF\n", "<", ">\n");
	check_context("case ${{ vars.v }} in *) printf '%s' ${{ vars.v }};; esac", "", "");
	check_context("f() { printf '%s' \"$1\"; }; f ${{ vars.v }}", "", "");
	check_context("(printf '%s' ${{ vars.v }})", "", "");
	check_context("printf '%s' \\\n  ${{ vars.v }}", "", "");
	check_context("printf '%s' \"`printf '%s.' ${{ vars.v }}`\"", "", ".");
}

/* Quotes inside a command substitution inside double quotes are the substitution's own. */
Test(tmpl, shell_value_in_quotes_inside_command_substitution_is_literal)
{
	/* the trailing "." keeps the substitution from eating the value's own trailing newlines */
	check_context("printf '%s' \"$(printf '%s' '${{ vars.v }}'; echo .)\"", "", ".");
	check_context("printf '%s' \"$(printf '%s' \"${{ vars.v }}\"; echo .)\"", "", ".");
}

/* The script never holds a value: it is the same text whatever the value. */
Test(tmpl, script_text_does_not_depend_on_the_value)
{
	const char *srcs[] = {"echo ${{ vars.v }}", "echo \"${{ vars.v }}\" '${{ vars.v }}' # ${{ vars.v }}",
			      "cat <<EOF\n${{ vars.v }}\nEOF\n", "x=$(echo ${{ vars.v }})"};
	for (size_t k = 0; k < ARRAY_LEN(srcs); k++) {
		struct tmpl *t = parse_shell(srcs[k]);
		char *first = NULL;
		for (size_t i = 0; i < ARRAY_LEN(hostile); i++) {
			json_object_set_new(vars, "v", json_string(hostile[i]));
			struct shell_cmd c;
			char *err = NULL;
			cr_assert(tmpl_render_shell(t, &scope, &c, &err), "%s", err ? err : "?");
			cr_assert_eq(c.n_env, (size_t)1 + (k == 1) * 2);
			if (!first)
				first = xstrdup(c.script);
			cr_assert_str_eq(c.script, first, "[%s] with value [%s]", srcs[k], hostile[i]);
			cr_assert_null(strstr(c.script, "INJECTED"));
			shell_cmd_free(&c);
		}
		free(first);
		tmpl_free(t);
	}
}

/* The five scripts that ran a value as code when values were spliced into the text. */
Test(tmpl, the_spliced_design_s_holes_run_nothing)
{
	const char *srcs[] = {
		"echo \"$((1<<3))\"\necho ${{ vars.v }}\n",
		"cat <<< hi\necho ${{ vars.v }}\n",
		"echo \"$(case x in x) echo ${{ vars.v }};; esac)\"",
		"cat <<EOF\n$(echo ${{ vars.v }})\nEOF\n",
	};
	const char *values[] = {"x; printf INJECTED", "x; printf INJECTED #", "$(printf INJECTED)", "`printf INJECTED`",
				"')\"; printf INJECTED #", "x\nprintf INJECTED"};
	for (size_t s = 0; s < ARRAY_LEN(shells); s++)
		for (size_t k = 0; k < ARRAY_LEN(srcs); k++)
			for (size_t i = 0; i < ARRAY_LEN(values); i++) {
				if (k == 1 && s == 0)
					continue; /* <<< is bash's */
				char *script = NULL;
				char *out = run_with(shells[s], srcs[k], values[i], &script);
				/* the value may be printed, as data; INJECTED alone would be the value run */
				bool ok = !strstr(out, "INJECTED") || strstr(out, "printf INJECTED");
				char msg[1024] = "";
				if (!ok)
					snprintf(msg, sizeof msg, "%s: [%s] with [%s] ran the value: script [%s] printed [%s]",
						 shells[s], srcs[k], values[i], script, out);
				free(out);
				free(script);
				cr_assert(ok, "%s", msg);
			}
	/* and the fifth: a backslash right before ${{ }} is refused, not guessed */
	char *err = refusal("echo foo\\${{ vars.v }}");
	cr_assert(strstr(err, "backslash"), "%s", err);
	free(err);
}

Test(tmpl, refused_where_no_reference_is_safe)
{
	const struct {
		const char *src, *why;
	} cases[] = {
		{"cat <<'EOF'\n${{ vars.v }}\nEOF\n", "quoted here-document"},
		{"cat <<\"EOF\"\n${{ vars.v }}\nEOF\n", "quoted here-document"},
		{"cat <<\\EOF\nx ${{ vars.v }}\nEOF\n", "quoted here-document"},
		{"eval echo ${{ vars.v }}", "as code"},
		{"eval \"echo ${{ vars.v }}\"", "as code"},
		{"x=1; eval \"$(echo ${{ vars.v }})\"", "as code"},
		{"trap 'echo ${{ vars.v }}' EXIT", "as code"},
		{"sh -c 'echo ${{ vars.v }}'", "as code"},
		{"sudo -u nobody bash -ec \"echo ${{ vars.v }}\"", "as code"},
		{"bash <<EOF\necho ${{ vars.v }}\nEOF\n", "shell reads as its script"},
		{"echo \\${{ vars.v }}", "backslash"},
		{"echo \"\\${{ vars.v }}\"", "backslash"},
		{"echo $${{ vars.v }}", "'$'"},
		{"echo ${${{ vars.v }}}", "variable's name"},
		{"cat <<${{ vars.v }}\nx\n", "delimiter"},
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *err = refusal(cases[i].src);
		cr_assert(strstr(err, cases[i].why), "[%s]: %s", cases[i].src, err);
		free(err);
	}
	/* the safe ways around them stay open */
	const char *fine[] = {"sh -c 'echo \"$1\"' _ ${{ vars.v }}", "echo \\\\${{ vars.v }}",
			      "eval 'echo hi'; echo ${{ vars.v }}", "echo '\\${{ vars.v }}'",
			      "cat <<'EOF'\nliteral\nEOF\necho ${{ vars.v }}\n"};
	for (size_t i = 0; i < ARRAY_LEN(fine); i++)
		tmpl_free(parse_shell(fine[i]));
}

/* Arithmetic evaluates text as an expression (bash runs a[$(cmd)]): only an integer may go there. */
Test(tmpl, arithmetic_takes_only_integers)
{
	const char *srcs[] = {"echo $(( ${{ vars.v }} + 1 ))",
			      "echo $(( \"${{ vars.v }}\" + 1 ))",
			      "let x=${{ vars.v }}+1; echo $x",
			      "((x = ${{ vars.v }} + 1)); echo $x",
			      "[[ ${{ vars.v }} -lt 100 ]] && echo $(( ${{ vars.v }} + 1 ))",
			      "a[${{ vars.v }}+10]=1; echo $(( ${{ vars.v }} + 1 ))",
			      "declare -i x=${{ vars.v }}; echo $((x + 1))",
			      "echo $(( $(echo ${{ vars.v }}) + 1 ))"};
	for (size_t k = 0; k < ARRAY_LEN(srcs); k++) {
		struct tmpl *t = parse_shell(srcs[k]);
		json_object_set_new(vars, "v", json_string("41"));
		char *out = run_script("/bin/bash", t, NULL, NULL);
		cr_assert_str_eq(out, "42\n", "[%s]", srcs[k]);
		free(out);
		json_object_set_new(vars, "v", json_integer(-3));
		out = run_script("/bin/bash", t, NULL, NULL);
		cr_assert_str_eq(out, "-2\n", "[%s]", srcs[k]);
		free(out);
		const char *bad[] = {"a[$(touch /tmp/baton-unit-PWNED)]", "1+1", "x", "", "1.5", "0x10 ", " 7"};
		for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
			json_object_set_new(vars, "v", json_string(bad[i]));
			struct shell_cmd c;
			char *err = NULL;
			cr_assert_not(tmpl_render_shell(t, &scope, &c, &err), "[%s] took [%s]", srcs[k], bad[i]);
			cr_assert(strstr(err, "arithmetic") && strstr(err, "env:"), "%s", err);
			free(err);
		}
		tmpl_free(t);
	}
	/* [[ ]] without a numeric comparison is not arithmetic */
	struct tmpl *t = parse_shell("[[ ${{ vars.v }} == \"$(printf 'a b')\" ]] && echo same");
	json_object_set_new(vars, "v", json_string("a b"));
	char *out = run_script("/bin/bash", t, NULL, NULL);
	cr_assert_str_eq(out, "same\n");
	free(out);
	tmpl_free(t);
}

Test(tmpl, a_nul_byte_in_a_value_fails_the_command)
{
	json_object_set_new(vars, "v", json_stringn("\0evil", 5));
	struct tmpl *t = parse_shell("rm -rf /srv/${{ vars.v }}/cache");
	struct shell_cmd c;
	char *err = NULL;
	cr_assert_not(tmpl_render_shell(t, &scope, &c, &err));
	cr_assert(strstr(err, "NUL byte"), "%s", err);
	free(err);
	tmpl_free(t);
	struct buf b = {0};
	t = parse("/srv/${{ vars.v }}/cache");
	cr_assert_not(tmpl_render(t, TMPL_TEXT, &scope, &b, &err));
	cr_assert(strstr(err, "NUL byte"), "%s", err);
	free(err);
	buf_free(&b);
	tmpl_free(t);
}

/* Inside backquotes the shell unescapes \\ \$ \` (and \" inside "…") before reading the text; baton too. */
Test(tmpl, backquote_text_is_read_once_unescaped)
{
	check_context("printf '%s' \"`printf '%s.' \\\"${{ vars.v }}\\\"`\"", "", ".");
	check_context("printf '%s' \"`printf '<%s>' \\`printf x\\` ${{ vars.v }}`\"", "<x><", ">");
	/* a \\ that becomes one backslash before the reference: refused, not run */
	char *err = refusal("echo \"`echo foo\\\\${{ vars.v }}`\"");
	cr_assert(strstr(err, "backslash"), "%s", err);
	free(err);
	/* $'…' with an escaped quote inside backquotes: the value, not the reference's name */
	json_object_set_new(vars, "v", json_string("hello world"));
	struct tmpl *t = parse_shell("echo \"`printf '[%s]' $'it\\\\'s ${{ vars.v }}'`\"");
	char *out = run_script("/bin/bash", t, NULL, NULL);
	cr_assert_str_eq(out, "[it's hello world]\n");
	free(out);
	tmpl_free(t);
	/* an escaped double quote inside backquotes does not blind the rest of the script */
	tmpl_free(parse_shell(": \"`echo \\\"(\\\"`\"\nprintf '[%s]' \"${{ vars.v }}\""));
}

/* ${x#pattern}, ${x%pattern}, ${x/pattern/…}: the value is matched as text, not as a glob. */
Test(tmpl, a_value_in_a_pattern_is_matched_as_text)
{
	check_context("x=\"<\"; x=\"$x${{ vars.v }}>\"; printf '%s' \"${x#<}\"", "", ">");
	json_object_set_new(vars, "v", json_string("*"));
	struct tmpl *t = parse_shell("x='*ab'; y='a*b'; printf '[%s]' \"${x#${{ vars.v }}}\" \"${y%%${{ vars.v }}}\" ${x#${{ vars.v }}}");
	char *out = run_script("/bin/sh", t, NULL, NULL);
	cr_assert_str_eq(out, "[ab][a*b][ab]");
	free(out);
	tmpl_free(t);
	/* inside a here-document dash and bash read a quoted pattern differently: refused */
	char *err = refusal("cat <<EOF\n${x#${{ vars.v }}}\nEOF\n");
	cr_assert(strstr(err, "pattern"), "%s", err);
	free(err);
}

/* Where bash takes a variable's name it evaluates a[$(cmd)]: only a plain name may go there. */
Test(tmpl, a_variable_s_name_takes_only_a_plain_name)
{
	const char *srcs[] = {"test -v ${{ vars.v }} || echo unset", "printf -v ${{ vars.v }} %s x; echo $?",
			      "read ${{ vars.v }} <<< x; echo $?", "declare ${{ vars.v }}=1; echo $?",
			      "f() { local ${{ vars.v }}=1; echo $?; }; f", "read -p 'x: ' -a ${{ vars.v }} <<< x; echo $?"};
	for (size_t k = 0; k < ARRAY_LEN(srcs); k++) {
		struct tmpl *t = parse_shell(srcs[k]);
		json_object_set_new(vars, "v", json_string("gen_ok_1"));
		char *out = run_script("/bin/bash", t, NULL, NULL);
		cr_assert(strlen(out) > 0, "[%s] printed nothing", srcs[k]);
		free(out);
		const char *bad[] = {"a[$(touch /tmp/baton-unit-PWNED)]", "1x", "a b", "", "a-b"};
		for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
			json_object_set_new(vars, "v", json_string(bad[i]));
			struct shell_cmd c;
			char *err = NULL;
			cr_assert_not(tmpl_render_shell(t, &scope, &c, &err), "[%s] took [%s]", srcs[k], bad[i]);
			cr_assert(strstr(err, "variable's name"), "%s", err);
			free(err);
		}
		tmpl_free(t);
	}
	/* the value of NAME=VALUE, and read's prompt, are no names */
	tmpl_free(parse_shell("declare x=${{ vars.v }}; read -p ${{ vars.v }} y <<< z"));
	json_object_set_new(vars, "v", json_string("a b"));
	struct tmpl *t = parse_shell("declare x=${{ vars.v }}; read -p ${{ vars.v }} y <<< z; echo \"$x|$y\"");
	char *out = run_script("/bin/bash", t, NULL, NULL);
	cr_assert_str_eq(out, "a b|z\n");
	free(out);
	tmpl_free(t);
	/* a name declared integer: what is assigned to it later is arithmetic */
	t = parse_shell("declare -i n; n=${{ vars.v }}; echo $n");
	struct shell_cmd c;
	char *err = NULL;
	cr_assert_not(tmpl_render_shell(t, &scope, &c, &err));
	cr_assert(strstr(err, "arithmetic"), "%s", err);
	free(err);
	tmpl_free(t);
}

/* eval and a shell's script behind a prefix, after options, or on a here-string. */
Test(tmpl, code_behind_prefixes_and_options_is_refused)
{
	const char *srcs[] = {"command eval \"echo ${{ vars.v }}\"", "builtin eval echo ${{ vars.v }}",
			      "sh -c -- \"echo ${{ vars.v }}\"", "bash -c -e \"echo ${{ vars.v }}\"",
			      ". /dev/stdin <<EOF\necho ${{ vars.v }}\nEOF\n", "sh <<< \"echo ${{ vars.v }}\"",
			      "source /dev/stdin <<EOF\necho ${{ vars.v }}\nEOF\n"};
	for (size_t k = 0; k < ARRAY_LEN(srcs); k++) {
		char *err = refusal(srcs[k]);
		cr_assert(strstr(err, "code") || strstr(err, "script"), "[%s]: %s", srcs[k], err);
		free(err);
	}
	/* a word that is not the script stays a word: sh -c 'script' NAME ARGS */
	tmpl_free(parse_shell("sh -c 'echo \"$1\"' -- ${{ vars.v }}"));
}

/* An integer is what arithmetic reads unchanged: no octal, no sign but '-', no overflow. */
Test(tmpl, only_plain_decimal_integers_go_into_arithmetic)
{
	struct tmpl *t = parse_shell("echo $(( ${{ vars.v }} ))");
	const char *good[] = {"0", "-1", "42", "999999999999999999"};
	const char *bad[] = {"010", "+5", "-", "1e3", "9999999999999999999", "0x1f", "00"};
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		json_object_set_new(vars, "v", json_string(good[i]));
		char *out = run_script("/bin/sh", t, NULL, NULL);
		char *want = xasprintf("%s\n", good[i]);
		cr_assert_str_eq(out, want);
		free(want);
		free(out);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		json_object_set_new(vars, "v", json_string(bad[i]));
		struct shell_cmd c;
		char *err = NULL;
		bool ok = tmpl_render_shell(t, &scope, &c, &err);
		if (ok)
			shell_cmd_free(&c);
		free(err);
		cr_assert_not(ok, "took [%s]", bad[i]);
	}
	tmpl_free(t);
}

/* What people see: the values quoted where they stand, never the references. */
Test(tmpl, displayed_command_shows_the_values)
{
	json_object_set_new(vars, "v", json_string("it's $x"));
	struct tmpl *t = parse_shell("echo ${{ vars.v }} \"${{ vars.v }}\" '${{ vars.v }}' # ${{ vars.v }}");
	struct shell_cmd c;
	char *err = NULL;
	cr_assert(tmpl_render_shell(t, &scope, &c, &err));
	cr_assert_str_eq(c.display, "echo 'it'\\''s $x' \"it's \\$x\" '''it'\\''s $x''' # it's $x");
	cr_assert_str_eq(c.script,
			 "echo \"${__baton_v1}\" \"${__baton_v2}\" ''\"${__baton_v3}\"'' # \"${__baton_v4}\"");
	cr_assert_str_eq(c.env[0], "__baton_v1=it's $x");
	shell_cmd_free(&c);
	tmpl_free(t);
}

/* A here-document body expands $(...) whatever quotes a value brings along. */
Test(tmpl, shell_value_in_a_here_document_runs_nothing)
{
	char *script = NULL;
	char *out = run_with("/bin/sh", "cat <<EOF\n${{ vars.v }}\nEOF\n", "$(echo INJECTED) `echo X` \\$HOME", &script);
	/* printed back verbatim: nothing was expanded */
	bool ok = !strcmp(out, "$(echo INJECTED) `echo X` \\$HOME\n");
	char msg[512] = "";
	if (!ok)
		snprintf(msg, sizeof msg, "value ran as a command: script [%s] printed [%s]", script, out);
	free(out);
	free(script);
	cr_assert(ok, "%s", msg);
}

/* A newline in a value must not end a comment the template put it in. */
Test(tmpl, shell_value_in_a_comment_runs_nothing)
{
	char *script = NULL;
	char *out = run_with("/bin/sh", "printf ok # ${{ vars.v }}\n", "x\nprintf INJECTED #", &script);
	bool ok = !strcmp(out, "ok");
	char msg[512] = "";
	if (!ok)
		snprintf(msg, sizeof msg, "value ran as a command: script [%s] printed [%s]", script, out);
	free(out);
	free(script);
	cr_assert(ok, "%s", msg);
}

static char *run_src(const char *src)
{
	struct tmpl *t = parse_shell(src);
	char *out = run_script("/bin/sh", t, NULL, NULL);
	tmpl_free(t);
	return out;
}

Test(tmpl, list_becomes_one_word_per_element)
{
	json_object_set_new(vars, "l", json_pack("[s, s, s, i]", "a b", "c'd", "", 7));
	char *out = run_src("printf '[%s]' ${{ vars.l }}");
	cr_assert_str_eq(out, "[a b][c'd][][7]");
	free(out);
	out = run_src("set -- ${{ vars.l }}; printf '%s' \"$#\"");
	cr_assert_str_eq(out, "4");
	free(out);
	/* inside quotes, one word: the elements joined by spaces */
	out = run_src("printf '[%s]' \"${{ vars.l }}\" '${{ vars.l }}'");
	cr_assert_str_eq(out, "[a b c'd  7][a b c'd  7]");
	free(out);
}

Test(tmpl, empty_list_becomes_no_words)
{
	json_object_set_new(vars, "l", json_array());
	char *out = run_src("set -- ${{ vars.l }}; printf '%s' \"$#\"");
	cr_assert_str_eq(out, "0");
	free(out);
}

Test(tmpl, map_becomes_one_word_of_json)
{
	json_object_set_new(vars, "m", json_pack("{s:s}", "k", "v w'x"));
	char *out = run_src("set -- ${{ vars.m }}; printf '%s|%s' \"$#\" \"$1\"");
	cr_assert_str_eq(out, "1|{\"k\":\"v w'x\"}");
	free(out);
}

Test(tmpl, numbers_and_booleans_render_as_text)
{
	json_object_set_new(vars, "n", json_integer(42));
	json_object_set_new(vars, "f", json_real(1.5));
	json_object_set_new(vars, "b", json_true());
	json_object_set_new(vars, "z", json_null());
	char *s = render("${{ vars.n }} ${{ vars.f }} ${{ vars.b }} [${{ vars.z }}]", TMPL_TEXT);
	cr_assert_str_eq(s, "42 1.5 true []");
	free(s);
	s = render("echo ${{ vars.n }} ${{ vars.f }} ${{ vars.b }}", TMPL_SHELL);
	cr_assert_str_eq(s, "echo 42 1.5 true");
	free(s);
	s = run_src("echo ${{ vars.n }} ${{ vars.f }} ${{ vars.b }}");
	cr_assert_str_eq(s, "42 1.5 true\n");
	free(s);
}

Test(tmpl, raw_is_inserted_unquoted)
{
	json_object_set_new(vars, "cmd", json_string("printf '%s' hi; printf '%s' there"));
	struct tmpl *t = parse_shell("${{ raw(vars.cmd) }}");
	struct shell_cmd c;
	char *err = NULL;
	cr_assert(tmpl_render_shell(t, &scope, &c, &err));
	cr_assert_str_eq(c.script, "printf '%s' hi; printf '%s' there");
	cr_assert_eq(c.n_env, 0);
	char *out = th_sh(c.script, NULL);
	cr_assert_str_eq(out, "hithere");
	free(out);
	shell_cmd_free(&c);
	tmpl_free(t);
}

Test(tmpl, text_mode_inserts_plain_text)
{
	json_object_set_new(vars, "v", json_string("a'b\"c$(x) y"));
	json_object_set_new(vars, "l", json_pack("[s, s]", "p", "q"));
	char *s = render("hello ${{ vars.v }}!", TMPL_TEXT);
	cr_assert_str_eq(s, "hello a'b\"c$(x) y!");
	free(s);
	s = render("${{ vars.l }}", TMPL_TEXT);
	cr_assert_str_eq(s, "[\"p\",\"q\"]");
	free(s);
}

Test(tmpl, literal_template_renders_as_is)
{
	struct tmpl *t = parse("make build 'x' \"y\"");
	cr_assert(tmpl_is_literal(t));
	cr_assert_str_eq(tmpl_source(t), "make build 'x' \"y\"");
	struct buf b = {0};
	char *err = NULL;
	cr_assert(tmpl_render(t, TMPL_SHELL, &scope, &b, &err));
	cr_assert_str_eq(b.data, "make build 'x' \"y\"");
	buf_free(&b);
	tmpl_free(t);
}

Test(tmpl, closing_braces_inside_a_string_do_not_end_the_expression)
{
	char *s = render("<${{ '}}' }}>", TMPL_TEXT);
	cr_assert_str_eq(s, "<}}>");
	free(s);
}

/* The expression language has "\"" escapes; the template scanner must agree with it. */
Test(tmpl, escaped_quote_inside_an_expression_string)
{
	const char *src = "<${{ \"x\\\"}}\" }}>";
	char *err = NULL;
	size_t off = 0;
	struct tmpl *t = tmpl_parse(src, strlen(src), &err, &off);
	char msg[256] = "";
	if (!t)
		snprintf(msg, sizeof msg, "tmpl_parse(%s): %s", src, err ? err : "?");
	free(err);
	cr_assert_not_null(t, "%s", msg);
	struct buf b = {0};
	cr_assert(tmpl_render(t, TMPL_TEXT, &scope, &b, &err));
	cr_assert_str_eq(b.data, "<x\"}}>");
	buf_free(&b);
	tmpl_free(t);
}

Test(tmpl, render_error_reports_and_fails)
{
	struct tmpl *t = parse("echo ${{ vars.missing }}");
	struct buf b = {0};
	char *err = NULL;
	cr_assert_not(tmpl_render(t, TMPL_SHELL, &scope, &b, &err));
	cr_assert_not_null(err);
	cr_assert(strstr(err, "vars.missing is not defined") != NULL, "%s", err);
	free(err);
	buf_free(&b);
	tmpl_free(t);
}

Test(tmpl, parse_errors_give_the_offset_of_the_expression)
{
	char *err = NULL;
	size_t off = 0;
	const char *src = "echo hi ${{ vars.x";
	cr_assert_null(tmpl_parse(src, strlen(src), &err, &off));
	cr_assert_eq(off, 8);
	cr_assert(strstr(err, "without a closing '}}'") != NULL, "%s", err);
	free(err);
	err = NULL;
	src = "a ${{ 1 }} b ${{ bad( }}";
	cr_assert_null(tmpl_parse(src, strlen(src), &err, &off));
	cr_assert_eq(off, 13);
	cr_assert_not_null(err);
	free(err);
}

Test(tmpl, preview_keeps_unresolvable_parts_as_written)
{
	json_object_set_new(vars, "v", json_string("1.2 x"));
	struct tmpl *t = parse("deploy ${{ vars.v }} ${{ steps.build.stdout }} ${{ vars.nope }}");
	struct buf b = {0};
	tmpl_preview(t, TMPL_SHELL, &scope, &b);
	cr_assert_str_eq(b.data, "deploy '1.2 x' ${{ steps.build.stdout }} ${{ vars.nope }}");
	buf_reset(&b);
	tmpl_preview(t, TMPL_TEXT, &scope, &b);
	cr_assert_str_eq(b.data, "deploy 1.2 x ${{ steps.build.stdout }} ${{ vars.nope }}");
	buf_free(&b);
	tmpl_free(t);
}

struct count {
	size_t n;
};

static void count_path(void *ud, const char *root, const char *const *segs, size_t nsegs)
{
	(void)root;
	(void)segs;
	(void)nsegs;
	((struct count *)ud)->n++;
}

Test(tmpl, walk_paths_visits_every_expression)
{
	struct tmpl *t = parse("${{ vars.a }} and ${{ vars.b == steps.x.stdout }} ${{ 'lit' }}");
	struct count c = {0};
	tmpl_walk_paths(t, count_path, &c);
	cr_assert_eq(c.n, 3);
	tmpl_free(t);
}

/* ---- value_to_text ---- */

static void text_is(json_t *v, const char *want)
{
	struct buf b = {0};
	value_to_text(v, &b);
	cr_assert_str_eq(b.data ? b.data : "", want);
	cr_assert_eq(b.len, strlen(want));
	buf_free(&b);
	json_decref(v);
}

Test(value_text, numbers_booleans_null_and_containers)
{
	text_is(json_integer(42), "42");
	text_is(json_integer(-7), "-7");
	text_is(json_integer(0), "0");
	text_is(json_integer(9007199254740993LL), "9007199254740993");
	text_is(json_real(1.5), "1.5");
	text_is(json_real(0.1), "0.1");
	text_is(json_real(-2.25), "-2.25");
	text_is(json_real(2.0), "2");
	text_is(json_real(1e20), "1e+20");
	text_is(json_true(), "true");
	text_is(json_false(), "false");
	text_is(json_null(), "");
	text_is(json_string("as is"), "as is");
	text_is(json_pack("[s, i]", "a", 1), "[\"a\",1]");
	text_is(json_pack("{s:s}", "k", "v"), "{\"k\":\"v\"}");
}

/*
 * Found by the fuzzer: here-documents send the scan back to the line that
 * opened them, and these unclosed "$(case lines made it read the same text
 * over and over (over a minute). A budget refuses such a script at once.
 */
Test(shctx, a_script_too_tangled_to_follow_is_refused_quickly)
{
	alarm(10); /* SIGALRM ends the test's process (a crash to Criterion) if the scan takes that long */
	static const char src[] =
		"echo \"$(case {{ vars.v }};   ;   [[ %{{ vars.n }}-e  -2q ]] && ecs.v }}\n"
		"echo \"$(case {{ vars.v }};   ;   [[ %{{ vars.n }}-e  -2q ]] && ecs.v }}\n"
		"echo \"$(case {{ vars.v }};   ;   [[ %{{ vars.n }}-e  -2q ]] && ecs.v }}\n"
		"echo \"$(case x ho ${{ vars.v }}\n"
		"echo \"$(case {{ vars.v }};   ;   [[ %{{ vars.n n }} -e}}<<< hi; echo ${{ vars.v }}\n"
		"echo \"$(case x ho ${{ vars.v }}\n"
		"echo \"$(case {{ vars.v }};  ;   [[ %{{ vars.n n }} -eq -2 ]] && echo o $$ (({{ vars.n }} + 1 )) # ${{ vars.v }}\n"
		"echo \"$(case {{ vars.v }};   ;   [[ %{{ vars.n }}-e  -2q ]] && ecs.v }}\n"
		"echo \"$(case x ho ${{ vars.v }}\n"
		"echo \"$(case {{ vars.v }};   ;   [[ %{; echo ${{ vars.v }}\n"
		"echo \"$(case x ho ${{ vars.v }}\n"
		"echo \"$(case {{ vars.v }};   ;   [[ %{{ varsvv }}\n"
		"echo \"$(case x ho ${{ vars.v }}\n"
		"echo \"$(case {{ vars.v }};   ;   [[ %{{ vars.n }}-e  -2q ]] && ecs.v }}\n"
		"echo \"$(case x ho ${{ vars.v }}\n"
		"echo \"$(case {{ vars.v }};   ;   [[ %{{ vars.n n }} -e}}<<< hi; echo ${{ vars.v }}\n"
		"echo \"$(case x ho ${{ vars.v }}\n"
		"echo \"$(case {{ vars.v }};  ;   [[ %{{ vars.n n }} -eq -2 ]] && echo o $$ (({{ vars.n }} + 1 )) # ${{ vars.v }}\n"
		"echo \"$(case {{ vars.v }};   ;   [[ %{{ vars.n }}-e  -2q ]] && ecs.v }}\n"
		"echo \"$(case x ho ${{ vars.v }}\n"
		"echo \"$(case {{ vars.v }};   ;   [[ %{{ vars.n n }} -e}}<<< hi; echo ${{ vars.v }}\n"
		"f() { p$$ (({{ vars.n }} + 1 )) ## ${{ vars.v }}\n";
	char *err = refusal(src);
	alarm(0);
	cr_assert(strstr(err, "too tangled"), "%s", err);
	free(err);
}
