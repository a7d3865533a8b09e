/*
 * load.c — builds a struct plan from the YAML node tree and validates it
 * against plan-format.md, collecting every error with its place rather than
 * stopping at the first. Later stages may assume a loaded plan is valid.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plan/internal.h"

#define PLAN_MAX_FILE (64u << 20)
#define RETRY_MAX 10000

static const char *const top_keys[] = {"name",       "description", "vars",     "inputs",  "secrets", "env",
				       "inventory",  "ssh",         "concurrency", "semaphores", "defaults",
				       "timeout",    "lock",        "steps",       "on_success", "on_failure",
				       "finally"};
static const char *const kind_keys[] = {"run",  "steps", "parallel", "stages", "barrier",
					"sleep", "join", "approve", "copy", "fetch"};
static const char *const mod_keys[] = {"id",       "name",         "when",        "on",
				       "for_each", "batch",        "mode",        "min_success",
				       "max_concurrency", "priority", "semaphore", "timeout",
				       "kill_grace", "retry",      "continue_on_error", "async", "label",
				       "env",      "cwd",          "shell",       "on_success",
				       "on_failure", "finally"};
static const char *const default_keys[] = {"timeout", "retry", "kill_grace", "shell", "cwd", "env"};
static const char *const retry_keys[] = {"attempts", "delay", "backoff", "max_delay", "jitter", "on_exit"};
static const char *const stage_keys[] = {"id", "name", "steps", "when", "timeout", "max_concurrency",
					 "priority", "continue_on_error"};

const char *ld_type_name(const struct ynode *n)
{
	return n->kind == YNODE_MAP ? "a map" : n->kind == YNODE_SEQ ? "a list" : "a scalar";
}

bool ynode_is_null(const struct ynode *n)
{
	if (n->kind != YNODE_SCALAR || !n->plain)
		return false;
	return !n->len || !strcmp(n->str, "~") || !strcmp(n->str, "null") || !strcmp(n->str, "Null") ||
	       !strcmp(n->str, "NULL");
}

bool ld_want_scalar(struct loader *L, const struct ynode *n, const char *key, const char *what)
{
	if (n->kind == YNODE_SCALAR)
		return true;
	ERR(L, n, "'%s' must be %s, not %s", key, what, ld_type_name(n));
	return false;
}

bool ld_get_int(struct loader *L, const struct ynode *n, const char *key, long min, long *out)
{
	if (!ld_want_scalar(L, n, key, "an integer"))
		return false;
	char *end;
	errno = 0;
	long v = strtol(n->str, &end, 10);
	if (!*n->str || *end || errno) {
		ERR(L, n, "'%s' must be an integer, not '%s'", key, n->str);
		return false;
	}
	if (v < min) {
		ERR(L, n, "'%s' must be at least %ld, not %ld", key, min, v);
		return false;
	}
	if (v > INT_MAX) {
		ERR(L, n, "'%s' is too large: %ld", key, v);
		return false;
	}
	*out = v;
	return true;
}

bool ld_get_duration(struct loader *L, const struct ynode *n, const char *key, uint64_t *ms)
{
	if (!ld_want_scalar(L, n, key, "a duration"))
		return false;
	if (!duration_parse(n->str, ms)) {
		ERR(L, n, "'%s': bad duration '%s' (examples: 250ms, 10s, 5m, 1h30m, or a number of seconds)", key,
		    n->str);
		return false;
	}
	return true;
}

static bool get_bool(struct loader *L, const struct ynode *n, const char *key, bool *out)
{
	if (!ld_want_scalar(L, n, key, "true or false"))
		return false;
	if (!strcmp(n->str, "true") || !strcmp(n->str, "True") || !strcmp(n->str, "yes")) {
		*out = true;
		return true;
	}
	if (!strcmp(n->str, "false") || !strcmp(n->str, "False") || !strcmp(n->str, "no")) {
		*out = false;
		return true;
	}
	ERR(L, n, "'%s' must be true or false, not '%s'", key, n->str);
	return false;
}

static bool get_number(struct loader *L, const struct ynode *n, const char *key, double min, double max,
		       double *out)
{
	if (!ld_want_scalar(L, n, key, "a number"))
		return false;
	char *end;
	double v = strtod(n->str, &end);
	if (!*n->str || *end || !isfinite(v)) {
		ERR(L, n, "'%s' must be a number, not '%s'", key, n->str);
		return false;
	}
	if (v < min || v > max) {
		ERR(L, n, "'%s' must be between %g and %g, not %g", key, min, max, v);
		return false;
	}
	*out = v;
	return true;
}

/* An int >= 0, or "P%" with 0 <= P <= 100. */
static bool get_amount(struct loader *L, const struct ynode *n, const char *key, struct amount *a)
{
	if (!ld_want_scalar(L, n, key, "an integer or a percentage"))
		return false;
	size_t len = n->len;
	char *end;
	if (len > 1 && n->str[len - 1] == '%') {
		double v = strtod(n->str, &end);
		if (end != n->str + len - 1 || !isfinite(v) || v < 0 || v > 100) {
			ERR(L, n, "'%s': bad percentage '%s' (expected 0%% to 100%%)", key, n->str);
			return false;
		}
		a->set = true;
		a->percent = true;
		a->value = v;
		return true;
	}
	long v = strtol(n->str, &end, 10);
	if (!*n->str || *end || v < 0 || v > INT_MAX) {
		ERR(L, n, "'%s' must be a count or a percentage like \"50%%\", not '%s'", key, n->str);
		return false;
	}
	a->set = true;
	a->percent = false;
	a->value = (double)v;
	return true;
}

const char *ld_closest(const char *key, const char *const *set, size_t n)
{
	return closest_name(key, set, n);
}

bool ld_in_set(const char *key, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(key, set[i]))
			return true;
	return false;
}

const struct step_fan step_fan_none;
const struct step_mods step_mods_none;
const struct retry_spec retry_default = {
	.attempts = 1, .delay_ms = 1000, .backoff = 2, .max_delay_ms = 0, .jitter = 0.1};
struct step *const step_no_handlers[HANDLER__COUNT];

/* The shared empty values are const: a step's own copy is made here, and only here is it written. */
struct step_fan *ld_fan(struct step *s)
{
	if (s->fan == &step_fan_none)
		s->fan = xcalloc(1, sizeof *s->fan);
	return (struct step_fan *)s->fan;
}

struct step_mods *ld_mods(struct step *s)
{
	if (s->mods == &step_mods_none)
		s->mods = xcalloc(1, sizeof *s->mods);
	return (struct step_mods *)s->mods;
}

static struct retry_spec *own_retry(struct step *s)
{
	if (s->retry == &retry_default) {
		struct retry_spec *r = xmalloc(sizeof *r);
		*r = retry_default;
		s->retry = r;
	}
	return (struct retry_spec *)s->retry;
}

