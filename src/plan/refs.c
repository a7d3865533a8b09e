/*
 * refs.c — the static checks of what expressions read: every context path
 * in a template, `when`, `for_each`, env and cwd must be able to resolve
 * where it stands (plan-format.md sections 6 and 8), or it is an error at
 * its ${{ }} with the closest valid name; barriers must stand in a fan-out,
 * async steps in a sequence.
 */
#include <string.h>

#include "plan/internal.h"

static const char *const contexts[] = {"vars",  "inputs", "env",    "item",  "index",  "host",
				       "run",   "steps",  "async",  "result", "error", "results"};
static const char *const host_fields[] = {"name", "address", "user", "port", "vars"};
static const char *const run_fields[] = {"id", "status"};
static const char *const step_fields[] = {"status", "exit_code", "stdout", "stdout_lines", "stderr",
					  "duration_ms", "outputs", "hosts", "items"};

struct refcheck {
	struct loader *L;
	const struct step *from;
	int line, col;
	const char *key;
	bool outside; /* for for_each's own list: the step's items are not there yet */
};

/* True when `from` (or, unless outside, from itself) runs once per item. */
static bool inside_foreach(const struct step *from, bool outside)
{
	for (const struct step *s = outside && from ? from->parent : from; s; s = s->parent)
		if (step_is_foreach(s))
			return true;
	return false;
}

/* True when `from` (or, unless outside, from itself) runs once per host. */
static bool inside_on(const struct step *from, bool outside)
{
	for (const struct step *s = outside && from ? from->parent : from; s; s = s->parent)
		if (s->fan->on)
			return true;
	return false;
}

static bool inside_handler(const struct step *from)
{
	for (const struct step *s = from; s; s = s->parent)
		if (s->is_handler)
			return true;
	return false;
}

static bool async_known(const struct loader *L, const char *name)
{
	for (size_t i = 0; i < L->n_asyncs; i++)
		if (!strcmp(L->asyncs[i].name, name))
			return true;
	return false;
}

/*
 * A barrier's participants are the instances of the nearest fan-out above it:
 * the items of a for_each, the branches of a parallel, the steps of a stage.
 */
static void check_barrier(struct loader *L, const struct step *b)
{
	for (const struct step *s = b; s && s->parent && !s->is_handler; s = s->parent) {
		bool instance = step_is_foreach(s) || s->parent->kind == STEP_PARALLEL || s->parent->kind == STEP_STAGE;
		if (!instance)
			continue;
		if (s == b)
			diags_add(L->d, L->file, b->line, b->col,
				  "barrier '%s' is itself a branch, so it has nothing to wait for; put it inside a "
				  "branch's steps",
				  b->barrier ? b->barrier : "");
		return;
	}
	diags_add(L->d, L->file, b->line, b->col,
		  "barrier '%s' is outside any fan-out (parallel, stages, for_each, on): nothing would meet there",
		  b->barrier ? b->barrier : "");
}

/* ", did you mean 'HINT'?" when a hint is close, else the text `otherwise`: a message's tail. */
static char *hint_tail(const char *hint, const char *otherwise)
{
	return hint ? xasprintf("; did you mean '%s'?", hint) : xstrdup(otherwise);
}

/* vars.NAME: the plan's vars (--var cannot add one) and its secrets. */
static void check_var(struct refcheck *R, const char *name)
{
	const struct plan *p = R->L->p;
	if (json_object_get(p->vars, name) || ld_in_set(name, (const char *const *)p->secrets, p->n_secrets))
		return;
	const char **names = xcalloc(json_object_size(p->vars) + p->n_secrets + 1, sizeof *names);
	size_t n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(p->vars, k, v) names[n++] = k;
	for (size_t i = 0; i < p->n_secrets; i++)
		names[n++] = p->secrets[i];
	const char *hint = ld_closest(name, names, n);
	bool input = false;
	for (size_t i = 0; i < p->n_inputs; i++)
		input |= !strcmp(p->input_defs[i].name, name);
	char *tail = input ? xasprintf("; '%s' is an input: read it as inputs.%s", name, name)
			   : hint_tail(hint, " (declare it under 'vars:')");
	diags_add(R->L->d, R->L->file, R->line, R->col, "'%s': vars.%s is not defined%s", R->key, name, tail);
	free(tail);
	free(names);
}

