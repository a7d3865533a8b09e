/*
 * sched.c — walks the compiled graph as a tree of runtime nodes, each a small
 * state machine (PENDING → RUNNING → DONE). Sequences advance child by child;
 * fan-outs (parallel branches, a stage's steps, a for_each's items) apply
 * their mode, batches and barriers; async steps run beside their sequence
 * until joined; handlers run before a step's end is final. Cancellation
 * walks down the tree. One thread, one loop: every wait here is a libuv
 * timer, signal or I/O callback. Tasks live in task.c.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched/internal.h"

extern char **environ;

#define PROGRESS_MS 1000

static void node_start(struct sched *S, struct snode *n);
static void node_cancel(struct sched *S, struct snode *n);
static void run_finished(struct sched *S);

const struct step *step_of(const struct snode *n)
{
	return n->g->step;
}

static bool is_failure(enum status st)
{
	return st == ST_FAILED || st == ST_TIMEOUT;
}

/* ---- runtime nodes ---- */

static struct snode *snode_new(struct sched *S, const struct gnode *g, struct snode *parent, enum role role)
{
	struct snode *n = xcalloc(1, sizeof *n);
	n->g = g;
	n->parent = parent;
	n->role = role;
	n->exit_code = -1;
	if (role == ROLE_INSTANCE) {
		n->index = -1;
		n->host = -1;
	}
	n->in_handler = parent && parent->in_handler;
	/* an instance's steps carry its @HOST#INDEX, and those of any instance around it */
	const char *suffix = parent && parent->id ? strpbrk(parent->id, "@#") : NULL;
	n->id_owned = true;
	if (role == ROLE_INSTANCE) {
		n->id = NULL; /* set by the caller, which knows the index */
	} else if (suffix && g->step->full_id[0]) {
		n->id = xasprintf("%s%s", g->step->full_id, suffix);
	} else {
		n->id = g->step->full_id; /* the plan outlives the run */
		n->id_owned = false;
	}
	if (S->n_all == S->cap_all) {
		S->cap_all = S->cap_all ? S->cap_all * 2 : 64;
		S->all = xrealloc(S->all, S->cap_all * sizeof *S->all);
	}
	S->all[S->n_all++] = n;
	if (role != ROLE_INSTANCE)
		sel_mark(S, n);
	return n;
}

static bool step_is_items(const struct step *s)
{
	return s->fan->for_each || s->fan->for_each_expr;
}

static void snode_free(struct snode *n)
{
	free(n->kids);
	if (n->cap) {
		free(n->cap->out);
		free(n->cap->err);
		json_decref(n->cap->outputs);
		free(n->cap);
	}
	free(n->reason);
	free(n->final_reason);
	if (n->id_owned)
		free(n->id);
	if (n->role == ROLE_FOREACH && n->bx) {
		if (step_of(n)->fan->batch.size_x.e)
			free(n->bx->spec.sizes);
		free(n->bx->sizes);
		free(n->bx);
	}
	if (n->role == ROLE_INSTANCE)
		json_decref(n->item);
	for (struct barrier *b = n->barriers, *next; b; b = next) {
		next = b->next;
		free(b->name);
		free(b->state);
		free(b->waiting);
		free(b);
	}
	free(n);
}

/* Creates the runtime children of a plain (non-for_each) group node, once. */
static void make_kids(struct sched *S, struct snode *n)
{
	if (n->kids_made || n->role == ROLE_FOREACH)
		return;
	n->kids_made = true;
	if (!n->g->nkids)
		return;
	n->kids = xcalloc(n->g->nkids, sizeof *n->kids);
	n->nkids = n->g->nkids;
	for (size_t i = 0; i < n->g->nkids; i++) {
		const struct gnode *kg = n->g->kids[i];
		n->kids[i] = snode_new(S, kg, n, step_is_foreach(kg->step) ? ROLE_FOREACH : ROLE_STEP);
		n->kids[i]->pos = i;
	}
}

long node_host(const struct snode *n)
{
	for (; n; n = n->parent)
		if (n->role == ROLE_INSTANCE && n->host >= 0)
			return n->host;
	return -1;
}

json_t *node_item(const struct snode *n, long *index)
{
	for (; n; n = n->parent)
		if (n->role == ROLE_INSTANCE && n->item) {
			*index = n->index;
			return n->item;
		}
	return NULL;
}

/* Nesting as people see it: top-level steps are 1; an item sits below its for_each. */
static int depth_of(const struct snode *n)
{
	int d = 0;
	for (const struct snode *p = n->parent; p; p = p->parent)
		d++;
	return d;
}

/* ---- events ---- */

static const char *kind_label(const struct snode *n)
{
	if (n->role == ROLE_FOREACH)
		return step_of(n)->fan->for_each || step_of(n)->fan->for_each_expr ? "for_each" : "on";
	return step_kind_word(step_of(n));
}

static void emit_step(struct sched *S, struct snode *n, enum event_type type)
{
	if (!n->g->parent)
		return; /* the root is the run itself */
	struct event e = {.type = type};
	e.step = n->id;
	e.kind = kind_label(n);
	e.name = step_of(n)->name;
	e.status = n->status;
	e.duration_ms = n->state == N_DONE && n->started ? n->end_ms - n->start_ms : 0;
	if (type == EV_STEP_END && is_failure(n->status)) {
		e.reason = n->reason;
		e.reason_own = !n->reason_child;
		e.tolerated = n->tolerated;
	}
	e.depth = depth_of(n);
	if (n->role == ROLE_FOREACH && step_of(n)->fan->on && !step_is_items(step_of(n)))
		e.hosts = step_of(n)->fan->n_hosts;
	char *label = node_label(S, n);
	e.label = label;
	bus_emit(S->o.bus, &e);
	free(label);
}

static void emit_progress(struct sched *S)
{
	struct event e = {.type = EV_PROGRESS};
	e.done = S->n_done;
	e.failed = S->n_failed;
	e.n_tolerated = S->n_tolerated;
	e.running = S->n_running;
	e.waiting = S->n_waiting;
	e.total = S->total;
	bus_emit(S->o.bus, &e);
}

/* ---- counting tasks ---- */

bool node_is_counted_task(const struct snode *n)
{
	/* what --only / --from leave out is not part of the run; a handler's task counts once it runs */
	return step_of(n)->kind == STEP_RUN && n->role != ROLE_FOREACH && n->selected && (!n->in_handler || n->started);
}

/* A task (or not) ended with st: the run's counts, and its progress. */
static void count_end(struct sched *S, struct snode *n, enum status st)
{
	if (n->role == ROLE_FOREACH && !n->kids_made) {
		/* a fan-out that never made its instances (skipped, cancelled, its list failed): its tasks end with it */
		uint64_t k = sel_fanout_counted(S, n);
		S->n_done += k;
		S->counts[st == ST_CANCELLED ? ST_CANCELLED : ST_SKIPPED] += k;
		return;
	}
	if (!node_is_counted_task(n))
		return;
	S->n_done++;
	if (n->tolerated)
		S->n_tolerated++;
	else
		S->counts[st]++;
	if (is_failure(st) && !n->tolerated)
		S->n_failed++;
}