static void unknown_key(struct loader *L, const struct ynode *k, const char *where, const char *const *a, size_t na,
			const char *const *b, size_t nb)
{
	const char *hint = ld_closest(k->str, a, na);
	if (!hint && b)
		hint = ld_closest(k->str, b, nb);
	if (hint)
		ERR(L, k, "unknown key '%s' in %s; did you mean '%s'?", k->str, where, hint);
	else
		ERR(L, k, "unknown key '%s' in %s", k->str, where);
}

/* Checks every key of a map is a scalar in the allowed set(s). */
void ld_check_keys(struct loader *L, const struct ynode *map, const char *where, const char *const *a,
		       size_t na, const char *const *b, size_t nb)
{
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct ynode *k = map->items[i];
		if (k->kind != YNODE_SCALAR) {
			ERR(L, k, "keys in %s must be names, not %s", where, ld_type_name(k));
			continue;
		}
		if (!ld_in_set(k->str, a, na) && !(b && ld_in_set(k->str, b, nb)))
			unknown_key(L, k, where, a, na, b, nb);
	}
}

static struct tmpl *get_tmpl(struct loader *L, const struct ynode *n, const char *key)
{
	return ld_get_tmpl(L, n, key);
}

struct tmpl *ld_get_tmpl(struct loader *L, const struct ynode *n, const char *key)
{
	if (!ld_want_scalar(L, n, key, "a string"))
		return NULL;
	if (memchr(n->str, '\0', n->len)) {
		ERR(L, n, "'%s' holds a NUL byte, which no command can be given", key);
		return NULL;
	}
	char *err = NULL;
	size_t off = 0;
	struct tmpl *t = tmpl_parse(n->str, n->len, &err, &off);
	if (t)
		ld_tmpl_place(t, n);
	if (!t) {
		/* columns are exact only for single-line plain scalars */
		int col = n->col + (n->plain && !memchr(n->str, '\n', n->len) ? (int)off : 0);
		diags_add(L->d, L->file, n->line, col, "'%s': %s", key, err);
		free(err);
	}
	return t;
}

static void parse_env(struct loader *L, const struct ynode *n, struct kv **env, size_t *n_env,
		      struct tmpl ***vals)
{
	if (n->kind != YNODE_MAP) {
		ERR(L, n, "'env' must be a map of NAME: value, not %s", ld_type_name(n));
		return;
	}
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *k = n->items[i], *v = n->items[i + 1];
		if (k->kind != YNODE_SCALAR || !k->len || strchr(k->str, '=')) {
			ERR(L, k, "bad environment variable name");
			continue;
		}
		if (!strncmp(k->str, "__baton_", 8)) {
			ERR(L, k, "'%s': names starting with __baton_ are baton's own (they carry ${{ }} values)", k->str);
			continue;
		}
		struct tmpl *t = get_tmpl(L, v, k->str);
		if (!t)
			continue;
		*env = xrealloc(*env, (*n_env + 1) * sizeof **env);
		*vals = xrealloc(*vals, (*n_env + 1) * sizeof **vals);
		(*env)[*n_env] = (struct kv){xstrdup(k->str), xstrndup(v->str, v->len), v->line, v->col, k->line, k->col};
		(*vals)[*n_env] = t;
		(*n_env)++;
	}
}

static void parse_retry(struct loader *L, const struct ynode *n, struct step *s)
{
	struct retry_spec *r = own_retry(s);
	long v;
	s->has_retry = true;
	if (n->kind == YNODE_SCALAR) {
		if (ld_get_int(L, n, "retry", 0, &v)) {
			if (v >= RETRY_MAX)
				ERR(L, n, "'retry': at most %d retries", RETRY_MAX - 1);
			else
				r->attempts = (int)v + 1;
		}
		return;
	}
	if (n->kind != YNODE_MAP) {
		ERR(L, n, "'retry' must be a number of retries or a map, not %s", ld_type_name(n));
		return;
	}
	ld_check_keys(L, n, "retry", retry_keys, ARRAY_LEN(retry_keys), NULL, 0);
	const struct ynode *x;
	if ((x = ynode_get(n, "attempts")) && ld_get_int(L, x, "attempts", 1, &v)) {
		if (v > RETRY_MAX)
			ERR(L, x, "'attempts': at most %d", RETRY_MAX);
		else
			r->attempts = (int)v;
	}
	if ((x = ynode_get(n, "delay")))
		ld_get_duration(L, x, "delay", &r->delay_ms);
	if ((x = ynode_get(n, "backoff")))
		get_number(L, x, "backoff", 1, 1000, &r->backoff);
	if ((x = ynode_get(n, "max_delay")))
		ld_get_duration(L, x, "max_delay", &r->max_delay_ms);
	if ((x = ynode_get(n, "jitter")))
		get_number(L, x, "jitter", 0, 1, &r->jitter);
	if ((x = ynode_get(n, "on_exit"))) {
		const struct ynode *const *items = x->kind == YNODE_SEQ ? (const struct ynode *const *)x->items : &x;
		size_t cnt = x->kind == YNODE_SEQ ? x->n : 1;
		if (x->kind == YNODE_MAP) {
			ERR(L, x, "'on_exit' must be an exit code or a list of them");
			return;
		}
		for (size_t i = 0; i < cnt; i++)
			if (ld_get_int(L, items[i], "on_exit", 0, &v)) {
				if (v > 255) {
					ERR(L, items[i], "'on_exit': exit codes are 0 to 255, not %ld", v);
					continue;
				}
				r->on_exit = xrealloc(r->on_exit, (r->n_on_exit + 1) * sizeof *r->on_exit);
				r->on_exit[r->n_on_exit++] = (int)v;
			}
	}
}

static bool semaphore_known(struct loader *L, const char *name)
{
	for (size_t i = 0; i < L->p->n_semaphores; i++)
		if (!strcmp(L->p->semaphores[i].name, name))
			return true;
	return false;
}

static void add_semaphore(struct loader *L, const struct ynode *n, struct step *s)
{
	if (!ld_want_scalar(L, n, "semaphore", "a name"))
		return;
	if (!semaphore_known(L, n->str)) {
		const char **names = xcalloc(L->p->n_semaphores + 1, sizeof *names);
		for (size_t i = 0; i < L->p->n_semaphores; i++)
			names[i] = L->p->semaphores[i].name;
		const char *hint = ld_closest(n->str, names, L->p->n_semaphores);
		if (hint)
			ERR(L, n, "unknown semaphore '%s'; did you mean '%s'?", n->str, hint);
		else
			ERR(L, n, "unknown semaphore '%s' (declare it under 'semaphores:')", n->str);
		free(names);
		return;
	}
	struct step_mods *m = ld_mods(s);
	m->semaphores = xrealloc(m->semaphores, (m->n_semaphores + 1) * sizeof *m->semaphores);
	m->semaphores[m->n_semaphores++] = xstrdup(n->str);
}

