/*
 * lock.c — cross-run locks (runs.md "Cross-run locks"): a plan's `lock: NAME`
 * is an OS file lock (flock) on STATE_DIR/locks/NAME, held by the run's
 * controller from before anything runs until the run ends. The kernel drops
 * it when the controller exits, however it exits, so a crashed holder never
 * leaves it taken. The file holds one line saying who holds it, for the
 * runs that find it taken: RUN_ID TAB USER TAB SINCE TAB PID.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/util.h"

#define LOCK_POLL_MS 50     /* how often a waiting run tries again */
#define LOCK_HOLDER_MAX 1024 /* the most of a holder line that is read */

struct store_lock {
	int fd;
};

/* Creates dir and its missing parents, each 0700; an existing directory is fine. */
static bool mkdir_p(const char *dir, char **why)
{
	char *path = xstrdup(dir);
	bool ok = true;
	for (char *p = path + 1; ok; p++) {
		bool end = !*p;
		if (*p != '/' && !end)
			continue;
		*p = '\0';
		struct stat st;
		/* mkdir may refuse an existing directory it could not create (EACCES, EROFS): that one is fine */
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			int e = errno;
			if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
				*why = xasprintf("cannot create %s: %s", path, strerror(e));
				ok = false;
			}
		}
		if (end)
			break;
		*p = '/';
	}
	free(path);
	return ok;
}

/* A lock name must name one file in the locks directory and nothing else (the loader checks it fully). */
static bool name_ok(const char *name)
{
	return *name && *name != '.' && !strchr(name, '/');
}

/* The effective user's name, else its uid; without tabs or newlines, which separate the holder line (caller frees). */
static char *user_name(void)
{
	struct passwd *pw = getpwuid(geteuid());
	char *u = pw && pw->pw_name && *pw->pw_name ? xstrdup(pw->pw_name) : xasprintf("%lu", (unsigned long)geteuid());
	for (char *c = u; *c; c++)
		if (*c == '\t' || *c == '\n')
			*c = '?';
	return u;
}

/*
 * Says who holds the lock, from its file's first line (caller frees). The
 * text is the holder's: control characters are made visible before it
 * reaches a terminal. A holder that has not written its line yet is
 * "another run".
 */
static char *holder_text(int fd, const char *name)
{
	char line[LOCK_HOLDER_MAX + 1];
	ssize_t n = pread(fd, line, LOCK_HOLDER_MAX, 0);
	char *f[4] = {NULL};
	size_t nf = 0;
	if (n > 0) {
		line[n] = '\0';
		char *nl = strchr(line, '\n');
		if (nl) { /* only a whole line: a holder may be writing it right now */
			*nl = '\0';
			for (char *s = line; nf < 4 && s; nf++) {
				f[nf] = s;
				if ((s = strchr(s, '\t')))
					*s++ = '\0';
			}
		}
	}
	if (nf < 3 || !*f[0])
		return xasprintf("lock %s is held by another run", name);
	struct buf b = {0};
	buf_printf(&b, "lock %s is held by run ", name);
	str_visible(&b, f[0], strlen(f[0]));
	buf_adds(&b, " (user ");
	str_visible(&b, f[1], strlen(f[1]));
	buf_adds(&b, ", since ");
	str_visible(&b, f[2], strlen(f[2]));
	buf_addc(&b, ')');
	return buf_detach(&b);
}

/*
 * Records the holder. Written over the old line, then cut to its length, so
 * that a reader sees a whole line, old or new, never an empty file. Failing
 * to write it does not give up the lock: it only says who holds it.
 */
static void holder_write(int fd, const char *path, const char *run_id, FILE *err)
{
	char since[32];
	clock_iso(since);
	char *user = user_name();
	char *line = xasprintf("%s\t%s\t%s\t%ld\n", run_id && *run_id ? run_id : "-", user, since, (long)getpid());
	size_t len = strlen(line);
	ssize_t n = pwrite(fd, line, len, 0);
	if ((n < 0 || (size_t)n != len || ftruncate(fd, (off_t)len) != 0) && err)
		fprintf(err, "baton: warning: cannot record the lock's holder in %s: %s\n", path,
			n >= 0 && (size_t)n != len ? "short write" : strerror(errno));
	free(line);
	free(user);
}

/* Sleeps ms (or less: a signal cuts it short, and the caller looks again). False when the clock refuses. */
static bool nap(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	return nanosleep(&ts, NULL) == 0 || errno == EINTR;
}

/* Tries the lock until wait_ms have passed; says once on err who holds it while it waits. */
static bool lock_wait(int fd, const char *name, const char *path, uint64_t wait_ms, FILE *err, char **why)
{
	uint64_t start = clock_ms();
	bool said = false;
	char d[32];
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			if (said && err) {
				duration_format(clock_ms() - start, d, sizeof d);
				fprintf(err, "baton: took lock %s after %s\n", name, d);
			}
			return true;
		}
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			*why = xasprintf("lock %s: %s: %s", name, path, strerror(errno));
			return false;
		}
		uint64_t waited = clock_ms() - start;
		if (waited >= wait_ms) {
			*why = holder_text(fd, name);
			return false;
		}
		if (!said && err) {
			char *h = holder_text(fd, name);
			duration_format(wait_ms, d, sizeof d);
			fprintf(err, "baton: %s; waiting up to %s\n", h, d);
			fflush(err);
			free(h);
		}
		said = true;
		uint64_t left = wait_ms - waited;
		if (!nap(left < LOCK_POLL_MS ? left : LOCK_POLL_MS)) {
			*why = xasprintf("lock %s: cannot wait: %s", name, strerror(errno));
			return false;
		}
	}
}

struct store_lock *store_lock_take(const char *dir, const char *name, uint64_t wait_ms, const char *run_id,
				   FILE *err, char **why)
{
	*why = NULL;
	if (!name_ok(name)) {
		*why = xasprintf("bad lock name '%s'", name);
		return NULL;
	}
	char *locks = xasprintf("%s/locks", dir);
	if (!mkdir_p(locks, why)) {
		free(locks);
		return NULL;
	}
	char *path = xasprintf("%s/%s", locks, name);
	free(locks);
	/* close-on-exec: a command that outlives the run must not keep the lock */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*why = xasprintf("lock %s: %s: %s", name, path, strerror(errno));
		free(path);
		return NULL;
	}
	if (!lock_wait(fd, name, path, wait_ms, err, why)) {
		close(fd);
		free(path);
		return NULL;
	}
	holder_write(fd, path, run_id, err);
	free(path);
	struct store_lock *l = xmalloc(sizeof *l);
	l->fd = fd;
	return l;
}

void store_lock_release(struct store_lock *l)
{
	if (!l)
		return;
	/*
	 * The holder line stays: it is rewritten by the next holder, and a
	 * waiter that reads it between release and the next take still sees a
	 * whole line. Closing the only descriptor drops the lock.
	 */
	close(l->fd);
	free(l);
}
