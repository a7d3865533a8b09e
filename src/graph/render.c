/*
 * render.c — the dry run: prints the compiled tree with each step's kind, the
 * modifiers that shape it and every command as it would run, variables
 * resolved and secrets masked. Runs nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "graph/graph.h"

struct render {
	const struct graph *g;
	const char *const *secrets;
	size_t n_secrets;
	FILE *out;
	bool color;
	struct buf prefix;
};

/* Dry-run scope: vars and env resolve; results of steps are not known yet. */
static json_t *dry_lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used,
			  char **err)
{
	const struct plan *p = ud;
	if (!strcmp(root, "vars") || !strcmp(root, "env"))
		return plan_lookup_static(p, root, segs, nsegs, used, err);
	if (!strcmp(root, "host")) {
		*err = xstrdup("'host' is known for each host when the plan runs");
		return NULL;
	}
	*err = xasprintf("'%s' is known only when the plan runs", root);
	return NULL;
}

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
	buf_adds(b, step_kind_name(s->kind));
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
	struct buf m = {0}, v = {0};
	mask_secrets(s, len, R->secrets, R->n_secrets, &m);
	str_visible(&v, m.data ? m.data : "", m.len);
	fwrite(v.data, 1, v.len, R->out);
	buf_free(&m);
	buf_free(&v);
}

