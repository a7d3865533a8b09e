/*
 * The run store's API (src/store/, design/runs.md): store_open and the
 * modes it creates, store_begin and pruning, store_find by id, prefix and
 * newest, store_run_alive, and what the writer sink records as store_tasks
 * reads it back (order, attempts, steps, outputs, the durability rule).
 * Each test has a directory of its own under /tmp; Criterion runs each in
 * its own process, so a umask set here does not leak.
 */
#include <criterion/criterion.h>
#include <uv.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/internal.h"
#include "store/store.h"
#include "util/util.h"

static char *tmp;

static void mk_tmp(void)
{
	char t[] = "/tmp/baton-store-test-XXXXXX";
	cr_assert_not_null(mkdtemp(t), "mkdtemp: %s", strerror(errno));
	tmp = xstrdup(t);
}

static void rm_tmp(void)
{
	char *cmd = xasprintf("rm -rf '%s'", tmp);
	int rc = system(cmd);
	(void)rc;
	free(cmd);
	free(tmp);
}

TestSuite(store, .init = mk_tmp, .fini = rm_tmp);

static struct store *open_writer(const char *dir)
{
	char *err = NULL;
	struct store *st = store_open(dir, true, &err);
	cr_assert_not_null(st, "store_open: %s", err ? err : "?");
	return st;
}

static struct store *open_reader(const char *dir)
{
	char *err = NULL;
	struct store *st = store_open(dir, false, &err);
	cr_assert_not_null(st, "store_open (reader): %s", err ? err : "?");
	return st;
}

/* Records run id's start, pruning down to keep. */
static void begin(struct store *st, const char *id, const char *plan_abs, size_t keep)
{
	static const char text[] = "steps: [\"true\"]\n";
	struct store_file f = {.path = "plan.yaml", .text = text, .len = sizeof text - 1};
	struct store_run_info ri = {.id = id, .plan = "plan.yaml", .plan_abs = plan_abs ? plan_abs : "/p/plan.yaml",
				    .name = "test", .vars_json = "{}", .argv_json = "[\"run\",\"plan.yaml\"]",
				    .tasks = -1, .files = &f, .n_files = 1};
	char *err = NULL;
	cr_assert(store_begin(st, &ri, keep, &err), "store_begin %s: %s", id, err ? err : "?");
}

/* Runs sql on dir/runs.db from a connection of its own (as another process would); fmt as sqlite3_mprintf's. */
static void sql(const char *dir, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *q = sqlite3_vmprintf(fmt, ap);
	va_end(ap);
	char *path = xasprintf("%s/runs.db", dir);
	sqlite3 *db = NULL;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	char *msg = NULL;
	cr_assert_eq(sqlite3_exec(db, q, NULL, NULL, &msg), SQLITE_OK, "%s: %s", q, msg ? msg : "?");
	sqlite3_close(db);
	free(path);
	sqlite3_free(q);
}

/* One number from dir/runs.db. */
static long long sql_int(const char *dir, const char *q)
{
	char *path = xasprintf("%s/runs.db", dir);
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
	cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
	long long v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	free(path);
	return v;
}

/* The run ended (as its sink's run.end records it). */
static void finish(const char *dir, const char *id)
{
	sql(dir, "UPDATE runs SET state = 'success', exit_code = 0, end_ms = start_ms + 1 WHERE id = %Q", id);
}

/* A pid that no process has: a child that has exited and been reaped. */
static long dead_pid(void)
{
	pid_t p = fork();
	cr_assert_geq(p, 0);
	if (!p)
		_exit(0);
	int st;
	cr_assert_eq(waitpid(p, &st, 0), p);
	return (long)p;
}

static bool exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* ---- store_open ---- */

