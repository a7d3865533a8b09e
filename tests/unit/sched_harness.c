/*
 * sched_harness.c — runs a plan through sched_run() with a fake executor and
 * a recording sink (sched_harness.h), and checks the invariants every run
 * must keep. Used by test_sched.c; no tests of its own.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "sched/sched.h"
#include "sched_harness.h"

/* ---- the log ---- */

/* A new, zeroed record at the end of the log, stamped with the loop's time. */
static struct rec *rec_add(struct harness *h, enum rec_kind kind)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 256;
		h->v = xrealloc(h->v, h->cap * sizeof *h->v);
	}
	struct rec *r = &h->v[h->n++];
	memset(r, 0, sizeof *r);
	r->kind = kind;
	/* loop time, as cached for this turn: a timer started now fires no sooner than t_ms + its timeout */
	r->t_ms = uv_now(&h->loop) - h->t0;
	return r;
}

/* A copy of s, or NULL for NULL. */
static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* ---- the fake executor ---- */

#define HANG_MS (3600u * 1000u)

/* A fake process: one timer says when it exits, or dies of the signal it got. */
struct fake_proc {
	struct fake *F;
	uv_timer_t timer;
	struct exec_callbacks cb;
	void *ud;
	size_t index; /* in start order */
	char *task;   /* the task it runs */
	char *say;    /* say: */
	int exit_code;
	int attempt, ok_at;
	char *item;     /* BATON_ITEM */
	bool fail_item; /* failitem: named this process's item */
	uint64_t wait_ms, term_ms;
	bool hang, noterm;
	bool dying, done;
	int kill_sig; /* what it dies of once dying */
};

/* The command's words: argv, or the words of the script when it is `SHELL -c SCRIPT` (a remote one's too). */
static char **command_words(const struct exec_spec *spec, size_t *n)
{
	if (spec->host) {
		/* a remote command line: [eval "$(cat)";] [cd DIR &&] exec SHELL -c SCRIPT */
		size_t nl;
		char **l = exec_split_words(spec->command, &nl);
		char **w = NULL;
		for (size_t i = 0; i + 1 < nl && !w; i++)
			if (!strcmp(l[i], "-c"))
				w = exec_split_words(l[i + 1], n);
		for (size_t i = 0; i < nl; i++)
			free(l[i]);
		free(l);
		if (!w) {
			*n = 0;
			w = xcalloc(1, sizeof *w);
		}
		return w;
	}
	char *const *a = spec->argv;
	if (a[0] && a[1] && !strcmp(a[1], "-c") && a[2])
		return exec_split_words(a[2], n);
	size_t k = 0;
	while (a[k])
		k++;
	char **w = xcalloc(k + 1, sizeof *w);
	for (size_t i = 0; i < k; i++)
		w[i] = xstrdup(a[i]);
	*n = k;
	return w;
}

/* The value of NAME in envp, or NULL. */
static const char *env_get(char *const *envp, const char *name)
{
	size_t l = strlen(name);
	for (char *const *e = envp; e && *e; e++)
		if (!strncmp(*e, name, l) && (*e)[l] == '=')
			return *e + l + 1;
	return NULL;
}

/* Its timer closed: the process is freed. */
static void proc_close_cb(uv_handle_t *hd)
{
	struct fake_proc *p = hd->data;
	free(p->task);
	free(p->say);
	free(p->item);
	free(p);
}

/* The process ends: recorded, reported to the scheduler, then its timer closed. */
static void proc_end(struct fake_proc *p, int code, int sig)
{
	if (p->done)
		return;
	p->done = true;
	uv_timer_stop(&p->timer);
	struct harness *h = p->F->h;
	struct rec *r = rec_add(h, REC_DONE);
	r->id = dup_or_null(p->task);
	r->proc = p->index;
	r->exit_code = code;
	r->sig = sig;
	p->F->n_live--;
	if (p->say && !sig) {
		char *line = xasprintf("%s\n", p->say);
		p->cb.output(p->ud, 1, line, strlen(line));
		free(line);
	}
	struct exec_status st = {.exit_code = code, .signal = sig};
	p->cb.done(p->ud, &st);
	exec_fds_give(p->F->fds, EXEC_FDS_LOCAL);
	uv_close((uv_handle_t *)&p->timer, proc_close_cb);
}

