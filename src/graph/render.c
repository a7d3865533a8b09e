/*
 * render.c — the preview as text (`baton plan`, `run --dry-run`): the
 * compiled tree with each step's kind, the modifiers that shape it, its
 * hosts, items and batches, and under each run step its tasks as the
 * preview model (preview.c) resolves them — command, shell, cwd, env, and
 * whether a `when` skips it — a long list cut after a few, with a count.
 * Secrets masked, control characters made visible. Runs nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"

/* Tasks listed per step, items or hosts per line, batches per step; the rest are counted. */
#define TEXT_TASKS 8
#define TEXT_LIST 20
#define TEXT_BATCHES 8

struct render {
	const struct preview *pv;
	const struct graph *g;
	FILE *out;
	bool color;
	struct buf prefix; /* the tree's lines left of the step being shown */
	bool *lastd;       /* per depth: the step shown there is its parent's last */
	size_t n_lastd;
	int hide_below; /* >0: a step at this depth is skipped whole: what is below is not shown */
	const char *lead;
	/* the step being shown */
	bool listed;      /* its tasks are listed one per line (it has instances) */
	bool quiet;       /* it is skipped whole: its tasks are not listed */
	size_t shown;     /* tasks shown so far */
	char *first_env;  /* the first task's shell, cwd and env, as shown once above the list */
};

static const char *c(const struct render *R, const char *code)
{
	return R->color ? code : "";
}

static void mods(const struct render *R, const struct gnode *n, struct buf *b)
{
	const struct step *s = n->step;
	char t[32];
	if (s->fan->on)
		buf_adds(b, "on ");
	if (s->fan->for_each || s->fan->for_each_expr)
		buf_adds(b, "for_each ");
	buf_adds(b, step_kind_word(s));
	if (n->timeout_ms && s->kind == STEP_RUN) {
		duration_format(n->timeout_ms, t, sizeof t);
		buf_printf(b, ", timeout %s", t);
	}
	if (s->kind == STEP_RUN && n->retry->attempts > 1) {
		duration_format(n->retry->delay_ms, t, sizeof t);
		buf_printf(b, ", retry %d attempts (delay %s, backoff %g", n->retry->attempts, t, n->retry->backoff);
		if (n->retry->max_delay_ms) {
			duration_format(n->retry->max_delay_ms, t, sizeof t);
			buf_printf(b, ", max %s", t);
		}
		if (n->retry->n_on_exit) {
			buf_adds(b, ", on exit");
			for (size_t i = 0; i < n->retry->n_on_exit; i++)
				buf_printf(b, " %d", n->retry->on_exit[i]);
		}
		buf_adds(b, ")");
	}
	if (s->kind == STEP_RUN && n->kill_grace_ms != 5000) {
		duration_format(n->kill_grace_ms, t, sizeof t);
		buf_printf(b, ", kill_grace %s", t);
	}
	if (s->kind == STEP_PARALLEL || s->kind == STEP_STAGES) {
		if (s->fan->min_success.set)
			buf_printf(b, ", mode settle, min_success %g%s", s->fan->min_success.value,
				   s->fan->min_success.percent ? "%" : "");
		else
			buf_printf(b, ", mode %s", fan_mode_name(s->fan->mode));
	}
	if (s->kind == STEP_SLEEP) {
		duration_format(s->sleep_ms, t, sizeof t);
		buf_printf(b, " %s", t);
	}
	if (s->kind == STEP_BARRIER) {
		buf_printf(b, " %s", s->barrier ? s->barrier : "");
		if (s->barrier_timeout_ms) {
			duration_format(s->barrier_timeout_ms, t, sizeof t);
			buf_printf(b, ", timeout %s", t);
		}
	}
	if (s->kind == STEP_APPROVE) {
		buf_printf(b, ": %s", s->approve_message ? tmpl_source(s->approve_message) : "");
		if (s->approve_timeout_ms) {
			duration_format(s->approve_timeout_ms, t, sizeof t);
			buf_printf(b, ", timeout %s", t);
		}
	}
	if (s->kind == STEP_JOIN)
		for (size_t i = 0; i < s->n_join; i++)
			buf_printf(b, "%s%s", i ? ", " : " ", s->join[i]);
	if (s->mods->async)
		buf_printf(b, ", async %s", s->mods->async);
	if (step_is_foreach(s) && !(s->kind == STEP_PARALLEL || s->kind == STEP_STAGES)) {
		if (s->fan->min_success.set)
			buf_printf(b, ", mode settle, min_success %g%s", s->fan->min_success.value,
				   s->fan->min_success.percent ? "%" : "");
		else
			buf_printf(b, ", mode %s", fan_mode_name(s->fan->mode));
	}
	if (s->max_concurrency)
		buf_printf(b, ", max_concurrency %d", s->max_concurrency);
	for (size_t i = 0; i < s->mods->n_semaphores; i++)
		buf_printf(b, ", semaphore %s", s->mods->semaphores[i]);
	if (s->has_priority)
		buf_printf(b, ", priority %d", s->priority);
	if (s->continue_on_error)
		buf_adds(b, ", continue_on_error");
	if (s->mods->when_src)
		buf_printf(b, ", when: %s", s->mods->when_src);
	if (s->mods->shell)
		buf_printf(b, ", shell %s", s->mods->shell);
	(void)R;
}

