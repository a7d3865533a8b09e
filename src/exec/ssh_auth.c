/*
 * ssh_auth.c — authenticating a connection: the methods the server offers,
 * then the ssh-agent's keys, then the identity files (the host's, the plan's
 * `ssh.identity`, OpenSSH's defaults), each tried without blocking the loop.
 *
 * The agent. libssh2 talks to ssh-agent on a blocking socket of its own,
 * inside libssh2_agent_connect, _list_identities and _userauth (which asks
 * the agent to sign); an agent that is slow or stuck would stop the loop,
 * and every other task with it. So each of those calls is made on a worker
 * thread (uv_queue_work), one call per job, and the agent's socket I/O —
 * which libssh2 does through the session's send/recv callbacks, conn_send
 * and conn_recv below, with the agent's descriptor — waits with poll() up to
 * the job's deadline (AGENT_TIMEOUT_MS), in slices that look at a cancel
 * flag: a job always comes back, within the timeout, even from an agent
 * that accepts and never answers.
 *
 * A libssh2 session is not thread-safe: while a job is out (c->agent_job)
 * the loop does not touch the session nor its socket — conn_drive and the
 * socket's poll stand still (ssh.c), and a connection that fails meanwhile
 * (its connect_timeout, baton exiting) tells the job to stop and is freed
 * when it is back. uv_queue_work orders the thread's writes before the
 * loop's next reads. The session stays non-blocking: a job's userauth call
 * returns EAGAIN when it waits for the server, and the loop, watching the
 * socket again, sends the next job when it is readable — the round trips to
 * the server wait on the loop, never on a worker; only the agent's own
 * answers are waited for on one.
 *
 * An agent that did not answer in time is given up, for that connection and
 * the ones that authenticate later, and the identity files are tried, as
 * when there is no agent; the error, if none of them is accepted either,
 * says the agent did not answer. Jobs run on libuv's thread pool (4 threads
 * unless UV_THREADPOOL_SIZE says otherwise, shared with name resolution):
 * most take microseconds; a stuck agent holds a thread for AGENT_TIMEOUT_MS
 * at most, a job whose connection failed meanwhile returns at once. Left
 * unbounded: connect() to an agent socket whose listen queue is full (a
 * local, blocking connect, in the job).
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exec/ssh_internal.h"

struct agent_job {
	uv_work_t req;
	struct conn *c;
	bool list;           /* list the agent's keys, else try the current one */
	uint64_t deadline;   /* CLOCK_MONOTONIC ms: the agent's answers are waited for until then */
	atomic_bool cancel;  /* the connection failed meanwhile: stop waiting */
	bool timed_out;      /* the agent did not answer in time */
	int rc;
};

static int jobs_out; /* on the loop's thread only */

int agent_jobs_out(void)
{
	return jobs_out;
}

