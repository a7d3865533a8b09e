/*
 * util: durations, string distance, slugs, secret masking, diagnostics
 * ordering and the growable buffer.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "plan/plan.h"
#include "util/util.h"

static uint64_t dur(const char *s)
{
	uint64_t ms = 777;
	cr_assert(duration_parse(s, &ms), "duration_parse(\"%s\") refused", s);
	return ms;
}

static void dur_bad(const char *s)
{
	uint64_t ms = 777;
	cr_assert_not(duration_parse(s, &ms), "duration_parse(\"%s\") accepted (%llu ms)", s, (unsigned long long)ms);
	cr_assert_eq(ms, 777u, "a refused duration must not write *ms");
}

Test(duration, parse_units)
{
	cr_assert_eq(dur("250ms"), 250u);
	cr_assert_eq(dur("10s"), 10000u);
	cr_assert_eq(dur("5m"), 300000u);
	cr_assert_eq(dur("1h"), 3600000u);
	cr_assert_eq(dur("1h30m"), 5400000u);
	cr_assert_eq(dur("1m30s"), 90000u);
	cr_assert_eq(dur("2h1m5s10ms"), 7265010u);
	cr_assert_eq(dur("0s"), 0u);
	cr_assert_eq(dur("0"), 0u);
	cr_assert_eq(dur("1.5s"), 1500u);
	cr_assert_eq(dur("0.25m"), 15000u);
}

Test(duration, bare_number_is_seconds)
{
	cr_assert_eq(dur("7"), 7000u);
	cr_assert_eq(dur("90"), 90000u);
	cr_assert_eq(dur("2.5"), 2500u);
}

Test(duration, bad_durations_are_refused)
{
	dur_bad("");
	dur_bad("s");
	dur_bad("ms");
	dur_bad("5 minutes");
	dur_bad("5x");
	dur_bad("-1s");
	dur_bad("1m30");
	dur_bad(" 5s");
	dur_bad("5s ");
	dur_bad("five");
	dur_bad("5S");
	cr_assert_not(duration_parse(NULL, &(uint64_t){0}));
}

Test(duration, format_for_humans)
{
	char b[32];
	duration_format(0, b, sizeof b);
	cr_assert_str_eq(b, "0ms");
	duration_format(250, b, sizeof b);
	cr_assert_str_eq(b, "250ms");
	duration_format(999, b, sizeof b);
	cr_assert_str_eq(b, "999ms");
	duration_format(1500, b, sizeof b);
	cr_assert_str_eq(b, "1.5s");
	duration_format(10000, b, sizeof b);
	cr_assert_str_eq(b, "10.0s");
	duration_format(125000, b, sizeof b);
	cr_assert_str_eq(b, "2m05s");
	duration_format(60000, b, sizeof b);
	cr_assert_str_eq(b, "1m00s");
	duration_format(3720000, b, sizeof b);
	cr_assert_str_eq(b, "1h02m");
	duration_format(5400000, b, sizeof b);
	cr_assert_str_eq(b, "1h30m");
}

Test(duration, format_truncates_to_the_buffer)
{
	char b[4];
	duration_format(125000, b, sizeof b);
	cr_assert_str_eq(b, "2m0");
}

Test(duration, parse_and_format_agree)
{
	const char *s[] = {"250ms", "1.5s", "2m05s", "1h02m"};
	for (size_t i = 0; i < ARRAY_LEN(s); i++) {
		char b[32];
		duration_format(dur(s[i]), b, sizeof b);
		cr_assert_str_eq(b, s[i]);
	}
}

Test(str, distance)
{
	cr_assert_eq(str_typo_distance("", ""), 0);
	cr_assert_eq(str_typo_distance("abc", "abc"), 0);
	cr_assert_eq(str_typo_distance("", "abc"), 3);
	cr_assert_eq(str_typo_distance("abc", ""), 3);
	cr_assert_eq(str_typo_distance("timout", "timeout"), 1);
	cr_assert_eq(str_typo_distance("kitten", "sitting"), 3);
	cr_assert_eq(str_typo_distance("flaw", "lawn"), 2);
	cr_assert_eq(str_typo_distance("steps", "stepz"), 1);
	cr_assert_eq(str_typo_distance("sitting", "kitten"), str_typo_distance("kitten", "sitting"));
}

Test(str, typo_distance_counts_a_swap_of_neighbours_as_one)
{
	cr_assert_eq(str_typo_distance("", ""), 0);
	cr_assert_eq(str_typo_distance("rnu", "run"), 1);
	cr_assert_eq(str_typo_distance("ab", "ba"), 1);
	cr_assert_eq(str_typo_distance("verison", "version"), 1);
	cr_assert_eq(str_typo_distance("dryrun", "dry-run"), 1);
	cr_assert_eq(str_typo_distance("kitten", "sitting"), 3);
	cr_assert_eq(str_typo_distance("abc", "ca"), 3, "OSA: no edit of a swapped pair");
	cr_assert_eq(str_typo_distance("", "abc"), 3);
	char a[100];
	memset(a, 'a', 99);
	a[99] = 0;
	cr_assert_eq(str_typo_distance(a, a), 64);
}

Test(str, closest_name_picks_the_nearest_typo)
{
	static const char *const cmds[] = {"run", "check", "plan", "runs", "status", "logs"};
	size_t n = ARRAY_LEN(cmds);
	cr_assert_str_eq(closest_name("rnu", cmds, n), "run");
	cr_assert_str_eq(closest_name("chekc", cmds, n), "check");
	cr_assert_str_eq(closest_name("stauts", cmds, n), "status");
	cr_assert_str_eq(closest_name("lgos", cmds, n), "logs");
	cr_assert_str_eq(closest_name("rn", cmds, n), "run", "the first of the closest");
	cr_assert_str_eq(closest_name("rusn", cmds, n), "runs", "on a tie, the one of the same length");
	cr_assert_null(closest_name("deploy", cmds, n));
	cr_assert_null(closest_name("rxx", cmds, n), "2 edits are too many for a 3-letter name");
	cr_assert_null(closest_name("x", cmds, 0));
	static const char *const opts[] = {"var", "var-file", "dry-run", "only", "from"};
	cr_assert_str_eq(closest_name("dryrun", opts, ARRAY_LEN(opts)), "dry-run");
	cr_assert_str_eq(closest_name("dry_run", opts, ARRAY_LEN(opts)), "dry-run");
	cr_assert_str_eq(closest_name("varfile", opts, ARRAY_LEN(opts)), "var-file");
	cr_assert_str_eq(closest_name("onyl", opts, ARRAY_LEN(opts)), "only");
}

Test(str, distance_of_long_strings_is_capped)
{
	char a[100], b[100];
	memset(a, 'a', 99);
	a[99] = 0;
	memset(b, 'a', 99);
	b[99] = 0;
	cr_assert_eq(str_typo_distance(a, b), 64, "long strings are 'far' whatever they hold");
}

static void slug_is(const char *name, const char *want)
{
	char *s = str_slug(name);
	cr_assert_str_eq(s, want, "slug of \"%s\"", name);
	free(s);
}

Test(str, slug)
{
	slug_is("Build", "build");
	slug_is("Build It!", "build-it");
	slug_is("  Deploy   to  PROD  ", "deploy-to-prod");
	slug_is("unit_tests", "unit_tests");
	slug_is("a--b", "a-b");
	slug_is("v1.2.3", "v1-2-3");
	slug_is("---", "");
	slug_is("", "");
	slug_is("x", "x");
	slug_is("Caf\xc3\xa9 Au Lait", "caf-au-lait");
}

Test(str, has_prefix)
{
	cr_assert(str_has_prefix("hello", "he"));
	cr_assert(str_has_prefix("hello", ""));
	cr_assert(str_has_prefix("hello", "hello"));
	cr_assert_not(str_has_prefix("he", "hello"));
	cr_assert_not(str_has_prefix("hello", "lo"));
}

/* ---- secrets ---- */

