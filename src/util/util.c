/*
 * util: allocation, buffers, diagnostics, durations, clocks, quoting.
 * Nothing here knows about plans or tasks.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

static void oom(void)
{
	static const char msg[] = "baton: out of memory\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
		/* nothing more we can do */
	}
	_exit(70);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	/* exactly sized: ids and messages are many and short */
	va_list ap, cp;
	va_start(ap, fmt);
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0) {
		va_end(ap);
		return xstrdup("");
	}
	char *s = xmalloc((size_t)n + 1);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

void buf_grow(struct buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1) {
		if (cap > SIZE_MAX / 2)
			oom();
		cap *= 2;
	}
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}


void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	buf_grow(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *buf_detach(struct buf *b)
{
	char *s = b->data ? b->data : xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void diags_add(struct diags *d, const char *file, int line, int col, const char *fmt, ...)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->v = xrealloc(d->v, d->cap * sizeof *d->v);
	}
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	struct diag *g = &d->v[d->n++];
	g->file = xstrdup(file ? file : "-");
	g->line = line;
	g->col = col;
	g->msg = buf_detach(&b);
}

static int diag_cmp(const void *a, const void *b)
{
	const struct diag *x = a, *y = b;
	int c = strcmp(x->file, y->file);
	if (c)
		return c;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return 0;
}

void diags_print(const struct diags *d, FILE *out)
{
	/* Stable order: sort a copy of the indexes by place, keeping insertion order on ties. */
	struct diag *v = xmalloc((d->n ? d->n : 1) * sizeof *v);
	if (d->n)
		memcpy(v, d->v, d->n * sizeof *v);
	/* insertion sort keeps ties in order and lists are short */
	for (size_t i = 1; i < d->n; i++) {
		struct diag t = v[i];
		size_t j = i;
		while (j > 0 && diag_cmp(&v[j - 1], &t) > 0) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = t;
	}
	for (size_t i = 0; i < d->n; i++)
		if (v[i].line > 0)
			fprintf(out, "%s:%d:%d: error: %s\n", v[i].file, v[i].line, v[i].col, v[i].msg);
		else
			fprintf(out, "%s: error: %s\n", v[i].file, v[i].msg);
	free(v);
}

void diags_free(struct diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
	}
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}

bool duration_parse(const char *s, uint64_t *ms)
{
	if (!s || !*s)
		return false;
	const char *p = s;
	uint64_t total = 0;
	bool any = false;
	while (*p) {
		if (!isdigit((unsigned char)*p) && *p != '.')
			return false;
		char *end;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno || v < 0 || v > 1e12)
			return false;
		p = end;
		double mult;
		if (*p == '\0') {
			if (any)
				return false; /* "1m30" is ambiguous */
			mult = 1000;
		} else if (str_has_prefix(p, "ms")) {
			mult = 1;
			p += 2;
		} else if (*p == 's') {
			mult = 1000;
			p++;
		} else if (*p == 'm') {
			mult = 60000;
			p++;
		} else if (*p == 'h') {
			mult = 3600000;
			p++;
		} else if (*p == 'd') {
			mult = 86400000;
			p++;
		} else {
			return false;
		}
		double add = v * mult;
		if (add > 1e15)
			return false;
		total += (uint64_t)(add + 0.5);
		any = true;
	}
	*ms = total;
	return any;
}

void duration_format(uint64_t ms, char *out, size_t outlen)
{
	if (ms < 1000)
		snprintf(out, outlen, "%llums", (unsigned long long)ms);
	else if (ms < 60000)
		snprintf(out, outlen, "%.1fs", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(out, outlen, "%llum%02llus", (unsigned long long)(ms / 60000),
			 (unsigned long long)(ms / 1000 % 60));
	else
		snprintf(out, outlen, "%lluh%02llum", (unsigned long long)(ms / 3600000),
			 (unsigned long long)(ms / 60000 % 60));
}

uint64_t clock_ms(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void clock_iso(char out[32])
{
	/* the seconds part changes once a second: format it only then */
	static time_t cached_sec = (time_t)-1;
	static char cached[24];
	struct timespec ts;
	struct tm tm;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
		memcpy(out, "1970-01-01T00:00:00.000Z", 25);
		return;
	}
	if (ts.tv_sec != cached_sec) {
		if (!gmtime_r(&ts.tv_sec, &tm)) {
			memcpy(out, "1970-01-01T00:00:00.000Z", 25);
			return;
		}
		strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
		cached_sec = ts.tv_sec;
	}
	int ms = (int)(ts.tv_nsec / 1000000L) % 1000;
	memcpy(out, cached, 19);
	out[19] = '.';
	out[20] = (char)('0' + ms / 100);
	out[21] = (char)('0' + ms / 10 % 10);
	out[22] = (char)('0' + ms % 10);
	out[23] = 'Z';
	out[24] = '\0';
}

/* Words the shell reads as syntax where a command starts: never left bare. */
static bool reserved_word(const char *s, size_t len)
{
	static const char *const words[] = {"!",  "{",    "}",     "case", "do",     "done", "elif",
					    "else", "esac", "fi",  "for",  "if",     "in",   "then",
					    "until", "while", "select", "function", "time", "[[", "]]"};
	for (size_t i = 0; i < ARRAY_LEN(words); i++)
		if (strlen(words[i]) == len && !memcmp(words[i], s, len))
			return true;
	return false;
}

void shell_quote(struct buf *b, const char *s, size_t len)
{
	/* '=' is never bare: at a command's start NAME=x would be an assignment */
	bool plain = len > 0 && !reserved_word(s, len);
	for (size_t i = 0; i < len && plain; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!c || !(isalnum(c) || strchr("_-./:,+@%", c)))
			plain = false;
	}
	if (plain) {
		buf_add(b, s, len);
		return;
	}
	buf_addc(b, '\'');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\'')
			buf_adds(b, "'\\''");
		else
			buf_addc(b, s[i]);
	}
	buf_addc(b, '\'');
}