static void parse_when(struct loader *L, const struct ynode *n, struct step *s)
{
	if (!ld_want_scalar(L, n, "when", "an expression"))
		return;
	const char *src = n->str;
	size_t len = n->len;
	/* `when: ${{ x }}` and `when: x` mean the same */
	while (len && (src[0] == ' ' || src[0] == '\t'))
		src++, len--;
	while (len && (src[len - 1] == ' ' || src[len - 1] == '\t' || src[len - 1] == '\n'))
		len--;
	if (len >= 5 && !memcmp(src, "${{", 3) && !memcmp(src + len - 2, "}}", 2) &&
	    !memmem(src + 3, len - 5, "${{", 3)) {
		src += 3;
		len -= 5;
	}
	char *err = NULL;
	struct expr *e = expr_parse(src, len, &err);
	if (!e) {
		ERR(L, n, "'when': %s", err);
		free(err);
		return;
	}
	struct step_mods *m = ld_mods(s);
	m->when = e;
	m->when_src = xstrndup(src, len);
	m->when_line = n->line;
	m->when_col = n->col;
}

static void parse_mode(struct loader *L, const struct ynode *n, struct step *s)
{
	static const char *const modes[] = {"all", "settle", "any", "race"};
	if (!ld_want_scalar(L, n, "mode", "all, settle, any or race"))
		return;
	for (size_t i = 0; i < ARRAY_LEN(modes); i++)
		if (!strcmp(n->str, modes[i])) {
			struct step_fan *f = ld_fan(s);
			f->mode = (enum fan_mode)i;
			f->has_mode = true;
			return;
		}
	const char *hint = ld_closest(n->str, modes, ARRAY_LEN(modes));
	if (hint)
		ERR(L, n, "unknown mode '%s'; did you mean '%s'?", n->str, hint);
	else
		ERR(L, n, "unknown mode '%s' (expected all, settle, any or race)", n->str);
}

/* Parses the modifiers shared by steps and `defaults`. */
static void parse_modifier(struct loader *L, const char *key, const struct ynode *v, struct step *s)
{
	long iv;
	if (!strcmp(key, "timeout")) {
		s->has_timeout = ld_get_duration(L, v, key, &s->timeout_ms);
	} else if (!strcmp(key, "kill_grace")) {
		uint64_t ms;
		if (ld_get_duration(L, v, key, &ms)) {
			ld_mods(s)->kill_grace_ms = ms;
			s->has_kill_grace = true;
		}
	} else if (!strcmp(key, "retry")) {
		parse_retry(L, v, s);
	} else if (!strcmp(key, "shell")) {
		if (ld_want_scalar(L, v, key, "a command such as bash or \"/bin/sh -e\"")) {
			if (strspn(v->str, " \t") == v->len)
				ERR(L, v, "'shell' is empty");
			else
				ld_mods(s)->shell = xstrdup(v->str);
		}
	} else if (!strcmp(key, "cwd")) {
		struct tmpl *t = get_tmpl(L, v, key);
		if (t)
			ld_mods(s)->cwd = t;
	} else if (!strcmp(key, "env")) {
		struct step_mods *m = ld_mods(s);
		parse_env(L, v, &m->env, &m->n_env, &m->env_vals);
	} else if (!strcmp(key, "when")) {
		parse_when(L, v, s);
	} else if (!strcmp(key, "mode")) {
		parse_mode(L, v, s);
	} else if (!strcmp(key, "min_success")) {
		struct amount a = {0};
		if (get_amount(L, v, key, &a))
			ld_fan(s)->min_success = a;
	} else if (!strcmp(key, "max_concurrency")) {
		if (ld_get_int(L, v, key, 1, &iv))
			s->max_concurrency = (int)iv;
	} else if (!strcmp(key, "priority")) {
		if (ld_want_scalar(L, v, key, "an integer")) {
			char *end;
			errno = 0;
			long p = strtol(v->str, &end, 10);
			if (!*v->str || *end || errno || p > INT_MAX || p < INT_MIN)
				ERR(L, v, "'priority' must be an integer, not '%s'", v->str);
			else {
				s->priority = (int)p;
				s->has_priority = true;
			}
		}
	} else if (!strcmp(key, "semaphore")) {
		if (v->kind == YNODE_SEQ)
			for (size_t i = 0; i < v->n; i++)
				add_semaphore(L, v->items[i], s);
		else
			add_semaphore(L, v, s);
	} else if (!strcmp(key, "continue_on_error")) {
		struct field_expr fx = {0};
		if (!ld_field_expr(L, v, key, &fx))
			get_bool(L, v, key, &s->continue_on_error);
		else if (fx.e)
			ld_mods(s)->continue_x = fx;
	} else if (!strcmp(key, "label")) {
		struct tmpl *t = get_tmpl(L, v, key);
		if (t)
			ld_fan(s)->label = t;
	} else if (!strcmp(key, "name")) {
		if (ld_want_scalar(L, v, key, "a string"))
			s->name = xstrdup(v->str);
	}
}

static struct step *parse_step(struct loader *L, const struct ynode *n, struct step *parent, int depth);

static void add_child(struct step *parent, struct step *c)
{
	parent->children = xrealloc(parent->children, (parent->n_children + 1) * sizeof *parent->children);
	parent->children[parent->n_children++] = c;
	c->parent = parent;
}

static void parse_list(struct loader *L, const struct ynode *n, struct step *s, const char *key, int depth)
{
	if (n->kind != YNODE_SEQ) {
		ERR(L, n, "'%s' must be a list of steps, not %s", key, ld_type_name(n));
		return;
	}
	if (n->n == 0) {
		ERR(L, n, "'%s' needs at least one step", key);
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		struct step *c = parse_step(L, n->items[i], s, depth + 1);
		if (c)
			add_child(s, c);
		/*
		 * The step holds what it needs now: free its YAML so a large plan is not
		 * held twice. The tree is the loader's own; only here does it shrink.
		 */
		ynode_free(n->items[i]);
		((struct ynode *)n)->items[i] = NULL;
	}
}

/* Points what a step has not set at the shared empty values. */
static void step_init_empty(struct step *s)
{
	s->retry = &retry_default;
	s->fan = &step_fan_none;
	s->mods = &step_mods_none;
	s->handlers = step_no_handlers;
}

static struct step *step_new(enum step_kind kind, const struct ynode *at)
{
	struct step *s = xcalloc(1, sizeof *s);
	s->kind = kind;
	s->line = at->line;
	s->col = at->col;
	step_init_empty(s);
	return s;
}