static char *masked(const char *s, const char *const *secrets, size_t n, bool *any)
{
	struct buf b = {0};
	*any = mask_secrets(s, strlen(s), secrets, n, &b);
	return buf_detach(&b);
}

Test(mask, replaces_every_occurrence)
{
	const char *sec[] = {"hunter2"};
	bool any;
	char *m = masked("pass=hunter2 again hunter2!", sec, 1, &any);
	cr_assert(any);
	cr_assert_str_eq(m, "pass=*** again ***!");
	free(m);
}

Test(mask, without_secrets_text_is_unchanged)
{
	const char *sec[] = {"hunter2"};
	bool any = true;
	char *m = masked("nothing to hide here", sec, 1, &any);
	cr_assert_not(any);
	cr_assert_str_eq(m, "nothing to hide here");
	free(m);
	any = true;
	m = masked("no list at all", NULL, 0, &any);
	cr_assert_not(any);
	cr_assert_str_eq(m, "no list at all");
	free(m);
}

Test(mask, overlapping_secrets_longest_wins)
{
	const char *sec[] = {"abc", "abcdef", "def"};
	bool any;
	char *m = masked("xxabcdefyy", sec, 3, &any);
	cr_assert(any);
	cr_assert_str_eq(m, "xx***yy");
	free(m);
	const char *sec2[] = {"pass", "password"};
	m = masked("password pass", sec2, 2, &any);
	cr_assert_str_eq(m, "*** ***");
	free(m);
}