/* Writes text from the plan or its values with secrets masked and control characters made visible. */
static void line_masked(const struct render *R, const char *s, size_t len)
{
	struct buf v = {0};
	preview_masked_text(R->pv, s, len, &v);
	fwrite(v.data ? v.data : "", 1, v.len, R->out);
	buf_free(&v);
}

/* A host as the dry run shows it: NAME (user@address:port), or NAME (local). */
static void host_text(const struct inventory *inv, const struct host *h, struct buf *b)
{
	buf_adds(b, h->name);
	if (h->local)
		buf_adds(b, " (local)");
	else if (h->jump >= 0)
		buf_printf(b, " (%s@%s:%d via %s)", h->user ? h->user : "", h->address, h->port, inv->hosts[h->jump].name);
	else
		buf_printf(b, " (%s@%s:%d)", h->user ? h->user : "", h->address, h->port);
}

/*
 * Which instances of fan-out n run under --only / --from ids that name
 * instances: per host (by_host) or per item, 1 when some instance of it
 * runs. NULL when every one does (or the list is known only at run time).
 */
static unsigned char *runs_of(const struct preview *pv, const struct gnode *n, bool by_host, size_t *count)
{
	const struct graph *g = preview_graph(pv);
	const unsigned char *m = graph_instance_marks(g, n);
	const struct step *s = n->step;
	size_t nh = s->fan->on ? s->fan->n_hosts : 1;
	size_t ni = s->fan->for_each ? json_array_size(s->fan->for_each) : 1;
	if (s->fan->for_each_expr) {
		struct expr_scope scope = {preview_lookup, (void *)pv};
		char *err = NULL;
		json_t *v = expr_eval(s->fan->for_each_expr, &scope, &err);
		free(err);
		ni = v && json_is_array(v) ? json_array_size(v) : 0;
		json_decref(v);
	}
	if (!m || !nh || !ni)
		return NULL;
	size_t len = by_host ? nh : ni;
	unsigned char *r = xcalloc(len, 1);
	*count = 0;
	for (size_t h = 0; h < nh; h++)
		for (size_t i = 0; i < ni; i++)
			r[by_host ? h : i] |= m[h * ni + i];
	for (size_t k = 0; k < len; k++)
		*count += r[k];
	return r;
}

/*
 * A step's batch as the preview shows it: fields given as ${{ }} evaluated
 * on vars (the plan alone decides them unless they read an enclosing item
 * or host: then the preview shows one batch). Free with preview_batch_free.
 */