/* ---- marking what never ran ---- */

/* Ends a node that never started, and everything below it, with st. */
static void mark_below(struct sched *S, struct snode *n, enum status st)
{
	make_kids(S, n);
	for (size_t i = 0; i < n->nkids; i++) {
		struct snode *c = n->kids[i];
		if (c->state != N_PENDING)
			continue;
		mark_below(S, c, st);
		c->state = N_DONE;
		c->status = st;
		count_end(S, c, st);
		emit_step(S, c, EV_STEP_END);
	}
}

static void mark_tree(struct sched *S, struct snode *n, enum status st)
{
	mark_below(S, n, st);
	n->state = N_RUNNING;
	node_finish(S, n, st, NULL);
}

/* ---- sequences ---- */

/*
 * continue_on_error: true belongs to the step as its parent sees it, not to
 * each of its items; an expression was decided as each instance (the step,
 * when it has none) failed (coe_decide).
 */
static bool continues(const struct snode *c)
{
	if (step_of(c)->mods->continue_x.e)
		return c->continues;
	return c->role != ROLE_INSTANCE && step_of(c)->continue_on_error;
}

/*
 * A failed node whose step has `continue_on_error: ${{ }}`: evaluated per
 * instance of a for_each or on step (with its item and host), else for the
 * step. A value that is not a boolean, or an evaluation that fails, does
 * not tolerate anything and says why in the node's reason.
 */
static void coe_decide(struct sched *S, struct snode *n)
{
	const struct step *s = step_of(n);
	if (!s->mods->continue_x.e || n->role == ROLE_FOREACH)
		return;
	struct scope_ctx C;
	struct expr_scope scope = scope_of(&C, S, n);
	char *err = NULL;
	int r = continue_on_error_eval(s, &scope, &err);
	n->continues = r == 1;
	if (r < 0) {
		char *why = xasprintf("%s; %s", n->reason ? n->reason : status_name(n->status), err);
		free(n->reason);
		n->reason = why;
	}
	free(err);
}

static bool child_ok(const struct snode *c)
{
	if (c->status == ST_SUCCESS || c->status == ST_SKIPPED)
		return true;
	return is_failure(c->status) && continues(c);
}

static bool child_failed(const struct snode *c)
{
	return is_failure(c->status) && !continues(c);
}

static void async_register(struct sched *S, struct snode *c)
{
	S->asyncs = xrealloc(S->asyncs, (S->n_asyncs + 1) * sizeof *S->asyncs);
	S->asyncs[S->n_asyncs++] = (struct async_entry){step_of(c)->mods->async, c, false};
}

static void seq_advance(struct sched *S, struct snode *p)
{
	if (p->advancing)
		return;
	p->advancing = true;
	make_kids(S, p);
	while (p->state == N_RUNNING && !p->hphase) {
		if (p->next_child >= p->nkids) {
			node_finish(S, p, p->decided_set ? p->decided : ST_SUCCESS, p->reason);
			break;
		}
		struct snode *c = p->kids[p->next_child];
		if (c->state == N_PENDING) {
			if (p->cancelling) {
				mark_tree(S, c, ST_CANCELLED);
			} else if (p->decided_set) {
				mark_tree(S, c, ST_SKIPPED);
			} else if (step_of(c)->mods->async && c->selected) {
				/* in the background: the sequence goes on at once */
				c->detached = true;
				async_register(S, c);
				node_start(S, c);
				p->next_child++;
			} else {
				node_start(S, c);
			}
			continue;
		}
		if (c->detached) {
			p->next_child++;
			continue;
		}
		if (c->state == N_RUNNING)
			break;
		if (!p->decided_set && !p->cancelling && !child_ok(c)) {
			p->decided_set = true;
			p->decided = c->status == ST_CANCELLED ? ST_CANCELLED : ST_FAILED;
			char *shown = node_display(S, c);
			free(p->reason);
			p->reason = xasprintf("%s %s", shown, status_name(c->status));
			p->reason_child = true;
			free(shown);
		}
		p->next_child++;
	}
	p->advancing = false;
}

/* ---- fan-outs: parallel, a stage, for_each ---- */

static const struct step *fan_step(const struct snode *p)
{
	const struct step *s = step_of(p);
	return s->kind == STEP_STAGE ? p->parent->g->step : s;
}

static enum fan_mode fan_mode_of(const struct snode *p, struct amount *min)
{
	const struct step *s = fan_step(p);
	*min = s->fan->min_success;
	return s->fan->min_success.set ? MODE_SETTLE : s->fan->mode;
}

bool node_success_is_quiet(const struct snode *n)
{
	const struct snode *p = n->parent;
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (n->g->handlers[k])
			return false;
	if (!p || p->hphase || n->detached)
		return false;
	bool fan = p->role == ROLE_FOREACH || step_of(p)->kind == STEP_PARALLEL || step_of(p)->kind == STEP_STAGE;
	if (!fan || p->n_done + 1 >= p->nkids)
		return false; /* the last one ends the fan-out: that may start anything */
	struct amount min;
	enum fan_mode m = fan_mode_of(p, &min);
	return m == MODE_ALL || m == MODE_SETTLE;
}

static void fan_decide(struct sched *S, struct snode *p, enum status st, const char *why)
{
	p->decided_set = true;
	p->decided = st;
	if (why && st != ST_SUCCESS) {
		free(p->reason);
		p->reason = xstrdup(why);
		p->reason_child = true;
	}
	if (p->role == ROLE_FOREACH && p->timer)
		ntimer_drop(&p->timer); /* a pause before the next batch */
	for (size_t i = 0; i < p->nkids; i++)
		node_cancel(S, p->kids[i]);
}

static size_t max_failures_of(const struct snode *p)
{
	const struct step *s = step_of(p);
	return s->fan->has_batch && p->role == ROLE_FOREACH && p->bx ? sel_amount(p, &p->bx->spec.max_failures) : 0;
}

/* continue_on_error of c as its parent will see it; an expression not decided yet (c still runs) is asked now. */
static bool continues_ahead(struct sched *S, struct snode *c)
{
	const struct step *s = step_of(c);
	if (!s->mods->continue_x.e || c->state == N_DONE)
		return continues(c);
	if (c->role == ROLE_FOREACH)
		return false; /* decided per instance */
	struct scope_ctx C;
	struct expr_scope scope = scope_of(&C, S, c);
	char *err = NULL;
	int r = continue_on_error_eval(s, &scope, &err);
	free(err);
	return r == 1;
}

