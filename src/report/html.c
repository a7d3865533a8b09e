/*
 * report: the HTML timeline — one self-contained page (baton's own CSS and
 * JS from page.css and page.js, embedded at build time) with the report data
 * document (report.h) as JSON in a <script type="application/json">. Nothing
 * is loaded from anywhere: the page opens from disk and as a CI artifact.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "report/report.h"
#include "report_page.h"
#include "util/util.h"

/*
 * The page's skeleton. The Content-Security-Policy is a second wall behind
 * the escaping: no request leaves the page, and only the two scripts that
 * carry this write's nonce run, so markup smuggled into a task's output could
 * neither load nor run anything even if it broke out.
 */
static const char html_head[] = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
				"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
				"<meta name=\"generator\" content=\"baton\">\n";

static const char html_body[] =
	"<body>\n<div class=\"wrap\">\n"
	"<header class=\"top\"><div><div class=\"brand\"><b>baton</b> run report <span class=\"runid\" id=\"runid\"></span></div>"
	"<div class=\"plan\"><span id=\"plan\"></span><small id=\"planfile\"></small></div></div>"
	"<span class=\"pill\" id=\"status\"></span><div class=\"meta\" id=\"meta\"></div>"
	"<div class=\"counts\" id=\"counts\"></div></header>\n"
	"<div id=\"warnings\"></div><div id=\"err\"></div>\n"
	"<div class=\"tools\"><span class=\"seg\" id=\"mode\"><button class=\"on\" data-m=\"step\">by step</button>"
	"<button data-m=\"host\">by host</button></span>"
	"<span class=\"seg\" id=\"zoom\"><button data-z=\"out\" title=\"zoom out\">\xe2\x88\x92</button>"
	"<button data-z=\"fit\" title=\"fit the run\">fit</button><button data-z=\"in\" title=\"zoom in\">+</button></span>"
	"<input id=\"q\" type=\"search\" placeholder=\"filter: task, label, host\" autocomplete=\"off\">"
	"<div class=\"legend\"><span><i class=\"dot\" style=\"background:var(--ok)\"></i>success</span>"
	"<span><i class=\"dot\" style=\"background:var(--fail)\"></i>failed</span>"
	"<span><i class=\"dot\" style=\"background:var(--tmo)\"></i>timeout</span>"
	"<span><i class=\"dot\" style=\"background:var(--tol)\"></i>tolerated</span>"
	"<span><i class=\"dot\" style=\"background:var(--cxl)\"></i>cancelled</span>"
	"<span><i class=\"dot\" style=\"background:var(--skip)\"></i>skipped</span>"
	"<span><i class=\"dot\" style=\"background:var(--run)\"></i>running</span>"
	"<span><i class=\"dot\" style=\"background:var(--barrier)\"></i>barrier</span></div></div>\n"
	"<div class=\"main\"><div class=\"card\" id=\"chart\"><div class=\"canvas\" id=\"canvas\"></div></div>\n"
	"<aside class=\"card\"><h2>Task</h2><div id=\"detail\"></div></aside></div>\n"
	"<div class=\"ranks\"><div class=\"card\"><h2>Slowest tasks</h2><div id=\"slow-tasks\"></div></div>"
	"<div class=\"card\"><h2>Slowest hosts</h2><div id=\"slow-hosts\"></div></div>"
	"<div class=\"card\"><h2>Slowest steps</h2><div id=\"slow-steps\"></div></div></div>\n"
	"<footer>Written by baton. This page is self-contained: it loads nothing from the network.</footer>\n"
	"</div>\n<div id=\"tip\"></div>\n";

struct html_out {
	FILE *f;
	bool failed;
};

static void out_str(struct html_out *o, const char *s)
{
	if (!o->failed && fputs(s, o->f) == EOF)
		o->failed = true;
}

static void out_lines(struct html_out *o, const char *const *lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out_str(o, lines[i]);
}

/*
 * Writes s as HTML text: markup characters as entities, control characters
 * as spaces, and bytes that are not UTF-8 as U+FFFD, so the page is valid
 * UTF-8 whatever the data holds.
 */
static void out_text(struct html_out *o, const char *s)
{
	struct buf b = {0};
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t len = utf8_seq_len(p + i, n - i);
		unsigned char c = p[i];
		if (len == 0) {
			buf_adds(&b, "\xef\xbf\xbd");
			i++;
			continue;
		}
		if (c == '&')
			buf_adds(&b, "&amp;");
		else if (c == '<')
			buf_adds(&b, "&lt;");
		else if (c == '>')
			buf_adds(&b, "&gt;");
		else if (c == '"')
			buf_adds(&b, "&quot;");
		else if (c == '\'')
			buf_adds(&b, "&#39;");
		else if (c < 0x20 || c == 0x7f)
			buf_addc(&b, ' ');
		else
			buf_add(&b, p + i, len);
		i += len;
	}
	if (b.len)
		out_str(o, b.data);
	buf_free(&b);
}

/*
 * jansson's dump callback: the JSON is pure ASCII (JSON_ENSURE_ASCII, so
 * U+2028 and U+2029 are \u escapes already); <, > and & become \u escapes
 * too, so no "</script>" or "<!--" can appear inside the script element.
 * Outside strings JSON has none of the three, so replacing them everywhere
 * keeps the document the same.
 */