static bool valid_id(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

static void parse_stages(struct loader *L, const struct ynode *n, struct step *s, int depth)
{
	if (n->kind != YNODE_SEQ || n->n == 0) {
		ERR(L, n, "'stages' must be a non-empty list of {name, steps}");
		return;
	}
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *m = n->items[i];
		if (m->kind != YNODE_MAP) {
			ERR(L, m, "a stage must be a map with 'name' and 'steps', not %s", ld_type_name(m));
			continue;
		}
		ld_check_keys(L, m, "a stage", stage_keys, ARRAY_LEN(stage_keys), NULL, 0);
		struct step *st = step_new(STEP_STAGE, m);
		L->n_steps++;
		for (size_t k = 0; k + 1 < m->n; k += 2) {
			const struct ynode *key = m->items[k], *v = m->items[k + 1];
			if (key->kind != YNODE_SCALAR)
				continue;
			if (!strcmp(key->str, "id")) {
				if (ld_want_scalar(L, v, "id", "an id")) {
					if (!valid_id(v->str))
						ERR(L, v, "bad id '%s': use lower-case letters, digits, '_' and '-'", v->str);
					else
						st->id = xstrdup(v->str);
				}
			} else if (strcmp(key->str, "steps") != 0 && ld_in_set(key->str, stage_keys, ARRAY_LEN(stage_keys)))
				parse_modifier(L, key->str, v, st);
		}
		const struct ynode *steps = ynode_get(m, "steps");
		if (!steps)
			ERR(L, m, "a stage needs 'steps'");
		else
			parse_list(L, steps, st, "steps", depth + 1);
		add_child(s, st);
	}
}

static void parse_kind(struct loader *L, const char *kind, const struct ynode *v, struct step *s, int depth)
{
	if (!strcmp(kind, "run")) {
		s->kind = STEP_RUN;
		if (v->kind == YNODE_SEQ) {
			if (v->n == 0)
				ERR(L, v, "'run' as a list needs at least the program name");
			s->argv = xcalloc(v->n ? v->n : 1, sizeof *s->argv);
			for (size_t i = 0; i < v->n; i++) {
				struct tmpl *t = get_tmpl(L, v->items[i], "run");
				if (t)
					s->argv[s->argc++] = t;
			}
		} else if (v->kind == YNODE_SCALAR) {
			if (strspn(v->str, " \t\n") == v->len)
				ERR(L, v, "'run' is empty");
			s->run = get_tmpl(L, v, "run");
			ld_prepare_run(L, v, s->run);
		} else {
			ERR(L, v, "'run' must be a command string or an argv list, not a map");
		}
	} else if (!strcmp(kind, "steps")) {
		s->kind = STEP_STEPS;
		parse_list(L, v, s, "steps", depth);
	} else if (!strcmp(kind, "parallel")) {
		s->kind = STEP_PARALLEL;
		parse_list(L, v, s, "parallel", depth);
	} else if (!strcmp(kind, "stages")) {
		s->kind = STEP_STAGES;
		parse_stages(L, v, s, depth);
	} else if (!strcmp(kind, "approve")) {
		s->kind = STEP_APPROVE;
		ld_parse_approve(L, v, s);
	} else if (!strcmp(kind, "copy") || !strcmp(kind, "fetch")) {
		s->kind = STEP_RUN;
		ld_parse_copy(L, kind, v, s);
	} else if (!strcmp(kind, "sleep")) {
		s->kind = STEP_SLEEP;
		ld_get_duration(L, v, "sleep", &s->sleep_ms);
	} else if (!strcmp(kind, "barrier")) {
		s->kind = STEP_BARRIER;
		if (v->kind == YNODE_MAP) {
			static const char *const bk[] = {"name", "timeout"};
			ld_check_keys(L, v, "barrier", bk, 2, NULL, 0);
			const struct ynode *nm = ynode_get(v, "name"), *to = ynode_get(v, "timeout");
			if (!nm)
				ERR(L, v, "a barrier needs a 'name'");
			else if (ld_want_scalar(L, nm, "name", "a name"))
				s->barrier = xstrdup(nm->str);
			if (to)
				ld_get_duration(L, to, "timeout", &s->barrier_timeout_ms);
		} else if (ld_want_scalar(L, v, "barrier", "a name or {name, timeout}")) {
			s->barrier = xstrdup(v->str);
		}
	} else if (!strcmp(kind, "join")) {
		s->kind = STEP_JOIN;
		const struct ynode *const *items = v->kind == YNODE_SEQ ? (const struct ynode *const *)v->items : &v;
		size_t cnt = v->kind == YNODE_SEQ ? v->n : 1;
		if (v->kind == YNODE_MAP || (v->kind == YNODE_SEQ && !v->n))
			ERR(L, v, "'join' takes an async name or a list of them");
		else
			for (size_t i = 0; i < cnt; i++) {
				if (!ld_want_scalar(L, items[i], "join", "an async name"))
					continue;
				s->join = xrealloc(s->join, (s->n_join + 1) * sizeof *s->join);
				s->join[s->n_join++] = xstrdup(items[i]->str);
				L->joins = xrealloc(L->joins, (L->n_joins + 1) * sizeof *L->joins);
				L->joins[L->n_joins++] = (struct async_ref){s->join[s->n_join - 1], items[i]->line, items[i]->col};
			}
	}
}

static void parse_for_each(struct loader *L, const struct ynode *v, struct step *s)
{
	struct step_fan *f = ld_fan(s);
	f->for_each_line = v->line;
	f->for_each_col = v->col;
	if (v->kind == YNODE_SEQ) {
		f->for_each = ynode_to_json(v);
		/* string items may interpolate: parsed now, checked with the rest, rendered per run */
		f->for_each_tmpls = xcalloc(v->n ? v->n : 1, sizeof *f->for_each_tmpls);
		for (size_t i = 0; i < v->n; i++)
			if (v->items[i]->kind == YNODE_SCALAR && strstr(v->items[i]->str, "${{"))
				f->for_each_tmpls[i] = get_tmpl(L, v->items[i], "for_each");
		return;
	}
	if (v->kind != YNODE_SCALAR) {
		ERR(L, v, "'for_each' must be a list or an expression giving a list, not a map");
		return;
	}
	const char *src = v->str;
	size_t len = v->len;
	while (len && (*src == ' ' || *src == '\t'))
		src++, len--;
	while (len && (src[len - 1] == ' ' || src[len - 1] == '\t' || src[len - 1] == '\n'))
		len--;
	if (len >= 5 && !memcmp(src, "${{", 3) && !memcmp(src + len - 2, "}}", 2)) {
		src += 3;
		len -= 5;
	}
	char *err = NULL;
	f->for_each_expr = expr_parse(src, len, &err);
	if (!f->for_each_expr) {
		ERR(L, v, "'for_each': %s", err);
		free(err);
	} else if (expr_is_literal(f->for_each_expr)) {
		ERR(L, v, "'for_each' takes a list or an expression giving one, not '%s'", v->str);
	}
}