Test(store, open_creates_the_directory_0700_and_the_database_0600_whatever_the_umask)
{
	umask(0);
	char *dir = xasprintf("%s/a/b/state", tmp);
	struct store *st = open_writer(dir);
	cr_assert_str_eq(store_path(st), dir);
	begin(st, "20260101T000000Z-000001", NULL, 10);
	struct stat sb;
	const char *const made[] = {"a", "a/b", "a/b/state", "a/b/state/runs", "a/b/state/runs/20260101T000000Z-000001"};
	for (size_t i = 0; i < ARRAY_LEN(made); i++) {
		char *p = xasprintf("%s/%s", tmp, made[i]);
		cr_assert_eq(stat(p, &sb), 0, "%s: %s", p, strerror(errno));
		cr_assert_eq(sb.st_mode & 07777, 0700, "%s is %o, not 0700", made[i], sb.st_mode & 07777);
		free(p);
	}
	char *db = xasprintf("%s/runs.db", dir);
	cr_assert_eq(stat(db, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0600, "runs.db is %o, not 0600", sb.st_mode & 07777);
	free(db);
	store_close(st);
	free(dir);
}

Test(store, open_keeps_the_mode_of_a_directory_that_exists)
{
	char *dir = xasprintf("%s/mine", tmp);
	cr_assert_eq(mkdir(dir, 0750), 0);
	cr_assert_eq(chmod(dir, 0750), 0);
	store_close(open_writer(dir));
	struct stat sb;
	cr_assert_eq(stat(dir, &sb), 0);
	cr_assert_eq(sb.st_mode & 07777, 0750);
	free(dir);
}

Test(store, a_reader_of_a_store_that_does_not_exist_fails_saying_so_and_creates_nothing)
{
	char *dir = xasprintf("%s/none", tmp);
	char *err = NULL;
	cr_assert_null(store_open(dir, false, &err));
	char *want = xasprintf("no runs recorded in %s", dir);
	cr_assert_str_eq(err, want);
	cr_assert_not(exists(dir));
	free(want);
	free(err);
	free(dir);
}

Test(store, a_directory_that_cannot_be_created_is_an_error_naming_it)
{
	char *err = NULL;
	cr_assert_null(store_open("/dev/null/state", true, &err));
	cr_assert_str_eq(err, "cannot create the state directory /dev/null/state: Not a directory");
	free(err);
}

Test(store, a_store_of_a_newer_schema_is_refused_by_writers_and_readers)
{
	store_close(open_writer(tmp));
	sql(tmp, "PRAGMA user_version = %d", STORE_SCHEMA + 1);
	for (int w = 0; w < 2; w++) {
		char *err = NULL;
		cr_assert_null(store_open(tmp, w, &err));
		cr_assert(strstr(err, "was written by a newer baton"), "%s", err);
		free(err);
	}
}

Test(store, a_schema_3_store_gains_the_tolerated_columns_and_keeps_its_runs)
{
	struct store *st = open_writer(tmp);
	begin(st, "20260101T000000Z-000003", "/p/plan.yaml", 10);
	store_close(st);
	/* as schema 3 left it */
	sql(tmp, "ALTER TABLE tasks DROP COLUMN tolerated; ALTER TABLE runs DROP COLUMN n_tolerated;"
		 " PRAGMA user_version = 3");
	/* a reader reads it as it is, without them */
	char *err = NULL;
	struct store *old = store_open(tmp, false, &err);
	cr_assert_not_null(old, "%s", err);
	size_t n = 0;
	struct store_run *v = store_list(old, 0, NULL, &n);
	cr_assert_eq(n, 1, "a reader of a schema 3 store lists its run");
	cr_assert_eq(v[0].tolerated, 0);
	cr_assert_eq(v[0].state, RS_RUNNING, "and counts it live, without tasks.tolerated");
	store_run_free(&v[0]);
	free(v);
	store_close(old);
	cr_assert_eq(sql_int(tmp, "PRAGMA user_version"), 3, "a reader changes nothing");
	store_close(open_writer(tmp));
	cr_assert_eq(sql_int(tmp, "PRAGMA user_version"), STORE_SCHEMA);
	cr_assert_eq(STORE_SCHEMA, 4);
	cr_assert_eq(sql_int(tmp, "SELECT count(*) FROM runs WHERE n_tolerated = 0"), 1, "the run kept, counted 0");
	cr_assert_eq(sql_int(tmp, "SELECT count(tolerated) FROM tasks"), 0);
	struct store *rd = NULL;
	cr_assert_not_null(rd = store_open(tmp, false, &err), "%s", err);
	struct store_run r;
	cr_assert(store_find(rd, "20260101T000000Z-000003", NULL, &r, &err), "%s", err);
	cr_assert_eq(r.tolerated, 0);
	store_run_free(&r);
	store_close(rd);
}

/* ---- store_begin and pruning ---- */

Test(store, begin_records_a_running_run_of_this_process)
{
	struct store *st = open_writer(tmp);
	begin(st, "20260101T000000Z-000001", "/p/plan.yaml", 10);
	struct store_run r;
	char *err = NULL;
	cr_assert(store_find(st, "20260101T000000Z-000001", NULL, &r, &err), "%s", err);
	cr_assert_eq(r.state, RS_RUNNING);
	cr_assert_eq(r.pid, (long)getpid());
	cr_assert_eq(r.pid_start, store_proc_start(getpid()));
	cr_assert_eq(r.exit_code, -1);
	cr_assert_str_eq(r.plan_abs, "/p/plan.yaml");
	cr_assert(store_run_alive(&r));
	store_run_free(&r);
	size_t len = 0;
	char *text = store_plan_text(st, "20260101T000000Z-000001", &len);
	cr_assert_str_eq(text, "steps: [\"true\"]\n");
	cr_assert_eq(len, strlen(text));
	free(text);
	store_close(st);
}

Test(store, begin_prunes_finished_runs_beyond_keep_with_their_directories)
{
	struct store *st = open_writer(tmp);
	char ids[6][48];
	for (int i = 0; i < 6; i++) {
		snprintf(ids[i], sizeof ids[i], "20260101T000000Z-00000%d", i);
		begin(st, ids[i], NULL, 3);
		finish(tmp, ids[i]);
		/* a task row, which must go with its run */
		sql(tmp, "INSERT INTO tasks (k, id, status) VALUES ((SELECT rowid FROM runs WHERE id = %Q) << 32 | 1, 'a', 'success')",
		    ids[i]);
	}
	cr_assert_eq(sql_int(tmp, "SELECT count(*) FROM runs"), 3);
	cr_assert_eq(sql_int(tmp, "SELECT count(*) FROM tasks"), 3);
	cr_assert_eq(sql_int(tmp, "SELECT count(*) FROM files"), 3);
	for (int i = 0; i < 6; i++) {
		char *d = xasprintf("%s/runs/%s", tmp, ids[i]);
		cr_assert_eq(exists(d), i >= 3, "runs/%s %s", ids[i], i >= 3 ? "was removed" : "is still there");
		free(d);
		struct store_run r;
		char *err = NULL;
		bool found = store_find(st, ids[i], NULL, &r, &err);
		cr_assert_eq(found, i >= 3, "%s", ids[i]);
		store_run_free(&r);
		free(err);
	}
	store_close(st);
}

Test(store, pruning_never_takes_a_run_whose_controller_is_alive_but_takes_a_crashed_one)
{
	struct store *st = open_writer(tmp);
	begin(st, "20260101T000000Z-000001", NULL, 10); /* running: this process is its controller */
	begin(st, "20260101T000000Z-000002", NULL, 10);
	sql(tmp, "UPDATE runs SET pid = %ld WHERE id = '20260101T000000Z-000002'", dead_pid()); /* crashed */
	begin(st, "20260101T000000Z-000003", NULL, 10);
	finish(tmp, "20260101T000000Z-000003");
	begin(st, "20260101T000000Z-000004", NULL, 1);
	cr_assert_eq(sql_int(tmp, "SELECT count(*) FROM runs"), 2);
	cr_assert_eq(sql_int(tmp, "SELECT count(*) FROM runs WHERE id IN ('20260101T000000Z-000001', "
				  "'20260101T000000Z-000004')"),
		     2);
	store_close(st);
}

/* ---- store_find ---- */

static void three_runs(struct store *st)
{
	begin(st, "20260101T000000Z-aaaaaa", "/p/one.yaml", 10);
	begin(st, "20260101T000000Z-aabbbb", "/p/two.yaml", 10);
	begin(st, "20260102T000000Z-cccccc", "/p/one.yaml", 10);
	/* the newest by start time, whatever the ids say */
	sql(tmp, "UPDATE runs SET start_ms = 1000 WHERE id = '20260101T000000Z-aaaaaa'");
	sql(tmp, "UPDATE runs SET start_ms = 3000 WHERE id = '20260101T000000Z-aabbbb'");
	sql(tmp, "UPDATE runs SET start_ms = 2000 WHERE id = '20260102T000000Z-cccccc'");
}

static void find_ok(struct store *st, const char *ref, const char *plan, const char *want)
{
	struct store_run r;
	char *err = NULL;
	cr_assert(store_find(st, ref, plan, &r, &err), "store_find(%s): %s", ref ? ref : "NULL", err ? err : "?");
	cr_assert_str_eq(r.id, want, "store_find(%s)", ref ? ref : "NULL");
	store_run_free(&r);
}

static void find_fails(struct store *st, const char *ref, const char *plan, const char *want)
{
	struct store_run r;
	char *err = NULL;
	cr_assert_not(store_find(st, ref, plan, &r, &err), "store_find(%s) found %s", ref ? ref : "NULL", r.id);
	/* DIR in want is the state directory */
	struct buf w = {0};
	for (const char *p = want; *p;) {
		const char *d = strstr(p, "DIR");
		size_t n = d ? (size_t)(d - p) : strlen(p);
		buf_add(&w, p, n);
		p += n;
		if (d) {
			buf_printf(&w, "%s", tmp);
			p += 3;
		}
	}
	cr_assert_str_eq(err, w.data);
	cr_assert_null(r.id);
	buf_free(&w);
	free(err);
}

Test(store, find_by_id_by_unique_prefix_and_the_newest)
{
	struct store *st = open_writer(tmp);
	three_runs(st);
	find_ok(st, "20260101T000000Z-aaaaaa", NULL, "20260101T000000Z-aaaaaa");
	find_ok(st, "20260101T000000Z-aab", NULL, "20260101T000000Z-aabbbb");
	find_ok(st, "20260102", NULL, "20260102T000000Z-cccccc");
	find_ok(st, NULL, NULL, "20260101T000000Z-aabbbb");
	find_ok(st, NULL, "/p/one.yaml", "20260102T000000Z-cccccc");
	store_close(st);
}

Test(store, an_id_that_is_also_a_prefix_of_another_is_that_run)
{
	struct store *st = open_writer(tmp);
	begin(st, "20260101T000000Z-aa", NULL, 10);
	begin(st, "20260101T000000Z-aab", NULL, 10);
	find_ok(st, "20260101T000000Z-aa", NULL, "20260101T000000Z-aa");
	store_close(st);
}

Test(store, find_an_ambiguous_prefix_lists_the_runs_it_begins)
{
	struct store *st = open_writer(tmp);
	three_runs(st);
	find_fails(st, "20260101T000000Z-aa", NULL,
		   "run '20260101T000000Z-aa' is ambiguous: it begins 20260101T000000Z-aabbbb, 20260101T000000Z-aaaaaa");
	find_fails(st, "2026", NULL,
		   "run '2026' is ambiguous: it begins 20260101T000000Z-aabbbb, 20260102T000000Z-cccccc, "
		   "20260101T000000Z-aaaaaa");
	/* more than five: the first five, then ... */
	for (int i = 0; i < 5; i++) {
		char id[48];
		snprintf(id, sizeof id, "20260103T000000Z-00000%d", i);
		begin(st, id, NULL, 20);
	}
	struct store_run r;
	char *err = NULL;
	cr_assert_not(store_find(st, "2026", NULL, &r, &err));
	cr_assert(strstr(err, ", ...") && !strcmp(err + strlen(err) - 5, ", ..."), "%s", err);
	free(err);
	store_close(st);
}

Test(store, find_an_unknown_run_says_where_it_looked)
{
	struct store *st = open_writer(tmp);
	find_fails(st, NULL, NULL, "no run is recorded in DIR");
	three_runs(st);
	find_fails(st, "2027", NULL, "no run '2027' is recorded in DIR ('baton runs' lists them)");
	/* a prefix is a prefix, not a LIKE pattern */
	find_fails(st, "2026%", NULL, "no run '2026%' is recorded in DIR ('baton runs' lists them)");
	find_fails(st, "20260101T000000Z_", NULL, "no run '20260101T000000Z_' is recorded in DIR ('baton runs' lists them)");
	find_fails(st, NULL, "/p/three.yaml", "no run of /p/three.yaml is recorded in DIR");
	store_close(st);
}

Test(store, list_newest_first_and_by_plan)
{
	struct store *st = open_writer(tmp);
	three_runs(st);
	size_t n = 0;
	struct store_run *v = store_list(st, 0, NULL, &n);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(v[0].id, "20260101T000000Z-aabbbb");
	cr_assert_str_eq(v[1].id, "20260102T000000Z-cccccc");
	cr_assert_str_eq(v[2].id, "20260101T000000Z-aaaaaa");
	for (size_t i = 0; i < n; i++)
		store_run_free(&v[i]);
	free(v);
	v = store_list(st, 1, "/p/one.yaml", &n);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(v[0].id, "20260102T000000Z-cccccc");
	store_run_free(&v[0]);
	free(v);
	store_close(st);
}

/* ---- store_run_alive, and crashed runs ---- */

Test(store, run_alive_only_for_its_pid_with_its_start_time_in_this_boot)
{
	struct store_run r = {.pid = (long)getpid(), .pid_start = store_proc_start(getpid())};
	cr_assert_neq(r.pid_start, 0);
	cr_assert(store_run_alive(&r), "this process, its start time, no boot id");
	r.boot_id = (char *)store_boot_id();
	cr_assert(store_run_alive(&r), "this process, its start time, this boot");
	r.boot_id = "00000000-0000-0000-0000-000000000000";
	cr_assert_not(store_run_alive(&r), "recorded in another boot");
	r.boot_id = NULL;
	r.pid_start++;
	cr_assert_not(store_run_alive(&r), "the pid reused by another process (another start time)");
	r.pid = dead_pid();
	r.pid_start = 1;
	cr_assert_not(store_run_alive(&r), "a pid no process has");
	r.pid = 0;
	cr_assert_not(store_run_alive(&r), "no pid");
	/* a zombie (killed, not reaped: an init that does not reap) has died */
	pid_t z = fork();
	cr_assert_geq(z, 0);
	if (!z)
		_exit(0);
	char path[64], st = 0;
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)z);
	for (int i = 0; i < 200 && st != 'Z'; i++) {
		FILE *f = fopen(path, "re");
		cr_assert_not_null(f);
		cr_assert_eq(fscanf(f, "%*d (%*[^)]) %c", &st), 1);
		fclose(f);
		if (st != 'Z')
			usleep(10000);
	}
	cr_assert_eq(st, 'Z', "the child did not become a zombie");
	r.pid = (long)z;
	r.pid_start = 1;
	cr_assert_eq(store_proc_start(r.pid), 0, "a zombie's start time");
	cr_assert_not(store_run_alive(&r), "a zombie");
	int ws;
	waitpid(z, &ws, 0);
	/* the parent's start time is not ours */
	r.pid = (long)getppid();
	r.pid_start = store_proc_start(getpid());
	if (store_proc_start(getppid()) != r.pid_start)
		cr_assert_not(store_run_alive(&r));
}

