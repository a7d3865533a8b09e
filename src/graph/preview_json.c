/*
 * preview_json.c — `baton plan --output json`: the preview as one JSON
 * document, {"v":1,"kind":"baton.plan",…} (baton-events(7) describes it),
 * written while the preview is walked, a task at a time, so that memory does
 * not grow with the number of tasks. Every string is masked.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

#define MAX_DEPTH_JSON 4096

struct jw {
	const struct preview *pv;
	const struct graph *g;
	FILE *out;
	/* per depth: the step open there, whether its tasks list is still open, and how many children it wrote */
	const struct pv_step **open;
	bool *tasks_open;
	size_t *kids;
	size_t cap;
	size_t n_tasks_written; /* of the step open at the deepest level */
	struct pv_counts counts;
	struct buf tmp; /* one task's text */
};

/* A JSON string of s, masked; bytes that are not UTF-8 become the text \xNN, as in the event stream. */
static json_t *jstr(const struct jw *J, const char *s)
{
	if (!s)
		return json_null();
	struct buf m = {0};
	preview_masked(J->pv, s, strlen(s), &m);
	json_t *v = json_stringn(m.data ? m.data : "", m.len);
	if (!v) {
		struct buf f = {0};
		const unsigned char *u = (const unsigned char *)m.data;
		for (size_t i = 0; i < m.len;) {
			size_t k = u[i] ? utf8_seq_len(u + i, m.len - i) : 0;
			if (k) {
				buf_add(&f, m.data + i, k);
				i += k;
			} else {
				buf_printf(&f, "\\x%02X", u[i]);
				i++;
			}
		}
		v = json_stringn(f.data ? f.data : "", f.len);
		buf_free(&f);
	}
	buf_free(&m);
	return v ? v : json_string("");
}

/* A value with the secrets in it masked: as is when none is, else its JSON text masked, as a string. */
static json_t *jval(const struct jw *J, const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text)
		return json_null();
	struct buf m = {0};
	preview_masked(J->pv, text, strlen(text), &m);
	json_t *r = m.len == strlen(text) && !memcmp(m.data, text, m.len) ? json_deep_copy(v) : jstr(J, m.data);
	buf_free(&m);
	free(text);
	return r;
}