/* inputs.NAME: the plan's declared inputs. */
static void check_input(struct refcheck *R, const char *name)
{
	const struct plan *p = R->L->p;
	const char **names = xcalloc(p->n_inputs + 1, sizeof *names);
	for (size_t i = 0; i < p->n_inputs; i++) {
		if (!strcmp(p->input_defs[i].name, name)) {
			free(names);
			return;
		}
		names[i] = p->input_defs[i].name;
	}
	const char *hint = ld_closest(name, names, p->n_inputs);
	char *tail = json_object_get(p->vars, name) ? xasprintf("; '%s' is a var: read it as vars.%s", name, name)
						    : hint_tail(hint, " (declare it under 'inputs:')");
	diags_add(R->L->d, R->L->file, R->line, R->col, "'%s': inputs.%s is not declared%s", R->key, name, tail);
	free(tail);
	free(names);
}

struct idlist {
	const char **v;
	size_t n, cap;
};

static void idlist_add(struct idlist *l, const char *id)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = xrealloc(l->v, l->cap * sizeof *l->v);
	}
	l->v[l->n++] = id;
}

/*
 * The step id closest to the one written (segs joined, as long as a full id
 * may be): among the ids of the steps beside `from` and beside each of its
 * ancestors, then every full id. Built only for an error.
 */
static const char *closest_step(const struct plan *p, const struct step *from, const char *const *segs,
				size_t nsegs, char **joined)
{
	struct idlist l = {0};
	for (const struct step *a = from ? from->parent : NULL; a; a = a->parent) {
		for (size_t i = 0; i < a->n_children; i++)
			idlist_add(&l, a->children[i]->id);
		for (int k = 0; k < HANDLER__COUNT; k++)
			if (a->handlers[k])
				idlist_add(&l, a->handlers[k]->id);
	}
	for (size_t i = 0; i < p->index_cap; i++)
		if (p->index[i])
			idlist_add(&l, p->index[i]->full_id);
	const char *hint = ld_closest(segs[0], l.v, l.n);
	/* a full id written with a typo in a later part: build.compil */
	struct buf b = {0};
	for (size_t k = 0; k < nsegs && !hint; k++) {
		buf_printf(&b, "%s%s", k ? "." : "", segs[k]);
		if (k)
			hint = ld_closest(b.data, l.v, l.n);
	}
	buf_free(&b);
	*joined = hint ? xstrdup(hint) : NULL;
	free(l.v);
	return *joined;
}

static void check_steps(struct refcheck *R, const char *const *segs, size_t nsegs)
{
	struct loader *L = R->L;
	size_t used = 0;
	if (!nsegs) {
		diags_add(L->d, L->file, R->line, R->col, "'%s': 'steps' needs a step id, as in steps.ID.stdout", R->key);
		return;
	}
	struct step *t = plan_resolve_step_ref(L->p, R->from, segs, nsegs, &used);
	if (!t) {
		char *hint = NULL;
		closest_step(L->p, R->from, segs, nsegs, &hint);
		char *tail = hint_tail(hint, " (ids are a sibling's id or a full id such as build.compile)");
		diags_add(L->d, L->file, R->line, R->col, "'%s': no step with id '%s'%s", R->key, segs[0], tail);
		free(tail);
		free(hint);
		return;
	}
	t->captured = true;
	if (used >= nsegs || ld_in_set(segs[used], step_fields, ARRAY_LEN(step_fields)))
		return; /* steps.ID.outputs.KEY: any KEY (known only when the step has run) */
	/* a field, or a child's id (steps.build.compil) */
	struct idlist l = {0};
	for (size_t i = 0; i < ARRAY_LEN(step_fields); i++)
		idlist_add(&l, step_fields[i]);
	for (size_t i = 0; i < t->n_children; i++)
		idlist_add(&l, t->children[i]->id);
	char *tail = hint_tail(ld_closest(segs[used], l.v, l.n),
			       " (it has status, exit_code, stdout, stdout_lines, stderr, duration_ms, outputs)");
	diags_add(L->d, L->file, R->line, R->col, "'%s': steps.%s has no '%s'%s", R->key, t->full_id, segs[used],
		  tail);
	free(tail);
	free(l.v);
}

static void check_async(struct refcheck *R, const char *const *segs, size_t nsegs)
{
	struct loader *L = R->L;
	if (nsegs && async_known(L, segs[0]))
		return;
	const char **names = xcalloc(L->n_asyncs + 1, sizeof *names);
	for (size_t i = 0; i < L->n_asyncs; i++)
		names[i] = L->asyncs[i].name;
	char *tail = hint_tail(nsegs ? ld_closest(segs[0], names, L->n_asyncs) : NULL, "");
	diags_add(L->d, L->file, R->line, R->col, "'%s': no async step named '%s'%s", R->key, nsegs ? segs[0] : "",
		  tail);
	free(tail);
	free(names);
}