Test(store, a_running_run_whose_controller_is_gone_reads_as_crashed)
{
	struct store *st = open_writer(tmp);
	begin(st, "20260101T000000Z-000001", NULL, 10);
	sql(tmp, "UPDATE runs SET pid = %ld", dead_pid());
	struct store *rd = open_reader(tmp);
	struct store_run r;
	char *err = NULL;
	cr_assert(store_find(rd, NULL, NULL, &r, &err), "%s", err);
	cr_assert_eq(r.state, RS_CRASHED);
	cr_assert_str_eq(run_state_name(r.state), "crashed");
	store_run_free(&r);
	store_close(rd);
	store_close(st);
}

/* ---- the writer sink, read back with store_tasks ---- */

struct rec {
	struct store *st;
	struct bus bus;
};

static void rec_start(struct rec *R, const char *id)
{
	R->st = open_writer(tmp);
	begin(R->st, id, NULL, 10);
	bus_init(&R->bus, id, NULL, 0);
	bus_add(&R->bus, store_sink_new(R->st, NULL, &R->bus));
}

static void task_start(struct rec *R, const char *task, const char *step, int attempt, const char *command)
{
	struct event e = {.type = EV_TASK_START, .task = task, .step = step, .attempt = attempt, .command = command,
			  .exit_code = -1};
	bus_emit(&R->bus, &e);
}

