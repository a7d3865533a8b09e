/*
 * preview.c — the truthful preview (architecture.md): walks the compiled tree
 * as the scheduler would expand it, evaluating all that is known before the
 * run — `when` on vars, inputs, env, item and host; each fan-out's instances
 * with their item, label, host, command, env, shell, cwd and batch — and
 * saying of the rest which reference makes it known only at run time. The
 * text, JSON and DOT renderers and the dry run's plan.task events read it
 * through a visitor. Nothing is kept per task.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

struct preview {
	const struct graph *g;
	const struct plan *p;
	const char *const *secrets;
	size_t n_secrets;
};

const char *pv_state_name(enum pv_state s)
{
	static const char *const names[] = {"runs", "skipped", "runtime"};
	return names[s];
}

const char *pv_when_name(enum pv_when w)
{
	static const char *const names[] = {"none", "true", "false", "each", "runtime", "error"};
	return names[w];
}

struct preview *preview_new(const struct graph *g, const char *const *secrets, size_t n_secrets)
{
	struct preview *pv = xcalloc(1, sizeof *pv);
	pv->g = g;
	pv->p = g->plan;
	pv->secrets = secrets;
	pv->n_secrets = n_secrets;
	return pv;
}

void preview_free(struct preview *pv)
{
	free(pv);
}

const struct graph *preview_graph(const struct preview *pv)
{
	return pv->g;
}

void preview_masked(const struct preview *pv, const char *s, size_t len, struct buf *out)
{
	if (pv->n_secrets)
		mask_secrets(s, len, pv->secrets, pv->n_secrets, out); /* appends s, masked */
	else
		buf_add(out, s, len);
}

void preview_masked_text(const struct preview *pv, const char *s, size_t len, struct buf *out)
{
	struct buf m = {0};
	mask_secrets(s, len, pv->secrets, pv->n_secrets, &m);
	str_visible(out, m.data ? m.data : "", m.len);
	buf_free(&m);
}

const char *preview_plan_name(const struct preview *pv)
{
	const struct plan *p = pv->p;
	return !strcmp(p->file, "-") && !strcmp(p->name, "-") ? "<stdin>" : p->name;
}

/* ---- the scope of one evaluation ---- */

/*
 * What an expression may read before the run: vars, inputs and env always;
 * item, index and host of the instance being previewed. What it reads that
 * is known only at run time (steps.…, result, run.id, …) is noted in why.
 */
struct pv_scope {
	const struct preview *pv;
	const json_t *item;
	long index;
	long host;
	bool instance;     /* evaluated for one task: item and host are its own (NULL / -1: it has none) */
	bool per_instance; /* it read item, index or host without an instance */
	struct buf *why;   /* the references known only at run time, ", "-separated; may be NULL */
};

static bool runtime_root(const char *root)
{
	static const char *const roots[] = {"steps", "result", "error", "results", "async", "run"};
	for (size_t i = 0; i < ARRAY_LEN(roots); i++)
		if (!strcmp(root, roots[i]))
			return true;
	return false;
}

static void note_why(struct buf *why, const char *root, const char *const *segs, size_t nsegs)
{
	if (!why)
		return;
	struct buf r = {0};
	buf_adds(&r, root);
	for (size_t i = 0; i < nsegs; i++)
		buf_printf(&r, ".%s", segs[i]);
	/* each reference once */
	bool seen = false;
	for (const char *at = why->data; at && (at = strstr(at, r.data)) && !seen; at += r.len) {
		char after = at[r.len];
		seen = (at == why->data || at[-1] == ' ') && (after == ',' || after == '\0');
	}
	if (!seen) {
		if (why->len)
			buf_adds(why, ", ");
		buf_add(why, r.data, r.len);
	}
	buf_free(&r);
}