/* Its time is up: it exits with its code, or 0 from attempt okat: on. */
static void on_proc_timer(uv_timer_t *t)
{
	struct fake_proc *p = t->data;
	if (p->dying) {
		proc_end(p, -1, p->kill_sig);
		return;
	}
	if (p->hang) {
		uv_timer_start(&p->timer, on_proc_timer, HANG_MS, 0);
		return;
	}
	bool ok = p->ok_at && p->attempt >= p->ok_at;
	proc_end(p, p->fail_item ? 1 : ok ? 0 : p->exit_code, 0);
}

/* Sets what the process does from its command words (sched_harness.h). */
static void fake_parse(struct fake_proc *p, char **w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(w[i], "w:", 2))
			p->wait_ms = strtoull(w[i] + 2, NULL, 10);
		else if (!strncmp(w[i], "x:", 2))
			p->exit_code = atoi(w[i] + 2);
		else if (!strncmp(w[i], "okat:", 5))
			p->ok_at = atoi(w[i] + 5);
		else if (!strncmp(w[i], "say:", 4))
			p->say = xstrdup(w[i] + 4);
		else if (!strncmp(w[i], "termwait:", 9))
			p->term_ms = strtoull(w[i] + 9, NULL, 10);
		else if (!strncmp(w[i], "failitem:", 9))
			p->fail_item |= p->item && !strcmp(p->item, w[i] + 9);
		else if (!strcmp(w[i], "hang"))
			p->hang = true;
		else if (!strcmp(w[i], "hang1"))
			p->hang |= p->attempt <= 1;
		else if (!strcmp(w[i], "noterm"))
			p->noterm = true;
	}
}

/* True when word is one of the n words of w. */
static bool has_word(char **w, size_t n, const char *word)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(w[i], word))
			return true;
	return false;
}

/* The words joined by spaces (caller frees). */
static char *join_words(char **w, size_t n)
{
	struct buf b = {0};
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addc(&b, ' ');
		buf_adds(&b, w[i]);
	}
	return b.data ? buf_detach(&b) : xstrdup("");
}

/* Frees the n words of w and w. */
static void free_words(char **w, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(w[i]);
	free(w);
}

/* A process may start while its descriptors fit the budget (h_limit_fds), as a local one's do. */
static bool fake_admit(struct executor *x, const struct exec_host *host)
{
	(void)host;
	return exec_fds_fit(((struct fake *)x)->fds, EXEC_FDS_LOCAL);
}

/* Starts a fake process: recorded with the task whose task.start just went by. */
static struct exec_proc *fake_start(struct executor *x, const struct exec_spec *spec, const struct exec_callbacks *cb,
				    void *ud, char **err)
{
	struct fake *F = (struct fake *)x;
	struct harness *h = F->h;
	size_t n;
	char **w = command_words(spec, &n);
	struct rec *r = rec_add(h, REC_START);
	r->id = dup_or_null(h->last_task);
	r->cmd = join_words(w, n);
	r->remote = spec->host != NULL;
	const char *attempt = env_get(spec->envp, "BATON_ATTEMPT");
	r->attempt = attempt ? atoi(attempt) : 0;
	r->proc = F->n_started;
	if (has_word(w, n, "nostart")) {
		free_words(w, n);
		*err = xstrdup("fake: cannot start");
		return NULL;
	}
	struct fake_proc *p = xcalloc(1, sizeof *p);
	p->F = F;
	p->cb = *cb;
	p->ud = ud;
	p->index = F->n_started++;
	p->task = dup_or_null(h->last_task);
	p->attempt = r->attempt;
	p->item = dup_or_null(env_get(spec->envp, "BATON_ITEM"));
	fake_parse(p, w, n);
	free_words(w, n);
	exec_fds_take(F->fds, EXEC_FDS_LOCAL);
	F->n_live++;
	uv_timer_init(F->loop, &p->timer);
	p->timer.data = p;
	/* a live process keeps the loop alive, as a real one's pipes do: a hang is an hour's timer */
	uv_timer_start(&p->timer, on_proc_timer, p->hang ? HANG_MS : p->wait_ms, 0);
	return (struct exec_proc *)p;
}

/*
 * A signal to the process group: recorded; SIGTERM (unless noterm), SIGINT
 * and SIGKILL end it on the loop. True: the process had not ended yet.
 */