static void parse_batch(struct loader *L, const struct ynode *v, struct step *s)
{
	static const char *const keys[] = {"size", "pause", "max_failures"};
	if (v->kind != YNODE_MAP) {
		ERR(L, v, "'batch' must be a map with size, pause and max_failures");
		return;
	}
	ld_check_keys(L, v, "batch", keys, ARRAY_LEN(keys), NULL, 0);
	struct step_fan *f = ld_fan(s);
	struct batch_spec *b = &f->batch;
	f->has_batch = true;
	const struct ynode *x = ynode_get(v, "size");
	if (!x) {
		ERR(L, v, "'batch' needs a 'size'");
	} else if (!ld_field_expr(L, x, "size", &b->size_x)) {
		const struct ynode *const *items = x->kind == YNODE_SEQ ? (const struct ynode *const *)x->items : &x;
		size_t cnt = x->kind == YNODE_SEQ ? x->n : 1;
		if (x->kind == YNODE_MAP || !cnt)
			ERR(L, x, "'size' is a count, a percentage or a list of them");
		else
			for (size_t i = 0; i < cnt; i++) {
				struct amount a = {0};
				if (!get_amount(L, items[i], "size", &a))
					continue;
				if (a.value <= 0) {
					ERR(L, items[i], "a batch size must be at least 1 (or above 0%%)");
					continue;
				}
				b->sizes = xrealloc(b->sizes, (b->n_sizes + 1) * sizeof *b->sizes);
				b->sizes[b->n_sizes++] = a;
			}
	}
	if ((x = ynode_get(v, "pause")) && !ld_field_expr(L, x, "pause", &b->pause_x))
		ld_get_duration(L, x, "pause", &b->pause_ms);
	if ((x = ynode_get(v, "max_failures")) && !ld_field_expr(L, x, "max_failures", &b->max_failures_x))
		get_amount(L, x, "max_failures", &b->max_failures);
}

static void parse_handler(struct loader *L, const char *key, const struct ynode *v, struct step *s, int depth)
{
	enum handler_kind k = !strcmp(key, "on_success") ? HANDLER_SUCCESS
			      : !strcmp(key, "on_failure") ? HANDLER_FAILURE
							   : HANDLER_FINALLY;
	struct step *h = step_new(STEP_STEPS, v);
	h->is_handler = true;
	h->id = xstrdup(key);
	h->parent = s;
	L->n_steps++;
	parse_list(L, v, h, key, depth + 1);
	if (s->handlers == step_no_handlers)
		s->handlers = xcalloc(HANDLER__COUNT, sizeof *s->handlers);
	((struct step **)s->handlers)[k] = h;
	s->captured = true; /* its handlers may read ${{ result.stdout }} */
}

static const char *kind_of(struct loader *L, const struct ynode *n, const struct ynode **val)
{
	const char *kind = NULL;
	const struct ynode *first = NULL;
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *k = n->items[i];
		if (k->kind != YNODE_SCALAR || !ld_in_set(k->str, kind_keys, ARRAY_LEN(kind_keys)))
			continue;
		if (kind) {
			ERR(L, k, "a step has exactly one kind; this one has both '%s' (line %d) and '%s'", kind,
			    first->line, k->str);
			continue;
		}
		kind = k->str;
		first = k;
		*val = n->items[i + 1];
	}
	return kind;
}

static struct step *parse_step(struct loader *L, const struct ynode *n, struct step *parent, int depth)
{
	(void)parent;
	if (n->kind == YNODE_SCALAR) {
		struct step *s = step_new(STEP_RUN, n);
		if (strspn(n->str, " \t\n") == n->len)
			ERR(L, n, "empty step");
		s->run = get_tmpl(L, n, "run");
		ld_prepare_run(L, n, s->run);
		L->n_steps++;
		return s;
	}
	if (n->kind != YNODE_MAP) {
		ERR(L, n, "a step must be a command string or a map, not %s", ld_type_name(n));
		return NULL;
	}
	const struct ynode *kv = NULL;
	bool hosts_ok = false;
	const char *kind = kind_of(L, n, &kv);
	ld_check_keys(L, n, "a step", kind_keys, ARRAY_LEN(kind_keys), mod_keys, ARRAY_LEN(mod_keys));
	struct step *s = step_new(STEP_STEPS, n);
	L->n_steps++;
	if (!kind) {
		ERR(L, n, "a step needs one of: run, steps, parallel, stages, barrier, sleep, join, approve, copy, fetch");
		return s;
	}
	parse_kind(L, kind, kv, s, depth);
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct ynode *k = n->items[i], *v = n->items[i + 1];
		if (k->kind != YNODE_SCALAR || !ld_in_set(k->str, mod_keys, ARRAY_LEN(mod_keys)))
			continue;
		if (!strcmp(k->str, "id")) {
			if (ld_want_scalar(L, v, "id", "an id")) {
				if (!valid_id(v->str))
					ERR(L, v, "bad id '%s': use lower-case letters, digits, '_' and '-'", v->str);
				else
					s->id = xstrdup(v->str);
			}
		} else if (!strcmp(k->str, "async")) {
			if (ld_want_scalar(L, v, "async", "a name")) {
				for (size_t j = 0; j < L->n_asyncs; j++)
					if (!strcmp(L->asyncs[j].name, v->str))
						ERR(L, v, "async name '%s' is already used at line %d", v->str,
						    L->asyncs[j].line);
				struct step_mods *m = ld_mods(s);
				m->async = xstrdup(v->str);
				s->captured = true; /* ${{ async.NAME.stdout }} */
				L->asyncs = xrealloc(L->asyncs, (L->n_asyncs + 1) * sizeof *L->asyncs);
				L->asyncs[L->n_asyncs++] = (struct async_ref){m->async, v->line, v->col};
			}
		} else if (!strcmp(k->str, "on")) {
			hosts_ok = on_parse(L, v, s);
		} else if (!strcmp(k->str, "for_each")) {
			parse_for_each(L, v, s);
		} else if (!strcmp(k->str, "batch")) {
			parse_batch(L, v, s);
		} else if (!strcmp(k->str, "on_success") || !strcmp(k->str, "on_failure") || !strcmp(k->str, "finally")) {
			parse_handler(L, k->str, v, s, depth);
		} else {
			parse_modifier(L, k->str, v, s);
		}
	}
	const struct step_fan *f = s->fan;
	bool fan = s->kind == STEP_PARALLEL || s->kind == STEP_STAGES || step_is_foreach(s);
	if (f->has_batch && !step_is_foreach(s))
		ERR(L, ynode_get(n, "batch"), "'batch' needs a fan-out over items or hosts ('for_each' or 'on')");
	if (s->mods->async && s->kind == STEP_JOIN)
		ERR(L, ynode_get(n, "async"), "a 'join' step cannot itself be async");
	if (f->label && !f->for_each && !f->for_each_expr)
		ERR(L, ynode_get(n, "label"), "'label' names the instances of a 'for_each': this step has none");
	if ((f->has_mode || f->min_success.set) && !fan) {
		const struct ynode *at = ynode_get(n, f->has_mode ? "mode" : "min_success");
		ERR(L, at, "'%s' applies only to a fan-out (parallel, stages, for_each, on), not to a '%s' step",
		    f->has_mode ? "mode" : "min_success", kind);
	}
	if (f->min_success.set && f->has_mode && f->mode != MODE_SETTLE) {
		const struct ynode *at = ynode_get(n, "min_success");
		ERR(L, at, "'min_success' implies mode 'settle'; it cannot be combined with mode '%s'",
		    fan_mode_name(f->mode));
	}
	if (f->min_success.set && !f->min_success.percent && f->for_each && !f->on &&
	    f->min_success.value > (double)json_array_size(f->for_each)) {
		const struct ynode *at = ynode_get(n, "min_success");
		ERR(L, at, "'min_success' is %g but the for_each list has only %zu item%s", f->min_success.value,
		    json_array_size(f->for_each), json_array_size(f->for_each) == 1 ? "" : "s");
	}
	/* over hosts (before --limit), times the items when for_each is a literal list */
	if (f->min_success.set && !f->min_success.percent && hosts_ok && !f->for_each_expr) {
		size_t inst = f->n_hosts * (f->for_each ? json_array_size(f->for_each) : 1);
		if (f->min_success.value > (double)inst)
			ERR(L, ynode_get(n, "min_success"), "'min_success' is %g but %s only %zu instance%s",
			    f->min_success.value, f->for_each ? "'on' and 'for_each' make" : "'on' makes", inst,
			    inst == 1 ? "" : "s");
	}
	if (f->min_success.set && fan && !f->min_success.percent && !step_is_foreach(s)) {
		size_t inst = s->n_children;
		if (s->kind == STEP_STAGES) {
			inst = SIZE_MAX;
			for (size_t i = 0; i < s->n_children; i++)
				if (s->children[i]->n_children < inst)
					inst = s->children[i]->n_children;
		}
		if (f->min_success.value > (double)inst) {
			const struct ynode *at = ynode_get(n, "min_success");
			ERR(L, at, "'min_success' is %g but the fan-out has only %zu instance%s", f->min_success.value,
			    inst, inst == 1 ? "" : "s");
		}
	}
	return s;
}