static json_t *pv_lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used,
			 char **err)
{
	struct pv_scope *S = ud;
	const struct plan *p = S->pv->p;
	if (!strcmp(root, "item") || !strcmp(root, "index") || !strcmp(root, "host")) {
		*used = 0;
		if (!S->instance) {
			S->per_instance = true;
			*err = xasprintf("'%s' differs from instance to instance", root);
			return NULL;
		}
		if (!strcmp(root, "host")) {
			if (S->host < 0) {
				*err = xstrdup("'host' is defined only inside a step with `on:`");
				return NULL;
			}
			return host_to_json(&p->inventory.hosts[S->host]);
		}
		if (!S->item) {
			*err = xasprintf("'%s' is defined only inside a for_each step", root);
			return NULL;
		}
		return !strcmp(root, "item") ? json_incref((json_t *)S->item) : json_integer(S->index);
	}
	if (runtime_root(root)) {
		note_why(S->why, root, segs, nsegs);
		*err = xasprintf("'%s' is known only when the plan runs", root);
		return NULL;
	}
	return plan_lookup_static(p, root, segs, nsegs, used, err);
}

json_t *preview_lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used,
		       char **err)
{
	struct pv_scope S = {.pv = ud, .index = -1, .host = -1};
	return pv_lookup(&S, root, segs, nsegs, used, err);
}

/* ---- one step's facts, the same for all its instances ---- */

static bool is_fan(const struct gnode *n)
{
	return step_is_foreach(n->step);
}

static bool has_items(const struct step *s)
{
	return s->fan->for_each || s->fan->for_each_expr;
}

/* The step's `when` as far as it is known without an instance; *why (caller frees) says more. */
static enum pv_when static_when(const struct preview *pv, const struct gnode *n, char **why)
{
	const struct step *s = n->step;
	*why = NULL;
	if (!s->mods->when)
		return PVW_NONE;
	struct buf refs = {0};
	struct pv_scope S = {.pv = pv, .index = -1, .host = -1, .why = &refs};
	struct expr_scope scope = {pv_lookup, &S};
	char *err = NULL;
	json_t *v = expr_eval(s->mods->when, &scope, &err);
	enum pv_when w;
	if (v) {
		w = expr_truthy(v) ? PVW_TRUE : PVW_FALSE;
	} else if (refs.len) {
		w = PVW_RUNTIME;
		*why = buf_detach(&refs);
	} else if (S.per_instance) {
		w = PVW_EACH;
		*why = xstrdup("it reads item, index or host");
	} else {
		w = PVW_ERROR;
		*why = err;
		err = NULL;
	}
	json_decref(v);
	free(err);
	buf_free(&refs);
	return w;
}

/* ---- the walk ---- */

/* Where one task stands: the instance of every fan-out around it, and what that decides. */
struct combo {
	const json_t *item;
	long index;
	long host;
	const struct step *item_step; /* the for_each that gave item (its label) */
	bool sel;
	bool in_handler;
	enum pv_state state;
	const char *why;
	long batch;
	int handler;
};

struct walk {
	const struct preview *pv;
	const struct pv_visitor *v;
	const struct gnode **chain; /* root .. the step whose tasks are enumerated */
	size_t n_chain, cap_chain;
	struct ginst *path; /* the instances around, outermost first */
	size_t depth;
	struct buf suffix; /* @HOST#INDEX… of the instances around */
	struct pv_step *cur;
	size_t detail_left;
	struct pv_counts *counts;
	int handler_depth; /* >0: inside a handler */
};

static int handler_kind(const struct gnode *n)
{
	if (!n->parent || !n->step->is_handler)
		return -1;
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (n->parent->handlers[k] == n)
			return k;
	return -1;
}

/* As sched/select.c's sel_mark: whether node n runs under --only / --from in the instances around it. */
static bool node_selected(const struct walk *W, const struct gnode *n, const struct combo *c, size_t depth)
{
	const struct graph *g = W->pv->g;
	bool by_instance = g->sel && !c->in_handler && !n->step->is_handler;
	if (!by_instance || !depth)
		return n->selected;
	return graph_admits(g, n, W->path, depth);
}

static void skip(struct combo *c, const char *why)
{
	if (c->state != PV_SKIPPED) {
		c->state = PV_SKIPPED;
		c->why = why;
	}
}