static void task_end(struct rec *R, const char *task, enum status s, int attempt, const char *out, bool reused)
{
	struct event e = {.type = EV_TASK_END, .task = task, .step = task, .status = s, .attempt = attempt,
			  .exit_code = s == ST_SUCCESS ? 0 : 1, .reason = s == ST_SUCCESS ? NULL : "exit code 1",
			  .duration_ms = 5, .out = out, .out_len = out ? strlen(out) : 0, .err = out ? "" : NULL,
			  .reused = reused, .command = reused ? "echo again" : NULL};
	bus_emit(&R->bus, &e);
}

static void step_end(struct rec *R, const char *step, const char *kind, enum status s)
{
	struct event e = {.type = EV_STEP_END, .step = step, .kind = kind, .status = s, .depth = 1};
	bus_emit(&R->bus, &e);
}

static void step_start(struct rec *R, const char *step)
{
	struct event e = {.type = EV_STEP_START, .step = step, .kind = "run", .depth = 1};
	bus_emit(&R->bus, &e);
}

/* The last status recorded of task, as another process reads it now. */
static char *status_now(const char *run, const char *task)
{
	struct store *rd = open_reader(tmp);
	size_t n = 0;
	struct store_task *t = store_tasks(rd, run, false, &n);
	char *s = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(t[i].id, task)) {
			free(s);
			s = xstrdup(t[i].status);
		}
		store_task_free(&t[i]);
	}
	free(t);
	store_close(rd);
	return s;
}

