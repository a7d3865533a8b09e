/*
 * ssh.c — the SSH executor: libssh2 in non-blocking mode, driven by the
 * libuv loop. Each host gets one connection, opened on the first command for
 * it; every command is a channel of that connection. A connection is a small
 * state machine (resolve → TCP connect → handshake → host key → auth →
 * ready); so is each channel (open → exec → read → close). Whenever the
 * socket is ready, or something changes, conn_drive() advances everything
 * the connection carries until libssh2 says it must wait (EAGAIN).
 *
 * The remote command is wrapped so that its first act is to print its
 * process id on stderr behind a marker; sshd makes every session's command a
 * session and process-group leader, so that id is the group to signal. A
 * timeout or cancel runs `kill -s SIG -- -PGID` there, and the end of every
 * command kills what is left of its group, before the end is reported:
 * through a shell of baton's own on one more session of the connection
 * (sshctl.c), else on a channel of its own. Host keys: hostkey.c and
 * knownhosts.c; libssh2 itself is loaded on first use (ssh2.c).
 *
 * $BATON_OUTPUT: the wrapper makes the file with mktemp and names it on the
 * marker line; once the command's channel has closed (its exit status and
 * output untouched), a command on a channel of its own prints the file and
 * removes it, and only then is the end reported (output.c).
 *
 * ProxyJump: the jump host's connection opens a direct-tcpip channel to the
 * target, and the target's session talks over one end of a socketpair
 * whose other end is pumped to and from that channel (ssh_tunnel.c).
 * Authentication: ssh_auth.c, whose ssh-agent calls go to a worker thread
 * (the session left alone meanwhile: c->agent_job), as do the bulk of a
 * large upload's writes (sftp_job.c: c->xfer_job; conn_away tells both).
 * The types they share: ssh_internal.h.
 *
 * A connection the server closes while idle (restarted, an idle timeout)
 * is dropped as soon as its socket reads EOF, and the next command
 * connects anew; one found closed only when commands open their channels,
 * none of them started, moves them to a new connection (conn_broke).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/copy.h"
#include "exec/ssh_internal.h"
#include "exec/hostkey.h"
#include "exec/knownhosts.h"
#include "exec/output.h"
#include "exec/ssh2.h"
#include "exec/sshctl.h"
#include "util/util.h"

static bool kh_ready(struct conn *c);
static void shell_lost(struct conn *c);
static void send_remote_signal(struct exec_proc *p, int sig);
static void proc_timer(struct exec_proc *p, uv_timer_cb cb, uint64_t ms);
static void on_reaped(void *ud, int answer);
static void on_orphan_output(uv_timer_t *t);
static struct exec_proc *control_new(struct conn *c, char *cmd);

static const char *conn_where(const struct conn *c, struct buf *b)
{
	b->len = 0;
	buf_adds(b, c->h->name);
	if (strcmp(c->h->name, c->h->address) || c->h->port != 22) {
		char tmp[32];
		buf_adds(b, " (");
		buf_adds(b, c->h->address);
		snprintf(tmp, sizeof tmp, ":%d)", c->h->port);
		buf_adds(b, tmp);
	}
	return b->data;
}

/* Why a connection broke, in words: libssh2's own ("transport read") say little. */
char *lost_reason(LIBSSH2_SESSION *s)
{
	char *msg = NULL;
	int len = 0;
	int e = libssh2_session_last_error(s, &msg, &len, 0);
	if (e == LIBSSH2_ERROR_SOCKET_RECV || e == LIBSSH2_ERROR_SOCKET_DISCONNECT)
		return xstrdup("connection lost: the server or the network closed it");
	if (e == LIBSSH2_ERROR_SOCKET_SEND)
		return xstrdup("connection lost: cannot send to the server");
	return xasprintf("connection lost: %s", msg && len ? msg : "unknown libssh2 error");
}

char *session_error(LIBSSH2_SESSION *s)
{
	char *msg = NULL;
	int len = 0;
	libssh2_session_last_error(s, &msg, &len, 0);
	return xstrdup(msg && len ? msg : "unknown libssh2 error");
}

/* Is e an error of the whole connection (its socket), not of one channel? */
bool socket_error(int e)
{
	return e == LIBSSH2_ERROR_SOCKET_SEND || e == LIBSSH2_ERROR_SOCKET_RECV || e == LIBSSH2_ERROR_SOCKET_DISCONNECT;
}

/* ---- the socket and its poll ---- */

static void on_poll(uv_poll_t *h, int status, int events);

/* Does c carry anything of the caller's (baton's own shell, idle, does not count)? */
bool conn_busy(const struct conn *c)
{
	for (const struct exec_proc *p = c->procs; p; p = p->next)
		if (!p->shell)
			return true;
	return !sshctl_idle(&c->ctl);
}

/* Does c have commands to carry, itself or through a connection it carries (to JUMP_DEPTH_MAX hops)? */
bool conn_needed(const struct conn *c, int depth)
{
	if (conn_busy(c))
		return true;
	for (size_t i = 0; i < c->n_carries && depth < JUMP_DEPTH_MAX; i++)
		if (c->carries[i] && c->carries[i]->target && conn_needed(c->carries[i]->target, depth + 1))
			return true;
	return false;
}

void set_ref(uv_handle_t *h, bool ref)
{
	if (ref)
		uv_ref(h);
	else
		uv_unref(h);
}

/*
 * Only what a command needs keeps the loop alive: c's socket and timer
 * while c is needed, each tunnel it carries while that tunnel's target is.
 * Whether c is needed decides it for the jump hosts it goes through, so
 * they are updated too, up the chain: a jump host whose last carried
 * command ended must not hold the loop until its next keepalive.
 */
void conn_refs(struct conn *c)
{
	for (int depth = 0; c && !c->dead && depth <= JUMP_DEPTH_MAX; depth++) {
		bool need = conn_needed(c, 0);
		if (c->poll_init)
			set_ref((uv_handle_t *)&c->poll, need);
		if (c->timer_init)
			set_ref((uv_handle_t *)&c->timer, need);
		for (size_t i = 0; i < c->n_carries; i++) {
			struct tunnel *t = c->carries[i];
			if (t && t->poll_init)
				set_ref((uv_handle_t *)&t->poll, t->target && conn_needed(t->target, 1));
		}
		c = c->tun ? c->tun->via : NULL;
	}
}

void poll_update(struct conn *c)
{
	if (!c->poll_init || c->dead)
		return;
	int ev = UV_READABLE;
	if (conn_away(c) || c->slice_waiting)
		ev = 0; /* a worker has the session (ssh_auth.c, sftp_job.c): its socket is not the loop's meanwhile;
			 * or its copy waits for a thread: its socket waits with it (sftp_job.c drives it, at its turn) */
	else if (c->state == C_CONNECT)
		ev = c->tun ? 0 : UV_WRITABLE; /* a tunnel says itself when it is open */
	else if (c->state == C_READY && !conn_busy(c) && !c->n_carries)
		ev = c->idle_deaf ? 0 : UV_READABLE; /* idle: watched for the server's close (idle_readable) */
	else if (c->s && (libssh2_session_block_directions(c->s) & LIBSSH2_SESSION_BLOCK_OUTBOUND))
		ev |= UV_WRITABLE;
	if (ev != c->poll_events) {
		c->poll_events = ev;
		if (ev)
			uv_poll_start(&c->poll, ev, on_poll);
		else
			uv_poll_stop(&c->poll);
	}
	conn_refs(c);
}

