/*
 * sftp_job.c — an upload's writes on libuv's thread pool, in slices.
 *
 * libssh2 encrypts every packet on the thread that sends it; with all the
 * sessions on the loop's thread, a copy to many hosts is bound by one core
 * (a few hundred MB/s for all of them together). So the bulk of a large
 * file's upload — reading the local file and libssh2_sftp_write, which
 * encrypts — is done on a worker (uv_queue_work), one slice at a time: a
 * slice writes until SLICE_MS have passed, the file is all written, a write
 * fails, or it is told to stop; then it comes back to the loop, which takes
 * its results (sftp.c, X_WRITE: the errors handled as an inline write's),
 * drives the connection's other channels, and sends the next slice. Hosts'
 * slices run in parallel on the pool's threads (UV_THREADPOOL_SIZE, 4 by
 * default), as many at once as the pool has threads: the connections
 * whose copies find none free wait in a queue, and each slice that comes
 * back lets the one that waited longest go (its own connection joins the
 * queue's end when others wait), so hosts take turns; a waiting
 * connection is left alone as one whose slice is out (its socket not
 * watched, its keepalives later), a stop aside. The pool also
 * resolves names and makes ssh_auth.c's agent calls: with at most one
 * slice per thread in its queue, those wait one slice at most.
 *
 * As for an agent call (ssh_auth.c), a libssh2 session is not thread-safe:
 * while a slice is out (c->xfer_job; conn_away) the loop leaves the session
 * and its socket alone — conn_drive, the socket's poll, keepalives (due ones
 * are sent when it is back: c->tick_due), a channel closed by a timer wait —
 * and a connection that fails meanwhile tells the job to stop and is freed
 * when it is back. The job owns what the worker touches: the local file,
 * the buffer, the SFTP handle's pointer (the handle itself goes with the
 * session, as it does for a copy whose connection fails on the loop). When
 * the copy is freed while its slice is out (xfer_job_orphan) the job, once
 * back, closes the file and frees the buffer itself. The session stays
 * non-blocking: on EAGAIN the worker waits with poll() on the session's
 * socket, in short waits that look at the cancel flag, so a slice is back
 * within about SLICE_MS whatever the server does. libssh2's reads on the
 * worker count c->rx_bytes (conn_recv): the loop reads it only when the
 * slice is back, and then counts the server as heard from (c->last_rx_ms).
 *
 * Only a connection that carries no tunnel takes slices (sftp.c): a jump
 * host's session is used by the loop for the tunnels it carries. A target
 * behind a jump host may: its socket is its end of a socketpair, pumped on
 * the loop, and the worker touches only the target's session and socket.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exec/ssh_internal.h"

#define SLICE_MS 50 /* a slice's length: the loop serves the connection's other channels between slices */
#define WAIT_MS 10  /* one poll() for the socket, between looks at the cancel flag */

struct xfer_job {
	uv_work_t req;
	struct conn *c;
	uv_loop_t *loop;
	LIBSSH2_SESSION *s;
	int sock;
	struct xfer_slice sl;
	void (*back)(void *ud, struct xfer_slice *sl); /* NULL: orphaned */
	void *ud;
	atomic_bool cancel;
	uint64_t rx0; /* c->rx_bytes when it went */
};

static int jobs_out; /* on the loop's thread only */
static void wake_waiters(void);
static struct conn **waiting; /* connections whose copies wait for a thread, the longest first */
static size_t n_waiting, cap_waiting;
static const struct conn *waking; /* the one let go now: it may take the free thread */

/* How many slices may be out at once: as many as libuv's pool has threads (as libuv reads the variable). */
static int slots(void)
{
	static int n = -1;
	if (n < 0) {
		const char *v = getenv("UV_THREADPOOL_SIZE");
		long size = v && *v ? strtol(v, NULL, 10) : 4;
		if (size < 1)
			size = 1;
		if (size > 1024)
			size = 1024;
		n = (int)size;
	}
	return n;
}

int xfer_jobs_out(void)
{
	return jobs_out;
}