static void check_path(void *ud, const char *root, const char *const *segs, size_t nsegs)
{
	struct refcheck *R = ud;
	struct loader *L = R->L;
	if (!ld_in_set(root, contexts, ARRAY_LEN(contexts))) {
		const char *hint = ld_closest(root, contexts, ARRAY_LEN(contexts));
		if (hint)
			diags_add(L->d, L->file, R->line, R->col, "'%s': unknown context '%s'; did you mean '%s'?",
				  R->key, root, hint);
		else
			diags_add(L->d, L->file, R->line, R->col,
				  "'%s': unknown context '%s' (known: vars, inputs, env, steps, run, item, index, host, "
				  "async, result, error, results)",
				  R->key, root);
		return;
	}
	if (!strcmp(root, "vars")) {
		if (nsegs)
			check_var(R, segs[0]);
	} else if (!strcmp(root, "inputs")) {
		if (nsegs)
			check_input(R, segs[0]);
	} else if (!strcmp(root, "item") || !strcmp(root, "index")) {
		if (!inside_foreach(R->from, R->outside))
			diags_add(L->d, L->file, R->line, R->col, "'%s': '%s' is defined only inside a for_each step",
				  R->key, root);
	} else if (!strcmp(root, "host")) {
		if (!inside_on(R->from, R->outside)) {
			diags_add(L->d, L->file, R->line, R->col, "'%s': 'host' is defined only inside an 'on' step",
				  R->key);
		} else if (nsegs && !ld_in_set(segs[0], host_fields, ARRAY_LEN(host_fields))) {
			char *tail = hint_tail(ld_closest(segs[0], host_fields, ARRAY_LEN(host_fields)), "");
			diags_add(L->d, L->file, R->line, R->col,
				  "'%s': 'host' has name, address, user, port and vars, not '%s'%s", R->key, segs[0], tail);
			free(tail);
		}
	} else if (!strcmp(root, "result") || !strcmp(root, "error") || !strcmp(root, "results")) {
		if (!inside_handler(R->from))
			diags_add(L->d, L->file, R->line, R->col,
				  "'%s': '%s' is defined only inside on_success, on_failure and finally", R->key, root);
	} else if (!strcmp(root, "async")) {
		check_async(R, segs, nsegs);
	} else if (!strcmp(root, "run")) {
		if (nsegs && !ld_in_set(segs[0], run_fields, ARRAY_LEN(run_fields))) {
			char *tail = hint_tail(ld_closest(segs[0], run_fields, ARRAY_LEN(run_fields)), "");
			diags_add(L->d, L->file, R->line, R->col, "'%s': 'run' has 'id' and 'status', not '%s'%s", R->key,
				  segs[0], tail);
			free(tail);
		}
	} else if (!strcmp(root, "steps")) {
		check_steps(R, segs, nsegs);
	}
}

/* One ${{ }} of a template: its references, reported where it stands (else where the template does). */
static void check_slot(void *ud, const struct expr *e, int line, int col)
{
	struct refcheck *R = ud;
	struct refcheck at = *R;
	if (line > 0) {
		at.line = line;
		at.col = col;
	}
	expr_walk_paths(e, check_path, &at);
}

/* What a field given as ${{ }} may read (continue_on_error, batch): what is known without the run's results. */
static const char *const field_contexts[] = {"vars", "inputs", "env", "item", "index", "host"};

static void check_field_path(void *ud, const char *root, const char *const *segs, size_t nsegs)
{
	struct refcheck *R = ud;
	if (ld_in_set(root, contexts, ARRAY_LEN(contexts)) && !ld_in_set(root, field_contexts, ARRAY_LEN(field_contexts))) {
		diags_add(R->L->d, R->L->file, R->line, R->col,
			  "'%s' may read only vars, inputs, env, item, index and host, not '%s'", R->key, root);
		return;
	}
	check_path(ud, root, segs, nsegs);
}

static void check_field(struct loader *L, const struct step *s, const struct field_expr *f, const char *key,
			bool outside)
{
	if (!f->e)
		return;
	struct refcheck R = {L, s, f->line, f->col, key, outside};
	expr_walk_paths(f->e, check_field_path, &R);
}

static void check_tmpl(struct loader *L, const struct step *from, const struct tmpl *t, const char *key)
{
	if (!t)
		return;
	struct refcheck R = {L, from, 0, 0, key, false};
	tmpl_place(t, &R.line, &R.col);
	tmpl_walk_slots(t, check_slot, &R);
}

/*
 * A `run:` string with ${{ }} gets its values by reference, which only a
 * POSIX shell reads: under another interpreter a value has no safe form.
 */