static struct batch_spec preview_batch(const struct render *R, const struct step *s)
{
	struct expr_scope scope = {preview_lookup, (void *)R->pv};
	struct batch_spec b;
	char *err = NULL;
	if (!batch_resolve(&s->fan->batch, &scope, &b, &err)) {
		b = s->fan->batch;
		b.size_x.e = NULL; /* nothing of its own to free */
	}
	free(err);
	return b;
}

static void preview_batch_free(const struct step *s, struct batch_spec *b)
{
	if (s->fan->batch.size_x.e && b->size_x.e)
		free(b->sizes);
}

/* The hosts of an `on` step, and which fall in which batch. Nothing is contacted. */
static void host_lines(struct render *R, const struct gnode *n, const char *lead)
{
	const struct step *s = n->step;
	const struct inventory *inv = &R->g->plan->inventory;
	const char *pre = R->prefix.data ? R->prefix.data : "";
	struct buf line = {0};
	for (size_t i = 0; i < s->fan->n_on; i++)
		buf_printf(&line, "%s%s", i ? ", " : "", s->fan->on[i]);
	fprintf(R->out, "%s%son %s: %zu host%s\n", pre, lead, line.data ? line.data : "", s->fan->n_hosts,
		s->fan->n_hosts == 1 ? "" : "s");
	size_t n_runs = s->fan->n_hosts;
	unsigned char *runs = runs_of(R->pv, n, true, &n_runs);
	size_t one = s->fan->n_hosts;
	size_t *sizes = xcalloc(one ? one : 1, sizeof *sizes);
	size_t nb = 1;
	sizes[0] = one;
	/* batches count instances; with items too, each host's items go together; skipped hosts are in none */
	bool batched = s->fan->has_batch && n_runs && !(s->fan->for_each || s->fan->for_each_expr);
	if (batched) {
		struct batch_spec bs = preview_batch(R, s);
		nb = batch_sizes(&bs, n_runs, sizes);
		char t[32];
		duration_format(bs.pause_ms, t, sizeof t);
		fprintf(R->out, "%s%s%zu batch%s, pause %s, max_failures %zu:\n", pre, lead, nb, nb == 1 ? "" : "es", t,
			amount_of(&bs.max_failures, n_runs));
		preview_batch_free(s, &bs);
	}
	if (batched && runs) {
		buf_reset(&line);
		for (size_t i = 0; i < one; i++)
			if (!runs[i]) {
				if (line.len)
					buf_adds(&line, ", ");
				host_text(inv, &inv->hosts[s->fan->hosts[i]], &line);
			}
		fprintf(R->out, "%s%s  skipped: ", pre, lead);
		line_masked(R, line.data ? line.data : "", line.len);
		fputc('\n', R->out);
	}
	size_t at = 0;
	for (size_t b = 0; b < nb && one; b++) {
		if (b == TEXT_BATCHES) {
			fprintf(R->out, "%s%s  … %zu more batches\n", pre, lead, nb - b);
			break;
		}
		buf_reset(&line);
		size_t in = 0;
		for (size_t i = 0; i < (batched ? sizes[b] : one) && at < one; at++) {
			if (batched && runs && !runs[at])
				continue;
			if (i++ >= TEXT_LIST) {
				in++;
				continue;
			}
			if (i > 1)
				buf_adds(&line, ", ");
			host_text(inv, &inv->hosts[s->fan->hosts[at]], &line);
			if (runs && !runs[at])
				buf_adds(&line, " (skipped)");
		}
		if (in)
			buf_printf(&line, ", … %zu more", in);
		if (batched)
			fprintf(R->out, "%s%s  batch %zu: ", pre, lead, b + 1);
		else
			fprintf(R->out, "%s%s  ", pre, lead);
		line_masked(R, line.data ? line.data : "", line.len); /* host names may come from ~/.ssh/config */
		fputc('\n', R->out);
	}
	free(runs);
	free(sizes);
	buf_free(&line);
}

