/*
 * sched.c — walks the compiled graph. Every step is a node with a small state
 * machine (PENDING → RUNNING → DONE); a run step's attempts are tasks that
 * wait in the ready heap, take their limiters together, run through the
 * executor and end when the process is reaped and its output closed.
 * Sequences advance child by child, fan-outs (parallel, a stage) apply their
 * mode, and cancellation walks down the tree. One thread, one loop: every
 * wait here is a libuv timer, signal or I/O callback.
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched/sched.h"

extern char **environ;

#define LINE_MAX_BYTES 65536
#define CAPTURE_MAX (1u << 20)
#define PROGRESS_MS 1000

enum nstate { N_PENDING, N_RUNNING, N_DONE };
enum tstate { T_QUEUED, T_PARKED, T_RUNNING, T_ENDED };

struct sched;
struct snode;

/* A node's own timer: a sleep, or the wait before the next attempt. */
struct ntimer {
	uv_timer_t h;
	struct sched *S;
	struct snode *n;
	int next_attempt;
};

struct task {
	struct qitem q; /* first: the heaps hold &task->q */
	struct sched *S;
	struct snode *node;
	int attempt;
	enum tstate state;
	bool cancelled;        /* dropped from the queues lazily */
	bool cancel_requested; /* a running task being stopped */
	bool timed_out;
	int kill_phase; /* 0 none, 1 SIGTERM sent, 2 SIGKILL sent */
	struct limiter *promoted_from;
	struct exec_proc *proc;
	uint64_t start_ms;
	uv_timer_t *timer;
	struct buf line[2];
	struct buf cap[2];
	char *id;
	struct task *next_run, *prev_run; /* the running list */
};

struct snode {
	const struct gnode *g;
	enum nstate state;
	enum status status;
	bool cancelling;
	bool advancing;
	bool decided_set;
	enum status decided;
	size_t next_child;
	size_t n_done, n_ok, n_failed;
	uint64_t start_ms, end_ms;
	struct task *task;
	struct ntimer *timer; /* sleep, or the wait before a retry */
	int exit_code;
	int signal;
	char *out, *err; /* captured, only for steps an expression reads */
	char *reason;
};

struct sched {
	const struct graph *g;
	const struct plan *p;
	struct sched_options o;
	struct snode *nodes;
	struct limiter *limits;
	struct heap ready;
	struct task *running;
	bool pumping;
	uint64_t n_running, n_waiting, n_done, n_failed;
	uint64_t counts[ST__COUNT];
	uint64_t start_ms;
	int interrupted; /* the signal that interrupted the run, if any */
	int n_interrupts;
	bool plan_timed_out;
	bool root_done;
	uv_signal_t sigint, sigterm;
	uv_timer_t plan_timer, progress_timer;
	char *run_status;
	char **base_env; /* baton's environment without BATON_*: borrowed strings */
	size_t n_base_env;
};

static void node_start(struct sched *S, struct snode *n);
static void node_finish(struct sched *S, struct snode *n, enum status st, const char *reason);
static void node_cancel(struct sched *S, struct snode *n);
static void pump(struct sched *S);

static struct snode *node_of(struct sched *S, const struct gnode *g)
{
	return &S->nodes[g->index];
}

static struct snode *kid(struct sched *S, struct snode *n, size_t i)
{
	return node_of(S, n->g->kids[i]);
}

static const struct step *step_of(const struct snode *n)
{
	return n->g->step;
}

/* ---- events ---- */

static void emit_step(struct sched *S, struct snode *n, enum event_type type)
{
	if (!n->g->parent)
		return; /* the root is the run itself */
	struct event e = {.type = type};
	e.step = step_of(n)->full_id;
	e.kind = step_kind_name(step_of(n)->kind);
	e.name = step_of(n)->name;
	e.status = n->status;
	e.duration_ms = n->state == N_DONE && n->start_ms ? n->end_ms - n->start_ms : 0;
	if (type == EV_STEP_END && (n->status == ST_FAILED || n->status == ST_TIMEOUT))
		e.reason = n->reason;
	int depth = 0;
	for (const struct gnode *g = n->g->parent; g; g = g->parent)
		depth++;
	e.depth = depth;
	bus_emit(S->o.bus, &e);
}

static void emit_progress(struct sched *S)
{
	struct event e = {.type = EV_PROGRESS};
	e.done = S->n_done;
	e.failed = S->n_failed;
	e.running = S->n_running;
	e.waiting = S->n_waiting;
	e.total = S->g->n_tasks;
	bus_emit(S->o.bus, &e);
}

/* ---- expression scope ---- */

struct scope_ctx {
	struct sched *S;
	const struct step *from;
};

