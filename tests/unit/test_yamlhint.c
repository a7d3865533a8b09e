/*
 * YAML errors where users trip: each says what it means and how to fix it,
 * at the exact place (yamlhint.c); a comment that cuts a command inside a
 * quoted string is an error; positions after non-ASCII text are exact.
 */
#include <criterion/criterion.h>

#include "helpers.h"

/* Loads yaml expecting exactly one error: sub at line:col, and the whole message is what is returned (caller frees). */
static char *one_error(const char *yaml, const char *sub, int line, int col)
{
	struct diags d = {0};
	th_load_fail(yaml, &d);
	TH_ASSERT_DIAG(&d, sub, line, col);
	if (d.n != 1) {
		char *t = th_diags_text(&d);
		cr_assert_fail("expected one error, got:\n%s", t);
	}
	char *msg = xstrdup(d.v[0].msg);
	diags_free(&d);
	return msg;
}

static void error_is(const char *yaml, const char *want, int line, int col)
{
	free(one_error(yaml, want, line, col));
}

#define RUN_FIX "; quote the whole value, or write 'run: |' and the command on the lines below it, indented"

Test(yamlhint, a_colon_in_a_run_value_says_to_quote_it_or_use_a_block)
{
	error_is("steps:\n"
		 "  - run: echo key: value\n",
		 "invalid YAML: mapping values are not allowed in this context: the value of 'run' holds ': ', which "
		 "YAML reads as a key" RUN_FIX,
		 2, 18);
	/* a key after others in the step, with non-ASCII text before */
	error_is("steps:\n"
		 "  - name: café\n"
		 "    run: echo é: b\n",
		 "the value of 'run' holds ': '", 3, 16);
	/* on a continuation line of the value */
	error_is("steps:\n"
		 "  - run: echo a\n"
		 "      b c: d\n",
		 "the value of 'run' holds ': '", 3, 10);
	/* another key: no block advice */
	char *m = one_error("vars:\n"
			    "  url: http://x y: z\n"
			    "steps: [echo]\n",
			    "the value of 'url' holds ': ', which YAML reads as a key; quote the whole value", 2, 18);
	cr_assert_null(strstr(m, "run: |"), "%s", m);
	free(m);
}

Test(yamlhint, text_after_a_quoted_or_bracketed_value_says_the_value_ended)
{
	error_is("steps:\n"
		 "  - run: \"echo\" a\n",
		 "invalid YAML: did not find expected key while parsing a block mapping: the value of 'run' starts with a "
		 "quote, so YAML reads a quoted string that ends at the closing quote, and no text may follow it" RUN_FIX,
		 2, 17);
	error_is("steps:\n"
		 "  - run: 'a' b\n",
		 "the value of 'run' starts with a quote", 2, 14);
	error_is("steps:\n"
		 "  - run: [a, b] c\n",
		 "the value of 'run' starts with '[', so YAML reads a list that ends at the ']'", 2, 17);
	/* a step written as a string */
	error_is("steps:\n"
		 "  - \"echo\" hi\n",
		 "while parsing a block collection: the list item starts with a quote, so YAML reads a quoted string that "
		 "ends at the closing quote, and no text may follow it; quote the whole item",
		 2, 12);
}

Test(yamlhint, a_template_inside_brackets_says_to_quote_it)
{
	const char *want = "inside [ ] or { }, a '{' or '}' ends a plain value; quote a value that holds '${{ }}' "
			   "(\"${{ ... }}\")";
	error_is("vars: {x: a}\n"
		 "steps:\n"
		 "  - run: [echo, ${{ vars.x }}]\n",
		 want, 3, 18);
	error_is("vars: {x: a}\n"
		 "steps:\n"
		 "  - {run: echo ${{ vars.x }}}\n",
		 want, 3, 17);
}

Test(yamlhint, a_template_that_starts_a_plain_value_is_fine)
{
	/* '{' inside a plain scalar is text in block context: only a value *starting* with '{' is a map */
	struct plan *p = th_load_ok("vars: {x: echo}\n"
				    "steps:\n"
				    "  - run: ${{ vars.x }} hi\n"
				    "  - ${{ vars.x }} there\n");
	plan_free(p);
}

Test(yamlhint, a_reserved_first_character_or_text_after_a_block_header)
{
	error_is("steps:\n"
		 "  - run: @here\n",
		 "found character that cannot start any token while scanning for the next token: the value of 'run' starts "
		 "with '@', which YAML reserves" RUN_FIX,
		 2, 10);
	error_is("steps:\n"
		 "  - run: `date`\n",
		 "the value of 'run' starts with '`', which YAML reserves", 2, 10);
	error_is("steps:\n"
		 "  - run: - x\n",
		 "the value of 'run' starts with '- ', which YAML reads as a list item", 2, 10);
	error_is("steps:\n"
		 "  - run: | echo a\n",
		 "did not find expected comment or line break while scanning a block scalar: after '|' (a block) the text "
		 "of 'run' goes on the lines below it, indented",
		 2, 12);
}

Test(yamlhint, an_error_with_no_hint_keeps_libyamls_words)
{
	char *m = one_error("steps:\n"
			    "  - run: [echo, unclosed\n"
			    "  - run: echo hi\n",
			    "did not find expected ',' or ']'", 3, 8);
	cr_assert_str_eq(m, "invalid YAML: did not find expected ',' or ']' while parsing a flow sequence");
	free(m);
}

