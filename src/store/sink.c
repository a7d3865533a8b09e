/*
 * sink.c — the run store's writer: one more sink of the event bus. Tasks go
 * into runs.db as they start and end, the whole event stream into
 * runs/RUN_ID/events.jsonl (the same lines as --events).
 *
 * Durability: writes gather in one transaction, committed once per turn of
 * the loop (bus_flush), and earlier wherever the rule needs it — a task's
 * end is committed before the next step, batch or barrier release starts
 * (anything that can depend on it starts with one of those) and before any
 * output stream of the run writes a byte (bus_barrier), so no sink shows an
 * end the store does not hold. A task that starts beside it in the same
 * fan-out does not wait for the commit: it cannot depend on its sibling.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "store/internal.h"
#include "util/util.h"

enum { Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_INSERT, Q_END, Q_RUN_END, Q_RUN_NO, Q_STEP, Q__COUNT };

static const char *const sql[Q__COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE", /* a writer from the start: never a read upgraded, which cannot wait */
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_INSERT] = "INSERT OR REPLACE INTO tasks (k, id, step, host, item, attempt, status, exit_code, signal,"
		     " reason, start_ms, end_ms, duration_ms, command, out, err, pgid, pgid_start_ms, remote_host,"
		     " remote_pgid, reused, env_hash, outputs, label, tolerated)"
		     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,"
		     " ?20, ?21, ?22, ?23, ?24, ?25)",
	[Q_END] = "UPDATE tasks SET status = ?2, exit_code = ?3, signal = ?4, reason = ?5, end_ms = ?6,"
		  " duration_ms = ?7, out = ?8, err = ?9, outputs = ?10, tolerated = ?11 WHERE k = ?1",
	[Q_RUN_END] = "UPDATE runs SET state = ?2, exit_code = ?3, end_ms = ?4, n_success = ?5, n_failed = ?6,"
		      " n_timeout = ?7, n_cancelled = ?8, n_skipped = ?9, n_tolerated = ?10 WHERE id = ?1",
	[Q_RUN_NO] = "SELECT rowid FROM runs WHERE id = ?1",
	[Q_STEP] = "INSERT INTO tasks (k, id, kind, depth, status, reason, start_ms, end_ms, duration_ms, label)"
		   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
};

/*
 * A running task. Its row is written at the next commit (with its process
 * group, known by then), or, when it ends first, once with its end.
 */
struct running {
	char *id, *step, *host, *item, *command, *label;
	char env_hash[33]; /* of event.env (store_text_hash); "" when it had none */
	int attempt;
	uint64_t start_ms;
	int64_t k;
	bool written;
	long pgid;
	uint64_t pgid_start_ms;
	bool remote;
	bool listed;              /* in the list of those not written yet */
	struct running *next_new;
};

struct store_sink {
	struct sink base;
	struct store *st;
	struct bus *bus;
	struct sink *json; /* events.jsonl */
	sqlite3_stmt *q[Q__COUNT];
	char *run_id;
	int64_t base_k;  /* the run's rowid << 32 */
	uint32_t seq;    /* rows so far: tasks as they start, steps as they end */
	char *last_end; /* the id of the last task that ended: a step of one task is that task's row */
	/* running tasks by id: open addressing, a power of two */
	struct running **tab;
	size_t cap, used, tomb;
	struct running *unwritten;
	bool in_txn;    /* writes wait in an open transaction */
	bool ended;     /* ... and a task's end is among them */
	bool broken;    /* a write failed: said once, the run goes on unrecorded */
	bool committing; /* inside commit: a warning it causes must not commit again */
	bool own_write;  /* writing events.jsonl, which is the store's own: no barrier for it */
	bool urgent;     /* what waits must be committed at the end of this turn (a remote process group) */
	uv_timer_t *tick; /* commits what waits, at least every COMMIT_MS */
};

/*
 * What no output has shown yet and nothing depends on waits at most this
 * long for its commit: what `status` in another terminal sees is that
 * fresh, and a crash loses at most that much of what no one was told of
 * (which resume runs again).
 */
#define COMMIT_MS 100

#define TOMB ((struct running *)&tomb_mark)
static const char tomb_mark;

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