/* Makes the loop drive the connection soon, never from inside the caller's call. */
static void conn_kick(struct conn *c)
{
	if (!c->poll_init || c->dead || conn_away(c))
		return; /* driven when the worker is back */
	c->poll_events = UV_READABLE | UV_WRITABLE;
	uv_poll_start(&c->poll, c->poll_events, on_poll);
	uv_ref((uv_handle_t *)&c->poll); /* it has work again: the loop must wait for it */
}

static void on_handle_closed(uv_handle_t *h);

static void conn_release(struct conn *c);

static void conn_close_handle(struct conn *c, uv_handle_t *h)
{
	c->handles++;
	h->data = c;
	uv_close(h, on_handle_closed);
}

/* ---- finishing procs ---- */

static void proc_release(struct exec_proc *p)
{
	sftp_xfer_free(p->xfer);
	buf_free(&p->head);
	exec_rout_free(&p->out);
	free(p->cmd);
	free(p->input);
	free(p->error);
	free(p);
}

static void on_kill_timer_closed(uv_handle_t *h)
{
	struct exec_proc *p = h->data;
	if (--p->handles == 0)
		proc_release(p);
}

static void proc_unlink(struct exec_proc *p)
{
	struct exec_proc **pp = &p->c->procs;
	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
}

/* ---- $BATON_OUTPUT read back (output.c) ---- */

/*
 * The command and what it left in its group have ended: a command on a
 * channel of its own prints its file and removes it. True while that runs
 * (the proc ends when it has), false when there is nothing (more) to read.
 */
static bool output_fetch(struct exec_proc *p)
{
	if (!p->out.path || p->out.state == ROUT_DONE || p->c->dead || p->c->state != C_READY)
		return false;
	if (p->out.state == ROUT_NONE) {
		p->out.state = ROUT_ASKED;
		p->fetcher = control_new(p->c, exec_output_fetch_command(p->out.path));
		p->fetcher->fetched = p;
	}
	return true;
}

/* A fetcher ends (f): its proc has what it read, or why not; returns that proc, or NULL. */
static struct exec_proc *output_fetched(struct exec_proc *f)
{
	struct exec_proc *p = f->fetched;
	if (!p)
		return NULL;
	p->fetcher = NULL;
	exec_rout_fetched(&p->out, f->error, p->c->h->name);
	return p;
}

/* Reports the end (once) and frees the proc when its handles are closed. */
void proc_finish(struct exec_proc *p)
{
	if (p->state == P_DONE)
		return;
	p->state = P_DONE;
	proc_unlink(p);
	sshctl_forget(&p->c->ctl, p);
	if (p->shell)
		shell_lost(p->c);
	if (p->reaper)
		p->reaper->reaped = NULL;
	struct exec_proc *reaped = p->reaped; /* a reaper: its proc ends now */
	if (reaped) {
		reaped->reaper = NULL;
		reaped->reap = R_DONE;
	}
	if (p->fetcher)
		p->fetcher->fetched = NULL;
	struct exec_proc *fetched = output_fetched(p); /* a fetcher: its proc ends now */
	/* a session slot is free again: kills that the server refused may go now */
	if (p->c->state == C_READY)
		for (struct exec_proc *q = p->c->procs; q; q = q->next)
			if ((q->control || q->slot_retry) && q->state == P_WAIT)
				q->state = P_OPEN;
	if (!p->head_done && p->head.len && !p->control)
		p->cb.output(p->ud, 2, p->head.data, p->head.len);
	if (!p->control) {
		p->st.error = p->error;
		if (!p->error)
			exec_rout_status(&p->out, &p->st);
		p->cb.done(p->ud, &p->st);
	}
	if (reaped)
		conn_kick(reaped->c); /* its next step ends it: conn_drive may be walking the list past it */
	if (fetched)
		conn_kick(fetched->c);
	if (p->kill_timer_init) {
		p->handles++;
		p->kill_timer.data = p;
		uv_close((uv_handle_t *)&p->kill_timer, on_kill_timer_closed);
	} else {
		proc_release(p);
	}
}

static void proc_fail(struct exec_proc *p, char *reason)
{
	if (p->state == P_DONE) {
		free(reason);
		return;
	}
	if (!p->error)
		p->error = reason;
	else
		free(reason);
	p->st.exit_code = -1;
	p->ch = NULL; /* freed with its session */
	proc_finish(p);
}

/* ---- connections ---- */

static void timer_stop(struct conn *c)
{
	if (c->timer_init)
		uv_timer_stop(&c->timer);
}

static void conn_unlink(struct conn *c)
{
	struct conn **pp = &c->X->conns;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
}

static void free_session(struct conn *c);

static void conn_kick(struct conn *c);

/* Queues a command of baton's own (cmd is taken) on c: no callbacks, nothing reported. */
static struct exec_proc *control_new(struct conn *c, char *cmd)
{
	struct exec_proc *k = xcalloc(1, sizeof *k);
	k->c = c;
	k->control = true;
	k->head_done = true;
	k->state = c->state == C_READY ? P_OPEN : P_WAIT;
	k->cmd = cmd;
	k->next = c->procs;
	c->procs = k;
	if (c->state == C_READY)
		conn_kick(c);
	else
		poll_update(c);
	return k;
}

static bool shell_usable(const struct conn *c)
{
	return c->shell_state == SH_OPENING || c->shell_state == SH_READY;
}

/* The shell's answer to a reap: 1 the group was killed, 0 the command was still alive (not yet). */
static void on_reaped(void *ud, int answer)
{
	struct exec_proc *p = ud;
	p->reap = answer == 1 ? R_DONE : R_NONE;
	conn_kick(p->c); /* its next step ends it, or asks again */
}

/*
 * Asks for what the command left in its process group to be killed, once
 * the command itself is gone: through baton's shell on the host (one round
 * trip, nothing forked there), else by a command on a channel of its own.
 * The shell is first asked as soon as the command's output closes, in the
 * same round trip as the channel's close.
 */
static void reap_ask(struct exec_proc *p)
{
	struct conn *c = p->c;
	if (p->control || p->pgid <= 0 || p->reap != R_NONE || c->dead || c->state != C_READY)
		return;
	if (shell_usable(c)) {
		/* before the channel has closed the command may still run: only if it is gone */
		p->reap = R_ASKED;
		if (p->state == P_REAP)
			sshctl_kill(&c->ctl, p->pgid, "KILL", on_reaped, p);
		else
			sshctl_reap(&c->ctl, p->pgid, on_reaped, p);
		conn_kick(c);
	} else if (p->state == P_REAP && !p->reaper) {
		p->reaper = control_new(c, xasprintf("kill -s KILL -- -%ld 2>/dev/null", p->pgid));
		p->reaper->reaped = p;
	}
}

/*
 * The command has ended (its channel is closed): anything it left running
 * in its group is killed before the end is reported. Without a known
 * group, or a connection to send it on, it ends at once.
 */
static void proc_reap(struct exec_proc *p)
{
	struct conn *c = p->c;
	if (p->control || p->pgid <= 0 || c->dead || c->state != C_READY) {
		proc_finish(p);
		return;
	}
	p->state = P_REAP;
	reap_ask(p);
}

/* P_REAP: ends the proc once its group is known killed (or nothing more can be done). */
static bool reap_step(struct exec_proc *p)
{
	if (p->reaper || p->reap == R_ASKED)
		return false;
	if (p->reap == R_NONE && !p->c->dead && p->c->state == C_READY) {
		reap_ask(p);
		if (p->reaper || p->reap == R_ASKED)
			return true;
	}
	/* its group has been killed: its $BATON_OUTPUT file is read back, then it ends */
	if (p->out.state == ROUT_ASKED && p->fetcher)
		return false;
	if (output_fetch(p))
		return true;
	proc_finish(p);
	return true;
}

