/*
 * inventory.c — hosts (plan-format.md section 7): the plan's `ssh:`
 * settings, the inventory (inline or from a file), host patterns in `on:`
 * and --limit, and the resolution of every host's fields. A field comes from
 * the host's inventory entry, else the inventory's defaults, else
 * ~/.ssh/config (for hosts without an `address`), else `ssh:`, else built-in
 * defaults. Names the inventory does not list are found in ~/.ssh/config;
 * `localhost` without an entry runs locally.
 */
#include <errno.h>
#include <fnmatch.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "plan/internal.h"

#define JUMP_MAX_DEPTH 16

enum { HS_NEW, HS_BUSY, HS_DONE }; /* a host's resolution state */

/* Where a pattern or a host stands, for diagnostics; line 0 prints FILE: error: (--limit). */
struct place {
	const char *file;
	int line, col;
};

/* A growable list of host indexes. */
struct hostvec {
	size_t *v;
	size_t n, cap;
};

static void hostvec_add(struct hostvec *hv, size_t i)
{
	if (hv->n == hv->cap) {
		hv->cap = hv->cap ? 2 * hv->cap : 8;
		hv->v = xrealloc(hv->v, hv->cap * sizeof *hv->v);
	}
	hv->v[hv->n++] = i;
}

/* ---- names to indexes: open addressing over strings the plan owns ---- */

struct nametab {
	const char **keys;
	size_t *vals;
	size_t n, cap;
};

static size_t name_hash(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static long nametab_get(const struct nametab *t, const char *key)
{
	if (!t || !t->cap)
		return -1;
	for (size_t i = name_hash(key) & (t->cap - 1); t->keys[i]; i = (i + 1) & (t->cap - 1))
		if (!strcmp(t->keys[i], key))
			return (long)t->vals[i];
	return -1;
}

static void nametab_put(struct nametab *t, const char *key, size_t val);

static void nametab_grow(struct nametab *t)
{
	struct nametab old = *t;
	t->cap = old.cap ? 2 * old.cap : 16;
	t->keys = xcalloc(t->cap, sizeof *t->keys);
	t->vals = xcalloc(t->cap, sizeof *t->vals);
	t->n = 0;
	for (size_t i = 0; i < old.cap; i++)
		if (old.keys[i])
			nametab_put(t, old.keys[i], old.vals[i]);
	free(old.keys);
	free(old.vals);
}

/* Adds key (the first value for a key stays). */
static void nametab_put(struct nametab *t, const char *key, size_t val)
{
	if (2 * (t->n + 1) > t->cap)
		nametab_grow(t);
	size_t i = name_hash(key) & (t->cap - 1);
	for (; t->keys[i]; i = (i + 1) & (t->cap - 1))
		if (!strcmp(t->keys[i], key))
			return;
	t->keys[i] = key;
	t->vals[i] = val;
	t->n++;
}

static void nametab_free(struct nametab *t)
{
	if (!t)
		return;
	free(t->keys);
	free(t->vals);
	free(t);
}

static struct nametab *nametab_of(struct nametab **t)
{
	if (!*t)
		*t = xcalloc(1, sizeof **t);
	return *t;
}

/* ---- small helpers ---- */

/* Host and group names: [A-Za-z0-9_.-]+ */
static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '.' || *s == '-'))
			return false;
	return true;
}

static bool is_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

static const char *local_user(struct loader *L)
{
	if (!L->local_user) {
		const char *u = getenv("USER");
		if (!u || !*u) {
			struct passwd *pw = getpwuid(getuid());
			u = pw ? pw->pw_name : NULL;
		}
		L->local_user = xstrdup(u ? u : "");
	}
	return L->local_user;
}

/* A path the plan gives: a leading ~ becomes the home directory. NULL with an error when it cannot. */
static char *expand_path(struct loader *L, const struct ynode *n, const char *key)
{
	const char *s = n->str;
	if (s[0] != '~' || (s[1] && s[1] != '/'))
		return xstrdup(s);
	if (!L->home) {
		ERR(L, n, "'%s': cannot expand '~' in '%s': no home directory is known (HOME is not set)", key, s);
		return NULL;
	}
	return xasprintf("%s%s", L->home, s + 1);
}

/* A non-empty string value, or NULL with an error. */
static const char *get_string(struct loader *L, const struct ynode *n, const char *key)
{
	if (!ld_want_scalar(L, n, key, "a string"))
		return NULL;
	if (!n->len || ynode_is_null(n)) {
		ERR(L, n, "'%s' is empty", key);
		return NULL;
	}
	return n->str;
}

/* Ports are 1 to 65535. */
static bool get_port(struct loader *L, const struct ynode *n, int *port)
{
	long v;
	if (!ld_get_int(L, n, "port", 1, &v))
		return false;
	if (v > 65535) {
		ERR(L, n, "'port' must be 1 to 65535, not %ld", v);
		return false;
	}
	*port = (int)v;
	return true;
}

static struct sshcfg *ssh_config(struct loader *L)
{
	if (!L->sshcfg_read) {
		L->sshcfg_read = true;
		if (!L->opts->no_files && L->home) {
			char *path = xasprintf("%s/.ssh/config", L->home);
			L->sshcfg = sshcfg_load(path, L->home, L->d);
			L->sshcfg_bad = !L->sshcfg;
			free(path);
		}
	}
	return L->sshcfg;
}

/* ---- ssh: ---- */

static const char *const ssh_keys[] = {"known_hosts", "connect_timeout", "keepalive",       "max_sessions",
				       "max_hosts",   "identity",        "known_hosts_file"};