static bool fake_signal(struct exec_proc *ep, int sig)
{
	struct fake_proc *p = (struct fake_proc *)ep;
	struct rec *r = rec_add(p->F->h, REC_SIGNAL);
	r->id = dup_or_null(p->task);
	r->proc = p->index;
	r->sig = sig;
	for (size_t i = 0; i < p->F->h->n_trig; i++) {
		struct trigger *t = &p->F->h->trig[i];
		if (t->signalled && !t->fired && p->task && !strcmp(t->id, p->task)) {
			t->fired = true;
			raise(t->sig);
		}
	}
	if (p->done)
		return false;
	if (sig == SIGKILL) {
		p->dying = true;
		p->kill_sig = SIGKILL;
		uv_timer_start(&p->timer, on_proc_timer, 0, 0);
	} else if ((sig == SIGTERM && !p->noterm) || sig == SIGINT) {
		if (p->dying)
			return true;
		p->dying = true;
		p->kill_sig = sig;
		uv_timer_start(&p->timer, on_proc_timer, p->term_ms, 0);
	}
	return true;
}

/* Nothing to free: the fake lives in the harness. */
static void fake_free(struct executor *x)
{
	(void)x; /* every process closed its own timer */
}

static const struct executor_ops fake_ops = {fake_admit, NULL, fake_start, fake_signal, fake_free};

/* ---- the recording sink ---- */

/* Records the event (its strings copied) and raises the signal a trigger waits for. */
static void sink_emit(struct sink *s, const struct event *e)
{
	struct harness *h = (struct harness *)((char *)s - offsetof(struct harness, sink));
	struct rec *r = rec_add(h, REC_EVENT);
	r->type = e->type;
	r->seq = e->seq;
	switch (e->type) {
	case EV_TASK_START:
	case EV_TASK_OUTPUT:
	case EV_TASK_RETRY:
	case EV_TASK_END:
		r->id = dup_or_null(e->task);
		break;
	default:
		r->id = dup_or_null(e->step);
		break;
	}
	r->cmd = e->type == EV_TASK_START ? dup_or_null(e->command) : NULL;
	r->barrier = dup_or_null(e->barrier);
	if (e->labels) {
		struct buf l = {0};
		for (size_t i = 0; i < e->n_instances; i++)
			buf_printf(&l, "%s%s", i ? "," : "", e->labels[i]);
		r->label = buf_detach(&l);
	} else {
		r->label = dup_or_null(e->type == EV_WARNING ? e->message : e->label);
	}
	r->reason = dup_or_null(e->type == EV_TASK_OUTPUT ? e->line : e->reason);
	r->status = e->status;
	r->attempt = e->attempt;
	r->exit_code = e->exit_code;
	r->run_exit = e->exit_code_run;
	r->batch = e->batch;
	r->arrived = e->arrived;
	r->expected = e->expected;
	r->delay_ms = e->delay_ms;
	r->tolerated = e->tolerated;
	memcpy(r->counts, e->counts, sizeof r->counts);
	r->n_tolerated = e->n_tolerated;
	r->done = e->done;
	r->failed = e->failed;
	r->total = e->total;
	if (e->type == EV_TASK_START) {
		free(h->last_task);
		h->last_task = xstrdup(e->task);
	}
	/* a signal after run.end (or at a late progress) would find no handler left to catch it */
	if (e->type == EV_RUN_END || e->type == EV_PROGRESS)
		return;
	for (size_t i = 0; i < h->n_trig; i++) {
		struct trigger *t = &h->trig[i];
		if (t->signalled)
			continue;
		bool hit = t->seq ? e->seq == t->seq
				  : e->type == t->type && (!t->id || (r->id && !strcmp(t->id, r->id)));
		if (hit && !t->fired) {
			t->fired = true;
			raise(t->sig); /* uv_signal hands it to the scheduler on the loop's next turn */
		}
	}
}

/* Nothing to close: the harness owns what it recorded. */
static void sink_close(struct sink *s)
{
	(void)s;
}

/* ---- running ---- */

struct harness *h_new(const char *yaml)
{
	return h_new_with(yaml, &(struct graph_options){0});
}

struct harness *h_new_with(const char *yaml, const struct graph_options *go)
{
	struct harness *h = xcalloc(1, sizeof *h);
	h->yaml = xstrdup(yaml);
	h->p = th_load_ok(yaml);
	struct diags d = {0};
	h->g = graph_compile(h->p, go, &d);
	if (!h->g) {
		char *t = th_diags_text(&d);
		cr_assert_fail("graph_compile failed:\n%s", t);
	}
	diags_free(&d);
	return h;
}