/* ---- ids, full ids and the step index ---- */

static size_t hash_str(const char *s)
{
	size_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static size_t count_tree(const struct step *s)
{
	size_t n = 1;
	for (size_t i = 0; i < s->n_children; i++)
		n += count_tree(s->children[i]);
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (s->handlers[k])
			n += count_tree(s->handlers[k]);
	return n;
}

static void index_put(struct loader *L, struct step *s)
{
	struct plan *p = L->p;
	size_t i = hash_str(s->full_id) & (p->index_cap - 1);
	while (p->index[i])
		i = (i + 1) & (p->index_cap - 1);
	p->index[i] = s;
}

struct step *plan_find_step(const struct plan *p, const char *full_id)
{
	struct step **index = p->index;
	size_t cap = p->index_cap;
	if (!index)
		return NULL;
	size_t i = hash_str(full_id) & (cap - 1);
	while (index[i]) {
		if (!strcmp(index[i]->full_id, full_id))
			return index[i];
		i = (i + 1) & (cap - 1);
	}
	return NULL;
}

static const char *kind_id_name(const struct step *s)
{
	return s->kind == STEP_STAGE ? "stage" : step_kind_word(s);
}

/* The ids of one step's children, for checking new ones in constant time. */
struct idset {
	const char **v;
	size_t cap;
};

static void idset_add(struct idset *set, const char *id)
{
	size_t i = hash_str(id) & (set->cap - 1);
	while (set->v[i]) {
		if (!strcmp(set->v[i], id))
			return;
		i = (i + 1) & (set->cap - 1);
	}
	set->v[i] = id;
}

static bool idset_has(const struct idset *set, const char *id)
{
	size_t i = hash_str(id) & (set->cap - 1);
	while (set->v[i]) {
		if (!strcmp(set->v[i], id))
			return true;
		i = (i + 1) & (set->cap - 1);
	}
	return false;
}

/* Gives each child an id: explicit ones first, then defaults that avoid them. */
static void assign_child_ids(struct loader *L, struct step *s)
{
	struct idset set = {0};
	set.cap = 16;
	while (set.cap < 2 * (s->n_children + HANDLER__COUNT + 1))
		set.cap *= 2;
	set.v = xcalloc(set.cap, sizeof *set.v);
	/* a step's handlers take the ids on_success, on_failure and finally beside its children */
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (s->handlers[k])
			idset_add(&set, handler_name((enum handler_kind)k));
	for (size_t i = 0; i < s->n_children; i++) {
		struct step *c = s->children[i];
		if (!c->id)
			continue;
		if (idset_has(&set, c->id)) {
			bool handler = false;
			for (int k = 0; k < HANDLER__COUNT; k++)
				handler |= s->handlers[k] && !strcmp(handler_name((enum handler_kind)k), c->id);
			if (handler) {
				diags_add(L->d, L->file, c->line, c->col,
					  "id '%s' is taken by the %s steps beside it; choose another", c->id, c->id);
				continue;
			}
			for (size_t j = 0; j < i; j++)
				if (s->children[j]->id && !strcmp(s->children[j]->id, c->id)) {
					diags_add(L->d, L->file, c->line, c->col,
						  "duplicate id '%s' (also used by the step at line %d)", c->id,
						  s->children[j]->line);
					break;
				}
			continue;
		}
		idset_add(&set, c->id);
	}
	for (size_t i = 0; i < s->n_children; i++) {
		struct step *c = s->children[i];
		if (c->id)
			continue;
		/* the slug of the name, else KIND-N; then numbered until no sibling has it */
		char *slug = c->name ? str_slug(c->name) : xstrdup("");
		char *id = *slug ? xstrdup(slug) : xasprintf("%s-%zu", kind_id_name(c), i + 1);
		for (size_t n = 2; idset_has(&set, id); n++) {
			free(id);
			id = *slug && n == 2 ? xasprintf("%s-%zu", slug, i + 1)
					     : xasprintf("%s-%zu-%zu", *slug ? slug : kind_id_name(c), i + 1, n);
		}
		free(slug);
		c->id = id;
		idset_add(&set, id);
	}
	free(set.v);
}

static void assign_ids(struct loader *L, struct step *s, size_t *order)
{
	assign_child_ids(L, s);
	for (size_t i = 0; i < s->n_children; i++) {
		struct step *c = s->children[i];
		c->full_id = s == L->p->root ? xstrdup(c->id) : xasprintf("%s.%s", s->full_id, c->id);
		c->order = ++*order;
		index_put(L, c);
		assign_ids(L, c, order);
	}
	/* handlers follow the step's own subtree: STEP.on_failure.run-1 */
	for (int k = 0; k < HANDLER__COUNT; k++) {
		struct step *h = s->handlers[k];
		if (!h)
			continue;
		h->full_id = s == L->p->root ? xstrdup(h->id) : xasprintf("%s.%s", s->full_id, h->id);
		h->order = ++*order;
		index_put(L, h);
		assign_ids(L, h, order);
	}
}

struct step *plan_resolve_step_ref(const struct plan *p, const struct step *from, const char *const *segs,
				   size_t nsegs, size_t *used)
{
	struct buf b = {0};
	for (size_t k = nsegs; k > 0; k--) {
		for (const struct step *scope = from ? from->parent : NULL;; scope = scope->parent) {
			buf_reset(&b);
			if (scope && scope != p->root)
				buf_printf(&b, "%s.", scope->full_id);
			for (size_t i = 0; i < k; i++)
				buf_printf(&b, "%s%s", i ? "." : "", segs[i]);
			struct step *t = plan_find_step(p, b.data);
			if (t) {
				buf_free(&b);
				*used = k;
				return t;
			}
			if (!scope || scope == p->root)
				break;
		}
	}
	buf_free(&b);
	return NULL;
}

/* ---- top level ---- */

static void parse_semaphores(struct loader *L, const struct ynode *n)
{
	if (n->kind != YNODE_MAP) {
		ERR(L, n, "'semaphores' must be a map of name: capacity");
		return;
	}
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		long v;
		const struct ynode *k = n->items[i];
		if (k->kind != YNODE_SCALAR)
			continue;
		if (!ld_get_int(L, n->items[i + 1], k->str, 1, &v))
			continue;
		struct plan *p = L->p;
		p->semaphores = xrealloc(p->semaphores, (p->n_semaphores + 1) * sizeof *p->semaphores);
		p->semaphores[p->n_semaphores++] = (struct semaphore_def){xstrdup(k->str), (int)v};
	}
}