bool node_failure_tolerated(struct sched *S, struct snode *n, enum status st)
{
	if (!is_failure(st))
		return false;
	for (struct snode *c = n; c; c = c->parent) {
		if (continues_ahead(S, c))
			return true;
		if (c->detached || !c->parent)
			return false; /* an async step's failure is its join's, or the run's */
		struct snode *p = c->parent;
		if (c->is_handler)
			continue; /* a handler that fails fails the step it runs for */
		bool fan = p->role == ROLE_FOREACH || step_of(p)->kind == STEP_PARALLEL || step_of(p)->kind == STEP_STAGE;
		if (!fan)
			continue; /* a sequence fails with its step */
		struct amount min;
		enum fan_mode m = fan_mode_of(p, &min);
		if (min.set || m == MODE_ANY || m == MODE_RACE)
			return false; /* `any`, `race`, min_success: a plain failure, whatever the fan-out makes of it */
		/* not counted in failed_total yet: that is done as the instance ends, after this */
		if (p->role == ROLE_FOREACH && step_of(p)->fan->has_batch && p->bx && !p->decided_set &&
		    p->bx->failed_total + 1 <= max_failures_of(p))
			return true;
	}
	return false;
}

#define FAILED_NAMED 3 /* a fan-out's reason names this many of its failed instances */

/* reason (taken), followed by the first failed instances of fan-out p as people see them: "…: a#1 (web2), a#4 (web5)". */
static char *name_failed(struct sched *S, const struct snode *p, char *reason)
{
	struct buf b = {0};
	buf_adds(&b, reason);
	free(reason);
	size_t named = 0;
	for (size_t i = 0; i < p->nkids && named <= FAILED_NAMED; i++) {
		const struct snode *c = p->kids[i];
		if (c->state != N_DONE || !child_failed(c))
			continue;
		if (named++ == FAILED_NAMED) {
			buf_adds(&b, ", …");
			break;
		}
		char *shown = node_display(S, c);
		buf_adds(&b, named == 1 ? ": " : ", ");
		buf_adds(&b, shown);
		free(shown);
	}
	return buf_detach(&b);
}

static enum status fan_outcome(struct sched *S, const struct snode *p, char **reason)
{
	struct amount min;
	enum fan_mode m = fan_mode_of(p, &min);
	size_t n = sel_fan_size(p);
	if (min.set) {
		size_t need = sel_amount(p, &min);
		if (p->n_ok >= need)
			return ST_SUCCESS;
		free(*reason);
		*reason = xasprintf("%zu of %zu succeeded, min_success needs %zu", (size_t)p->n_ok, n, need);
		((struct snode *)p)->reason_child = false;
		return ST_FAILED;
	}
	if (m == MODE_ANY) {
		if (p->n_failed && !p->n_ok) {
			free(*reason);
			*reason = xstrdup("every instance failed");
			((struct snode *)p)->reason_child = true;
			return ST_FAILED;
		}
		return ST_SUCCESS;
	}
	if (p->role == ROLE_FOREACH && step_of(p)->fan->has_batch) {
		size_t maxf = max_failures_of(p);
		if (p->n_failed > maxf) {
			free(*reason);
			*reason = name_failed(S, p, xasprintf("%zu of %zu failed, max_failures is %zu", (size_t)p->n_failed,
								n, maxf));
			((struct snode *)p)->reason_child = true;
			return ST_FAILED;
		}
		return ST_SUCCESS;
	}
	if (p->n_failed) {
		if (!*reason)
			*reason = name_failed(S, p, xasprintf("%zu of %zu failed", (size_t)p->n_failed, n));
		((struct snode *)p)->reason_child = true;
		return ST_FAILED;
	}
	return ST_SUCCESS;
}

static void barriers_check(struct sched *S, struct snode *f);
static void start_batch(struct sched *S, struct snode *f, size_t b);

static void emit_batch(struct sched *S, struct snode *f, enum event_type type)
{
	size_t n = 0, span = f->bx->end - f->bx->first;
	long *idx = xcalloc(span ? span : 1, sizeof *idx);
	for (size_t i = f->bx->first; i < f->bx->end; i++)
		if (f->kids[i]->selected) /* what --only / --from skip is in no batch */
			idx[n++] = (long)i;
	struct event e = {.type = type};
	e.step = f->id;
	e.batch = (long)f->bx->current;
	e.instances = idx;
	e.n_instances = n;
	e.failed = f->bx->failed;
	/* a pause follows when batch_advance will start the next batch after it */
	if (type == EV_BATCH_END && f->bx->current + 1 < f->bx->n && !f->decided_set && !f->cancelling &&
	    f->bx->failed_total <= max_failures_of(f))
		e.pause_ms = f->bx->spec.pause_ms;
	/* over hosts alone, instances are named by their hosts; over items, shown by their labels */
	const char **names = NULL;
	char **labels = NULL;
	if (step_of(f)->fan->on && !step_is_items(step_of(f))) {
		names = xcalloc(n ? n : 1, sizeof *names);
		for (size_t i = 0; i < n; i++)
			names[i] = S->p->inventory.hosts[f->kids[idx[i]]->host].name;
		e.instance_names = names;
		e.labels = names;
	} else {
		labels = xcalloc(n ? n : 1, sizeof *labels);
		for (size_t i = 0; i < n; i++)
			labels[i] = node_label(S, f->kids[idx[i]]);
		e.labels = (const char *const *)labels;
	}
	bus_emit(S->o.bus, &e);
	for (size_t i = 0; labels && i < n; i++)
		free(labels[i]);
	free(labels);
	free(names);
	free(idx);
}

static void on_batch_pause(uv_timer_t *h)
{
	struct ntimer *nt = h->data;
	struct sched *S = nt->S;
	struct snode *f = nt->n;
	ntimer_drop(&f->timer);
	start_batch(S, f, f->bx->current + 1);
	pump(S);
}

/* After a batch of a for_each ended: stop on too many failures, else the next one after the pause. */
static void batch_advance(struct sched *S, struct snode *f)
{
	if (f->decided_set || f->cancelling || f->bx->current + 1 >= f->bx->n)
		return;
	size_t maxf = max_failures_of(f);
	if (f->bx->failed_total > maxf) {
		char *why = name_failed(S, f, xasprintf("%zu failed after batch %zu, max_failures is %zu", f->bx->failed_total,
							f->bx->current + 1, maxf));
		fan_decide(S, f, ST_FAILED, why);
		free(why);
		return;
	}
	uint64_t pause = f->bx->spec.pause_ms;
	if (!pause && f->bx->starting) {
		/* a batch that ended as it started (its items skipped): start_batch's loop goes on, not a new frame */
		f->bx->again = true;
		return;
	}
	if (!pause) {
		start_batch(S, f, f->bx->current + 1);
		return;
	}
	f->timer = ntimer_new(S, f);
	uv_timer_start(&f->timer->h, on_batch_pause, pause, 0);
}

static size_t kid_index(const struct snode *p, const struct snode *c)
{
	return c->parent == p && c->pos < p->nkids && p->kids[c->pos] == c ? c->pos : p->nkids;
}

