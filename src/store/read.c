/*
 * read.c — the run store's reader: runs and their tasks, for `runs`,
 * `status`, `logs`, `wait`, `cancel` and `resume`. Readers never block the
 * writer (WAL); a run recorded running whose controller is gone reads as
 * crashed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "util/util.h"

const char *run_state_name(enum run_state s)
{
	static const char *const names[] = {"running", "success", "failed", "cancelled", "timeout", "crashed"};
	return s <= RS_CRASHED ? names[s] : "unknown";
}

bool store_run_alive(const struct store_run *r)
{
	if (r->pid <= 0)
		return false;
	if (r->boot_id && *r->boot_id && strcmp(r->boot_id, store_boot_id()))
		return false; /* recorded before this boot */
	uint64_t start = store_proc_start(r->pid);
	return start && start == r->pid_start;
}

void store_run_free(struct store_run *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->plan);
	free(r->plan_abs);
	free(r->name);
	free(r->user);
	free(r->cwd);
	free(r->argv_json);
	free(r->vars_json);
	free(r->resumed_from);
	free(r->boot_id);
	free(r->plan_sha256);
	memset(r, 0, sizeof *r);
}

#define RUN_COLS                                                                                                \
	"id, plan, plan_abs, name, user, cwd, argv, vars, resumed_from, boot_id, plan_sha256, state, exit_code," \
	" pid, pid_start, start_ms, end_ms, tasks, n_success, n_failed, n_timeout, n_cancelled, n_skipped,"      \
	" CASE WHEN state = 'running' THEN (SELECT count(*) FROM tasks WHERE k >= runs.rowid << 32"       \
	" AND k < (runs.rowid + 1) << 32 AND status = 'running') ELSE 0 END,"
/* then n_tolerated: a store older than it (schema 4) is read with 0 (RUN_TOLERATED) */
#define RUN_TOLERATED(st) ((st)->schema >= 4 ? " n_tolerated" : " 0")

static enum run_state parse_state(const char *s)
{
	static const char *const names[] = {"running", "success", "failed", "cancelled", "timeout"};
	for (int i = 0; i < 5; i++)
		if (s && !strcmp(s, names[i]))
			return (enum run_state)i;
	return RS_FAILED;
}

static void read_run(sqlite3_stmt *q, struct store_run *r)
{
	memset(r, 0, sizeof *r);
	r->id = db_text(q, 0);
	r->plan = db_text(q, 1);
	r->plan_abs = db_text(q, 2);
	r->name = db_text(q, 3);
	r->user = db_text(q, 4);
	r->cwd = db_text(q, 5);
	r->argv_json = db_text(q, 6);
	r->vars_json = db_text(q, 7);
	r->resumed_from = db_text(q, 8);
	r->boot_id = db_text(q, 9);
	r->plan_sha256 = db_text(q, 10);
	r->state = parse_state((const char *)sqlite3_column_text(q, 11));
	r->exit_code = sqlite3_column_type(q, 12) == SQLITE_NULL ? -1 : sqlite3_column_int(q, 12);
	r->pid = (long)sqlite3_column_int64(q, 13);
	r->pid_start = (uint64_t)sqlite3_column_int64(q, 14);
	r->start_ms = (uint64_t)sqlite3_column_int64(q, 15);
	r->end_ms = (uint64_t)sqlite3_column_int64(q, 16);
	r->tasks = sqlite3_column_type(q, 17) == SQLITE_NULL ? -1 : (long)sqlite3_column_int64(q, 17);
	for (int i = 0; i < ST__COUNT; i++)
		r->counts[i] = (uint64_t)sqlite3_column_int64(q, 18 + i);
	r->running = (uint64_t)sqlite3_column_int64(q, 23);
	r->tolerated = (uint64_t)sqlite3_column_int64(q, 24);
	if (r->state == RS_RUNNING && !store_run_alive(r))
		r->state = RS_CRASHED;
}

/*
 * A run recorded running (or crashed) has no counts in its row yet: they are
 * written at its end. Count what its rows say so far instead, as the final
 * counts will (every step of every kind, a retried task by its last attempt).
 */