static void parse_known_hosts(struct loader *L, const struct ynode *n)
{
	static const char *const modes[] = {"strict", "accept-new", "off"};
	if (!ld_want_scalar(L, n, "known_hosts", "strict, accept-new or off"))
		return;
	for (size_t i = 0; i < ARRAY_LEN(modes); i++)
		if (!strcmp(n->str, modes[i])) {
			L->p->ssh.known_hosts = (enum known_hosts_mode)i;
			return;
		}
	const char *hint = ld_closest(n->str, modes, ARRAY_LEN(modes));
	if (hint)
		ERR(L, n, "unknown known_hosts mode '%s'; did you mean '%s'?", n->str, hint);
	else
		ERR(L, n, "unknown known_hosts mode '%s' (expected strict, accept-new or off)", n->str);
}

void ssh_settings_parse(struct loader *L, const struct ynode *n)
{
	struct ssh_settings *s = &L->p->ssh;
	if (n->kind != YNODE_MAP) {
		if (!ynode_is_null(n))
			ERR(L, n, "'ssh' must be a map, not %s", ld_type_name(n));
		return;
	}
	ld_check_keys(L, n, "ssh", ssh_keys, ARRAY_LEN(ssh_keys), NULL, 0);
	const struct ynode *x;
	long v;
	if ((x = ynode_get(n, "known_hosts")))
		parse_known_hosts(L, x);
	if ((x = ynode_get(n, "connect_timeout")) && ld_get_duration(L, x, "connect_timeout", &s->connect_timeout_ms) &&
	    !s->connect_timeout_ms) {
		ERR(L, x, "'connect_timeout' must be more than 0");
		s->connect_timeout_ms = 10000;
	}
	if ((x = ynode_get(n, "keepalive")))
		ld_get_duration(L, x, "keepalive", &s->keepalive_ms);
	if ((x = ynode_get(n, "max_sessions")) && ld_get_int(L, x, "max_sessions", 1, &v))
		s->max_sessions = (int)v;
	if ((x = ynode_get(n, "max_hosts")) && ld_get_int(L, x, "max_hosts", 1, &v))
		s->max_hosts = (int)v;
	if ((x = ynode_get(n, "identity")) && get_string(L, x, "identity"))
		s->identity = expand_path(L, x, "identity");
	if ((x = ynode_get(n, "known_hosts_file")) && get_string(L, x, "known_hosts_file"))
		s->known_hosts_file = expand_path(L, x, "known_hosts_file");
}

void loader_hosts_init(struct loader *L)
{
	const char *home = L->opts->home;
	if (!home || !*home)
		home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	L->home = home && *home ? xstrdup(home) : NULL;
	struct ssh_settings *s = &L->p->ssh;
	s->known_hosts = KNOWN_HOSTS_STRICT;
	s->connect_timeout_ms = 10000;
	s->keepalive_ms = 15000;
	s->max_sessions = 4;
	s->max_hosts = 64;
}

void ssh_settings_finish(struct loader *L)
{
	struct ssh_settings *s = &L->p->ssh;
	if (!s->known_hosts_file && L->home)
		s->known_hosts_file = xasprintf("%s/.ssh/known_hosts", L->home);
}

void ssh_settings_free(struct ssh_settings *s)
{
	free(s->identity);
	free(s->known_hosts_file);
	s->identity = s->known_hosts_file = NULL;
}

/* ---- the inventory ---- */

static size_t host_add(struct loader *L, const char *name, int line, int col)
{
	struct inventory *inv = &L->p->inventory;
	if (inv->n_hosts == L->hosts_cap) {
		L->hosts_cap = L->hosts_cap ? 2 * L->hosts_cap : 8;
		inv->hosts = xrealloc(inv->hosts, L->hosts_cap * sizeof *inv->hosts);
		L->host_state = xrealloc(L->host_state, L->hosts_cap);
	}
	size_t i = inv->n_hosts++;
	struct host *h = &inv->hosts[i];
	memset(h, 0, sizeof *h);
	h->name = xstrdup(name);
	h->vars = json_object();
	h->jump = -1;
	h->line = line;
	h->col = col;
	L->host_state[i] = HS_NEW;
	nametab_put(nametab_of(&L->host_names), h->name, i);
	return i;
}

static long find_host(const struct loader *L, const char *name)
{
	return nametab_get(L->host_names, name);
}

static long find_group(const struct loader *L, const char *name)
{
	return nametab_get(L->group_names, name);
}

static const char *const host_keys[] = {"address", "user", "port", "identity", "max_sessions", "proxy_jump", "vars"};
static const char *const defaults_keys[] = {"user", "port", "identity", "max_sessions", "proxy_jump"};

static bool split_jump(char *hop, char **user, char **host, int *port);

/* proxy_jump: `none` or a comma list of [user@]host[:port], checked hop by hop. */
static void parse_proxy_jump(struct loader *L, const struct ynode *x, struct host *h)
{
	const char *s = get_string(L, x, "proxy_jump");
	if (!s)
		return;
	if (strcasecmp(s, "none")) {
		const char *p = s;
		do {
			size_t len = strcspn(p, ",");
			char *hop = xstrndup(p, len), *user, *host;
			int port;
			bool ok = split_jump(hop, &user, &host, &port);
			free(hop);
			if (!ok) {
				ERR(L, x, "bad 'proxy_jump' hop '%.*s' (expected [user@]host[:port], comma-separated, or none)",
				    (int)len, p);
				return;
			}
			p += len;
		} while (*p++ == ',');
	}
	h->proxy_jump = xstrdup(s);
	h->jump_line = x->line;
	h->jump_col = x->col;
}

static void set_identity(struct host *h, char *path)
{
	h->identities = xrealloc(h->identities, (h->n_identities + 1) * sizeof *h->identities);
	h->identities[h->n_identities++] = path;
}

