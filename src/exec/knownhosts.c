/*
 * knownhosts.c — reads a known_hosts file the way OpenSSH's hostfile.c does,
 * for ssh.c's host-key check. Every line is read, whatever its length; a
 * line that cannot be used is skipped and reported (FILE:LINE), never a
 * reason to stop reading. Keys are compared as blobs, names as OpenSSH
 * matches them: pattern lists with * ? and !, and |1|salt|hash names
 * (HMAC-SHA1, computed here so nothing depends on libssh2's parser).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/knownhosts.h"
#include "util/util.h"

#define WARN_MAX 10       /* skipped lines reported one by one; then a count */
#define PATTERN_MAX 1024  /* OpenSSH's limit for one pattern of a list */

struct kh_entry {
	char *names;             /* the host field: a pattern list, or a hashed name */
	bool hashed;             /* names is |1|salt|hash: see salt and hash */
	unsigned char salt[20], hash[20];
	bool revoked;            /* an @revoked line */
	char *type;              /* the key type, as the line names it */
	unsigned char *key;      /* the key blob (SSH wire format) */
	size_t key_len;
	long line;
};

struct exec_kh {
	char *path;
	struct kh_entry *v;
	size_t n, cap;
	long lines;              /* lines read (appends continue the count) */
	size_t n_skipped;
	long first_skipped;
};

/* ---- SHA-1 and HMAC-SHA1 (FIPS 180-4, RFC 2104) ---- */

struct sha1 {
	uint32_t h[5];
	uint64_t len;
	unsigned char buf[64];
	size_t n;
};

static uint32_t rol(uint32_t x, int n)
{
	return (x << n) | (x >> (32 - n));
}

/* Mixes one 64-byte block into the state. */
static void sha1_block(uint32_t h[5], const unsigned char *p)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
		       p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5A827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ED9EBA1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8F1BBCDC;
		} else {
			f = b ^ c ^ d;
			k = 0xCA62C1D6;
		}
		uint32_t t = rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

