/*
 * sshconfig.c — the part of ~/.ssh/config that baton reads to resolve a host
 * name the inventory does not list (plan-format.md section 7): `Host` blocks
 * with their patterns (`*`, `?`, negation with `!`), `Match all`, and the
 * keywords HostName, User, Port, IdentityFile and ProxyJump. As in OpenSSH,
 * keywords are case-insensitive, `Key value` and `Key=value` both work,
 * values may be double-quoted, and the first value found wins (IdentityFile
 * accumulates). Other `Match` blocks never apply; `Include` and every other
 * keyword are ignored.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plan/internal.h"

#define SSHCFG_MAX_FILE (4u << 20)

enum sshcfg_key { K_HOSTNAME, K_USER, K_PORT, K_IDENTITYFILE, K_PROXYJUMP };

struct sshcfg_opt {
	enum sshcfg_key key;
	char *value;
};

/* A Host or Match block; the lines before the first one form a block that applies to every host. */
struct sshcfg_block {
	char **patterns; /* Host patterns, "!" kept */
	size_t n_patterns;
	bool all;   /* the global section, or `Match all` */
	bool never; /* a Match block with conditions baton does not evaluate */
	int line;
	struct sshcfg_opt *opts;
	size_t n_opts;
};

struct sshcfg {
	char *path;
	struct sshcfg_block *blocks;
	size_t n_blocks;
};

static const char *const key_names[] = {"hostname", "user", "port", "identityfile", "proxyjump"};

/* Splits the next argument off *p: a double-quoted string or a run of non-blanks. NULL at the end. */
static char *next_arg(const char **p)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s) {
		*p = s;
		return NULL;
	}
	const char *start = s, *end;
	if (*s == '"') {
		start = ++s;
		while (*s && *s != '"')
			s++;
		end = s;
		if (*s)
			s++;
	} else {
		while (*s && *s != ' ' && *s != '\t')
			s++;
		end = s;
	}
	*p = s;
	return xstrndup(start, (size_t)(end - start));
}

static struct sshcfg_block *new_block(struct sshcfg *c, int line)
{
	c->blocks = xrealloc(c->blocks, (c->n_blocks + 1) * sizeof *c->blocks);
	struct sshcfg_block *b = &c->blocks[c->n_blocks++];
	memset(b, 0, sizeof *b);
	b->line = line;
	return b;
}

/* `Host a b !c` */
static void parse_host_line(struct sshcfg *c, const char *rest, int line)
{
	struct sshcfg_block *b = new_block(c, line);
	char *a;
	while ((a = next_arg(&rest))) {
		b->patterns = xrealloc(b->patterns, (b->n_patterns + 1) * sizeof *b->patterns);
		b->patterns[b->n_patterns++] = a;
	}
}

/* `Match all` applies everywhere; any other Match is never taken (baton does not evaluate its criteria). */
static void parse_match_line(struct sshcfg *c, const char *rest, int line)
{
	struct sshcfg_block *b = new_block(c, line);
	char *a = next_arg(&rest), *more = next_arg(&rest);
	b->all = a && !more && !strcasecmp(a, "all");
	b->never = !b->all;
	free(a);
	free(more);
}

static bool parse_option(struct sshcfg *c, const char *kw, const char *rest, int line, struct diags *d)
{
	for (size_t k = 0; k < ARRAY_LEN(key_names); k++) {
		if (strcasecmp(kw, key_names[k]))
			continue;
		char *v = next_arg(&rest);
		if (!v) {
			diags_add(d, c->path, line, 1, "'%s' needs a value", kw);
			return false;
		}
		if (k == K_PORT) {
			char *end;
			errno = 0;
			long port = strtol(v, &end, 10);
			if (!*v || *end || errno || port < 1 || port > 65535) {
				diags_add(d, c->path, line, 1, "bad Port '%s' (1 to 65535)", v);
				free(v);
				return false;
			}
		}
		if (!c->n_blocks)
			new_block(c, 0)->all = true;
		struct sshcfg_block *b = &c->blocks[c->n_blocks - 1];
		b->opts = xrealloc(b->opts, (b->n_opts + 1) * sizeof *b->opts);
		b->opts[b->n_opts++] = (struct sshcfg_opt){(enum sshcfg_key)k, v};
		return true;
	}
	return true; /* a keyword baton has no use for */
}

/* One line: `Keyword value`, `Keyword=value` or `Keyword = value`; comments and blanks skipped. */
static bool parse_line(struct sshcfg *c, char *s, int line, struct diags *d)
{
	size_t len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		s[--len] = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s || *s == '#')
		return true;
	size_t kl = strcspn(s, " \t=");
	char *kw = xstrndup(s, kl);
	const char *rest = s + kl;
	rest += strspn(rest, " \t");
	if (*rest == '=')
		rest++;
	bool ok = true;
	if (!strcasecmp(kw, "host"))
		parse_host_line(c, rest, line);
	else if (!strcasecmp(kw, "match"))
		parse_match_line(c, rest, line);
	else
		ok = parse_option(c, kw, rest, line, d);
	free(kw);
	return ok;
}

