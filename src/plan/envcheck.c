/*
 * envcheck.c — a check the loader runs once hosts are resolved: an `env`
 * name that reaches a command on a remote host must be one a POSIX shell can
 * export, since the remote shell sets that command's environment.
 */
#include "plan/internal.h"

/* A remote run step and the host it runs on, for messages. */
struct remote_use {
	const struct step *step;
	long host; /* -1: none found */
};

/* A name a POSIX shell can export: [A-Za-z_][A-Za-z0-9_]*. */
static bool exportable(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return false;
	for (; *s; s++)
		if (!(*s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

/* Reports each name of env that a remote shell cannot export; u says where it is used. */
static void check_names(struct loader *L, const struct kv *env, size_t n, const struct remote_use *u)
{
	for (size_t i = 0; i < n; i++)
		if (!exportable(env[i].key))
			diags_add(L->d, L->file, env[i].key_line, env[i].key_col,
				  "env '%s': step '%s' runs on remote host '%s', whose shell cannot export this name (a "
				  "name there is letters, digits and '_', not starting with a digit)",
				  env[i].key, u->step->full_id, L->p->inventory.hosts[u->host].name);
}

/* The first remote host of an `on` step, or -1 when all of them run locally. */
static long first_remote(const struct plan *p, const struct step *s)
{
	for (size_t i = 0; i < s->fan->n_hosts; i++)
		if (!p->inventory.hosts[s->fan->hosts[i]].local)
			return (long)s->fan->hosts[i];
	return -1;
}

/*
 * Walks s, which runs on remote host `host` (-1: locally), checking the env
 * of every step whose subtree holds a run step on a remote host; fills *u
 * with the first such step. The innermost `on` decides where a step runs;
 * the handlers of an `on` step run outside its instances, where it stands.
 */
static void walk(struct loader *L, const struct step *s, long host, struct remote_use *u)
{
	long here = s->fan->on ? first_remote(L->p, s) : host;
	struct remote_use mine = {NULL, -1};
	if (s->kind == STEP_RUN && here >= 0)
		mine = (struct remote_use){s, here};
	for (size_t i = 0; i < s->n_children; i++) {
		struct remote_use c = {NULL, -1};
		walk(L, s->children[i], here, &c);
		if (!mine.step)
			mine = c;
	}
	for (int k = 0; k < HANDLER__COUNT; k++) {
		struct remote_use c = {NULL, -1};
		if (s->handlers[k])
			walk(L, s->handlers[k], host, &c);
		if (!mine.step)
			mine = c;
	}
	if (mine.step)
		check_names(L, s->mods->env, s->mods->n_env, &mine);
	*u = mine;
}

void env_check_remote(struct loader *L)
{
	const struct plan *p = L->p;
	if (!p->root)
		return;
	struct remote_use u = {NULL, -1};
	walk(L, p->root, -1, &u);
	if (u.step) {
		check_names(L, p->env, p->n_env, &u);
		check_names(L, p->defaults.mods->env, p->defaults.mods->n_env, &u);
	}
}