/* The slot of id: where it is, or (absent) where it would go. */
static size_t slot(const struct store_sink *S, const char *id, bool for_insert)
{
	size_t m = S->cap - 1, i = hash(id) & m, free_at = SIZE_MAX;
	for (;; i = (i + 1) & m) {
		struct running *r = S->tab[i];
		if (!r)
			return for_insert && free_at != SIZE_MAX ? free_at : i;
		if (r == TOMB) {
			if (free_at == SIZE_MAX)
				free_at = i;
		} else if (!strcmp(r->id, id)) {
			return i;
		}
	}
}

static void tab_grow(struct store_sink *S)
{
	struct running **old = S->tab;
	size_t n = S->cap;
	S->cap = n ? n * 2 : 64;
	while (S->used * 2 >= S->cap)
		S->cap *= 2;
	S->tab = xcalloc(S->cap, sizeof *S->tab);
	S->tomb = 0;
	for (size_t i = 0; i < n; i++)
		if (old[i] && old[i] != TOMB)
			S->tab[slot(S, old[i]->id, true)] = old[i];
	free(old);
}

static void running_free(struct running *r)
{
	free(r->id);
	free(r->step);
	free(r->host);
	free(r->item);
	free(r->command);
	free(r->label);
	free(r);
}

/* A write failed: the run goes on, unrecorded from here, and says so once. */
static void broken(struct store_sink *S, const char *what)
{
	if (S->broken)
		return;
	S->broken = true;
	char *msg = xstrdup(sqlite3_errmsg(S->st->db));
	if (S->in_txn) {
		sqlite3_step(S->q[Q_ROLLBACK]);
		sqlite3_reset(S->q[Q_ROLLBACK]);
	}
	S->in_txn = false;
	bus_warn(S->bus, false, NULL, "the run store (%s) cannot %s: %s; the run goes on, and is not recorded from here",
		 S->st->dir, what, msg);
	free(msg);
}

/* Runs statement k with what was bound; false (said once) when it failed. */
static bool step(struct store_sink *S, int k)
{
	sqlite3_stmt *q = S->q[k];
	if (!S->in_txn && k != Q_BEGIN && k != Q_COMMIT) {
		if (!step(S, Q_BEGIN))
			return false;
		S->in_txn = true;
	}
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_DONE) {
		broken(S, k == Q_COMMIT ? "commit" : "record a task");
		return false;
	}
	return true;
}

static void bind_str(sqlite3_stmt *q, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC);
}

/* Binds what a task's row holds from its start (Q_INSERT's columns 1-6, 11, 14, 17-21, 23). */
static void bind_start(sqlite3_stmt *q, const struct running *r)
{
	sqlite3_bind_int64(q, 1, r->k);
	bind_str(q, 2, r->id);
	bind_str(q, 3, r->step);
	bind_str(q, 4, r->host);
	bind_str(q, 5, r->item);
	sqlite3_bind_int(q, 6, r->attempt);
	sqlite3_bind_int64(q, 11, (sqlite3_int64)r->start_ms);
	bind_str(q, 14, r->command);
	bind_str(q, 24, r->label);
	sqlite3_bind_int(q, 21, 0); /* the end's binding says otherwise for a task carried over */
	if (r->pgid && !r->remote) {
		sqlite3_bind_int64(q, 17, r->pgid);
		sqlite3_bind_int64(q, 18, (sqlite3_int64)r->pgid_start_ms);
	} else if (r->pgid) {
		bind_str(q, 19, r->host);
		sqlite3_bind_int64(q, 20, r->pgid);
	}
}

/* Writes the rows of the tasks that started since the last commit and still run. */
static void write_started(struct store_sink *S)
{
	while (S->unwritten && !S->broken) {
		struct running *r = S->unwritten;
		S->unwritten = r->next_new;
		r->next_new = NULL;
		r->listed = false;
		if (r->written)
			continue;
		sqlite3_stmt *q = S->q[Q_INSERT];
		bind_start(q, r);
		sqlite3_bind_text(q, 7, "running", -1, SQLITE_STATIC);
		r->written = step(S, Q_INSERT);
	}
}

static void commit(struct store_sink *S)
{
	if (S->broken || S->committing)
		return;
	S->committing = true;
	if (S->in_txn && step(S, Q_COMMIT))
		S->in_txn = S->ended = false;
	S->committing = false;
}