/* Evaluates n's `when` for the instance c stands in; reason (owned by the caller) holds the why. */
static void instance_when(struct walk *W, const struct gnode *n, struct combo *c, struct buf *reason)
{
	const struct step *s = n->step;
	if (!s->mods->when || c->state == PV_SKIPPED)
		return;
	struct buf refs = {0};
	struct pv_scope S = {.pv = W->pv, .item = c->item, .index = c->index, .host = c->host, .instance = true,
			     .why = &refs};
	struct expr_scope scope = {pv_lookup, &S};
	char *err = NULL;
	json_t *v = expr_eval(s->mods->when, &scope, &err);
	if (v && !expr_truthy(v)) {
		buf_printf(reason, "when of %s is false", s->full_id);
		skip(c, reason->data);
	} else if (!v && refs.len) {
		if (c->state == PV_RUNS) {
			buf_printf(reason, "when of %s reads %s, known at run time", s->full_id, refs.data);
			c->state = PV_RUNTIME;
			c->why = reason->data;
		}
	} else if (!v) {
		buf_printf(reason, "when of %s cannot be evaluated (%s): the step fails", s->full_id, err ? err : "?");
		skip(c, reason->data);
	}
	json_decref(v);
	free(err);
	buf_free(&refs);
}

/* The items of fan-out n in instance c: a new reference, or NULL with *why set (the list is not known). */
static json_t *fan_items(struct walk *W, const struct gnode *n, const struct combo *c, char **why, bool *fails)
{
	const struct step *s = n->step;
	struct buf refs = {0};
	struct pv_scope S = {.pv = W->pv, .item = c->item, .index = c->index, .host = c->host, .instance = true,
			     .why = &refs};
	struct expr_scope scope = {pv_lookup, &S};
	char *err = NULL;
	json_t *items = NULL;
	if (s->fan->for_each_expr) {
		items = expr_eval(s->fan->for_each_expr, &scope, &err);
		if (items && !json_is_array(items)) {
			err = xasprintf("the expression gives %s, not a list",
					json_is_object(items) ? "a map" : json_is_string(items) ? "a string" : "a scalar");
			json_decref(items);
			items = NULL;
		}
	} else if (!s->fan->for_each_tmpls) {
		items = json_incref(s->fan->for_each);
	} else {
		items = json_array();
		for (size_t i = 0; i < json_array_size(s->fan->for_each) && items; i++) {
			const struct tmpl *t = s->fan->for_each_tmpls[i];
			if (!t) {
				json_array_append(items, json_array_get(s->fan->for_each, i));
				continue;
			}
			struct buf b = {0};
			if (tmpl_render(t, TMPL_TEXT, &scope, &b, &err)) {
				json_t *str = json_stringn(b.data ? b.data : "", b.len);
				json_array_append_new(items, str ? str : json_string(""));
			} else {
				json_decref(items);
				items = NULL;
			}
			buf_free(&b);
		}
	}
	*fails = !items && !refs.len;
	if (!items)
		*why = refs.len ? xasprintf("its for_each reads %s", refs.data)
				: xasprintf("its for_each fails: %s", err ? err : "no list");
	free(err);
	buf_free(&refs);
	return items;
}

/* Size of batch b of k instances, done of them in earlier batches. */
static size_t batch_size_at(const struct batch_spec *bs, size_t b, size_t k, size_t done)
{
	size_t v = amount_of(&bs->sizes[b < bs->n_sizes ? b : bs->n_sizes - 1], k);
	if (v < 1)
		v = 1;
	return v > k - done ? k - done : v;
}

static void level(struct walk *W, size_t i, struct combo c);

static void text_of(const struct preview *pv, const json_t *v, struct buf *out)
{
	struct buf t = {0};
	value_to_text(v, &t);
	preview_masked(pv, t.data ? t.data : "", t.len, out);
	buf_free(&t);
}