void h_free(struct harness *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].id);
		free(h->v[i].cmd);
		free(h->v[i].barrier);
		free(h->v[i].reason);
		free(h->v[i].label);
	}
	free(h->v);
	free(h->last_task);
	free(h->err);
	graph_free(h->g);
	plan_free(h->p);
	free(h->yaml);
	free(h);
}

/* ---- triggers and limits (sched_harness.h) ---- */

void h_signal_at(struct harness *h, enum event_type type, const char *id, int sig)
{
	cr_assert_lt(h->n_trig, 4);
	h->trig[h->n_trig++] = (struct trigger){.type = type, .id = id, .sig = sig};
}

void h_signal_at_seq(struct harness *h, uint64_t seq, int sig)
{
	cr_assert_lt(h->n_trig, 4);
	h->trig[h->n_trig++] = (struct trigger){.seq = seq, .sig = sig};
}

void h_signal_when_signalled(struct harness *h, const char *id, int sig)
{
	cr_assert_lt(h->n_trig, 4);
	h->trig[h->n_trig++] = (struct trigger){.id = id, .signalled = true, .sig = sig};
}

void h_limit_fds(struct harness *h, long budget)
{
	h->use_fds = true;
	h->fds = (struct exec_fds){.limit = budget + EXEC_FDS_RESERVE, .hard = -1, .budget = budget};
}

/*
 * A run that hangs (a wait nobody cancels) must fail its test, not hold the
 * suite: every run here takes well under a second, so after H_BOUND_S the
 * alarm says so on the real stderr and aborts the test.
 */
#define H_BOUND_S 20
static int h_stderr = 2;

static void on_alarm(int sig)
{
	(void)sig;
	static const char m[] = "sched_harness: the run did not end within 20 s: the scheduler hangs\n";
	if (write(h_stderr, m, sizeof m - 1) < 0)
		_exit(3);
	abort();
}

/* Reads what fd holds from its start (caller frees). */
static char *slurp(int fd)
{
	struct buf b = {0};
	char chunk[4096];
	ssize_t r;
	lseek(fd, 0, SEEK_SET);
	while ((r = read(fd, chunk, sizeof chunk)) > 0)
		buf_add(&b, chunk, (size_t)r);
	return b.data ? buf_detach(&b) : xstrdup("");
}

int h_run(struct harness *h)
{
	cr_assert_eq(uv_loop_init(&h->loop), 0);
	bus_init(&h->bus, "test-run", NULL, 0);
	h->sink = (struct sink){.emit = sink_emit, .close = sink_close};
	bus_add(&h->bus, &h->sink);
	h->fake = (struct fake){.base = {&fake_ops}, .h = h, .loop = &h->loop, .fds = h->use_fds ? &h->fds : NULL};
	/* the fake runs remote hosts' commands too (spec.host set): the plan's inventory is never dialled */
	struct sched_options o = {.loop = &h->loop, .bus = &h->bus, .exec = &h->fake.base, .ssh = &h->fake.base,
				  .fds = h->use_fds ? &h->fds : NULL, .run_id = "test-run"};
	/* what baton says on stderr (a stall, a warning) is kept for the checks */
	FILE *tmp = tmpfile();
	cr_assert_not_null(tmp);
	fflush(stderr);
	int saved = dup(2);
	cr_assert_geq(saved, 0);
	cr_assert_geq(dup2(fileno(tmp), 2), 0);
	h_stderr = saved;
	struct sigaction sa = {.sa_handler = on_alarm};
	cr_assert_eq(sigaction(SIGALRM, &sa, NULL), 0);
	alarm(H_BOUND_S);
	uv_update_time(&h->loop);
	h->t0 = uv_now(&h->loop);
	uint64_t wall = uv_hrtime();
	h->rc = sched_run(h->g, &o);
	h->elapsed_ms = (uv_hrtime() - wall) / 1000000u;
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	h->err = slurp(fileno(tmp));
	fclose(tmp);
	h->fake.base.ops->free(&h->fake.base);
	bus_close(&h->bus);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	alarm(0);
	h_stderr = 2;
	cr_assert_eq(uv_loop_close(&h->loop), 0, "handles left open on the loop after the run");
	return h->rc;
}