/* One inventory entry's fields (or the defaults'): what is not given stays 0 / NULL until resolved. */
static void parse_host_fields(struct loader *L, const struct ynode *m, struct host *h, const char *where,
			      bool defaults)
{
	if (ynode_is_null(m))
		return;
	if (m->kind != YNODE_MAP) {
		ERR(L, m, "%s must be a map (%s), not %s", where,
		    defaults ? "user, port, identity, max_sessions" : "address, user, port, identity, max_sessions, vars",
		    ld_type_name(m));
		return;
	}
	if (defaults)
		ld_check_keys(L, m, where, defaults_keys, ARRAY_LEN(defaults_keys), NULL, 0);
	else
		ld_check_keys(L, m, where, host_keys, ARRAY_LEN(host_keys), NULL, 0);
	const struct ynode *x;
	const char *s;
	long v;
	if (!defaults && (x = ynode_get(m, "address")) && (s = get_string(L, x, "address")))
		h->address = xstrdup(s);
	if ((x = ynode_get(m, "user")) && (s = get_string(L, x, "user")))
		h->user = xstrdup(s);
	if ((x = ynode_get(m, "port")))
		get_port(L, x, &h->port);
	if ((x = ynode_get(m, "identity")) && get_string(L, x, "identity")) {
		char *path = expand_path(L, x, "identity");
		if (path)
			set_identity(h, path);
	}
	if ((x = ynode_get(m, "max_sessions")) && ld_get_int(L, x, "max_sessions", 1, &v))
		h->max_sessions = (int)v;
	if ((x = ynode_get(m, "proxy_jump")))
		parse_proxy_jump(L, x, h);
	if (!defaults && (x = ynode_get(m, "vars"))) {
		if (x->kind == YNODE_MAP) {
			json_decref(h->vars);
			h->vars = ynode_to_json(x);
		} else if (!ynode_is_null(x)) {
			ERR(L, x, "'vars' must be a map, not %s", ld_type_name(x));
		}
	}
}

static bool check_name(struct loader *L, const struct ynode *k, const char *what)
{
	if (k->kind != YNODE_SCALAR) {
		ERR(L, k, "%s names must be strings, not %s", what, ld_type_name(k));
		return false;
	}
	if (!valid_name(k->str)) {
		ERR(L, k, "bad %s name '%s': use letters, digits, '_', '.' and '-'", what, k->str);
		return false;
	}
	if (!strcmp(k->str, "all")) {
		ERR(L, k, "'all' cannot name a %s: the pattern 'all' means every host", what);
		return false;
	}
	return true;
}

static void parse_hosts(struct loader *L, const struct ynode *n)
{
	if (ynode_is_null(n))
		return;
	if (n->kind != YNODE_MAP) {
		ERR(L, n, "'hosts' must be a map of name: {address, user, ...}, not %s", ld_type_name(n));
		return;
	}
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *k = n->items[i];
		if (!check_name(L, k, "host"))
			continue;
		size_t hi = host_add(L, k->str, k->line, k->col);
		char *where = xasprintf("host '%s'", k->str);
		parse_host_fields(L, n->items[i + 1], &L->p->inventory.hosts[hi], where, false);
		free(where);
	}
}

static void parse_group(struct loader *L, const struct ynode *k, const struct ynode *v)
{
	long hi = find_host(L, k->str);
	if (hi >= 0) {
		ERR(L, k, "'%s' is both a host (line %d) and a group", k->str, L->p->inventory.hosts[hi].line);
		return;
	}
	struct inventory *inv = &L->p->inventory;
	inv->groups = xrealloc(inv->groups, (inv->n_groups + 1) * sizeof *inv->groups);
	struct group *g = &inv->groups[inv->n_groups];
	*g = (struct group){.name = xstrdup(k->str), .line = k->line, .col = k->col};
	nametab_put(nametab_of(&L->group_names), g->name, inv->n_groups++);
	if (ynode_is_null(v))
		return;
	if (v->kind != YNODE_SEQ) {
		ERR(L, v, "group '%s' must be a list of host and group names, not %s", k->str, ld_type_name(v));
		return;
	}
	g->members = xcalloc(v->n ? v->n : 1, sizeof *g->members);
	for (size_t i = 0; i < v->n; i++) {
		const struct ynode *m = v->items[i];
		if (!ld_want_scalar(L, m, "groups", "a host or group name"))
			continue;
		g->members[g->n_members++] = xstrdup(m->str);
	}
}

/* Every name of a host the inventory lists and of a group, for "did you mean". */
static const char **known_names(const struct loader *L, size_t *n)
{
	const struct inventory *inv = &L->p->inventory;
	const char **names = xcalloc(inv->n_hosts + inv->n_groups + 1, sizeof *names);
	*n = 0;
	for (size_t i = 0; i < inv->n_hosts; i++)
		if (i < inv->n_declared || inv->hosts[i].local || inv->hosts[i].from_config)
			names[(*n)++] = inv->hosts[i].name;
	for (size_t i = 0; i < inv->n_groups; i++)
		names[(*n)++] = inv->groups[i].name;
	return names;
}

static void check_members(struct loader *L, const struct ynode *groups)
{
	for (size_t i = 0; i + 1 < groups->n; i += 2) {
		const struct ynode *k = groups->items[i], *v = groups->items[i + 1];
		if (k->kind != YNODE_SCALAR || v->kind != YNODE_SEQ || find_group(L, k->str) < 0)
			continue;
		for (size_t j = 0; j < v->n; j++) {
			const struct ynode *m = v->items[j];
			if (m->kind != YNODE_SCALAR || find_host(L, m->str) >= 0 || find_group(L, m->str) >= 0)
				continue;
			size_t nn;
			const char **names = known_names(L, &nn);
			const char *hint = ld_closest(m->str, names, nn);
			if (hint)
				ERR(L, m, "group '%s': '%s' is neither a host nor a group of the inventory; did you mean '%s'?",
				    k->str, m->str, hint);
			else
				ERR(L, m, "group '%s': '%s' is neither a host nor a group of the inventory", k->str, m->str);
			free(names);
		}
	}
}