/* The items of a for_each, and which fall in which batch, when the dry run can know them. */
static void foreach_lines(struct render *R, const struct gnode *n, const char *lead)
{
	const struct step *s = n->step;
	const char *pre = R->prefix.data ? R->prefix.data : "";
	json_t *items = NULL;
	if (s->fan->for_each) {
		items = json_incref(s->fan->for_each);
	} else {
		struct expr_scope scope = {preview_lookup, (void *)R->pv};
		char *err = NULL;
		items = expr_eval(s->fan->for_each_expr, &scope, &err);
		if (items && !json_is_array(items)) {
			fprintf(R->out, "%s%sfor_each: the expression gives %s, not a list: the step fails\n", pre, lead,
				json_is_object(items) ? "a map" : json_is_string(items) ? "a string" : "a scalar");
			json_decref(items);
			return;
		}
		if (!items) {
			if (err && strstr(err, "differs from instance to instance"))
				fprintf(R->out, "%s%sfor_each: per instance of the fan-out around it (%s)\n", pre, lead, err);
			else
				fprintf(R->out, "%s%sfor_each: known at run time%s%s\n", pre, lead, err ? ": " : "",
					err ? err : "");
			struct buf ids = {0};
			if (graph_level_ids(R->g, n, &ids))
				fprintf(R->out, "%s%sselected: the items %s names (the others are skipped)\n", pre, lead,
					ids.data);
			buf_free(&ids);
			free(err);
			json_decref(items);
			return;
		}
	}
	size_t n_items = json_array_size(items);
	size_t n_runs = n_items;
	unsigned char *runs = runs_of(R->pv, n, false, &n_runs);
	struct buf line = {0};
	struct expr_scope scope = {preview_lookup, (void *)R->pv};
	for (size_t i = 0; i < n_items; i++) {
		if (i == TEXT_LIST) {
			buf_printf(&line, ", … %zu more", n_items - i);
			break;
		}
		if (i)
			buf_adds(&line, ", ");
		if (s->fan->for_each && s->fan->for_each_tmpls && s->fan->for_each_tmpls[i])
			tmpl_preview(s->fan->for_each_tmpls[i], TMPL_TEXT, &scope, &line);
		else
			value_to_text(json_array_get(items, i), &line);
		if (runs && !runs[i])
			buf_adds(&line, " (skipped)");
	}
	fprintf(R->out, "%s%sfor_each: %zu item%s: ", pre, lead, n_items, n_items == 1 ? "" : "s");
	line_masked(R, line.data ? line.data : "", line.len);
	fputc('\n', R->out);
	if (s->fan->has_batch && n_runs && !s->fan->on) {
		/* the batches are of the items that run */
		size_t *sizes = xcalloc(n_runs, sizeof *sizes);
		struct batch_spec bs = preview_batch(R, s);
		size_t nb = batch_sizes(&bs, n_runs, sizes), at = 0;
		char t[32];
		duration_format(bs.pause_ms, t, sizeof t);
		fprintf(R->out, "%s%s%zu batch%s, pause %s, max_failures %zu:\n", pre, lead, nb, nb == 1 ? "" : "es",
			t, amount_of(&bs.max_failures, n_runs));
		preview_batch_free(s, &bs);
		for (size_t b = 0; b < nb; b++) {
			if (b == TEXT_BATCHES) {
				fprintf(R->out, "%s%s  … %zu more batches\n", pre, lead, nb - b);
				break;
			}
			buf_reset(&line);
			for (size_t i = 0; i < sizes[b]; i++, at++) {
				while (runs && !runs[at])
					at++;
				if (i == TEXT_LIST)
					buf_printf(&line, ", … %zu more", sizes[b] - i);
				if (i >= TEXT_LIST)
					continue;
				if (i)
					buf_adds(&line, ", ");
				buf_printf(&line, "#%zu ", at);
				value_to_text(json_array_get(items, at), &line);
			}
			fprintf(R->out, "%s%s  batch %zu: ", pre, lead, b + 1);
			line_masked(R, line.data ? line.data : "", line.len);
			fputc('\n', R->out);
		}
		free(sizes);
	}
	free(runs);
	buf_free(&line);
	json_decref(items);
}