static void command(struct render *R, const struct gnode *n, const char *lead)
{
	const struct step *s = n->step;
	struct expr_scope scope = {dry_lookup, (void *)R->g->plan};
	struct buf cmd = {0};
	if (s->run) {
		tmpl_preview(s->run, TMPL_SHELL, &scope, &cmd);
	} else {
		for (size_t i = 0; i < s->argc; i++) {
			struct buf w = {0};
			tmpl_preview(s->argv[i], TMPL_TEXT, &scope, &w);
			if (i)
				buf_addc(&cmd, ' ');
			shell_quote(&cmd, w.data ? w.data : "", w.len);
			buf_free(&w);
		}
	}
	/* masked whole, before it is split: a multi-line secret is then hidden whole too */
	struct buf masked = {0};
	mask_secrets(cmd.data ? cmd.data : "", cmd.len, R->secrets, R->n_secrets, &masked);
	/* a multi-line script prints one line per line, under the same lead */
	const char *p = masked.data ? masked.data : "";
	fprintf(R->out, "%s%s%s$ %s", R->prefix.data ? R->prefix.data : "", lead, c(R, "\033[2m"), c(R, ""));
	for (;;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		struct buf v = {0};
		str_visible(&v, p, len);
		fwrite(v.data ? v.data : "", 1, v.len, R->out);
		buf_free(&v);
		fputc('\n', R->out);
		if (!nl || !nl[1])
			break;
		p = nl + 1;
		fprintf(R->out, "%s%s  ", R->prefix.data ? R->prefix.data : "", lead);
	}
	if (c(R, "")[0])
		fputs("\033[0m", R->out);
	buf_free(&masked);
	buf_free(&cmd);
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
static unsigned char *runs_of(const struct graph *g, const struct gnode *n, bool by_host, size_t *count)
{
	const unsigned char *m = graph_instance_marks(g, n);
	const struct step *s = n->step;
	size_t nh = s->fan->on ? s->fan->n_hosts : 1;
	size_t ni = s->fan->for_each ? json_array_size(s->fan->for_each) : 1;
	if (s->fan->for_each_expr) {
		struct expr_scope scope = {dry_lookup, (void *)g->plan};
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
	struct expr_scope scope = {dry_lookup, (void *)R->g->plan};
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
	unsigned char *runs = runs_of(R->g, n, true, &n_runs);
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
		buf_reset(&line);
		for (size_t i = 0; i < (batched ? sizes[b] : one) && at < one; at++) {
			if (batched && runs && !runs[at])
				continue;
			if (i++)
				buf_adds(&line, ", ");
			host_text(inv, &inv->hosts[s->fan->hosts[at]], &line);
			if (runs && !runs[at])
				buf_adds(&line, " (skipped)");
		}
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
		struct expr_scope scope = {dry_lookup, (void *)R->g->plan};
		char *err = NULL;
		items = expr_eval(s->fan->for_each_expr, &scope, &err);
		if (!items || !json_is_array(items)) {
			fprintf(R->out, "%s%sfor_each: (known when the plan runs%s%s)\n", pre, lead, err ? ": " : "",
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
	unsigned char *runs = runs_of(R->g, n, false, &n_runs);
	struct buf line = {0};
	struct expr_scope scope = {dry_lookup, (void *)R->g->plan};
	for (size_t i = 0; i < n_items; i++) {
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
			buf_reset(&line);
			for (size_t i = 0; i < sizes[b]; i++, at++) {
				while (runs && !runs[at])
					at++;
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

static void node(struct render *R, const struct gnode *n, bool last)
{
	const struct step *s = n->step;
	struct buf m = {0};
	mods(R, n, &m);
	fprintf(R->out, "%s%s%s%s%s  %s[", R->prefix.data ? R->prefix.data : "", last ? "└─ " : "├─ ",
		c(R, "\033[1m"), s->full_id, c(R, "\033[0m"), c(R, "\033[36m"));
	line_masked(R, m.data, m.len); /* `when:` and names are the plan's text */
	fprintf(R->out, "]%s", c(R, "\033[0m"));
	if (s->name) {
		fputs("  ", R->out);
		line_masked(R, s->name, strlen(s->name));
	}
	if (!n->selected)
		fprintf(R->out, "  %s(skipped: not selected)%s", c(R, "\033[33m"), c(R, "\033[0m"));
	fputc('\n', R->out);
	buf_free(&m);
	const char *lead = last ? "      " : "│     ";
	if (s->fan->on)
		host_lines(R, n, lead);
	if (s->fan->for_each || s->fan->for_each_expr)
		foreach_lines(R, n, lead);
	if (s->kind == STEP_RUN)
		command(R, n, lead);
	size_t save = R->prefix.len;
	buf_adds(&R->prefix, last ? "   " : "│  ");
	size_t nh = 0;
	for (int k = 0; k < HANDLER__COUNT; k++)
		nh += n->handlers[k] != NULL;
	for (size_t i = 0; i < n->nkids; i++)
		node(R, n->kids[i], i + 1 == n->nkids && !nh);
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (n->handlers[k])
			node(R, n->handlers[k], --nh == 0);
	R->prefix.len = save;
	R->prefix.data[save] = '\0';
}

void graph_render(const struct graph *g, const char *const *secrets, size_t n_secrets, FILE *out, bool color)
{
	const struct plan *p = g->plan;
	struct render R = {g, secrets, n_secrets, out, color, {0}};
	buf_adds(&R.prefix, "");
	/* a plan read from standard input has no file name to show, and no name of its own but "-" */
	bool from_stdin = !strcmp(p->file, "-");
	const char *file = from_stdin ? "<stdin>" : p->file;
	fprintf(out, "%splan ", c(&R, "\033[1m"));
	if (from_stdin && !strcmp(p->name, "-")) {
		fprintf(out, "%s%s\n", file, c(&R, "\033[0m"));
	} else {
		line_masked(&R, p->name, strlen(p->name));
		fprintf(out, "%s  (", c(&R, "\033[0m"));
		line_masked(&R, file, strlen(file));
		fputs(")\n", out);
	}
	if (p->description) {
		fputs("  ", out);
		line_masked(&R, p->description, strlen(p->description));
		fputc('\n', out);
	}
	char t[32] = "none";
	if (p->timeout_ms)
		duration_format(p->timeout_ms, t, sizeof t);
	fprintf(out, "  %zu task%s%s, concurrency %d, plan timeout %s\n", g->n_tasks, g->n_tasks == 1 ? "" : "s",
		g->tasks_exact ? "" : " or more (some for_each lists are known only when the plan runs)", g->concurrency,
		t);
	/* the lock is shown, never taken: a preview runs nothing */
	if (p->lock && p->lock_wait_ms) {
		duration_format(p->lock_wait_ms, t, sizeof t);
		fprintf(out, "  lock: %s (wait %s)\n", p->lock, t);
	} else if (p->lock) {
		fprintf(out, "  lock: %s (no wait: fails at once if held)\n", p->lock);
	}
	for (size_t i = 0; i < p->n_semaphores; i++)
		fprintf(out, "  semaphore %s: %d\n", p->semaphores[i].name, p->semaphores[i].capacity);
	const struct gnode *root = &g->nodes[0];
	size_t nh = 0;
	for (int k = 0; k < HANDLER__COUNT; k++)
		nh += root->handlers[k] != NULL;
	for (size_t i = 0; i < root->nkids; i++)
		node(&R, root->kids[i], i + 1 == root->nkids && !nh);
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (root->handlers[k])
			node(&R, root->handlers[k], --nh == 0);
	buf_free(&R.prefix);
}