/* A group being walked and the index of its next member: the walks below keep their own stack. */
struct group_frame {
	size_t g;
	size_t next;
};

/* Reports the cycle that member m closes: the groups from m's place on the path to its top, then m. */
static void report_cycle(struct loader *L, const struct group_frame *path, size_t depth, size_t m)
{
	const struct inventory *inv = &L->p->inventory;
	size_t from = depth - 1;
	while (path[from].g != m)
		from--;
	struct buf b = {0};
	for (size_t k = from; k < depth; k++)
		buf_printf(&b, "%s -> ", inv->groups[path[k].g].name);
	buf_adds(&b, inv->groups[m].name);
	const struct group *at = &inv->groups[m];
	diags_add(L->d, L->file, at->line, at->col, "group cycle: %s", b.data);
	buf_free(&b);
}

/*
 * Depth-first over groups from g, with an explicit stack so that nesting of
 * any depth works: a member that is a group still on the path closes a cycle.
 */
static void cycle_visit(struct loader *L, size_t g, unsigned char *color, struct group_frame *path)
{
	const struct inventory *inv = &L->p->inventory;
	size_t depth = 0;
	path[depth++] = (struct group_frame){g, 0};
	color[g] = 1;
	while (depth) {
		struct group_frame *f = &path[depth - 1];
		if (f->next == inv->groups[f->g].n_members) {
			color[f->g] = 2;
			depth--;
			continue;
		}
		long m = find_group(L, inv->groups[f->g].members[f->next++]);
		if (m < 0)
			continue;
		if (color[m] == 1) {
			report_cycle(L, path, depth, (size_t)m);
		} else if (!color[m]) {
			color[m] = 1;
			path[depth++] = (struct group_frame){(size_t)m, 0};
		}
	}
}

static void check_cycles(struct loader *L)
{
	size_t n = L->p->inventory.n_groups;
	unsigned char *color = xcalloc(n ? n : 1, 1);
	struct group_frame *path = xcalloc(n ? n : 1, sizeof *path); /* each group is on it at most once */
	for (size_t g = 0; g < n; g++)
		if (!color[g])
			cycle_visit(L, g, color, path);
	free(color);
	free(path);
}

static const char *const inventory_keys[] = {"defaults", "hosts", "groups"};

static void parse_inventory_map(struct loader *L, const struct ynode *n)
{
	if (n->kind != YNODE_MAP) {
		ERR(L, n, "an inventory must be a map with hosts, groups and defaults, not %s", ld_type_name(n));
		return;
	}
	ld_check_keys(L, n, "the inventory", inventory_keys, ARRAY_LEN(inventory_keys), NULL, 0);
	const struct ynode *x;
	if ((x = ynode_get(n, "defaults")))
		parse_host_fields(L, x, &L->defaults, "the inventory's defaults", true);
	if ((x = ynode_get(n, "hosts")))
		parse_hosts(L, x);
	L->p->inventory.n_declared = L->p->inventory.n_hosts;
	if ((x = ynode_get(n, "groups")) && !ynode_is_null(x)) {
		if (x->kind != YNODE_MAP) {
			ERR(L, x, "'groups' must be a map of name: [members], not %s", ld_type_name(x));
			return;
		}
		for (size_t i = 0; i + 1 < x->n; i += 2)
			if (check_name(L, x->items[i], "group"))
				parse_group(L, x->items[i], x->items[i + 1]);
		check_members(L, x);
		check_cycles(L);
	}
}

/* ---- resolving a host's fields ---- */

static void resolve_host(struct loader *L, size_t i, const char *lookup, const struct place *at, const char *via);

static void chain_error(struct loader *L, size_t to, const struct place *at)
{
	const struct inventory *inv = &L->p->inventory;
	struct buf b = {0};
	size_t from = 0;
	while (from < L->n_chain && L->chain[from] != to)
		from++;
	for (size_t k = from; k < L->n_chain; k++)
		buf_printf(&b, "%s -> ", inv->hosts[L->chain[k]].name);
	buf_adds(&b, inv->hosts[to].name);
	if (L->sshcfg)
		diags_add(L->d, at->file, at->line, at->col, "ProxyJump cycle: %s (proxy_jump, or ProxyJump in %s)",
			  b.data, sshcfg_path(L->sshcfg));
	else
		diags_add(L->d, at->file, at->line, at->col, "ProxyJump cycle: %s", b.data);
	buf_free(&b);
}

/* Splits ProxyJump's first hop, [ssh://][user@]host[:port]; false when it is malformed. */
static bool split_jump(char *hop, char **user, char **host, int *port)
{
	if (str_has_prefix(hop, "ssh://"))
		memmove(hop, hop + 6, strlen(hop + 6) + 1);
	char *at = strrchr(hop, '@');
	*user = NULL;
	if (at) {
		*at = '\0';
		*user = hop;
		hop = at + 1;
	}
	char *colon = NULL;
	if (*hop == '[') { /* [v6 address]:port */
		char *close = strchr(hop, ']');
		if (!close)
			return false;
		*close = '\0';
		hop++;
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon)
			return false;
	} else if (strchr(hop, ':') == strrchr(hop, ':')) {
		colon = strchr(hop, ':'); /* more than one ':' is an IPv6 address without a port */
	}
	*port = 0;
	if (colon) {
		*colon = '\0';
		char *end;
		long p = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || p < 1 || p > 65535)
			return false;
		*port = (int)p;
	}
	*host = hop;
	return **host && (!*user || **user);
}