Test(mask, secret_inside_a_longer_secret_and_adjacent)
{
	const char *sec[] = {"ab", "b"};
	bool any;
	char *m = masked("abbab", sec, 2, &any);
	cr_assert_str_eq(m, "*********");
	free(m);
}

Test(mask, appends_to_the_buffer_and_handles_binary_length)
{
	const char *sec[] = {"key"};
	struct buf b = {0};
	buf_adds(&b, "> ");
	const char data[] = "a\0key";
	cr_assert(mask_secrets(data, sizeof data - 1, sec, 1, &b));
	cr_assert_eq(b.len, 2 + 1 + 1 + 3);
	cr_assert_eq(memcmp(b.data, "> a\0***", 7), 0);
	buf_free(&b);
}

/* ---- diagnostics ---- */

Test(diags, print_sorts_by_file_line_col_and_keeps_ties_in_order)
{
	struct diags d = {0};
	diags_add(&d, "b.yaml", 1, 1, "b first");
	diags_add(&d, "a.yaml", 10, 2, "a line 10 col 2");
	diags_add(&d, "a.yaml", 2, 5, "a line 2 col 5");
	diags_add(&d, "a.yaml", 10, 1, "a line 10 col 1");
	diags_add(&d, "a.yaml", 2, 5, "a line 2 col 5 again");
	diags_add(&d, "a.yaml", 2, 1, "a line %d col %d", 2, 1);
	cr_assert_eq(d.n, 6);
	char *out = th_diags_text(&d);
	cr_assert_str_eq(out, "a.yaml:2:1: error: a line 2 col 1\n"
			      "a.yaml:2:5: error: a line 2 col 5\n"
			      "a.yaml:2:5: error: a line 2 col 5 again\n"
			      "a.yaml:10:1: error: a line 10 col 1\n"
			      "a.yaml:10:2: error: a line 10 col 2\n"
			      "b.yaml:1:1: error: b first\n");
	free(out);
	/* printing does not reorder the list itself */
	cr_assert_str_eq(d.v[0].msg, "b first");
	cr_assert_str_eq(d.v[5].msg, "a line 2 col 1");
	diags_free(&d);
	cr_assert_eq(d.n, 0);
	cr_assert_null(d.v);
}

Test(diags, print_to_a_tmpfile)
{
	struct diags d = {0};
	diags_add(&d, NULL, 3, 4, "no file");
	FILE *f = tmpfile();
	cr_assert_not_null(f);
	diags_print(&d, f);
	rewind(f);
	char line[128] = {0};
	cr_assert_not_null(fgets(line, sizeof line, f));
	cr_assert_str_eq(line, "-:3:4: error: no file\n");
	cr_assert_null(fgets(line, sizeof line, f));
	fclose(f);
	diags_free(&d);
}

Test(diags, empty_list_prints_nothing)
{
	struct diags d = {0};
	char *out = th_diags_text(&d);
	cr_assert_str_eq(out, "");
	free(out);
	diags_free(&d);
}

Test(diags, many_diagnostics_grow_the_list)
{
	struct diags d = {0};
	for (int i = 100; i > 0; i--)
		diags_add(&d, "f", i, 1, "e%d", i);
	cr_assert_eq(d.n, 100);
	char *out = th_diags_text(&d);
	cr_assert(strncmp(out, "f:1:1: error: e1\nf:2:1: error: e2\n", 34) == 0, "%.40s", out);
	free(out);
	diags_free(&d);
}

/* ---- buffers ---- */