static void fan_child_done(struct sched *S, struct snode *p, struct snode *c)
{
	p->n_done++;
	/*
	 * Only a real success wins `any` or counts toward min_success; a failure
	 * under continue_on_error neither wins nor fails the fan-out. `race` takes
	 * the first instance to end, as its parent would see it.
	 */
	bool succeeded = c->status == ST_SUCCESS;
	bool failed = child_failed(c);
	bool soft = !failed && is_failure(c->status);
	if (succeeded)
		p->n_ok++;
	if (failed)
		p->n_failed++;
	size_t ci = kid_index(p, c);
	bool in_batch = p->role == ROLE_FOREACH && ci >= p->bx->first && ci < p->bx->end;
	bool batch_complete = false; /* this call, and no other, completes the batch */
	if (in_batch) {
		p->bx->done++;
		if (failed)
			p->bx->failed++, p->bx->failed_total++;
		batch_complete = p->bx->done == p->bx->end - p->bx->first;
	}
	if (batch_complete && step_of(p)->fan->has_batch)
		emit_batch(S, p, EV_BATCH_END); /* before anything this end may set off */
	if (!p->decided_set && !p->cancelling) {
		struct amount min;
		enum fan_mode m = fan_mode_of(p, &min);
		char *shown = failed ? node_display(S, c) : NULL;
		char *why = failed ? xasprintf("%s %s", shown, status_name(c->status)) : NULL;
		free(shown);
		bool batched = p->role == ROLE_FOREACH && step_of(p)->fan->has_batch;
		if (m == MODE_ALL && failed && (!batched || p->bx->failed_total > max_failures_of(p)))
			fan_decide(S, p, ST_FAILED, why);
		else if (m == MODE_ANY && succeeded)
			fan_decide(S, p, ST_SUCCESS, NULL);
		else if (m == MODE_RACE && (succeeded || failed || soft))
			fan_decide(S, p, failed ? ST_FAILED : ST_SUCCESS, why);
		free(why);
	}
	if (batch_complete)
		batch_advance(S, p);
	barriers_check(S, p);
	if (p->state == N_RUNNING && p->n_done == p->nkids && !p->hphase) {
		enum status st = p->decided_set ? p->decided : fan_outcome(S, p, &p->reason);
		node_finish(S, p, st, p->reason);
	}
}

/*
 * Starts batch b of a for_each, and the ones after it that end while they
 * start (every item skipped or refused at once): in a loop, so a million
 * such batches take no more stack than one.
 */
static void start_batch(struct sched *S, struct snode *f, size_t b)
{
	struct batches *bx = f->bx;
	bx->starting = true;
	for (;;) {
		bx->first = b ? bx->end : 0;
		bx->current = b;
		bx->end = bx->first + bx->sizes[b];
		bx->done = 0;
		bx->failed = 0;
		bx->again = false;
		if (step_of(f)->fan->has_batch)
			emit_batch(S, f, EV_BATCH_START);
		for (size_t i = bx->first; i < bx->end && f->state == N_RUNNING; i++)
			if (f->kids[i]->state == N_PENDING && !f->decided_set && !f->cancelling)
				node_start(S, f->kids[i]);
		if (!bx->again || f->state != N_RUNNING)
			break;
		b = bx->current + 1;
	}
	bx->starting = false;
}

/* The for_each's items: a literal list (strings may interpolate) or an expression's list. */
static json_t *foreach_items(struct sched *S, struct snode *f, char **err)
{
	const struct step *s = step_of(f);
	struct scope_ctx C;
	struct expr_scope scope = scope_of(&C, S, f->parent);
	if (s->fan->for_each_expr) {
		json_t *v = expr_eval(s->fan->for_each_expr, &scope, err);
		if (v && !json_is_array(v)) {
			*err = xasprintf("the expression gave %s, not a list",
					 json_is_object(v) ? "a map" : json_is_string(v) ? "a string" : "a scalar");
			json_decref(v);
			return NULL;
		}
		return v;
	}
	json_t *items = json_array();
	for (size_t i = 0; i < json_array_size(s->fan->for_each); i++) {
		json_t *it = json_array_get(s->fan->for_each, i);
		const struct tmpl *t = s->fan->for_each_tmpls ? s->fan->for_each_tmpls[i] : NULL;
		if (t) {
			struct buf b = {0};
			bool ok = tmpl_render(t, TMPL_TEXT, &scope, &b, err);
			if (!ok) {
				if (!*err)
					*err = xstrdup("for_each: bad item");
				buf_free(&b);
				json_decref(items);
				return NULL;
			}
			json_t *str = json_stringn(b.data ? b.data : "", b.len);
			json_array_append_new(items, str ? str : json_string(""));
			buf_free(&b);
		} else {
			json_array_append(items, it);
		}
	}
	return items;
}

static void foreach_start(struct sched *S, struct snode *f)
{
	char *err = NULL;
	const struct step *s = step_of(f);
	bool has_items = step_is_items(s);
	json_t *items = has_items ? foreach_items(S, f, &err) : json_array();
	if (!items) {
		char *r = xasprintf("for_each: %s", err ? err : "no list");
		free(err);
		node_finish(S, f, ST_FAILED, r);
		free(r);
		return;
	}
	/* batch fields given as ${{ }}: decided now, in the scope the fan-out starts in */
	struct batch_spec spec = s->fan->batch;
	if (s->fan->has_batch) {
		struct scope_ctx C;
		struct expr_scope scope = scope_of(&C, S, f);
		if (!batch_resolve(&s->fan->batch, &scope, &spec, &err)) {
			json_decref(items);
			node_finish(S, f, ST_FAILED, err);
			free(err);
			return;
		}
	}
	size_t n_items = has_items ? json_array_size(items) : 1;
	size_t n_hosts = s->fan->on ? s->fan->n_hosts : 1;
	size_t n = n_items * n_hosts; /* host-major: each host's items together */
	if (!sel_fanout_begin(S, f, n_items, n_hosts)) {
		json_decref(items);
		if (s->fan->batch.size_x.e)
			free(spec.sizes);
		return;
	}
	f->kids = xcalloc(n ? n : 1, sizeof *f->kids);
	f->nkids = n;
	f->kids_made = true;
	for (size_t i = 0; i < n; i++) {
		struct snode *c = snode_new(S, f->g, f, ROLE_INSTANCE);
		size_t hi = i / n_items, ii = i % n_items;
		struct buf id = {0};
		buf_adds(&id, f->id);
		if (s->fan->on) {
			c->host = (long)s->fan->hosts[hi];
			buf_addc(&id, '@');
			buf_adds(&id, S->p->inventory.hosts[c->host].name);
		}
		if (has_items) {
			char num[32];
			snprintf(num, sizeof num, "#%zu", ii);
			buf_adds(&id, num);
			c->item = json_incref(json_array_get(items, ii));
			c->index = (long)ii;
		}
		c->id = buf_detach(&id);
		c->pos = i;
		f->kids[i] = c;
		sel_mark(S, c);
		f->n_selected += c->selected;
	}
	json_decref(items);
	if (!n) {
		if (s->fan->batch.size_x.e)
			free(spec.sizes);
		node_finish(S, f, ST_SUCCESS, NULL);
		return;
	}
	f->bx = xcalloc(1, sizeof *f->bx);
	f->bx->spec = spec;
	f->bx->sizes = xcalloc(n, sizeof *f->bx->sizes);
	if (s->fan->has_batch) {
		f->bx->n = sel_batches(f, &f->bx->spec, f->bx->sizes);
	} else {
		f->bx->sizes[0] = n;
		f->bx->n = 1;
	}
	start_batch(S, f, 0);
}