static void parse_top(struct loader *L, const struct ynode *root)
{
	struct plan *p = L->p;
	ld_check_keys(L, root, "the plan", top_keys, ARRAY_LEN(top_keys), NULL, 0);
	const struct ynode *x;
	long v;
	if ((x = ynode_get(root, "name")) && ld_want_scalar(L, x, "name", "a string"))
		p->name = xstrdup(x->str);
	if ((x = ynode_get(root, "description")) && ld_want_scalar(L, x, "description", "a string"))
		p->description = xstrdup(x->str);
	if ((x = ynode_get(root, "vars"))) {
		if (x->kind != YNODE_MAP)
			ERR(L, x, "'vars' must be a map, not %s", ld_type_name(x));
		else {
			json_decref(p->vars);
			p->vars = ynode_to_json(x);
		}
	}
	if ((x = ynode_get(root, "secrets"))) {
		if (x->kind != YNODE_SEQ)
			ERR(L, x, "'secrets' must be a list of variable names");
		else
			for (size_t i = 0; i < x->n; i++)
				if (ld_want_scalar(L, x->items[i], "secrets", "a variable name")) {
					p->secrets = xrealloc(p->secrets, (p->n_secrets + 1) * sizeof *p->secrets);
					p->secrets[p->n_secrets++] = xstrdup(x->items[i]->str);
				}
	}
	if ((x = ynode_get(root, "inputs")))
		inputs_parse(L, x);
	if ((x = ynode_get(root, "env")))
		parse_env(L, x, &p->env, &p->n_env, &p->env_vals);
	if ((x = ynode_get(root, "concurrency")) && ld_get_int(L, x, "concurrency", 1, &v))
		p->concurrency = (int)v;
	if ((x = ynode_get(root, "semaphores")))
		parse_semaphores(L, x);
	if ((x = ynode_get(root, "timeout")))
		ld_get_duration(L, x, "timeout", &p->timeout_ms);
	if ((x = ynode_get(root, "lock")))
		lock_parse(L, x);
	if ((x = ynode_get(root, "defaults"))) {
		if (x->kind != YNODE_MAP)
			ERR(L, x, "'defaults' must be a map");
		else {
			ld_check_keys(L, x, "defaults", default_keys, ARRAY_LEN(default_keys), NULL, 0);
			for (size_t i = 0; i + 1 < x->n; i += 2)
				if (x->items[i]->kind == YNODE_SCALAR &&
				    ld_in_set(x->items[i]->str, default_keys, ARRAY_LEN(default_keys)))
					parse_modifier(L, x->items[i]->str, x->items[i + 1], &p->defaults);
		}
	}
	/* hosts before steps: `on:` resolves against them; ssh: first, hosts take its defaults */
	if ((x = ynode_get(root, "ssh")))
		ssh_settings_parse(L, x);
	ssh_settings_finish(L);
	inventory_load(L, ynode_get(root, "inventory"));
	p->root = step_new(STEP_STEPS, root);
	p->root->id = xstrdup("");
	p->root->full_id = xstrdup("");
	if (!(x = ynode_get(root, "steps")))
		ERR(L, root, "the plan needs 'steps', a non-empty list");
	else
		parse_list(L, x, p->root, "steps", 0);
	static const char *const hk[] = {"on_success", "on_failure", "finally"};
	for (size_t i = 0; i < ARRAY_LEN(hk); i++)
		if ((x = ynode_get(root, hk[i])))
			parse_handler(L, hk[i], x, p->root, 0);
}

static char *default_name(const char *file)
{
	const char *base = strrchr(file, '/');
	base = base ? base + 1 : file;
	const char *dot = strrchr(base, '.');
	return dot && dot != base ? xstrndup(base, (size_t)(dot - base)) : xstrdup(base);
}

struct plan *plan_load_buffer_opts(const char *file, const char *data, size_t len, const struct load_options *o,
				   struct diags *d)
{
	static const struct load_options none = {0};
	size_t before = d->n;
	struct ynode *root = yaml_load(file, data, len, d);
	if (!root)
		return NULL;
	struct plan *p = xcalloc(1, sizeof *p);
	p->file = xstrdup(file);
	p->vars = json_object();
	p->inputs = json_object();
	p->given = json_object();
	step_init_empty(&p->defaults);
	struct loader L = {.file = file, .d = d, .p = p, .opts = o ? o : &none};
	loader_hosts_init(&L);
	if (root->kind != YNODE_MAP) {
		ERR(&L, root, "a plan must be a map with 'steps', not %s", ld_type_name(root));
	} else {
		parse_top(&L, root);
		limit_apply(&L);
		inputs_apply_given(&L);
		secrets_resolve(&L, ynode_get(root, "secrets"));
		/* the table must never fill: size it from the tree itself */
		L.n_steps = count_tree(p->root) - 1;
		p->index_cap = 16;
		while (p->index_cap < 2 * (L.n_steps + 1))
			p->index_cap *= 2;
		p->index = xcalloc(p->index_cap, sizeof *p->index);
		size_t order = 0;
		assign_ids(&L, p->root, &order);
		ld_check_refs(&L);
		p->n_steps = L.n_steps;
	}
	if (!p->name)
		p->name = default_name(file);
	free(L.asyncs);
	free(L.joins);
	loader_hosts_free(&L);
	ynode_free(root);
	if (d->n > before) {
		plan_free(p);
		return NULL;
	}
	return p;
}

