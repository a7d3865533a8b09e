/*
 * ssh_idle.c — connections between commands: which ones are idle (logged
 * in, running nothing, carrying no tunnel), how many of them stay open
 * (o.max_idle: the ones used longest ago close first), and what happens
 * when the server closes one while it is idle or as the next command opens
 * its channel — the host is connected to again and the commands that had
 * not started move there, so that nothing ever runs twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "exec/ssh_internal.h"
#include "util/util.h"

/* True when c could close now with nothing lost: logged in, running nothing, carrying no tunnel. */
bool conn_idle(const struct conn *c)
{
	if (c->dead || c->state != C_READY || conn_busy(c))
		return false;
	for (size_t i = 0; i < c->n_carries; i++)
		if (c->carries[i])
			return false;
	return true;
}


/*
 * A connection to h is about to open: the idle ones past o.max_idle - 1
 * close, the one used longest ago first (never one h reaches through).
 */
void idle_cap(struct ssh *X, const struct exec_host *h)
{
	if (!X->o.max_idle)
		return;
	for (;;) {
		size_t idle = 0;
		struct conn *oldest = NULL;
		for (struct conn *c = X->conns; c; c = c->next)
			if (conn_idle(c)) {
				idle++;
				bool via = false;
				for (const struct exec_host *j = h->jump; j && !via; j = j->jump)
					via = c->key == j;
				if (!via && (!oldest || c->used_ms < oldest->used_ms))
					oldest = c;
			}
		if (idle < X->o.max_idle || !oldest)
			return;
		conn_fail(oldest, xstrdup("closed: more idle connections than max_hosts"));
	}
}


/* h's idle connection was closed by the server: its next connection says it was opened again. */
static void idle_closed_add(struct ssh *X, const struct exec_host *h)
{
	for (size_t i = 0; i < X->n_idle_closed; i++)
		if (X->idle_closed[i] == h)
			return;
	X->idle_closed = xrealloc(X->idle_closed, (X->n_idle_closed + 1) * sizeof *X->idle_closed);
	X->idle_closed[X->n_idle_closed++] = h;
}

/* Was h's idle connection closed by the server? (Forgotten once asked.) */
bool idle_closed_take(struct ssh *X, const struct exec_host *h)
{
	for (size_t i = 0; i < X->n_idle_closed; i++)
		if (X->idle_closed[i] == h) {
			X->idle_closed[i] = X->idle_closed[--X->n_idle_closed];
			return true;
		}
	return false;
}

/*
 * Every command of c's (baton's shell aside) goes to a new connection to
 * c's host, c failing with reason and nobody told; false when none was
 * there. The new connection has connect_timeout_ms; those commands that
 * cannot be moved (connecting failed at once) end with why.
 */
static bool move_procs(struct conn *c, char *reason, uint64_t connect_timeout_ms, bool idle, unsigned attempt,
		       uint64_t deadline_ms)
{
	struct ssh *X = c->X;
	struct exec_proc *moved = NULL, **tail = &moved, **pp = &c->procs;
	while (*pp) {
		struct exec_proc *p = *pp;
		if (p->shell) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		p->next = NULL;
		*tail = p;
		tail = &p->next;
	}
	const struct exec_host *key = c->key;
	char *why = moved ? xstrdup(reason) : NULL;
	conn_fail(c, reason); /* only baton's shell is left on it: nobody is told */
	if (idle)
		idle_closed_add(X, key);
	if (!moved)
		return false;
	struct conn *n = conn_get(X, key, connect_timeout_ms);
	if (n) {
		n->attempt = attempt;
		n->timeout_said_ms = c->timeout_said_ms;
		if (deadline_ms)
			n->deadline_ms = deadline_ms;
	}
	while (moved) {
		struct exec_proc *p = moved;
		moved = p->next;
		if (idle)
			p->reopened = true;
		if (!n) {
			/* connecting again failed at once: the old connection, still allocated until
			 * its handles close, holds the proc until its end is reported from the loop */
			p->next = NULL;
			p->error = xasprintf("ssh %s: %s; connecting again failed", c->h->name, why);
			p->st.exit_code = -1;
			proc_defer_finish(p);
			continue;
		}
		p->c = n;
		p->ch = NULL;
		p->state = n->state == C_READY ? P_OPEN : P_WAIT;
		p->next = n->procs;
		n->procs = p;
	}
	free(why);
	if (n) {
		n->used_ms = uv_now(X->loop);
		shell_open(n);
		poll_update(n);
	}
	return true;
}

