/*
 * util: small shared helpers used by every stage of the flow — checked
 * allocation, growable buffers, diagnostics with source locations, durations,
 * clocks, shell quoting and string distance for "did you mean" hints.
 */
#ifndef BATON_UTIL_H
#define BATON_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation that never returns NULL: on exhaustion it reports and exits 70. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated printf-formatted string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable byte buffer; data is always NUL-terminated when len > 0 or cap > 0. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};
void buf_grow(struct buf *b, size_t extra);

/* Appends are inline: output and events go through them byte by byte. */
static inline void buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap)
		buf_grow(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static inline void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static inline void buf_addc(struct buf *b, char c)
{
	if (b->len + 2 > b->cap)
		buf_grow(b, 1);
	b->data[b->len++] = c;
	b->data[b->len] = '\0';
}
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_reset(struct buf *b);
/* Hands the buffer's string to the caller (never NULL) and empties b. */
char *buf_detach(struct buf *b);
void buf_free(struct buf *b);

/* A diagnostic: an error tied to a place in a file. */
struct diag {
	char *file;
	int line;
	int col;
	char *msg;
};

/* An ordered list of diagnostics; the loader collects every error here. */
struct diags {
	struct diag *v;
	size_t n;
	size_t cap;
};
void diags_add(struct diags *d, const char *file, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Prints every diagnostic as FILE:LINE:COL: error: MSG, in source order. */
void diags_print(const struct diags *d, FILE *out);
void diags_free(struct diags *d);

/* Parses "250ms", "10s", "5m", "1h30m" or a bare number of seconds. */
bool duration_parse(const char *s, uint64_t *ms);
/* Formats ms for humans: "250ms", "1.5s", "2m05s", "1h02m". */
void duration_format(uint64_t ms, char *out, size_t outlen);

/* Milliseconds on the monotonic clock. */
uint64_t clock_ms(void);
/* The wall clock as an ISO 8601 UTC string with milliseconds (24 chars + NUL). */
void clock_iso(char out[32]);

/* Appends s to b quoted as exactly one POSIX shell word. */
void shell_quote(struct buf *b, const char *s, size_t len);

/*
 * Appends s to b with every control character made visible, as cat -v
 * shows it, so that text from outside cannot drive a terminal: C0 controls
 * but tab as ^X (ESC is ^[, CR ^M), DEL as ^?, and C1 controls (a raw byte
 * 0x80-0x9F, or U+0080-U+009F in UTF-8) as M-^X. Everything else is kept.
 */
void str_visible(struct buf *b, const char *s, size_t len);
/* Length of the valid UTF-8 sequence at s (1-4; n bytes are there), or 0 if it is not one. */
size_t utf8_seq_len(const unsigned char *s, size_t n);
/* True when str_visible would change nothing in s. */
bool str_is_visible(const char *s, size_t len);

/*
 * Edit distance between two short strings (for "did you mean"), where
 * swapping two neighbours counts as one edit ("rnu" is 1 from "run").
 */
size_t str_typo_distance(const char *a, const char *b);
/*
 * The member of set[0..n) closest to key, for "did you mean": at most 2
 * typos away (1 for names of 3 characters or fewer); of the closest, the
 * first of key's length, else the first; NULL when none is that close.
 */
const char *closest_name(const char *key, const char *const *set, size_t n);
/* Lower-case slug of a display name: [a-z0-9_-], runs of others become '-'. */
char *str_slug(const char *name);
bool str_has_prefix(const char *s, const char *prefix);

/* Number of online CPUs, at least 1. */
int cpu_count(void);

#endif