static void live_counts(struct store *st, struct store_run *r)
{
	if (r->state != RS_RUNNING && r->state != RS_CRASHED)
		return;
	/* tasks only (a step's row has its kind; a task's none, or run when it never started) */
	char *sql = xasprintf("SELECT status, tol, count(*) FROM (SELECT status, %s AS tol, max(k) FROM tasks"
			      " WHERE k >= (SELECT rowid FROM runs WHERE id = ?1) << 32"
			      " AND k < ((SELECT rowid FROM runs WHERE id = ?1) + 1) << 32"
			      " AND (kind IS NULL OR kind = 'run') GROUP BY id)"
			      " GROUP BY status, tol",
			      st->schema >= 4 ? "tolerated" : "0");
	sqlite3_stmt *q = db_prepare(st, sql, NULL);
	free(sql);
	if (!q)
		return;
	sqlite3_bind_text(q, 1, r->id, -1, SQLITE_STATIC);
	memset(r->counts, 0, sizeof r->counts);
	r->running = 0;
	r->tolerated = 0;
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *status = (const char *)sqlite3_column_text(q, 0);
		bool tolerated = sqlite3_column_int(q, 1) != 0;
		uint64_t n = (uint64_t)sqlite3_column_int64(q, 2);
		for (int i = 0; i < ST__COUNT; i++)
			if (status && !strcmp(status, status_name((enum status)i)))
				*(tolerated ? &r->tolerated : &r->counts[i]) += n;
		if (status && !strcmp(status, "running"))
			r->running = n;
	}
	sqlite3_finalize(q);
}