/* ---- barriers ---- */

/* The fan-out whose participants meet at barrier node b, and b's participant index in it. */
static struct snode *barrier_fanout(struct snode *b, size_t *part)
{
	for (struct snode *x = b; x->parent; x = x->parent) {
		struct snode *p = x->parent;
		if (x->is_handler)
			return NULL; /* handlers are not instances of anything */
		bool fan = p->role == ROLE_FOREACH || step_of(p)->kind == STEP_PARALLEL || step_of(p)->kind == STEP_STAGE;
		if (fan && (p->role != ROLE_FOREACH || x->role == ROLE_INSTANCE)) {
			*part = kid_index(p, x);
			return p;
		}
	}
	return NULL;
}

static struct barrier *barrier_get(struct snode *f, const char *name)
{
	for (struct barrier *b = f->barriers; b; b = b->next)
		if (!strcmp(b->name, name))
			return b;
	struct barrier *b = xcalloc(1, sizeof *b);
	b->name = xstrdup(name);
	b->state = xcalloc(f->nkids ? f->nkids : 1, 1);
	b->next = f->barriers;
	f->barriers = b;
	return b;
}

/* Participants still awaited: not ended, and in the running batch of a for_each. */
static bool awaited(const struct snode *f, size_t i)
{
	if (f->kids[i]->state == N_DONE)
		return false;
	if (f->role == ROLE_FOREACH && (i < f->bx->first || i >= f->bx->end))
		return false;
	return true;
}

static void barrier_count(const struct snode *f, const struct barrier *b, size_t *arrived, size_t *expected)
{
	*arrived = *expected = 0;
	for (size_t i = 0; i < f->nkids; i++) {
		if (b->state[i] == 1)
			(*arrived)++;
		if (awaited(f, i) || b->state[i] == 1)
			(*expected)++;
	}
}

static void barrier_release_if_ready(struct sched *S, struct snode *f, struct barrier *b)
{
	bool *aw = xcalloc(f->nkids ? f->nkids : 1, sizeof *aw);
	for (size_t i = 0; i < f->nkids; i++)
		aw[i] = awaited(f, i);
	bool ready = b->n_waiting && barrier_can_release(b->state, aw, f->nkids);
	free(aw);
	if (!ready)
		return;
	size_t arrived, expected;
	barrier_count(f, b, &arrived, &expected);
	struct event e = {.type = EV_BARRIER_RELEASE};
	e.barrier = b->name;
	e.step = f->id;
	e.arrived = arrived;
	e.expected = expected;
	bus_emit(S->o.bus, &e);
	for (size_t i = 0; i < f->nkids; i++)
		if (b->state[i] == 1)
			b->state[i] = 2;
	/* finishing a waiter may end its instance and come back here: take the list first */
	struct snode **w = b->waiting;
	size_t nw = b->n_waiting;
	b->waiting = NULL;
	b->n_waiting = 0;
	for (size_t i = 0; i < nw; i++)
		node_finish(S, w[i], ST_SUCCESS, NULL);
	free(w);
}

static void barriers_check(struct sched *S, struct snode *f)
{
	for (struct barrier *b = f->barriers; b; b = b->next)
		barrier_release_if_ready(S, f, b);
}

static void barrier_leave(struct snode *n)
{
	size_t part;
	struct snode *f = barrier_fanout(n, &part);
	if (!f)
		return;
	struct barrier *b = barrier_get(f, step_of(n)->barrier);
	for (size_t i = 0; i < b->n_waiting; i++)
		if (b->waiting[i] == n) {
			b->waiting[i] = b->waiting[--b->n_waiting];
			b->state[part] = 0;
			break;
		}
}

static void on_barrier_timeout(uv_timer_t *h)
{
	struct ntimer *nt = h->data;
	struct sched *S = nt->S;
	struct snode *n = nt->n;
	barrier_leave(n);
	char d[32];
	duration_format(step_of(n)->barrier_timeout_ms, d, sizeof d);
	char *r = xasprintf("barrier %s: timed out after %s", step_of(n)->barrier, d);
	node_finish(S, n, ST_TIMEOUT, r);
	free(r);
	pump(S);
}

static void barrier_arrive(struct sched *S, struct snode *n)
{
	size_t part;
	struct snode *f = barrier_fanout(n, &part);
	if (!f) {
		node_finish(S, n, ST_FAILED, "barrier outside any fan-out");
		return;
	}
	struct barrier *b = barrier_get(f, step_of(n)->barrier);
	b->state[part] = 1;
	b->waiting = xrealloc(b->waiting, (b->n_waiting + 1) * sizeof *b->waiting);
	b->waiting[b->n_waiting++] = n;
	size_t arrived, expected;
	barrier_count(f, b, &arrived, &expected);
	struct event e = {.type = EV_BARRIER_WAIT};
	e.barrier = b->name;
	e.step = n->id;
	e.arrived = arrived;
	e.expected = expected;
	char *label = node_label(S, n); /* the instance that arrived */
	e.label = label;
	bus_emit(S->o.bus, &e);
	free(label);
	if (step_of(n)->barrier_timeout_ms) {
		n->timer = ntimer_new(S, n);
		uv_timer_start(&n->timer->h, on_barrier_timeout, step_of(n)->barrier_timeout_ms, 0);
	}
	barrier_release_if_ready(S, f, b);
}

/* ---- async and join ---- */

static struct async_entry *async_find(struct sched *S, const char *name)
{
	for (size_t i = 0; i < S->n_asyncs; i++)
		if (!strcmp(S->asyncs[i].name, name))
			return &S->asyncs[i];
	return NULL;
}

/* Drops j from the joins still waiting (it is ending). */
static void joins_remove(struct sched *S, struct snode *j)
{
	for (size_t i = 0; i < S->n_joins; i++)
		if (S->joins[i] == j) {
			S->joins[i] = S->joins[--S->n_joins];
			return;
		}
}

/*
 * A join ends when every async it names has ended; it fails if one failed.
 * It leaves the waiting list first: its handlers may run for a while, and
 * the join must not be tried (and finished) again meanwhile.
 */
static bool join_try(struct sched *S, struct snode *j)
{
	const struct step *s = step_of(j);
	for (size_t i = 0; i < s->n_join; i++) {
		struct async_entry *a = async_find(S, s->join[i]);
		if (a && a->node->state != N_DONE)
			return false;
	}
	char *why = NULL;
	for (size_t i = 0; i < s->n_join && !why; i++) {
		struct async_entry *a = async_find(S, s->join[i]);
		if (!a)
			why = xasprintf("async %s never started", s->join[i]);
		else if (!child_ok(a->node))
			why = xasprintf("async %s %s", s->join[i], status_name(a->node->status));
	}
	for (size_t i = 0; i < s->n_join; i++) {
		struct async_entry *a = async_find(S, s->join[i]);
		if (a)
			a->joined = true;
	}
	joins_remove(S, j);
	node_finish(S, j, why ? ST_FAILED : ST_SUCCESS, why);
	free(why);
	return true;
}