#define CUT "'#' after a space starts a YAML comment, which cuts the 'run' command inside "

Test(yamlhint, a_comment_that_cuts_a_run_command_inside_quotes_is_an_error_at_the_hash)
{
	error_is("steps:\n"
		 "  - run: echo \"a #b\"\n",
		 CUT "a \"...\" string" RUN_FIX, 2, 18);
	error_is("steps:\n"
		 "  - run: git commit -m 'fix  #12'\n",
		 CUT "a '...' string", 2, 30);
	error_is("steps:\n"
		 "  - run: printf $'a\\' #b'\n",
		 CUT "a $'...' string", 2, 23);
	/* an escaped quote does not close the string */
	error_is("steps:\n"
		 "  - run: echo \"a\\\" #b\"\n",
		 CUT "a \"...\" string", 2, 20);
	/* a tab before '#'; columns count characters */
	error_is("steps:\n"
		 "  - name: é\n"
		 "    run: echo 'é\t#'\n",
		 CUT "a '...' string", 3, 18);
	/* on the next line of a plain value */
	error_is("steps:\n"
		 "  - run: echo 'a\n"
		 "      #b'\n",
		 CUT "a '...' string", 3, 7);
	/* a step written as a string, in a parallel group */
	error_is("steps:\n"
		 "  - parallel:\n"
		 "      - echo \"a #b\"\n",
		 "'#' after a space starts a YAML comment, which cuts the step's command inside a \"...\" string; quote the "
		 "whole command",
		 3, 17);
}

Test(yamlhint, a_comment_that_cuts_a_template_is_reported_at_the_hash)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: echo ${{ vars.x #b }}\n",
		     &d);
	TH_ASSERT_DIAG(&d, CUT "'${{ }}'", 2, 26);
	diags_free(&d);
}

Test(yamlhint, a_comment_where_the_shell_reads_one_too_is_no_error)
{
	/* the shell would read ' #' as a comment as well: the command is the same either way */
	struct plan *p = th_load_ok("vars:\n"
				    "  run: echo \"a #b\"\n" /* a var named run is no command */
				    "steps:\n"
				    "  - run: make # build it\n"
				    "  - run: echo 'a' \"b\" #c\n"
				    "  - echo ${{ vars.run }} # d\n"
				    "  - run: grep -c '^#' f\n"
				    "  - run: |\n"
				    "      echo \"a #b\"\n"
				    "  - run: 'echo \"a #b\"'\n");
	cr_assert_str_eq(tmpl_source(p->root->children[0]->run), "make");
	plan_free(p);
}

Test(yamlhint, positions_inside_a_literal_block_are_exact_after_non_ascii_text)
{
	/* libyaml's mark counts characters; the block's indentation is read at the right byte */
	error_is("vars: {x: a}\n"
		 "steps:\n"
		 "  - name: ééééééééééééééééééééééééé\n"
		 "    run: |\n"
		 "        echo a\n"
		 "        eval ${{ vars.x }}\n",
		 "stands in text the shell runs as code", 6, 14);
}

Test(yamlhint, a_bad_byte_after_crlf_lines_and_multibyte_text_is_reported_where_it_stands)
{
	/* known defect 2: libyaml gives reader errors at the file's start */
	struct diags d = {0};
	th_load_fail("\xef\xbb\xbfsteps:\r\n  - name: \xc3\xa9\xc3\xa9\r\n    run: \"\xe2\x82\xac \xc3\"\r\n", &d);
	TH_ASSERT_DIAG(&d, "invalid YAML: byte 0xC3 starts a UTF-8 sequence that byte 0x22 does not continue", 3, 13);
	diags_free(&d);
	th_load_fail("steps:\n  - run: echo \xe2\x82", &d);
	TH_ASSERT_DIAG(&d, "invalid YAML: incomplete UTF-8 octet sequence", 2, 15);
	diags_free(&d);
}

Test(yamlhint, a_key_indented_unlike_the_one_above_says_where_keys_line_up)
{
	/* too far: read as more of the value above */
	error_is("steps:\n"
		 "  - name: a\n"
		 "    run: echo\n"
		 "      env: {A: b}\n",
		 "mapping values are not allowed in this context: 'env' is read as more of the value of 'run' above (a plain "
		 "value goes on over lines indented more than its key), and its ': ' as a key; if 'env' is a key of its "
		 "own, indent it as 'run' is, at column 5; else quote the whole value, or write 'run: |' and the command on "
		 "the lines below it, indented",
		 4, 10);
	/* not far enough */
	error_is("steps:\n"
		 "  - run: echo\n"
		 "   env: x\n",
		 "did not find expected '-' indicator while parsing a block collection: the keys of one map line up: 'env' "
		 "is at column 4, 'run' above at column 5",
		 3, 4);
	error_is("vars:\n"
		 "  a: 1\n"
		 " b: 2\n"
		 "steps: [echo]\n",
		 "the keys of one map line up: 'b' is at column 2, 'a' above at column 3", 3, 2);
	/* a value not run's: no block advice */
	char *m = one_error("vars:\n"
			    "  a: 1\n"
			    "   b: 2\n"
			    "steps: [echo]\n",
			    "indent it as 'a' is, at column 3; else quote the whole value", 3, 5);
	cr_assert_null(strstr(m, "run: |"), "%s", m);
	free(m);
}
