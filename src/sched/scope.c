/*
 * scope.c — what an expression reads while the plan runs (plan-format.md
 * sections 5 and 6): vars, inputs and env, the item, index and host of the
 * instance it stands in, run.id and run.status, and the results of steps
 * (steps.ID…, async.NAME…, result, error, results), built from the run's
 * tree when an expression reads them and never kept.
 */
#include <stdlib.h>
#include <string.h>

#include "sched/internal.h"

static json_t *node_result(struct sched *S, const struct snode *n, bool final);

/*
 * One instance's entry in `results` (and in steps.ID.items / hosts): its
 * result, and which instance it is — id, item, label, host and, when it
 * did not succeed, why. Built when an expression reads it, never kept.
 */
static json_t *kid_result(struct sched *S, const struct snode *k)
{
	json_t *o = node_result(S, k, false);
	json_object_set_new(o, "id", json_stringn_nocheck(k->id, strlen(k->id)));
	long index = -1;
	json_t *item = node_item(k, &index);
	json_object_set_new(o, "item", item ? json_incref(item) : json_null());
	char *label = node_label(S, k);
	json_object_set_new(o, "label", label ? json_stringn_nocheck(label, strlen(label)) : json_null());
	free(label);
	long h = node_host(k);
	json_object_set_new(o, "host", h >= 0 ? json_string(S->p->inventory.hosts[h].name) : json_null());
	bool why = k->state == N_DONE && k->status != ST_SUCCESS && k->reason;
	json_object_set_new(o, "reason", why ? json_stringn_nocheck(k->reason, strlen(k->reason)) : json_null());
	return o;
}

/* Results of a fan-out's instances, in plan order. */
static json_t *kid_results(struct sched *S, const struct snode *n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n->nkids; i++)
		json_array_append_new(a, kid_result(S, n->kids[i]));
	return a;
}

static json_t *node_result(struct sched *S, const struct snode *n, bool final)
{
	json_t *o = json_object();
	bool done = n && (n->state == N_DONE || final);
	enum status st = n && final && n->state != N_DONE ? n->final_status : n ? n->status : ST_SKIPPED;
	json_object_set_new(o, "status", done ? json_string(status_name(st)) : json_null());
	json_object_set_new(o, "exit_code", done && n->exit_code >= 0 ? json_integer(n->exit_code) : json_null());
	const struct capture *cap = n ? n->cap : NULL;
	const char *out = cap && cap->out ? cap->out : "", *err = cap && cap->err ? cap->err : "";
	size_t out_len = cap && cap->out ? cap->out_len : 0, err_len = cap && cap->err ? cap->err_len : 0;
	/* every byte is kept: NULs, and bytes that are not UTF-8 (nocheck), which env and argv pass on as they are */
	json_object_set_new(o, "stdout", json_stringn_nocheck(out, out_len));
	json_t *lines = json_array();
	for (size_t i = 0; i < out_len;) {
		const char *nl = memchr(out + i, '\n', out_len - i);
		size_t l = nl ? (size_t)(nl - (out + i)) : out_len - i;
		json_array_append_new(lines, json_stringn_nocheck(out + i, l));
		i += l + 1;
		if (nl && i == out_len)
			json_array_append_new(lines, json_string("")); /* "a\n\n" ends with an empty line */
	}
	json_object_set_new(o, "stdout_lines", lines);
	json_object_set_new(o, "stderr", json_stringn_nocheck(err, err_len));
	json_object_set_new(o, "outputs", cap && cap->outputs ? json_incref(cap->outputs) : json_object());
	uint64_t end = n && n->state == N_DONE ? n->end_ms : clock_ms();
	json_object_set_new(o, "duration_ms",
			    done && n->started ? json_integer((json_int_t)(end - n->start_ms)) : json_null());
	if (n && n->role == ROLE_FOREACH) {
		const struct step *s = step_of(n);
		bool items = s->fan->for_each || s->fan->for_each_expr;
		if (items)
			json_object_set_new(o, "items", kid_results(S, n));
		if (s->fan->on) {
			/* hosts.NAME: that host's result, or with items too its items' results */
			json_t *hosts = json_object();
			for (size_t i = 0; i < n->nkids; i++) {
				const struct snode *k = n->kids[i];
				const char *name = S->p->inventory.hosts[k->host].name;
				if (!items) {
					json_object_set_new(hosts, name, kid_result(S, k));
					continue;
				}
				json_t *h = json_object_get(hosts, name);
				if (!h) {
					h = json_object();
					json_object_set_new(h, "items", json_array());
					json_object_set_new(hosts, name, h);
				}
				json_array_append_new(json_object_get(h, "items"), kid_result(S, k));
			}
			json_object_set_new(o, "hosts", hosts);
		}
	}
	return o;
}