static void joins_check(struct sched *S)
{
	for (size_t i = 0; i < S->n_joins;) {
		struct snode *j = S->joins[i];
		if (j->state != N_RUNNING || j->hphase) {
			S->joins[i] = S->joins[--S->n_joins];
			continue;
		}
		if (join_try(S, j)) {
			/* the list may have changed under us */
			i = 0;
			continue;
		}
		i++;
	}
}

static void join_start(struct sched *S, struct snode *j)
{
	const struct step *s = step_of(j);
	for (size_t i = 0; i < s->n_join; i++) {
		struct async_entry *a = async_find(S, s->join[i]);
		if (a)
			a->joined = true;
	}
	if (join_try(S, j))
		return;
	S->joins = xrealloc(S->joins, (S->n_joins + 1) * sizeof *S->joins);
	S->joins[S->n_joins++] = j;
}

static bool asyncs_running(const struct sched *S)
{
	for (size_t i = 0; i < S->n_asyncs; i++)
		if (S->asyncs[i].node->state != N_DONE)
			return true;
	return false;
}

/* The root's steps are over and so is every async step: the run's own status, before its handlers. */
static void root_settle(struct sched *S)
{
	S->root_waiting = false;
	S->root_settled = true;
	enum status st = S->root_pending;
	char *reason = S->root_reason;
	S->root_reason = NULL;
	/* the run was stopped while an async step still ran: its steps' success is not the run's */
	if (st == ST_SUCCESS && (S->interrupted || S->plan_timed_out))
		st = ST_CANCELLED;
	/* an async step nobody joined fails the run by failing */
	for (size_t i = 0; i < S->n_asyncs && st == ST_SUCCESS; i++) {
		struct snode *a = S->asyncs[i].node;
		if (!S->asyncs[i].joined && child_failed(a)) {
			st = ST_FAILED;
			free(reason);
			reason = xasprintf("async %s %s", S->asyncs[i].name, status_name(a->status));
		}
	}
	node_finish(S, S->root, st, reason);
	free(reason);
}

static void async_done(struct sched *S)
{
	joins_check(S);
	if (S->root_waiting && !asyncs_running(S))
		root_settle(S);
}

/* ---- handlers ---- */

static void handler_run(struct sched *S, struct snode *n, enum handler_kind k)
{
	const struct gnode *hg = n->g->handlers[k];
	struct snode *h = snode_new(S, hg, n, ROLE_STEP);
	h->is_handler = true;
	h->in_handler = true;
	n->hnode = h;
	node_start(S, h);
}

/* Runs on_success or on_failure, then finally; returns false when there is none to run. */
static bool handlers_next(struct sched *S, struct snode *n)
{
	bool stop = S->n_interrupts > 1; /* a second interrupt: no more handlers */
	if (n->hphase == 0) {
		n->hphase = 1;
		enum handler_kind k = n->final_status == ST_SUCCESS ? HANDLER_SUCCESS
				      : is_failure(n->final_status) ? HANDLER_FAILURE
								    : HANDLER__COUNT;
		if (!stop && k != HANDLER__COUNT && n->g->handlers[k]) {
			handler_run(S, n, k);
			return true;
		}
	}
	if (n->hphase == 1) {
		n->hphase = 2;
		if (!stop && n->g->handlers[HANDLER_FINALLY]) {
			handler_run(S, n, HANDLER_FINALLY);
			return true;
		}
	}
	n->hphase = 3;
	return false;
}

static void handler_done(struct sched *S, struct snode *n, struct snode *h)
{
	if (is_failure(h->status) && !is_failure(n->final_status) && S->n_interrupts < 2) {
		/* a handler never turns a failure into success, but its own failure fails the step */
		n->final_status = ST_FAILED;
		free(n->final_reason);
		char *shown = node_display(S, h);
		n->final_reason = xasprintf("%s failed%s%s", shown, h->reason ? ": " : "", h->reason ? h->reason : "");
		free(shown);
		n->reason_child = true;
	}
	if (handlers_next(S, n))
		return;
	char *r = n->final_reason;
	n->final_reason = NULL;
	node_finish(S, n, n->final_status, r);
	free(r);
}

/* ---- the node lifecycle ---- */

static void child_done(struct sched *S, struct snode *p, struct snode *c)
{
	if (p->state != N_RUNNING || p->hphase)
		return;
	if (p->role == ROLE_FOREACH) {
		fan_child_done(S, p, c);
		return;
	}
	switch (step_of(p)->kind) {
	case STEP_STEPS:
	case STEP_STAGES:
		seq_advance(S, p);
		break;
	case STEP_PARALLEL:
	case STEP_STAGE:
		fan_child_done(S, p, c);
		break;
	default:
		break;
	}
}

static void on_sleep_timer(uv_timer_t *h)
{
	struct ntimer *nt = h->data;
	struct sched *S = nt->S;
	node_finish(S, nt->n, ST_SUCCESS, NULL);
	pump(S);
}

static bool when_allows(struct sched *S, struct snode *n)
{
	const struct step *s = step_of(n);
	if (!s->mods->when || n->role == ROLE_FOREACH)
		return true; /* a for_each's `when` is asked of each item */
	struct scope_ctx C;
	struct expr_scope scope = scope_of(&C, S, n);
	char *err = NULL;
	json_t *v = expr_eval(s->mods->when, &scope, &err);
	if (!v) {
		n->state = N_RUNNING;
		n->started = true;
		n->start_ms = clock_ms();
		if (n->in_handler && node_is_counted_task(n))
			S->total++;
		emit_step(S, n, EV_STEP_START);
		char *r = xasprintf("when: %s", err);
		free(err);
		mark_below(S, n, ST_SKIPPED); /* what it holds never runs, and each of its steps ends once */
		node_finish(S, n, ST_FAILED, r);
		free(r);
		return false;
	}
	bool go = expr_truthy(v);
	json_decref(v);
	if (!go)
		mark_tree(S, n, ST_SKIPPED);
	return go;
}

static void node_start(struct sched *S, struct snode *n)
{
	const struct step *s = step_of(n);
	if (!n->selected) {
		mark_tree(S, n, ST_SKIPPED);
		return;
	}
	if (!when_allows(S, n))
		return;
	n->state = N_RUNNING;
	n->started = true;
	n->start_ms = clock_ms();
	if (n->in_handler && node_is_counted_task(n))
		S->total++; /* a handler's task joins the run's total as it starts */
	emit_step(S, n, EV_STEP_START);
	if (n->role == ROLE_FOREACH) {
		foreach_start(S, n);
		return;
	}
	switch (s->kind) {
	case STEP_RUN:
		task_enqueue(S, n, 1);
		break;
	case STEP_SLEEP:
		n->timer = ntimer_new(S, n);
		uv_timer_start(&n->timer->h, on_sleep_timer, s->sleep_ms, 0);
		break;
	case STEP_BARRIER:
		barrier_arrive(S, n);
		break;
	case STEP_APPROVE:
		gate_start(S, n); /* holds no slot, like sleep */
		break;
	case STEP_JOIN:
		join_start(S, n);
		break;
	case STEP_STEPS:
	case STEP_STAGES:
		seq_advance(S, n);
		break;
	case STEP_PARALLEL:
	case STEP_STAGE:
		make_kids(S, n);
		for (size_t i = 0; i < n->nkids && n->state == N_RUNNING; i++) {
			struct snode *c = n->kids[i];
			if (c->state == N_PENDING && !n->decided_set && !n->cancelling)
				node_start(S, c);
		}
		break;
	}
}