/* ---- baton's shell on the host (sshctl.h) ---- */

/* Asks for the connection's shell, once: it opens with the first command. */
void shell_open(struct conn *c)
{
	if (c->shell_state != SH_NONE)
		return;
	c->shell_state = SH_OPENING;
	c->shell = control_new(c, xstrdup("exec sh"));
	c->shell->shell = true;
}

/* The shell is gone or given up: what waits for it goes another way; it is not asked for again. */
static void shell_lost(struct conn *c)
{
	c->shell_state = SH_OFF;
	c->shell = NULL;
	sshctl_abort(&c->ctl);
}

/*
 * A command was refused a session and baton's shell holds one: the shell
 * closes (this connection does without it from now on) so that the command
 * can have its slot. True if it did.
 */
static bool shell_make_room(struct conn *c)
{
	struct exec_proc *sh = c->shell;
	if (!sh || !sh->ch || sh->state != P_SHELL)
		return false;
	shell_lost(c);
	sh->shell = false; /* an ordinary control proc now: it closes and goes */
	sh->state = P_CLOSE;
	conn_kick(c);
	return true;
}

/* Moves requests and answers between the queue and the shell; true on progress. */
static bool shell_step(struct exec_proc *p)
{
	struct conn *c = p->c;
	bool progress = false;
	size_t len;
	const char *out;
	while ((out = sshctl_output(&c->ctl, &len))) {
		ssize_t w = libssh2_channel_write(p->ch, out, len);
		if (w == LIBSSH2_ERROR_EAGAIN)
			break;
		if (w < 0) {
			conn_broke(c, lost_reason(c->s));
			return false;
		}
		sshctl_wrote(&c->ctl, (size_t)w);
		progress = true;
	}
	for (int st = 0; st < 2; st++)
		for (;;) {
			ssize_t n = libssh2_channel_read_ex(p->ch, st ? SSH_EXTENDED_DATA_STDERR : 0, c->X->buf, READ_CHUNK);
			if (n == LIBSSH2_ERROR_EAGAIN)
				break;
			if (n < 0) {
				conn_broke(c, lost_reason(c->s));
				return false;
			}
			if (n == 0) {
				if (libssh2_channel_eof(p->ch)) {
					/* the shell has gone (killed?): what it was asked goes another way */
					shell_lost(c);
					p->shell = false;
					p->state = P_CLOSE;
					return true;
				}
				break;
			}
			progress = true;
			if (!st)
				sshctl_input(&c->ctl, c->X->buf, (size_t)n);
		}
	return progress;
}

/* ---- a command that exited while its output stays open ---- */

/* After kill_grace: what holds the output goes, with the rest of the group. */
static void on_grace_over(uv_timer_t *t)
{
	struct exec_proc *p = t->data;
	if (p->state != P_RUN || p->pgid <= 0)
		return;
	send_remote_signal(p, SIGKILL);
	proc_timer(p, on_orphan_output, KILL_CLOSE_MS);
}

/* The shell's answer to "is the command alive?": if not, its output is held by what it left. */
static void on_alive(void *ud, int answer)
{
	struct exec_proc *p = ud;
	p->polling = false;
	if (answer != 0 || p->state != P_RUN || p->exited || p->killed)
		return;
	p->exited = true;
	proc_timer(p, on_grace_over, p->grace_ms);
}

/* Every POLL_MS while a command runs: does its process still exist? (sshd reports its exit
 * status at once, but libssh2 cannot tell a status of 0 from none yet.) */
static void on_poll_tick(uv_timer_t *t)
{
	struct exec_proc *p = t->data;
	struct conn *c = p->c;
	if (p->state != P_RUN || p->exited || p->killed || c->shell_state == SH_OFF)
		return;
	if (c->shell_state == SH_READY && !p->polling) {
		p->polling = true;
		sshctl_alive(&c->ctl, p->pgid, on_alive, p);
		conn_kick(c);
	}
	proc_timer(p, on_poll_tick, POLL_MS);
}

/*
 * After an established connection broke: a fresh, short-lived connection
 * sends SIGTERM to each process group that was running there, and SIGKILL
 * two seconds later, so a dropped link does not leave commands behind. If the
 * host cannot be reached again within CLEANUP_CONNECT_MS, nothing more can be
 * done from here.
 */
static void end_orphans(struct ssh *X, const struct exec_host *key, const long *pg, size_t n)
{
	uint64_t limit = X->o.connect_timeout_ms && X->o.connect_timeout_ms < CLEANUP_CONNECT_MS ? X->o.connect_timeout_ms
											      : CLEANUP_CONNECT_MS;
	struct conn *c = conn_get(X, key, limit);
	if (!c)
		return;
	struct buf cmd = {0}, ids = {0};
	for (size_t i = 0; i < n; i++)
		buf_printf(&ids, " -%ld", pg[i]);
	buf_printf(&cmd, "kill -s TERM --%s 2>/dev/null; (sleep 2; kill -s KILL --%s) </dev/null >/dev/null 2>&1 &", ids.data,
		   ids.data);
	control_new(c, buf_detach(&cmd));
	buf_free(&ids);
}

/*
 * The connection is gone (or never came): every proc on it fails with the
 * reason, the tunnels it carries close, and it leaves the table so the
 * next command for the host connects again.
 */
void conn_fail(struct conn *c, char *reason)
{
	if (c->dead) {
		free(reason);
		return;
	}
	/* commands that were running when an established connection broke may still
	 * run over there: remember their process groups, to end them through a new one */
	long *orphans = NULL;
	size_t n_orphans = 0;
	if (c->state == C_READY && !c->X->closing)
		for (struct exec_proc *p = c->procs; p; p = p->next)
			if (!p->control && p->pgid > 0) {
				orphans = xrealloc(orphans, (n_orphans + 1) * sizeof *orphans);
				orphans[n_orphans++] = p->pgid;
			}
	c->dead = true;
	c->state = C_FAILED;
	c->error = reason;
	pace_done(c);
	conn_unlink(c);
	timer_stop(c);
	struct buf w = {0};
	conn_where(c, &w);
	while (c->procs) {
		struct exec_proc *p = c->procs;
		if (p->state == P_REAP)
			proc_finish(p); /* it has ended: its own status stands; end_orphans does the rest */
		else
			proc_fail(p, xasprintf("ssh %s: %s", w.data, reason));
	}
	buf_free(&w);
	for (size_t i = 0; i < c->n_carries; i++)
		if (c->carries[i]) {
			struct tunnel *t = c->carries[i];
			t->ch = NULL; /* goes with this session */
			t->via = NULL;
			if (t->target)
				conn_fail(t->target, xasprintf("the jump host %s is gone: %s", c->h->name, reason));
		}
	if (c->tun) {
		tunnel_close(c->tun);
		c->tun = NULL;
	}
	free_session(c);
	if (c->resolving)
		uv_cancel((uv_req_t *)&c->gai);
	if (n_orphans)
		end_orphans(c->X, c->key, orphans, n_orphans);
	free(orphans);
	conn_release(c);
}

