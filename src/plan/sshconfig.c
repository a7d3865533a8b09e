/*
 * sshconfig.c — ~/.ssh/config as OpenSSH reads it, for the keywords baton
 * uses to resolve a host name the inventory does not list (plan-format.md
 * section 7): HostName, User, Port, IdentityFile and ProxyJump.
 *
 * As in OpenSSH (readconf.c): keywords are case-insensitive, `Key value`,
 * `Key=value` and `Key = value` all work, values may be double-quoted, and
 * the first value found wins (IdentityFile accumulates, duplicates dropped).
 * `Host` patterns (`*`, `?`, `!` negation) match the name as given,
 * case-sensitively. `Match` takes `all` (alone), `host`, `originalhost`,
 * `user` and `localuser`, each with a comma list of patterns (`!` negates)
 * and `!` before the criterion, several criteria ANDed; `host` sees the
 * HostName set so far (%h expanded), `user` the User set so far. A criterion
 * baton cannot evaluate (exec, canonical, final, ...) is an error naming the
 * file and line. `Include` takes paths and globs, relative ones under
 * ~/.ssh, nested at most 16 deep; an Include inside a Host or Match block
 * applies only when that block does. Includes are read when the file is
 * loaded; blocks are evaluated for each name looked up.
 */
#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include "plan/internal.h"

#define SSHCFG_MAX_FILE (4u << 20)
#define SSHCFG_MAX_DEPTH 16 /* OpenSSH's READCONF_MAX_DEPTH */

enum sshcfg_key { K_HOSTNAME, K_USER, K_PORT, K_IDENTITYFILE, K_PROXYJUMP };
static const char *const key_names[] = {"hostname", "user", "port", "identityfile", "proxyjump"};

enum crit_kind { C_HOST, C_ORIGINALHOST, C_USER, C_LOCALUSER };
static const char *const crit_names[] = {"host", "originalhost", "user", "localuser"};

struct crit {
	enum crit_kind kind;
	bool neg;
	char *list; /* comma list of patterns */
};

enum item_kind { I_HOST, I_MATCH, I_OPT, I_INCLUDE };

struct item {
	enum item_kind kind;
	int line;
	char **args; /* I_HOST: patterns, "!" kept */
	size_t n_args;
	struct crit *crits; /* I_MATCH; none: `Match all` */
	size_t n_crits;
	bool match_neg_all; /* `Match !all` */
	enum sshcfg_key key; /* I_OPT */
	char *value;
	size_t *files; /* I_INCLUDE: indices into sshcfg.files */
	size_t n_files;
};

struct cfile {
	char *path;
	struct item *items;
	size_t n_items;
};

struct sshcfg {
	char *path;
	char *home;
	struct cfile *files; /* [0] is the top file (empty when it does not exist) */
	size_t n_files;
};

/* Splits the next argument off *p: a double-quoted string or a run of non-blanks (and '=' when eq). */
static char *next_arg_sep(const char **p, bool eq)
{
	const char *s = *p;
	while (*s == ' ' || *s == '\t' || (eq && *s == '='))
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
		while (*s && *s != ' ' && *s != '\t' && !(eq && *s == '='))
			s++;
		end = s;
	}
	*p = s;
	return xstrndup(start, (size_t)(end - start));
}

static char *next_arg(const char **p)
{
	return next_arg_sep(p, false);
}

static struct item *new_item(struct sshcfg *c, size_t f, enum item_kind kind, int line)
{
	struct cfile *cf = &c->files[f];
	cf->items = xrealloc(cf->items, (cf->n_items + 1) * sizeof *cf->items);
	struct item *it = &cf->items[cf->n_items++];
	memset(it, 0, sizeof *it);
	it->kind = kind;
	it->line = line;
	return it;
}

static void add_arg(struct item *it, char *a)
{
	it->args = xrealloc(it->args, (it->n_args + 1) * sizeof *it->args);
	it->args[it->n_args++] = a;
}

/* `Host a b !c` */
static bool parse_host_line(struct sshcfg *c, size_t f, const char *rest, int line, struct diags *d)
{
	struct item *it = new_item(c, f, I_HOST, line);
	char *a;
	while ((a = next_arg(&rest))) {
		if (*a == '#') { /* a comment ends the line */
			free(a);
			break;
		}
		add_arg(it, a);
	}
	if (!it->n_args) {
		diags_add(d, c->files[f].path, line, 1, "'Host' needs at least one pattern");
		return false;
	}
	return true;
}