static json_t *step_result(struct sched *S, const struct step *t)
{
	/* graph nodes are built in the plan's pre-order, so a step's order is its node's index */
	struct snode *n = t->order < S->g->n && S->g->nodes[t->order].step == t ? &S->nodes[t->order] : NULL;
	json_t *o = json_object();
	bool done = n && n->state == N_DONE;
	json_object_set_new(o, "status", done ? json_string(status_name(n->status)) : json_null());
	json_object_set_new(o, "exit_code", done && n->exit_code >= 0 ? json_integer(n->exit_code) : json_null());
	const char *out = n && n->out ? n->out : "";
	const char *err = n && n->err ? n->err : "";
	json_t *js = json_string(out);
	json_object_set_new(o, "stdout", js ? js : json_string(""));
	json_t *lines = json_array();
	if (*out) {
		const char *p = out;
		for (;;) {
			const char *nl = strchr(p, '\n');
			json_t *l = json_stringn(p, nl ? (size_t)(nl - p) : strlen(p));
			json_array_append_new(lines, l ? l : json_string(""));
			if (!nl)
				break;
			p = nl + 1;
		}
	}
	json_object_set_new(o, "stdout_lines", lines);
	js = json_string(err);
	json_object_set_new(o, "stderr", js ? js : json_string(""));
	json_object_set_new(o, "duration_ms",
			    done && n->start_ms ? json_integer((json_int_t)(n->end_ms - n->start_ms)) : json_null());
	return o;
}