static void task_end(struct store_sink *S, const struct event *e);

static void task_start(struct store_sink *S, const struct event *e)
{
	if (!e->task)
		return;
	if ((S->used + S->tomb + 1) * 2 > S->cap)
		tab_grow(S);
	size_t i = slot(S, e->task, true);
	if (S->tab[i] && S->tab[i] != TOMB) {
		/* a task that starts while it runs cannot be: its end is what is missing */
		struct event none = {.type = EV_TASK_END, .task = e->task, .status = ST_FAILED, .exit_code = -1,
				     .reason = "no end recorded"};
		task_end(S, &none);
		i = slot(S, e->task, true);
	}
	struct running *r = xcalloc(1, sizeof *r);
	r->id = xstrdup(e->task);
	r->step = e->step ? xstrdup(e->step) : NULL;
	r->host = e->host ? xstrdup(e->host) : NULL;
	r->item = e->item ? xstrdup(e->item) : NULL;
	r->command = e->command ? xstrdup(e->command) : NULL;
	r->label = e->label ? xstrdup(e->label) : NULL;
	if (e->env)
		store_text_hash(e->env, strlen(e->env), r->env_hash);
	r->attempt = e->attempt;
	r->start_ms = store_now_ms();
	r->k = S->base_k + ++S->seq;
	if (S->tab[i] == TOMB)
		S->tomb--;
	S->tab[i] = r;
	S->used++;
	r->next_new = S->unwritten;
	r->listed = true;
	S->unwritten = r;
}

static void task_process(struct store_sink *S, const struct event *e)
{
	if (!e->task || !S->cap)
		return;
	struct running *r = S->tab[slot(S, e->task, false)];
	if (!r || r == TOMB)
		return;
	r->pgid = e->pgid;
	r->pgid_start_ms = store_now_ms();
	r->remote = e->remote;
	if (r->written || e->remote) {
		/*
		 * A remote group is written, and committed at the end of this turn:
		 * nothing on this machine could find it after a crash (a local one
		 * carries BATON_RUN_ID, which procs.c looks for).
		 */
		sqlite3_stmt *q = S->q[Q_INSERT];
		bind_start(q, r);
		sqlite3_bind_text(q, 7, "running", -1, SQLITE_STATIC);
		r->written = step(S, Q_INSERT);
		S->urgent |= e->remote;
	}
}

/* Binds the end's columns of Q_INSERT (7-10, 12, 13, 15, 16, 21, 23). */
static void bind_end_insert(sqlite3_stmt *q, const struct event *e, uint64_t now)
{
	sqlite3_bind_text(q, 7, status_name(e->status), -1, SQLITE_STATIC);
	if (e->exit_code >= 0)
		sqlite3_bind_int(q, 8, e->exit_code);
	if (e->signal)
		sqlite3_bind_int(q, 9, e->signal);
	bind_str(q, 10, e->reason);
	sqlite3_bind_int64(q, 12, (sqlite3_int64)now);
	sqlite3_bind_int64(q, 13, (sqlite3_int64)e->duration_ms);
	if (e->out)
		sqlite3_bind_blob(q, 15, e->out, (int)e->out_len, SQLITE_STATIC);
	if (e->err)
		sqlite3_bind_blob(q, 16, e->err, (int)e->err_len, SQLITE_STATIC);
	sqlite3_bind_int(q, 21, e->reused);
	bind_str(q, 23, e->outputs);
	sqlite3_bind_int(q, 25, e->tolerated);
}