static int dump_escaped(const char *buffer, size_t size, void *data)
{
	struct html_out *o = data;
	size_t from = 0;
	for (size_t i = 0; i < size && !o->failed; i++) {
		const char *rep = buffer[i] == '<' ? "\\u003c" : buffer[i] == '>' ? "\\u003e" : buffer[i] == '&' ? "\\u0026" : NULL;
		if (!rep)
			continue;
		if (i > from && fwrite(buffer + from, 1, i - from, o->f) != i - from)
			o->failed = true;
		out_str(o, rep);
		from = i + 1;
	}
	if (!o->failed && size > from && fwrite(buffer + from, 1, size - from, o->f) != size - from)
		o->failed = true;
	return o->failed ? -1 : 0;
}

/* A fresh nonce for the page's scripts: 128 random bits as hex. */
static void make_nonce(char out[33])
{
	unsigned char r[16];
	ssize_t got = getrandom(r, sizeof r, GRND_NONBLOCK);
	if (got != (ssize_t)sizeof r) {
		/* no entropy yet (early boot): the nonce only backs up the escaping */
		uint64_t x = clock_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
		for (size_t i = 0; i < sizeof r; i++) {
			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			r[i] = (unsigned char)(x >> 56);
		}
	}
	for (size_t i = 0; i < sizeof r; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}

/* True when every string in v (object keys aside) is valid UTF-8. */
static bool json_utf8_ok(const json_t *v)
{
	const char *k;
	json_t *m;
	size_t i;
	switch (json_typeof(v)) {
	case JSON_STRING: {
		const unsigned char *s = (const unsigned char *)json_string_value(v);
		size_t n = json_string_length(v), len;
		for (i = 0; i < n; i += len)
			if ((len = utf8_seq_len(s + i, n - i)) == 0)
				return false;
		return true;
	}
	case JSON_ARRAY:
		json_array_foreach(v, i, m) if (!json_utf8_ok(m)) return false;
		return true;
	case JSON_OBJECT:
		json_object_foreach((json_t *)v, k, m) if (!json_utf8_ok(m)) return false;
		return true;
	default:
		return true;
	}
}

/* A copy of v whose strings have each byte that is not UTF-8 replaced by U+FFFD (new reference). */
static json_t *json_utf8_fixed(const json_t *v)
{
	const char *k;
	json_t *m, *c;
	size_t i;
	switch (json_typeof(v)) {
	case JSON_STRING: {
		const unsigned char *s = (const unsigned char *)json_string_value(v);
		size_t n = json_string_length(v), len;
		struct buf b = {0};
		for (i = 0; i < n; i += len ? len : 1) {
			len = utf8_seq_len(s + i, n - i);
			if (len)
				buf_add(&b, s + i, len);
			else
				buf_adds(&b, "\xef\xbf\xbd");
		}
		c = json_stringn(b.data ? b.data : "", b.len);
		buf_free(&b);
		break;
	}
	case JSON_ARRAY:
		c = json_array();
		json_array_foreach(v, i, m) json_array_append_new(c, json_utf8_fixed(m));
		break;
	case JSON_OBJECT:
		c = json_object();
		json_object_foreach((json_t *)v, k, m) json_object_set_new(c, k, json_utf8_fixed(m));
		break;
	default:
		c = json_deep_copy(v);
		break;
	}
	if (!c) {
		fprintf(stderr, "baton: out of memory\n");
		exit(70);
	}
	return c;
}

static const char *data_str(const json_t *data, const char *key)
{
	const char *s = json_string_value(json_object_get(json_object_get(data, "run"), key));
	return s ? s : "";
}

bool report_html_write(FILE *f, const json_t *data, char **err)
{
	struct html_out o = {f, false};
	char nonce[33];
	if (!json_is_object(data) || !json_is_object(json_object_get(data, "run"))) {
		*err = xstrdup("the report data is not a report data document (no \"run\" object)");
		return false;
	}
	make_nonce(nonce);
	out_str(&o, html_head);
	out_str(&o, "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
		    "img-src data:; script-src 'nonce-");
	out_str(&o, nonce);
	out_str(&o, "'\">\n<title>baton \xc2\xb7 ");
	out_text(&o, *data_str(data, "name") ? data_str(data, "name") : data_str(data, "plan"));
	out_str(&o, " \xc2\xb7 ");
	out_text(&o, data_str(data, "id"));
	out_str(&o, "</title>\n<style>\n");
	out_lines(&o, report_page_css, ARRAY_LEN(report_page_css));
	out_str(&o, "</style>\n</head>\n");
	out_str(&o, html_body);
	out_str(&o, "<script type=\"application/json\" id=\"baton-data\">");
	/* jansson refuses to dump a string that is not UTF-8 (json_stringn_nocheck makes them) */
	json_t *fixed = json_utf8_ok(data) ? NULL : json_utf8_fixed(data);
	int rc = o.failed ? 0 : json_dump_callback(fixed ? fixed : data, dump_escaped, &o, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(fixed);
	if (rc != 0 && !o.failed) {
		*err = xstrdup("the report data could not be written as JSON");
		return false;
	}
	out_str(&o, "</script>\n<script nonce=\"");
	out_str(&o, nonce);
	out_str(&o, "\">\n");
	out_lines(&o, report_page_js, ARRAY_LEN(report_page_js));
	out_str(&o, "</script>\n</body>\n</html>\n");
	if (!o.failed && fflush(f) != 0)
		o.failed = true;
	if (o.failed || ferror(f)) {
		*err = xasprintf("writing the HTML report: %s", strerror(errno ? errno : EIO));
		return false;
	}
	return true;
}