/* `Match all`, or criteria: [!]host|originalhost|user|localuser LIST ... */
static bool parse_match_line(struct sshcfg *c, size_t f, const char *rest, int line, struct diags *d)
{
	const char *path = c->files[f].path;
	struct item *it = new_item(c, f, I_MATCH, line);
	bool all = false, ok = true;
	size_t n_words = 0;
	char *a;
	while (ok && (a = next_arg_sep(&rest, true))) {
		if (*a == '#') {
			free(a);
			break;
		}
		n_words++;
		bool neg = a[0] == '!';
		const char *name = a + neg;
		if (!strcasecmp(name, "all")) {
			all = true;
			it->match_neg_all = neg;
		} else {
			size_t k = 0;
			while (k < ARRAY_LEN(crit_names) && strcasecmp(name, crit_names[k]))
				k++;
			if (k == ARRAY_LEN(crit_names)) {
				diags_add(d, path, line, 1,
					  "Match criterion '%s' is not supported by baton (it evaluates all, host, "
					  "originalhost, user and localuser); this block cannot be resolved",
					  name);
				ok = false;
			} else {
				char *list = next_arg_sep(&rest, true);
				if (!list || *list == '#') {
					diags_add(d, path, line, 1, "Match criterion '%s' needs a list of patterns", name);
					free(list);
					ok = false;
				} else {
					it->crits = xrealloc(it->crits, (it->n_crits + 1) * sizeof *it->crits);
					it->crits[it->n_crits++] = (struct crit){(enum crit_kind)k, neg, list};
				}
			}
		}
		free(a);
	}
	if (ok && !n_words) {
		diags_add(d, path, line, 1, "'Match' needs a criterion (all, host, originalhost, user, localuser)");
		ok = false;
	}
	if (ok && all && n_words > 1) {
		diags_add(d, path, line, 1, "Match 'all' cannot be combined with other criteria");
		ok = false;
	}
	return ok;
}

static size_t load_file(struct sshcfg *c, const char *path, int depth, bool *found, struct diags *d);

/* `Include path...`: each path (glob) read now, relative ones under ~/.ssh. */
static bool parse_include_line(struct sshcfg *c, size_t f, const char *rest, int line, int depth, struct diags *d)
{
	struct item *it = new_item(c, f, I_INCLUDE, line);
	size_t it_index = c->files[f].n_items - 1;
	char *a;
	bool ok = true, any = false;
	while (ok && (a = next_arg(&rest))) {
		if (*a == '#') {
			free(a);
			break;
		}
		any = true;
		char *pattern;
		if (a[0] == '~' && (a[1] == '/' || !a[1]))
			pattern = xasprintf("%s%s", c->home ? c->home : "", a + 1);
		else if (a[0] == '/' || a[0] == '~')
			pattern = xstrdup(a);
		else
			pattern = xasprintf("%s/.ssh/%s", c->home ? c->home : "", a);
		free(a);
		if (depth + 1 > SSHCFG_MAX_DEPTH) {
			diags_add(d, c->files[f].path, line, 1, "Include nested more than %d files deep (%s)",
				  SSHCFG_MAX_DEPTH, pattern);
			free(pattern);
			ok = false;
			break;
		}
		glob_t g;
		memset(&g, 0, sizeof g);
		int r = glob(pattern, pattern[0] == '~' ? GLOB_TILDE : 0, NULL, &g); /* ~user/... */
		if (r && r != GLOB_NOMATCH) {
			diags_add(d, c->files[f].path, line, 1, "Include %s: cannot list the files", pattern);
			ok = false;
		}
		for (size_t i = 0; !r && ok && i < g.gl_pathc; i++) {
			bool found;
			size_t idx = load_file(c, g.gl_pathv[i], depth + 1, &found, d);
			if (idx == (size_t)-1) {
				ok = false;
				break;
			}
			it = &c->files[f].items[it_index]; /* the arrays may have moved */
			if (!found)
				continue;
			it->files = xrealloc(it->files, (it->n_files + 1) * sizeof *it->files);
			it->files[it->n_files++] = idx;
		}
		globfree(&g);
		free(pattern);
	}
	if (ok && !any) {
		diags_add(d, c->files[f].path, line, 1, "'Include' needs a path");
		ok = false;
	}
	return ok;
}

static bool parse_option(struct sshcfg *c, size_t f, const char *kw, const char *rest, int line, struct diags *d)
{
	const char *path = c->files[f].path;
	for (size_t k = 0; k < ARRAY_LEN(key_names); k++) {
		if (strcasecmp(kw, key_names[k]))
			continue;
		char *v = next_arg(&rest);
		if (!v || !*v || *v == '#') {
			diags_add(d, path, line, 1, "'%s' needs a value", kw);
			free(v);
			return false;
		}
		if (k == K_PORT) {
			char *end;
			errno = 0;
			long port = strtol(v, &end, 10);
			if (!*v || *end || errno || port < 1 || port > 65535) {
				diags_add(d, path, line, 1, "bad Port '%s' (1 to 65535)", v);
				free(v);
				return false;
			}
		}
		struct item *it = new_item(c, f, I_OPT, line);
		it->key = (enum sshcfg_key)k;
		it->value = v;
		return true;
	}
	return true; /* a keyword baton has no use for */
}