Test(store, tasks_read_back_in_the_order_they_started_a_retry_once_per_attempt_steps_as_they_ended)
{
	const char *run = "20260101T000000Z-000001";
	struct rec R;
	rec_start(&R, run);
	task_start(&R, "grp.a", "grp.a", 1, "echo a");
	task_start(&R, "grp.b", "grp.b", 1, "echo b");
	task_end(&R, "grp.b", ST_SUCCESS, 1, "B-OUT", false);
	task_end(&R, "grp.a", ST_FAILED, 1, NULL, false);
	task_start(&R, "grp.a", "grp.a", 2, "echo a");
	task_end(&R, "grp.a", ST_SUCCESS, 2, "A-OUT", false);
	task_end(&R, "grp.c", ST_SUCCESS, 1, "C-OUT", true); /* carried over by resume: no start */
	step_end(&R, "grp", "parallel", ST_SUCCESS);
	struct event end = {.type = EV_RUN_END, .status = ST_SUCCESS, .exit_code_run = 0, .counts = {4, 0, 0, 0, 0}};
	bus_emit(&R.bus, &end);
	bus_close(&R.bus);

	struct store *rd = open_reader(tmp);
	size_t n = 0;
	struct store_task *t = store_tasks(rd, run, true, &n);
	cr_assert_eq(n, 5);
	const char *ids[] = {"grp.a", "grp.b", "grp.a", "grp.c", "grp"};
	const char *st[] = {"failed", "success", "success", "success", "success"};
	const int attempt[] = {1, 1, 2, 1, 0};
	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(t[i].id, ids[i], "row %zu", i);
		cr_assert_str_eq(t[i].status, st[i], "row %zu (%s)", i, ids[i]);
		cr_assert_eq(t[i].attempt, attempt[i], "row %zu (%s)", i, ids[i]);
		cr_assert_eq(t[i].reused, i == 3, "row %zu (%s)", i, ids[i]);
		cr_assert_eq(t[i].kind != NULL, i == 4, "row %zu (%s)", i, ids[i]);
	}
	cr_assert_str_eq(t[0].reason, "exit code 1");
	cr_assert_null(t[0].out);
	cr_assert_str_eq(t[1].out, "B-OUT");
	cr_assert_eq(t[1].out_len, 5);
	cr_assert_str_eq(t[1].command, "echo b");
	cr_assert_str_eq(t[2].out, "A-OUT");
	cr_assert_str_eq(t[3].out, "C-OUT");
	cr_assert_str_eq(t[3].command, "echo again");
	cr_assert_str_eq(t[4].kind, "parallel");
	for (size_t i = 0; i < n; i++)
		store_task_free(&t[i]);
	free(t);
	/* without output, none is read */
	t = store_tasks(rd, run, false, &n);
	cr_assert_eq(n, 5);
	cr_assert_null(t[1].out);
	for (size_t i = 0; i < n; i++)
		store_task_free(&t[i]);
	free(t);
	/* the run's end */
	struct store_run r;
	char *err = NULL;
	cr_assert(store_find(rd, run, NULL, &r, &err), "%s", err);
	cr_assert_eq(r.state, RS_SUCCESS);
	cr_assert_eq(r.exit_code, 0);
	cr_assert_eq(r.counts[ST_SUCCESS], 4);
	cr_assert_neq(r.end_ms, 0);
	store_run_free(&r);
	/* another run's tasks are not this one's */
	cr_assert_null(store_tasks(rd, "20260101T000000Z-nosuch", false, &n));
	cr_assert_eq(n, 0);
	store_close(rd);
}