static const char *pre(const struct render *R)
{
	return R->prefix.data ? R->prefix.data : "";
}

/* Text as shown: masked, control characters visible. */
static void put(const struct render *R, const char *s)
{
	struct buf v = {0};
	preview_masked_text(R->pv, s, strlen(s), &v);
	fwrite(v.data ? v.data : "", 1, v.len, R->out);
	buf_free(&v);
}

/* The tree's lines left of a step at depth d, and under it (R->lead). */
static void at_depth(struct render *R, int d)
{
	buf_reset(&R->prefix);
	buf_adds(&R->prefix, "");
	for (int j = 1; j < d; j++)
		buf_adds(&R->prefix, R->lastd[j] ? "   " : "│  ");
	R->lead = R->lastd[d] ? "      " : "│     ";
}

/* Whether n is the last of its parent's children and handlers (the tree's └─). */
static bool is_last(const struct gnode *n)
{
	const struct gnode *p = n->parent;
	const struct gnode *last = p->nkids ? p->kids[p->nkids - 1] : NULL;
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (p->handlers[k])
			last = p->handlers[k];
	return last == n;
}

/* A command, one line per line: the first after head, the others under it, indented by `indent`. */
static void command_lines(struct render *R, const char *head, const char *cmd, size_t indent)
{
	fprintf(R->out, "%s%s%s%s$ %s", pre(R), R->lead, head, c(R, "\033[2m"), c(R, ""));
	const char *p = cmd;
	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		struct buf v = {0};
		str_visible(&v, p, len);
		fwrite(v.data ? v.data : "", 1, v.len, R->out);
		buf_free(&v);
		if (!nl || !nl[1])
			break;
		p = nl + 1;
		fprintf(R->out, "\n%s%s%*s  ", pre(R), R->lead, (int)indent, "");
	}
	if (c(R, "")[0])
		fputs("\033[0m", R->out);
	fputc('\n', R->out);
}

/* The plan's shell: what a task runs under unless a step names another (shown once, in the header). */
static void plan_shell(const struct render *R, struct buf *b)
{
	const struct plan *p = R->g->plan;
	buf_printf(b, "%s -c", p->defaults.mods->shell ? p->defaults.mods->shell : "/bin/sh");
}

/* The shell (where it is not the plan's), cwd and env lines of a task, under `indent` more spaces. */
static void exec_text(const struct render *R, const struct pv_task *t, struct buf *b)
{
	struct buf dflt = {0};
	plan_shell(R, &dflt);
	const char *sep = "";
	if ((!t->shell && !t->node->step->copy) || (t->shell && strcmp(t->shell, dflt.data))) {
		buf_printf(b, "shell: %s", t->shell ? t->shell : "none (an argv, exec'd as is)");
		sep = ", ";
	}
	buf_free(&dflt);
	if (t->cwd)
		buf_printf(b, "%scwd: %s", sep, t->cwd);
	if (b->len)
		buf_addc(b, '\n');
	for (size_t i = 0; i < t->n_env; i++)
		buf_printf(b, "env: %s\n", t->env[i]);
}

/* The lines of text that are not lines of base. */
static void lines_not_in(const char *text, const char *base, struct buf *out)
{
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
		bool found = false;
		for (const char *q = base; *q && !found;) {
			const char *qn = strchr(q, '\n');
			size_t ql = qn ? (size_t)(qn - q) + 1 : strlen(q);
			found = ql == len && !memcmp(p, q, len);
			q += ql;
		}
		if (!found)
			buf_add(out, p, len);
		p += len;
	}
}