/* ---- queries ---- */

/* A signal's short name for the dump. */
static const char *sig_name(int sig)
{
	return sig == SIGTERM ? "TERM" : sig == SIGKILL ? "KILL" : sig == SIGINT ? "INT" : "?";
}

char *h_dump(const struct harness *h)
{
	struct buf b = {0};
	for (size_t i = 0; i < h->n; i++) {
		const struct rec *r = &h->v[i];
		buf_printf(&b, "%4zu %5llums ", i, (unsigned long long)r->t_ms);
		switch (r->kind) {
		case REC_EVENT:
			buf_printf(&b, "#%llu %s %s", (unsigned long long)r->seq, event_type_name(r->type),
				   r->id ? r->id : "-");
			if (r->type == EV_STEP_END || r->type == EV_TASK_END || r->type == EV_RUN_END)
				buf_printf(&b, " %s", status_name(r->status));
			if (r->type == EV_TASK_START || r->type == EV_TASK_END || r->type == EV_TASK_RETRY)
				buf_printf(&b, " attempt=%d", r->attempt);
			if (r->type == EV_RUN_END)
				buf_printf(&b, " exit=%d", r->run_exit);
			if (r->barrier)
				buf_printf(&b, " %s %llu/%llu", r->barrier, (unsigned long long)r->arrived,
					   (unsigned long long)r->expected);
			if (r->reason)
				buf_printf(&b, " (%s)", r->reason);
			if (r->label)
				buf_printf(&b, " [%s]", r->label);
			break;
		case REC_START:
			buf_printf(&b, "  fake start #%zu %s: %s", r->proc, r->id ? r->id : "-", r->cmd);
			break;
		case REC_SIGNAL:
			buf_printf(&b, "  fake SIG%s -> #%zu %s", sig_name(r->sig), r->proc, r->id ? r->id : "-");
			break;
		case REC_DONE:
			buf_printf(&b, "  fake done #%zu %s exit=%d sig=%d", r->proc, r->id ? r->id : "-", r->exit_code,
				   r->sig);
			break;
		}
		buf_addc(&b, '\n');
	}
	if (h->err && *h->err)
		buf_printf(&b, "stderr: %s", h->err);
	return b.data ? buf_detach(&b) : xstrdup("(nothing)");
}

/* True when r is an event of type with id (NULL: any). */
static bool rec_is(const struct rec *r, enum event_type type, const char *id)
{
	return r->kind == REC_EVENT && r->type == type && (!id || (r->id && !strcmp(r->id, id)));
}

long h_find(const struct harness *h, enum event_type type, const char *id, size_t nth)
{
	for (size_t i = 0; i < h->n; i++)
		if (rec_is(&h->v[i], type, id) && nth-- == 0)
			return (long)i;
	return -1;
}

size_t h_count(const struct harness *h, enum event_type type, const char *id)
{
	size_t c = 0;
	for (size_t i = 0; i < h->n; i++)
		c += rec_is(&h->v[i], type, id);
	return c;
}

long h_find_fake(const struct harness *h, enum rec_kind kind, const char *id)
{
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].kind == kind && (!id || (h->v[i].id && !strcmp(h->v[i].id, id))))
			return (long)i;
	return -1;
}

enum status h_status(const struct harness *h, const char *id)
{
	size_t c = h_count(h, EV_STEP_END, id);
	if (c != 1) {
		char *d = h_dump(h);
		cr_assert_fail("step %s: %zu step.end events, expected 1\n%s", id, c, d);
	}
	return h->v[h_find(h, EV_STEP_END, id, 0)].status;
}

const struct rec *h_run_end(const struct harness *h)
{
	size_t c = h_count(h, EV_RUN_END, NULL);
	if (c != 1) {
		char *d = h_dump(h);
		cr_assert_fail("%zu run.end events, expected 1\n%s", c, d);
	}
	return &h->v[h_find(h, EV_RUN_END, NULL, 0)];
}

char *h_started(const struct harness *h)
{
	struct buf b = {0};
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].kind == REC_START)
			buf_printf(&b, "%s%s", b.len ? "," : "", h->v[i].id ? h->v[i].id : "?");
	return b.data ? buf_detach(&b) : xstrdup("");
}

/* ---- invariants ---- */

