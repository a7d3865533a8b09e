/*
 * copy_local.c — `copy` and `fetch` without a host: files copied on this
 * machine (exec.h, exec_copy_*). The copy runs on libuv's thread pool, as
 * libuv's own file operations do, so the loop never waits for a disk; it
 * streams through one fixed buffer and stops at the next buffer when asked.
 * A spec with a host goes to the SSH executor's SFTP (sftp.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/copy.h"
#include "exec/exec.h"
#include "util/util.h"

#define COPY_BUF 65536

struct exec_copy {
	uv_work_t work;
	atomic_bool stop;
	struct exec_copy_spec spec; /* its strings owned */
	struct exec_callbacks cb;
	void *ud;
	struct executor *ssh;  /* remote: the SSH executor running proc */
	struct exec_proc *proc;
	char *error;
	bool changed;
	uint64_t bytes;
	/* progress for the loop's thread (exec_copy_progress): bytes so far, and the one file's size or -1 */
	atomic_uint_least64_t done_bytes;
	atomic_int_least64_t total;
	char buf[2][COPY_BUF];
};

/* Records the first error (printf-style); false, for `return fail(...)`. */
static bool fail(struct exec_copy *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(struct exec_copy *c, const char *fmt, ...)
{
	if (c->error)
		return false;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&c->error, fmt, ap) < 0)
		c->error = NULL;
	va_end(ap);
	if (!c->error)
		c->error = xstrdup("out of memory");
	return false;
}

static bool stopped(struct exec_copy *c)
{
	return atomic_load(&c->stop) ? fail(c, "stopped"), true : false;
}

/* An errno as a user reads it, for a path being written. */
static const char *why(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
		return "permission denied";
	case ENOSPC:
	case EDQUOT:
		return "no space left on the device (disk full)";
	case ENOENT:
		return "no such file or directory";
	case EROFS:
		return "read-only file system";
	default:
		return strerror(e);
	}
}

/* The directory part of path (caller frees); "." when it has none. */
char *copy_dir_of(const char *path)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--; /* "logs/h1/" is in "logs" */
	while (n > 0 && path[n - 1] != '/')
		n--;
	if (n == 0)
		return xstrdup(".");
	while (n > 1 && path[n - 1] == '/')
		n--;
	return xstrndup(path, n);
}

/* The last component of path, trailing slashes ignored (caller frees). */
char *copy_basename(const char *path)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && path[b - 1] != '/')
		b--;
	return xstrndup(path + b, n - b);
}

char *copy_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	return xasprintf("%.*s/%s", (int)n, dir, name);
}

