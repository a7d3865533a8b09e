/*
 * task.c — the attempts of run steps: the ready heap and the limiters they
 * take all together, rendering the command and its environment, spawning
 * through the executor, splitting output into lines, timeouts with
 * SIGTERM then SIGKILL to the process group, and retries with backoff.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched/internal.h"

#define LINE_MAX_BYTES 65536
#define CAPTURE_MAX (1u << 20)
#define XFER_MS 500 /* a running copy's task.transfer events: one at most this often */

static struct limiter *limiter_at(struct sched *S, const struct snode *n, unsigned i)
{
	return &S->limits[n->g->limiters[i]];
}

/* A remote host's index, or -1 when the node runs locally (no `on`, or localhost). */
static long remote_host(struct sched *S, const struct snode *n)
{
	long h = node_host(n);
	return h >= 0 && !S->p->inventory.hosts[h].local ? h : -1;
}

/*
 * The limiters a node's tasks take, in `small` when they fit (else
 * allocated): the graph's, then a remote host's max_sessions. A remote task
 * leaves out the global concurrency (a limit of this machine) and, when
 * `starting` finds its host with nothing running yet, takes one of the
 * max_hosts instead: a host is worked on while it has a task running.
 * *nl says how many.
 */
static struct limiter **limiter_list(struct sched *S, const struct snode *n, bool starting, struct limiter *small[16],
				     unsigned *nl)
{
	long h = remote_host(S, n);
	unsigned ng = n->g->n_limiters;
	*nl = ng + (h >= 0) * 2;
	struct limiter **ls = *nl <= 16 ? small : xmalloc(*nl * sizeof *ls);
	unsigned k = 0;
	for (unsigned i = 0; i < ng; i++)
		if (h < 0 || n->g->limiters[i] != 0) /* limits[0]: the global concurrency */
			ls[k++] = limiter_at(S, n, i);
	if (h >= 0) {
		ls[k++] = &S->host_limits[h];
		if (starting && S->host_limits[h].used == 0)
			ls[k++] = &S->max_hosts;
	}
	*nl = k;
	return ls;
}