static void task_end(struct store_sink *S, const struct event *e)
{
	if (!e->task)
		return;
	uint64_t now = store_now_ms();
	size_t i = S->cap ? slot(S, e->task, false) : 0;
	struct running *r = S->cap ? S->tab[i] : NULL;
	bool ok;
	if (!r || r == TOMB) {
		/* an end with no start: carried over by resume, or never started (a failure to prepare it) */
		struct running none = {.id = (char *)e->task, .step = (char *)e->step, .host = (char *)e->host,
				       .item = (char *)e->item, .command = (char *)e->command, .label = (char *)e->label,
				       .attempt = e->attempt,
				       .start_ms = now - e->duration_ms, .k = S->base_k + ++S->seq};
		if (e->env)
			store_text_hash(e->env, strlen(e->env), none.env_hash);
		sqlite3_stmt *q = S->q[Q_INSERT];
		bind_start(q, &none);
		bind_end_insert(q, e, now);
		ok = step(S, Q_INSERT);
	} else if (!r->written) {
		sqlite3_stmt *q = S->q[Q_INSERT];
		bind_start(q, r);
		bind_end_insert(q, e, now);
		ok = step(S, Q_INSERT);
		r->written = true; /* it leaves the list of unwritten at the next commit */
	} else {
		sqlite3_stmt *q = S->q[Q_END];
		sqlite3_bind_int64(q, 1, r->k);
		sqlite3_bind_text(q, 2, status_name(e->status), -1, SQLITE_STATIC);
		if (e->exit_code >= 0)
			sqlite3_bind_int(q, 3, e->exit_code);
		if (e->signal)
			sqlite3_bind_int(q, 4, e->signal);
		bind_str(q, 5, e->reason);
		sqlite3_bind_int64(q, 6, (sqlite3_int64)now);
		sqlite3_bind_int64(q, 7, (sqlite3_int64)e->duration_ms);
		if (e->out)
			sqlite3_bind_blob(q, 8, e->out, (int)e->out_len, SQLITE_STATIC);
		if (e->err)
			sqlite3_bind_blob(q, 9, e->err, (int)e->err_len, SQLITE_STATIC);
		bind_str(q, 10, e->outputs);
		sqlite3_bind_int(q, 11, e->tolerated);
		ok = step(S, Q_END);
	}
	if (r && r != TOMB) {
		S->tab[i] = TOMB;
		S->tomb++;
		S->used--;
		if (r->listed) {
			/* still listed as unwritten: unlink it */
			struct running **pp = &S->unwritten;
			while (*pp != r)
				pp = &(*pp)->next_new;
			*pp = r->next_new;
		}
		running_free(r);
	}
	if (ok)
		S->ended = true;
}

static void run_end(struct store_sink *S, const struct event *e)
{
	write_started(S);
	sqlite3_stmt *q = S->q[Q_RUN_END];
	sqlite3_bind_text(q, 1, S->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, status_name(e->status), -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 3, e->exit_code_run);
	sqlite3_bind_int64(q, 4, (sqlite3_int64)store_now_ms());
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_bind_int64(q, 5 + i, (sqlite3_int64)e->counts[i]);
	sqlite3_bind_int64(q, 10, (sqlite3_int64)e->n_tolerated);
	step(S, Q_RUN_END);
	commit(S);
}

static void step_end(struct store_sink *S, const struct event *e)
{
	if (!e->step)
		return;
	/* a step that was one task has that task's row; the others get their own */
	if (!(S->last_end && !strcmp(S->last_end, e->step))) {
		sqlite3_stmt *q = S->q[Q_STEP];
		uint64_t now = store_now_ms();
		/* its key says when it ended: readers place a group before its first child */
		sqlite3_bind_int64(q, 1, S->base_k + ++S->seq);
		bind_str(q, 2, e->step);
		bind_str(q, 3, e->kind ? e->kind : "step");
		sqlite3_bind_int(q, 4, e->depth);
		sqlite3_bind_text(q, 5, status_name(e->status), -1, SQLITE_STATIC);
		if (e->reason_own)
			bind_str(q, 6, e->reason);
		sqlite3_bind_int64(q, 7, (sqlite3_int64)(now - e->duration_ms));
		sqlite3_bind_int64(q, 8, (sqlite3_int64)now);
		sqlite3_bind_int64(q, 9, (sqlite3_int64)e->duration_ms);
		bind_str(q, 10, e->label);
		step(S, Q_STEP);
	}
}