/* On a worker: one slice (see the top of this file). */
static void xfer_work(uv_work_t *req)
{
	struct xfer_job *j = req->data;
	struct xfer_slice *sl = &j->sl;
	uint64_t end = mono_ms() + SLICE_MS;
	while (!atomic_load(&j->cancel)) {
		if (sl->off == sl->len) {
			if (mono_ms() >= end)
				return;
			ssize_t r = read(sl->fd, sl->buf, sl->cap);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				sl->read_errno = errno;
				return;
			}
			if (r == 0) {
				sl->eof = true;
				return;
			}
			sl->len = (size_t)r;
			sl->off = 0;
		}
		ssize_t w = libssh2_sftp_write(sl->h, sl->buf + sl->off, sl->len - sl->off);
		if (w >= 0) {
			sl->off += (size_t)w;
			sl->bytes += (uint64_t)w;
			continue;
		}
		if (w != LIBSSH2_ERROR_EAGAIN) {
			sl->rc = (int)w;
			return;
		}
		uint64_t now = mono_ms();
		if (now >= end)
			return;
		int dirs = libssh2_session_block_directions(j->s);
		struct pollfd pf = {.fd = j->sock};
		if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND)
			pf.events |= POLLIN;
		if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
			pf.events |= POLLOUT;
		if (!pf.events)
			pf.events = POLLIN;
		uint64_t left = end - now;
		if (poll(&pf, 1, left < WAIT_MS ? (int)left : WAIT_MS) < 0 && errno != EINTR)
			return; /* cannot wait: back to the loop, which watches the socket itself */
	}
}

/* Back on the loop: the results go to the copy (or the job cleans up after it), then the connection is driven. */
static void xfer_back(uv_work_t *req, int status)
{
	(void)status; /* cancelled before it ran: a slice that wrote nothing */
	struct xfer_job *j = req->data;
	struct conn *c = j->c;
	jobs_out--;
	c->xfer_job = NULL;
	j->sl.rx = c->rx_bytes != j->rx0;
	if (j->sl.rx && !c->dead)
		c->last_rx_ms = uv_now(j->loop);
	if (j->back)
		j->back(j->ud, &j->sl);
	else {
		if (j->sl.fd >= 0)
			close(j->sl.fd);
		free(j->sl.buf);
	}
	free(j);
	if (!c->dead && c->tick_due)
		conn_tick(c);
	if (c->dead)
		conn_maybe_free(c);
	else
		conn_drive(c); /* its copy joins the queue's end if others wait */
	wake_waiters();
}

bool xfer_job_can(const struct conn *c)
{
	return !conn_away(c) && !c->dead && c->s && jobs_out < slots() && (!n_waiting || c == waking);
}

bool xfer_job_wait(struct conn *c)
{
	if (conn_away(c) || c->dead || !c->s || xfer_job_can(c))
		return false;
	if (!c->slice_waiting) {
		if (n_waiting == cap_waiting) {
			cap_waiting = cap_waiting ? 2 * cap_waiting : 16;
			waiting = xrealloc(waiting, cap_waiting * sizeof *waiting);
		}
		waiting[n_waiting++] = c;
		c->slice_waiting = true;
	}
	return true;
}

void xfer_job_unwait(struct conn *c)
{
	if (!c->slice_waiting)
		return;
	c->slice_waiting = false;
	for (size_t i = 0; i < n_waiting; i++)
		if (waiting[i] == c) {
			memmove(waiting + i, waiting + i + 1, (n_waiting - i - 1) * sizeof *waiting);
			n_waiting--;
			break;
		}
	if (!n_waiting) {
		free(waiting);
		waiting = NULL;
		cap_waiting = 0;
	}
}

/* Threads are free: the connections that waited longest are driven, each sending its slice, until none is. */
static void wake_waiters(void)
{
	while (n_waiting && jobs_out < slots()) {
		struct conn *w = waiting[0];
		xfer_job_unwait(w);
		if (w->dead)
			continue;
		if (w->tick_due)
			conn_tick(w);
		if (w->dead)
			continue;
		waking = w;
		conn_drive(w);
		waking = NULL;
	}
}

struct xfer_job *xfer_job_start(struct conn *c, const struct xfer_slice *sl,
				void (*back)(void *ud, struct xfer_slice *sl), void *ud)
{
	if (!xfer_job_can(c))
		return NULL;
	struct xfer_job *j = xcalloc(1, sizeof *j);
	j->c = c;
	j->loop = c->X->loop;
	j->s = c->s;
	j->sock = c->fd;
	j->sl = *sl;
	j->sl.bytes = 0;
	j->sl.eof = false;
	j->sl.rc = j->sl.read_errno = 0;
	j->back = back;
	j->ud = ud;
	j->rx0 = c->rx_bytes;
	atomic_init(&j->cancel, false);
	j->req.data = j;
	c->xfer_job = j;
	if (uv_queue_work(c->X->loop, &j->req, xfer_work, xfer_back) != 0) {
		c->xfer_job = NULL;
		free(j);
		return NULL;
	}
	jobs_out++;
	return j;
}

void xfer_job_cancel(struct xfer_job *j)
{
	atomic_store(&j->cancel, true);
}

void xfer_job_orphan(struct xfer_job *j)
{
	j->back = NULL;
	j->ud = NULL;
	atomic_store(&j->cancel, true);
}
