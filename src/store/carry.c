/*
 * carry.c — what `resume` carries over: the last recorded state of every
 * task of a run and of the runs it resumed, the newest run's winning, and
 * the match that decides whether a task runs again (same id, same resolved
 * command and environment from the plan, same host, recorded success).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "util/util.h"

#define CHAIN_MAX 64 /* runs resumed from runs resumed from ...: a cycle cannot be, but is bounded anyway */

struct store_carried {
	json_t *index; /* task id -> its row's index */
	struct store_task *rows;
	size_t n;
};

/* Adds the task rows of t (a run's, in order): a later row of an id replaces an earlier. */
static void add_rows(struct store_carried *c, struct store_task *t, size_t n)
{
	c->rows = xrealloc(c->rows, (c->n + n + 1) * sizeof *c->rows);
	for (size_t i = 0; i < n; i++) {
		if (t[i].kind) {
			store_task_free(&t[i]);
			continue;
		}
		json_object_set_new(c->index, t[i].id, json_integer((json_int_t)c->n));
		c->rows[c->n++] = t[i];
	}
	free(t);
}

struct store_carried *store_carried_load(struct store *st, const struct store_run *r)
{
	struct store_carried *c = xcalloc(1, sizeof *c);
	c->index = json_object();
	char *chain[CHAIN_MAX];
	size_t nc = 0;
	chain[nc++] = xstrdup(r->id);
	char *prev = r->resumed_from ? xstrdup(r->resumed_from) : NULL;
	while (prev && nc < CHAIN_MAX) {
		struct store_run pr;
		char *err = NULL;
		bool found = store_find(st, prev, NULL, &pr, &err);
		free(err);
		free(prev);
		prev = NULL;
		if (!found)
			break; /* pruned: what it held is gone */
		chain[nc++] = xstrdup(pr.id);
		prev = pr.resumed_from ? xstrdup(pr.resumed_from) : NULL;
		store_run_free(&pr);
	}
	free(prev);
	/* the oldest first, so that the newest state of each task wins */
	while (nc) {
		size_t n;
		char *id = chain[--nc];
		struct store_task *t = store_tasks(st, id, true, &n);
		add_rows(c, t, n);
		free(id);
	}
	return c;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

const struct store_task *store_carried_find(const struct store_carried *c, const char *task, const char *command,
					    const char *env, const char *host, bool *changed)
{
	*changed = false;
	json_t *i = json_object_get(c->index, task);
	if (!i)
		return NULL;
	const struct store_task *t = &c->rows[json_integer_value(i)];
	if (!t->status || strcmp(t->status, "success") || !same(t->host, host))
		return NULL;
	char h[33];
	if (env)
		store_text_hash(env, strlen(env), h);
	if (!same(t->command, command) || !same(t->env_hash, env ? h : NULL)) {
		*changed = true;
		return NULL;
	}
	return t;
}

void store_carried_free(struct store_carried *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		store_task_free(&c->rows[i]);
	free(c->rows);
	json_decref(c->index);
	free(c);
}