void node_finish(struct sched *S, struct snode *n, enum status st, const char *reason)
{
	/* a node ends once: while its handlers run, only their end (handler_done) ends it */
	if (n->state == N_DONE || n->hphase == 1 || n->hphase == 2)
		return;
	if (!n->g->parent && !n->hphase && !S->root_settled) {
		/* the root's steps are done; unjoined async steps are awaited before the run ends */
		if (!S->root_waiting) {
			S->root_waiting = true;
			S->root_pending = st;
			S->root_reason = reason ? xstrdup(reason) : NULL;
		}
		if (!asyncs_running(S))
			root_settle(S);
		return;
	}
	if (!n->g->parent && S->plan_timed_out && st == ST_CANCELLED)
		st = ST_TIMEOUT; /* the run hit its deadline: a failure, so on_failure runs */
	if (!n->hphase && n->started && st != ST_SKIPPED && n->role != ROLE_INSTANCE) {
		/* handlers run before the step's end is final */
		n->final_status = st;
		free(n->final_reason);
		n->final_reason = reason ? xstrdup(reason) : NULL;
		ntimer_drop(&n->timer);
		if (!n->g->parent)
			S->run_status = status_name(S->interrupted ? ST_CANCELLED : S->plan_timed_out ? ST_TIMEOUT : st);
		if (handlers_next(S, n))
			return;
	}
	n->state = N_DONE;
	n->status = st;
	n->end_ms = clock_ms();
	if (reason && reason != n->reason) {
		free(n->reason);
		n->reason = xstrdup(reason);
	}
	if (is_failure(st))
		coe_decide(S, n);
	n->tolerated = n->g->parent && node_failure_tolerated(S, n, st);
	ntimer_drop(&n->timer);
	count_end(S, n, st);
	emit_step(S, n, EV_STEP_END);
	if (n->detached) {
		async_done(S);
		return;
	}
	if (!n->g->parent) {
		run_finished(S);
		return;
	}
	if (n->is_handler) {
		handler_done(S, n->parent, n);
		return;
	}
	child_done(S, n->parent, n);
}

static void node_cancel(struct sched *S, struct snode *n)
{
	if (n->state == N_DONE)
		return;
	if (n->state == N_PENDING) {
		mark_tree(S, n, ST_CANCELLED);
		return;
	}
	bool hard = S->n_interrupts > 1; /* a second interrupt: handlers and all */
	if (n->hphase) {
		/* finishing: stop on_success/on_failure, but finally still runs, unless the user insists */
		if ((n->hphase == 1 || hard) && n->hnode)
			node_cancel(S, n->hnode);
		return;
	}
	if (n->cancelling && !hard)
		return; /* the second interrupt walks again: what runs inside handlers stops too */
	n->cancelling = true;
	if (n->role == ROLE_FOREACH) {
		if (!n->decided_set) {
			n->decided_set = true;
			n->decided = ST_CANCELLED;
		}
		ntimer_drop(&n->timer);
		for (size_t i = 0; i < n->nkids; i++)
			node_cancel(S, n->kids[i]);
		if (n->state == N_RUNNING && n->n_done == n->nkids && !n->hphase)
			node_finish(S, n, n->decided, n->reason);
		return;
	}
	switch (step_of(n)->kind) {
	case STEP_RUN: {
		struct task *t = n->task;
		if (n->timer) { /* waiting to retry */
			node_finish(S, n, ST_CANCELLED, "cancelled");
		} else if (t && (t->state == T_QUEUED || t->state == T_PARKED)) {
			t->cancelled = true;
			S->n_waiting--;
			n->task = NULL;
			node_finish(S, n, ST_CANCELLED, "cancelled");
		} else if (t && t->state == T_RUNNING) {
			t->cancel_requested = true;
			task_kill(t);
		}
		break;
	}
	case STEP_SLEEP:
		node_finish(S, n, ST_CANCELLED, NULL);
		break;
	case STEP_APPROVE:
		gate_cancel(S, n);
		break;
	case STEP_BARRIER: {
		barrier_leave(n);
		node_finish(S, n, ST_CANCELLED, NULL);
		break;
	}
	case STEP_JOIN:
		node_finish(S, n, ST_CANCELLED, NULL);
		break;
	case STEP_STEPS:
	case STEP_STAGES:
		if (!n->decided_set) {
			n->decided_set = true;
			n->decided = ST_CANCELLED;
		}
		if (n->next_child < n->nkids)
			node_cancel(S, n->kids[n->next_child]);
		seq_advance(S, n);
		break;
	default:
		if (!n->decided_set) {
			n->decided_set = true;
			n->decided = ST_CANCELLED;
		}
		for (size_t i = 0; i < n->nkids; i++)
			node_cancel(S, n->kids[i]);
		break;
	}
}

/* Cancels the whole run: the root's steps and every async step. */
static void cancel_all(struct sched *S)
{
	node_cancel(S, S->root);
	for (size_t i = 0; i < S->n_asyncs; i++)
		node_cancel(S, S->asyncs[i].node);
}

/* ---- the run ---- */