Test(buf, add_printf_reset_detach)
{
	struct buf b = {0};
	buf_adds(&b, "abc");
	buf_addc(&b, '-');
	buf_printf(&b, "%d:%s", 42, "x");
	cr_assert_str_eq(b.data, "abc-42:x");
	cr_assert_eq(b.len, 8);
	buf_reset(&b);
	cr_assert_eq(b.len, 0);
	cr_assert_str_eq(b.data, "");
	for (int i = 0; i < 1000; i++)
		buf_adds(&b, "0123456789");
	cr_assert_eq(b.len, 10000);
	cr_assert_eq(strlen(b.data), 10000);
	char *s = buf_detach(&b);
	cr_assert_null(b.data);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(strlen(s), 10000);
	free(s);
	s = buf_detach(&b);
	cr_assert_str_eq(s, "");
	free(s);
	buf_free(&b);
}

Test(buf, xasprintf_formats)
{
	char *s = xasprintf("%s-%05d-%c", "id", 42, 'z');
	cr_assert_str_eq(s, "id-00042-z");
	free(s);
	s = xstrndup("abcdef", 3);
	cr_assert_str_eq(s, "abc");
	free(s);
}

static char *visible(const char *s, size_t n)
{
	struct buf b = {0};
	str_visible(&b, s, n);
	cr_assert_eq(str_is_visible(s, n), b.len == n && !memcmp(b.data, s, n),
		     "str_is_visible disagrees with str_visible on \"%s\"", b.data);
	return buf_detach(&b);
}

#define CHECK_VISIBLE(in, want)                                                                                        \
	do {                                                                                                           \
		char *got = visible(in, sizeof(in) - 1);                                                               \
		cr_assert_str_eq(got, want);                                                                           \
		free(got);                                                                                             \
	} while (0)

Test(visible, controls_shown_as_cat_v_does)
{
	CHECK_VISIBLE("plain text, tab\there", "plain text, tab\there");
	CHECK_VISIBLE("\033[31mred\033[0m", "^[[31mred^[[0m");        /* CSI */
	CHECK_VISIBLE("\033]0;title\a", "^[]0;title^G");              /* OSC */
	CHECK_VISIBLE("over\rwrite\bback\x7f", "over^Mwrite^Hback^?");
	CHECK_VISIBLE("a\nb", "a^Jb");
	CHECK_VISIBLE("nul\0x", "nul^@x");
	CHECK_VISIBLE("\x9b" "31m", "M-^[31m");                       /* C1 CSI, a raw byte */
	CHECK_VISIBLE("\xc2\x9b" "31m", "M-^[31m");                   /* C1 CSI in UTF-8 */
	CHECK_VISIBLE("\xc2\x9d" "0;t\xc2\x9c", "M-^]0;tM-^\\");      /* OSC ... ST in UTF-8 */
	CHECK_VISIBLE("\x80\x9f", "M-^@M-^_");
}

Test(visible, printable_utf8_and_other_bytes_kept)
{
	CHECK_VISIBLE("caf\xc3\xa9 \xe2\x9c\x93 \xc2\xa0", "caf\xc3\xa9 \xe2\x9c\x93 \xc2\xa0");
	CHECK_VISIBLE("latin1 \xe9\xff", "latin1 \xe9\xff");
	CHECK_VISIBLE("\xc2", "\xc2"); /* a lone lead byte at the end */
	CHECK_VISIBLE("", "");
}

Test(utf8, seq_len_takes_valid_sequences_and_refuses_the_rest)
{
	const unsigned char *s;
	cr_assert_eq(utf8_seq_len((const unsigned char *)"a", 1), 1);
	s = (const unsigned char *)"\xc3\xa9";
	cr_assert_eq(utf8_seq_len(s, 2), 2);
	cr_assert_eq(utf8_seq_len(s, 1), 0, "cut short");
	cr_assert_eq(utf8_seq_len((const unsigned char *)"\xe2\x82\xac", 3), 3);
	cr_assert_eq(utf8_seq_len((const unsigned char *)"\xf0\x9f\x98\x80", 4), 4);
	cr_assert_eq(utf8_seq_len((const unsigned char *)"\xc0\xaf", 2), 0, "overlong");
	cr_assert_eq(utf8_seq_len((const unsigned char *)"\xed\xa0\x80", 3), 0, "a surrogate");
	cr_assert_eq(utf8_seq_len((const unsigned char *)"\xf4\x90\x80\x80", 4), 0, "past U+10FFFF");
	cr_assert_eq(utf8_seq_len((const unsigned char *)"\x80", 1), 0, "a continuation byte alone");
	cr_assert_eq(utf8_seq_len((const unsigned char *)"\xc3(", 2), 0, "not continued");
}
