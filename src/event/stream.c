/*
 * stream.c — every output of a run (stdout, stderr, the events file) goes
 * through here. Lines go out whole: a write into a file that fails part-way
 * is cut back to the last whole line, and the failure is told once (bus_warn).
 * A pipe, terminal or socket is written without ever stalling the loop: what
 * its reader has not taken yet waits in a bounded queue in memory, then in an
 * unlinked spill file, and goes out in order whenever it is writable.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "event/event.h"
#include "util/util.h"

#define QUEUE_MAX (1u << 20)  /* bytes kept in memory for a slow reader; past it, the spill file */
#define REFILL (256u << 10)   /* bytes read back from the spill file at a time */
#define PART_MAX (4u << 20)   /* a line longer than this goes out before its end */
#define STDIO_BUF (64u << 10) /* the FILE's own buffer: one write per burst of lines */

struct stream {
	struct bus *bus;
	char *name;       /* how messages call it: "standard output", "--events FILE" */
	FILE *self;       /* the FILE over this stream: a message about it must not go to it */
	int fd;
	bool own_fd;      /* ours to close at the end */
	int restore_fl;   /* file status flags to put back at the end (a shared socket), or -1 */
	bool sock;        /* send() rather than write(), so a closed reader gives EPIPE, not SIGPIPE */
	bool regular;     /* a regular file: a failed write is cut back to the last whole line */
	uv_poll_t *poll;  /* set when writes queue and the loop drains them (a pipe, terminal, socket) */
	bool polling;
	struct buf part;  /* the line being written, not whole yet */
	struct buf q;     /* whole lines the reader has not taken yet */
	size_t off;       /* bytes of q already written */
	int spill;        /* -1, or the spill file, made once memory was full */
	off_t spill_rd, spill_wr; /* what of it was read back, and written */
	bool gone;        /* the reader went away (EPIPE): output is discarded, which is no error */
	bool failed;      /* a write failed: nothing more is written */
	bool dropping;    /* the spill file could not take lines: said once */
	uint64_t dropped; /* lines dropped so */
	bool optional;    /* not one of the run's outputs (the run store's log): losing it is said, not an exit status */
};

/* One write(2), or send(2) to a socket. */
static ssize_t raw_write(struct stream *s, const char *data, size_t n)
{
	if (s->sock)
		return send(s->fd, data, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	return write(s->fd, data, n);
}

/*
 * Empties the spill file once all of it was read back. Should that fail, it
 * keeps its size (it is unlinked, and goes when it is closed) and the next
 * lines are appended after it.
 */
static void spill_reset(struct stream *s)
{
	if (s->spill >= 0 && s->spill_wr && ftruncate(s->spill, 0) != 0) {
		s->spill_rd = s->spill_wr;
		return;
	}
	s->spill_rd = s->spill_wr = 0;
}

/* Forgets everything queued: memory and spill file. */
static void discard(struct stream *s)
{
	buf_reset(&s->q);
	s->off = 0;
	buf_reset(&s->part);
	spill_reset(s);
}

/* A write failed with err: a reader that went away is no error; anything else is said, once. */
static void broken(struct stream *s, int err)
{
	discard(s);
	if (err == EPIPE || err == ECONNRESET) {
		s->gone = true;
		return;
	}
	s->failed = true;
	bus_warn(s->bus, !s->optional, s->self, "%s: write failed (%s); %s", s->name, strerror(err),
		 s->regular ? "it ends with the last whole line written, and nothing more is written to it"
			    : "nothing more is written to it");
}

/*
 * Writes data in full, waiting if the descriptor asks to (a direct output),
 * or fails: then a regular file is cut back to its last whole line.
 */
static void write_direct(struct stream *s, const char *data, size_t n)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = raw_write(s, data + done, n - done);
		if (w > 0) {
			done += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = {.fd = s->fd, .events = POLLOUT};
			if (poll(&p, 1, -1) >= 0 || errno == EINTR)
				continue;
		}
		int err = w < 0 ? errno : EIO;
		if (s->regular && done) {
			const char *nl = memrchr(data, '\n', done);
			off_t cut = (off_t)(done - (nl ? (size_t)(nl - data) + 1 : 0));
			off_t end = lseek(s->fd, 0, SEEK_CUR);
			if (end >= cut && ftruncate(s->fd, end - cut) == 0)
				lseek(s->fd, end - cut, SEEK_SET);
		}
		broken(s, err);
		return;
	}
}