void task_enqueue(struct sched *S, struct snode *n, int attempt)
{
	struct task *t = xcalloc(1, sizeof *t);
	t->S = S;
	t->node = n;
	t->attempt = attempt;
	t->q.priority = n->g->priority;
	t->q.order = n->g->index;
	t->q.seq = ++S->enqueued;
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

struct ntimer *ntimer_new(struct sched *S, struct snode *n)
{
	struct ntimer *t = xcalloc(1, sizeof *t);
	uv_timer_init(S->o.loop, &t->h);
	t->h.data = t;
	t->S = S;
	t->n = n;
	return t;
}

void ntimer_drop(struct ntimer **tp)
{
	if (!*tp)
		return;
	uv_timer_stop(&(*tp)->h);
	uv_close((uv_handle_t *)&(*tp)->h, timer_free_cb);
	*tp = NULL;
}

void task_free(struct task *t)
{
	if (t->run) {
		timer_drop(&t->run->timer);
		for (int i = 0; i < 2; i++) {
			buf_free(&t->run->line[i]);
			buf_free(&t->run->cap[i]);
		}
		free(t->run->label);
		free(t->run);
	}
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
	e.task = t->node->id;
	e.stream_stderr = stream == 2;
	e.line = s;
	e.line_len = len;
	bus_emit(S->o.bus, &e);
}

/*
 * Where to cut a long line: at LINE_MAX_BYTES, moved back before any secret
 * that would straddle the cut, so masking (done per line) still sees it whole.
 */
static size_t safe_cut(const struct sched *S, const char *d, size_t len)
{
	size_t cut = LINE_MAX_BYTES;
	const char *const *sec = S->o.bus->secrets;
	for (bool moved = true; moved && cut > 0;) {
		moved = false;
		for (size_t k = 0; k < S->o.bus->n_secrets; k++) {
			size_t m = strlen(sec[k]);
			for (size_t i = cut >= m ? cut - m + 1 : 0; i < cut && i + m <= len; i++)
				if (!memcmp(d + i, sec[k], m)) {
					cut = i;
					moved = true;
					break;
				}
		}
	}
	return cut ? cut : LINE_MAX_BYTES; /* a secret longer than a piece cannot be kept whole */
}

static void on_output(void *ud, int stream, const char *data, size_t len)
{
	struct task *t = ud;
	struct sched *S = t->S;
	int k = stream == 2 ? 1 : 0;
	if (step_of(t->node)->captured && t->run->cap[k].len < CAPTURE_MAX) {
		size_t room = CAPTURE_MAX - t->run->cap[k].len;
		buf_add(&t->run->cap[k], data, len < room ? len : room);
	}
	struct buf *lb = &t->run->line[k];
	const char *p = data, *end = data + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t seg = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (!lb->len && nl) {
			emit_output_line(S, t, stream, p, seg); /* whole line in this chunk: no copy */
		} else {
			/* room past the cut for a secret that would straddle it */
			size_t limit = LINE_MAX_BYTES + S->max_secret;
			size_t room = limit - lb->len;
			size_t take = seg < room ? seg : room;
			buf_add(lb, p, take);
			if (nl) {
				emit_output_line(S, t, stream, lb->data, lb->len);
				buf_reset(lb);
			} else if (lb->len >= limit) {
				/* a very long line goes out in pieces so memory stays bounded */
				size_t cut = safe_cut(S, lb->data, lb->len);
				emit_output_line(S, t, stream, lb->data, cut);
				memmove(lb->data, lb->data + cut, lb->len - cut);
				lb->len -= cut;
				lb->data[lb->len] = '\0';
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
	if (t->run->prev)
		t->run->prev->run->next = t->run->next;
	else if (S->running == t)
		S->running = t->run->next;
	if (t->run->next)
		t->run->next->run->prev = t->run->prev;
	t->run->next = t->run->prev = NULL;
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

#define RETRY_DELAY_CEIL_MS 1000000000000ull /* about 31 years: a delay is never longer */

/*
 * Delay before attempt number `next` (2, 3, ...): delay × backoff^(next-2),
 * with jitter, capped by max_delay. Computed step by step on an integer that
 * saturates at the cap, so no power of the backoff ever overflows (0 × ∞ was
 * NaN, and NaN a hang).
 */
static uint64_t retry_delay(const struct retry_spec *r, int next)
{
	uint64_t cap = r->max_delay_ms ? r->max_delay_ms : RETRY_DELAY_CEIL_MS;
	uint64_t d = r->delay_ms < cap ? r->delay_ms : cap;
	for (int k = 2; k < next && d && d < cap && r->backoff != 1; k++) {
		double x = (double)d * r->backoff; /* d ≤ 10^12, backoff ≤ 1000: exact enough, finite */
		d = x >= (double)cap ? cap : (uint64_t)x;
	}
	if (r->jitter > 0 && d) {
		double u = (double)rand() / (double)RAND_MAX; /* 0..1 */
		double x = (double)d * (1.0 + r->jitter * (2.0 * u - 1.0)); /* jitter ≤ 1: 0..2d */
		d = x <= 0 ? 0 : x >= (double)cap ? cap : (uint64_t)(x + 0.5);
	}
	return d;
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
	e.task = t->node->id;
	e.label = t->run->label;
	e.attempt = next;
	e.delay_ms = delay;
	e.reason = reason;
	bus_emit(S->o.bus, &e);
	n->timer = ntimer_new(S, n);
	n->timer->next_attempt = next;
	uv_timer_start(&n->timer->h, on_retry_timer, delay, 0);
}

/* A capture without its one trailing newline; *len is its length (it may hold NUL bytes). */
static char *capture_text(struct buf *b, size_t *len)
{
	if (b->len && b->data[b->len - 1] == '\n')
		b->data[--b->len] = '\0';
	*len = b->len;
	return buf_detach(b);
}

/*
 * What the task wrote to $BATON_OUTPUT as an object of strings (new
 * reference; empty when nothing was read back), or NULL with *why when the
 * file could not be read back or parsed. A reused task's come from the run
 * that ran it.
 */
static json_t *task_outputs(struct sched *S, const struct task *t, const struct exec_status *st, char **why)
{
	if (S->reused_task == t) {
		const char *text = S->reused->outputs;
		json_t *o = text ? json_loads(text, 0, NULL) : NULL;
		if (json_is_object(o))
			return o;
		json_decref(o);
		return json_object();
	}
	if (st->output_error) {
		*why = xstrdup(st->output_error);
		return NULL;
	}
	if (!st->output)
		return json_object();
	return exec_output_parse(st->output, st->output_len, why);
}

/* The task's process is gone and its output closed: decide its status. */
static void task_end(struct sched *S, struct task *t, const struct exec_status *st)
{
	struct snode *n = t->node;
	/* a connection may have gone idle, which an executor can close for a task waiting for descriptors */
	fds_room(S);
	for (int k = 0; k < 2; k++)
		if (t->run->line[k].len) {
			/* output without a final newline is kept */
			emit_output_line(S, t, k + 1, t->run->line[k].data, t->run->line[k].len);
			buf_reset(&t->run->line[k]);
		}
	enum status status;
	char reason[2048] = ""; /* host-key messages are long: they say what to do */
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
	/* $BATON_OUTPUT, for the steps an expression reads: a file that cannot be read or parsed fails the task */
	char *out_why = NULL;
	json_t *outputs = step_of(n)->captured ? task_outputs(S, t, st, &out_why) : NULL;
	if (out_why && status == ST_SUCCESS) {
		status = ST_FAILED;
		snprintf(reason, sizeof reason, "%s", out_why);
	}
	free(out_why);
	uint64_t now = clock_ms();
	struct event e = {.type = EV_TASK_END};
	e.task = t->node->id;
	e.status = status;
	e.exit_code = st->error ? -1 : st->exit_code;
	e.signal = st->signal;
	e.duration_ms = now - t->run->start_ms;
	e.attempt = t->attempt;
	e.label = t->run->label;
	e.reason = *reason && status != ST_SUCCESS ? reason : NULL;
	e.step = step_of(n)->full_id; /* for sinks (CI annotations point at it); JSON has it at task.start */
	bool retry = should_retry(t, status, st->exit_code);
	e.tolerated = !retry && node_failure_tolerated(S, n, status); /* its last attempt, a failure absorbed */
	e.copy = step_of(n)->copy != NULL;
	e.changed = st->changed;
	e.bytes = st->bytes;
	if (S->reused_task == t) {
		/* carried over by resume: no task.start went before, so the end says what it was */
		const struct sched_reuse *ru = S->reused;
		e.reused = true;
		e.duration_ms = ru->duration_ms;
		e.step = ru->step;
		e.host = ru->host;
		e.item = ru->item;
		e.command = ru->command;
		e.env = ru->env;
		S->reused_task = NULL;
	}
	if (step_of(n)->captured) {
		/* what expressions will read, for the run store (resume gives it back) */
		const struct buf *c = t->run->cap;
		e.out = c[0].data ? c[0].data : "";
		e.out_len = c[0].len - (c[0].len && c[0].data[c[0].len - 1] == '\n');
		e.err = c[1].data ? c[1].data : "";
		e.err_len = c[1].len - (c[1].len && c[1].data[c[1].len - 1] == '\n');
	}
	char *outputs_text = outputs ? json_dumps(outputs, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	e.outputs = outputs_text;
	bus_emit(S->o.bus, &e);
	free(outputs_text);

	if (t->state == T_RUNNING) {
		S->n_running--;
		running_unlink(S, t);
		struct limiter *small[16];
		unsigned nl;
		struct limiter **ls = limiter_list(S, n, false, small, &nl);
		limiters_release(ls, nl);
		for (unsigned i = 0; i < nl; i++)
			promote(S, ls[i]);
		if (ls != small)
			free(ls);
		long h = remote_host(S, n);
		if (h >= 0 && S->host_limits[h].used == 0) {
			/* its host's last running task: the host is no longer worked on */
			limiters_release((struct limiter *[]){&S->max_hosts}, 1);
			promote(S, &S->max_hosts);
		}
	}
	t->state = T_ENDED;
	n->task = NULL;
	if (retry) {
		json_decref(outputs);
		schedule_retry(S, t, reason);
		task_free(t);
		return;
	}
	n->exit_code = st->error ? -1 : st->exit_code;
	n->signal = st->signal;
	if (step_of(n)->captured) {
		if (!n->cap)
			n->cap = xcalloc(1, sizeof *n->cap);
		free(n->cap->out);
		free(n->cap->err);
		n->cap->out = capture_text(&t->run->cap[0], &n->cap->out_len);
		n->cap->err = capture_text(&t->run->cap[1], &n->cap->err_len);
		json_decref(n->cap->outputs);
		n->cap->outputs = outputs;
		outputs = NULL;
	}
	json_decref(outputs);
	task_free(t);
	/*
	 * A success that decides nothing (a branch of an `all` or `settle`
	 * fan-out, no handlers) frees its slot for the next waiting task first,
	 * and the bookkeeping of its end runs while that one starts.
	 */
	if (status == ST_SUCCESS && node_success_is_quiet(n))
		pump(S);
	node_finish(S, n, status, *reason ? reason : NULL);
}

/* The task's process group is known: told as an event, so the run store can end it after a crash. */
static void on_process(void *ud, long pgid)
{
	struct task *t = ud;
	struct sched *S = t->S;
	struct event e = {.type = EV_TASK_PROCESS, .task = t->node->id, .pgid = pgid};
	long hi = node_host(t->node);
	e.host = hi >= 0 ? S->p->inventory.hosts[hi].name : NULL;
	e.remote = t->run->exec == S->o.ssh && S->o.ssh;
	bus_emit(S->o.bus, &e);
}

/*
 * Every XFER_MS while copies run: a task.transfer for each one that moved
 * bytes since its last (read from the executor, never a callback per chunk).
 */
static void on_xfer_timer(uv_timer_t *h)
{
	struct sched *S = h->data;
	for (struct task *t = S->running; t; t = t->run->next) {
		if (!t->run->copy)
			continue;
		uint64_t bytes;
		int64_t total;
		exec_copy_progress(t->run->copy, &bytes, &total);
		if (bytes == t->run->xfer_bytes)
			continue;
		t->run->xfer_bytes = bytes;
		long hi = node_host(t->node);
		struct event e = {.type = EV_TASK_TRANSFER, .task = t->node->id, .bytes = bytes, .size = total};
		e.host = hi >= 0 ? S->p->inventory.hosts[hi].name : NULL;
		bus_emit(S->o.bus, &e);
	}
}

/* A copy started or ended: the transfer timer runs while any does. */
static void copies_add(struct sched *S, int d)
{
	S->n_copies = (size_t)((long)S->n_copies + d);
	if (S->n_copies && !uv_is_active((uv_handle_t *)&S->xfer_timer))
		uv_timer_start(&S->xfer_timer, on_xfer_timer, XFER_MS, XFER_MS);
	else if (!S->n_copies)
		uv_timer_stop(&S->xfer_timer);
}

static void on_done(void *ud, const struct exec_status *st)
{
	struct task *t = ud;
	struct sched *S = t->S;
	t->run->proc = NULL;
	if (t->run->copy)
		copies_add(S, -1);
	t->run->copy = NULL;
	task_end(S, t, st);
	pump(S);
}

static void on_task_timer(uv_timer_t *h)
{
	struct task *t = h->data;
	if (t->run->copy) {
		/* a copy has no process group: it stops at its next buffer */
		if (!t->cancel_requested)
			t->timed_out = true;
		t->kill_phase = 2;
		exec_copy_stop(t->run->copy);
		return;
	}
	if (!t->run->proc)
		return;
	if (t->kill_phase == 0) {
		t->kill_phase = 1;
		if (!t->run->exec->ops->signal(t->run->proc, SIGTERM))
			t->cancel_requested = false; /* it had exited by itself: its end is its own, not a cancel's */
		else if (!t->cancel_requested)
			t->timed_out = true;
		uv_timer_start(h, on_task_timer, t->node->g->kill_grace_ms, 0);
	} else if (t->kill_phase == 1) {
		t->run->exec->ops->signal(t->run->proc, SIGKILL);
		t->kill_phase = 2;
	}
}

/* Starts stopping a running task: SIGTERM now, SIGKILL after kill_grace. */
void task_kill(struct task *t)
{
	if ((!t->run->proc && !t->run->copy) || t->kill_phase > 0)
		return;
	if (!t->run->timer)
		t->run->timer = timer_new(t->S, t);
	uv_timer_stop(t->run->timer);
	t->kill_phase = 0;
	on_task_timer(t->run->timer);
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

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The environment the plan gives a task, "K=V\n" sorted: what its env
 * layers set, not baton's own environment, not BATON_* (the run id differs
 * from run to run) and not the values a script refers to (its command shows
 * them). resume compares it with the run resumed. NULL: none.
 */
static char *plan_env_text(const struct envv *E)
{
	const char **v = NULL;
	size_t n = 0;
	for (size_t i = 0; i < E->n; i++) {
		bool owned = false;
		for (size_t k = 0; k < E->n_owned && !owned; k++)
			owned = E->v[i] == E->owned[k];
		if (!owned || !strncmp(E->v[i], "BATON_", 6) || !strncmp(E->v[i], "__baton_", 8))
			continue;
		v = xrealloc(v, (n + 1) * sizeof *v);
		v[n++] = E->v[i];
	}
	if (!n)
		return NULL;
	qsort(v, n, sizeof *v, cmp_str);
	struct buf b = {0};
	for (size_t i = 0; i < n; i++) {
		buf_adds(&b, v[i]);
		buf_addc(&b, '\n');
	}
	free(v);
	return buf_detach(&b);
}

/* Linux's limit on one environment string (MAX_ARG_STRLEN), "NAME=" included. */
#define ENV_ENTRY_MAX (32u * 4096u)

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
		if (memchr(b.data + klen, '\0', b.len - klen)) {
			*err = xasprintf("env %s: the value holds a NUL byte, which an environment variable cannot carry",
					 kv[i].key);
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
		      struct envv *E, bool remote, bool *path_set, char **err)
{
	*path_set = false;
	/* a remote command gets the plan's variables, not baton's own environment */
	size_t nb = remote ? 0 : S->n_base_env;
	E->cap = nb + 16;
	E->v = xmalloc(E->cap * sizeof *E->v);
	memcpy(E->v, S->base_env, nb * sizeof *E->v);
	E->n = nb;
	E->v[E->n] = NULL;
	const struct step_mods *d = S->p->defaults.mods;
	if (!env_layer(E, S->p->env, S->p->env_vals, S->p->n_env, scope, path_set, err) ||
	    !env_layer(E, d->env, d->env_vals, d->n_env, scope, path_set, err))
		return false;
	const struct step_mods *chain[256];
	size_t nchain = 0;
	for (const struct gnode *g = n->g; g && nchain < 256; g = g->parent)
		if (g->step->mods->n_env)
			chain[nchain++] = g->step->mods;
	for (size_t i = nchain; i-- > 0;)
		if (!env_layer(E, chain[i]->env, chain[i]->env_vals, chain[i]->n_env, scope, path_set, err))
			return false;
	char num[16];
	snprintf(num, sizeof num, "%d", t->attempt);
	long index = -1;
	json_t *item = node_item(n, &index);
	struct buf itext = {0};
	if (item)
		value_to_text(item, &itext);
	if (itext.len && memchr(itext.data, '\0', itext.len)) {
		*err = xstrdup("BATON_ITEM: the item holds a NUL byte, which an environment variable cannot carry");
		buf_free(&itext);
		return false;
	}
	long h = node_host(n);
	const char *host = h >= 0 ? S->p->inventory.hosts[h].name : "";
	const char *extra[] = {"BATON_RUN_ID", S->o.run_id, "BATON_STEP", step_of(n)->full_id, "BATON_HOST", host,
			       "BATON_ITEM",   itext.data ? itext.data : "", "BATON_ATTEMPT", num};
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
	buf_free(&itext);
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


/*
 * The command line a remote host runs, and *input, the script to feed its
 * stdin: the environment (remote_env), then the directory, then the command
 * through the step's shell, or the argv exec'd as is. Every value is one
 * quoted word.
 */
static char *remote_command(const struct step *s, const struct snode *n, const char *script, char *const *argv,
			    const struct envv *E, const char *cwd, char **input, char **err)
{
	struct buf b = {0};
	if (!remote_env(&b, (const char *const *)E->v, E->n, input, err)) {
		buf_free(&b);
		return NULL;
	}
	if (cwd) {
		buf_adds(&b, "cd ");
		shell_quote(&b, cwd, strlen(cwd));
		buf_adds(&b, " && ");
	}
	buf_adds(&b, "exec");
	if (s->run) {
		size_t nw;
		char **w = exec_split_words(n->g->shell, &nw);
		for (size_t i = 0; i < nw; i++) {
			buf_addc(&b, ' ');
			shell_quote(&b, w[i], strlen(w[i]));
			free(w[i]);
		}
		free(w);
		buf_adds(&b, " -c ");
		shell_quote(&b, script, strlen(script));
	} else {
		for (size_t i = 0; argv && argv[i]; i++) {
			buf_addc(&b, ' ');
			shell_quote(&b, argv[i], strlen(argv[i]));
		}
	}
	return buf_detach(&b);
}

/* A local path of a copy: relative ones are read from the plan's directory (caller frees). */
static char *plan_path(const struct sched *S, const char *path)
{
	const char *f = S->p->file;
	const char *sl = f ? strrchr(f, '/') : NULL;
	if (path[0] == '/' || !sl || !strcmp(f, "-"))
		return xstrdup(path);
	return xasprintf("%.*s/%s", (int)(sl - f), f, path);
}

/* Renders a copy's field into *out (caller frees); false with *err. */
static bool copy_field(const struct tmpl *tp, struct expr_scope *scope, char **out, char **err)
{
	struct buf b = {0};
	bool ok = tmpl_render(tp, TMPL_TEXT, scope, &b, err);
	*out = ok ? xstrdup(b.data ? b.data : "") : NULL;
	buf_free(&b);
	return ok;
}

/*
 * Starts a copy or fetch task: its fields rendered, its paths made (a
 * fetch lands in DEST/HOST/), and the copy executor started instead of a
 * process. Ends through on_done like a command.
 */
static void copy_spawn(struct sched *S, struct task *t, struct expr_scope *scope)
{
	struct snode *n = t->node;
	const struct step *s = step_of(n);
	const struct copy_spec *cs = s->copy;
	char *src = NULL, *dest = NULL, *mode = NULL, *err = NULL, *msg = NULL;
	long rh = remote_host(S, n), hi = node_host(n);
	const char *hname = hi >= 0 ? S->p->inventory.hosts[hi].name : NULL;
	bool ok = copy_field(cs->src, scope, &src, &err) && copy_field(cs->dest, scope, &dest, &err) &&
		  (!cs->mode || copy_field(cs->mode, scope, &mode, &err));
	int m = -1;
	if (ok && mode && (m = copy_mode_parse(mode)) < 0) {
		err = xasprintf("mode '%s' is not octal permission bits such as 0644", mode);
		ok = false;
	}
	if (ok && (!*src || !*dest)) {
		err = xasprintf("the %s is empty", *src ? "dest" : "src");
		ok = false;
	}
	char *from = NULL, *to = NULL; /* as the executor takes them */
	struct buf shown = {0};
	if (ok && cs->fetch) {
		from = rh >= 0 ? xstrdup(src) : plan_path(S, src);
		char *d = plan_path(S, dest);
		to = hname ? xasprintf("%s/%s/", d, hname) : xasprintf("%s/", d);
		free(d);
		buf_printf(&shown, "fetch %s%s%s -> %s/%s%s", rh >= 0 ? hname : "", rh >= 0 ? ":" : "", src, dest,
			   hname ? hname : "", hname ? "/" : "");
	} else if (ok) {
		from = plan_path(S, src);
		to = rh >= 0 ? xstrdup(dest) : plan_path(S, dest);
		buf_printf(&shown, "copy %s -> %s%s%s", src, rh >= 0 ? hname : "", rh >= 0 ? ":" : "", dest);
	}
	struct event e = {.type = EV_TASK_START};
	e.task = n->id;
	e.step = s->full_id;
	e.attempt = t->attempt;
	long index = -1;
	json_t *item = node_item(n, &index);
	struct buf itext = {0};
	if (item)
		value_to_text(item, &itext);
	e.item = item ? (itext.data ? itext.data : "") : NULL;
	e.label = t->run->label;
	e.command = ok ? shown.data : s->copy->fetch ? "fetch" : "copy";
	e.host = hname;
	bus_emit(S->o.bus, &e);
	buf_free(&itext);
	if (ok) {
		struct exec_copy_spec spec = {rh >= 0 ? &S->xhosts[rh] : NULL, cs->fetch, from, to, m};
		struct exec_callbacks cb = {NULL, on_done, NULL};
		t->run->exec = rh >= 0 ? S->o.ssh : S->o.exec;
		t->run->copy = exec_copy_start(S->o.loop, S->o.ssh, &spec, &cb, t, &msg);
		if (t->run->copy)
			copies_add(S, 1);
		if (t->run->copy && n->g->timeout_ms) {
			t->run->timer = timer_new(S, t);
			uv_update_time(S->o.loop);
			uv_timer_start(t->run->timer, on_task_timer, n->g->timeout_ms, 0);
		}
	} else
		msg = xasprintf("cannot prepare the %s: %s", cs->fetch ? "fetch" : "copy", err);
	free(src);
	free(dest);
	free(mode);
	free(err);
	free(from);
	free(to);
	buf_free(&shown);
	if (!t->run->copy) {
		struct exec_status fail = {.exit_code = -1, .error = msg};
		task_end(S, t, &fail);
	}
	free(msg);
}

/* Renders the command, builds the spec and starts the process. */
static void task_spawn(struct sched *S, struct task *t)
{
	struct snode *n = t->node;
	const struct step *s = step_of(n);
	struct scope_ctx C;
	struct expr_scope scope = scope_of(&C, S, n);
	t->state = T_RUNNING;
	t->run = xcalloc(1, sizeof *t->run);
	t->run->start_ms = clock_ms();
	t->run->label = node_label(S, n);
	S->n_waiting--;
	S->n_running++;
	t->run->next = S->running;
	if (S->running)
		S->running->run->prev = t;
	S->running = t;
	if (s->copy) {
		copy_spawn(S, t, &scope);
		return;
	}

	char *err = NULL;
	struct buf display = {0}, cwd = {0}; /* display: an argv's, quoted */
	const char *shown = NULL;             /* or a script's, as tmpl_render_shell gave it */
	struct shell_cmd sc = {0};
	char **argv = NULL, **fallback = NULL;
	struct envv env = {0};
	bool path_set = false, ok = true;
	if (s->run) {
		/* values never enter the script: they go beside it, as variables it refers to */
		ok = tmpl_render_shell(s->run, &scope, &sc, &err);
		shown = ok ? sc.display : tmpl_source(s->run);
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
		cwd_t = g->step->mods->cwd;
	if (!cwd_t)
		cwd_t = S->p->defaults.mods->cwd;
	if (ok && cwd_t)
		ok = tmpl_render(cwd_t, TMPL_TEXT, &scope, &cwd, &err);
	long rh = remote_host(S, n);
	if (ok)
		ok = build_env(S, n, t, &scope, &env, rh >= 0, &path_set, &err);
	for (size_t i = 0; ok && i < sc.n_env; i++) {
		ok = rh >= 0 || strlen(sc.env[i]) < ENV_ENTRY_MAX;
		if (!ok)
			err = xasprintf("the value behind %.*s is %zu bytes, more than a local command's environment entry "
					"can hold (128 KiB); pass it in a file",
					(int)strcspn(sc.env[i], "="), sc.env[i], strlen(sc.env[i]));
		else
			envv_set(&env, xstrdup(sc.env[i]), strcspn(sc.env[i], "=") + 1);
	}

	struct event e = {.type = EV_TASK_START};
	e.task = t->node->id;
	e.step = s->full_id;
	e.attempt = t->attempt;
	long index = -1;
	json_t *item = node_item(n, &index);
	struct buf itext = {0};
	if (item)
		value_to_text(item, &itext);
	e.item = item ? (itext.data ? itext.data : "") : NULL;
	e.label = t->run->label;
	e.command = shown ? shown : display.data ? display.data : "";
	char *penv = ok ? plan_env_text(&env) : NULL;
	e.env = penv;
	long hi = node_host(n);
	e.host = hi >= 0 ? S->p->inventory.hosts[hi].name : NULL;
	/* resume: what an earlier run did with this very command on this host is not done again */
	struct sched_reuse ru = {0};
	bool reused = ok && S->o.reuse && t->attempt == 1 && S->o.reuse(S->o.reuse_ud, e.task, e.command, e.env, e.host, &ru);
	if (!reused) {
		bus_emit(S->o.bus, &e);
		buf_free(&itext); /* before the spawn: its memory serves what the spawn allocates */
	}

	struct exec_status fail = {.exit_code = -1};
	char *msg = NULL;
	if (reused) {
		ru.step = e.step;
		ru.host = e.host;
		ru.item = e.item;
		ru.command = e.command;
		ru.env = e.env;
		if (step_of(n)->captured) {
			/* as the command's own output would be: capture_text takes one final newline off */
			buf_add(&t->run->cap[0], ru.out ? ru.out : "", ru.out_len);
			buf_addc(&t->run->cap[0], '\n');
			buf_add(&t->run->cap[1], ru.err ? ru.err : "", ru.err_len);
			buf_addc(&t->run->cap[1], '\n');
		}
	} else if (ok && rh >= 0) {
		char *input = NULL;
		char *line = remote_command(s, n, sc.script ? sc.script : "", argv, &env, cwd.len ? cwd.data : NULL,
					    &input, &msg);
		struct exec_spec spec = {.host = &S->xhosts[rh],
					 .command = line,
					 .input = input,
					 .grace_ms = n->g->kill_grace_ms,
					 .output = s->captured};
		struct exec_callbacks cb = {on_output, on_done, on_process};
		t->run->exec = S->o.ssh;
		if (line && t->run->exec)
			t->run->proc = t->run->exec->ops->start(t->run->exec, &spec, &cb, t, &msg);
		else if (line)
			msg = xstrdup("internal error: no SSH executor");
		if (t->run->proc && n->g->timeout_ms) {
			t->run->timer = timer_new(S, t);
			/* from now, not from the loop's cached time: a long turn must not shorten the timeout */
			uv_update_time(S->o.loop);
			uv_timer_start(t->run->timer, on_task_timer, n->g->timeout_ms, 0);
		}
		free(line);
		free(input);
	} else if (ok) {
		if (s->run) {
			/*
			 * The displayed form is simple only when every value is a plain word
			 * there, so its words are exactly what the shell would make of the script.
			 */
			bool direct = !strcmp(n->g->shell, "/bin/sh") && !path_set && exec_is_simple_command(sc.display);
			fallback = shell_argv(n->g->shell, sc.script);
			if (direct) {
				size_t nw;
				argv = exec_split_words(sc.display, &nw);
			} else {
				argv = fallback;
				fallback = NULL;
			}
		}
		struct exec_spec spec = {argv, fallback, env.v, cwd.len ? cwd.data : NULL, NULL, NULL, NULL,
					 n->g->kill_grace_ms, s->captured};
		struct exec_callbacks cb = {on_output, on_done, on_process};
		t->run->exec = S->o.exec;
		t->run->proc = t->run->exec->ops->start(t->run->exec, &spec, &cb, t, &msg);
		if (t->run->proc && n->g->timeout_ms) {
			t->run->timer = timer_new(S, t);
			/* from now, not from the loop's cached time: a long turn must not shorten the timeout */
			uv_update_time(S->o.loop);
			uv_timer_start(t->run->timer, on_task_timer, n->g->timeout_ms, 0);
		}
	} else {
		msg = xasprintf("cannot prepare the command: %s", err);
	}
	if (reused) {
		struct exec_status done = {.exit_code = 0};
		S->reused_task = t;
		S->reused = &ru;
		task_end(S, t, &done); /* t is gone after this */
		S->reused_task = NULL;
	} else if (!t->run->proc) {
		fail.error = msg;
		task_end(S, t, &fail);
	}
	buf_free(&itext);
	free(penv);
	free_vec(argv);
	free_vec(fallback);
	envv_free(&env);
	free(err);
	shell_cmd_free(&sc);
	buf_free(&display);
	buf_free(&cwd);
	free(msg);
}

/* True when t's executor can start it without passing the descriptor budget. */
static bool admitted(struct sched *S, struct task *t)
{
	long rh = remote_host(S, t->node);
	struct executor *x = rh >= 0 ? S->o.ssh : S->o.exec;
	return !x || !x->ops->admit || x->ops->admit(x, rh >= 0 ? &S->xhosts[rh] : NULL);
}

/*
 * t waits for descriptors: asks every executor to close what it keeps idle
 * (an idle connection gives its socket back at once), and says once why
 * tasks wait, with the numbers to raise.
 */
static void make_room(struct sched *S, struct task *t)
{
	long need = remote_host(S, t->node) >= 0 ? EXEC_FDS_SSH : EXEC_FDS_LOCAL;
	struct executor *xs[] = {S->o.ssh, S->o.exec};
	for (size_t i = 0; i < ARRAY_LEN(xs); i++)
		if (xs[i] && xs[i]->ops->trim && xs[i]->ops->trim(xs[i], need))
			return;
	if (S->fd_warned || !S->o.fds)
		return;
	S->fd_warned = true;
	const struct exec_fds *f = S->o.fds;
	char hard[48] = "unlimited";
	if (f->hard >= 0)
		snprintf(hard, sizeof hard, "%ld", f->hard);
	bus_warn(S->o.bus, false, NULL,
		 "the file-descriptor limit (%ld; hard limit %s) lets about %ld local commands or %ld SSH connections "
		 "run at once: the others wait their turn (raise it with ulimit -n to run more at once)",
		 f->limit, hard, f->budget / EXEC_FDS_LOCAL, f->budget / EXEC_FDS_SSH);
}

static void on_fds_room(uv_timer_t *h)
{
	struct sched *S = h->data;
	struct qitem *q;
	while ((q = heap_pop(&S->fd_wait))) {
		((struct task *)q)->state = T_QUEUED;
		heap_push(&S->ready, q);
	}
	pump(S);
}

/*
 * Called by an executor as it gives descriptors back, perhaps from deep in
 * its own bookkeeping: the waiting tasks are tried again on the loop's next
 * turn, never from inside the executor.
 */
void fds_room(void *ud)
{
	struct sched *S = ud;
	if (S->fd_wait.n && !uv_is_active((uv_handle_t *)&S->fd_timer))
		uv_timer_start(&S->fd_timer, on_fds_room, 0, 0);
}

/* Starts every ready task whose limiters all have room, highest priority first. */
void pump(struct sched *S)
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
		if (!admitted(S, t)) {
			t->state = T_PARKED;
			heap_push(&S->fd_wait, &t->q);
			if (from)
				promote(S, from);
			make_room(S, t);
			continue;
		}
		struct limiter *small[16];
		unsigned nl;
		struct limiter **ls = limiter_list(S, n, true, small, &nl);
		int full = limiters_try_take(ls, nl);
		struct limiter *blocked = full >= 0 ? ls[full] : NULL;
		bool took_from = false;
		for (unsigned i = 0; i < nl && full < 0; i++)
			took_from |= ls[i] == from;
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
		/* promoted for a host slot its host no longer needed (another task of it runs now): hand it on */
		if (from && !took_from)
			promote(S, from);
		task_spawn(S, t);
	}
	S->pumping = false;
}


/* A second interrupt: every running process group gets SIGKILL now. */
void hard_kill(struct sched *S)
{
	for (struct task *t = S->running; t; t = t->run->next)
		if (t->run->copy) {
			t->cancel_requested = true;
			exec_copy_stop(t->run->copy);
		} else if (t->run->proc) {
			t->kill_phase = 2;
			if (t->run->exec->ops->signal(t->run->proc, SIGKILL))
				t->cancel_requested = true; /* stopped by the user, not failed */
		}
}