static void free_session(struct conn *c)
{
	if (conn_away(c)) {
		/* a worker uses the session: freed when it is back (conn_maybe_free) */
		agent_cancel(c);
		if (c->xfer_job)
			xfer_job_cancel(c->xfer_job);
		return;
	}
	if (c->agent) {
		libssh2_agent_disconnect(c->agent);
		libssh2_agent_free(c->agent);
		c->agent = NULL;
	}
	if (c->s) {
		/* a polite goodbye if the socket takes it at once; never wait for it */
		libssh2_session_disconnect(c->s, "baton done");
		/* then no more reading: a channel still open (baton's shell, or a command's on a
		 * connection declared lost) would otherwise wait for the server's close, and a
		 * non-blocking session_free give up with EAGAIN, freeing nothing */
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_RDWR);
		libssh2_session_free(c->s);
		c->s = NULL;
	}
}

void conn_maybe_free(struct conn *c)
{
	if (c->handles || c->resolving || c->driving || c->deferred || conn_away(c))
		return;
	struct exec_fds *fds = c->fds; /* not c->X's: the executor may be gone by now */
	long held = c->fds_held;
	xfer_job_unwait(c);
	free_session(c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->ai)
		uv_freeaddrinfo(c->ai);
	sshctl_abort(&c->ctl);
	free(c->carries);
	free(c->authlist);
	free(c->error);
	free((char *)c->own.name);
	free((char *)c->own.address);
	free((char *)c->own.user);
	for (size_t i = 0; i < c->own.n_identities; i++)
		free((char *)c->own.identities[i]);
	free((void *)c->own.identities);
	free(c);
	exec_fds_give(fds, held);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	c->handles--;
	conn_maybe_free(c);
}

/* Closes the connection's handles; it is freed once they are closed. */
static void conn_release(struct conn *c)
{
	c->dead = true;
	if (c->poll_init) {
		c->poll_init = false;
		conn_close_handle(c, (uv_handle_t *)&c->poll);
	}
	if (c->timer_init) {
		c->timer_init = false;
		conn_close_handle(c, (uv_handle_t *)&c->timer);
	}
	conn_maybe_free(c);
}

/*
 * The keepalive rule, on each tick while commands run: a server from which
 * nothing has come for KEEPALIVE_MISSES intervals is sent a keepalive, and
 * is lost (true: the connection failed) only if nothing comes within a
 * fresh interval after it. Intervals are counted by the clock, so after
 * baton itself was stopped (SIGSTOP) all of them seem to have passed at
 * once; the fresh keepalive tells a stopped baton from a dead server.
 * A host behind a jump host that is silent too (its own keepalives, sent
 * on every tick, unanswered) is lost because the jump host is: the jump
 * host's connection fails, and with it what it carries, whose commands are
 * then ended through a new connection to it (not through the silent one).
 */
static bool keepalive_lost(struct conn *c)
{
	uint64_t now = uv_now(c->X->loop), iv = c->X->o.keepalive_ms;
	if (!conn_busy(c) || now - c->last_rx_ms <= KEEPALIVE_MISSES * iv)
		return false;
	if (c->probe_ms && c->last_rx_ms < c->probe_ms) {
		if (now - c->probe_ms < iv)
			return false;
		struct conn *lost = c; /* the farthest silent jump host on c's way, else c */
		for (int d = 0; d < JUMP_DEPTH_MAX && lost->tun && lost->tun->via; d++) {
			struct conn *via = lost->tun->via;
			if (via->dead || via->state != C_READY || now - via->last_rx_ms <= KEEPALIVE_MISSES * iv)
				break;
			lost = via;
		}
		conn_fail(lost, xasprintf("connection lost: no answer to keepalives for %llus",
					 (unsigned long long)((now - lost->last_rx_ms) / 1000)));
		return true;
	}
	int next = 0;
	libssh2_keepalive_send(c->s, &next);
	/* libssh2 sends one per interval (whole seconds) at most: a full wait means it went now */
	if ((uint64_t)next >= (iv + 999) / 1000)
		c->probe_ms = now;
	poll_update(c);
	return false;
}

void conn_tick(struct conn *c)
{
	c->tick_due = false;
	if (keepalive_lost(c))
		return;
	int next = 0;
	libssh2_keepalive_send(c->s, &next);
	poll_update(c);
}

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t secs = (c->timeout_said_ms + 999) / 1000;
	if (c->state == C_READY) {
		if (conn_away(c) || c->slice_waiting)
			c->tick_due = true; /* the session is a worker's, or waits for one: the tick waits (sftp_job.c) */
		else
			conn_tick(c);
		return;
	}
	if (c->state == C_RESOLVE || c->state == C_CONNECT)
		conn_fail(c, xasprintf("connection timed out after %llus (connect_timeout)", (unsigned long long)secs));
	else if (c->state == C_HANDSHAKE)
		conn_fail(c, xasprintf("the server accepted the connection but did not complete the SSH handshake "
				       "within %llus (connect_timeout)",
				       (unsigned long long)secs));
	else
		conn_fail(c, xasprintf("authentication did not complete within %llus (connect_timeout)%s",
				       (unsigned long long)secs, c->agent_job ? ": ssh-agent did not answer" : ""));
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct conn *c = h->data;
	if (c->dead || conn_away(c))
		return;
	if (status < 0 && c->state != C_CONNECT) {
		/* libuv says EBADF for any POLLERR: the socket knows what it was */
		int err = 0;
		socklen_t len = sizeof err;
		if (c->fd < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = 0;
		char *why = err ? xasprintf("connection lost: %s", strerror(err))
				: xstrdup("connection lost: the server or the network closed it");
		if ((why = conn_retry(c, why)))
			conn_broke(c, why);
		return;
	}
	if (events & UV_READABLE) {
		c->last_rx_ms = uv_now(c->X->loop);
		if (conn_idle(c) && !idle_readable(c))
			return;
	}
	conn_drive(c);
}


/* The socket (or tunnel) is connected: a non-blocking session starts its handshake on it. */
static bool session_start(struct conn *c)
{
	c->state = C_HANDSHAKE;
	c->s = libssh2_session_init_ex(NULL, NULL, NULL, c);
	if (!c->s) {
		conn_fail(c, xstrdup("cannot create an SSH session"));
		return false;
	}
	libssh2_session_set_blocking(c->s, 0);
	void *recv_cb, *send_cb;
	LIBSSH2_RECV_FUNC((*fn)) = conn_recv;
	memcpy(&recv_cb, &fn, sizeof recv_cb);
	libssh2_session_callback_set(c->s, LIBSSH2_CALLBACK_RECV, recv_cb);
	LIBSSH2_SEND_FUNC((*sfn)) = conn_send;
	memcpy(&send_cb, &sfn, sizeof send_cb);
	libssh2_session_callback_set(c->s, LIBSSH2_CALLBACK_SEND, send_cb);
	if (c->X->o.known_hosts != EXEC_KH_OFF) {
		if (!kh_ready(c))
			return false;
		exec_hostkey_prefer(c->s, c->X->kh, c->h);
	}
	if (c->X->o.keepalive_ms)
		libssh2_keepalive_config(c->s, 1, (unsigned)((c->X->o.keepalive_ms + 999) / 1000));
	return true;
}

/* Starts a non-blocking connect to the next resolved address. */
static void try_connect(struct conn *c)
{
	int last = 0;
	for (; c->ai_next; c->ai_next = c->ai_next->ai_next) {
		struct addrinfo *a = c->ai_next;
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			last = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
			last = errno;
			close(fd);
			continue;
		}
		c->ai_next = a->ai_next;
		c->fd = fd;
		c->state = C_CONNECT;
		if (uv_poll_init(c->X->loop, &c->poll, fd) != 0) {
			conn_fail(c, xstrdup("cannot watch the socket"));
			return;
		}
		c->poll.data = c;
		c->poll_init = true;
		c->poll_events = 0;
		poll_update(c);
		return;
	}
	conn_fail(c, xasprintf("cannot connect: %s", strerror(last ? last : ECONNREFUSED)));
}