/*
 * The connection's socket failed. A server may close a connection that sat
 * idle between two steps (restarted, an idle timeout, ClientAliveCountMax):
 * if nothing can have run on it since it was last idle, so that nothing
 * runs twice — every command of the caller's on it still waits for its
 * channel (P_WAIT or P_OPEN: no exec request went), none of baton's own
 * kills or reads is pending, none was moved before (once per task start) —
 * it closes and the host is connected to again (host key checked and
 * authenticated as the first time), those commands moved there; the new
 * connection says so in a warning once ready. Otherwise every command on it
 * fails as before ("connection lost"): retry is the plan's to ask for.
 */
void conn_broke(struct conn *c, char *reason)
{
	if (c->dead) {
		free(reason);
		return;
	}
	struct ssh *X = c->X;
	bool can = c->state == C_READY && !X->closing;
	for (size_t i = 0; i < c->n_carries && can; i++)
		can = !c->carries[i]; /* a jump host carrying tunnels is not idle: what goes through them fails */
	for (const struct exec_proc *p = c->procs; p && can; p = p->next)
		if (!p->shell && (p->control || p->reopened || (p->state != P_WAIT && p->state != P_OPEN)))
			can = false;
	if (!can) {
		conn_fail(c, reason);
		return;
	}
	move_procs(c, reason, X->o.connect_timeout_ms, true, 0, 0);
}

/*
 * An idle connection's socket is readable: is it the server's close (EOF,
 * an error)? Then the connection goes at once, and the host's next command
 * simply connects anew (conn_broke). Bytes (keepalive answers, a
 * disconnect message) are read by baton's shell, whose channel read takes
 * everything libssh2 has; with no shell nothing would read them, and the
 * socket, always readable, is not watched until the next command, whose
 * channel open then finds out (conn_broke too). True: drive the connection.
 */
bool idle_readable(struct conn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return false;
	if (n <= 0) {
		conn_broke(c, n == 0 ? xstrdup("the server closed the connection while it was idle")
				     : xasprintf("the idle connection failed: %s", strerror(errno)));
		return false;
	}
	if (c->shell && c->shell->state == P_SHELL && c->shell->ch)
		return true;
	c->idle_deaf = true;
	poll_update(c);
	return false;
}

/*
 * A connection reset, or closed, before the server said a word — its
 * listen queue overflowed when thousands of hosts connect at once through
 * one address, a load balancer shed it, sshd's MaxStartups dropped it — is
 * made again: nothing was sent to the host but the client's banner, so
 * nothing can have run. At most CONNECT_ATTEMPTS attempts, each resolving
 * the address again, all within the one connect_timeout. Through a jump
 * host (a tunnel) the jump host's connection decides, not this one.
 */
char *conn_retry(struct conn *c, char *reason)
{
	struct ssh *X = c->X;
	uint64_t now = uv_now(X->loop);
	bool can = !c->dead && !X->closing && !c->tun && !c->n_carries && c->rx_bytes == 0 &&
		   (c->state == C_CONNECT || c->state == C_HANDSHAKE) && (!c->deadline_ms || c->deadline_ms > now);
	for (const struct exec_proc *p = c->procs; p && can; p = p->next)
		can = p->shell || p->state == P_WAIT;
	if (!can)
		return reason;
	if (c->attempt + 1 >= CONNECT_ATTEMPTS) {
		char *r = xasprintf("%s (%u attempts)", reason, c->attempt + 1);
		free(reason);
		return r;
	}
	uint64_t left = c->deadline_ms ? c->deadline_ms - now : 0;
	move_procs(c, reason, left, false, c->attempt + 1, c->deadline_ms);
	return NULL;
}