struct store_run *store_list(struct store *st, size_t n, const char *plan, size_t *count)
{
	*count = 0;
	char *sql = xasprintf("SELECT " RUN_COLS "%s FROM runs WHERE (?1 IS NULL OR plan_abs = ?1)"
			      " ORDER BY start_ms DESC, id DESC LIMIT ?2",
			      RUN_TOLERATED(st));
	sqlite3_stmt *q = db_prepare(st, sql, NULL);
	free(sql);
	if (!q)
		return NULL;
	if (plan)
		sqlite3_bind_text(q, 1, plan, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, n ? (sqlite3_int64)n : -1);
	struct store_run *v = NULL;
	size_t cap = 0;
	while (sqlite3_step(q) == SQLITE_ROW) {
		if (*count == cap) {
			cap = cap ? 2 * cap : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		read_run(q, &v[(*count)++]);
	}
	sqlite3_finalize(q);
	for (size_t i = 0; i < *count; i++)
		live_counts(st, &v[i]);
	return v;
}

bool store_find(struct store *st, const char *ref, const char *plan, struct store_run *out, char **err)
{
	memset(out, 0, sizeof *out);
	if (!ref) {
		size_t n;
		struct store_run *v = store_list(st, 1, plan, &n);
		if (!n) {
			*err = plan ? xasprintf("no run of %s is recorded in %s", plan, st->dir)
				    : xasprintf("no run is recorded in %s", st->dir);
			free(v);
			return false;
		}
		*out = v[0];
		free(v);
		return true;
	}
	/* an id, or a unique prefix of one; LIKE would read % and _ in ref as patterns */
	char *sql = xasprintf("SELECT " RUN_COLS "%s FROM runs WHERE substr(id, 1, length(?1)) = ?1"
			      " ORDER BY start_ms DESC, id DESC LIMIT 6",
			      RUN_TOLERATED(st));
	sqlite3_stmt *q = db_prepare(st, sql, err);
	free(sql);
	if (!q)
		return false;
	sqlite3_bind_text(q, 1, ref, -1, SQLITE_STATIC);
	struct buf ids = {0};
	size_t n = 0;
	bool exact = false;
	while (sqlite3_step(q) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(q, 0);
		if (id && !strcmp(id, ref)) {
			store_run_free(out);
			read_run(q, out);
			exact = true;
			break;
		}
		if (n < 5)
			buf_printf(&ids, "%s%s", n ? ", " : "", id ? id : "?");
		if (!n)
			read_run(q, out);
		n++;
	}
	sqlite3_finalize(q);
	if (exact || n == 1) {
		buf_free(&ids);
		live_counts(st, out);
		return true;
	}
	store_run_free(out);
	if (!n)
		*err = xasprintf("no run '%s' is recorded in %s ('baton runs' lists them)", ref, st->dir);
	else
		*err = xasprintf("run '%s' is ambiguous: it begins %s%s", ref, ids.data, n > 5 ? ", ..." : "");
	buf_free(&ids);
	return false;
}

void store_task_free(struct store_task *t)
{
	if (!t)
		return;
	free(t->id);
	free(t->step);
	free(t->host);
	free(t->item);
	free(t->command);
	free(t->label);
	free(t->status);
	free(t->reason);
	free(t->out);
	free(t->err);
	free(t->remote_host);
	free(t->kind);
	free(t->env_hash);
	free(t->outputs);
	memset(t, 0, sizeof *t);
}

static char *blob(sqlite3_stmt *q, int col, size_t *len)
{
	*len = 0;
	if (sqlite3_column_type(q, col) == SQLITE_NULL)
		return NULL;
	const void *b = sqlite3_column_blob(q, col);
	size_t n = (size_t)sqlite3_column_bytes(q, col);
	char *s = xmalloc(n + 1);
	if (n)
		memcpy(s, b, n);
	s[n] = 0;
	*len = n;
	return s;
}

struct store_task *store_tasks(struct store *st, const char *run_id, bool with_output, size_t *count)
{
	*count = 0;
	/* a store older than tasks.outputs (schema 2) or tasks.label (schema 3) is read without them */
	bool with_outputs = with_output && st->schema >= 2;
	char *sql = xasprintf("SELECT id, step, host, item, command, status, reason, attempt, exit_code, signal, start_ms,"
			      " end_ms, duration_ms, pgid, pgid_start_ms, remote_host, remote_pgid, reused, kind, depth,"
			      " env_hash, %s%s%s FROM tasks WHERE k >= (SELECT rowid FROM runs WHERE id = ?1) << 32"
			      " AND k < ((SELECT rowid FROM runs WHERE id = ?1) + 1) << 32 ORDER BY k",
			      st->schema >= 3 ? "label" : "NULL", with_output ? ", out, err" : "",
			      with_outputs ? ", outputs" : "");
	sqlite3_stmt *q = db_prepare(st, sql, NULL);
	free(sql);
	if (!q)
		return NULL;
	sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
	struct store_task *v = NULL;
	size_t cap = 0;
	while (sqlite3_step(q) == SQLITE_ROW) {
		if (*count == cap) {
			cap = cap ? 2 * cap : 64;
			v = xrealloc(v, cap * sizeof *v);
		}
		struct store_task *t = &v[(*count)++];
		memset(t, 0, sizeof *t);
		t->id = db_text(q, 0);
		t->step = db_text(q, 1);
		t->host = db_text(q, 2);
		t->item = db_text(q, 3);
		t->command = db_text(q, 4);
		t->status = db_text(q, 5);
		t->reason = db_text(q, 6);
		t->attempt = sqlite3_column_int(q, 7);
		t->exit_code = sqlite3_column_type(q, 8) == SQLITE_NULL ? -1 : sqlite3_column_int(q, 8);
		t->signal = sqlite3_column_int(q, 9);
		t->start_ms = (uint64_t)sqlite3_column_int64(q, 10);
		t->end_ms = (uint64_t)sqlite3_column_int64(q, 11);
		t->duration_ms = (uint64_t)sqlite3_column_int64(q, 12);
		t->pgid = (long)sqlite3_column_int64(q, 13);
		t->pgid_start_ms = (uint64_t)sqlite3_column_int64(q, 14);
		t->remote_host = db_text(q, 15);
		t->remote_pgid = (long)sqlite3_column_int64(q, 16);
		t->reused = sqlite3_column_int(q, 17) != 0;
		t->kind = db_text(q, 18);
		t->depth = sqlite3_column_int(q, 19);
		t->env_hash = db_text(q, 20);
		t->label = db_text(q, 21);
		if (with_output) {
			t->out = blob(q, 22, &t->out_len);
			t->err = blob(q, 23, &t->err_len);
		}
		if (with_outputs)
			t->outputs = db_text(q, 24);
	}
	sqlite3_finalize(q);
	return v;
}

char *store_plan_text(struct store *st, const char *run_id, size_t *len)
{
	sqlite3_stmt *q = db_prepare(st, "SELECT text FROM files WHERE run = ? AND idx = 0", NULL);
	if (!q)
		return NULL;
	sqlite3_bind_text(q, 1, run_id, -1, SQLITE_STATIC);
	char *s = sqlite3_step(q) == SQLITE_ROW ? blob(q, 0, len) : NULL;
	sqlite3_finalize(q);
	return s;
}