char *ld_read_file(const char *path, size_t *len, struct diags *d)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rbe") : stdin;
	if (!f) {
		diags_add(d, path, 0, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	struct buf b = {0};
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (b.len + n > PLAN_MAX_FILE) {
			diags_add(d, path, 0, 0, "file is larger than %u MiB", PLAN_MAX_FILE >> 20);
			buf_free(&b);
			if (f != stdin)
				fclose(f);
			return NULL;
		}
		buf_add(&b, chunk, n);
	}
	bool bad = ferror(f);
	if (f != stdin)
		fclose(f);
	if (bad) {
		diags_add(d, path, 0, 0, "cannot read: %s", strerror(errno));
		buf_free(&b);
		return NULL;
	}
	*len = b.len;
	return buf_detach(&b);
}

struct plan *plan_load_buffer(const char *file, const char *data, size_t len, json_t *overrides,
			      struct diags *d)
{
	struct load_options o = {.overrides = overrides};
	return plan_load_buffer_opts(file, data, len, &o, d);
}

struct plan *plan_load_file_opts(const char *path, const struct load_options *o, struct diags *d)
{
	size_t len = 0;
	char *data = ld_read_file(path, &len, d);
	if (!data)
		return NULL;
	struct plan *p = plan_load_buffer_opts(path, data, len, o, d);
	free(data);
	return p;
}

struct plan *plan_load_file(const char *path, json_t *overrides, struct diags *d)
{
	struct load_options o = {.overrides = overrides};
	return plan_load_file_opts(path, &o, d);
}

static void kv_free(struct kv *env, struct tmpl **vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(env[i].key);
		free(env[i].value);
		tmpl_free(vals[i]);
	}
	free(env);
	free(vals);
}

static void step_free_fields(struct step *s)
{
	for (size_t i = 0; i < s->n_children; i++) {
		step_free_fields(s->children[i]);
		free(s->children[i]);
	}
	free(s->children);
	free(s->id);
	free(s->full_id);
	free(s->name);
	tmpl_free(s->run);
	copy_spec_free(s->copy);
	for (size_t i = 0; i < s->argc && s->kind == STEP_RUN; i++)
		tmpl_free(s->argv[i]);
	free(s->argv);
	if (s->kind == STEP_BARRIER)
		free(s->barrier);
	if (s->kind == STEP_APPROVE)
		tmpl_free(s->approve_message);
	if (s->kind == STEP_JOIN) {
		for (size_t i = 0; i < s->n_join; i++)
			free(s->join[i]);
		free(s->join);
	}
	if (s->retry != &retry_default) {
		free(s->retry->on_exit);
		free((void *)s->retry);
	}
	if (s->mods != &step_mods_none) {
		const struct step_mods *m = s->mods;
		expr_free(m->when);
		free(m->when_src);
		for (size_t i = 0; i < m->n_semaphores; i++)
			free(m->semaphores[i]);
		free(m->semaphores);
		kv_free(m->env, m->env_vals, m->n_env);
		tmpl_free(m->cwd);
		free(m->shell);
		free(m->async);
		expr_free(m->continue_x.e);
		free((void *)m);
	}
	if (s->fan != &step_fan_none) {
		const struct step_fan *f = s->fan;
		for (size_t i = 0; f->for_each_tmpls && i < json_array_size(f->for_each); i++)
			tmpl_free(f->for_each_tmpls[i]);
		free(f->for_each_tmpls);
		json_decref(f->for_each);
		expr_free(f->for_each_expr);
		tmpl_free(f->label);
		for (size_t i = 0; i < f->n_on; i++)
			free(f->on[i]);
		free(f->on);
		free(f->hosts);
		free(f->batch.sizes);
		expr_free(f->batch.size_x.e);
		expr_free(f->batch.pause_x.e);
		expr_free(f->batch.max_failures_x.e);
		free((void *)f);
	}
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (s->handlers[k]) {
			step_free_fields(s->handlers[k]);
			free(s->handlers[k]);
		}
	if (s->handlers != step_no_handlers)
		free((void *)s->handlers);
}

void plan_free(struct plan *p)
{
	if (!p)
		return;
	free(p->file);
	free(p->name);
	free(p->description);
	free(p->lock);
	json_decref(p->vars);
	json_decref(p->inputs);
	json_decref(p->given);
	for (size_t i = 0; i < p->n_inputs; i++) {
		struct input_def *in = &p->input_defs[i];
		free(in->name);
		free(in->description);
		json_decref(in->def);
		json_decref(in->choices);
	}
	free(p->input_defs);
	for (size_t i = 0; i < p->n_secrets; i++)
		free(p->secrets[i]);
	free(p->secrets);
	kv_free(p->env, p->env_vals, p->n_env);
	for (size_t i = 0; i < p->n_semaphores; i++)
		free(p->semaphores[i].name);
	free(p->semaphores);
	inventory_free(&p->inventory);
	ssh_settings_free(&p->ssh);
	step_free_fields(&p->defaults);
	free(p->index);
	if (p->root) {
		step_free_fields(p->root);
		free(p->root);
	}
	free(p);
}

const char *step_kind_name(enum step_kind k)
{
	static const char *const names[] = {"run",   "steps", "parallel", "stages", "stage",
					    "barrier", "sleep", "join",     "approve"};
	return names[k];
}

const char *step_kind_word(const struct step *s)
{
	if (s->copy)
		return s->copy->fetch ? "fetch" : "copy";
	return step_kind_name(s->kind);
}

const char *handler_name(enum handler_kind k)
{
	static const char *const names[] = {"on_success", "on_failure", "finally"};
	return names[k];
}

bool step_is_foreach(const struct step *s)
{
	return s->fan->for_each || s->fan->for_each_expr || s->fan->on;
}

size_t amount_of(const struct amount *a, size_t n)
{
	if (!a->percent)
		return (size_t)a->value;
	double v = a->value * (double)n / 100.0;
	size_t r = (size_t)v;
	return (double)r < v ? r + 1 : r; /* rounded up */
}

size_t batch_sizes(const struct batch_spec *b, size_t n, size_t *out)
{
	size_t nb = 0, done = 0;
	if (!b->n_sizes) { /* a size given as ${{ }} and not resolved (the preview): one batch */
		if (n)
			out[nb++] = n;
		return nb;
	}
	for (size_t i = 0; done < n; i++) {
		const struct amount *a = &b->sizes[i < b->n_sizes ? i : b->n_sizes - 1];
		size_t k = amount_of(a, n);
		if (k < 1)
			k = 1; /* "rounded up, at least 1" */
		if (k > n - done)
			k = n - done;
		out[nb++] = k;
		done += k;
	}
	return nb;
}

const char *fan_mode_name(enum fan_mode m)
{
	static const char *const names[] = {"all", "settle", "any", "race"};
	return names[m];
}