/* One line: `Keyword value`, `Keyword=value` or `Keyword = value`; comments and blanks skipped. */
static bool parse_line(struct sshcfg *c, size_t f, char *s, int line, int depth, struct diags *d)
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
	bool ok;
	if (!strcasecmp(kw, "host"))
		ok = parse_host_line(c, f, rest, line, d);
	else if (!strcasecmp(kw, "match"))
		ok = parse_match_line(c, f, rest, line, d);
	else if (!strcasecmp(kw, "include"))
		ok = parse_include_line(c, f, rest, line, depth, d);
	else
		ok = parse_option(c, f, kw, rest, line, d);
	free(kw);
	return ok;
}

/* Reads path into a new entry of c->files; *found false when it does not exist. (size_t)-1 on errors. */
static size_t load_file(struct sshcfg *c, const char *path, int depth, bool *found, struct diags *d)
{
	c->files = xrealloc(c->files, (c->n_files + 1) * sizeof *c->files);
	size_t f = c->n_files++;
	c->files[f] = (struct cfile){xstrdup(path), NULL, 0};
	*found = false;
	FILE *fp = fopen(path, "re");
	if (!fp) {
		if (errno == ENOENT || errno == ENOTDIR)
			return f;
		diags_add(d, path, 0, 0, "cannot open: %s", strerror(errno));
		return (size_t)-1;
	}
	*found = true;
	char *line = NULL;
	size_t cap = 0, total = 0;
	ssize_t n;
	bool ok = true;
	for (int no = 1; ok && (n = getline(&line, &cap, fp)) >= 0; no++) {
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
		ok &= parse_line(c, f, line, no, depth, d);
	}
	if (ferror(fp)) {
		diags_add(d, path, 0, 0, "cannot read: %s", strerror(errno));
		ok = false;
	}
	free(line);
	fclose(fp);
	return ok ? f : (size_t)-1;
}

struct sshcfg *sshcfg_load(const char *path, const char *home, struct diags *d)
{
	struct sshcfg *c = xcalloc(1, sizeof *c);
	c->path = xstrdup(path);
	c->home = home ? xstrdup(home) : NULL;
	bool found;
	if (load_file(c, path, 0, &found, d) == (size_t)-1) {
		sshcfg_free(c);
		return NULL;
	}
	return c;
}

/* OpenSSH's match_pattern: `*` any run, `?` one character; lower: both sides lowercased. */
static bool wild_match(const char *pat, const char *s, bool lower)
{
	for (; *pat; pat++, s++) {
		if (*pat == '*') {
			while (pat[1] == '*')
				pat++;
			if (!pat[1])
				return true;
			for (; *s; s++)
				if (wild_match(pat + 1, s, lower))
					return true;
			return false;
		}
		if (!*s)
			return false;
		if (*pat == '?')
			continue;
		int a = (unsigned char)*pat, b = (unsigned char)*s;
		if (lower) {
			a = tolower(a);
			b = tolower(b);
		}
		if (a != b)
			return false;
	}
	return !*s;
}