/* Fails the test with msg and the whole log. */
#define H_FAIL(h, ...)                                                                                   \
	do {                                                                                             \
		char *h_d_ = h_dump(h);                                                                  \
		char *h_m_ = xasprintf(__VA_ARGS__);                                                     \
		cr_assert_fail("%s\nplan:\n%s\nlog:\n%s", h_m_, (h)->yaml, h_d_);                        \
	} while (0)

/* The index of id's one step.end, or -1; fails when there are more. */
static long one_end(const struct harness *h, const char *id)
{
	size_t c = h_count(h, EV_STEP_END, id);
	if (c > 1)
		H_FAIL(h, "step %s ended %zu times", id, c);
	return h_find(h, EV_STEP_END, id, 0);
}

/* The walk of the plan's steps over the log. */
struct walk {
	const struct harness *h;
	long run_end;
	size_t ends_seen; /* step.end events accounted for by the walk */
};

static void check_node(struct walk *W, const struct gnode *g, const char *suffix, bool must, long parent_end);

/* The node's own end: once, after its start, before its parent's end (unless async) and the run's. */
static long check_own(struct walk *W, const struct gnode *g, const char *id, bool must, long parent_end)
{
	const struct harness *h = W->h;
	long end = one_end(h, id);
	long start = h_find(h, EV_STEP_START, id, 0);
	if (h_count(h, EV_STEP_START, id) > 1)
		H_FAIL(h, "step %s started %zu times", id, h_count(h, EV_STEP_START, id));
	if (end >= 0)
		W->ends_seen++;
	if (must && end < 0)
		H_FAIL(h, "step %s never ended", id);
	if (start >= 0 && end < 0)
		H_FAIL(h, "step %s started and never ended", id);
	if (start >= 0 && end < start)
		H_FAIL(h, "step %s ended before it started", id);
	if (end >= 0 && end > W->run_end)
		H_FAIL(h, "step %s ended after run.end", id);
	if (end >= 0 && parent_end >= 0 && !g->step->mods->async && end > parent_end)
		H_FAIL(h, "step %s ended after the step that holds it", id);
	return end;
}

/*
 * A fan-out's instances (a literal for_each list, the hosts of `on`, or both):
 * each ends, and the body below each one that ended.
 */
static void check_instances(struct walk *W, const struct gnode *g, const char *id, const char *suffix, long end)
{
	const struct step *s = g->step;
	if (s->fan->for_each_expr)
		H_FAIL(W->h, "the invariant walk knows only literal for_each lists (step %s)", id);
	size_t n_hosts = s->fan->on ? s->fan->n_hosts : 1;
	size_t n_items = s->fan->for_each ? json_array_size(s->fan->for_each) : 1;
	for (size_t hi = 0; hi < n_hosts; hi++)
		for (size_t k = 0; k < n_items; k++) {
			struct buf in = {0};
			if (s->fan->on)
				buf_printf(&in, "@%s", W->h->p->inventory.hosts[s->fan->hosts[hi]].name);
			if (s->fan->for_each)
				buf_printf(&in, "#%zu", k);
			const char *ins = in.data ? in.data : "";
			char *iid = xasprintf("%s%s", id, ins);
			char *isuf = xasprintf("%s%s", suffix, ins);
			long iend = check_own(W, g, iid, true, end);
			for (size_t i = 0; i < g->nkids; i++)
				check_node(W, g->kids[i], isuf, iend >= 0, iend);
			free(iid);
			free(isuf);
			buf_free(&in);
		}
}

/*
 * Step g as the runtime node full_id+suffix, and everything below it: a node
 * that ended holds children that ended (a for_each's instances exist only
 * once it started); handlers end before the step they belong to.
 */
static void check_node(struct walk *W, const struct gnode *g, const char *suffix, bool must, long parent_end)
{
	const struct harness *h = W->h;
	char *id = xasprintf("%s%s", g->step->full_id, suffix);
	long end = check_own(W, g, id, must, parent_end);
	bool started = h_find(h, EV_STEP_START, id, 0) >= 0;
	if (step_is_foreach(g->step)) {
		if (started)
			check_instances(W, g, id, suffix, end);
	} else {
		for (size_t i = 0; i < g->nkids; i++)
			check_node(W, g->kids[i], suffix, end >= 0, end);
	}
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (g->handlers[k]) {
			char *hid = xasprintf("%s%s", g->handlers[k]->step->full_id, suffix);
			if (h_find(h, EV_STEP_START, hid, 0) >= 0 && !started)
				H_FAIL(h, "handler %s ran for step %s, which never started", hid, id);
			free(hid);
			check_node(W, g->handlers[k], suffix, false, end);
		}
	free(id);
}