/* The TCP connect finished (or failed); on failure try the next address. */
static void connect_done(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == EINPROGRESS)
		return;
	if (err) {
		c->poll_init = false;
		int fd = c->fd;
		c->fd = -1;
		c->handles++;
		c->poll.data = c;
		uv_close((uv_handle_t *)&c->poll, on_handle_closed);
		close(fd);
		if (c->ai_next) {
			try_connect(c);
			return;
		}
		if (err == ECONNREFUSED) {
			conn_fail(c, xstrdup("connection refused (is sshd running and listening on that port?)"));
			return;
		}
		char *why = xasprintf("cannot connect: %s", strerror(err));
		if (err == ECONNRESET || err == ECONNABORTED)
			why = conn_retry(c, why); /* accepted, then reset: a listen queue that overflowed */
		if (why)
			conn_fail(c, why);
		return;
	}
	/* the poll handle stays: the session reuses it */
	c->poll_events = -1;
	session_start(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct conn *c = req->data;
	c->resolving = false;
	if (c->dead) {
		if (res)
			uv_freeaddrinfo(res);
		conn_maybe_free(c);
		return;
	}
	if (status < 0) {
		conn_fail(c, xasprintf("cannot resolve %s: %s", c->h->address, uv_strerror(status)));
		return;
	}
	c->ai = c->ai_next = res;
	try_connect(c);
}

/* ---- host keys ---- */

/*
 * Checks the server's key against the known hosts file (hostkey.c); false
 * (and the connection failed) when it is refused.
 */
static bool check_host_key(struct conn *c)
{
	struct ssh *X = c->X;
	if (X->o.known_hosts == EXEC_KH_OFF)
		return true;
	char *why = exec_hostkey_check(c->s, c->h, X->kh, X->known_hosts_file, X->o.known_hosts == EXEC_KH_ACCEPT_NEW);
	if (!why)
		return true;
	conn_fail(c, why);
	return false;
}

/* Prints a known_hosts warning through the caller's hook, if any. */
static void kh_warn(void *ud, const char *msg)
{
	struct ssh *X = ud;
	if (X->o.warn)
		X->o.warn(X->o.warn_ud, msg);
}

/* Reads the known hosts file once; false (and the connection failed) when it cannot be read. */
static bool kh_ready(struct conn *c)
{
	struct ssh *X = c->X;
	if (X->o.known_hosts == EXEC_KH_OFF || X->kh)
		return true;
	char *err = NULL;
	X->kh = exec_kh_load(X->known_hosts_file, kh_warn, X, &err);
	if (X->kh)
		return true;
	/* never a false "unknown": nothing can be checked, so no host is accepted */
	conn_fail(c, xasprintf("%s; refusing every host", err));
	free(err);
	return false;
}

/* ---- channels ---- */