static void check_run_shell(struct loader *L, const struct step *s)
{
	if (!s->run || tmpl_is_literal(s->run))
		return;
	const char *shell = NULL;
	for (const struct step *a = s; a && !shell; a = a->parent)
		shell = a->mods->shell;
	if (!shell)
		shell = L->p->defaults.mods->shell;
	if (!shell || shctx_is_posix_shell(shell))
		return;
	int line, col;
	tmpl_place(s->run, &line, &col);
	diags_add(L->d, L->file, line, col,
		  "'run': ${{ }} needs a POSIX shell (sh, dash, bash, ksh, zsh), and this step's shell is '%s'; pass the "
		  "value through env: and read it from the environment there",
		  shell);
}

static void check_refs(struct loader *L, struct step *s)
{
	check_tmpl(L, s, s->run, "run");
	check_run_shell(L, s);
	for (size_t i = 0; i < s->argc; i++)
		check_tmpl(L, s, s->argv[i], "run");
	if (s->copy) {
		check_tmpl(L, s, s->copy->src, "src");
		check_tmpl(L, s, s->copy->dest, "dest");
		check_tmpl(L, s, s->copy->mode, "mode");
	}
	for (size_t i = 0; i < s->mods->n_env; i++)
		check_tmpl(L, s, s->mods->env_vals[i], s->mods->env[i].key);
	check_tmpl(L, s, s->mods->cwd, "cwd");
	check_tmpl(L, s, s->fan->label, "label");
	if (s->kind == STEP_APPROVE) {
		check_tmpl(L, s, s->approve_message, "approve");
		if (s->has_timeout && !s->approve_timeout_ms)
			s->approve_timeout_ms = s->timeout_ms; /* the step's `timeout:` is the gate's */
	}
	if (s->mods->when) {
		struct refcheck R = {L, s, s->mods->when_line, s->mods->when_col, "when", false};
		expr_walk_paths(s->mods->when, check_path, &R);
	}
	if (s->fan->for_each_expr) {
		struct refcheck R = {L, s, s->fan->for_each_line, s->fan->for_each_col, "for_each", false};
		R.outside = true; /* the list is computed before any item exists */
		expr_walk_paths(s->fan->for_each_expr, check_path, &R);
	}
	for (size_t i = 0; s->fan->for_each_tmpls && i < json_array_size(s->fan->for_each); i++)
		if (s->fan->for_each_tmpls[i]) {
			struct refcheck R = {L, s, 0, 0, "for_each", true};
			tmpl_place(s->fan->for_each_tmpls[i], &R.line, &R.col);
			tmpl_walk_slots(s->fan->for_each_tmpls[i], check_slot, &R);
		}
	/* batch is decided as the fan-out starts (before its own items); continue_on_error per instance */
	check_field(L, s, &s->fan->batch.size_x, "batch.size", true);
	check_field(L, s, &s->fan->batch.pause_x, "batch.pause", true);
	check_field(L, s, &s->fan->batch.max_failures_x, "batch.max_failures", true);
	check_field(L, s, &s->mods->continue_x, "continue_on_error", false);
	if (s->kind == STEP_BARRIER)
		check_barrier(L, s);
	if (s->handlers[HANDLER_SUCCESS] || s->handlers[HANDLER_FAILURE] || s->handlers[HANDLER_FINALLY]) {
		/* ${{ results }} reads each instance's output: keep the branches' and stages' steps' */
		for (size_t i = 0; i < s->n_children; i++) {
			s->children[i]->captured = true;
			if (s->kind == STEP_STAGES)
				for (size_t k = 0; k < s->children[i]->n_children; k++)
					s->children[i]->children[k]->captured = true;
		}
	}
	if (s->mods->async && (!s->parent || s->parent->kind != STEP_STEPS || inside_foreach(s, false)))
		diags_add(L->d, L->file, s->line, s->col,
			  "async step '%s' must stand in a sequence of steps, outside any for_each or on",
			  s->mods->async);
	for (size_t i = 0; i < s->n_children; i++)
		check_refs(L, s->children[i]);
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (s->handlers[k])
			check_refs(L, s->handlers[k]);
}

void ld_check_refs(struct loader *L)
{
	struct plan *p = L->p;
	check_refs(L, p->root);
	env_check_remote(L);
	for (size_t i = 0; i < L->n_joins; i++)
		if (!async_known(L, L->joins[i].name))
			diags_add(L->d, L->file, L->joins[i].line, L->joins[i].col, "'join': no async step named '%s'",
				  L->joins[i].name);
	/* the plan's own env and defaults are read from every step: only plan-wide contexts */
	for (size_t i = 0; i < p->n_env; i++)
		check_tmpl(L, NULL, p->env_vals[i], p->env[i].key);
	for (size_t i = 0; i < p->defaults.mods->n_env; i++)
		check_tmpl(L, NULL, p->defaults.mods->env_vals[i], p->defaults.mods->env[i].key);
	check_tmpl(L, NULL, p->defaults.mods->cwd, "cwd");
}