/*
 * The host a ProxyJump value leads through, added if need be; -1 with an
 * error. As in OpenSSH, `a,b` reaches the target through b, and b through a:
 * a chain is a host of its own, named as written, with b's address, user and
 * port and the rest of the chain as its jump.
 */
static long jump_host(struct loader *L, const char *spec, const struct place *at)
{
	const char *comma = strrchr(spec, ',');
	const char *last = comma ? comma + 1 : spec;
	char *prefix = comma ? xstrndup(spec, (size_t)(comma - spec)) : NULL;
	char *hop = xstrdup(last), *user, *host;
	int port;
	long j = -1;
	if (!split_jump(hop, &user, &host, &port) || (prefix && !*prefix)) {
		diags_add(L->d, at->file, at->line, at->col, "bad ProxyJump '%s' (expected [user@]host[:port])", last);
		goto out;
	}
	j = !prefix && !user && !port ? find_host(L, host) : find_host(L, spec);
	if (j >= 0 && L->host_state[j] == HS_BUSY) {
		chain_error(L, (size_t)j, at);
		j = -1;
		goto out;
	}
	if (j >= 0) {
		const struct host *h = &L->p->inventory.hosts[j];
		resolve_host(L, (size_t)j, (size_t)j < L->p->inventory.n_declared && h->address ? NULL : h->name, at,
			     NULL);
		goto out;
	}
	/*
	 * Not a host yet: one named as written, with what the hop says, the rest
	 * from the inventory's host of that name (resolved first), else from
	 * ~/.ssh/config.
	 */
	long k = find_host(L, host);
	if (k >= 0 && (size_t)k < L->p->inventory.n_declared) {
		if (L->host_state[k] == HS_BUSY) {
			chain_error(L, (size_t)k, at);
			j = -1;
			goto out;
		}
		const struct host *kh = &L->p->inventory.hosts[k];
		resolve_host(L, (size_t)k, kh->address ? NULL : kh->name, at, NULL);
	} else {
		k = -1;
	}
	j = (long)host_add(L, spec, at->line, at->col);
	struct host *h = &L->p->inventory.hosts[j];
	const struct host *kh = k >= 0 ? &L->p->inventory.hosts[k] : NULL;
	h->user = user ? xstrdup(user) : kh && kh->user ? xstrdup(kh->user) : NULL;
	h->port = port ? port : kh ? kh->port : 0;
	if (kh) {
		h->address = kh->address ? xstrdup(kh->address) : NULL;
		for (size_t x = 0; x < kh->n_identities; x++)
			set_identity(h, xstrdup(kh->identities[x]));
		h->max_sessions = kh->max_sessions;
		h->jump = prefix ? -1 : kh->jump;
	}
	resolve_host(L, (size_t)j, kh ? NULL : host, at, prefix);
out:
	free(prefix);
	free(hop);
	return j;
}

/* The last hop of a jump spec names host h (a defaults' proxy_jump does not apply to the jump host itself). */
static bool jump_names(const char *spec, const struct host *h)
{
	const char *comma = strrchr(spec, ',');
	char *hop = xstrdup(comma ? comma + 1 : spec), *user, *host;
	int port;
	bool same = split_jump(hop, &user, &host, &port) && (!strcmp(host, h->name) || (h->address && !strcmp(host, h->address)));
	free(hop);
	return same;
}

/*
 * Fills in what h's entry left out: defaults, ~/.ssh/config (looked up as
 * `lookup`, NULL: not), ssh:, built-ins. via: the jump given by a chain
 * (wins over the entry's proxy_jump and the config's ProxyJump), or NULL.
 */
static void resolve_host(struct loader *L, size_t i, const char *lookup, const struct place *at, const char *via)
{
	if (L->host_state[i] != HS_NEW)
		return;
	if (L->n_chain >= JUMP_MAX_DEPTH) {
		diags_add(L->d, at->file, at->line, at->col, "ProxyJump chain longer than %d hosts", JUMP_MAX_DEPTH);
		return;
	}
	if (!L->chain)
		L->chain = xcalloc(JUMP_MAX_DEPTH, sizeof *L->chain);
	L->host_state[i] = HS_BUSY;
	L->chain[L->n_chain++] = i;
	struct host *h = &L->p->inventory.hosts[i];
	const struct host *d = &L->defaults;
	struct sshcfg_host c = {0};
	struct sshcfg *cfg = lookup ? ssh_config(L) : NULL;
	if (cfg)
		sshcfg_lookup(cfg, lookup, local_user(L), &c);
	struct sshcfg_tokens t = {.home = L->home, .local_user = local_user(L), .name = lookup ? lookup : h->name,
				  .host = lookup ? lookup : h->name};
	if (!h->address)
		h->address = lookup ? sshcfg_address(&c, lookup) : xstrdup(h->name);
	/* the inventory's defaults come before ~/.ssh/config for its own hosts, after it for the others */
	bool listed = i < L->p->inventory.n_declared;
	const char *u1 = listed ? d->user : c.user, *u2 = listed ? c.user : d->user;
	if (!h->user)
		h->user = xstrdup(u1 ? u1 : u2 ? u2 : local_user(L));
	int p1 = listed ? d->port : c.port, p2 = listed ? c.port : d->port;
	if (!h->port)
		h->port = p1 ? p1 : p2 ? p2 : 22;
	if (!h->max_sessions)
		h->max_sessions = d->max_sessions ? d->max_sessions : L->p->ssh.max_sessions;
	/* identities in the same order; IdentityFile's tokens see the final address, user and port */
	if (!h->n_identities && listed && d->n_identities)
		set_identity(h, xstrdup(d->identities[0]));
	t.host = h->address;
	t.user = h->user;
	t.port = h->port;
	if (!h->n_identities)
		for (size_t k = 0; k < c.n_identities; k++)
			set_identity(h, sshcfg_expand(c.identities[k], &t));
	if (!h->n_identities && d->n_identities)
		set_identity(h, xstrdup(d->identities[0]));
	if (!h->n_identities && L->p->ssh.identity)
		set_identity(h, xstrdup(L->p->ssh.identity));
	if (i >= L->p->inventory.n_declared && c.named)
		h->from_config = true;
	/* the jump: a chain's rest, the entry's proxy_jump, then defaults and config in the order above */
	struct place jat = *at;
	const char *jspec = via;
	if (!jspec && h->proxy_jump) {
		jspec = h->proxy_jump;
		jat = (struct place){L->file, h->jump_line, h->jump_col};
	}
	const char *dj = listed && d->proxy_jump && !jump_names(d->proxy_jump, h) ? d->proxy_jump : NULL;
	if (!jspec && listed && dj) {
		jspec = dj;
		jat = (struct place){L->file, d->jump_line, d->jump_col};
	}
	if (!jspec)
		jspec = c.proxyjump;
	if (jspec && strcasecmp(jspec, "none")) {
		long j = jump_host(L, jspec, &jat);
		L->p->inventory.hosts[i].jump = j; /* the array may have moved */
	}
	sshcfg_host_free(&c);
	L->n_chain--;
	L->host_state[i] = HS_DONE;
}