/* A spill file in $TMPDIR (else /tmp), unlinked from the start, mode 0600; -1 with errno set. */
static int spill_open(void)
{
	const char *dir = getenv("TMPDIR");
	if (!dir || !*dir)
		dir = "/tmp";
	int fd = open(dir, O_TMPFILE | O_RDWR | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	char *path = xasprintf("%s/baton-spill-XXXXXX", dir);
	fd = mkostemp(path, O_APPEND | O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	free(path);
	return fd;
}

/* Lines that could go nowhere: counted, and said once. */
static void drop(struct stream *s, const char *data, size_t n, int err)
{
	for (const char *p = data; (p = memchr(p, '\n', n - (size_t)(p - data))); p++)
		s->dropped++;
	if (s->dropping)
		return;
	s->dropping = true;
	const char *dir = getenv("TMPDIR");
	bus_warn(s->bus, !s->optional, s->self, "%s: its reader is slow and no spill file can be written in %s (%s): lines are dropped",
		 s->name, dir && *dir ? dir : "/tmp", strerror(err));
}

/* Appends whole lines to the spill file, or drops them when it cannot take them. */
static void spill_add(struct stream *s, const char *data, size_t n)
{
	if (s->spill < 0 && (s->spill = spill_open()) < 0) {
		drop(s, data, n, errno);
		return;
	}
	size_t done = 0;
	while (done < n) {
		ssize_t w = write(s->spill, data + done, n - done);
		if (w > 0) {
			done += (size_t)w;
		} else if (w < 0 && errno != EINTR) {
			int err = errno;
			/* no half line in it: it goes back to what it held, or what it held is lost too */
			if (done && ftruncate(s->spill, s->spill_wr) != 0) {
				s->dropped++;
				off_t end = lseek(s->spill, 0, SEEK_END);
				s->spill_rd = s->spill_wr = end > 0 ? end : s->spill_wr;
			}
			drop(s, data, n, err);
			return;
		}
	}
	s->spill_wr += (off_t)n;
}

/* Moves the next lines from the spill file to memory; false when it holds none. */
static bool refill(struct stream *s)
{
	if (s->spill_rd >= s->spill_wr) {
		spill_reset(s);
		return false;
	}
	size_t want = (size_t)(s->spill_wr - s->spill_rd) < REFILL ? (size_t)(s->spill_wr - s->spill_rd) : REFILL;
	buf_grow(&s->q, want);
	ssize_t n;
	do
		n = pread(s->spill, s->q.data + s->q.len, want, s->spill_rd);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		s->dropped++; /* at least; the count of lines in the file is not known */
		if (!s->dropping) {
			s->dropping = true;
			bus_warn(s->bus, !s->optional, s->self, "%s: its spill file cannot be read back (%s): lines are dropped",
				 s->name, n < 0 ? strerror(errno) : "it is shorter than written");
		}
		s->spill_rd = s->spill_wr;
		return refill(s);
	}
	s->q.len += (size_t)n;
	s->q.data[s->q.len] = '\0';
	/* the disk it took is given back as it is read, so the file takes what is behind, no more */
	if (fallocate(s->spill, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, s->spill_rd, n) != 0)
		errno = 0; /* not every file system can: then it waits for the file to empty */
	s->spill_rd += n;
	return true;
}

/* Writes what the reader takes without waiting; true when nothing is left queued. */
static bool drain(struct stream *s)
{
	for (;;) {
		while (s->off < s->q.len) {
			ssize_t n = raw_write(s, s->q.data + s->off, s->q.len - s->off);
			if (n > 0) {
				s->off += (size_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return false;
			broken(s, n < 0 ? errno : EIO);
			return true;
		}
		buf_reset(&s->q);
		s->off = 0;
		if (!refill(s))
			return true;
	}
}

/* The reader took some: write more, and stop polling once nothing waits. */
static void on_writable(uv_poll_t *h, int status, int events)
{
	(void)status; /* an error shows in the write that drain tries */
	(void)events;
	struct stream *s = h->data;
	if (drain(s) && s->polling) {
		uv_poll_stop(s->poll);
		s->polling = false;
	}
}

/* Queues whole lines behind those the reader has not taken yet, and writes what it takes. */
static void enqueue(struct stream *s, const char *data, size_t n)
{
	if (s->spill_wr > s->spill_rd || s->q.len - s->off + n > QUEUE_MAX) {
		spill_add(s, data, n); /* behind what is spilled already, so the order holds */
	} else {
		if (s->off && (s->off == s->q.len || s->off >= QUEUE_MAX / 2)) {
			/* what the reader took goes, so the buffer does not grow with what passes through */
			memmove(s->q.data, s->q.data + s->off, s->q.len - s->off);
			s->q.len -= s->off;
			s->off = 0;
		}
		buf_add(&s->q, data, n);
	}
	if (!drain(s) && !s->polling && uv_poll_start(s->poll, UV_WRITABLE, on_writable) == 0)
		s->polling = true;
}

/* Hands on whole lines (or, at the end, what is left). */
static void commit(struct stream *s, const char *data, size_t n)
{
	if (s->failed || s->gone || !n)
		return;
	if (s->poll)
		enqueue(s, data, n);
	else
		write_direct(s, data, n);
}

/* stdio hands over its buffer: whole lines go on, the rest waits for its newline. */
static ssize_t stream_write(void *cookie, const char *data, size_t n)
{
	struct stream *s = cookie;
	if (s->failed || s->gone)
		return (ssize_t)n;
	/* nothing is shown before it is recorded (the run store's durability rule) */
	if (s->bus)
		bus_barrier(s->bus);
	const char *nl = memrchr(data, '\n', n);
	size_t whole = nl ? (size_t)(nl - data) + 1 : 0;
	if (whole && s->part.len) {
		buf_add(&s->part, data, whole);
		commit(s, s->part.data, s->part.len);
		buf_reset(&s->part);
	} else if (whole) {
		commit(s, data, whole);
	}
	buf_add(&s->part, data + whole, n - whole);
	if (s->part.len > PART_MAX) {
		commit(s, s->part.data, s->part.len);
		buf_reset(&s->part);
	}
	return (ssize_t)n;
}

/* Waits until the reader took everything queued: the run is over, nothing else waits. */
static void drain_all(struct stream *s)
{
	while (!drain(s)) {
		struct pollfd p = {.fd = s->fd, .events = POLLOUT};
		if (poll(&p, 1, -1) < 0 && errno != EINTR) {
			broken(s, errno);
			break;
		}
	}
}

static void free_poll(uv_handle_t *h)
{
	free(h);
}

/*
 * fclose: the last line goes out, the reader takes everything, the file is
 * closed; EOF when output was lost on the way, which was said already.
 */
static int stream_close(void *cookie)
{
	struct stream *s = cookie;
	commit(s, s->part.data, s->part.len);
	if (s->poll) {
		drain_all(s);
		uv_close((uv_handle_t *)s->poll, free_poll);
	}
	if (s->restore_fl >= 0)
		fcntl(s->fd, F_SETFL, s->restore_fl);
	if (s->own_fd && close(s->fd) != 0 && !s->failed && !s->gone && errno != EINTR) {
		s->failed = true; /* a file system may report a failed write only now */
		bus_warn(s->bus, !s->optional, s->self, "%s: %s; its end may be missing", s->name, strerror(errno));
	}
	if (s->spill >= 0)
		close(s->spill);
	if (s->dropped)
		bus_warn(s->bus, !s->optional, s->self, "%s: %llu line%s dropped", s->name, (unsigned long long)s->dropped,
			 s->dropped == 1 ? " was" : "s were");
	int rc = s->failed || s->dropped ? -1 : 0;
	buf_free(&s->part);
	buf_free(&s->q);
	free(s->name);
	free(s);
	return rc;
}

/*
 * Makes s write to its pipe, terminal or socket without waiting, polled by
 * the loop. A pipe or terminal is opened again (through /proc) so that
 * O_NONBLOCK is ours alone, not the shell's that shares the descriptor; a
 * socket cannot be, and gets O_NONBLOCK (that libuv sets) until the end.
 */
static void make_queued(struct stream *s, uv_loop_t *loop, const struct stat *st)
{
	if (S_ISSOCK(st->st_mode)) {
		s->sock = true;
		s->restore_fl = fcntl(s->fd, F_GETFL);
	} else if (s->own_fd) {
		int fl = fcntl(s->fd, F_GETFL);
		if (fl < 0 || fcntl(s->fd, F_SETFL, fl | O_NONBLOCK) != 0)
			return;
	} else {
		char path[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", s->fd);
		int nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (nfd < 0)
			return; /* written directly: it may wait */
		s->fd = nfd;
		s->own_fd = true;
	}
	s->poll = xmalloc(sizeof *s->poll);
	if (uv_poll_init(loop, s->poll, s->fd) != 0) {
		free(s->poll); /* /dev/null, /dev/full: never wait anyway */
		s->poll = NULL;
		return;
	}
	s->poll->data = s;
}

FILE *event_stream_open(uv_loop_t *loop, struct bus *bus, int fd, bool own, const char *name)
{
	return event_stream_open_opt(loop, bus, fd, own, name, false);
}

FILE *event_stream_open_opt(uv_loop_t *loop, struct bus *bus, int fd, bool own, const char *name, bool optional)
{
	struct stat st;
	struct stream *s = xcalloc(1, sizeof *s);
	s->optional = optional;
	s->bus = bus;
	s->name = xstrdup(name);
	s->fd = fd;
	s->own_fd = own;
	s->restore_fl = -1;
	s->spill = -1;
	bool known = fstat(fd, &st) == 0;
	s->regular = known && S_ISREG(st.st_mode);
	if (loop && known && !s->regular)
		make_queued(s, loop, &st);
	cookie_io_functions_t io = {.write = stream_write, .close = stream_close};
	FILE *out = fopencookie(s, "w", io);
	if (!out) {
		fprintf(stderr, "baton: %s: %s\n", name, strerror(errno));
		exit(70);
	}
	setvbuf(out, NULL, _IOFBF, STDIO_BUF);
	s->self = out;
	return out;
}

bool event_stream_same(int a, int b)
{
	struct stat sa, sb;
	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}
