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

#include "report/report.h"
#include "report_page.h"
#include "util/util.h"

/*
 * The page's skeleton. The Content-Security-Policy is a second wall behind
 * the escaping: no request leaves the page, and only the script whose
 * SHA-256 it names (the page's own) runs, so markup smuggled into a task's
 * output could neither load nor run anything even if it broke out. A hash,
 * not a nonce: the same run always gives the same file.
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
	"<button data-m=\"host\">by host</button><button data-m=\"packed\" title=\"each step's tasks in as few rows as "
	"never overlap\">packed</button></span>"
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

/* SHA-256 (FIPS 180-4), for the script's hash in the page's Content-Security-Policy. */
static const uint32_t sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror32(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
	uint32_t w[64], v[8];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	memcpy(v, h, sizeof v);
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = v[7] + (ror32(v[4], 6) ^ ror32(v[4], 11) ^ ror32(v[4], 25)) + ((v[4] & v[5]) ^ (~v[4] & v[6])) +
			      sha256_k[i] + w[i];
		uint32_t t2 = (ror32(v[0], 2) ^ ror32(v[0], 13) ^ ror32(v[0], 22)) + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
		memmove(v + 1, v, 7 * sizeof v[0]);
		v[4] += t1;
		v[0] = t1 + t2;
	}
	for (int i = 0; i < 8; i++)
		h[i] += v[i];
}

static void sha256(const void *data, size_t n, unsigned char out[32])
{
	uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	const unsigned char *p = data;
	unsigned char last[128] = {0};
	size_t full = n / 64 * 64, rest = n - full, lastlen = rest < 56 ? 64 : 128;
	uint64_t bits = (uint64_t)n * 8;
	for (size_t i = 0; i < full; i += 64)
		sha256_block(h, p + i);
	memcpy(last, p + full, rest);
	last[rest] = 0x80;
	for (int i = 0; i < 8; i++)
		last[lastlen - 1 - i] = (unsigned char)(bits >> (8 * i));
	for (size_t i = 0; i < lastlen; i += 64)
		sha256_block(h, last + i);
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 4; j++)
			out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

/* The CSP source for text as a script: 'sha256-BASE64' (the caller frees). */
static char *csp_hash(const char *text, size_t n)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char d[33] = {0};
	struct buf b = {0};
	sha256(text, n, d);
	buf_adds(&b, "'sha256-");
	for (int i = 0; i < 33; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
		for (int k = 0; k < 4; k++)
			buf_addc(&b, i + k <= 32 ? b64[(v >> (18 - 6 * k)) & 63] : '=');
	}
	buf_addc(&b, '\'');
	return buf_detach(&b);
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
	if (!json_is_object(data) || !json_is_object(json_object_get(data, "run"))) {
		*err = xstrdup("the report data is not a report data document (no \"run\" object)");
		return false;
	}
	struct buf js = {0};
	buf_addc(&js, '\n');
	for (size_t i = 0; i < ARRAY_LEN(report_page_js); i++)
		buf_adds(&js, report_page_js[i]);
	char *hash = csp_hash(js.data, js.len);
	out_str(&o, html_head);
	out_str(&o, "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
		    "img-src data:; script-src ");
	out_str(&o, hash);
	free(hash);
	out_str(&o, "\">\n<title>baton \xc2\xb7 ");
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
		buf_free(&js);
		*err = xstrdup("the report data could not be written as JSON");
		return false;
	}
	out_str(&o, "</script>\n<script>");
	out_str(&o, js.data);
	buf_free(&js);
	out_str(&o, "</script>\n</body>\n</html>\n");
	if (!o.failed && fflush(f) != 0)
		o.failed = true;
	if (o.failed || ferror(f)) {
		*err = xasprintf("writing the HTML report: %s", strerror(errno ? errno : EIO));
		return false;
	}
	return true;
}