/* Renders one template for the preview: masked, what is not known yet as written (its references in refs). */
static void render(struct walk *W, const struct tmpl *t, enum tmpl_quote q, struct pv_scope *S, struct buf *out)
{
	struct expr_scope scope = {pv_lookup, S};
	struct buf raw = {0};
	tmpl_preview(t, q, &scope, &raw);
	preview_masked(W->pv, raw.data ? raw.data : "", raw.len, out);
	buf_free(&raw);
}

static void env_layer(struct walk *W, const struct kv *kv, struct tmpl *const *vals, size_t n, struct pv_scope *S,
		      char ***env, size_t *n_env)
{
	for (size_t i = 0; i < n; i++) {
		struct buf b = {0};
		buf_printf(&b, "%s=", kv[i].key);
		size_t klen = b.len;
		render(W, vals[i], TMPL_TEXT, S, &b);
		char *kvs = buf_detach(&b);
		size_t k = 0;
		while (k < *n_env && strncmp((*env)[k], kvs, klen))
			k++;
		if (k < *n_env) {
			free((*env)[k]);
			(*env)[k] = kvs;
			continue;
		}
		*env = xrealloc(*env, (*n_env + 1) * sizeof **env);
		(*env)[(*n_env)++] = kvs;
	}
}

/* Counts a task of the step being walked, by state. */
static void count_task(struct walk *W, const struct combo *c)
{
	struct pv_step *st = W->cur;
	st->n_tasks++;
	st->n_runs += c->state == PV_RUNS;
	st->n_skipped += c->state == PV_SKIPPED;
	st->n_runtime += c->state == PV_RUNTIME;
	if (!W->counts)
		return;
	if (c->in_handler) {
		W->counts->handler_tasks++;
		return;
	}
	W->counts->tasks++;
	W->counts->runs += c->state == PV_RUNS;
	W->counts->skipped += c->state == PV_SKIPPED;
	W->counts->runtime += c->state == PV_RUNTIME;
}

/* Run step s's command as the instance in S would run it (masked), and its shell ("" for an argv). */
static void command_of(struct walk *W, const struct gnode *n, struct pv_scope *S, struct buf *cmd, struct buf *shell)
{
	const struct step *s = n->step;
	if (s->copy) {
		/* "copy SRC -> HOST:DEST", "fetch HOST:SRC -> DEST/HOST/" */
		const struct host *h = S->host >= 0 ? &W->pv->p->inventory.hosts[S->host] : NULL;
		const char *hn = h && !h->local ? h->name : NULL;
		buf_adds(cmd, s->copy->fetch ? "fetch " : "copy ");
		if (s->copy->fetch && hn)
			buf_printf(cmd, "%s:", hn);
		render(W, s->copy->src, TMPL_TEXT, S, cmd);
		buf_adds(cmd, " -> ");
		if (!s->copy->fetch && hn)
			buf_printf(cmd, "%s:", hn);
		render(W, s->copy->dest, TMPL_TEXT, S, cmd);
		if (s->copy->fetch)
			buf_printf(cmd, "/%s%s", h ? h->name : "", h ? "/" : "");
		if (s->copy->mode) {
			buf_adds(cmd, " (mode ");
			render(W, s->copy->mode, TMPL_TEXT, S, cmd);
			buf_adds(cmd, ")");
		}
		return;
	}
	if (s->run) {
		render(W, s->run, TMPL_SHELL, S, cmd);
		buf_printf(shell, "%s -c", n->shell);
		return;
	}
	for (size_t i = 0; i < s->argc; i++) {
		struct buf w = {0}, q = {0};
		struct expr_scope scope = {pv_lookup, S};
		tmpl_preview(s->argv[i], TMPL_TEXT, &scope, &w);
		if (i)
			buf_addc(cmd, ' ');
		shell_quote(&q, w.data ? w.data : "", w.len);
		preview_masked(W->pv, q.data, q.len, cmd);
		buf_free(&q);
		buf_free(&w);
	}
}

