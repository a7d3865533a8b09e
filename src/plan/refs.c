/*
 * refs.c — the static checks of what expressions read: every context path
 * in a template, `when`, `for_each`, env and cwd must be able to resolve
 * where it stands (plan-format.md sections 6 and 8); barriers must stand in a
 * fan-out, async steps in a sequence.
 */
#include <string.h>

#include "plan/internal.h"

static const char *const contexts[] = {"vars", "env",  "item",   "index", "host",   "run",
				       "steps", "async", "result", "error", "results"};
static const char *const host_fields[] = {"name", "address", "user", "port", "vars"};
static const char *const step_fields[] = {"status", "exit_code", "stdout", "stdout_lines", "stderr",
					  "duration_ms", "hosts", "items", "outputs"};

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
				  "'%s': unknown context '%s' (known: vars, env, steps, run, item, index, host, "
				  "async, result, error, results)",
				  R->key, root);
		return;
	}
	if (!strcmp(root, "item") || !strcmp(root, "index")) {
		if (!inside_foreach(R->from, R->outside))
			diags_add(L->d, L->file, R->line, R->col, "'%s': '%s' is defined only inside a for_each step",
				  R->key, root);
	} else if (!strcmp(root, "host")) {
		if (!inside_on(R->from, R->outside))
			diags_add(L->d, L->file, R->line, R->col, "'%s': 'host' is defined only inside an 'on' step",
				  R->key);
		else if (nsegs && !ld_in_set(segs[0], host_fields, ARRAY_LEN(host_fields)))
			diags_add(L->d, L->file, R->line, R->col,
				  "'%s': 'host' has name, address, user, port and vars, not '%s'", R->key, segs[0]);
	} else if (!strcmp(root, "result") || !strcmp(root, "error") || !strcmp(root, "results")) {
		if (!inside_handler(R->from))
			diags_add(L->d, L->file, R->line, R->col,
				  "'%s': '%s' is defined only inside on_success, on_failure and finally", R->key, root);
	} else if (!strcmp(root, "async")) {
		if (!nsegs || !async_known(L, segs[0]))
			diags_add(L->d, L->file, R->line, R->col, "'%s': no async step named '%s'", R->key,
				  nsegs ? segs[0] : "");
	} else if (!strcmp(root, "run")) {
		if (nsegs && strcmp(segs[0], "id") && strcmp(segs[0], "status"))
			diags_add(L->d, L->file, R->line, R->col, "'%s': 'run' has 'id' and 'status', not '%s'", R->key,
				  segs[0]);
	} else if (!strcmp(root, "steps")) {
		size_t used = 0;
		if (!nsegs) {
			diags_add(L->d, L->file, R->line, R->col, "'%s': 'steps' needs a step id, as in steps.ID.stdout",
				  R->key);
			return;
		}
		struct step *t = plan_resolve_step_ref(L->p, R->from, segs, nsegs, &used);
		if (!t) {
			diags_add(L->d, L->file, R->line, R->col, "'%s': no step with id '%s' (ids are a sibling's id or a full id such as build.compile)",
				  R->key, segs[0]);
			return;
		}
		t->captured = true;
		if (used < nsegs && !ld_in_set(segs[used], step_fields, ARRAY_LEN(step_fields)))
			diags_add(L->d, L->file, R->line, R->col,
				  "'%s': steps.%s has no '%s' (it has status, exit_code, stdout, stdout_lines, stderr, "
				  "outputs, duration_ms)",
				  R->key, t->full_id, segs[used]);
	}
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
	tmpl_walk_paths(t, check_path, &R);
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
	for (size_t i = 0; i < s->mods->n_env; i++)
		check_tmpl(L, s, s->mods->env_vals[i], s->mods->env[i].key);
	check_tmpl(L, s, s->mods->cwd, "cwd");
	check_tmpl(L, s, s->fan->label, "label");
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
			tmpl_walk_paths(s->fan->for_each_tmpls[i], check_path, &R);
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