/* Every task.start has exactly one task.end of the same attempt after it, and no task.end is left over. */
static void check_tasks(const struct harness *h)
{
	size_t ends = 0;
	for (size_t i = 0; i < h->n; i++) {
		const struct rec *s = &h->v[i];
		if (!rec_is(s, EV_TASK_START, NULL))
			continue;
		size_t n = 0;
		for (size_t k = 0; k < h->n; k++) {
			const struct rec *e = &h->v[k];
			if (rec_is(e, EV_TASK_END, s->id) && e->attempt == s->attempt) {
				n++;
				if (k < i)
					H_FAIL(h, "task %s attempt %d ended before it started", s->id, s->attempt);
			}
		}
		if (n != 1)
			H_FAIL(h, "task %s attempt %d: %zu task.end events, expected 1", s->id, s->attempt, n);
		ends++;
	}
	if (ends != h_count(h, EV_TASK_END, NULL))
		H_FAIL(h, "%zu task.end events for %zu task.start events", h_count(h, EV_TASK_END, NULL), ends);
}

/* Every fake process that started ended exactly once, and none is left. */
static void check_fake(const struct harness *h)
{
	size_t *done = xcalloc(h->fake.n_started + 1, sizeof *done);
	for (size_t i = 0; i < h->n; i++)
		if (h->v[i].kind == REC_DONE)
			done[h->v[i].proc]++;
	for (size_t p = 0; p < h->fake.n_started; p++)
		if (done[p] != 1)
			H_FAIL(h, "fake process #%zu ended %zu times", p, done[p]);
	free(done);
	if (h->fake.n_live)
		H_FAIL(h, "%zu fake processes still running after the run", h->fake.n_live);
}

/*
 * The counts are of tasks, one unit: the last progress (just before run.end)
 * has every task done (done == total), and run.end's counts add up to it.
 */
static void check_counts(const struct harness *h, long run_end)
{
	if (run_end < 1 || !rec_is(&h->v[run_end - 1], EV_PROGRESS, NULL))
		H_FAIL(h, "run.end does not follow a progress event");
	const struct rec *p = &h->v[run_end - 1], *e = &h->v[run_end];
	uint64_t sum = e->n_tolerated;
	for (int i = 0; i < ST__COUNT; i++)
		sum += e->counts[i];
	if (p->done != p->total)
		H_FAIL(h, "the last progress says %llu of %llu tasks done", (unsigned long long)p->done,
		       (unsigned long long)p->total);
	if (sum != p->done)
		H_FAIL(h, "run.end counts %llu tasks, progress %llu", (unsigned long long)sum, (unsigned long long)p->done);
	if (p->n_tolerated != e->n_tolerated)
		H_FAIL(h, "progress says %llu tolerated, run.end %llu", (unsigned long long)p->n_tolerated,
		       (unsigned long long)e->n_tolerated);
}

void h_check_invariants(const struct harness *h)
{
	if (!h->n || !rec_is(&h->v[0], EV_RUN_START, NULL))
		H_FAIL(h, "the first event is not run.start");
	if (h_count(h, EV_RUN_START, NULL) != 1)
		H_FAIL(h, "%zu run.start events", h_count(h, EV_RUN_START, NULL));
	long run_end = (long)(h_run_end(h) - h->v);
	if (run_end != (long)h->n - 1)
		H_FAIL(h, "something happened after run.end");
	if (strstr(h->err, "stalled"))
		H_FAIL(h, "the scheduler stalled");
	struct walk W = {h, run_end, 0};
	const struct gnode *root = &h->g->nodes[0];
	for (size_t i = 0; i < root->nkids; i++)
		check_node(&W, root->kids[i], "", true, run_end);
	for (int k = 0; k < HANDLER__COUNT; k++)
		if (root->handlers[k])
			check_node(&W, root->handlers[k], "", false, run_end);
	if (W.ends_seen != h_count(h, EV_STEP_END, NULL))
		H_FAIL(h, "%zu step.end events, of which %zu belong to the plan's steps", h_count(h, EV_STEP_END, NULL),
		       W.ends_seen);
	check_tasks(h);
	check_fake(h);
	check_counts(h, run_end);
}