/* Is gnode a an ancestor of (or) gnode b? */
static bool g_contains(const struct gnode *a, const struct gnode *b)
{
	for (; b; b = b->parent)
		if (a == b)
			return true;
	return false;
}

/*
 * The runtime node of step t in a's subtree; NULL if not made yet. *inside
 * is set when t lies within the items of a for_each that a is not part of.
 */
static struct snode *find_in(struct snode *a, const struct gnode *t, bool *inside)
{
	while (a) {
		if (a->g == t && a->role != ROLE_INSTANCE)
			return a;
		if (a->role == ROLE_FOREACH) {
			*inside = true; /* which item's? only its own instances know */
			return NULL;
		}
		struct snode *next = NULL;
		for (size_t i = 0; i < a->nkids && !next; i++)
			if (g_contains(a->kids[i]->g, t))
				next = a->kids[i];
		if (!next && a->hnode && g_contains(a->hnode->g, t))
			next = a->hnode;
		a = next;
	}
	return NULL;
}

static json_t *lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used, char **err)
{
	struct scope_ctx *C = ud;
	struct sched *S = C->S;
	struct snode *from = C->n;
	if (!strcmp(root, "steps")) {
		const struct step *t = plan_resolve_step_ref(S->p, from ? step_of(from) : NULL, segs, nsegs, used);
		if (!t) {
			*err = xasprintf("no step '%s'", nsegs ? segs[0] : "");
			return NULL;
		}
		const struct gnode *tg = &S->g->nodes[t->order];
		struct snode *found = NULL;
		bool inside = false;
		for (struct snode *a = from; a && !found; a = a->parent) {
			bool in = false;
			found = find_in(a, tg, &in);
			if (a == S->root)
				inside = in;
		}
		if (!found && inside) {
			*err = xasprintf("steps.%s runs once per item of a for_each: read it as steps.ID.items[N]",
					 t->full_id);
			return NULL;
		}
		return node_result(S, found, false);
	}
	if (!strcmp(root, "item") || !strcmp(root, "index")) {
		long index = -1;
		json_t *item = node_item(from, &index);
		*used = 0;
		if (!item) {
			*err = xasprintf("'%s' is defined only inside a for_each step", root);
			return NULL;
		}
		return !strcmp(root, "item") ? json_incref(item) : json_integer(index);
	}
	if (!strcmp(root, "host")) {
		long h = node_host(from);
		*used = 0;
		if (h < 0) {
			*err = xstrdup("'host' is defined only inside a step with `on:`");
			return NULL;
		}
		return host_to_json(&S->p->inventory.hosts[h]);
	}
	if (!strcmp(root, "result") || !strcmp(root, "error") || !strcmp(root, "results")) {
		struct snode *h = from;
		while (h && !h->is_handler)
			h = h->parent;
		*used = 0;
		if (!h) {
			*err = xasprintf("'%s' is defined only inside on_success, on_failure and finally", root);
			return NULL;
		}
		struct snode *owner = h->parent;
		if (!strcmp(root, "error"))
			return json_string(owner->final_reason ? owner->final_reason : "");
		if (!strcmp(root, "results"))
			return kid_results(S, owner);
		return node_result(S, owner, true);
	}
	if (!strcmp(root, "async")) {
		for (size_t i = 0; i < S->n_asyncs && nsegs; i++)
			if (!strcmp(S->asyncs[i].name, segs[0])) {
				*used = 1;
				return node_result(S, S->asyncs[i].node, false);
			}
		*err = xasprintf("async '%s' has not started", nsegs ? segs[0] : "");
		return NULL;
	}
	if (!strcmp(root, "run")) {
		json_t *o = json_object();
		json_object_set_new(o, "id", json_string(S->o.run_id));
		json_object_set_new(o, "status", json_string(S->run_status ? S->run_status : "running"));
		*used = 0;
		return o;
	}
	return plan_lookup_static(S->p, root, segs, nsegs, used, err);
}

struct expr_scope scope_of(struct scope_ctx *c, struct sched *S, struct snode *n)
{
	c->S = S;
	c->n = n;
	struct expr_scope scope = {lookup, c};
	return scope;
}

