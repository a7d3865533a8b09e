/*
 * db.c — opening the run store, its schema, and recording a run's start
 * (with pruning). The database is SQLite in WAL mode: the run's controller
 * is its only writer, any number of readers read at once without ever
 * blocking it, and a SIGKILL at any moment leaves it whole.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/internal.h"
#include "util/util.h"

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS runs ("
	" id TEXT PRIMARY KEY, plan TEXT NOT NULL, plan_abs TEXT NOT NULL, name TEXT, plan_sha256 TEXT,"
	" vars TEXT, argv TEXT, cwd TEXT, user TEXT,"
	" pid INTEGER, pid_start INTEGER, boot_id TEXT,"
	" state TEXT NOT NULL, exit_code INTEGER, start_ms INTEGER NOT NULL, end_ms INTEGER, tasks INTEGER,"
	" n_success INTEGER DEFAULT 0, n_failed INTEGER DEFAULT 0, n_timeout INTEGER DEFAULT 0,"
	" n_cancelled INTEGER DEFAULT 0, n_skipped INTEGER DEFAULT 0, resumed_from TEXT, n_tolerated INTEGER DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS runs_by_start ON runs (start_ms);"
	"CREATE TABLE IF NOT EXISTS files ("
	" run TEXT NOT NULL, idx INTEGER NOT NULL, path TEXT, sha256 TEXT, text BLOB,"
	" PRIMARY KEY (run, idx)) WITHOUT ROWID;"
	/*
	 * A task's key is its run's rowid << 32 | the order it started in: the
	 * writer appends at the right edge of one B-tree, so a commit writes a
	 * page or two, and a run's tasks are one range of keys. A retried task
	 * has a row per attempt; the last is its state.
	 */
	/*
	 * Steps that are not a task themselves (groups, fan-outs, a command on
	 * several hosts) have a row too, with their kind and depth, for the tree.
	 */
	"CREATE TABLE IF NOT EXISTS tasks ("
	" k INTEGER PRIMARY KEY, id TEXT NOT NULL, kind TEXT, depth INTEGER, step TEXT, host TEXT, item TEXT,"
	" attempt INTEGER, status TEXT NOT NULL, exit_code INTEGER, signal INTEGER, reason TEXT,"
	" start_ms INTEGER, end_ms INTEGER, duration_ms INTEGER, command TEXT, out BLOB, err BLOB,"
	" pgid INTEGER, pgid_start_ms INTEGER, remote_host TEXT, remote_pgid INTEGER, reused INTEGER DEFAULT 0,"
	" env_hash TEXT, outputs TEXT, label TEXT, tolerated INTEGER DEFAULT 0);";

/*
 * The columns each schema after the first added (to tasks, unless said; index: the version
 * that added it). The counts of runs are of tasks (commands) since 4; before, of every step. An older store gains those it lacks; each is added only
 * when missing, so a store some build left half-way is set right too.
 */
static const struct {
	int version;
	const char *column; /* "NAME TYPE" */
	const char *table;  /* NULL: tasks */
} added_columns[] = {{2, "outputs TEXT", NULL},
		     {3, "label TEXT", NULL},
		     {4, "tolerated INTEGER DEFAULT 0", NULL},
		     {4, "n_tolerated INTEGER DEFAULT 0", "runs"}};

/* True when table has the column that starts `column` ("NAME TYPE"). */
static bool has_column(struct store *st, const char *table, const char *column)
{
	char *sql = xasprintf("SELECT %.*s FROM %s LIMIT 0", (int)strcspn(column, " "), column, table);
	sqlite3_stmt *q = NULL;
	bool has = sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) == SQLITE_OK;
	sqlite3_finalize(q);
	free(sql);
	return has;
}

bool db_exec(struct store *st, const char *sql, char **err)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) == SQLITE_OK)
		return true;
	if (err)
		*err = xasprintf("%s/runs.db: %s", st->dir, msg ? msg : sqlite3_errmsg(st->db));
	sqlite3_free(msg);
	return false;
}

sqlite3_stmt *db_prepare(struct store *st, const char *sql, char **err)
{
	sqlite3_stmt *q = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) == SQLITE_OK)
		return q;
	if (err)
		*err = xasprintf("%s/runs.db: %s", st->dir, sqlite3_errmsg(st->db));
	sqlite3_finalize(q);
	return NULL;
}

char *db_text(sqlite3_stmt *q, int col)
{
	const unsigned char *t = sqlite3_column_text(q, col);
	return t ? xstrdup((const char *)t) : NULL;
}