/* The directory the task runs in (the nearest `cwd`, else defaults'): false when none is set. */
static bool cwd_of(struct walk *W, const struct gnode *n, struct pv_scope *S, struct buf *cwd)
{
	const struct tmpl *t = NULL;
	for (const struct gnode *g = n; g && !t; g = g->parent)
		t = g->step->mods->cwd;
	if (!t)
		t = W->pv->p->defaults.mods->cwd;
	if (t)
		render(W, t, TMPL_TEXT, S, cwd);
	return t != NULL;
}

/* The env the plan gives the task, as sched/task.c builds it: the plan's, the defaults', each step's outermost first. */
static char **env_of(struct walk *W, struct pv_scope *S, size_t *n_env)
{
	const struct plan *p = W->pv->p;
	char **env = NULL;
	*n_env = 0;
	env_layer(W, p->env, p->env_vals, p->n_env, S, &env, n_env);
	env_layer(W, p->defaults.mods->env, p->defaults.mods->env_vals, p->defaults.mods->n_env, S, &env, n_env);
	for (size_t k = 0; k < W->n_chain; k++) {
		const struct step_mods *m = W->chain[k]->step->mods;
		env_layer(W, m->env, m->env_vals, m->n_env, S, &env, n_env);
	}
	return env;
}

/* The instance's label (step_label of the for_each that gave its item), masked; caller frees. */
static char *label_of(struct walk *W, const struct combo *c, struct pv_scope *S)
{
	struct expr_scope scope = {pv_lookup, S};
	char *raw = step_label(c->item_step, c->item, (size_t)c->index, &scope);
	struct buf m = {0};
	preview_masked(W->pv, raw, strlen(raw), &m);
	free(raw);
	return buf_detach(&m);
}

/* The task of run step n in instance c: counted, then (within the detail asked) all it would be given, to the visitor. */
static void emit_task(struct walk *W, const struct gnode *n, const struct combo *c)
{
	const struct plan *p = W->pv->p;
	count_task(W, c);
	if (!W->v || !W->v->task || !W->detail_left)
		return;
	W->detail_left--;
	struct buf refs = {0};
	struct pv_scope S = {.pv = W->pv, .item = c->item, .index = c->index, .host = c->host, .instance = true,
			     .why = &refs};
	struct buf id = {0}, idm = {0}, cmd = {0}, shell = {0}, cwd = {0}, item = {0}, host = {0};
	buf_adds(&id, n->step->full_id);
	buf_add(&id, W->suffix.data ? W->suffix.data : "", W->suffix.len);
	preview_masked(W->pv, id.data, id.len, &idm);
	command_of(W, n, &S, &cmd, &shell);
	bool has_cwd = cwd_of(W, n, &S, &cwd);
	size_t n_env;
	char **env = env_of(W, &S, &n_env);
	char *label = c->item ? label_of(W, c, &S) : NULL;
	if (c->item)
		text_of(W->pv, c->item, &item);
	if (c->host >= 0)
		preview_masked(W->pv, p->inventory.hosts[c->host].name, strlen(p->inventory.hosts[c->host].name), &host);
	struct pv_task t = {
		.id = idm.data,
		.node = n,
		.host = c->host >= 0 ? host.data : NULL,
		.item = c->item ? (item.data ? item.data : "") : NULL,
		.index = c->item ? c->index : -1,
		.label = label,
		.command = cmd.data ? cmd.data : "",
		.shell = shell.len ? shell.data : NULL,
		.cwd = has_cwd ? (cwd.data ? cwd.data : "") : NULL,
		.env = (const char *const *)env,
		.n_env = n_env,
		.batch = c->batch,
		.handler = c->handler,
		.state = c->state,
		.why = c->state != PV_RUNS ? c->why : NULL,
		.runtime = refs.len ? refs.data : NULL,
	};
	W->v->task(W->v->ud, &t);
	for (size_t k = 0; k < n_env; k++)
		free(env[k]);
	free(env);
	free(label);
	struct buf *bufs[] = {&refs, &id, &idm, &cmd, &shell, &cwd, &item, &host};
	for (size_t k = 0; k < ARRAY_LEN(bufs); k++)
		buf_free(bufs[k]);
}