Test(store, an_end_is_committed_before_the_next_step_starts_and_at_a_barrier)
{
	const char *run = "20260101T000000Z-000001";
	struct rec R;
	rec_start(&R, run);
	task_start(&R, "a", "a", 1, "true");
	task_end(&R, "a", ST_SUCCESS, 1, NULL, false);
	/* gathered in the open transaction: not visible to others yet */
	char *s = status_now(run, "a");
	cr_assert_null(s, "the end was committed at once (%s): expected once per turn of the loop", s);
	step_start(&R, "b"); /* what starts now may read a's end */
	s = status_now(run, "a");
	cr_assert_not_null(s, "a's end not committed when the next step started");
	cr_assert_str_eq(s, "success");
	free(s);
	task_start(&R, "b", "b", 1, "true");
	task_end(&R, "b", ST_SUCCESS, 1, NULL, false);
	bus_barrier(&R.bus); /* before an output stream shows b's end */
	s = status_now(run, "b");
	cr_assert_not_null(s, "b's end not committed at the barrier");
	cr_assert_str_eq(s, "success");
	free(s);
	bus_close(&R.bus);
}

static void stop_loop(uv_timer_t *h)
{
	uv_close((uv_handle_t *)h, NULL);
}

Test(store, a_task_still_running_is_recorded_running_within_100ms)
{
	/* its row waits for the sink's tick (every 100 ms), not for every commit */
	const char *run = "20260101T000000Z-000001";
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct rec R;
	R.st = open_writer(tmp);
	begin(R.st, run, NULL, 10);
	bus_init(&R.bus, run, NULL, 0);
	bus_add(&R.bus, store_sink_new(R.st, &loop, &R.bus));
	task_start(&R, "slow", "slow", 1, "sleep 9");
	struct event pe = {.type = EV_TASK_PROCESS, .task = "slow", .pgid = 4242};
	bus_emit(&R.bus, &pe);
	bus_flush(&R.bus);
	uv_timer_t stop;
	uv_timer_init(&loop, &stop);
	uv_timer_start(&stop, stop_loop, 250, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	struct store *rd = open_reader(tmp);
	size_t n = 0;
	struct store_task *t = store_tasks(rd, run, false, &n);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(t[0].status, "running");
	cr_assert_eq(t[0].pgid, 4242);
	cr_assert_neq(t[0].pgid_start_ms, 0);
	cr_assert_null(t[0].remote_host);
	cr_assert_not(t[0].reused);
	store_task_free(&t[0]);
	free(t);
	store_close(rd);
	bus_close(&R.bus);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
}