static json_t *lookup(void *ud, const char *root, const char *const *segs, size_t nsegs, size_t *used, char **err)
{
	struct scope_ctx *C = ud;
	struct sched *S = C->S;
	if (!strcmp(root, "steps")) {
		const struct step *t = plan_resolve_step_ref(S->p, C->from, segs, nsegs, used);
		if (!t) {
			*err = xasprintf("no step '%s'", nsegs ? segs[0] : "");
			return NULL;
		}
		return step_result(S, t);
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

/* ---- tasks ---- */

static char *task_id(const struct snode *n)
{
	return xstrdup(step_of(n)->full_id);
}

static struct limiter *limiter_at(struct sched *S, const struct snode *n, unsigned i)
{
	return &S->limits[n->g->limiters[i]];
}

/* The limiters a node's tasks take, in `small` when they fit (else allocated). */
static struct limiter **limiter_list(struct sched *S, const struct snode *n, struct limiter *small[16])
{
	unsigned nl = n->g->n_limiters;
	struct limiter **ls = nl <= 16 ? small : xmalloc(nl * sizeof *ls);
	for (unsigned i = 0; i < nl; i++)
		ls[i] = limiter_at(S, n, i);
	return ls;
}

static void task_enqueue(struct sched *S, struct snode *n, int attempt)
{
	struct task *t = xcalloc(1, sizeof *t);
	t->S = S;
	t->node = n;
	t->attempt = attempt;
	t->q.priority = n->g->priority;
	t->q.order = n->g->index;
	t->state = T_QUEUED;
	n->task = t;
	S->n_waiting++;
	heap_push(&S->ready, &t->q);
}

static void timer_free_cb(uv_handle_t *h)
{
	free(h);
}

static void timer_drop(uv_timer_t **tp)
{
	if (!*tp)
		return;
	uv_timer_stop(*tp);
	uv_close((uv_handle_t *)*tp, timer_free_cb);
	*tp = NULL;
}

static uv_timer_t *timer_new(struct sched *S, void *data)
{
	uv_timer_t *t = xmalloc(sizeof *t);
	uv_timer_init(S->o.loop, t);
	t->data = data;
	return t;
}

static struct ntimer *ntimer_new(struct sched *S, struct snode *n)
{
	struct ntimer *t = xcalloc(1, sizeof *t);
	uv_timer_init(S->o.loop, &t->h);
	t->h.data = t;
	t->S = S;
	t->n = n;
	return t;
}

static void ntimer_drop(struct ntimer **tp)
{
	if (!*tp)
		return;
	uv_timer_stop(&(*tp)->h);
	uv_close((uv_handle_t *)&(*tp)->h, timer_free_cb);
	*tp = NULL;
}

static void task_free(struct task *t)
{
	timer_drop(&t->timer);
	for (int i = 0; i < 2; i++) {
		buf_free(&t->line[i]);
		buf_free(&t->cap[i]);
	}
	free(t->id);
	free(t);
}

/* Moves the best task parked on l back to the ready heap, if l has room. */
static void promote(struct sched *S, struct limiter *l)
{
	while (l->used < l->capacity && l->waiters.n) {
		struct task *w = (struct task *)heap_pop(&l->waiters);
		if (w->cancelled) {
			task_free(w);
			continue;
		}
		w->state = T_QUEUED;
		w->promoted_from = l;
		heap_push(&S->ready, &w->q);
		return;
	}
}

static void emit_output_line(struct sched *S, struct task *t, int stream, const char *s, size_t len)
{
	struct event e = {.type = EV_TASK_OUTPUT};
	e.task = t->id;
	e.stream_stderr = stream == 2;
	e.line = s;
	e.line_len = len;
	bus_emit(S->o.bus, &e);
}

static void on_output(void *ud, int stream, const char *data, size_t len)
{
	struct task *t = ud;
	struct sched *S = t->S;
	int k = stream == 2 ? 1 : 0;
	if (step_of(t->node)->captured && t->cap[k].len < CAPTURE_MAX) {
		size_t room = CAPTURE_MAX - t->cap[k].len;
		buf_add(&t->cap[k], data, len < room ? len : room);
	}
	struct buf *lb = &t->line[k];
	const char *p = data, *end = data + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t seg = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (!lb->len && nl) {
			emit_output_line(S, t, stream, p, seg); /* whole line in this chunk: no copy */
		} else {
			size_t room = LINE_MAX_BYTES - lb->len;
			size_t take = seg < room ? seg : room;
			buf_add(lb, p, take);
			if (nl || lb->len >= LINE_MAX_BYTES) {
				/* a very long line goes out in pieces so memory stays bounded */
				emit_output_line(S, t, stream, lb->data, lb->len);
				buf_reset(lb);
			}
			if (!nl || take < seg) {
				p += take;
				continue;
			}
		}
		p = nl + 1;
	}
	bus_flush(S->o.bus);
}

static void running_unlink(struct sched *S, struct task *t)
{
	if (t->prev_run)
		t->prev_run->next_run = t->next_run;
	else if (S->running == t)
		S->running = t->next_run;
	if (t->next_run)
		t->next_run->prev_run = t->prev_run;
	t->next_run = t->prev_run = NULL;
}

static const char *signal_label(int sig)
{
	switch (sig) {
	case SIGTERM:
		return "SIGTERM";
	case SIGKILL:
		return "SIGKILL";
	case SIGINT:
		return "SIGINT";
	case SIGSEGV:
		return "SIGSEGV";
	case SIGABRT:
		return "SIGABRT";
	case SIGPIPE:
		return "SIGPIPE";
	case SIGHUP:
		return "SIGHUP";
	default:
		return "signal";
	}
}

static bool should_retry(const struct task *t, enum status st, int exit_code)
{
	const struct retry_spec *r = t->node->g->retry;
	if (st != ST_FAILED && st != ST_TIMEOUT)
		return false;
	if (t->attempt >= r->attempts || t->node->cancelling || t->S->interrupted || t->S->plan_timed_out)
		return false;
	if (!r->n_on_exit)
		return true;
	if (st != ST_FAILED) /* on_exit names exit codes: a timeout has none to match */
		return false;
	for (size_t i = 0; i < r->n_on_exit; i++)
		if (exit_code >= 0 && r->on_exit[i] == exit_code)
			return true;
	return false;
}

/* Delay before attempt number `next` (2, 3, ...): delay × backoff^(next-2), capped, with jitter. */
static uint64_t retry_delay(const struct retry_spec *r, int next)
{
	double d = (double)r->delay_ms * pow(r->backoff, next - 2);
	if (r->max_delay_ms && d > (double)r->max_delay_ms)
		d = (double)r->max_delay_ms;
	if (r->jitter > 0) {
		double u = (double)rand() / (double)RAND_MAX; /* 0..1 */
		d *= 1.0 + r->jitter * (2.0 * u - 1.0);
	}
	if (d < 0)
		d = 0;
	if (d > 1e12)
		d = 1e12;
	return (uint64_t)d;
}

static void on_retry_timer(uv_timer_t *h)
{
	struct ntimer *nt = h->data;
	struct sched *S = nt->S;
	struct snode *n = nt->n;
	int attempt = nt->next_attempt;
	ntimer_drop(&n->timer);
	task_enqueue(S, n, attempt);
	pump(S);
}

static void schedule_retry(struct sched *S, struct task *t, const char *reason)
{
	struct snode *n = t->node;
	int next = t->attempt + 1;
	uint64_t delay = retry_delay(n->g->retry, next);
	struct event e = {.type = EV_TASK_RETRY};
	e.task = t->id;
	e.attempt = next;
	e.delay_ms = delay;
	e.reason = reason;
	bus_emit(S->o.bus, &e);
	n->timer = ntimer_new(S, n);
	n->timer->next_attempt = next;
	uv_timer_start(&n->timer->h, on_retry_timer, delay, 0);
}

static char *capture_text(struct buf *b)
{
	if (b->len && b->data[b->len - 1] == '\n')
		b->data[--b->len] = '\0';
	return buf_detach(b);
}

/* The task's process is gone and its output closed: decide its status. */
static void task_end(struct sched *S, struct task *t, const struct exec_status *st)
{
	struct snode *n = t->node;
	for (int k = 0; k < 2; k++)
		if (t->line[k].len) {
			/* output without a final newline is kept */
			emit_output_line(S, t, k + 1, t->line[k].data, t->line[k].len);
			buf_reset(&t->line[k]);
		}
	enum status status;
	char reason[256] = "";
	char d[32];
	if (t->cancel_requested) {
		status = ST_CANCELLED;
		snprintf(reason, sizeof reason, "cancelled");
	} else if (t->timed_out) {
		status = ST_TIMEOUT;
		duration_format(n->g->timeout_ms, d, sizeof d);
		snprintf(reason, sizeof reason, "timed out after %s", d);
	} else if (st->error) {
		status = ST_FAILED;
		snprintf(reason, sizeof reason, "%s", st->error);
	} else if (st->signal) {
		status = ST_FAILED;
		snprintf(reason, sizeof reason, "killed by signal %d (%s)", st->signal, signal_label(st->signal));
	} else if (st->exit_code != 0) {
		status = ST_FAILED;
		snprintf(reason, sizeof reason, "exit code %d", st->exit_code);
	} else {
		status = ST_SUCCESS;
	}
	uint64_t now = clock_ms();
	struct event e = {.type = EV_TASK_END};
	e.task = t->id;
	e.status = status;
	e.exit_code = st->error ? -1 : st->exit_code;
	e.signal = st->signal;
	e.duration_ms = now - t->start_ms;
	e.attempt = t->attempt;
	e.reason = *reason && status != ST_SUCCESS ? reason : NULL;
	bus_emit(S->o.bus, &e);

	if (t->state == T_RUNNING) {
		S->n_running--;
		running_unlink(S, t);
		struct limiter *small[16];
		unsigned nl = n->g->n_limiters;
		struct limiter **ls = limiter_list(S, n, small);
		limiters_release(ls, nl);
		for (unsigned i = 0; i < nl; i++)
			promote(S, ls[i]);
		if (ls != small)
			free(ls);
	}
	t->state = T_ENDED;
	n->task = NULL;
	if (should_retry(t, status, st->exit_code)) {
		schedule_retry(S, t, reason);
		task_free(t);
		return;
	}
	n->exit_code = st->error ? -1 : st->exit_code;
	n->signal = st->signal;
	if (step_of(n)->captured) {
		free(n->out);
		free(n->err);
		n->out = capture_text(&t->cap[0]);
		n->err = capture_text(&t->cap[1]);
	}
	task_free(t);
	node_finish(S, n, status, *reason ? reason : NULL);
}

static void on_done(void *ud, const struct exec_status *st)
{
	struct task *t = ud;
	struct sched *S = t->S;
	t->proc = NULL;
	task_end(S, t, st);
	pump(S);
}

static void on_task_timer(uv_timer_t *h)
{
	struct task *t = h->data;
	if (!t->proc)
		return;
	if (t->kill_phase == 0) {
		if (!t->cancel_requested)
			t->timed_out = true;
		t->S->o.exec->ops->signal(t->proc, SIGTERM);
		t->kill_phase = 1;
		uv_timer_start(h, on_task_timer, t->node->g->kill_grace_ms, 0);
	} else if (t->kill_phase == 1) {
		t->S->o.exec->ops->signal(t->proc, SIGKILL);
		t->kill_phase = 2;
	}
}

/* Starts stopping a running task: SIGTERM now, SIGKILL after kill_grace. */
static void task_kill(struct task *t)
{
	if (!t->proc || t->kill_phase > 0)
		return;
	if (!t->timer)
		t->timer = timer_new(t->S, t);
	uv_timer_stop(t->timer);
	t->kill_phase = 0;
	on_task_timer(t->timer);
}

/*
 * A task's environment: baton's own (minus BATON_*), then the plan's env,
 * defaults' env, each ancestor's env outermost first, then BATON_*. The
 * strings of baton's own environment are borrowed; `owned` lists the rest.
 */
struct envv {
	char **v;
	size_t n, cap;
	char **owned;
	size_t n_owned;
};

static void envv_set(struct envv *E, char *kv, size_t klen)
{
	E->owned = xrealloc(E->owned, (E->n_owned + 1) * sizeof *E->owned);
	E->owned[E->n_owned++] = kv;
	for (size_t k = 0; k < E->n; k++)
		if (!strncmp(E->v[k], kv, klen) && E->v[k][klen - 1] == '=') {
			E->v[k] = kv;
			return;
		}
	if (E->n + 2 > E->cap) {
		E->cap = E->cap ? E->cap * 2 : 64;
		E->v = xrealloc(E->v, E->cap * sizeof *E->v);
	}
	E->v[E->n++] = kv;
	E->v[E->n] = NULL;
}

static void envv_free(struct envv *E)
{
	for (size_t i = 0; i < E->n_owned; i++)
		free(E->owned[i]);
	free(E->owned);
	free(E->v);
}

static bool env_layer(struct envv *E, const struct kv *kv, struct tmpl *const *vals, size_t n,
		      struct expr_scope *scope, bool *path_set, char **err)
{
	for (size_t i = 0; i < n; i++) {
		struct buf b = {0};
		char *e = NULL;
		buf_adds(&b, kv[i].key);
		buf_addc(&b, '=');
		size_t klen = b.len;
		if (!tmpl_render(vals[i], TMPL_TEXT, scope, &b, &e)) {
			*err = xasprintf("env %s: %s", kv[i].key, e);
			free(e);
			buf_free(&b);
			return false;
		}
		if (!strcmp(kv[i].key, "PATH"))
			*path_set = true;
		envv_set(E, buf_detach(&b), klen);
	}
	return true;
}

static bool build_env(struct sched *S, struct snode *n, struct task *t, struct expr_scope *scope,
		      struct envv *E, bool *path_set, char **err)
{
	*path_set = false;
	E->cap = S->n_base_env + 16;
	E->v = xmalloc(E->cap * sizeof *E->v);
	memcpy(E->v, S->base_env, S->n_base_env * sizeof *E->v);
	E->n = S->n_base_env;
	E->v[E->n] = NULL;
	if (!env_layer(E, S->p->env, S->p->env_vals, S->p->n_env, scope, path_set, err) ||
	    !env_layer(E, S->p->defaults.env, S->p->defaults.env_vals, S->p->defaults.n_env, scope, path_set, err))
		return false;
	const struct step *chain[256];
	size_t nchain = 0;
	for (const struct gnode *g = n->g; g && nchain < 256; g = g->parent)
		if (g->step->n_env)
			chain[nchain++] = g->step;
	for (size_t i = nchain; i-- > 0;)
		if (!env_layer(E, chain[i]->env, chain[i]->env_vals, chain[i]->n_env, scope, path_set, err))
			return false;
	char num[16];
	snprintf(num, sizeof num, "%d", t->attempt);
	const char *extra[] = {"BATON_RUN_ID", S->o.run_id, "BATON_STEP", step_of(n)->full_id, "BATON_HOST", "",
			       "BATON_ITEM",   "",          "BATON_ATTEMPT", num};
	for (size_t i = 0; i < ARRAY_LEN(extra); i += 2) {
		size_t kl = strlen(extra[i]), vl = strlen(extra[i + 1]);
		char *kv = xmalloc(kl + vl + 2);
		memcpy(kv, extra[i], kl);
		kv[kl] = '=';
		memcpy(kv + kl + 1, extra[i + 1], vl + 1);
		/* BATON_* were left out of the base, so these are always new */
		if (E->n + 2 > E->cap) {
			E->cap *= 2;
			E->v = xrealloc(E->v, E->cap * sizeof *E->v);
		}
		E->owned = xrealloc(E->owned, (E->n_owned + 1) * sizeof *E->owned);
		E->owned[E->n_owned++] = kv;
		E->v[E->n++] = kv;
		E->v[E->n] = NULL;
	}
	return true;
}

static void free_vec(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static char **shell_argv(const char *shell, const char *script)
{
	size_t n;
	char **w = exec_split_words(shell, &n);
	w = xrealloc(w, (n + 3) * sizeof *w);
	w[n++] = xstrdup("-c");
	w[n++] = xstrdup(script);
	w[n] = NULL;
	return w;
}

/* Renders the command, builds the spec and starts the process. */
static void task_spawn(struct sched *S, struct task *t)
{
	struct snode *n = t->node;
	const struct step *s = step_of(n);
	struct scope_ctx C = {S, s};
	struct expr_scope scope = {lookup, &C};
	t->id = task_id(n);
	t->state = T_RUNNING;
	t->start_ms = clock_ms();
	S->n_waiting--;
	S->n_running++;
	t->next_run = S->running;
	if (S->running)
		S->running->prev_run = t;
	S->running = t;

	char *err = NULL;
	struct buf cmd = {0}, display = {0}, cwd = {0};
	char **argv = NULL, **fallback = NULL;
	struct envv env = {0};
	bool path_set = false, ok = true;
	if (s->run) {
		ok = tmpl_render(s->run, TMPL_SHELL, &scope, &cmd, &err);
		buf_add(&display, cmd.data ? cmd.data : "", cmd.len);
	} else {
		argv = xcalloc(s->argc + 1, sizeof *argv);
		for (size_t i = 0; i < s->argc && ok; i++) {
			struct buf w = {0};
			ok = tmpl_render(s->argv[i], TMPL_TEXT, &scope, &w, &err);
			if (i)
				buf_addc(&display, ' ');
			shell_quote(&display, w.data ? w.data : "", w.len);
			argv[i] = buf_detach(&w);
		}
	}
	const struct tmpl *cwd_t = NULL;
	for (const struct gnode *g = n->g; g && !cwd_t; g = g->parent)
		cwd_t = g->step->cwd;
	if (!cwd_t)
		cwd_t = S->p->defaults.cwd;
	if (ok && cwd_t)
		ok = tmpl_render(cwd_t, TMPL_TEXT, &scope, &cwd, &err);
	if (ok)
		ok = build_env(S, n, t, &scope, &env, &path_set, &err);

	struct event e = {.type = EV_TASK_START};
	e.task = t->id;
	e.step = s->full_id;
	e.attempt = t->attempt;
	e.command = display.data ? display.data : "";
	bus_emit(S->o.bus, &e);

	struct exec_status fail = {.exit_code = -1};
	char *msg = NULL;
	if (ok) {
		if (s->run) {
			bool direct = !strcmp(n->g->shell, "/bin/sh") && !path_set && exec_is_simple_command(cmd.data);
			fallback = shell_argv(n->g->shell, cmd.data);
			if (direct) {
				size_t nw;
				argv = exec_split_words(cmd.data, &nw);
			} else {
				argv = fallback;
				fallback = NULL;
			}
		}
		struct exec_spec spec = {argv, fallback, env.v, cwd.len ? cwd.data : NULL};
		struct exec_callbacks cb = {on_output, on_done};
		t->proc = S->o.exec->ops->start(S->o.exec, &spec, &cb, t, &msg);
		if (t->proc && n->g->timeout_ms) {
			t->timer = timer_new(S, t);
			uv_timer_start(t->timer, on_task_timer, n->g->timeout_ms, 0);
		}
	} else {
		msg = xasprintf("cannot prepare the command: %s", err);
	}
	free_vec(argv);
	free_vec(fallback);
	envv_free(&env);
	free(err);
	buf_free(&cmd);
	buf_free(&display);
	buf_free(&cwd);
	if (!t->proc) {
		fail.error = msg;
		task_end(S, t, &fail);
	}
	free(msg);
}

/* Starts every ready task whose limiters all have room, highest priority first. */
static void pump(struct sched *S)
{
	if (S->pumping)
		return;
	S->pumping = true;
	struct qitem *q;
	while ((q = heap_pop(&S->ready))) {
		struct task *t = (struct task *)q;
		struct limiter *from = t->promoted_from;
		t->promoted_from = NULL;
		if (t->cancelled) {
			task_free(t);
			if (from)
				promote(S, from);
			continue;
		}
		struct snode *n = t->node;
		struct limiter *small[16];
		struct limiter **ls = limiter_list(S, n, small);
		int full = limiters_try_take(ls, n->g->n_limiters);
		struct limiter *blocked = full >= 0 ? ls[full] : NULL;
		if (ls != small)
			free(ls);
		if (blocked) {
			t->state = T_PARKED;
			heap_push(&blocked->waiters, &t->q);
			/* the unit we were promoted for is still free: hand it on */
			if (from && from != blocked)
				promote(S, from);
			continue;
		}
		task_spawn(S, t);
	}
	S->pumping = false;
}

/* ---- nodes ---- */

static bool child_ok(const struct snode *c)
{
	if (c->status == ST_SUCCESS || c->status == ST_SKIPPED)
		return true;
	if ((c->status == ST_FAILED || c->status == ST_TIMEOUT) && step_of(c)->continue_on_error)
		return true;
	return false;
}

static bool child_failed(const struct snode *c)
{
	return (c->status == ST_FAILED || c->status == ST_TIMEOUT) && !step_of(c)->continue_on_error;
}

/* Marks a node that never started, and all below it, as ended with st. */
static void mark_below(struct sched *S, struct snode *n, enum status st)
{
	for (size_t i = 0; i < n->g->nkids; i++) {
		struct snode *c = kid(S, n, i);
		if (c->state != N_PENDING)
			continue;
		mark_below(S, c, st);
		c->state = N_DONE;
		c->status = st;
		c->end_ms = c->start_ms = 0;
		S->counts[st]++;
		if (step_of(c)->kind == STEP_RUN && c->g->selected)
			S->n_done++;
		emit_step(S, c, EV_STEP_END);
	}
}

static void mark_tree(struct sched *S, struct snode *n, enum status st)
{
	mark_below(S, n, st);
	n->state = N_RUNNING;
	n->start_ms = 0;
	node_finish(S, n, st, NULL);
}

static void seq_advance(struct sched *S, struct snode *p)
{
	if (p->advancing)
		return;
	p->advancing = true;
	while (p->state == N_RUNNING) {
		if (p->next_child >= p->g->nkids) {
			node_finish(S, p, p->decided_set ? p->decided : ST_SUCCESS, p->reason);
			break;
		}
		struct snode *c = kid(S, p, p->next_child);
		if (c->state == N_PENDING) {
			if (p->cancelling)
				mark_tree(S, c, ST_CANCELLED);
			else if (p->decided_set)
				mark_tree(S, c, ST_SKIPPED);
			else
				node_start(S, c);
			continue;
		}
		if (c->state == N_RUNNING)
			break;
		if (!p->decided_set && !p->cancelling && !child_ok(c)) {
			p->decided_set = true;
			p->decided = c->status == ST_CANCELLED ? ST_CANCELLED : ST_FAILED;
			free(p->reason);
			p->reason = xasprintf("%s %s", step_of(c)->full_id, status_name(c->status));
		}
		p->next_child++;
	}
	p->advancing = false;
}

static enum fan_mode fan_mode_of(const struct snode *p, struct amount *min)
{
	const struct step *s = step_of(p);
	if (s->kind == STEP_STAGE)
		s = p->g->parent->step;
	*min = s->min_success;
	return s->min_success.set ? MODE_SETTLE : s->mode;
}

static void fan_decide(struct sched *S, struct snode *p, enum status st, const struct snode *why)
{
	p->decided_set = true;
	p->decided = st;
	if (why && st != ST_SUCCESS) {
		free(p->reason);
		p->reason = xasprintf("%s %s", step_of(why)->full_id, status_name(why->status));
	}
	for (size_t i = 0; i < p->g->nkids; i++)
		node_cancel(S, kid(S, p, i));
}

static enum status fan_outcome(const struct snode *p, char **reason)
{
	struct amount min;
	enum fan_mode m = fan_mode_of(p, &min);
	if (min.set) {
		double need = min.percent ? ceil(min.value * (double)p->g->nkids / 100.0) : min.value;
		if ((double)p->n_ok >= need)
			return ST_SUCCESS;
		free(*reason);
		*reason = xasprintf("%zu of %zu succeeded, min_success needs %g", p->n_ok, p->g->nkids, need);
		return ST_FAILED;
	}
	if (m == MODE_ANY && p->n_failed && !p->n_ok) {
		free(*reason);
		*reason = xstrdup("every branch failed");
		return ST_FAILED;
	}
	if (p->n_failed && m != MODE_ANY) {
		if (!*reason)
			*reason = xasprintf("%zu of %zu failed", p->n_failed, p->g->nkids);
		return ST_FAILED;
	}
	return ST_SUCCESS;
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
	bool soft = !failed && (c->status == ST_FAILED || c->status == ST_TIMEOUT);
	if (succeeded)
		p->n_ok++;
	if (failed)
		p->n_failed++;
	if (!p->decided_set && !p->cancelling) {
		struct amount min;
		enum fan_mode m = fan_mode_of(p, &min);
		if (m == MODE_ALL && failed)
			fan_decide(S, p, ST_FAILED, c);
		else if (m == MODE_ANY && succeeded)
			fan_decide(S, p, ST_SUCCESS, c);
		else if (m == MODE_RACE && (succeeded || failed || soft))
			fan_decide(S, p, failed ? ST_FAILED : ST_SUCCESS, c);
	}
	if (p->state == N_RUNNING && p->n_done == p->g->nkids) {
		enum status st = p->decided_set ? p->decided : fan_outcome(p, &p->reason);
		node_finish(S, p, st, p->reason);
	}
}

static void child_done(struct sched *S, struct snode *p, struct snode *c)
{
	if (p->state != N_RUNNING)
		return;
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

static void node_start(struct sched *S, struct snode *n)
{
	const struct step *s = step_of(n);
	if (!n->g->selected) {
		mark_tree(S, n, ST_SKIPPED);
		return;
	}
	n->state = N_RUNNING;
	n->start_ms = clock_ms();
	if (s->when) {
		struct scope_ctx C = {S, s};
		struct expr_scope scope = {lookup, &C};
		char *err = NULL;
		json_t *v = expr_eval(s->when, &scope, &err);
		if (!v) {
			emit_step(S, n, EV_STEP_START);
			char *r = xasprintf("when: %s", err);
			free(err);
			node_finish(S, n, ST_FAILED, r);
			free(r);
			return;
		}
		bool go = expr_truthy(v);
		json_decref(v);
		if (!go) {
			n->state = N_PENDING;
			mark_tree(S, n, ST_SKIPPED);
			return;
		}
	}
	emit_step(S, n, EV_STEP_START);
	switch (s->kind) {
	case STEP_RUN:
		task_enqueue(S, n, 1);
		break;
	case STEP_SLEEP:
		n->timer = ntimer_new(S, n);
		uv_timer_start(&n->timer->h, on_sleep_timer, s->sleep_ms, 0);
		break;
	case STEP_STEPS:
	case STEP_STAGES:
		seq_advance(S, n);
		break;
	case STEP_PARALLEL:
	case STEP_STAGE:
		for (size_t i = 0; i < n->g->nkids && n->state == N_RUNNING; i++) {
			struct snode *c = kid(S, n, i);
			if (c->state == N_PENDING && !n->decided_set && !n->cancelling)
				node_start(S, c);
		}
		break;
	default:
		node_finish(S, n, ST_FAILED, "not supported yet");
		break;
	}
}

static void run_finished(struct sched *S);

static void node_finish(struct sched *S, struct snode *n, enum status st, const char *reason)
{
	if (n->state == N_DONE)
		return;
	n->state = N_DONE;
	n->status = st;
	n->end_ms = clock_ms();
	if (reason && reason != n->reason) {
		free(n->reason);
		n->reason = xstrdup(reason);
	}
	ntimer_drop(&n->timer);
	S->counts[st]++;
	if (step_of(n)->kind == STEP_RUN && n->g->selected) {
		S->n_done++;
		if (st == ST_FAILED || st == ST_TIMEOUT)
			S->n_failed++;
	}
	emit_step(S, n, EV_STEP_END);
	if (!n->g->parent) {
		run_finished(S);
		return;
	}
	child_done(S, node_of(S, n->g->parent), n);
}

static void node_cancel(struct sched *S, struct snode *n)
{
	if (n->state == N_DONE)
		return;
	if (n->state == N_PENDING) {
		mark_tree(S, n, ST_CANCELLED);
		return;
	}
	if (n->cancelling)
		return;
	n->cancelling = true;
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
	case STEP_STEPS:
	case STEP_STAGES:
		if (!n->decided_set) {
			n->decided_set = true;
			n->decided = ST_CANCELLED;
		}
		if (n->next_child < n->g->nkids)
			node_cancel(S, kid(S, n, n->next_child));
		seq_advance(S, n);
		break;
	default:
		if (!n->decided_set) {
			n->decided_set = true;
			n->decided = ST_CANCELLED;
		}
		for (size_t i = 0; i < n->g->nkids; i++)
			node_cancel(S, kid(S, n, i));
		break;
	}
}

/* ---- the run ---- */

static void close_if_active(uv_handle_t *h)
{
	if (h->type != UV_UNKNOWN_HANDLE && !uv_is_closing(h))
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

static void hard_kill(struct sched *S)
{
	for (struct task *t = S->running; t; t = t->next_run)
		if (t->proc) {
			S->o.exec->ops->signal(t->proc, SIGKILL);
			t->kill_phase = 2;
		}
}

static void on_signal(uv_signal_t *h, int sig)
{
	struct sched *S = h->data;
	S->n_interrupts++;
	if (!S->interrupted)
		S->interrupted = sig;
	if (S->n_interrupts > 1) {
		/* a second interrupt: no more grace */
		hard_kill(S);
		return;
	}
	node_cancel(S, &S->nodes[0]);
	pump(S);
}

static void on_plan_timeout(uv_timer_t *h)
{
	struct sched *S = h->data;
	S->plan_timed_out = true;
	node_cancel(S, &S->nodes[0]);
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
	S->nodes = xcalloc(g->n, sizeof *S->nodes);
	for (size_t i = 0; i < g->n; i++) {
		S->nodes[i].g = &g->nodes[i];
		S->nodes[i].exit_code = -1;
	}
	S->limits = xcalloc(g->n_limits, sizeof *S->limits);
	for (size_t i = 0; i < g->n_limits; i++)
		S->limits[i].capacity = g->limits[i].capacity;
	srand((unsigned)(clock_ms() ^ (uint64_t)getpid()));
	for (char **e = environ; *e; e++)
		S->n_base_env++;
	S->base_env = xcalloc(S->n_base_env + 1, sizeof *S->base_env);
	S->n_base_env = 0;
	for (char **e = environ; *e; e++)
		if (!str_has_prefix(*e, "BATON_"))
			S->base_env[S->n_base_env++] = *e;

	struct event e = {.type = EV_RUN_START};
	e.plan = S->p->file;
	e.name = S->p->name;
	e.tasks = (long)g->n_tasks;
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

	node_start(S, &S->nodes[0]);
	pump(S);
	bus_flush(o->bus);
	while (!S->root_done) {
		if (uv_run(o->loop, UV_RUN_ONCE) == 0 && !S->root_done) {
			/* nothing left that could wake us: a scheduler bug, not a hang */
			fprintf(stderr, "baton: internal error: the run stalled with work pending\n");
			node_cancel(S, &S->nodes[0]);
			hard_kill(S);
			if (!S->root_done)
				break;
		}
	}
	uv_run(o->loop, UV_RUN_DEFAULT); /* let closing handles finish */

	struct snode *root = &S->nodes[0];
	int code;
	enum status st = root->state == N_DONE ? root->status : ST_FAILED;
	if (S->interrupted) {
		code = S->interrupted == SIGTERM ? EXIT_SIGTERM : EXIT_SIGINT;
		st = ST_CANCELLED;
	} else if (S->plan_timed_out) {
		code = EXIT_TIMEOUT;
		st = ST_TIMEOUT;
	} else {
		code = st == ST_SUCCESS ? EXIT_OK : EXIT_FAILED;
		if (st != ST_SUCCESS)
			st = ST_FAILED;
	}
	emit_progress(S);
	struct event end = {.type = EV_RUN_END};
	end.status = st;
	end.exit_code_run = code;
	end.duration_ms = clock_ms() - S->start_ms;
	/* the root is the run itself: count only steps */
	S->counts[root->status]--;
	memcpy(end.counts, S->counts, sizeof end.counts);
	bus_emit(o->bus, &end);

	struct qitem *q;
	while ((q = heap_pop(&S->ready)))
		task_free((struct task *)q);
	for (size_t i = 0; i < g->n_limits; i++) {
		while ((q = heap_pop(&S->limits[i].waiters)))
			task_free((struct task *)q);
		heap_free(&S->limits[i].waiters);
	}
	heap_free(&S->ready);
	for (size_t i = 0; i < g->n; i++) {
		free(S->nodes[i].out);
		free(S->nodes[i].err);
		free(S->nodes[i].reason);
	}
	uv_run(o->loop, UV_RUN_DEFAULT);
	free(S->nodes);
	free(S->limits);
	free(S->base_env);
	free(S);
	return code;
}