static void store_emit(struct sink *s, const struct event *e)
{
	struct store_sink *S = (struct store_sink *)s;
	if (!S->broken) {
		switch (e->type) {
		case EV_TASK_START:
			task_start(S, e);
			break;
		case EV_TASK_END:
			task_end(S, e);
			free(S->last_end);
			S->last_end = e->task ? xstrdup(e->task) : NULL;
			break;
		case EV_STEP_END:
			step_end(S, e);
			break;
		case EV_TASK_PROCESS:
			task_process(S, e);
			break;
		case EV_STEP_START:
		case EV_BATCH_START:
		case EV_BARRIER_RELEASE:
			/* what starts now may read what ended: it is recorded first */
			if (S->ended)
				commit(S);
			break;
		case EV_RUN_END:
			run_end(S, e);
			break;
		default:
			break;
		}
	}
	if (S->json) { /* every event, task.transfer too: the same lines as --events, seq unbroken */
		S->own_write = true;
		S->json->emit(S->json, e);
		S->own_write = false;
	}
}

/* An output stream is about to write: what it shows must be recorded first (not for events.jsonl, the store's own). */
static void store_barrier(struct sink *s)
{
	struct store_sink *S = (struct store_sink *)s;
	if (!S->own_write)
		commit(S);
}

/*
 * The end of a turn of the loop: nothing is committed for it alone. The
 * other sinks' streams, writing now, commit first (store_barrier); if none
 * writes, the tick does, soon.
 */
static void store_flush(struct sink *s)
{
	struct store_sink *S = (struct store_sink *)s;
	if (S->urgent) {
		S->urgent = false;
		commit(S);
	}
	if (S->json) {
		S->own_write = true;
		S->json->flush(S->json);
		S->own_write = false;
	}
}

/*
 * Tasks still running get their rows (with their process groups) here, not
 * at every commit: most tasks end first, and then have one row written
 * once, with their end.
 */
static void on_tick(uv_timer_t *h)
{
	struct store_sink *S = h->data;
	if (!S)
		return;
	write_started(S);
	commit(S);
}

static void store_sink_close(struct sink *s)
{
	struct store_sink *S = (struct store_sink *)s;
	if (S->tick) {
		S->tick->data = NULL;
		uv_timer_stop(S->tick);
		uv_close((uv_handle_t *)S->tick, (uv_close_cb)free);
	}
	commit(S);
	if (S->json)
		S->json->close(S->json);
	for (int k = 0; k < Q__COUNT; k++)
		sqlite3_finalize(S->q[k]);
	for (size_t i = 0; i < S->cap; i++)
		if (S->tab[i] && S->tab[i] != TOMB)
			running_free(S->tab[i]);
	free(S->tab);
	free(S->last_end);
	store_close(S->st);
	free(S->run_id);
	free(S);
}

struct sink *store_sink_new(struct store *st, struct uv_loop_s *loop, struct bus *bus)
{
	struct store_sink *S = xcalloc(1, sizeof *S);
	S->base.emit = store_emit;
	S->base.flush = store_flush;
	S->base.close = store_sink_close;
	S->base.barrier = store_barrier;
	S->st = st;
	S->bus = bus;
	S->run_id = xstrdup(bus->run_id);
	if (loop) {
		S->tick = xmalloc(sizeof *S->tick);
		uv_timer_init(loop, S->tick);
		S->tick->data = S;
		uv_timer_start(S->tick, on_tick, COMMIT_MS, COMMIT_MS);
		uv_unref((uv_handle_t *)S->tick); /* it must not keep the loop alive */
	}
	for (int k = 0; k < Q__COUNT; k++) {
		char *err = NULL;
		S->q[k] = db_prepare(st, sql[k], &err);
		if (!S->q[k]) {
			S->broken = true;
			bus_warn(bus, false, NULL, "the run store cannot record this run: %s", err);
			free(err);
			break;
		}
	}
	if (!S->broken) {
		sqlite3_stmt *q = S->q[Q_RUN_NO];
		sqlite3_bind_text(q, 1, S->run_id, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW)
			S->base_k = (int64_t)sqlite3_column_int64(q, 0) << 32;
		else
			broken(S, "find its run");
		sqlite3_reset(q);
	}
	char *path = store_events_path(st, S->run_id);
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		bus_warn(bus, false, NULL, "the run store cannot write %s: %s", path, strerror(errno));
	} else {
		char *name = xasprintf("the run store's %s", path);
		FILE *f = event_stream_open_opt(loop, bus, fd, true, name, true);
		free(name);
		if (f)
			S->json = sink_json_new(f, true);
		else
			close(fd);
	}
	free(path);
	return &S->base;
}