/* CLOCK_MONOTONIC in ms: a worker's own deadlines (the loop's clock is the loop's). */
uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* On a job: waits for the agent's socket, up to the job's deadline; 0, or -errno. */
static int agent_wait(struct conn *c, int fd, short events)
{
	struct agent_job *j = c->agent_job;
	if (!j)
		return -EIO; /* the agent is only ever used on a job */
	for (;;) {
		if (atomic_load(&j->cancel))
			return -ECANCELED;
		uint64_t now = mono_ms();
		if (now >= j->deadline) {
			j->timed_out = true;
			return -ETIMEDOUT;
		}
		uint64_t left = j->deadline - now;
		struct pollfd pf = {.fd = fd, .events = events};
		int n = poll(&pf, 1, left < 100 ? (int)left : 100);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* libssh2's reads: the session's, counted (a read for one channel may bring another's data; on a worker
 * while an upload's slice is out, sftp_job.c: the loop reads the count only when it is back), or the agent's. */
ssize_t conn_recv(libssh2_socket_t fd, void *buf, size_t len, int flags, void **abstract)
{
	struct conn *c = *abstract;
	if (fd != c->fd) {
		int w = agent_wait(c, fd, POLLIN);
		if (w)
			return w;
	}
	ssize_t n = recv(fd, buf, len, flags);
	if (n < 0)
		return -errno;
	if (fd == c->fd)
		c->rx_bytes += (uint64_t)n;
	return n;
}

/* libssh2's writes: the session's, or the agent's. */
ssize_t conn_send(libssh2_socket_t fd, const void *buf, size_t len, int flags, void **abstract)
{
	struct conn *c = *abstract;
	if (fd != c->fd) {
		int w = agent_wait(c, fd, POLLOUT);
		if (w)
			return w;
		flags |= MSG_NOSIGNAL;
	}
	ssize_t n = send(fd, buf, len, flags);
	return n < 0 ? -errno : n;
}

/* On a worker: one agent call (see the top of this file). */
static void agent_work(uv_work_t *req)
{
	struct agent_job *j = req->data;
	struct conn *c = j->c;
	j->deadline = mono_ms() + AGENT_TIMEOUT_MS;
	if (j->list) {
		j->rc = -1;
		c->agent = libssh2_agent_init(c->s);
		if (c->agent && libssh2_agent_connect(c->agent) == 0 && libssh2_agent_list_identities(c->agent) == 0 &&
		    libssh2_agent_get_identity(c->agent, &c->agent_id, NULL) == 0)
			j->rc = 0;
		return;
	}
	j->rc = libssh2_agent_userauth(c->agent, c->h->user, c->agent_id);
	if (j->rc == 0 || j->rc == LIBSSH2_ERROR_EAGAIN)
		return;
	c->agent_tried++;
	struct libssh2_agent_publickey *prev = c->agent_id;
	if (libssh2_agent_get_identity(c->agent, &c->agent_id, prev) != 0)
		c->agent_id = NULL;
}

/* Back on the loop: the result waits for auth_step. */
static void agent_back(uv_work_t *req, int status)
{
	struct agent_job *j = req->data;
	struct conn *c = j->c;
	jobs_out--;
	c->agent_job = NULL;
	c->agent_have = true;
	c->agent_rc = status ? -1 : j->rc;
	if (j->timed_out)
		c->agent_timed_out = true;
	free(j);
	if (c->dead) {
		conn_maybe_free(c);
		return;
	}
	if (c->agent_timed_out)
		c->X->agent_silent = true;
	conn_drive(c);
}

void agent_cancel(struct conn *c)
{
	if (c->agent_job)
		atomic_store(&c->agent_job->cancel, true);
}

/* Sends the next agent call to a worker; false if it cannot go. */
static bool agent_queue(struct conn *c, bool list)
{
	struct agent_job *j = xcalloc(1, sizeof *j);
	j->c = c;
	j->list = list;
	atomic_init(&j->cancel, false);
	j->req.data = j;
	c->agent_listing = list;
	c->agent_job = j;
	if (uv_queue_work(c->X->loop, &j->req, agent_work, agent_back) != 0) {
		c->agent_job = NULL;
		free(j);
		return false;
	}
	jobs_out++;
	return true;
}

/* The agent is given up for this connection: the identity files come next. */
static void agent_drop(struct conn *c)
{
	if (c->agent) {
		libssh2_agent_disconnect(c->agent);
		libssh2_agent_free(c->agent);
		c->agent = NULL;
	}
	c->agent_id = NULL;
	c->auth_phase = 2;
}

static bool file_exists(const char *p)
{
	return access(p, R_OK) == 0;
}

/* The identity files to try: the host's own, else ~/.ssh/id_{ed25519,ecdsa,rsa} that exist. */
static const char *identity_at(struct conn *c, size_t i, char *tmp, size_t tmpsz)
{
	if (c->h->n_identities)
		return i < c->h->n_identities ? c->h->identities[i] : NULL;
	static const char *const defs[] = {"id_ed25519", "id_ecdsa", "id_rsa"};
	if (!c->X->home || i >= ARRAY_LEN(defs))
		return NULL;
	snprintf(tmp, tmpsz, "%s/.ssh/%s", c->X->home, defs[i]);
	return tmp;
}

/* Advances authentication; returns false while it must wait (or failed). */
bool auth_step(struct conn *c)
{
	const char *user = c->h->user;
	unsigned ulen = (unsigned)strlen(user);
	if (c->auth_phase == 0) {
		char *list = libssh2_userauth_list(c->s, user, ulen);
		if (!list) {
			if (libssh2_userauth_authenticated(c->s))
				return true;
			if (libssh2_session_last_errno(c->s) == LIBSSH2_ERROR_EAGAIN)
				return false;
			char *why = session_error(c->s);
			conn_fail(c, xasprintf("authentication failed: %s", why));
			free(why);
			return false;
		}
		c->authlist = xstrdup(list);
		if (!strstr(c->authlist, "publickey")) {
			conn_fail(c, xasprintf("authentication failed: the server offers only %s; baton uses keys "
					       "(ssh-agent or identity files)",
					       c->authlist));
			return false;
		}
		const char *sock = getenv("SSH_AUTH_SOCK");
		c->auth_phase = sock && *sock ? 1 : 2;
		if (c->auth_phase == 1 && c->X->agent_silent) {
			c->agent_timed_out = true; /* it did not answer another connection: not asked again */
			c->auth_phase = 2;
		}
		if (c->auth_phase == 1) {
			if (agent_queue(c, true))
				return false;
			c->auth_phase = 2;
		}
	}
	while (c->auth_phase == 1) {
		/* one agent call per job, on a worker; its result, when back, is taken here */
		if (c->agent_job)
			return false;
		if (!c->agent_have) {
			/* the socket woke us: the userauth call that waited for the server goes on */
			if (agent_queue(c, false))
				return false;
			agent_drop(c);
			break;
		}
		c->agent_have = false;
		int rc = c->agent_rc;
		if (c->agent_timed_out || (c->agent_listing && rc != 0)) {
			agent_drop(c);
			break;
		}
		if (c->agent_listing || (rc != 0 && rc != LIBSSH2_ERROR_EAGAIN && c->agent_id)) {
			/* the keys are listed, or one was refused: the (next) key */
			if (agent_queue(c, false))
				return false;
			agent_drop(c);
			break;
		}
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false; /* it waits for the server: the loop watches the socket */
		if (rc == 0)
			return true;
		agent_drop(c); /* no key left */
	}
	while (c->auth_phase == 2) {
		char tmp[4096];
		const char *path = identity_at(c, c->id_next, tmp, sizeof tmp);
		if (!path) {
			c->auth_phase = 3;
			break;
		}
		if (!file_exists(path)) {
			c->id_next++;
			continue;
		}
		int rc = libssh2_userauth_publickey_fromfile_ex(c->s, user, ulen, NULL, path, NULL);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc == 0)
			return true;
		c->id_next++;
	}
	struct buf tried = {0};
	if (c->agent_timed_out)
		buf_printf(&tried, "ssh-agent (it did not answer within %ds)", AGENT_TIMEOUT_MS / 1000);
	else if (c->agent_tried)
		buf_adds(&tried, "ssh-agent's keys");
	else
		buf_adds(&tried, getenv("SSH_AUTH_SOCK") && *getenv("SSH_AUTH_SOCK") ? "ssh-agent (no key it holds was accepted)"
										      : "no ssh-agent (SSH_AUTH_SOCK unset)");
	char tmp[4096];
	for (size_t i = 0; identity_at(c, i, tmp, sizeof tmp); i++) {
		const char *p = identity_at(c, i, tmp, sizeof tmp);
		buf_adds(&tried, ", ");
		buf_adds(&tried, p);
		if (!file_exists(p))
			buf_adds(&tried, " (missing)");
	}
	conn_fail(c, xasprintf("authentication failed for user %s: the server accepted none of the keys (tried %s)",
			       user, tried.data));
	buf_free(&tried);
	return false;
}