/* The instances of fan-out W->chain[i] inside c, each in turn. */
static void fan_level(struct walk *W, size_t i, struct combo c)
{
	const struct gnode *n = W->chain[i];
	const struct step *s = n->step;
	const struct plan *p = W->pv->p;
	const struct graph *g = W->pv->g;
	char *why = NULL;
	bool fails = false;
	json_t *items = has_items(s) ? fan_items(W, n, &c, &why, &fails) : NULL;
	if (has_items(s) && !items) {
		/* its instances, and every task below them, are known only at run time (or never) */
		if (!W->cur->unknown) {
			W->cur->unknown = true;
			W->cur->fails = fails;
			W->cur->unknown_why = why;
			why = NULL;
		}
		if (W->counts) {
			W->counts->exact &= fails;
			W->counts->fails |= fails;
		}
		free(why);
		return;
	}
	size_t n_items = items ? json_array_size(items) : 1;
	size_t n_hosts = s->fan->on ? s->fan->n_hosts : 1;
	size_t total = n_items * n_hosts;
	bool by_instance = g->sel && !c.in_handler && !s->is_handler;
	/* batches are of the selected instances (sched/select.c: sel_batches) */
	size_t k = total;
	if (by_instance && s->fan->has_batch) {
		k = 0;
		for (size_t x = 0; x < total; x++) {
			W->path[W->depth] = (struct ginst){s->fan->on ? (long)s->fan->hosts[x / n_items] : -1,
							   items ? (long)(x % n_items) : -1};
			k += graph_admits(g, n, W->path, W->depth + 1);
		}
	}
	/* batch fields given as ${{ }} read vars, inputs and the enclosing instance's item and host */
	struct batch_spec bs = s->fan->batch;
	bool has_batch = s->fan->has_batch;
	if (has_batch && (bs.size_x.e || bs.pause_x.e || bs.max_failures_x.e)) {
		struct pv_scope S = {.pv = W->pv, .item = c.item, .index = c.index, .host = c.host, .instance = true};
		struct expr_scope scope = {pv_lookup, &S};
		char *err = NULL;
		if (!batch_resolve(&s->fan->batch, &scope, &bs, &err))
			has_batch = false; /* the run fails it there; the preview shows one batch */
		free(err);
	}
	size_t b = 0, left = has_batch && k ? batch_size_at(&bs, 0, k, 0) : 0, done = 0;
	size_t save = W->suffix.len;
	for (size_t x = 0; x < total; x++) {
		size_t hi = x / n_items, ii = x % n_items;
		struct combo d = c;
		struct buf reason = {0};
		if (s->fan->on) {
			d.host = (long)s->fan->hosts[hi];
			buf_addc(&W->suffix, '@');
			buf_adds(&W->suffix, p->inventory.hosts[d.host].name);
		}
		if (items) {
			d.item = json_array_get(items, ii);
			d.index = (long)ii;
			d.item_step = s;
			buf_printf(&W->suffix, "#%zu", ii);
		}
		W->path[W->depth] = (struct ginst){s->fan->on ? d.host : -1, items ? (long)ii : -1};
		W->depth++;
		bool sel = c.sel && (!by_instance || graph_admits(g, n, W->path, W->depth));
		if (has_batch && k) {
			if (sel && !left) {
				b++;
				left = batch_size_at(&bs, b, k, done);
			}
			d.batch = (long)(!sel && !left && done < k ? b + 1 : b);
			if (sel) {
				left--;
				done++;
			}
		}
		d.sel = sel;
		if (!sel)
			skip(&d, "not selected (--only / --from)");
		instance_when(W, n, &d, &reason);
		level(W, i + 1, d);
		W->depth--;
		W->suffix.len = save;
		if (W->suffix.data)
			W->suffix.data[save] = '\0';
		buf_free(&reason);
	}
	if (has_batch && s->fan->batch.size_x.e)
		free(bs.sizes);
	json_decref(items);
}