static void resolve_declared(struct loader *L)
{
	struct inventory *inv = &L->p->inventory;
	for (size_t i = 0; i < inv->n_declared; i++) {
		const struct host *h = &inv->hosts[i];
		struct place at = {L->file, h->line, h->col};
		resolve_host(L, i, h->address ? NULL : h->name, &at, NULL);
	}
}

/* ---- where the inventory comes from ---- */

static char *relative_to_plan(const char *plan_file, const char *path)
{
	const char *slash = strrchr(plan_file, '/');
	if (path[0] == '/' || !slash || !strcmp(plan_file, "-"))
		return xstrdup(path);
	return xasprintf("%.*s/%s", (int)(slash - plan_file), plan_file, path);
}

/* Reads and parses an inventory file; diagnostics inside it carry its own name. */
static void load_inventory_file(struct loader *L, const char *path, const struct ynode *named_at)
{
	size_t len = 0;
	struct diags rd = {0};
	char *data = ld_read_file(path, &len, &rd);
	for (size_t i = 0; i < rd.n; i++) {
		if (named_at)
			ERR(L, named_at, "'inventory': %s: %s", path, rd.v[i].msg);
		else
			diags_add(L->d, "--inventory", 0, 0, "%s: %s", path, rd.v[i].msg);
	}
	diags_free(&rd);
	if (!data)
		return;
	if (strspn(data, " \t\r\n") == len) {
		diags_add(L->d, path, 0, 0, "the inventory file is empty");
		free(data);
		return;
	}
	struct ynode *root = yaml_load(path, data, len, L->d);
	free(data);
	if (!root)
		return;
	const char *plan_file = L->file;
	L->file = path;
	parse_inventory_map(L, root);
	resolve_declared(L);
	L->file = plan_file;
	ynode_free(root);
}

void inventory_load(struct loader *L, const struct ynode *n)
{
	size_t before = L->d->n;
	const char *file = L->opts->inventory;
	if (file) {
		if (L->opts->no_files)
			diags_add(L->d, "--inventory", 0, 0, "%s: not read: this load reads no files", file);
		else
			load_inventory_file(L, file, NULL);
	} else if (n && n->kind == YNODE_MAP) {
		parse_inventory_map(L, n);
		resolve_declared(L);
	} else if (n && n->kind == YNODE_SCALAR && !ynode_is_null(n)) {
		char *path = expand_path(L, n, "inventory"), *full = NULL;
		if (path && L->opts->no_files)
			ERR(L, n, "'inventory': %s: not read: this load reads no files", path);
		else if (path)
			load_inventory_file(L, (full = relative_to_plan(L->p->file, path)), n);
		free(path);
		free(full);
	} else if (n) {
		ERR(L, n, "'inventory' must be a file path or a map with hosts, groups and defaults, not %s",
		    ynode_is_null(n) ? "empty" : ld_type_name(n));
	}
	L->inventory_bad = L->d->n > before;
}

/* ---- host patterns ---- */

/*
 * The hosts of group g and of the groups inside it, in member order, each
 * group walked once (seen), with an explicit stack: nesting of any depth.
 */
static void group_hosts(struct loader *L, size_t g, unsigned char *seen, struct hostvec *out)
{
	const struct inventory *inv = &L->p->inventory;
	struct group_frame *stack = xcalloc(inv->n_groups, sizeof *stack); /* each group is pushed at most once */
	size_t depth = 0;
	seen[g] = 1;
	stack[depth++] = (struct group_frame){g, 0};
	while (depth) {
		struct group_frame *f = &stack[depth - 1];
		if (f->next == inv->groups[f->g].n_members) {
			depth--;
			continue;
		}
		const char *m = inv->groups[f->g].members[f->next++];
		long x = find_group(L, m);
		if (x >= 0 && !seen[x]) {
			seen[x] = 1;
			stack[depth++] = (struct group_frame){(size_t)x, 0};
		} else if (x < 0 && (x = find_host(L, m)) >= 0) {
			hostvec_add(out, (size_t)x);
		}
	}
	free(stack);
}