/* OpenSSH's match_pattern_list: 1 a positive match, -1 a negated one (which rules out), 0 none. */
static int match_list(const char *s, const char *list, bool lower)
{
	int got = 0;
	const char *p = list;
	while (*p) {
		size_t len = strcspn(p, ",");
		char *one = xstrndup(p, len);
		bool neg = one[0] == '!';
		bool m = wild_match(one + neg, s, lower);
		free(one);
		if (m) {
			if (neg)
				return -1;
			got = 1;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return got;
}

/* What a lookup knows so far, for Match and for the first-value-wins rule. */
struct lookup {
	const struct sshcfg *c;
	const char *name, *local_user;
	struct sshcfg_host *out;
};

static void take(char **dst, const char *v)
{
	if (!*dst)
		*dst = xstrdup(v);
}

/* HostName with %h and %% expanded, as OpenSSH does before Match host and in ssh.c. */
static char *expand_hostname(const char *hn, const char *name)
{
	struct buf b = {0};
	buf_add(&b, "", 0);
	for (const char *s = hn; *s; s++) {
		if (s[0] == '%' && s[1] == 'h') {
			buf_adds(&b, name);
			s++;
		} else if (s[0] == '%' && s[1] == '%') {
			buf_addc(&b, '%');
			s++;
		} else {
			buf_addc(&b, *s);
		}
	}
	return buf_detach(&b);
}

static bool eval_match(struct lookup *lk, const struct item *it)
{
	if (!it->n_crits)
		return !it->match_neg_all;
	char *host = lk->out->hostname ? expand_hostname(lk->out->hostname, lk->name) : xstrdup(lk->name);
	const char *ruser = lk->out->user ? lk->out->user : lk->local_user ? lk->local_user : "";
	bool result = true;
	for (size_t i = 0; i < it->n_crits; i++) {
		const struct crit *cr = &it->crits[i];
		bool r = false;
		switch (cr->kind) {
		case C_HOST: r = match_list(host, cr->list, true) == 1; break;
		case C_ORIGINALHOST: r = match_list(lk->name, cr->list, true) == 1; break;
		case C_USER: r = match_list(ruser, cr->list, false) == 1; break;
		case C_LOCALUSER: r = match_list(lk->local_user ? lk->local_user : "", cr->list, false) == 1; break;
		}
		if (r == cr->neg)
			result = false;
	}
	free(host);
	return result;
}

static void apply(struct lookup *lk, const struct item *it)
{
	struct sshcfg_host *out = lk->out;
	switch (it->key) {
	case K_HOSTNAME:
		take(&out->hostname, it->value);
		break;
	case K_USER:
		take(&out->user, it->value);
		break;
	case K_PORT:
		if (!out->port)
			out->port = atoi(it->value); /* checked when read */
		break;
	case K_PROXYJUMP:
		take(&out->proxyjump, it->value);
		break;
	case K_IDENTITYFILE:
		for (size_t i = 0; i < out->n_identities; i++)
			if (!strcmp(out->identities[i], it->value))
				return; /* OpenSSH drops duplicates */
		out->identities = xrealloc(out->identities, (out->n_identities + 1) * sizeof *out->identities);
		out->identities[out->n_identities++] = xstrdup(it->value);
		break;
	}
}

/* Walks one file as OpenSSH's read_config_file_depth does; never: nothing in it can apply. */
static void walk(struct lookup *lk, size_t f, bool *active, bool never)
{
	const struct cfile *cf = &lk->c->files[f];
	for (size_t i = 0; i < cf->n_items; i++) {
		const struct item *it = &cf->items[i];
		switch (it->kind) {
		case I_HOST: {
			*active = false;
			if (never)
				break;
			bool named = false;
			for (size_t k = 0; k < it->n_args; k++) {
				const char *pat = it->args[k];
				bool neg = pat[0] == '!';
				if (!wild_match(pat + neg, lk->name, false))
					continue;
				if (neg) {
					*active = false;
					named = false;
					break;
				}
				*active = true;
				named |= strcmp(pat, "*") != 0;
			}
			if (named && !lk->out->named) {
				lk->out->named = true;
				lk->out->line = it->line;
			}
			break;
		}
		case I_MATCH:
			*active = !never && eval_match(lk, it);
			if (*active && !lk->out->named)
				for (size_t k = 0; k < it->n_crits; k++)
					if (!it->crits[k].neg &&
					    (it->crits[k].kind == C_HOST || it->crits[k].kind == C_ORIGINALHOST)) {
						lk->out->named = true;
						lk->out->line = it->line;
					}
			break;
		case I_OPT:
			if (*active && !never)
				apply(lk, it);
			break;
		case I_INCLUDE: {
			bool was = *active;
			for (size_t k = 0; k < it->n_files; k++) {
				walk(lk, it->files[k], active, never || !was);
				*active = was; /* a Match in the included file does not change the includer's state */
			}
			break;
		}
		}
	}
}

void sshcfg_lookup(const struct sshcfg *c, const char *name, const char *local_user, struct sshcfg_host *out)
{
	memset(out, 0, sizeof *out);
	if (!c || !c->n_files)
		return;
	struct lookup lk = {c, name, local_user, out};
	bool active = true;
	walk(&lk, 0, &active, false);
}

char *sshcfg_address(const struct sshcfg_host *h, const char *name)
{
	char *a = h->hostname ? expand_hostname(h->hostname, name) : xstrdup(name);
	unsigned char addr[16];
	if (inet_pton(AF_INET, a, addr) != 1 && inet_pton(AF_INET6, a, addr) != 1)
		for (char *p = a; *p; p++)
			*p = (char)tolower((unsigned char)*p); /* ssh lowercases names, not addresses */
	return a;
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
	for (size_t f = 0; f < c->n_files; f++) {
		struct cfile *cf = &c->files[f];
		for (size_t i = 0; i < cf->n_items; i++) {
			struct item *it = &cf->items[i];
			for (size_t k = 0; k < it->n_args; k++)
				free(it->args[k]);
			free(it->args);
			for (size_t k = 0; k < it->n_crits; k++)
				free(it->crits[k].list);
			free(it->crits);
			free(it->value);
			free(it->files);
		}
		free(cf->items);
		free(cf->path);
	}
	free(c->files);
	free(c->home);
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
