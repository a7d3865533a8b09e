/*
 * stream.c — output to a pipe that does not stall the loop. When baton's
 * stdout (or stderr) is a pipe whose reader is slow, a blocking write would
 * hold up every timer and child; instead writes go to a queue drained when
 * the pipe is writable. The queue is bounded: past it, writing waits, so
 * memory stays bounded whatever the reader does.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "event/event.h"
#include "util/util.h"

#define QUEUE_MAX (8u << 20)

struct stream {
	int fd; /* our own open file description of the pipe, non-blocking */
	uv_poll_t poll;
	bool polling;
	struct buf q;
	size_t off; /* bytes of q already written */
	bool broken; /* the reader went away: drop output rather than fail the run */
};

/* Writes what it can without waiting; true when the queue is empty. */
static bool drain(struct stream *s)
{
	while (s->off < s->q.len && !s->broken) {
		ssize_t n = write(s->fd, s->q.data + s->off, s->q.len - s->off);
		if (n > 0) {
			s->off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return false;
		s->broken = true; /* EPIPE and friends */
	}
	buf_reset(&s->q);
	s->off = 0;
	return true;
}

static void on_writable(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	struct stream *s = h->data;
	if (drain(s) && s->polling) {
		uv_poll_stop(&s->poll);
		s->polling = false;
	}
}

/* Waits until the pipe takes everything queued (backpressure, or closing). */
static void drain_all(struct stream *s)
{
	while (!drain(s)) {
		struct pollfd p = {.fd = s->fd, .events = POLLOUT};
		if (poll(&p, 1, -1) < 0 && errno != EINTR) {
			s->broken = true;
			break;
		}
	}
}

static ssize_t stream_write(void *cookie, const char *data, size_t n)
{
	struct stream *s = cookie;
	if (s->broken)
		return (ssize_t)n;
	buf_add(&s->q, data, n);
	if (drain(s))
		return (ssize_t)n;
	if (s->q.len - s->off > QUEUE_MAX)
		drain_all(s);
	else if (!s->polling && uv_poll_start(&s->poll, UV_WRITABLE, on_writable) == 0)
		s->polling = true;
	return (ssize_t)n;
}

static void free_on_close(uv_handle_t *h)
{
	struct stream *s = h->data;
	buf_free(&s->q);
	free(s);
}

static int stream_close(void *cookie)
{
	struct stream *s = cookie;
	drain_all(s);
	close(s->fd);
	uv_close((uv_handle_t *)&s->poll, free_on_close);
	return 0;
}

FILE *event_stream_open(uv_loop_t *loop, FILE *f)
{
	struct stat st;
	int fd = fileno(f);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode))
		return NULL; /* files and terminals do not stall */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	/* a new open file description: non-blocking for us alone, not for whoever shares the pipe */
	int nfd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (nfd < 0)
		return NULL;
	struct stream *s = xcalloc(1, sizeof *s);
	s->fd = nfd;
	if (uv_poll_init(loop, &s->poll, nfd) != 0) {
		close(nfd);
		free(s);
		return NULL;
	}
	s->poll.data = s;
	cookie_io_functions_t io = {.write = stream_write, .close = stream_close};
	FILE *out = fopencookie(s, "w", io);
	if (!out) {
		uv_close((uv_handle_t *)&s->poll, free_on_close);
		close(nfd);
		return NULL;
	}
	fflush(f);
	return out;
}