static void unknown_name(struct loader *L, const char *name, const struct place *at)
{
	size_t nn;
	const char **names = known_names(L, &nn);
	const char *hint = ld_closest(name, names, nn);
	if (hint)
		diags_add(L->d, at->file, at->line, at->col, "unknown host or group '%s'; did you mean '%s'?", name, hint);
	else if (at->line)
		diags_add(L->d, at->file, at->line, at->col,
			  "unknown host or group '%s' (not in the inventory nor in ~/.ssh/config)", name);
	else
		diags_add(L->d, at->file, at->line, at->col, "unknown host or group '%s'", name);
	free(names);
}

/*
 * A plain name in `on:`: a group, a host of the inventory, localhost, or a
 * Host of ~/.ssh/config (added to the inventory). --limit (limit) only names
 * hosts and groups that are there already.
 */
static bool name_hosts(struct loader *L, const char *name, const struct place *at, bool limit, struct hostvec *out)
{
	struct inventory *inv = &L->p->inventory;
	long g = find_group(L, name);
	if (g >= 0) {
		unsigned char *seen = xcalloc(inv->n_groups, 1);
		group_hosts(L, (size_t)g, seen, out);
		free(seen);
		return true;
	}
	long h = find_host(L, name);
	if (h >= 0 && (limit || (size_t)h < inv->n_declared || inv->hosts[h].local || inv->hosts[h].from_config)) {
		hostvec_add(out, (size_t)h);
		return true;
	}
	if (limit) {
		unknown_name(L, name, at);
		return false;
	}
	if (!strcmp(name, "localhost")) {
		size_t i = host_add(L, name, at->line, at->col);
		struct host *lh = &inv->hosts[i];
		lh->local = true;
		lh->address = xstrdup("localhost");
		lh->user = xstrdup(local_user(L));
		lh->port = 22;
		lh->max_sessions = L->p->ssh.max_sessions;
		L->host_state[i] = HS_DONE;
		hostvec_add(out, i);
		return true;
	}
	struct sshcfg_host c = {0};
	struct sshcfg *cfg = ssh_config(L);
	if (cfg)
		sshcfg_lookup(cfg, name, local_user(L), &c);
	bool named = c.named;
	sshcfg_host_free(&c);
	if (!named) {
		if (!L->sshcfg_bad) /* its errors are said already */
			unknown_name(L, name, at);
		return false;
	}
	size_t i = host_add(L, name, at->line, at->col);
	resolve_host(L, i, name, at, NULL);
	hostvec_add(out, i);
	return true;
}

/* One pattern, without its '!': a name, a group, `all` or a glob. */
static bool pattern_hosts(struct loader *L, const char *pat, const struct place *at, bool limit, struct hostvec *out)
{
	const struct inventory *inv = &L->p->inventory;
	size_t scope = limit ? inv->n_hosts : inv->n_declared; /* what `all` and globs range over */
	if (!strcmp(pat, "all")) {
		if (!scope) {
			diags_add(L->d, at->file, at->line, at->col, "'all' matches no host: the inventory lists none");
			return false;
		}
		for (size_t i = 0; i < scope; i++)
			hostvec_add(out, i);
		return true;
	}
	if (is_glob(pat)) {
		size_t before = out->n;
		for (size_t i = 0; i < scope; i++)
			if (!fnmatch(pat, inv->hosts[i].name, 0))
				hostvec_add(out, i);
		if (out->n == before) {
			diags_add(L->d, at->file, at->line, at->col, "host pattern '%s' matches no host of the inventory",
				  pat);
			return false;
		}
		return true;
	}
	if (!valid_name(pat)) {
		diags_add(L->d, at->file, at->line, at->col,
			  "bad host pattern '%s': a host or group name (letters, digits, '_', '.', '-'), 'all', a glob "
			  "with * ? [...], each maybe after '!'",
			  pat);
		return false;
	}
	return name_hosts(L, pat, at, limit, out);
}

/* Resolves one pattern, '!' and all, into the hosts to add or to take away. */
static bool one_pattern(struct loader *L, const char *pat, const struct place *at, bool limit, struct hostvec *add,
			struct hostvec *del)
{
	if (!*pat || !strcmp(pat, "!")) {
		diags_add(L->d, at->file, at->line, at->col, "empty host pattern");
		return false;
	}
	return pat[0] == '!' ? pattern_hosts(L, pat + 1, at, limit, del) : pattern_hosts(L, pat, at, limit, add);
}

/* keep[i]: host i is selected — the union of add (all hosts when no_add_means_all and add is empty) less del. */
static unsigned char *select_hosts(const struct loader *L, const struct hostvec *add, const struct hostvec *del,
				   bool no_add_means_all, size_t n_add_patterns)
{
	size_t n = L->p->inventory.n_hosts;
	unsigned char *keep = xcalloc(n ? n : 1, 1);
	if (no_add_means_all && !n_add_patterns)
		memset(keep, 1, n);
	for (size_t i = 0; i < add->n; i++)
		keep[add->v[i]] = 1;
	for (size_t i = 0; i < del->n; i++)
		keep[del->v[i]] = 0;
	return keep;
}

/* Appends the comma-separated patterns of one scalar to f->on, each with its place. */
static void split_patterns(struct loader *L, const struct ynode *n, struct step_fan *f, struct place **at)
{
	/* columns are exact only for single-line plain scalars */
	bool exact = n->plain && !memchr(n->str, '\n', n->len);
	for (const char *p = n->str;;) {
		size_t len = strcspn(p, ",");
		size_t lead = strspn(p, " \t");
		size_t trim = len > lead ? len - lead : 0;
		while (trim && (p[lead + trim - 1] == ' ' || p[lead + trim - 1] == '\t'))
			trim--;
		f->on = xrealloc(f->on, (f->n_on + 1) * sizeof *f->on);
		*at = xrealloc(*at, (f->n_on + 1) * sizeof **at);
		f->on[f->n_on] = xstrndup(p + lead, trim);
		(*at)[f->n_on++] = (struct place){L->file, n->line, n->col + (exact ? (int)(p + lead - n->str) : 0)};
		if (!p[len])
			break;
		p += len + 1;
	}
}