uint64_t store_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *store_boot_id(void)
{
	static char id[64];
	if (*id)
		return id;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "";
	ssize_t n = read(fd, id, sizeof id - 1);
	close(fd);
	if (n <= 0)
		return (*id = 0, "");
	id[n] = 0;
	id[strcspn(id, "\n")] = 0;
	return id;
}

uint64_t store_proc_start(long pid)
{
	if (pid <= 0)
		return 0;
	char path[64], b[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return 0;
	b[n] = 0;
	/* the command name may hold spaces and parentheses: fields count from the last ')' */
	char *p = strrchr(b, ')');
	if (!p)
		return 0;
	/*
	 * A zombie has died: a run whose controller was killed must read as
	 * crashed even when nobody reaps it (an init that does not, in a
	 * container).
	 */
	if (p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
		return 0;
	/* after ')': state is field 3, starttime field 22 (each space begins the next) */
	int field = 2;
	for (p++; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

const char *store_path(const struct store *st)
{
	return st->dir;
}

/* mkdir -p path with mode 0700 for what it creates; false with errno set. */
static bool mkdirs(const char *path)
{
	char *p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s)
			continue;
		char c = *s;
		*s = 0;
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			int e = errno;
			free(p);
			errno = e;
			return false;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return true;
}

enum setup_result { SETUP_OK, SETUP_FAILED, SETUP_BUSY };

/* The store's PRAGMA user_version, or -1 with *err. */
static int user_version(struct store *st, char **err)
{
	sqlite3_stmt *q = db_prepare(st, "PRAGMA user_version", err);
	bool ok = q && sqlite3_step(q) == SQLITE_ROW;
	int version = ok ? sqlite3_column_int(q, 0) : -1;
	if (q && !ok && err && !*err)
		*err = xasprintf("%s/runs.db: %s", st->dir, sqlite3_errmsg(st->db));
	sqlite3_finalize(q);
	return version;
}

/* The pragmas, and the schema for a writer of a new store; SETUP_BUSY when another process holds it now. */
static enum setup_result setup(struct store *st, bool writer, char **err)
{
	const char *pragmas = writer ? "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-64;"
				     : "PRAGMA cache_size=-2048;";
	bool ok = db_exec(st, pragmas, err);
	int version = ok ? user_version(st, err) : -1, code = -1;
	ok = version >= 0;
	if (ok && version > STORE_SCHEMA) {
		*err = xasprintf("%s/runs.db was written by a newer baton (schema %d; this one knows %d)", st->dir, version,
				 STORE_SCHEMA);
		return SETUP_FAILED;
	}
	if (ok && writer && version < STORE_SCHEMA) {
		/* asked again under the write lock: another writer may have set the schema up meanwhile */
		ok = db_exec(st, "BEGIN IMMEDIATE", err) && (version = user_version(st, err)) >= 0;
		if (ok && version < STORE_SCHEMA) {
			struct buf up = {0}; /* a new store gets the whole schema; an older one the columns it lacks */
			buf_adds(&up, schema);
			ok = db_exec(st, up.data, err);
			buf_reset(&up);
			for (size_t i = 0; ok && version > 0 && i < ARRAY_LEN(added_columns); i++)
				if (added_columns[i].version > version &&
				    !has_column(st, added_columns[i].table ? added_columns[i].table : "tasks",
						added_columns[i].column))
					buf_printf(&up, "ALTER TABLE %s ADD COLUMN %s;",
						   added_columns[i].table ? added_columns[i].table : "tasks",
						   added_columns[i].column);
			buf_printf(&up, " PRAGMA user_version=%d;", STORE_SCHEMA);
			ok = ok && db_exec(st, up.data, err);
			buf_free(&up);
			version = STORE_SCHEMA;
		}
		if (ok)
			ok = db_exec(st, "COMMIT", err);
		if (!ok) {
			code = sqlite3_errcode(st->db) & 0xff; /* before the rollback's own */
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		}
	} else if (ok && !writer && version < 1) {
		*err = xasprintf("%s/runs.db holds no runs", st->dir);
		return SETUP_FAILED;
	}
	if (ok) {
		st->schema = version;
		return SETUP_OK;
	}
	if (code < 0)
		code = sqlite3_errcode(st->db) & 0xff;
	return code == SQLITE_BUSY || code == SQLITE_LOCKED ? SETUP_BUSY : SETUP_FAILED;
}

struct store *store_open(const char *dir, bool writer, char **err)
{
	if (writer && !mkdirs(dir)) {
		*err = xasprintf("cannot create the state directory %s: %s", dir, strerror(errno));
		return NULL;
	}
	char *path = xasprintf("%s/runs.db", dir);
	if (!writer && access(path, F_OK) != 0) {
		*err = xasprintf("no runs recorded in %s", dir);
		free(path);
		return NULL;
	}
	struct store *st = xcalloc(1, sizeof *st);
	st->dir = xstrdup(dir);
	st->writer = writer;
	/*
	 * No lookaside buffers (120 KiB a connection by default): a run keeps
	 * its memory for its tasks. Only before SQLite's first use.
	 */
	static bool configured;
	if (!configured) {
		sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0);
		configured = true;
	}
	/* the database and its WAL are private: commands' output may be */
	mode_t old = umask(077);
	int flags = writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READWRITE;
	int rc = sqlite3_open_v2(path, &st->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK && !writer) {
		/* a reader of a store it cannot write (another user's, read-only media) still reads */
		sqlite3_close(st->db);
		st->db = NULL;
		rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	}
	umask(old);
	free(path);
	if (rc != SQLITE_OK) {
		*err = xasprintf("%s/runs.db: %s", dir, st->db ? sqlite3_errmsg(st->db) : "out of memory");
		store_close(st);
		return NULL;
	}
	sqlite3_busy_timeout(st->db, 5000);
	/*
	 * A run does not wait at its end for the WAL to go back into the
	 * database (two fsyncs): the WAL stays for the next, and goes back in a
	 * commit once it holds 1,000 pages (SQLite's automatic checkpoint).
	 */
	sqlite3_db_config(st->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	/*
	 * WAL: readers never block the writer. synchronous=NORMAL: a commit is a
	 * write to the WAL, no fsync; a SIGKILL loses nothing committed, a power
	 * cut at most the last commits, never the database's integrity. A small
	 * page cache: the writer appends, it rarely reads back.
	 */
	/*
	 * Two runs that start at once on a new store both set it up: switching
	 * to WAL and creating the schema can report "locked" without waiting
	 * (SQLite's busy handler is not asked there). Tried again, 100 times
	 * 20 ms apart.
	 */
	enum setup_result r = SETUP_BUSY;
	for (int tries = 0; r == SETUP_BUSY && tries < 100; tries++) {
		if (tries) {
			free(*err);
			*err = NULL;
			struct timespec ts = {0, 20 * 1000000L};
			nanosleep(&ts, NULL);
		}
		r = setup(st, writer, err);
	}
	if (r != SETUP_OK) {
		store_close(st);
		return NULL;
	}
	return st;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->db)
		sqlite3_close_v2(st->db);
	free(st->dir);
	free(st);
}

char *store_events_path(const struct store *st, const char *run_id)
{
	return xasprintf("%s/runs/%s/events.jsonl", st->dir, run_id);
}

/* Removes dir/runs/ID and what it holds (one level: the store writes no deeper). */
static void remove_run_dir(const struct store *st, const char *id)
{
	char *d = xasprintf("%s/runs/%s", st->dir, id);
	DIR *h = opendir(d);
	if (h) {
		struct dirent *e;
		while ((e = readdir(h)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
				char *f = xasprintf("%s/%s", d, e->d_name);
				unlink(f);
				free(f);
			}
		closedir(h);
	}
	rmdir(d);
	free(d);
}

/* Runs beyond the newest keep, but never one whose controller is alive. */
static char **prune_list(struct store *st, size_t keep, size_t *n, char **err)
{
	*n = 0;
	sqlite3_stmt *q = db_prepare(st,
				     "SELECT id, state, pid, pid_start, boot_id FROM runs"
				     " ORDER BY start_ms DESC, id DESC LIMIT -1 OFFSET ?",
				     err);
	if (!q)
		return NULL;
	sqlite3_bind_int64(q, 1, (sqlite3_int64)keep);
	char **ids = NULL;
	while (sqlite3_step(q) == SQLITE_ROW) {
		struct store_run r = {0};
		const char *state = (const char *)sqlite3_column_text(q, 1);
		r.pid = (long)sqlite3_column_int64(q, 2);
		r.pid_start = (uint64_t)sqlite3_column_int64(q, 3);
		r.boot_id = db_text(q, 4);
		bool live = state && !strcmp(state, "running") && store_run_alive(&r);
		free(r.boot_id);
		if (live)
			continue;
		ids = xrealloc(ids, (*n + 1) * sizeof *ids);
		ids[(*n)++] = db_text(q, 0);
	}
	sqlite3_finalize(q);
	return ids;
}

/* Deletes the runs in ids (their rows) within the open transaction. */
static bool prune_rows(struct store *st, char **ids, size_t n, char **err)
{
	static const char *const sql[] = {
		("DELETE FROM tasks WHERE k >= (SELECT rowid FROM runs WHERE id = ?1) << 32"
		 " AND k < ((SELECT rowid FROM runs WHERE id = ?1) + 1) << 32"),
		"DELETE FROM files WHERE run = ?1", "DELETE FROM runs WHERE id = ?1"};
	for (size_t k = 0; k < ARRAY_LEN(sql); k++) {
		sqlite3_stmt *q = db_prepare(st, sql[k], err);
		if (!q)
			return false;
		for (size_t i = 0; i < n; i++) {
			sqlite3_bind_text(q, 1, ids[i], -1, SQLITE_STATIC);
			int rc = sqlite3_step(q);
			sqlite3_reset(q);
			if (rc != SQLITE_DONE) {
				*err = xasprintf("%s/runs.db: %s", st->dir, sqlite3_errmsg(st->db));
				sqlite3_finalize(q);
				return false;
			}
		}
		sqlite3_finalize(q);
	}
	return true;
}

/* In an open transaction: deletes the rows of the runs beyond the newest keep; *old gets their ids. */
static bool prune_begin(struct store *st, size_t keep, char ***old, size_t *n_old, char **err)
{
	*old = prune_list(st, keep, n_old, err);
	return (*old || !*n_old) && !*err && prune_rows(st, *old, *n_old, err);
}

/*
 * The transaction is over: committed, the pruned runs' directories go (the
 * rows went first: a directory a crash leaves is only files, never half a
 * run); else it is rolled back. Frees old.
 */
static void prune_done(struct store *st, char **old, size_t n_old, bool committed)
{
	if (!committed)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	for (size_t i = 0; i < n_old; i++) {
		if (committed)
			remove_run_dir(st, old[i]);
		free(old[i]);
	}
	free(old);
}

bool store_prune(struct store *st, size_t keep, size_t *removed, char **err)
{
	*removed = 0;
	if (!db_exec(st, "BEGIN IMMEDIATE", err))
		return false;
	size_t n_old = 0;
	char **old = NULL;
	bool ok = prune_begin(st, keep, &old, &n_old, err) && db_exec(st, "COMMIT", err);
	prune_done(st, old, n_old, ok);
	if (ok)
		*removed = n_old;
	return ok;
}

/*
 * Lowercase hex sha256 of data, into out (65 bytes); false, with out empty,
 * when libnettle cannot be loaded. It is loaded for these few hashes (a
 * run's files as it begins, resume's check) and let go at once: linked, its
 * pages would stay resident through the whole run.
 */
static bool sha256_hex(const char *data, size_t n, char out[65])
{
	out[0] = '\0';
	void *lib = dlopen("libnettle.so.8", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return false;
	__typeof__(&sha256_init) init;
	__typeof__(&sha256_update) update;
	__typeof__(&sha256_digest) digest;
	_Static_assert(sizeof init == sizeof(void *), "function pointers fit in void *");
	*(void **)&init = dlsym(lib, "nettle_sha256_init");
	*(void **)&update = dlsym(lib, "nettle_sha256_update");
	*(void **)&digest = dlsym(lib, "nettle_sha256_digest");
	bool ok = init && update && digest;
	if (ok) {
		struct sha256_ctx c;
		uint8_t d[SHA256_DIGEST_SIZE];
		init(&c);
		update(&c, n, (const uint8_t *)data);
		digest(&c, sizeof d, d);
		for (size_t i = 0; i < sizeof d; i++)
			snprintf(out + 2 * i, 3, "%02x", d[i]);
	}
	dlclose(lib);
	return ok;
}

bool store_nettle_version(int *major, int *minor, const char **why)
{
	/* loaded as sha256_hex loads it, and let go */
	*why = NULL;
	void *lib = dlopen("libnettle.so.8", RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		*why = dlerror();
		return false;
	}
	int (*maj)(void), (*min)(void);
	*(void **)&maj = dlsym(lib, "nettle_version_major");
	*(void **)&min = dlsym(lib, "nettle_version_minor");
	bool ok = maj && min;
	if (ok) {
		*major = maj();
		*minor = min();
	} else {
		*why = "libnettle.so.8 lacks nettle_version_major (nettle 3.1 or later is needed)";
	}
	dlclose(lib);
	return ok;
}

const char *store_sqlite_version(void)
{
	return sqlite3_libversion();
}

void store_text_hash(const char *data, size_t n, char out[33])
{
	/* two FNV-1a 64 with different offsets: equality of a task's environment, not a secret's protection */
	uint64_t a = 14695981039346656037u, b = 1099511628211u * 31u;
	for (size_t i = 0; i < n; i++) {
		a = (a ^ (unsigned char)data[i]) * 1099511628211u;
		b = (b ^ (unsigned char)data[i]) * 1099511628211u;
	}
	snprintf(out, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

static const char *user_name(void)
{
	struct passwd *pw = getpwuid(geteuid());
	if (pw && pw->pw_name)
		return pw->pw_name;
	const char *u = getenv("USER");
	return u ? u : "?";
}

static bool insert_run(struct store *st, const struct store_run_info *ri, char **err)
{
	sqlite3_stmt *q = db_prepare(st,
				     "INSERT INTO runs (id, plan, plan_abs, name, plan_sha256, vars, argv, cwd, user, pid,"
				     " pid_start, boot_id, state, start_ms, tasks, resumed_from)"
				     " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'running',?,?,?)",
				     err);
	if (!q)
		return false;
	char sha[65] = "";
	if (ri->n_files)
		sha256_hex(ri->files[0].text, ri->files[0].len, sha);
	char *cwd = getcwd(NULL, 0);
	sqlite3_bind_text(q, 1, ri->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, ri->plan, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, ri->plan_abs ? ri->plan_abs : ri->plan, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, ri->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, sha, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, ri->vars_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, ri->argv_json, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, cwd, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 9, user_name(), -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(q, 10, (sqlite3_int64)getpid());
	sqlite3_bind_int64(q, 11, (sqlite3_int64)store_proc_start(getpid()));
	sqlite3_bind_text(q, 12, store_boot_id(), -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 13, (sqlite3_int64)store_now_ms());
	sqlite3_bind_int64(q, 14, ri->tasks);
	sqlite3_bind_text(q, 15, ri->resumed_from, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	sqlite3_finalize(q);
	free(cwd);
	if (rc != SQLITE_DONE) {
		*err = xasprintf("%s/runs.db: %s", st->dir, sqlite3_errmsg(st->db));
		return false;
	}
	q = db_prepare(st, "INSERT INTO files (run, idx, path, sha256, text) VALUES (?,?,?,?,?)", err);
	if (!q)
		return false;
	for (size_t i = 0; i < ri->n_files && rc == SQLITE_DONE; i++) {
		sha256_hex(ri->files[i].text, ri->files[i].len, sha);
		sqlite3_bind_text(q, 1, ri->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, (sqlite3_int64)i);
		sqlite3_bind_text(q, 3, ri->files[i].path, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 4, sha, -1, SQLITE_STATIC);
		sqlite3_bind_blob(q, 5, ri->files[i].text, (int)ri->files[i].len, SQLITE_STATIC);
		rc = sqlite3_step(q);
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE) {
		*err = xasprintf("%s/runs.db: %s", st->dir, sqlite3_errmsg(st->db));
		return false;
	}
	return true;
}

bool store_begin(struct store *st, const struct store_run_info *ri, size_t keep, char **err)
{
	if (!db_exec(st, "BEGIN IMMEDIATE", err))
		return false;
	size_t n_old = 0;
	char **old = NULL;
	bool ok = prune_begin(st, keep ? keep - 1 : 0, &old, &n_old, err) && insert_run(st, ri, err) &&
		  db_exec(st, "COMMIT", err);
	prune_done(st, old, n_old, ok);
	if (!ok)
		return false;
	char *d = xasprintf("%s/runs/%s", st->dir, ri->id);
	ok = mkdirs(d);
	if (!ok)
		*err = xasprintf("cannot create %s: %s", d, strerror(errno));
	free(d);
	return ok;
}

char *store_read_file(const char *path, size_t *len)
{
	*len = 0;
	FILE *f = fopen(path, "rbe");
	if (!f)
		return NULL;
	struct buf b = {0};
	char tmp[8192];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_add(&b, tmp, n);
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		buf_free(&b);
		return NULL;
	}
	*len = b.len;
	return b.data ? buf_detach(&b) : xstrdup("");
}

bool store_file_changed(const char *path, const char *sha256)
{
	size_t len;
	char *text = store_read_file(path, &len);
	char sha[65];
	bool hashed = text && sha256_hex(text, len, sha);
	free(text);
	return !hashed || !sha256 || strcmp(sha, sha256);
}