/* Length of the valid UTF-8 sequence at s (1-4) and its code point in *cp, or 0 if invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
	size_t len;
	unsigned min;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, min = 0x80, *cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, min = 0x800, *cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, min = 0x10000, *cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		*cp = (*cp << 6) | (s[i] & 0x3f);
	}
	if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * The length of what starts at s: a character, or a byte that is not UTF-8.
 * Sets *ctl to the control's code (0x00-0x1F, 0x7F, 0x80-0x9F) when it is a
 * control character to show, else to 0x100.
 */
static size_t char_at(const unsigned char *s, size_t n, unsigned *ctl)
{
	unsigned cp;
	size_t k = utf8_decode(s, n, &cp);
	if (!k)
		cp = s[0], k = 1; /* a stray byte: 0x80-0x9F is a C1 control to an 8-bit terminal */
	*ctl = (cp < 0x20 && cp != '\t') || (cp >= 0x7f && cp <= 0x9f) ? cp : 0x100;
	return k;
}

bool str_is_visible(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned c;
	for (size_t i = 0; i < len;) {
		if (u[i] >= 0x20 && u[i] < 0x7f) {
			i++; /* the usual case, quickly */
			continue;
		}
		i += char_at(u + i, len - i, &c);
		if (c < 0x100)
			return false;
	}
	return true;
}

void str_visible(struct buf *b, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t run = 0; /* start of the bytes not yet copied */
	buf_grow(b, len);
	for (size_t i = 0; i < len;) {
		if (u[i] >= 0x20 && u[i] < 0x7f) {
			i++;
			continue;
		}
		unsigned c;
		size_t k = char_at(u + i, len - i, &c);
		if (c < 0x100) {
			buf_add(b, s + run, i - run);
			if (c >= 0x80)
				buf_adds(b, "M-");
			c &= 0x7f;
			buf_addc(b, '^');
			buf_addc(b, c == 0x7f ? '?' : (char)(c + '@'));
			run = i + k;
		}
		i += k;
	}
	buf_add(b, s + run, len - run);
}

size_t str_typo_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 64;
	/* the optimal string alignment distance: three rows of the Levenshtein table */
	size_t rows[3][65];
	size_t *pp = rows[0], *prev = rows[1], *cur = rows[2];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
			size_t m = sub < del ? sub : del;
			m = m < ins ? m : ins;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < m)
				m = pp[j - 2] + 1;
			cur[j] = m;
		}
		size_t *t = pp;
		pp = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb];
}

const char *closest_name(const char *key, const char *const *set, size_t n)
{
	const char *best = NULL;
	size_t bd = 3;
	for (size_t i = 0; i < n; i++) {
		size_t dist = str_typo_distance(key, set[i]);
		size_t lim = strlen(set[i]) <= 3 ? 1 : 2;
		/* on a tie, a name of key's length: "rusn" is a swap from "runs", not a letter more than "run" */
		if (dist <= lim && (dist < bd || (dist == bd && strlen(set[i]) == strlen(key) &&
						  strlen(best) != strlen(key)))) {
			bd = dist;
			best = set[i];
		}
	}
	return best;
}

char *str_slug(const char *name)
{
	struct buf b = {0};
	bool dash = false;
	for (const char *p = name; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (isalnum(c) || c == '_') {
			if (dash && b.len)
				buf_addc(&b, '-');
			dash = false;
			buf_addc(&b, (char)tolower(c));
		} else {
			dash = true;
		}
	}
	return buf_detach(&b);
}

bool str_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (int)n;
}

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned min;
	unsigned cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2, min = 0x80, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, min = 0x800, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}