static void exec_lines(struct render *R, const char *text, size_t indent)
{
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		struct buf v = {0};
		str_visible(&v, p, len);
		fprintf(R->out, "%s%s%*s%s\n", pre(R), R->lead, (int)indent, "", v.data ? v.data : "");
		buf_free(&v);
		p += len + (nl != NULL);
	}
}

static void on_task(void *ud, const struct pv_task *t)
{
	struct render *R = ud;
	if (R->hide_below || R->quiet)
		return;
	struct buf ex = {0};
	exec_text(R, t, &ex);
	if (!ex.data)
		buf_adds(&ex, "");
	bool first = R->shown++ == 0;
	if (first) {
		R->listed = t->host || t->item;
		free(R->first_env);
		R->first_env = xstrdup(ex.data);
	}
	const char *runtime_note = t->runtime ? "known at run time: " : "";
	if (!R->listed) {
		/* a step that runs once: its command, then how */
		if (t->state == PV_SKIPPED)
			fprintf(R->out, "%s%s%sskipped: %s%s\n", pre(R), R->lead, c(R, "\033[33m"), t->why,
				c(R, "\033[0m"));
		else
			command_lines(R, "", t->command, 0);
		if (t->state == PV_RUNTIME)
			fprintf(R->out, "%s%s? runs if %s\n", pre(R), R->lead, t->why);
		if (t->runtime)
			fprintf(R->out, "%s%s%s%s\n", pre(R), R->lead, runtime_note, t->runtime);
		exec_lines(R, ex.data, 0);
		buf_free(&ex);
		return;
	}
	if (first)
		exec_lines(R, ex.data, 0);
	struct buf head = {0};
	buf_adds(&head, t->id);
	char index[24];
	snprintf(index, sizeof index, "%ld", t->index);
	if (t->label && strcmp(t->label, index)) /* the index is in the id already */
		buf_printf(&head, " (%s)", t->label);
	if (t->batch >= 0)
		buf_printf(&head, " [batch %ld]", t->batch + 1);
	buf_adds(&head, "  ");
	struct buf v = {0};
	str_visible(&v, head.data, head.len);
	if (t->state == PV_SKIPPED) {
		fprintf(R->out, "%s%s%s%sskipped: %s%s\n", pre(R), R->lead, v.data, c(R, "\033[33m"), t->why,
			c(R, "\033[0m"));
	} else {
		command_lines(R, v.data, t->command, 2);
		if (t->state == PV_RUNTIME)
			fprintf(R->out, "%s%s  ? runs if %s\n", pre(R), R->lead, t->why);
		if (t->runtime)
			fprintf(R->out, "%s%s  %s%s\n", pre(R), R->lead, runtime_note, t->runtime);
		if (!first && strcmp(ex.data, R->first_env)) {
			struct buf d = {0};
			lines_not_in(ex.data, R->first_env, &d);
			if (d.len)
				exec_lines(R, d.data, 2);
			buf_free(&d);
		}
	}
	buf_free(&v);
	buf_free(&head);
	buf_free(&ex);
}