static void close_if_active(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void run_finished(struct sched *S)
{
	S->root_done = true;
	close_if_active((uv_handle_t *)&S->sigint);
	close_if_active((uv_handle_t *)&S->sigterm);
	close_if_active((uv_handle_t *)&S->plan_timer);
	close_if_active((uv_handle_t *)&S->progress_timer);
}

static void on_signal(uv_signal_t *h, int sig)
{
	struct sched *S = h->data;
	S->n_interrupts++;
	if (!S->interrupted)
		S->interrupted = sig;
	/* said at once, before the tasks it stops end: people see their Ctrl-C was taken */
	struct event e = {.type = EV_RUN_CANCEL, .signal = sig, .running = S->n_running, .kill = S->n_interrupts > 1};
	bus_emit(S->o.bus, &e);
	if (S->n_interrupts > 1) {
		/* a second interrupt: no more grace, no more handlers */
		hard_kill(S);
		cancel_all(S);
		pump(S);
		return;
	}
	cancel_all(S);
	pump(S);
}

static void on_plan_timeout(uv_timer_t *h)
{
	struct sched *S = h->data;
	S->plan_timed_out = true;
	cancel_all(S);
	pump(S);
}

static void on_progress(uv_timer_t *h)
{
	struct sched *S = h->data;
	emit_progress(S);
}

int sched_run(const struct graph *g, const struct sched_options *o)
{
	struct sched *S = xcalloc(1, sizeof *S);
	S->g = g;
	S->p = g->plan;
	S->o = *o;
	S->start_ms = clock_ms();
	S->total = g->n_tasks;
	S->limits = xcalloc(g->n_limits, sizeof *S->limits);
	for (size_t i = 0; i < g->n_limits; i++)
		S->limits[i].capacity = g->limits[i].capacity;
	/* hosts: what the SSH executor needs, and each one's max_sessions */
	const struct inventory *inv = &S->p->inventory;
	S->xhosts = xcalloc(inv->n_hosts ? inv->n_hosts : 1, sizeof *S->xhosts);
	S->host_limits = xcalloc(inv->n_hosts ? inv->n_hosts : 1, sizeof *S->host_limits);
	S->max_hosts.capacity = g->max_hosts > 0 ? g->max_hosts : 64;
	uv_timer_init(o->loop, &S->fd_timer);
	S->fd_timer.data = S;
	uv_timer_init(o->loop, &S->xfer_timer);
	S->xfer_timer.data = S;
	uv_unref((uv_handle_t *)&S->xfer_timer);
	if (o->fds) {
		o->fds->room = fds_room;
		o->fds->room_ud = S;
	}
	for (size_t i = 0; i < inv->n_hosts; i++) {
		const struct host *h = &inv->hosts[i];
		S->xhosts[i] = (struct exec_host){h->name, h->address, h->user, h->port,
						  (const char *const *)h->identities, h->n_identities,
						  h->jump >= 0 ? &S->xhosts[h->jump] : NULL};
		S->host_limits[i].capacity = h->max_sessions > 0 ? h->max_sessions : 1;
	}
	srand((unsigned)(clock_ms() ^ (uint64_t)getpid()));
	for (char **e = environ; *e; e++)
		S->n_base_env++;
	S->base_env = xcalloc(S->n_base_env + 1, sizeof *S->base_env);
	S->n_base_env = 0;
	for (char **e = environ; *e; e++)
		if (!str_has_prefix(*e, "BATON_"))
			S->base_env[S->n_base_env++] = *e;
	S->root = snode_new(S, &g->nodes[0], NULL, ROLE_STEP);
	for (size_t i = 0; i < o->bus->n_secrets; i++)
		if (strlen(o->bus->secrets[i]) > S->max_secret)
			S->max_secret = strlen(o->bus->secrets[i]);

	struct event e = {.type = EV_RUN_START};
	e.plan = S->p->file;
	e.name = S->p->name;
	e.tasks = g->tasks_exact ? (long)g->n_tasks : -1;
	e.resumed_from = o->resumed_from;
	bus_emit(o->bus, &e);

	uv_signal_init(o->loop, &S->sigint);
	uv_signal_init(o->loop, &S->sigterm);
	S->sigint.data = S->sigterm.data = S;
	uv_signal_start(&S->sigint, on_signal, SIGINT);
	uv_signal_start(&S->sigterm, on_signal, SIGTERM);
	uv_unref((uv_handle_t *)&S->sigint);
	uv_unref((uv_handle_t *)&S->sigterm);
	uv_timer_init(o->loop, &S->plan_timer);
	S->plan_timer.data = S;
	if (S->p->timeout_ms)
		uv_timer_start(&S->plan_timer, on_plan_timeout, S->p->timeout_ms, 0);
	uv_timer_init(o->loop, &S->progress_timer);
	S->progress_timer.data = S;
	uv_timer_start(&S->progress_timer, on_progress, PROGRESS_MS, PROGRESS_MS);
	uv_unref((uv_handle_t *)&S->progress_timer);

	if (o->n_preamble)
		preamble_run(S);
	node_start(S, S->root);
	pump(S);
	bus_flush(o->bus);
	while (!S->root_done) {
		if (uv_run(o->loop, UV_RUN_ONCE) == 0 && !S->root_done) {
			/* nothing left that could wake us: a scheduler bug, not a hang */
			fprintf(stderr, "baton: internal error: the run stalled with work pending\n");
			S->stalled = true;
			cancel_all(S);
			hard_kill(S);
			if (!S->root_done)
				break;
		}
	}
	uv_run(o->loop, UV_RUN_DEFAULT); /* let closing handles finish */

	struct snode *root = S->root;
	int code;
	enum status st = root->state == N_DONE ? root->status : ST_FAILED;
	if (S->interrupted) {
		code = S->interrupted == SIGTERM ? EXIT_SIGTERM : EXIT_SIGINT;
		st = ST_CANCELLED;
	} else if (S->plan_timed_out) {
		code = EXIT_TIMEOUT;
		st = ST_TIMEOUT;
	} else {
		bus_flush(o->bus); /* an output that fails shows now, and the exit status says so */
		code = st != ST_SUCCESS ? EXIT_FAILED : o->bus->lost ? EXIT_OUTPUT : EXIT_OK;
		if (st != ST_SUCCESS)
			st = ST_FAILED;
	}
	if (S->stalled)
		code = EXIT_INTERNAL; /* whatever the steps did, the run did not end as the plan says */
	emit_progress(S);
	struct event end = {.type = EV_RUN_END};
	end.status = st;
	end.exit_code_run = code;
	end.duration_ms = clock_ms() - S->start_ms;
	/* tasks only (count_end): not the run itself, its groups, fan-outs, items or barriers */
	memcpy(end.counts, S->counts, sizeof end.counts);
	end.n_tolerated = S->n_tolerated;
	bus_emit(o->bus, &end);

	struct qitem *q;
	while ((q = heap_pop(&S->ready)))
		task_free((struct task *)q);
	for (size_t i = 0; i < g->n_limits; i++) {
		while ((q = heap_pop(&S->limits[i].waiters)))
			task_free((struct task *)q);
		heap_free(&S->limits[i].waiters);
	}
	for (size_t i = 0; i < S->p->inventory.n_hosts; i++) {
		while ((q = heap_pop(&S->host_limits[i].waiters)))
			task_free((struct task *)q);
		heap_free(&S->host_limits[i].waiters);
	}
	while ((q = heap_pop(&S->max_hosts.waiters)))
		task_free((struct task *)q);
	heap_free(&S->max_hosts.waiters);
	heap_free(&S->ready);
	while ((q = heap_pop(&S->fd_wait)))
		task_free((struct task *)q);
	heap_free(&S->fd_wait);
	if (o->fds)
		o->fds->room = NULL; /* what closes from here on starts nothing */
	uv_close((uv_handle_t *)&S->fd_timer, NULL);
	uv_close((uv_handle_t *)&S->xfer_timer, NULL);
	for (size_t i = 0; i < S->n_all; i++)
		ntimer_drop(&S->all[i]->timer);
	uv_run(o->loop, UV_RUN_DEFAULT);
	for (size_t i = 0; i < S->n_all; i++)
		snode_free(S->all[i]);
	free(S->all);
	gates_free(S);
	free(S->asyncs);
	free(S->joins);
	free(S->root_reason);
	free(S->limits);
	free(S->xhosts);
	free(S->host_limits);
	free(S->base_env);
	free(S->label_warned);
	free(S);
	return code;
}