static void sha1_init(struct sha1 *s)
{
	static const uint32_t h0[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
	memcpy(s->h, h0, sizeof h0);
	s->len = 0;
	s->n = 0;
}

static void sha1_update(struct sha1 *s, const void *data, size_t len)
{
	const unsigned char *p = data;
	s->len += len;
	while (len) {
		size_t take = 64 - s->n < len ? 64 - s->n : len;
		memcpy(s->buf + s->n, p, take);
		s->n += take;
		p += take;
		len -= take;
		if (s->n == 64) {
			sha1_block(s->h, s->buf);
			s->n = 0;
		}
	}
}

static void sha1_final(struct sha1 *s, unsigned char out[20])
{
	uint64_t bits = s->len * 8;
	unsigned char pad = 0x80;
	sha1_update(s, &pad, 1);
	pad = 0;
	while (s->n != 56)
		sha1_update(s, &pad, 1);
	unsigned char be[8];
	for (int i = 0; i < 8; i++)
		be[i] = (unsigned char)(bits >> (56 - 8 * i));
	sha1_update(s, be, 8);
	for (int i = 0; i < 5; i++)
		for (int j = 0; j < 4; j++)
			out[4 * i + j] = (unsigned char)(s->h[i] >> (24 - 8 * j));
}

void exec_kh_hmac_sha1(const unsigned char *key, size_t klen, const void *data, size_t len, unsigned char out[20])
{
	unsigned char k[64] = {0}, pad[64], inner[20];
	struct sha1 s;
	if (klen > 64) {
		sha1_init(&s);
		sha1_update(&s, key, klen);
		sha1_final(&s, k);
	} else if (klen) {
		memcpy(k, key, klen);
	}
	for (int i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	sha1_init(&s);
	sha1_update(&s, pad, 64);
	sha1_update(&s, data, len);
	sha1_final(&s, inner);
	for (int i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	sha1_init(&s);
	sha1_update(&s, pad, 64);
	sha1_update(&s, inner, 20);
	sha1_final(&s, out);
}

/* ---- base64 ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
	const char *p = c ? strchr(b64chars, c) : NULL;
	return p ? (int)(p - b64chars) : -1;
}

/* Decodes n characters of base64 (padding optional); NULL if they are not base64. Caller frees. */
static unsigned char *b64_decode(const char *s, size_t n, size_t *out_len)
{
	if (n && s[n - 1] == '=')
		n--;
	if (n && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return NULL;
	unsigned char *out = xmalloc(n / 4 * 3 + 3);
	size_t o = 0;
	uint32_t acc = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value((unsigned char)s[i]);
		if (v < 0) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			out[o++] = (unsigned char)(acc >> 16);
			out[o++] = (unsigned char)(acc >> 8);
			out[o++] = (unsigned char)acc;
			acc = 0;
		}
	}
	if (n % 4 == 2) {
		out[o++] = (unsigned char)(acc >> 4);
	} else if (n % 4 == 3) {
		out[o++] = (unsigned char)(acc >> 10);
		out[o++] = (unsigned char)(acc >> 2);
	}
	*out_len = o;
	return out;
}

static void b64_encode(struct buf *b, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		buf_addc(b, b64chars[v >> 18 & 63]);
		buf_addc(b, b64chars[v >> 12 & 63]);
		buf_addc(b, i + 1 < n ? b64chars[v >> 6 & 63] : '=');
		buf_addc(b, i + 2 < n ? b64chars[v & 63] : '=');
	}
}

/* ---- host names and patterns ---- */

/* Does s match the glob p (* any run, ? any one character)? */
static bool glob_match(const char *s, const char *p)
{
	const char *star = NULL, *retry = NULL;
	while (*s) {
		if (*p == '*') {
			star = p++;
			retry = s;
		} else if (*p && (*p == '?' || *p == *s)) {
			p++;
			s++;
		} else if (star) {
			p = star + 1;
			s = ++retry;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return !*p;
}

int exec_kh_match_list(const char *host, const char *patterns)
{
	char sub[PATTERN_MAX];
	int positive = 0;
	for (const char *p = patterns; *p;) {
		bool negated = *p == '!';
		if (negated)
			p++;
		size_t n = 0;
		for (; *p && *p != ','; p++) {
			if (n >= sizeof sub - 1)
				return 0; /* as OpenSSH: a pattern too long matches nothing */
			sub[n++] = (char)tolower((unsigned char)*p);
		}
		sub[n] = '\0';
		if (*p == ',')
			p++;
		if (glob_match(host, sub)) {
			if (negated)
				return -1;
			positive = 1;
		}
	}
	return positive;
}

/* The name a host has in known_hosts, lower-case (caller frees). */
static char *lookup_name(const char *address, int port)
{
	char *s = port == 22 ? xstrdup(address) : xasprintf("[%s]:%d", address, port);
	for (char *p = s; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

static bool entry_names(const struct kh_entry *e, const char *name)
{
	if (!e->hashed)
		return exec_kh_match_list(name, e->names) == 1;
	unsigned char h[20];
	exec_kh_hmac_sha1(e->salt, sizeof e->salt, name, strlen(name), h);
	return !memcmp(h, e->hash, sizeof h);
}

/* ---- reading lines ---- */

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static size_t token_len(const char *p)
{
	return strcspn(p, " \t\r");
}

/* Decodes |1|salt|hash into e; false if it is not a hashed name OpenSSH would accept. */
static bool parse_hashed(struct kh_entry *e, const char *s, size_t n)
{
	if (n < 3 || memcmp(s, "|1|", 3))
		return false;
	const char *salt = s + 3, *bar = memchr(salt, '|', n - 3);
	if (!bar)
		return false;
	size_t sl = 0, hl = 0;
	unsigned char *sd = b64_decode(salt, (size_t)(bar - salt), &sl);
	unsigned char *hd = b64_decode(bar + 1, n - (size_t)(bar + 1 - s), &hl);
	bool ok = sd && hd && sl == 20 && hl == 20;
	if (ok) {
		memcpy(e->salt, sd, 20);
		memcpy(e->hash, hd, 20);
		e->hashed = true;
	}
	free(sd);
	free(hd);
	return ok;
}

/* The type name inside a key blob must be the one the line gives. */
static bool blob_has_type(const unsigned char *k, size_t n, const char *type, size_t tl)
{
	if (n < 4)
		return false;
	uint32_t l = (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3];
	return l == tl && n - 4 >= l && !memcmp(k + 4, type, tl);
}

/*
 * Parses the key part of a line ("TYPE BASE64 [comment]") into e.
 * NULL when it is usable, else why not (static text).
 */
static const char *parse_key(struct kh_entry *e, const char *p)
{
	size_t tl = token_len(p);
	if (!tl || *p == '#')
		return "no key after the host names";
	if (strspn(p, "0123456789") == tl)
		return "an SSH-1 RSA key, which OpenSSH no longer reads";
	const char *data = skip_ws(p + tl);
	size_t dl = token_len(data);
	if (!dl)
		return "no key data after the key type";
	size_t kl = 0;
	unsigned char *k = b64_decode(data, dl, &kl);
	if (!k)
		return "the key is not valid base64";
	if (!blob_has_type(k, kl, p, tl)) {
		free(k);
		return "the key data is not of the type the line names";
	}
	e->type = xstrndup(p, tl);
	e->key = k;
	e->key_len = kl;
	return NULL;
}

enum line_kind { LINE_NONE, LINE_ENTRY, LINE_SKIP, LINE_CA };

/*
 * Reads one line (no newline) into e, as hostkeys_foreach_file does: an
 * optional marker, the host names, the key. LINE_SKIP sets *why.
 */
static enum line_kind parse_line(struct kh_entry *e, const char *line, const char **why)
{
	const char *p = skip_ws(line);
	if (!*p || *p == '#')
		return LINE_NONE;
	bool ca = false;
	if (*p == '@') {
		size_t ml = token_len(p);
		if (ml == 8 && !memcmp(p, "@revoked", 8))
			e->revoked = true;
		else if (ml == 15 && !memcmp(p, "@cert-authority", 15))
			ca = true;
		else
			return *why = "an unknown marker (only @revoked and @cert-authority exist)", LINE_SKIP;
		p = skip_ws(p + ml);
		if (*p == '@')
			return *why = "more than one marker", LINE_SKIP;
	}
	size_t hl = token_len(p);
	if (!hl || !p[hl])
		return *why = "a host name alone, with no key", LINE_SKIP;
	if (*p == '|' && !parse_hashed(e, p, hl))
		return *why = "a hashed host name that is not |1|SALT|HASH (20-byte salt and hash, base64)", LINE_SKIP;
	if ((*why = parse_key(e, skip_ws(p + hl))))
		return LINE_SKIP;
	if (ca)
		return LINE_CA;
	e->names = xstrndup(p, hl);
	return LINE_ENTRY;
}

static void entry_free(struct kh_entry *e)
{
	free(e->names);
	free(e->type);
	free(e->key);
}

/* Records a skipped line; the first WARN_MAX are reported one by one. */
static void skipped(struct exec_kh *kh, long line, const char *why, exec_kh_warn_fn *warn, void *ud)
{
	if (!kh->n_skipped++)
		kh->first_skipped = line;
	if (!warn || kh->n_skipped > WARN_MAX)
		return;
	char *msg = xasprintf("%s:%ld: %s; line skipped", kh->path, line, why);
	warn(ud, msg);
	free(msg);
}

/* Adds a line's entry (or skips it); takes the line as read. */
static void take_line(struct exec_kh *kh, const char *line, exec_kh_warn_fn *warn, void *ud)
{
	struct kh_entry e = {.line = ++kh->lines};
	const char *why = NULL;
	switch (parse_line(&e, line, &why)) {
	case LINE_ENTRY:
		if (kh->n == kh->cap) {
			kh->cap = kh->cap ? kh->cap * 2 : 16;
			kh->v = xrealloc(kh->v, kh->cap * sizeof *kh->v);
		}
		kh->v[kh->n++] = e;
		return;
	case LINE_CA:
		why = "@cert-authority (host certificates) is not supported";
		/* fall through */
	case LINE_SKIP:
		skipped(kh, e.line, why, warn, ud);
		break;
	case LINE_NONE:
		break;
	}
	entry_free(&e);
}

/* Reads every line of f; 0, or the errno of a read error. */
static int read_lines(struct exec_kh *kh, FILE *f, exec_kh_warn_fn *warn, void *ud)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	errno = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (memchr(line, '\0', (size_t)n))
			skipped(kh, ++kh->lines, "a NUL byte in the line", warn, ud);
		else
			take_line(kh, line, warn, ud);
		errno = 0;
	}
	int e = ferror(f) ? (errno ? errno : EIO) : 0;
	free(line);
	if (!e && kh->n_skipped > WARN_MAX && warn) {
		char *msg = xasprintf("%s: %zu more lines skipped", kh->path, kh->n_skipped - WARN_MAX);
		warn(ud, msg);
		free(msg);
	}
	return e;
}

/* Opens path for reading: NULL with *e = 0 when it does not exist, else with the errno. */
static FILE *open_file(const char *path, int *e)
{
	*e = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		*e = errno == ENOENT ? 0 : errno;
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) != 0)
		*e = errno;
	else if (S_ISDIR(st.st_mode))
		*e = EISDIR;
	else if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
		*e = EINVAL; /* reading it could wait forever */
	else if (fcntl(fd, F_SETFL, 0) != 0)
		*e = errno;
	FILE *f = *e ? NULL : fdopen(fd, "r");
	if (!f) {
		if (!*e)
			*e = errno;
		close(fd);
	}
	return f;
}

struct exec_kh *exec_kh_load(const char *path, exec_kh_warn_fn *warn, void *ud, char **err)
{
	int e;
	FILE *f = open_file(path, &e);
	if (!f && e) {
		*err = xasprintf("cannot read the known hosts file %s: %s", path,
				 e == EINVAL ? "not a regular file" : strerror(e));
		return NULL;
	}
	struct exec_kh *kh = xcalloc(1, sizeof *kh);
	kh->path = xstrdup(path);
	if (!f)
		return kh; /* no file: nothing is known yet */
	e = read_lines(kh, f, warn, ud);
	fclose(f);
	if (e) {
		*err = xasprintf("cannot read the known hosts file %s: %s", path, strerror(e));
		exec_kh_free(kh);
		return NULL;
	}
	return kh;
}

void exec_kh_free(struct exec_kh *kh)
{
	if (!kh)
		return;
	for (size_t i = 0; i < kh->n; i++)
		entry_free(&kh->v[i]);
	free(kh->v);
	free(kh->path);
	free(kh);
}

/* ---- lookups ---- */

static bool same_key(const struct kh_entry *e, const unsigned char *key, size_t len)
{
	return e->key_len == len && !memcmp(e->key, key, len);
}

/* OpenSSH's check_hostkeys_by_key_or_type for one name: revoked first, then equal, then any other key. */
static enum exec_kh_status check_name(const struct exec_kh *kh, const char *name, const unsigned char *key,
				      size_t len, struct exec_kh_found *found)
{
	const struct kh_entry *other = NULL;
	for (size_t i = 0; i < kh->n; i++) {
		const struct kh_entry *e = &kh->v[i];
		if (!e->revoked || !same_key(e, key, len) || !entry_names(e, name))
			continue;
		found->line = e->line;
		return EXEC_KH_REVOKED;
	}
	for (size_t i = 0; i < kh->n; i++) {
		const struct kh_entry *e = &kh->v[i];
		if (e->revoked || !entry_names(e, name))
			continue;
		if (same_key(e, key, len)) {
			found->line = e->line;
			return EXEC_KH_MATCH;
		}
		if (!other)
			other = e;
	}
	if (!other)
		return EXEC_KH_UNKNOWN;
	found->line = other->line;
	snprintf(found->type, sizeof found->type, "%s", other->type);
	return EXEC_KH_CHANGED;
}

enum exec_kh_status exec_kh_check(const struct exec_kh *kh, const char *address, int port,
				  const unsigned char *key, size_t len, struct exec_kh_found *found)
{
	*found = (struct exec_kh_found){0};
	char *name = lookup_name(address, port);
	enum exec_kh_status st = check_name(kh, name, key, len, found);
	free(name);
	if (st != EXEC_KH_UNKNOWN || port == 22)
		return st;
	/* as ssh(1): an entry for the bare address counts if it holds this very key;
	 * baton also refuses a key revoked under that name */
	struct exec_kh_found bare = {0};
	name = lookup_name(address, 22);
	enum exec_kh_status b = check_name(kh, name, key, len, &bare);
	free(name);
	if (b == EXEC_KH_MATCH || b == EXEC_KH_REVOKED) {
		*found = bare;
		return b;
	}
	return st;
}

/* Appends e's type to the list unless it is there already. */
static void add_type(struct buf *b, const char *type)
{
	size_t tl = strlen(type);
	for (const char *p = b->data; p && *p;) {
		size_t l = strcspn(p, ",");
		if (l == tl && !memcmp(p, type, tl))
			return;
		p += l + (p[l] == ',');
	}
	if (b->len)
		buf_addc(b, ',');
	buf_adds(b, type);
}

char *exec_kh_known_types(const struct exec_kh *kh, const char *address, int port)
{
	struct buf b = {0};
	buf_adds(&b, "");
	for (int pass = 0; pass < (port == 22 ? 1 : 2); pass++) {
		char *name = lookup_name(address, pass ? 22 : port);
		for (size_t i = 0; i < kh->n; i++)
			if (!kh->v[i].revoked && entry_names(&kh->v[i], name))
				add_type(&b, kh->v[i].type);
		free(name);
	}
	return buf_detach(&b);
}

size_t exec_kh_skipped(const struct exec_kh *kh, long *first)
{
	*first = kh->first_skipped;
	return kh->n_skipped;
}

/* ---- accept-new ---- */

/* Writes all of s to fd, after a newline if the file does not end with one. */
static int append_line(int fd, const char *s, size_t len)
{
	struct stat st;
	char last = '\n';
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
		return errno ? errno : EIO;
	struct buf b = {0};
	if (last != '\n')
		buf_addc(&b, '\n');
	buf_add(&b, s, len);
	size_t off = 0;
	int e = 0;
	while (off < b.len) {
		ssize_t w = write(fd, b.data + off, b.len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			e = w < 0 ? errno : EIO;
			break;
		}
		off += (size_t)w;
	}
	buf_free(&b);
	return e;
}

char *exec_kh_append(struct exec_kh *kh, const char *address, int port, const unsigned char *key, size_t len)
{
	/* what ssh(1) will not write either: a name that would read back as patterns or another field */
	for (const char *p = address; *p; p++)
		if ((unsigned char)*p <= ' ' || strchr(",@?*!#[]|'\"\\", *p) || *p == 0x7f)
			return xasprintf("cannot record the host key: the address '%s' cannot be written in a known hosts "
					 "file",
					 address);
	struct buf b = {0};
	if (port == 22)
		buf_adds(&b, address);
	else
		buf_printf(&b, "[%s]:%d", address, port);
	buf_addc(&b, ' ');
	/* the type, as the blob itself names it */
	size_t tl = len >= 4 ? ((size_t)key[0] << 24 | (size_t)key[1] << 16 | (size_t)key[2] << 8 | key[3]) : 0;
	bool ok = len >= 4 && tl && tl <= len - 4 && tl < 64;
	for (size_t i = 0; ok && i < tl; i++)
		ok = isalnum(key[4 + i]) || (key[4 + i] && strchr("@._+-", key[4 + i]));
	if (!ok) {
		buf_free(&b);
		return xstrdup("cannot record the host key: the server's key blob is malformed");
	}
	buf_add(&b, key + 4, tl);
	buf_addc(&b, ' ');
	b64_encode(&b, key, len);
	buf_addc(&b, '\n');
	int fd = open(kh->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	int e = fd < 0 ? errno : append_line(fd, b.data, b.len);
	if (fd >= 0 && close(fd) != 0 && !e)
		e = errno;
	if (e) {
		buf_free(&b);
		return xasprintf("cannot add the host key to %s: %s", kh->path, strerror(e));
	}
	b.data[--b.len] = '\0';
	take_line(kh, b.data, NULL, NULL);
	buf_free(&b);
	return NULL;
}