struct sshcfg *sshcfg_load(const char *path, struct diags *d)
{
	struct sshcfg *c = xcalloc(1, sizeof *c);
	c->path = xstrdup(path);
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT || errno == ENOTDIR)
			return c;
		diags_add(d, path, 0, 0, "cannot open: %s", strerror(errno));
		sshcfg_free(c);
		return NULL;
	}
	char *line = NULL;
	size_t cap = 0, total = 0;
	ssize_t n;
	bool ok = true;
	for (int no = 1; (n = getline(&line, &cap, f)) >= 0; no++) {
		total += (size_t)n;
		if (total > SSHCFG_MAX_FILE) {
			diags_add(d, path, 0, 0, "file is larger than %u MiB", SSHCFG_MAX_FILE >> 20);
			ok = false;
			break;
		}
		if (memchr(line, '\0', (size_t)n)) {
			diags_add(d, path, no, 1, "a NUL byte in the file");
			ok = false;
			break;
		}
		ok &= parse_line(c, line, no, d);
	}
	if (ferror(f)) {
		diags_add(d, path, 0, 0, "cannot read: %s", strerror(errno));
		ok = false;
	}
	free(line);
	fclose(f);
	if (!ok) {
		sshcfg_free(c);
		return NULL;
	}
	return c;
}

/* ssh's wildcards: `*` any run, `?` one character; case-insensitive. */
static bool wild_match(const char *pat, const char *s)
{
	for (; *pat; pat++, s++) {
		if (*pat == '*') {
			while (pat[1] == '*')
				pat++;
			if (!pat[1])
				return true;
			for (; *s; s++)
				if (wild_match(pat + 1, s))
					return true;
			return false;
		}
		if (!*s || (*pat != '?' && tolower((unsigned char)*pat) != tolower((unsigned char)*s)))
			return false;
	}
	return !*s;
}

/* True when a Host block applies to name; *named when a pattern other than a bare * matched. */
static bool block_matches(const struct sshcfg_block *b, const char *name, bool *named)
{
	*named = false;
	if (b->all || b->never)
		return b->all;
	bool any = false;
	for (size_t i = 0; i < b->n_patterns; i++) {
		const char *pat = b->patterns[i];
		bool neg = pat[0] == '!';
		if (!wild_match(neg ? pat + 1 : pat, name))
			continue;
		if (neg) {
			*named = false;
			return false; /* a negated match rules the block out whatever else matched */
		}
		any = true;
		*named |= strcmp(pat, "*") != 0;
	}
	return any;
}

static void take(char **dst, const char *v)
{
	if (!*dst)
		*dst = xstrdup(v);
}

void sshcfg_lookup(const struct sshcfg *c, const char *name, struct sshcfg_host *out)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; c && i < c->n_blocks; i++) {
		const struct sshcfg_block *b = &c->blocks[i];
		bool named;
		if (!block_matches(b, name, &named))
			continue;
		if (named && !out->named) {
			out->named = true;
			out->line = b->line;
		}
		for (size_t k = 0; k < b->n_opts; k++) {
			const struct sshcfg_opt *o = &b->opts[k];
			switch (o->key) {
			case K_HOSTNAME:
				take(&out->hostname, o->value);
				break;
			case K_USER:
				take(&out->user, o->value);
				break;
			case K_PORT:
				if (!out->port)
					out->port = atoi(o->value); /* checked when read */
				break;
			case K_PROXYJUMP:
				take(&out->proxyjump, o->value);
				break;
			case K_IDENTITYFILE:
				out->identities =
					xrealloc(out->identities, (out->n_identities + 1) * sizeof *out->identities);
				out->identities[out->n_identities++] = xstrdup(o->value);
				break;
			}
		}
	}
}

void sshcfg_host_free(struct sshcfg_host *h)
{
	free(h->hostname);
	free(h->user);
	free(h->proxyjump);
	for (size_t i = 0; i < h->n_identities; i++)
		free(h->identities[i]);
	free(h->identities);
	memset(h, 0, sizeof *h);
}

void sshcfg_free(struct sshcfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_blocks; i++) {
		struct sshcfg_block *b = &c->blocks[i];
		for (size_t k = 0; k < b->n_patterns; k++)
			free(b->patterns[k]);
		free(b->patterns);
		for (size_t k = 0; k < b->n_opts; k++)
			free(b->opts[k].value);
		free(b->opts);
	}
	free(c->blocks);
	free(c->path);
	free(c);
}

const char *sshcfg_path(const struct sshcfg *c)
{
	return c->path;
}

char *sshcfg_expand(const char *s, const struct sshcfg_tokens *t)
{
	struct buf b = {0};
	buf_add(&b, "", 0);
	if (s[0] == '~' && (s[1] == '/' || !s[1]) && t->home) {
		buf_adds(&b, t->home);
		s++;
	}
	for (; *s; s++) {
		if (*s != '%' || !s[1]) {
			buf_addc(&b, *s);
			continue;
		}
		char port[16];
		snprintf(port, sizeof port, "%d", t->port);
		const char *v = NULL;
		switch (s[1]) {
		case '%': v = "%"; break;
		case 'd': v = t->home; break;
		case 'u': v = t->local_user; break;
		case 'h': v = t->host; break;
		case 'n': v = t->name; break;
		case 'r': v = t->user; break;
		case 'p': v = t->port ? port : NULL; break;
		default: break;
		}
		if (!v) {
			buf_addc(&b, *s); /* unknown or unavailable: kept as written */
			continue;
		}
		buf_adds(&b, v);
		s++;
	}
	return buf_detach(&b);
}