static void put(struct jw *J, const char *key, json_t *v)
{
	if (key)
		fprintf(J->out, ",\"%s\":", key);
	json_dumpf(v, J->out, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(v);
}

static json_t *amount_json(const struct amount *a)
{
	if (!a->set)
		return json_null();
	if (a->percent) {
		char t[32];
		snprintf(t, sizeof t, "%g%%", a->value);
		return json_string(t);
	}
	return json_integer((json_int_t)a->value);
}

static json_t *modifiers(const struct gnode *n)
{
	const struct step *s = n->step;
	json_t *m = json_object();
	if (s->kind == STEP_RUN) {
		json_object_set_new(m, "timeout_ms", n->timeout_ms ? json_integer((json_int_t)n->timeout_ms) : json_null());
		json_object_set_new(m, "kill_grace_ms", json_integer((json_int_t)n->kill_grace_ms));
		json_t *r = json_object();
		json_object_set_new(r, "attempts", json_integer(n->retry->attempts));
		json_object_set_new(r, "delay_ms", json_integer((json_int_t)n->retry->delay_ms));
		json_object_set_new(r, "backoff", json_real(n->retry->backoff));
		json_object_set_new(r, "max_delay_ms", json_integer((json_int_t)n->retry->max_delay_ms));
		json_object_set_new(r, "jitter", json_real(n->retry->jitter));
		json_t *ox = json_array();
		for (size_t i = 0; i < n->retry->n_on_exit; i++)
			json_array_append_new(ox, json_integer(n->retry->on_exit[i]));
		json_object_set_new(r, "on_exit", n->retry->n_on_exit ? ox : (json_decref(ox), json_null()));
		json_object_set_new(m, "retry", r);
	}
	if (s->kind == STEP_PARALLEL || s->kind == STEP_STAGES || step_is_foreach(s)) {
		json_object_set_new(m, "mode", json_string(fan_mode_name(s->fan->min_success.set ? MODE_SETTLE : s->fan->mode)));
		if (s->fan->min_success.set)
			json_object_set_new(m, "min_success", amount_json(&s->fan->min_success));
	}
	if (s->kind == STEP_SLEEP)
		json_object_set_new(m, "sleep_ms", json_integer((json_int_t)s->sleep_ms));
	if (s->kind == STEP_BARRIER) {
		json_object_set_new(m, "barrier", json_string(s->barrier ? s->barrier : ""));
		json_object_set_new(m, "barrier_timeout_ms",
				    s->barrier_timeout_ms ? json_integer((json_int_t)s->barrier_timeout_ms) : json_null());
	}
	if (s->kind == STEP_APPROVE) {
		json_object_set_new(m, "approve", json_string(s->approve_message ? tmpl_source(s->approve_message) : ""));
		json_object_set_new(m, "approve_timeout_ms",
				    s->approve_timeout_ms ? json_integer((json_int_t)s->approve_timeout_ms) : json_null());
	}
	if (s->kind == STEP_JOIN) {
		json_t *j = json_array();
		for (size_t i = 0; i < s->n_join; i++)
			json_array_append_new(j, json_string(s->join[i]));
		json_object_set_new(m, "join", j);
	}
	if (s->mods->async)
		json_object_set_new(m, "async", json_string(s->mods->async));
	if (s->max_concurrency)
		json_object_set_new(m, "max_concurrency", json_integer(s->max_concurrency));
	if (s->mods->n_semaphores) {
		json_t *a = json_array();
		for (size_t i = 0; i < s->mods->n_semaphores; i++)
			json_array_append_new(a, json_string(s->mods->semaphores[i]));
		json_object_set_new(m, "semaphores", a);
	}
	if (s->has_priority || n->priority)
		json_object_set_new(m, "priority", json_integer(n->priority));
	if (s->continue_on_error)
		json_object_set_new(m, "continue_on_error", json_true());
	return m;
}

static json_t *when_json(const struct jw *J, const struct pv_step *st)
{
	const struct step *s = st->node->step;
	if (st->when == PVW_NONE)
		return json_null();
	json_t *w = json_object();
	json_object_set_new(w, "source", jstr(J, s->mods->when_src));
	json_object_set_new(w, "value", st->when == PVW_TRUE ? json_true() : st->when == PVW_FALSE ? json_false() : json_null());
	json_object_set_new(w, "state", json_string(pv_when_name(st->when)));
	json_object_set_new(w, "why", jstr(J, st->when_why));
	return w;
}

static json_t *on_json(const struct jw *J, const struct step *s)
{
	if (!s->fan->on)
		return json_null();
	const struct inventory *inv = &J->g->plan->inventory;
	json_t *o = json_object(), *pat = json_array(), *hosts = json_array();
	for (size_t i = 0; i < s->fan->n_on; i++)
		json_array_append_new(pat, jstr(J, s->fan->on[i]));
	for (size_t i = 0; i < s->fan->n_hosts; i++) {
		const struct host *h = &inv->hosts[s->fan->hosts[i]];
		json_t *x = json_object();
		json_object_set_new(x, "name", jstr(J, h->name));
		json_object_set_new(x, "local", json_boolean(h->local));
		json_object_set_new(x, "address", h->local ? json_null() : jstr(J, h->address));
		json_object_set_new(x, "user", h->local ? json_null() : jstr(J, h->user));
		json_object_set_new(x, "port", h->local ? json_null() : json_integer(h->port));
		json_object_set_new(x, "via", h->jump >= 0 ? jstr(J, inv->hosts[h->jump].name) : json_null());
		json_t *ids = h->local ? json_null() : json_array();
		for (size_t k = 0; !h->local && k < h->n_identities; k++)
			json_array_append_new(ids, jstr(J, h->identities[k]));
		json_object_set_new(x, "identities", ids);
		json_array_append_new(hosts, x);
	}
	json_object_set_new(o, "patterns", pat);
	json_object_set_new(o, "hosts", hosts);
	return o;
}

static json_t *for_each_json(const struct jw *J, const struct step *s)
{
	if (!s->fan->for_each && !s->fan->for_each_expr)
		return json_null();
	json_t *o = json_object();
	json_object_set_new(o, "source", json_string(s->fan->for_each ? "list" : "expression"));
	json_t *items = s->fan->for_each ? json_incref(s->fan->for_each) : NULL;
	char *err = NULL;
	if (!items) {
		struct expr_scope scope = {preview_lookup, (void *)J->pv};
		items = expr_eval(s->fan->for_each_expr, &scope, &err);
		if (items && !json_is_array(items)) {
			json_decref(items);
			items = NULL;
			free(err);
			err = xstrdup("the expression does not give a list: the step fails");
		}
	}
	json_object_set_new(o, "known", json_boolean(items != NULL));
	json_object_set_new(o, "items", items ? json_integer((json_int_t)json_array_size(items)) : json_null());
	json_object_set_new(o, "why", items ? json_null() : jstr(J, err ? err : "known at run time"));
	json_decref(items);
	free(err);
	return o;
}

static json_t *batch_json(const struct step *s)
{
	if (!s->fan->has_batch)
		return json_null();
	json_t *o = json_object(), *sizes = json_array();
	for (size_t i = 0; i < s->fan->batch.n_sizes; i++)
		json_array_append_new(sizes, amount_json(&s->fan->batch.sizes[i]));
	json_object_set_new(o, "size", sizes);
	json_object_set_new(o, "pause_ms", json_integer((json_int_t)s->fan->batch.pause_ms));
	struct amount mf = s->fan->batch.max_failures;
	if (!mf.set)
		mf = (struct amount){.set = true, .value = 0};
	json_object_set_new(o, "max_failures", amount_json(&mf));
	return o;
}

static void grow(struct jw *J, size_t d)
{
	if (d < J->cap)
		return;
	size_t cap = J->cap ? J->cap : 16;
	while (cap <= d)
		cap *= 2;
	J->open = xrealloc(J->open, cap * sizeof *J->open);
	J->tasks_open = xrealloc(J->tasks_open, cap * sizeof *J->tasks_open);
	J->kids = xrealloc(J->kids, cap * sizeof *J->kids);
	for (size_t i = J->cap; i < cap; i++) {
		J->open[i] = NULL;
		J->tasks_open[i] = false;
		J->kids[i] = 0;
	}
	J->cap = cap;
}

/* Ends the tasks list of the step open at depth d, with what is known of them. */
static void close_tasks(struct jw *J, size_t d)
{
	if (!J->tasks_open[d])
		return;
	J->tasks_open[d] = false;
	const struct pv_step *st = J->open[d];
	fputc(']', J->out);
	json_t *c = json_object();
	json_object_set_new(c, "tasks", json_integer((json_int_t)st->n_tasks));
	json_object_set_new(c, "runs", json_integer((json_int_t)st->n_runs));
	json_object_set_new(c, "skipped", json_integer((json_int_t)st->n_skipped));
	json_object_set_new(c, "runtime", json_integer((json_int_t)st->n_runtime));
	put(J, "task_counts", c);
	put(J, "tasks_known", json_boolean(!st->unknown));
	put(J, "tasks_fail", json_boolean(st->fails));
	put(J, "tasks_why", jstr(J, st->unknown_why));
	fputs(",\"steps\":[", J->out);
}

static void on_step(void *ud, const struct pv_step *st)
{
	struct jw *J = ud;
	size_t d = (size_t)st->depth;
	grow(J, d);
	close_tasks(J, d - 1);
	if (J->kids[d - 1]++)
		fputc(',', J->out);
	const struct gnode *n = st->node;
	const struct step *s = n->step;
	J->open[d] = st;
	J->tasks_open[d] = true;
	J->kids[d] = 0;
	J->n_tasks_written = 0;
	fputs("{\"id\":", J->out);
	put(J, NULL, jstr(J, s->full_id));
	put(J, "kind", json_string(step_kind_word(s)));
	put(J, "name", jstr(J, s->name));
	put(J, "handler", st->handler >= 0 ? json_string(handler_name((enum handler_kind)st->handler)) : json_null());
	put(J, "selected", json_boolean(n->selected));
	put(J, "skipped", json_boolean(st->skipped));
	put(J, "modifiers", modifiers(n));
	put(J, "when", when_json(J, st));
	put(J, "on", on_json(J, s));
	put(J, "for_each", for_each_json(J, s));
	put(J, "batch", batch_json(s));
	put(J, "run", s->kind == STEP_RUN && s->run ? jstr(J, tmpl_source(s->run)) : json_null());
	if (s->copy) {
		json_t *c = json_object();
		json_object_set_new(c, "src", jstr(J, tmpl_source(s->copy->src)));
		json_object_set_new(c, "dest", jstr(J, tmpl_source(s->copy->dest)));
		json_object_set_new(c, "mode", s->copy->mode ? jstr(J, tmpl_source(s->copy->mode)) : json_null());
		put(J, s->copy->fetch ? "fetch" : "copy", c);
	} else if (s->kind == STEP_RUN && !s->run) {
		json_t *a = json_array();
		for (size_t i = 0; i < s->argc; i++)
			json_array_append_new(a, jstr(J, tmpl_source(s->argv[i])));
		put(J, "argv", a);
	}
	fputs(",\"tasks\":[", J->out);
}

/* Appends s (len bytes) as a JSON string; bytes that are not UTF-8 become the text \xNN. NULL: null. */
static void put_str(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	if (!s) {
		buf_adds(b, "null");
		return;
	}
	const unsigned char *u = (const unsigned char *)s;
	buf_addc(b, '"');
	for (size_t i = 0; i < len;) {
		size_t run = i;
		while (i < len && u[i] >= 0x20 && u[i] < 0x7f && u[i] != '"' && u[i] != '\\')
			i++;
		buf_add(b, s + run, i - run);
		if (i >= len)
			break;
		unsigned char c = u[i];
		size_t k = c >= 0x80 ? utf8_seq_len(u + i, len - i) : 0;
		if (k) {
			buf_add(b, s + i, k);
			i += k;
			continue;
		}
		if (c == '"' || c == '\\') {
			buf_addc(b, '\\');
			buf_addc(b, (char)c);
		} else if (c == '\n') {
			buf_adds(b, "\\n");
		} else if (c == '\t') {
			buf_adds(b, "\\t");
		} else if (c == '\r') {
			buf_adds(b, "\\r");
		} else if (c >= 0x80) {
			buf_printf(b, "\\\\x%02X", c);
		} else {
			buf_adds(b, "\\u00");
			buf_addc(b, hex[c >> 4]);
			buf_addc(b, hex[c & 15]);
		}
		i++;
	}
	buf_addc(b, '"');
}

static void put_field(struct buf *b, const char *key, const char *v)
{
	buf_printf(b, ",\"%s\":", key);
	put_str(b, v, v ? strlen(v) : 0);
}

static void put_long(struct buf *b, const char *key, long v)
{
	if (v >= 0)
		buf_printf(b, ",\"%s\":%ld", key, v);
	else
		buf_printf(b, ",\"%s\":null", key);
}

/* One task, written as it comes: its strings are masked by the model already. */
static void on_task(void *ud, const struct pv_task *t)
{
	struct jw *J = ud;
	struct buf *b = &J->tmp;
	buf_reset(b);
	if (J->n_tasks_written++)
		buf_addc(b, ',');
	buf_adds(b, "{\"id\":");
	put_str(b, t->id, strlen(t->id));
	put_field(b, "label", t->label);
	put_field(b, "host", t->host);
	put_field(b, "item", t->item);
	put_long(b, "index", t->index);
	put_field(b, "command", t->command);
	put_field(b, "shell", t->shell);
	put_field(b, "cwd", t->cwd);
	buf_adds(b, ",\"env\":{");
	for (size_t i = 0; i < t->n_env; i++) {
		const char *eq = strchr(t->env[i], '=');
		if (i)
			buf_addc(b, ',');
		put_str(b, t->env[i], (size_t)(eq - t->env[i]));
		buf_addc(b, ':');
		put_str(b, eq + 1, strlen(eq + 1));
	}
	buf_addc(b, '}');
	put_long(b, "batch", t->batch);
	put_field(b, "handler", t->handler >= 0 ? handler_name((enum handler_kind)t->handler) : NULL);
	put_field(b, "state", pv_state_name(t->state));
	put_field(b, "why", t->why);
	put_field(b, "runtime", t->runtime);
	buf_addc(b, '}');
	fwrite(b->data, 1, b->len, J->out);
	struct pv_counts *k = &J->counts;
	if (t->handler >= 0) {
		k->handler_tasks++;
	} else {
		k->tasks++;
		k->runs += t->state == PV_RUNS;
		k->skipped += t->state == PV_SKIPPED;
		k->runtime += t->state == PV_RUNTIME;
	}
}

static void on_step_end(void *ud, const struct pv_step *st)
{
	struct jw *J = ud;
	size_t d = (size_t)st->depth;
	close_tasks(J, d);
	fputs("]}", J->out);
	if (st->unknown && st->fails)
		J->counts.fails = true;
	else if (st->unknown)
		J->counts.exact = false;
	J->open[d] = NULL;
}

static const char *type_name(enum input_type t)
{
	static const char *const names[] = {"string", "int", "bool", "list", "map"};
	return names[t];
}

static json_t *inputs_json(const struct jw *J)
{
	const struct plan *p = J->g->plan;
	json_t *a = json_array();
	for (size_t i = 0; i < p->n_inputs; i++) {
		const struct input_def *d = &p->input_defs[i];
		json_t *o = json_object();
		json_object_set_new(o, "name", jstr(J, d->name));
		json_object_set_new(o, "type", json_string(type_name(d->type)));
		json_object_set_new(o, "required", json_boolean(d->required));
		json_object_set_new(o, "default", d->def ? jval(J, d->def) : json_null());
		json_object_set_new(o, "description", jstr(J, d->description));
		json_object_set_new(o, "choices", d->choices ? jval(J, d->choices) : json_null());
		const json_t *v = p->inputs ? json_object_get(p->inputs, d->name) : NULL;
		json_object_set_new(o, "value", v ? jval(J, v) : json_null());
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *vars_json(const struct jw *J)
{
	const struct plan *p = J->g->plan;
	json_t *o = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(p->vars, k, v) {
		bool secret = false;
		for (size_t i = 0; i < p->n_secrets && !secret; i++)
			secret = !strcmp(p->secrets[i], k);
		json_object_set_new(o, k, secret ? json_string("***") : jval(J, v));
	}
	return o;
}

static json_t *env_json(const struct jw *J)
{
	const struct plan *p = J->g->plan;
	json_t *o = json_object();
	for (size_t i = 0; i < p->n_env; i++) {
		struct buf b = {0};
		struct expr_scope scope = {preview_lookup, (void *)J->pv};
		tmpl_preview(p->env_vals[i], TMPL_TEXT, &scope, &b);
		json_object_set_new(o, p->env[i].key, jstr(J, b.data ? b.data : ""));
		buf_free(&b);
	}
	return o;
}

void preview_json(const struct preview *pv, FILE *out)
{
	const struct graph *g = preview_graph(pv);
	const struct plan *p = g->plan;
	struct jw J = {.pv = pv, .g = g, .out = out, .counts = {.exact = true}};
	grow(&J, 1);
	fputs("{\"v\":1,\"kind\":\"baton.plan\"", out);
	json_t *pl = json_object();
	bool from_stdin = !strcmp(p->file, "-");
	json_object_set_new(pl, "name", from_stdin && !strcmp(p->name, "-") ? json_null() : jstr(&J, p->name));
	json_object_set_new(pl, "file", from_stdin ? json_null() : jstr(&J, p->file));
	json_object_set_new(pl, "description", jstr(&J, p->description));
	put(&J, "plan", pl);
	put(&J, "inputs", inputs_json(&J));
	put(&J, "vars", vars_json(&J));
	put(&J, "env", env_json(&J));
	put(&J, "concurrency", json_integer(g->concurrency));
	put(&J, "max_hosts", json_integer(g->max_hosts));
	put(&J, "timeout_ms", p->timeout_ms ? json_integer((json_int_t)p->timeout_ms) : json_null());
	json_t *lock = json_null();
	if (p->lock) {
		lock = json_object();
		json_object_set_new(lock, "name", json_string(p->lock));
		json_object_set_new(lock, "wait_ms", json_integer((json_int_t)p->lock_wait_ms));
	}
	put(&J, "lock", lock);
	json_t *sem = json_object();
	for (size_t i = 0; i < p->n_semaphores; i++)
		json_object_set_new(sem, p->semaphores[i].name, json_integer(p->semaphores[i].capacity));
	put(&J, "semaphores", sem);
	json_t *limits = json_array();
	for (size_t i = 0; i < g->n_limits; i++) {
		json_t *l = json_object();
		json_object_set_new(l, "name", json_string(g->limits[i].name));
		json_object_set_new(l, "capacity", json_integer(g->limits[i].capacity));
		json_array_append_new(limits, l);
	}
	put(&J, "limits", limits);
	fputs(",\"steps\":[", out);
	struct pv_visitor v = {on_step, on_task, on_step_end, SIZE_MAX, &J};
	preview_walk(pv, &v);
	fputc(']', out);
	const struct pv_counts k = J.counts;
	json_t *c = json_object();
	json_object_set_new(c, "tasks", json_integer((json_int_t)k.tasks));
	json_object_set_new(c, "runs", json_integer((json_int_t)k.runs));
	json_object_set_new(c, "skipped", json_integer((json_int_t)k.skipped));
	json_object_set_new(c, "runtime", json_integer((json_int_t)k.runtime));
	json_object_set_new(c, "handler_tasks", json_integer((json_int_t)k.handler_tasks));
	json_object_set_new(c, "exact", json_boolean(k.exact));
	json_object_set_new(c, "fails", json_boolean(k.fails));
	put(&J, "counts", c);
	fputs("}\n", out);
	buf_free(&J.tmp);
	free(J.open);
	free(J.tasks_open);
	free(J.kids);
}