static int signal_number(const char *name)
{
	static const struct {
		const char *n;
		int s;
	} t[] = {{"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},   {"ABRT", SIGABRT},
		 {"FPE", SIGFPE},   {"KILL", SIGKILL}, {"SEGV", SIGSEGV}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
		 {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"BUS", SIGBUS},   {"TRAP", SIGTRAP},
		 {"SYS", SIGSYS},   {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
		 {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"CONT", SIGCONT}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},
		 {"URG", SIGURG},   {"WINCH", SIGWINCH}, {"IO", SIGIO},   {"PWR", SIGPWR},   {"CHLD", SIGCHLD}};
	for (size_t i = 0; i < ARRAY_LEN(t); i++)
		if (!strcmp(t[i].n, name))
			return t[i].s;
	return SIGTERM;
}

static const char *signal_word(int sig)
{
	switch (sig) {
	case SIGKILL:
		return "KILL";
	case SIGINT:
		return "INT";
	case SIGHUP:
		return "HUP";
	default:
		return "TERM";
	}
}

/* The shell went away before it sent a signal: a channel of its own sends it. */
static void on_signal_sent(void *ud, int answer)
{
	struct exec_proc *p = ud;
	struct conn *c = p->c;
	if (answer < 0 && !c->dead && c->state == C_READY && p->state != P_DONE)
		control_new(c, xasprintf("kill -s %s -- -%ld 2>/dev/null", signal_word(p->last_signal), p->pgid));
}

/* Sends `kill -s SIG -- -PGID`: through baton's shell on the host, else on a channel of its own. */
static void send_remote_signal(struct exec_proc *p, int sig)
{
	struct conn *c = p->c;
	if (c->dead || c->state != C_READY || !p->pgid)
		return;
	if (c->shell_state == SH_OPENING || c->shell_state == SH_READY) {
		p->last_signal = sig;
		sshctl_kill(&c->ctl, p->pgid, signal_word(sig), on_signal_sent, p);
		conn_kick(c);
		return;
	}
	control_new(c, xasprintf("kill -s %s -- -%ld 2>/dev/null", signal_word(sig), p->pgid));
}

/*
 * Looks for the process-group marker line in the first bytes of stderr
 * (a login shell's startup files may print before it), strips it and passes
 * everything else on. Stderr is held back only until the marker arrives.
 */
static void take_head(struct exec_proc *p, const char *data, size_t n)
{
	buf_add(&p->head, data, n);
	const char *s = p->head.data;
	size_t len = p->head.len, ml = sizeof PGID_MARK - 1;
	const char *m = NULL;
	for (size_t i = 0; i + ml <= len && !m; i++)
		if ((i == 0 || s[i - 1] == '\n') && !memcmp(s + i, PGID_MARK, ml))
			m = s + i;
	const char *nl = m ? memchr(m, '\n', len - (size_t)(m - s)) : NULL;
	if (!nl && len < HEAD_MAX)
		return; /* not all there yet */
	p->head_done = true;
	if (nl) {
		char *end;
		p->pgid = strtol(m + ml, &end, 10);
		exec_rout_marker(&p->out, end, (size_t)(nl - end), p->c->h->name);
		size_t before = (size_t)(m - s), after = (size_t)(nl - s) + 1;
		memmove(p->head.data + before, s + after, len - after);
		p->head.len = before + (len - after);
		if (p->pgid > 0 && !p->control && p->cb.process)
			p->cb.process(p->ud, p->pgid);
		if (p->pgid > 0 && p->want_signal) {
			send_remote_signal(p, p->want_signal);
			p->want_signal = 0;
		}
		if (p->pgid > 0 && !p->control && !p->killed && p->c->shell_state != SH_OFF)
			proc_timer(p, on_poll_tick, POLL_MS);
	}
	if (!nl)
		exec_rout_marker(&p->out, NULL, 0, p->c->h->name);
	if (p->head.len && !p->control)
		p->cb.output(p->ud, 2, p->head.data, p->head.len);
	p->head.len = 0;
}

static void on_control_retry(uv_timer_t *t)
{
	struct exec_proc *p = t->data;
	if (p->state == P_WAIT && p->c->state == C_READY) {
		p->state = P_OPEN;
		conn_kick(p->c);
	}
}

/* A proc's one timer (a retry, a deferred end, or the wait after SIGKILL), started anew. */
static void proc_timer(struct exec_proc *p, uv_timer_cb cb, uint64_t ms)
{
	if (!p->kill_timer_init) {
		if (uv_timer_init(p->c->X->loop, &p->kill_timer) != 0)
			return;
		p->kill_timer_init = true;
	}
	p->kill_timer.data = p;
	uv_timer_start(&p->kill_timer, cb, ms, 0);
}

static void on_deferred_finish(uv_timer_t *t)
{
	struct exec_proc *p = t->data;
	struct conn *c = p->c;
	proc_finish(p);
	/* the connection waited for this proc: it may go now */
	c->deferred--;
	if (c->dead)
		conn_maybe_free(c);
}

/*
 * Ends a proc from the loop, never inside the scheduler's own call. The
 * connection stays allocated until then, even if it fails meanwhile: the
 * proc is no longer among its procs, so nothing else would wait for it.
 */
void proc_defer_finish(struct exec_proc *p)
{
	p->c->deferred++;
	proc_timer(p, on_deferred_finish, 0);
}

static void on_kill_timer(uv_timer_t *t)
{
	struct exec_proc *p = t->data;
	if (p->state == P_DONE || p->state == P_REAP)
		return;
	if (conn_away(p->c) && !p->c->dead) {
		proc_timer(p, on_kill_timer, AWAY_RETRY_MS); /* a worker has the session */
		return;
	}
	/* the group was killed but something still holds the channel: stop waiting for it */
	p->st.exit_code = -1;
	p->st.signal = SIGKILL;
	if (p->ch) {
		libssh2_channel_close(p->ch);
		p->state = P_FREE;
		conn_drive(p->c);
	}
}

/* How the command ended, as the server reported it on the channel. */
static void read_exit(struct exec_proc *p)
{
	p->st.exit_code = libssh2_channel_get_exit_status(p->ch);
	char *sig = NULL;
	size_t slen = 0;
	libssh2_channel_get_exit_signal(p->ch, &sig, &slen, NULL, NULL, NULL, NULL);
	if (sig && slen) {
		p->st.signal = signal_number(sig);
		p->st.exit_code = -1;
	}
	free(sig); /* allocated with the default allocator */
}

/*
 * The command exited, its group was killed after kill_grace, and still
 * something outside the group (setsid) holds its output: stop waiting for
 * it. The command's own status (the server sent it when it exited) stands.
 */
static void on_orphan_output(uv_timer_t *t)
{
	struct exec_proc *p = t->data;
	if (p->state != P_RUN || !p->ch)
		return;
	if (conn_away(p->c) && !p->c->dead) {
		proc_timer(p, on_orphan_output, AWAY_RETRY_MS); /* a worker has the session */
		return;
	}
	read_exit(p);
	libssh2_channel_close(p->ch);
	p->state = P_FREE;
	conn_drive(p->c);
}

/* Advances one channel; true when it made progress. */
static bool proc_step(struct exec_proc *p)
{
	struct conn *c = p->c;
	char *buf = c->X->buf;
	int rc;
	if (p->xfer && p->state != P_WAIT)
		return sftp_step(p);
	switch (p->state) {
	case P_WAIT:
		return false;
	case P_SHELL:
		return shell_step(p);
	case P_OPEN:
		p->ch = libssh2_channel_open_session(c->s);
		if (!p->ch) {
			int e = libssh2_session_last_errno(c->s);
			if (e == LIBSSH2_ERROR_EAGAIN)
				return false;
			if (socket_error(e)) {
				/* nothing ran on this channel: if nothing else did either, connected to again */
				conn_broke(c, lost_reason(c->s));
				return false;
			}
			if (p->shell) {
				/* no room for baton's shell: this connection does without it */
				proc_fail(p, xstrdup("no session for baton's shell"));
				return true;
			}
			if (!p->control && !p->slot_retry && shell_make_room(c))
				p->slot_retry = true;
			if ((p->control || p->slot_retry) && p->retries < CONTROL_RETRIES) {
				/* a kill must not be lost to the server's MaxSessions: try again when a
				 * channel closes, or after a short wait (the server frees slots lazily) */
				p->state = P_WAIT;
				p->retries++;
				proc_timer(p, on_control_retry, CONTROL_RETRY_MS);
				return false;
			}
			char *why = session_error(c->s);
			proc_fail(p, xasprintf("ssh %s: the server refused a new session (%s); its MaxSessions may be "
					       "lower than max_sessions",
					       c->h->name, why));
			free(why);
			return true;
		}
		p->state = P_EXEC;
		/* fall through */
	case P_EXEC:
		rc = libssh2_channel_exec(p->ch, p->cmd);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc) {
			char *why = session_error(c->s);
			proc_fail(p, xasprintf("ssh %s: the server refused to run the command: %s", c->h->name, why));
			free(why);
			return true;
		}
		if (p->shell) {
			c->shell_state = SH_READY;
			p->state = P_SHELL;
			shell_step(p);
			return true;
		}
		p->state = P_EOF;
		/* fall through */
	case P_EOF:
		while (p->input_off < p->input_len) {
			ssize_t w = libssh2_channel_write(p->ch, p->input + p->input_off, p->input_len - p->input_off);
			if (w == LIBSSH2_ERROR_EAGAIN)
				return false;
			if (w < 0) {
				conn_fail(c, lost_reason(c->s));
				return false;
			}
			p->input_off += (size_t)w;
		}
		rc = libssh2_channel_send_eof(p->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		p->state = P_RUN;
		/* fall through */
	case P_RUN: {
		bool progress = false;
		for (int s = 0; s < 2; s++) {
			while (!p->eof[s]) {
				ssize_t n = libssh2_channel_read_ex(p->ch, s ? SSH_EXTENDED_DATA_STDERR : 0, buf, READ_CHUNK);
				if (n == LIBSSH2_ERROR_EAGAIN)
					break;
				if (n < 0) {
					conn_fail(c, lost_reason(c->s));
					return false;
				}
				if (n == 0) {
					if (libssh2_channel_eof(p->ch))
						p->eof[s] = true;
					break;
				}
				progress = true;
				if (p->control) {
					if (p->fetched && s == 0)
						exec_rout_take(&p->fetched->out, buf, (size_t)n);
					continue;
				}
				if (s == 1 && !p->head_done)
					take_head(p, buf, (size_t)n);
				else
					p->cb.output(p->ud, s + 1, buf, (size_t)n);
				if (p->state == P_DONE)
					return true;
			}
		}
		if (!(p->eof[0] && p->eof[1]))
			return progress;
		p->state = P_CLOSE;
		if (shell_usable(c))
			reap_ask(p); /* alongside the close; if the command still runs, asked again after */
	}
		/* fall through */
	case P_CLOSE:
		rc = libssh2_channel_close(p->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		rc = libssh2_channel_wait_closed(p->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		read_exit(p);
		p->state = P_FREE;
		/* fall through */
	case P_FREE:
		rc = libssh2_channel_free(p->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		p->ch = NULL;
		proc_reap(p);
		return true;
	case P_REAP:
		return reap_step(p);
	case P_DONE:
		return false;
	}
	return false;
}

/* ---- driving a connection ---- */

void conn_drive(struct conn *c)
{
	if (c->dead || conn_away(c))
		return;
	if (c->driving) {
		c->redrive = true;
		return;
	}
	c->driving = true;
	for (int round = 0; round < 1000 && !c->dead && !conn_away(c); round++) {
		c->redrive = false;
		if (c->state == C_CONNECT) {
			if (c->tun) {
				if (!c->tun->open)
					break;
				if (!session_start(c))
					break;
			} else {
				connect_done(c);
				if (c->dead || c->state == C_CONNECT)
					break;
			}
		}
		if (c->state == C_HANDSHAKE) {
			int rc = libssh2_session_handshake(c->s, c->fd);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				break;
			if (rc) {
				char *why = session_error(c->s);
				char *r = xasprintf("SSH handshake failed: %s", why);
				free(why);
				if (socket_error(rc))
					r = conn_retry(c, r); /* reset or closed before the server said a word? */
				if (r)
					conn_fail(c, r);
				break;
			}
			if (!check_host_key(c))
				break;
			c->state = C_AUTH;
		}
		if (c->state == C_AUTH) {
			if (!auth_step(c))
				break;
			c->state = C_READY;
			pace_done(c);
			if (c->reopened && c->X->o.warn) {
				char *msg = xasprintf("ssh %s: the server had closed the idle connection; connected again",
						      c->h->name);
				c->X->o.warn(c->X->o.warn_ud, msg);
				free(msg);
			}
			timer_stop(c);
			c->last_rx_ms = uv_now(c->X->loop);
			if (c->X->o.keepalive_ms && c->timer_init)
				uv_timer_start(&c->timer, on_timer, c->X->o.keepalive_ms, c->X->o.keepalive_ms);
			for (struct exec_proc *p = c->procs; p; p = p->next)
				if (p->state == P_WAIT)
					p->state = P_OPEN;
		}
		if (c->state != C_READY)
			break;
		/* bytes libssh2 took from the socket in this round may be for a channel already
		 * stepped: the socket will not wake us for them, so another round is due */
		uint64_t rx = c->rx_bytes;
		bool progress = false;
		for (size_t i = 0; i < c->n_carries && !c->dead && !conn_away(c); i++)
			if (c->carries[i]) {
				progress |= tunnel_step(c->carries[i]);
				if (c->carries[i] && !c->dead) /* a failed c's tunnels are closed, maybe freed */
					tunnel_pump(c->carries[i]);
			}
		struct exec_proc *p = c->procs;
		while (p && !c->dead && !conn_away(c)) { /* a step may give the session to a worker */
			struct exec_proc *next = p->next;
			progress |= proc_step(p);
			p = next;
		}
		if (c->dead || conn_away(c))
			break; /* rx_bytes is the worker's now; it drives c when it is back */
		if (c->rx_bytes != rx) {
			progress = true;
			c->last_rx_ms = uv_now(c->X->loop);
		}
		if (!progress && !c->redrive)
			break;
	}
	bool kick = false;
	if (c->slice_ready && !c->dead && !conn_away(c)) {
		c->slice_ready = false;
		kick = !sftp_slice_go(c); /* none could go: the copies write on the loop, at once */
	}
	c->driving = false;
	if (c->dead)
		conn_maybe_free(c);
	else if (kick)
		conn_kick(c);
	else
		poll_update(c);
}

void conn_start(struct conn *c)
{
	struct ssh *X = c->X;
	uv_timer_init(X->loop, &c->timer);
	c->timer.data = c;
	c->timer_init = true;
	if (c->connect_timeout_ms) {
		uv_timer_start(&c->timer, on_timer, c->connect_timeout_ms, 0);
		c->deadline_ms = uv_now(X->loop) + c->connect_timeout_ms;
	}
	if (c->h->jump) {
		struct conn *via = conn_get(X, c->h->jump, c->connect_timeout_ms);
		if (!via) {
			conn_fail(c, xasprintf("cannot reach the jump host %s", c->h->jump->name));
			return;
		}
		int sp[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) != 0) {
			conn_fail(c, xasprintf("socketpair: %s", strerror(errno)));
			return;
		}
		struct tunnel *t = xcalloc(1, sizeof *t);
		t->via = via;
		t->target = c;
		t->fd = sp[1];
		c->fd = sp[0];
		c->tun = t;
		if (uv_poll_init(X->loop, &t->poll, t->fd) == 0) {
			t->poll.data = t;
			t->poll_init = true;
		}
		via->carries = xrealloc(via->carries, (via->n_carries + 1) * sizeof *via->carries);
		via->carries[via->n_carries++] = t;
		c->state = C_CONNECT;
		if (uv_poll_init(X->loop, &c->poll, c->fd) != 0) {
			conn_fail(c, xstrdup("cannot watch the socket"));
			return;
		}
		c->poll.data = c;
		c->poll_init = true;
		c->poll_events = 0;
		poll_update(c);
		conn_drive(via);
		return;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	char port[16];
	snprintf(port, sizeof port, "%d", c->h->port);
	c->gai.data = c;
	c->resolving = true;
	int rc = uv_getaddrinfo(X->loop, &c->gai, on_resolved, c->h->address, port, &hints);
	if (rc) {
		c->resolving = false;
		conn_fail(c, xasprintf("cannot resolve %s: %s", c->h->address, uv_strerror(rc)));
	}
}

/* What a connection to h holds of the descriptor budget. */
static long conn_fds(const struct exec_host *h)
{
	return EXEC_FDS_SSH + (h->jump ? EXEC_FDS_SSH_JUMP : 0);
}

/* The live connection for h, opened now if there is none. */
struct conn *conn_get(struct ssh *X, const struct exec_host *h, uint64_t connect_timeout_ms)
{
	for (struct conn *c = X->conns; c; c = c->next)
		if (c->key == h && !c->dead)
			return c;
	idle_cap(X, h);
	struct conn *c = xcalloc(1, sizeof *c);
	c->X = X;
	c->key = h;
	c->own = (struct exec_host){xstrdup(h->name), xstrdup(h->address), xstrdup(h->user ? h->user : ""), h->port,
				    NULL, h->n_identities, h->jump};
	char **ids = xcalloc(h->n_identities ? h->n_identities : 1, sizeof *ids);
	for (size_t i = 0; i < h->n_identities; i++)
		ids[i] = xstrdup(h->identities[i]);
	c->own.identities = (const char *const *)ids;
	c->h = &c->own;
	c->fd = -1;
	c->fds = X->o.fds;
	c->fds_held = conn_fds(h);
	exec_fds_take(c->fds, c->fds_held);
	c->used_ms = uv_now(X->loop);
	c->state = C_RESOLVE;
	c->connect_timeout_ms = connect_timeout_ms;
	c->timeout_said_ms = connect_timeout_ms;
	c->reopened = idle_closed_take(X, h);
	c->next = X->conns;
	X->conns = c;
	if (pace_admit(c))
		conn_start(c);
	return c->dead ? NULL : c;
}

/* ---- the executor interface ---- */

/*
 * The command line the login shell runs (caller frees). It is the session's
 * process-group leader, so first it prints its pid, which names the group.
 * Then it starts a watcher outside the command's sight (a grandchild, its
 * output on /dev/null): once the command has exited, whole seconds apart,
 * it gives what the command left behind grace_ms (rounded up to seconds)
 * and kills the group. baton kills the group too when the channel closes;
 * the watcher is for a process that holds the channel open, so that the
 * channel closes at all (sshd reports the exit but libssh2 cannot tell an
 * exit status 0 from none yet). Then the command, replacing the shell.
 */
static char *wrap_command(const char *command, uint64_t grace_ms, bool watcher, bool output)
{
	/*
	 * baton itself gone (killed, crashed, its machine off the network): the
	 * connection closes, sshd's session process (the shell's parent) ends,
	 * and nothing would stop the command. The watcher ends the group then,
	 * so that nothing of a dead run goes on on a host. "Gone" is asked three
	 * ways (a parent of another user answers kill -0 with EPERM).
	 */
	static const char orphan[] =
		"kill -0 $p 2>/dev/null || [ -d /proc/$p ] || ps -p $p >/dev/null 2>&1 || "
		"{ kill -s TERM -- -$$; sleep 2; kill -s KILL -- -$$; exit; }; ";
	char grace[48] = "";
	if (grace_ms)
		snprintf(grace, sizeof grace, "sleep %llu; ", (unsigned long long)((grace_ms + 999) / 1000));
	/* with $BATON_OUTPUT read back, the marker names its file too */
	return xasprintf("%sprintf '" PGID_MARK "%s\\n' \"$$\"%s >&2; "
			 "( (p=$PPID; while kill -0 $$; do %ssleep 1; done%s%skill -s KILL -- -$$) </dev/null >/dev/null 2>&1 & ); %s",
			 exec_output_remote_setup(output), output ? "%d %s" : "%d", output ? " \"$BATON_OUTPUT\"" : "",
			 orphan, watcher ? "; " : "; exit; ", watcher ? grace : "", command);
}

static struct exec_proc *ssh_start(struct executor *x, const struct exec_spec *spec, const struct exec_callbacks *cb,
				   void *ud, char **err)
{
	struct ssh *X = (struct ssh *)x;
	if (!spec->host || !spec->command) {
		*err = xstrdup("internal error: no host or command for ssh");
		return NULL;
	}
	struct conn *c = conn_get(X, spec->host, X->o.connect_timeout_ms);
	if (!c) {
		/* it failed at once (cannot resolve, no socket): the reason went with it */
		*err = xasprintf("ssh %s: cannot start a connection", spec->host->name);
		return NULL;
	}
	c->used_ms = uv_now(X->loop);
	c->idle_deaf = false; /* busy now: its socket is read again */
	struct exec_proc *p = xcalloc(1, sizeof *p);
	p->c = c;
	p->cb = *cb;
	p->ud = ud;
	p->state = c->state == C_READY ? P_OPEN : P_WAIT;
	p->grace_ms = spec->grace_ms;
	shell_open(c);
	p->out.want = spec->output;
	p->cmd = wrap_command(spec->command, spec->grace_ms, c->shell_state == SH_OFF, spec->output);
	if (spec->input) {
		p->input_len = strlen(spec->input);
		p->input = xstrdup(spec->input);
	}
	p->next = c->procs;
	c->procs = p;
	if (c->state == C_READY)
		conn_kick(c);
	else
		poll_update(c); /* now it has work: it keeps the loop alive */
	return p;
}

struct exec_proc *proc_add(struct ssh *X, const struct exec_host *h, const struct exec_callbacks *cb, void *ud,
			   char **err)
{
	struct conn *c = conn_get(X, h, X->o.connect_timeout_ms);
	if (!c) {
		*err = xasprintf("ssh %s: cannot start a connection", h->name);
		return NULL;
	}
	c->used_ms = uv_now(X->loop);
	struct exec_proc *p = xcalloc(1, sizeof *p);
	p->c = c;
	p->cb = *cb;
	p->ud = ud;
	p->head_done = true;
	p->state = c->state == C_READY ? P_OPEN : P_WAIT;
	p->next = c->procs;
	c->procs = p;
	if (c->state == C_READY)
		conn_kick(c);
	else
		poll_update(c);
	return p;
}

static bool ssh_signal(struct exec_proc *p, int sig)
{
	if (p->state == P_DONE || p->state == P_REAP)
		return false; /* it has ended; its group is being killed already */
	struct conn *c = p->c;
	if (p->state == P_WAIT || p->state == P_OPEN || c->state != C_READY) {
		/* not started remotely: nothing to stop there */
		p->st.exit_code = -1;
		p->st.signal = sig;
		proc_unlink(p); /* the connection must not start it now */
		proc_defer_finish(p);
		if (c->state != C_READY && !conn_needed(c, 0))
			conn_fail(c, xstrdup("not needed any more")); /* connecting for nobody: a cancelled run ends now */
		return true;
	}
	if (p->xfer) {
		sftp_signal(p, sig);
		conn_kick(c);
		return true;
	}
	if (p->pgid)
		send_remote_signal(p, sig);
	else
		p->want_signal = sig;
	if (sig == SIGKILL && !p->killed) {
		p->killed = true;
		proc_timer(p, on_kill_timer, KILL_CLOSE_MS);
	}
	conn_kick(c);
	return true;
}

static void ssh_free(struct executor *x)
{
	struct ssh *X = (struct ssh *)x;
	X->closing = true;
	while (X->conns) {
		struct conn *c = X->conns;
		conn_fail(c, xstrdup("baton is exiting"));
	}
	filehash_clear();
	pace_free(X);
	exec_kh_free(X->kh);
	free(X->idle_closed);
	free(X->known_hosts_file);
	free(X->home);
	free(X);
	if (!agent_jobs_out() && !xfer_jobs_out())
		libssh2_exit(); /* else left initialised: a worker still has a session, freed when it is back */
}

/* Closes idle connections, the one used longest ago first, until n descriptors are on their way back. */
static bool ssh_trim(struct executor *x, long n)
{
	struct ssh *X = (struct ssh *)x;
	bool any = false;
	while (n > 0) {
		struct conn *oldest = NULL;
		for (struct conn *c = X->conns; c; c = c->next)
			if (conn_idle(c) && (!oldest || c->used_ms < oldest->used_ms))
				oldest = c;
		if (!oldest)
			break;
		n -= oldest->fds_held;
		any = true;
		/* its descriptors come back when its handles have closed (exec_fds_give) */
		conn_fail(oldest, xstrdup("closed to make room for another host's connection"));
	}
	return any;
}

/*
 * A command for h may start when h has a connection (a channel costs no
 * descriptor), or when a new one fits the budget; else idle connections
 * are closed to make room, and the command waits for their descriptors.
 */
static bool ssh_admit(struct executor *x, const struct exec_host *h)
{
	struct ssh *X = (struct ssh *)x;
	for (struct conn *c = X->conns; c; c = c->next)
		if (c->key == h && !c->dead)
			return true;
	long need = conn_fds(h);
	if (h->jump && !exec_fds_fit(X->o.fds, need)) {
		bool via_open = false;
		for (struct conn *c = X->conns; c; c = c->next)
			via_open |= c->key == h->jump && !c->dead;
		if (!via_open)
			need += conn_fds(h->jump);
	}
	if (exec_fds_fit(X->o.fds, need))
		return true;
	ssh_trim(x, need);
	return exec_fds_fit(X->o.fds, need);
}

static const struct executor_ops ssh_ops = {ssh_admit, ssh_trim, ssh_start, ssh_signal, ssh_free};

struct executor *exec_ssh_new(uv_loop_t *loop, const struct exec_ssh_options *o, const char **why)
{
	if ((*why = exec_ssh2_load()))
		return NULL;
	if (libssh2_init(0) != 0) {
		*why = "libssh2 did not initialise";
		return NULL;
	}
	struct ssh *X = xcalloc(1, sizeof *X);
	X->base.ops = &ssh_ops;
	X->loop = loop;
	X->o = *o;
	X->known_hosts_file = xstrdup(o->known_hosts_file);
	X->home = o->home ? xstrdup(o->home) : NULL;
	X->o.known_hosts_file = X->known_hosts_file;
	X->o.home = X->home;
	return &X->base;
}