/* Reads exactly len bytes unless the file ends first; the count, or -1. */
static ssize_t read_full(int fd, char *b, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, b + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* True when the two regular files hold the same bytes (sizes already equal). */
static bool same_content(struct exec_copy *c, const char *a, const char *b)
{
	int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
	bool same = fa >= 0 && fb >= 0;
	while (same && !stopped(c)) {
		ssize_t ra = read_full(fa, c->buf[0], COPY_BUF), rb = read_full(fb, c->buf[1], COPY_BUF);
		if (ra < 0 || rb < 0 || ra != rb || memcmp(c->buf[0], c->buf[1], (size_t)ra) != 0)
			same = false;
		else if (ra == 0)
			break;
	}
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
	return same && !c->error;
}

/* Why dest's directory cannot take a file, in words naming it. */
static bool dir_fail(struct exec_copy *c, const char *dest, int e)
{
	char *d = copy_dir_of(dest);
	bool r = e == ENOENT || e == ENOTDIR ? fail(c, "destination directory %s does not exist", d)
					     : fail(c, "cannot write in %s: %s", d, why(e));
	free(d);
	return r;
}

/* Copies the regular file src (st) to dest through a temporary name in dest's directory. */
static bool copy_file(struct exec_copy *c, const char *src, const struct stat *st, const char *dest)
{
	mode_t mode = c->spec.mode >= 0 ? (mode_t)c->spec.mode : st->st_mode & 07777;
	struct stat ds;
	if (lstat(dest, &ds) == 0 && S_ISREG(ds.st_mode) && ds.st_size == st->st_size && same_content(c, src, dest)) {
		if ((ds.st_mode & 07777) != mode) {
			if (chmod(dest, mode) != 0)
				return fail(c, "chmod %s: %s", dest, why(errno));
			c->changed = true;
		}
		return true;
	}
	if (c->error)
		return false;
	if (lstat(dest, &ds) == 0 && S_ISDIR(ds.st_mode))
		return fail(c, "%s is a directory, in the way of the file %s", dest, src);
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return fail(c, "cannot read %s: %s", src, why(errno));
	char *tmp = NULL;
	int out = -1;
	for (int i = 0; i < 100 && out < 0; i++) {
		free(tmp);
		tmp = copy_tmp_name(dest);
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (out < 0 && errno != EEXIST)
			break;
	}
	if (out < 0) {
		dir_fail(c, dest, errno);
		close(in);
		free(tmp);
		return false;
	}
	bool ok = true;
	for (;;) {
		if (stopped(c)) {
			ok = false;
			break;
		}
		ssize_t r = read(in, c->buf[0], COPY_BUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ok = fail(c, "cannot read %s: %s", src, why(errno));
			break;
		}
		if (r == 0)
			break;
		for (ssize_t off = 0; off < r && ok;) {
			ssize_t w = write(out, c->buf[0] + off, (size_t)(r - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				ok = fail(c, "cannot write %s: %s", dest, why(errno));
			else
				off += w;
		}
		if (!ok)
			break;
		c->bytes += (uint64_t)r;
		atomic_store_explicit(&c->done_bytes, c->bytes, memory_order_relaxed);
	}
	close(in);
	if (ok && fchmod(out, mode) != 0)
		ok = fail(c, "chmod %s: %s", dest, why(errno));
	if (close(out) != 0 && ok)
		ok = fail(c, "cannot write %s: %s", dest, why(errno));
	if (ok && rename(tmp, dest) != 0)
		ok = fail(c, "cannot rename %s to %s: %s", tmp, dest, why(errno));
	if (!ok)
		unlink(tmp);
	else
		c->changed = true;
	free(tmp);
	return ok;
}

/* Copies the symlink src as a link to the same target. */
static bool copy_link(struct exec_copy *c, const char *src, const char *dest)
{
	char target[4096], have[4096];
	ssize_t n = readlink(src, target, sizeof target - 1);
	if (n < 0)
		return fail(c, "cannot read the link %s: %s", src, why(errno));
	target[n] = 0;
	ssize_t m = readlink(dest, have, sizeof have - 1);
	if (m == n && !memcmp(target, have, (size_t)n))
		return true;
	char *tmp = NULL;
	bool ok = false;
	for (int i = 0; i < 100 && !ok; i++) {
		free(tmp);
		tmp = copy_tmp_name(dest);
		if (symlink(target, tmp) == 0)
			ok = true;
		else if (errno != EEXIST)
			break;
	}
	if (!ok)
		dir_fail(c, dest, errno);
	else if (rename(tmp, dest) != 0) {
		ok = fail(c, "cannot rename %s to %s: %s", tmp, dest, why(errno));
		unlink(tmp);
	} else
		c->changed = true;
	free(tmp);
	return ok;
}

static bool copy_tree(struct exec_copy *c, const char *src, const struct stat *st, const char *dest);

/* Copies the directory src into dest, which it creates (with src's bits) when missing. */
static bool copy_dir(struct exec_copy *c, const char *src, const struct stat *st, const char *dest)
{
	struct stat ds;
	if (lstat(dest, &ds) != 0) {
		if (mkdir(dest, st->st_mode & 07777) != 0)
			return dir_fail(c, dest, errno);
		c->changed = true;
	} else if (!S_ISDIR(ds.st_mode))
		return fail(c, "%s is not a directory, in the way of %s", dest, src);
	else
		copy_sweep_local(dest, NULL); /* what a copy here that was killed left in it */
	DIR *d = opendir(src);
	if (!d)
		return fail(c, "cannot read the directory %s: %s", src, why(errno));
	bool ok = true;
	struct dirent *e;
	while (ok && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *s = copy_join(src, e->d_name), *t = copy_join(dest, e->d_name);
		struct stat es;
		if (lstat(s, &es) != 0)
			ok = fail(c, "cannot read %s: %s", s, why(errno));
		else
			ok = copy_tree(c, s, &es, t);
		free(s);
		free(t);
	}
	closedir(d);
	return ok;
}

static bool copy_tree(struct exec_copy *c, const char *src, const struct stat *st, const char *dest)
{
	if (stopped(c))
		return false;
	if (S_ISDIR(st->st_mode))
		return copy_dir(c, src, st, dest);
	if (S_ISLNK(st->st_mode))
		return copy_link(c, src, dest);
	if (S_ISREG(st->st_mode))
		return copy_file(c, src, st, dest);
	return fail(c, "%s is not a regular file, a directory or a symlink", src);
}

/* The whole copy, on a pool thread. */
static void work(uv_work_t *w)
{
	struct exec_copy *c = w->data;
	const char *src = c->spec.src, *dest = c->spec.dest;
	struct stat st, ds;
	if (lstat(src, &st) != 0 || (S_ISLNK(st.st_mode) && src[strlen(src) - 1] == '/' && stat(src, &st) != 0)) {
		fail(c, "cannot read %s: %s", src, why(errno));
		return;
	}
	size_t sl = strlen(src), dl = strlen(dest);
	bool into = dest[dl - 1] == '/' || (stat(dest, &ds) == 0 && S_ISDIR(ds.st_mode));
	if (c->spec.fetch) {
		/* dest is the directory for this host: made here when its parent exists */
		if (stat(dest, &ds) != 0 && mkdir(dest, 0777) != 0 && errno != EEXIST) {
			dir_fail(c, dest, errno);
			return;
		}
		into = true;
	}
	if (S_ISREG(st.st_mode))
		atomic_store_explicit(&c->total, (int_least64_t)st.st_size, memory_order_relaxed);
	char *target;
	if (S_ISDIR(st.st_mode) && src[sl - 1] == '/')
		target = xstrdup(dest);
	else if (S_ISDIR(st.st_mode) || into) {
		char *b = copy_basename(src);
		target = copy_join(dest, b);
		free(b);
	} else
		target = xstrdup(dest);
	if (!S_ISDIR(st.st_mode) && !c->spec.fetch) {
		/* what a copy here that was killed left beside this file (a tree's: copy_dir) */
		char *d = copy_dir_of(target), *b = copy_basename(target);
		copy_sweep_local(d, b);
		free(d);
		free(b);
	}
	copy_tree(c, src, &st, target);
	free(target);
}

static void work_done(uv_work_t *w, int status)
{
	struct exec_copy *c = w->data;
	(void)status;
	struct exec_status st = {.exit_code = c->error ? -1 : 0, .error = c->error, .changed = c->changed, .bytes = c->bytes};
	c->cb.done(c->ud, &st);
	copy_free(c);
}

void copy_free(struct exec_copy *c)
{
	free((char *)c->spec.src);
	free((char *)c->spec.dest);
	free(c->error);
	free(c);
}

/* The end of a remote copy, passed on. */
static void remote_done(void *ud, const struct exec_status *st)
{
	struct exec_copy *c = ud;
	c->proc = NULL;
	c->cb.done(c->ud, st);
	copy_free(c);
}

struct exec_copy *exec_copy_start(uv_loop_t *loop, struct executor *ssh, const struct exec_copy_spec *spec,
				  const struct exec_callbacks *cb, void *ud, char **err)
{
	if (!*spec->src || !*spec->dest) {
		*err = xstrdup(*spec->src ? "the destination is empty" : "the source is empty");
		return NULL;
	}
	struct exec_copy *c = xcalloc(1, spec->host ? offsetof(struct exec_copy, buf) : sizeof *c);
	c->spec = *spec;
	c->spec.src = xstrdup(spec->src);
	c->spec.dest = xstrdup(spec->dest);
	c->cb = *cb;
	c->ud = ud;
	atomic_init(&c->stop, false);
	atomic_init(&c->done_bytes, 0);
	atomic_init(&c->total, -1);
	if (spec->host) {
		if (!ssh) {
			*err = xstrdup("internal error: no SSH executor");
			copy_free(c);
			return NULL;
		}
		struct exec_callbacks rcb = {NULL, remote_done, NULL};
		c->ssh = ssh;
		c->proc = sftp_copy_start(ssh, &c->spec, &rcb, c, err);
		if (!c->proc) {
			copy_free(c);
			return NULL;
		}
		return c;
	}
	c->work.data = c;
	(void)copy_boot_id(); /* read here, on the loop: the pool threads only use it */
	int rc = uv_queue_work(loop, &c->work, work, work_done);
	if (rc) {
		*err = xasprintf("cannot start the copy: %s", uv_strerror(rc));
		copy_free(c);
		return NULL;
	}
	return c;
}

void exec_copy_stop(struct exec_copy *c)
{
	if (c->ssh) {
		if (c->proc)
			c->ssh->ops->signal(c->proc, SIGTERM);
		return;
	}
	atomic_store(&c->stop, true);
}

void exec_copy_progress(const struct exec_copy *c, uint64_t *bytes, int64_t *total)
{
	if (c->ssh) {
		*bytes = 0;
		*total = -1;
		if (c->proc)
			sftp_progress(c->proc, bytes, total);
		return;
	}
	*bytes = atomic_load_explicit(&c->done_bytes, memory_order_relaxed);
	*total = atomic_load_explicit(&c->total, memory_order_relaxed);
}