/* Level i of the chain inside c: a fan-out's instances, or the step itself; the last level is the task. */
static void level(struct walk *W, size_t i, struct combo c)
{
	if (i == W->n_chain) {
		emit_task(W, W->chain[i - 1], &c);
		return;
	}
	const struct gnode *n = W->chain[i];
	int hk = handler_kind(n);
	if (hk >= 0) {
		c.handler = hk;
		c.in_handler = true;
	}
	if (!node_selected(W, n, &c, W->depth))
		c.sel = false;
	if (!c.sel)
		skip(&c, "not selected (--only / --from)");
	/* a fan-out's handlers hang on the fan-out, outside its instances, and run once */
	bool to_handler = i + 1 < W->n_chain && handler_kind(W->chain[i + 1]) >= 0;
	if (is_fan(n) && !to_handler) {
		fan_level(W, i, c);
		return;
	}
	struct buf reason = {0};
	if (!is_fan(n))
		instance_when(W, n, &c, &reason);
	level(W, i + 1, c);
	buf_free(&reason);
}

/* Every task of run step n (the last of W->chain), in every instance around it. */
static void enumerate(struct walk *W)
{
	struct combo c = {.index = -1, .host = -1, .sel = true, .state = PV_RUNS, .batch = -1, .handler = -1};
	W->depth = 0;
	buf_reset(&W->suffix);
	level(W, 1, c); /* chain[0] is the root: the run itself */
}

static void visit(struct walk *W, const struct gnode *n, int depth, bool skipped)
{
	if (W->n_chain == W->cap_chain) {
		W->cap_chain = W->cap_chain ? 2 * W->cap_chain : 16;
		W->chain = xrealloc(W->chain, W->cap_chain * sizeof *W->chain);
		W->path = xrealloc(W->path, W->cap_chain * sizeof *W->path);
	}
	W->chain[W->n_chain++] = n;
	char *when_why = NULL;
	struct pv_step st = {.node = n, .handler = handler_kind(n), .depth = depth};
	st.when = static_when(W->pv, n, &when_why);
	st.when_why = when_why;
	st.skipped = skipped || !n->selected || st.when == PVW_FALSE;
	if (W->v && W->v->step)
		W->v->step(W->v->ud, &st);
	struct pv_step *outer = W->cur;
	W->cur = &st;
	if (n->step->kind == STEP_RUN) {
		W->detail_left = W->v ? W->v->detail : 0;
		enumerate(W);
	}
	for (size_t i = 0; i < n->nkids; i++)
		visit(W, n->kids[i], depth + 1, st.skipped);
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (n->handlers[k])
			visit(W, n->handlers[k], depth + 1, st.skipped);
	W->cur = outer;
	if (W->v && W->v->step_end)
		W->v->step_end(W->v->ud, &st);
	free(when_why);
	free((char *)st.unknown_why);
	W->n_chain--;
}

static void walk(const struct preview *pv, const struct pv_visitor *v, struct pv_counts *counts)
{
	struct walk W = {.pv = pv, .v = v, .counts = counts};
	const struct gnode *root = &pv->g->nodes[0];
	W.cap_chain = 16;
	W.chain = xcalloc(W.cap_chain, sizeof *W.chain);
	W.path = xcalloc(W.cap_chain, sizeof *W.path);
	W.chain[W.n_chain++] = root;
	struct pv_step top = {.node = root, .handler = -1};
	W.cur = &top;
	for (size_t i = 0; i < root->nkids; i++)
		visit(&W, root->kids[i], 1, false);
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (root->handlers[k])
			visit(&W, root->handlers[k], 1, false);
	free(W.chain);
	free(W.path);
	buf_free(&W.suffix);
}

void preview_walk(const struct preview *pv, const struct pv_visitor *v)
{
	walk(pv, v, NULL);
}

void preview_count(const struct preview *pv, struct pv_counts *c)
{
	memset(c, 0, sizeof *c);
	c->exact = true;
	walk(pv, NULL, c);
}