static void on_step(void *ud, const struct pv_step *st)
{
	struct render *R = ud;
	const struct gnode *n = st->node;
	const struct step *s = n->step;
	if (R->hide_below && st->depth > R->hide_below)
		return;
	R->hide_below = 0;
	bool last = is_last(n);
	if ((size_t)st->depth >= R->n_lastd) {
		R->lastd = xrealloc(R->lastd, (size_t)(st->depth + 1) * sizeof *R->lastd);
		R->n_lastd = (size_t)st->depth + 1;
	}
	R->lastd[st->depth] = last;
	at_depth(R, st->depth);
	struct buf m = {0};
	mods(R, n, &m);
	fprintf(R->out, "%s%s%s%s%s  %s[", pre(R), last ? "└─ " : "├─ ", c(R, "\033[1m"), s->full_id, c(R, "\033[0m"),
		c(R, "\033[36m"));
	put(R, m.data);
	fprintf(R->out, "]%s", c(R, "\033[0m"));
	if (s->name) {
		fputs("  ", R->out);
		put(R, s->name);
	}
	if (!n->selected)
		fprintf(R->out, "  %s(skipped: not selected)%s", c(R, "\033[33m"), c(R, "\033[0m"));
	else if (st->when == PVW_FALSE)
		fprintf(R->out, "  %s(skipped: when is false)%s", c(R, "\033[33m"), c(R, "\033[0m"));
	else if (st->when == PVW_TRUE)
		fputs("  (when is true)", R->out);
	fputc('\n', R->out);
	buf_free(&m);
	if (st->when == PVW_RUNTIME)
		fprintf(R->out, "%s%swhen: known at run time: it reads %s\n", pre(R), R->lead, st->when_why);
	else if (st->when == PVW_ERROR)
		fprintf(R->out, "%s%swhen: cannot be evaluated (%s): the step fails\n", pre(R), R->lead, st->when_why);
	else if (st->when == PVW_EACH)
		fprintf(R->out, "%s%swhen: decided per instance (%s)\n", pre(R), R->lead, st->when_why);
	if (st->when == PVW_FALSE && n->selected) {
		R->hide_below = st->depth; /* not expanded further */
	} else {
		if (s->fan->on)
			host_lines(R, n, R->lead);
		if (s->fan->for_each || s->fan->for_each_expr)
			foreach_lines(R, n, R->lead);
	}
	R->shown = 0;
	R->listed = false;
	R->quiet = !n->selected;
}

static void on_step_end(void *ud, const struct pv_step *st)
{
	struct render *R = ud;
	if (R->hide_below && st->depth > R->hide_below)
		return;
	if (st->node->step->kind != STEP_RUN || R->hide_below || !st->node->selected)
		return;
	at_depth(R, st->depth);
	if (st->unknown)
		fprintf(R->out, "%s%stasks: %s: %s\n", pre(R), R->lead, st->fails ? "none, the run fails here" : "known at run time",
			st->unknown_why);
	struct buf k = {0};
	buf_printf(&k, "%zu run", st->n_runs);
	if (st->n_skipped)
		buf_printf(&k, ", %zu skipped", st->n_skipped);
	if (st->n_runtime)
		buf_printf(&k, ", %zu decided at run time", st->n_runtime);
	if (st->n_tasks > R->shown)
		fprintf(R->out, "%s%s… %zu more task%s (%zu in all: %s)\n", pre(R), R->lead, st->n_tasks - R->shown,
			st->n_tasks - R->shown == 1 ? "" : "s", st->n_tasks, k.data);
	else if (R->listed && st->n_tasks > 1)
		fprintf(R->out, "%s%s%zu tasks: %s\n", pre(R), R->lead, st->n_tasks, k.data);
	buf_free(&k);
	R->shown = 0;
}

static const char *type_name(enum input_type t)
{
	static const char *const names[] = {"string", "int", "bool", "list", "map"};
	return names[t];
}

static void json_text(const json_t *v, struct buf *b)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	buf_adds(b, s ? s : "?");
	free(s);
}

/* The plan's inputs: each with its type, whether required, default, choices, the value given and description. */
static void inputs_text(struct render *R)
{
	const struct plan *p = R->g->plan;
	if (!p->n_inputs)
		return;
	fputs("  inputs:\n", R->out);
	for (size_t i = 0; i < p->n_inputs; i++) {
		const struct input_def *d = &p->input_defs[i];
		struct buf b = {0};
		buf_printf(&b, "    %s (%s", d->name, type_name(d->type));
		if (d->required)
			buf_adds(&b, ", required");
		if (d->def) {
			buf_adds(&b, ", default ");
			json_text(d->def, &b);
		}
		if (d->choices) {
			buf_adds(&b, ", choices ");
			json_text(d->choices, &b);
		}
		buf_adds(&b, "): ");
		const json_t *v = p->inputs ? json_object_get(p->inputs, d->name) : NULL;
		if (v)
			json_text(v, &b);
		else
			buf_adds(&b, "(no value)");
		if (d->description)
			buf_printf(&b, "  — %s", d->description);
		put(R, b.data);
		fputc('\n', R->out);
		buf_free(&b);
	}
}

