/*
 * filehash.c — the sha256 of a local file, for `copy` and `fetch` over SFTP
 * (sftp.c): computed on libuv's thread pool, never on the loop, and once per
 * run for a file that does not change. A copy to 20 hosts whose destinations
 * may already hold the file asks for the same hash 20 times: the first ask
 * starts it, the others wait for it or find it done.
 *
 * A hash belongs to a file as stat() saw it when asked (device, inode, size,
 * modification and change times): a file rewritten since is hashed again.
 * libnettle is loaded as the run store loads it (dlopen, not linked), here
 * on the loop's thread before the first job goes, so workers only call it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/copy.h"
#include "util/util.h"

#define HASH_BUF (256 * 1024)

struct fh_waiter {
	void (*cb)(void *ud);
	void *ud;
	struct fh_waiter *next;
};

struct fhash {
	uv_work_t req;
	char *path;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
	bool running, ok;
	bool notifying; /* its waiters are being told (hash_done) */
	char hex[65];
	struct fh_waiter *waiters;
	struct fhash *next;
};

static struct fhash *cache; /* on the loop's thread only */

static void (*h_init)(struct sha256_ctx *);
static void (*h_update)(struct sha256_ctx *, size_t, const uint8_t *);
static void (*h_digest)(struct sha256_ctx *, size_t, uint8_t *);

static bool nettle_loaded(void)
{
	static bool tried;
	if (!tried) {
		tried = true;
		void *lib = dlopen("libnettle.so.8", RTLD_NOW | RTLD_LOCAL);
		if (lib) {
			*(void **)&h_init = dlsym(lib, "nettle_sha256_init");
			*(void **)&h_update = dlsym(lib, "nettle_sha256_update");
			*(void **)&h_digest = dlsym(lib, "nettle_sha256_digest");
		}
	}
	return h_init && h_update && h_digest;
}

static bool same_file(const struct fhash *f, const struct stat *st)
{
	return f->dev == st->st_dev && f->ino == st->st_ino && f->size == st->st_size &&
	       f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec &&
	       f->ctime.tv_sec == st->st_ctim.tv_sec && f->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* On a worker. */
static void hash_work(uv_work_t *req)
{
	struct fhash *f = req->data;
	f->ok = false;
	char *buf = malloc(HASH_BUF);
	int fd = buf ? open(f->path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0) {
		free(buf);
		return;
	}
	struct sha256_ctx ctx;
	h_init(&ctx);
	ssize_t r;
	while ((r = read(fd, buf, HASH_BUF)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		h_update(&ctx, (size_t)r, (const uint8_t *)buf);
	}
	close(fd);
	free(buf);
	if (r < 0)
		return;
	uint8_t d[SHA256_DIGEST_SIZE];
	h_digest(&ctx, sizeof d, d);
	for (size_t i = 0; i < sizeof d; i++)
		snprintf(f->hex + 2 * i, 3, "%02x", d[i]);
	f->ok = true;
}

static void fh_free(struct fhash *f)
{
	while (f->waiters) {
		struct fh_waiter *w = f->waiters;
		f->waiters = w->next;
		free(w);
	}
	free(f->path);
	free(f);
}

/* Back on the loop: every waiter is told, in the order it asked (one may forget another meanwhile). */
static void hash_done(uv_work_t *req, int status)
{
	struct fhash *f = req->data;
	f->running = false;
	if (status)
		f->ok = false;
	f->notifying = true;
	while (f->waiters) {
		struct fh_waiter *w = f->waiters;
		f->waiters = w->next;
		void (*cb)(void *) = w->cb;
		void *ud = w->ud;
		free(w);
		cb(ud);
	}
	f->notifying = false;
	bool cached = false;
	for (struct fhash *g = cache; g; g = g->next)
		cached |= g == f;
	if (!cached)
		fh_free(f); /* filehash_clear, or a newer version of the file, came meanwhile */
}

int filehash_get(uv_loop_t *loop, const char *path, char hex[65], void (*cb)(void *ud), void *ud)
{
	struct stat st;
	if (!nettle_loaded() || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return -1;
	struct fhash *f = cache, **pp = &cache;
	for (; f; pp = &f->next, f = f->next)
		if (!strcmp(f->path, path))
			break;
	if (f && !same_file(f, &st) && !f->running) {
		*pp = f->next; /* changed since: hashed anew */
		if (!f->notifying)
			fh_free(f); /* else hash_done frees it */
		f = NULL;
	}
	if (f && !f->running) {
		if (!f->ok)
			return -1;
		memcpy(hex, f->hex, 65);
		return 1;
	}
	if (!f) {
		f = xcalloc(1, sizeof *f);
		f->path = xstrdup(path);
		f->dev = st.st_dev;
		f->ino = st.st_ino;
		f->size = st.st_size;
		f->mtime = st.st_mtim;
		f->ctime = st.st_ctim;
		f->req.data = f;
		if (uv_queue_work(loop, &f->req, hash_work, hash_done) != 0) {
			fh_free(f);
			return -1;
		}
		f->running = true;
		f->next = cache;
		cache = f;
	}
	struct fh_waiter *w = xcalloc(1, sizeof *w), **tail = &f->waiters;
	w->cb = cb;
	w->ud = ud;
	while (*tail)
		tail = &(*tail)->next;
	*tail = w;
	return 0;
}

void filehash_forget(void *ud)
{
	for (struct fhash *f = cache; f; f = f->next)
		for (struct fh_waiter **pp = &f->waiters; *pp;) {
			struct fh_waiter *w = *pp;
			if (w->ud == ud) {
				*pp = w->next;
				free(w);
			} else
				pp = &w->next;
		}
}

void filehash_clear(void)
{
	while (cache) {
		struct fhash *f = cache;
		cache = f->next;
		if (f->running) {
			while (f->waiters) { /* never told: they are going too */
				struct fh_waiter *w = f->waiters;
				f->waiters = w->next;
				free(w);
			}
		} else if (!f->notifying)
			fh_free(f); /* else freed when its job is back, or its waiters were told (hash_done) */
	}
}
