/*
 * The HTML report's writer (report_html_write): one self-contained page
 * whose embedded data cannot break out of its script element, that is valid
 * UTF-8 whatever the data holds, and that names nothing on the network.
 * What the page draws is tested in a browser (tests/e2e/report_html.bats).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "util/util.h"

#define FIXTURE "tests/fixtures/report-data.json"
#define HOSTILE "</script><script>alert(1)</script><img src=x onerror=alert(1)>]]><!--"

static json_t *fixture(void)
{
	json_error_t e;
	json_t *d = json_load_file(FIXTURE, 0, &e);
	cr_assert_not_null(d, "%s:%d: %s", FIXTURE, e.line, e.text);
	return d;
}

/* The page report_html_write makes of data (caller frees); fails the test if it fails. */
static char *page_of(const json_t *data)
{
	char *s = NULL, *err = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	cr_assert_not_null(f);
	bool ok = report_html_write(f, data, &err);
	cr_assert(ok, "report_html_write: %s", err ? err : "?");
	cr_assert_eq(fclose(f), 0);
	return s;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The text of the data script element (caller frees). */
static char *data_text(const char *page)
{
	const char *open = "<script type=\"application/json\" id=\"baton-data\">";
	const char *a = strstr(page, open);
	cr_assert_not_null(a);
	a += strlen(open);
	const char *b = strstr(a, "</script>");
	cr_assert_not_null(b);
	return xstrndup(a, (size_t)(b - a));
}

static bool valid_utf8(const char *s)
{
	size_t n = strlen(s), len;
	for (size_t i = 0; i < n; i += len)
		if ((len = utf8_seq_len((const unsigned char *)s + i, n - i)) == 0)
			return false;
	return true;
}

Test(report_html, the_page_is_whole_with_one_data_and_one_code_script)
{
	json_t *d = fixture();
	char *p = page_of(d);
	cr_assert(str_has_prefix(p, "<!DOCTYPE html>\n<html lang=\"en\">"));
	cr_assert(strstr(p, "</body>\n</html>\n") == p + strlen(p) - strlen("</body>\n</html>\n"));
	cr_assert_eq(count(p, "<script"), 2);
	cr_assert_eq(count(p, "</script>"), 2);
	cr_assert_not_null(strstr(p, "<div id=\"detail\">"));
	cr_assert_not_null(strstr(p, "<title>baton \xc2\xb7 deploy \xc2\xb7 20261202T101500Z-abc123</title>"));
	free(p);
	json_decref(d);
}

Test(report_html, the_embedded_data_is_the_document_itself)
{
	json_t *d = fixture();
	char *p = page_of(d);
	char *t = data_text(p);
	json_error_t e;
	json_t *back = json_loads(t, 0, &e);
	cr_assert_not_null(back, "%s", e.text);
	cr_assert(json_equal(back, d));
	json_decref(back);
	free(t);
	free(p);
	json_decref(d);
}

Test(report_html, markup_in_any_text_stays_text)
{
	json_t *d = fixture();
	json_t *t0 = json_array_get(json_object_get(d, "tasks"), 0);
	json_object_set_new(t0, "command", json_string("echo '" HOSTILE "'"));
	json_object_set_new(t0, "label", json_string(HOSTILE));
	json_object_set_new(t0, "output", json_pack("[[s,s],[s,s]]", "o", HOSTILE, "e", "\xe2\x80\xa8\xe2\x80\xa9 & <b>"));
	json_object_set_new(json_object_get(d, "run"), "name", json_string(HOSTILE));
	char *p = page_of(d);
	char *t = data_text(p);
	cr_assert_eq(count(p, "<script"), 2);
	cr_assert_eq(count(p, "<img"), 0);
	cr_assert_null(strpbrk(t, "<>&"), "markup characters left in the data: %s", t);
	cr_assert_null(strstr(t, "\xe2\x80\xa8"));
	cr_assert_not_null(strstr(t, "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)"));
	cr_assert_not_null(strstr(p, "<title>baton \xc2\xb7 &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x "
				     "onerror=alert(1)&gt;]]&gt;&lt;!-- \xc2\xb7 "));
	json_t *back = json_loads(t, 0, NULL);
	cr_assert(json_equal(back, d), "the text came back changed");
	json_decref(back);
	free(t);
	free(p);
	json_decref(d);
}

Test(report_html, bytes_that_are_not_utf8_never_reach_the_page)
{
	json_t *d = fixture();
	json_t *t0 = json_array_get(json_object_get(d, "tasks"), 0);
	json_object_set_new(t0, "command", json_stringn_nocheck("a\xff\xfe" "b\xc3", 5));
	json_object_set_new(json_object_get(d, "run"), "name", json_stringn_nocheck("n\xff", 2));
	char *p = page_of(d);
	cr_assert(valid_utf8(p), "the page is not UTF-8");
	char *t = data_text(p);
	json_t *back = json_loads(t, 0, NULL);
	cr_assert_not_null(back);
	json_t *b0 = json_array_get(json_object_get(back, "tasks"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(b0, "command")), "a\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd");
	cr_assert_not_null(strstr(p, "<title>baton \xc2\xb7 n\xef\xbf\xbd \xc2\xb7 "));
	json_decref(back);
	free(t);
	free(p);
	json_decref(d);
}

Test(report_html, the_page_names_nothing_on_the_network)
{
	json_t *d = fixture();
	char *p = page_of(d);
	const char *remote[] = {"http:", "https:", "//", "src=", "href=", "url(", "@import", "<link", "<iframe"};
	char *lower = xstrdup(p);
	for (char *c = lower; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	for (size_t i = 0; i < ARRAY_LEN(remote); i++) {
		/* "//" starts no comment in the CSS or JS; a protocol-relative URL would */
		const char *hit = strstr(lower, remote[i]);
		cr_assert_null(hit, "the page has %s: ...%.60s...", remote[i], hit ? hit - 20 : "");
	}
	cr_assert_not_null(strstr(p, "content=\"default-src 'none';"));
	free(lower);
	free(p);
	json_decref(d);
}

Test(report_html, the_same_data_gives_the_same_bytes)
{
	/* run --report and baton report RUN --html must write the same file */
	json_t *d = fixture();
	char *p1 = page_of(d), *p2 = page_of(d);
	cr_assert_str_eq(p1, p2);
	const char *h = strstr(p1, "script-src 'sha256-");
	cr_assert_not_null(h);
	cr_assert_eq(h[strlen("script-src 'sha256-") + 44], '\'', "not 44 characters of base64: %.70s", h);
	free(p1);
	free(p2);
	json_decref(d);
}

Test(report_html, a_document_without_run_is_refused)
{
	json_t *d = json_pack("[i]", 1);
	char *err = NULL, *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	cr_assert_not(report_html_write(f, d, &err));
	cr_assert_not_null(strstr(err, "not a report data document"));
	fclose(f);
	free(s);
	free(err);
	json_decref(d);
}

Test(report_html, a_failed_write_is_an_error)
{
	json_t *d = fixture();
	char *err = NULL;
	FILE *f = fopen("/dev/full", "w");
	cr_assert_not_null(f);
	cr_assert_not(report_html_write(f, d, &err));
	cr_assert_not_null(strstr(err, strerror(ENOSPC)), "%s", err);
	fclose(f);
	free(err);
	json_decref(d);
}