/* The indexes of the selected hosts, in inventory order. */
static size_t *selected(const struct loader *L, const unsigned char *keep, size_t *n)
{
	size_t nh = L->p->inventory.n_hosts, k = 0;
	for (size_t i = 0; i < nh; i++)
		k += keep[i];
	size_t *v = xcalloc(k ? k : 1, sizeof *v);
	*n = 0;
	for (size_t i = 0; i < nh; i++)
		if (keep[i])
			v[(*n)++] = i;
	return v;
}

bool on_parse(struct loader *L, const struct ynode *v, struct step *s)
{
	struct step_fan *f = ld_fan(s);
	f->on_line = v->line;
	f->on_col = v->col;
	f->on = xcalloc(1, sizeof *f->on); /* non-NULL: the step has `on` */
	struct place *at = NULL;
	const struct ynode *const *items = v->kind == YNODE_SEQ ? (const struct ynode *const *)v->items : &v;
	size_t cnt = v->kind == YNODE_SEQ ? v->n : 1, before = L->d->n;
	if (v->kind == YNODE_MAP)
		ERR(L, v, "'on' must be a host pattern or a list of them, not a map");
	else if (!cnt || ynode_is_null(v))
		ERR(L, v, "'on' needs at least one host pattern");
	else
		for (size_t i = 0; i < cnt; i++)
			if (ld_want_scalar(L, items[i], "on", "a host pattern"))
				split_patterns(L, items[i], f, &at);
	if (L->d->n > before || L->inventory_bad) {
		free(at);
		return false;
	}
	struct hostvec add = {0}, del = {0};
	for (size_t i = 0; i < f->n_on; i++)
		one_pattern(L, f->on[i], &at[i], false, &add, &del);
	free(at);
	bool ok = L->d->n == before;
	if (ok) {
		unsigned char *keep = select_hosts(L, &add, &del, false, 0);
		f->hosts = selected(L, keep, &f->n_hosts);
		free(keep);
		if (!f->n_hosts) {
			ERR(L, v, "'on' matches no host once its exclusions are applied");
			ok = false;
		}
	}
	free(add.v);
	free(del.v);
	return ok;
}

/* ---- --limit ---- */

static void limit_step(struct step *s, const unsigned char *keep)
{
	if (s->fan->on) {
		struct step_fan *f = ld_fan(s);
		size_t k = 0;
		for (size_t i = 0; i < f->n_hosts; i++)
			if (keep[f->hosts[i]])
				f->hosts[k++] = f->hosts[i];
		f->n_hosts = k;
	}
	for (size_t i = 0; i < s->n_children; i++)
		limit_step(s->children[i], keep);
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (s->handlers[k])
			limit_step(s->handlers[k], keep);
}

void limit_apply(struct loader *L)
{
	const char *limit = L->opts->limit;
	if (!limit || L->inventory_bad)
		return;
	size_t before = L->d->n, n_add = 0;
	struct hostvec add = {0}, del = {0};
	struct place at = {"--limit", 0, 0};
	for (const char *p = limit;;) {
		size_t len = strcspn(p, ",");
		size_t lead = strspn(p, " \t");
		size_t trim = len > lead ? len - lead : 0;
		while (trim && (p[lead + trim - 1] == ' ' || p[lead + trim - 1] == '\t'))
			trim--;
		char *pat = xstrndup(p + lead, trim);
		n_add += pat[0] != '!';
		one_pattern(L, pat, &at, true, &add, &del);
		free(pat);
		if (!p[len])
			break;
		p += len + 1;
	}
	if (L->d->n == before && L->p->root) {
		unsigned char *keep = select_hosts(L, &add, &del, true, n_add);
		limit_step(L->p->root, keep);
		free(keep);
	}
	free(add.v);
	free(del.v);
}

/* ---- the host context and freeing ---- */

static json_t *jstr(const char *s)
{
	json_t *j = s ? json_string(s) : NULL; /* NULL when not UTF-8 (~/.ssh/config is not checked) */
	return j ? j : json_string("");
}

json_t *host_to_json(const struct host *h)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", jstr(h->name));
	json_object_set_new(o, "address", jstr(h->address));
	json_object_set_new(o, "user", jstr(h->user));
	json_object_set_new(o, "port", json_integer(h->port));
	json_object_set_new(o, "vars", h->vars ? json_incref(h->vars) : json_object());
	return o;
}

static void host_free_fields(struct host *h)
{
	free(h->name);
	free(h->address);
	free(h->user);
	free(h->proxy_jump);
	for (size_t i = 0; i < h->n_identities; i++)
		free(h->identities[i]);
	free(h->identities);
	json_decref(h->vars);
}

void inventory_free(struct inventory *inv)
{
	for (size_t i = 0; i < inv->n_hosts; i++)
		host_free_fields(&inv->hosts[i]);
	free(inv->hosts);
	for (size_t i = 0; i < inv->n_groups; i++) {
		for (size_t k = 0; k < inv->groups[i].n_members; k++)
			free(inv->groups[i].members[k]);
		free(inv->groups[i].members);
		free(inv->groups[i].name);
	}
	free(inv->groups);
	memset(inv, 0, sizeof *inv);
}

void loader_hosts_free(struct loader *L)
{
	free(L->home);
	free(L->local_user);
	sshcfg_free(L->sshcfg);
	host_free_fields(&L->defaults);
	free(L->host_state);
	free(L->chain);
	nametab_free(L->host_names);
	nametab_free(L->group_names);
}