static void header(struct render *R)
{
	const struct plan *p = R->g->plan;
	FILE *out = R->out;
	/* a plan read from standard input has no file name to show, and no name of its own but "-" */
	bool from_stdin = !strcmp(p->file, "-");
	const char *file = from_stdin ? "<stdin>" : p->file;
	fprintf(out, "%splan ", c(R, "\033[1m"));
	if (from_stdin && !strcmp(p->name, "-")) {
		fprintf(out, "%s%s\n", file, c(R, "\033[0m"));
	} else {
		put(R, p->name);
		fprintf(out, "%s  (", c(R, "\033[0m"));
		put(R, file);
		fputs(")\n", out);
	}
	if (p->description) {
		fputs("  ", out);
		put(R, p->description);
		fputc('\n', out);
	}
	inputs_text(R);
	struct pv_counts k;
	preview_count(R->pv, &k);
	char t[32] = "none";
	if (p->timeout_ms)
		duration_format(p->timeout_ms, t, sizeof t);
	size_t will = k.runs + k.runtime;
	fprintf(out, "  %zu task%s", will, will == 1 ? "" : "s");
	if (k.runtime)
		fprintf(out, " (%zu decided at run time)", k.runtime);
	if (!k.exact)
		fputs(" or more (some for_each lists are known only when the plan runs)", out);
	if (k.fails)
		fputs(" before a for_each whose list is not a list: the run fails there", out);
	if (k.skipped)
		fprintf(out, ", %zu skipped", k.skipped);
	if (k.handler_tasks)
		fprintf(out, ", %zu in handlers", k.handler_tasks);
	fprintf(out, ", concurrency %d", R->g->concurrency);
	bool remote = false; /* max_hosts is for plans with SSH hosts */
	for (size_t i = 0; i < p->inventory.n_hosts && !remote; i++)
		remote = !p->inventory.hosts[i].local;
	if (remote)
		fprintf(out, ", max_hosts %d", R->g->max_hosts);
	fprintf(out, ", plan timeout %s\n", t);
	struct buf sh = {0};
	plan_shell(R, &sh);
	fprintf(out, "  shell: %s (a step's own is shown on it)\n", sh.data);
	buf_free(&sh);
	/* the lock is shown, never taken: a preview runs nothing */
	if (p->lock && p->lock_wait_ms) {
		duration_format(p->lock_wait_ms, t, sizeof t);
		fprintf(out, "  lock: %s (wait %s)\n", p->lock, t);
	} else if (p->lock) {
		fprintf(out, "  lock: %s (no wait: fails at once if held)\n", p->lock);
	}
	for (size_t i = 0; i < p->n_semaphores; i++)
		fprintf(out, "  semaphore %s: %d\n", p->semaphores[i].name, p->semaphores[i].capacity);
}

void preview_text(const struct preview *pv, FILE *out, bool color)
{
	const struct graph *g = preview_graph(pv);
	struct render R = {.pv = pv, .g = g, .out = out, .color = color, .lead = ""};
	buf_adds(&R.prefix, "");
	header(&R);
	struct pv_visitor v = {on_step, on_task, on_step_end, TEXT_TASKS, &R};
	preview_walk(pv, &v);
	buf_free(&R.prefix);
	free(R.lastd);
	free(R.first_env);
}

void graph_render(const struct graph *g, const char *const *secrets, size_t n_secrets, FILE *out, bool color)
{
	struct preview *pv = preview_new(g, secrets, n_secrets);
	preview_text(pv, out, color);
	preview_free(pv);
}
