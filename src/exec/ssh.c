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
 * timeout or cancel runs `kill -s SIG -- -PGID` on a second channel.
 *
 * ProxyJump: the jump host's connection opens a direct-tcpip channel to the
 * target, and the target's session talks over one end of a socketpair
 * whose other end is pumped to and from that channel.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
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

#include "exec/exec.h"
#include "util/util.h"

/*
 * libssh2 is loaded when the first SSH executor is made, not when baton
 * starts: with it comes libcrypto (about 1.6 MB resident just by being
 * mapped), which a plan that runs only local commands should not pay for.
 * Every libssh2 function below goes through this table.
 */
#define SSH2_FUNCS(X) \
	X(libssh2_agent_connect) \
	X(libssh2_agent_disconnect) \
	X(libssh2_agent_free) \
	X(libssh2_agent_get_identity) \
	X(libssh2_agent_init) \
	X(libssh2_agent_list_identities) \
	X(libssh2_agent_userauth) \
	X(libssh2_channel_close) \
	X(libssh2_channel_direct_tcpip_ex) \
	X(libssh2_channel_eof) \
	X(libssh2_channel_process_startup) \
	X(libssh2_channel_free) \
	X(libssh2_channel_get_exit_signal) \
	X(libssh2_channel_get_exit_status) \
	X(libssh2_channel_open_ex) \
	X(libssh2_channel_read_ex) \
	X(libssh2_channel_send_eof) \
	X(libssh2_channel_wait_closed) \
	X(libssh2_channel_write_ex) \
	X(libssh2_exit) \
	X(libssh2_hostkey_hash) \
	X(libssh2_init) \
	X(libssh2_keepalive_config) \
	X(libssh2_keepalive_send) \
	X(libssh2_knownhost_addc) \
	X(libssh2_knownhost_checkp) \
	X(libssh2_knownhost_free) \
	X(libssh2_knownhost_init) \
	X(libssh2_knownhost_readfile) \
	X(libssh2_knownhost_readline) \
	X(libssh2_knownhost_writeline) \
	X(libssh2_session_block_directions) \
	X(libssh2_session_disconnect_ex) \
	X(libssh2_session_free) \
	X(libssh2_session_handshake) \
	X(libssh2_session_hostkey) \
	X(libssh2_session_init_ex) \
	X(libssh2_session_last_errno) \
	X(libssh2_session_last_error) \
	X(libssh2_session_set_blocking) \
	X(libssh2_userauth_authenticated) \
	X(libssh2_userauth_list) \
	X(libssh2_userauth_publickey_fromfile_ex)

static struct {
#define X(f) __typeof__(&f) f;
	SSH2_FUNCS(X)
#undef X
} ssh2;

#define X(f) _Static_assert(sizeof(&f) == sizeof(void *), "function pointers fit in void *");
SSH2_FUNCS(X)
#undef X

/* Loads libssh2 once; NULL on success, else why not (static text). */
static const char *ssh2_load(void)
{
	static bool tried;
	static const char *why;
	if (tried)
		return why;
	tried = true;
	void *lib = dlopen("libssh2.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		return why = "cannot load libssh2.so.1 (install the Debian package libssh2-1)";
#define X(f)                                                                                                           \
	if (!(*(void **)&ssh2.f = dlsym(lib, #f)))                                                                     \
		return why = "libssh2.so.1 lacks " #f " (libssh2 1.10 or later is needed)";
	SSH2_FUNCS(X)
#undef X
	return NULL; /* kept loaded until exit: its atexit-free state outlives every executor */
}


/* from here on, libssh2_x(...) calls through the table */
#define libssh2_agent_connect ssh2.libssh2_agent_connect
#define libssh2_agent_disconnect ssh2.libssh2_agent_disconnect
#define libssh2_agent_free ssh2.libssh2_agent_free
#define libssh2_agent_get_identity ssh2.libssh2_agent_get_identity
#define libssh2_agent_init ssh2.libssh2_agent_init
#define libssh2_agent_list_identities ssh2.libssh2_agent_list_identities
#define libssh2_agent_userauth ssh2.libssh2_agent_userauth
#define libssh2_channel_close ssh2.libssh2_channel_close
#define libssh2_channel_direct_tcpip_ex ssh2.libssh2_channel_direct_tcpip_ex
#define libssh2_channel_eof ssh2.libssh2_channel_eof
#define libssh2_channel_process_startup ssh2.libssh2_channel_process_startup
#define libssh2_channel_free ssh2.libssh2_channel_free
#define libssh2_channel_get_exit_signal ssh2.libssh2_channel_get_exit_signal
#define libssh2_channel_get_exit_status ssh2.libssh2_channel_get_exit_status
#define libssh2_channel_open_ex ssh2.libssh2_channel_open_ex
#define libssh2_channel_read_ex ssh2.libssh2_channel_read_ex
#define libssh2_channel_send_eof ssh2.libssh2_channel_send_eof
#define libssh2_channel_wait_closed ssh2.libssh2_channel_wait_closed
#define libssh2_channel_write_ex ssh2.libssh2_channel_write_ex
#define libssh2_exit ssh2.libssh2_exit
#define libssh2_hostkey_hash ssh2.libssh2_hostkey_hash
#define libssh2_init ssh2.libssh2_init
#define libssh2_keepalive_config ssh2.libssh2_keepalive_config
#define libssh2_keepalive_send ssh2.libssh2_keepalive_send
#define libssh2_knownhost_addc ssh2.libssh2_knownhost_addc
#define libssh2_knownhost_checkp ssh2.libssh2_knownhost_checkp
#define libssh2_knownhost_free ssh2.libssh2_knownhost_free
#define libssh2_knownhost_init ssh2.libssh2_knownhost_init
#define libssh2_knownhost_readfile ssh2.libssh2_knownhost_readfile
#define libssh2_knownhost_readline ssh2.libssh2_knownhost_readline
#define libssh2_knownhost_writeline ssh2.libssh2_knownhost_writeline
#define libssh2_session_block_directions ssh2.libssh2_session_block_directions
#define libssh2_session_disconnect_ex ssh2.libssh2_session_disconnect_ex
#define libssh2_session_free ssh2.libssh2_session_free
#define libssh2_session_handshake ssh2.libssh2_session_handshake
#define libssh2_session_hostkey ssh2.libssh2_session_hostkey
#define libssh2_session_init_ex ssh2.libssh2_session_init_ex
#define libssh2_session_last_errno ssh2.libssh2_session_last_errno
#define libssh2_session_last_error ssh2.libssh2_session_last_error
#define libssh2_session_set_blocking ssh2.libssh2_session_set_blocking
#define libssh2_userauth_authenticated ssh2.libssh2_userauth_authenticated
#define libssh2_userauth_list ssh2.libssh2_userauth_list
#define libssh2_userauth_publickey_fromfile_ex ssh2.libssh2_userauth_publickey_fromfile_ex

#define READ_CHUNK 32768
#define PGID_MARK "\036baton-pgid "
#define HEAD_MAX 4096         /* stderr kept back while looking for the marker */
#define KILL_CLOSE_MS 2000    /* after a remote SIGKILL: how long the channel may stay open */
#define KEEPALIVE_MISSES 3    /* keepalive intervals without a byte from the server: lost */
#define TUNNEL_BUF 65536
#define CLEANUP_CONNECT_MS 2000
#define CONTROL_RETRIES 40     /* a refused kill session is tried again, every CONTROL_RETRY_MS */
#define CONTROL_RETRY_MS 250 /* a connection opened only to end what a lost one left running */

enum cstate { C_RESOLVE, C_CONNECT, C_HANDSHAKE, C_AUTH, C_READY, C_FAILED };
enum pstate { P_WAIT, P_OPEN, P_EXEC, P_EOF, P_RUN, P_CLOSE, P_FREE, P_DONE };

struct ssh;
struct conn;

struct exec_proc {
	struct conn *c;
	enum pstate state;
	LIBSSH2_CHANNEL *ch;
	char *cmd;
	char *input; /* for the command's stdin, then EOF */
	size_t input_len, input_off;
	bool control; /* a kill command of ours: no callbacks, nothing reported */
	struct exec_callbacks cb;
	void *ud;
	bool eof[2];
	long pgid;       /* 0 until the marker was read */
	bool head_done;  /* the marker was found, or will not come */
	struct buf head; /* stderr held back until then */
	int want_signal; /* a signal asked for before the process group was known */
	int retries;     /* control: sessions the server refused so far */
	bool killed;
	uv_timer_t kill_timer;
	bool kill_timer_init;
	int handles;
	struct exec_status st;
	char *error;
	struct exec_proc *next;
};

struct tunnel {
	struct conn *via;        /* the jump host's connection */
	struct conn *target;     /* the connection it carries */
	LIBSSH2_CHANNEL *ch;
	int fd;                  /* our end of the socketpair */
	uv_poll_t poll;
	bool poll_init;
	char up[TUNNEL_BUF];     /* from the target session, to the channel */
	size_t up_len;
	char down[TUNNEL_BUF];   /* from the channel, to the target session */
	size_t down_len;
	bool open;
	bool eof;
};

struct conn {
	struct ssh *X;
	const struct exec_host *key; /* the caller's host: which connection is whose */
	const struct exec_host *h;   /* &own: a copy, so messages outlive the caller's */
	struct exec_host own;
	enum cstate state;
	int fd;
	uv_poll_t poll;
	bool poll_init;
	int poll_events;
	uv_timer_t timer; /* connect timeout, then keepalives */
	bool timer_init;
	uv_getaddrinfo_t gai;
	bool resolving;
	struct addrinfo *ai, *ai_next;
	LIBSSH2_SESSION *s;
	LIBSSH2_AGENT *agent;
	struct libssh2_agent_publickey *agent_id;
	int auth_phase; /* 0 list, 1 agent, 2 identity files, 3 done */
	size_t id_next; /* next identity file */
	char *authlist;
	int agent_tried;
	uint64_t last_rx_ms;
	uint64_t connect_timeout_ms;
	char *error;
	struct exec_proc *procs;
	struct tunnel *tun;      /* this connection reaches its host through a jump */
	struct tunnel **carries; /* tunnels this connection carries for others */
	size_t n_carries;
	int handles;
	bool dead; /* closing: handles are being closed */
	bool driving;
	bool redrive;
	struct conn *next;
};

struct ssh {
	struct executor base;
	uv_loop_t *loop;
	struct exec_ssh_options o;
	char *known_hosts_file;
	char *home;
	LIBSSH2_SESSION *kh_session; /* owns kh: outlives every connection */
	LIBSSH2_KNOWNHOSTS *kh;
	bool kh_loaded;
	struct conn *conns;
	bool closing; /* ssh_free: no more cleanups */
	char buf[READ_CHUNK];
};

static void conn_drive(struct conn *c);
static void conn_fail(struct conn *c, char *reason);
static struct conn *conn_get(struct ssh *X, const struct exec_host *h, uint64_t connect_timeout_ms);
static void proc_finish(struct exec_proc *p);
static void tunnel_pump(struct tunnel *t);

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
static char *lost_reason(LIBSSH2_SESSION *s)
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

static char *session_error(LIBSSH2_SESSION *s)
{
	char *msg = NULL;
	int len = 0;
	libssh2_session_last_error(s, &msg, &len, 0);
	return xstrdup(msg && len ? msg : "unknown libssh2 error");
}

/* ---- the socket and its poll ---- */

static void on_poll(uv_poll_t *h, int status, int events);

static void poll_update(struct conn *c)
{
	if (!c->poll_init || c->dead)
		return;
	int ev = UV_READABLE;
	if (c->state == C_CONNECT)
		ev = c->tun ? 0 : UV_WRITABLE; /* a tunnel says itself when it is open */
	else if (c->state == C_READY && !c->procs && !c->n_carries)
		ev = 0; /* idle: whatever the server sends waits in the socket for the next command */
	else if (c->s && (libssh2_session_block_directions(c->s) & LIBSSH2_SESSION_BLOCK_OUTBOUND))
		ev |= UV_WRITABLE;
	if (ev != c->poll_events) {
		c->poll_events = ev;
		if (ev)
			uv_poll_start(&c->poll, ev, on_poll);
		else
			uv_poll_stop(&c->poll);
	}
	/* only a connection with commands to carry keeps the loop alive */
	bool busy = c->procs != NULL;
	for (size_t i = 0; i < c->n_carries && !busy; i++)
		busy = c->carries[i] && c->carries[i]->target && c->carries[i]->target->procs;
	if (busy) {
		uv_ref((uv_handle_t *)&c->poll);
		if (c->timer_init)
			uv_ref((uv_handle_t *)&c->timer);
	} else {
		uv_unref((uv_handle_t *)&c->poll);
		if (c->timer_init)
			uv_unref((uv_handle_t *)&c->timer);
	}
}

/* Makes the loop drive the connection soon, never from inside the caller's call. */
static void conn_kick(struct conn *c)
{
	if (!c->poll_init || c->dead)
		return;
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
	buf_free(&p->head);
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

/* Reports the end (once) and frees the proc when its handles are closed. */
static void proc_finish(struct exec_proc *p)
{
	if (p->state == P_DONE)
		return;
	p->state = P_DONE;
	proc_unlink(p);
	/* a session slot is free again: kills that the server refused may go now */
	if (p->c->state == C_READY)
		for (struct exec_proc *q = p->c->procs; q; q = q->next)
			if (q->control && q->state == P_WAIT)
				q->state = P_OPEN;
	if (!p->head_done && p->head.len && !p->control)
		p->cb.output(p->ud, 2, p->head.data, p->head.len);
	if (!p->control) {
		p->st.error = p->error;
		p->cb.done(p->ud, &p->st);
	}
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

static void tunnel_close(struct tunnel *t);
static void free_session(struct conn *c);

static void conn_kick(struct conn *c);
static void poll_update(struct conn *c);

/* Queues a command of baton's own (cmd is taken) on c: no callbacks, nothing reported. */
static void control_new(struct conn *c, char *cmd)
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
static void conn_fail(struct conn *c, char *reason)
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
	conn_unlink(c);
	timer_stop(c);
	struct buf w = {0};
	conn_where(c, &w);
	while (c->procs) {
		struct exec_proc *p = c->procs;
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
	if (c->agent) {
		libssh2_agent_disconnect(c->agent);
		libssh2_agent_free(c->agent);
		c->agent = NULL;
	}
	if (c->s) {
		/* a polite goodbye if the socket takes it at once; never wait for it */
		libssh2_session_disconnect(c->s, "baton done");
		libssh2_session_free(c->s);
		c->s = NULL;
	}
}

static void conn_maybe_free(struct conn *c)
{
	if (c->handles || c->resolving || c->driving)
		return;
	free_session(c);
	if (c->fd >= 0)
		close(c->fd);
	if (c->ai)
		uv_freeaddrinfo(c->ai);
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

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t secs = (c->connect_timeout_ms + 999) / 1000;
	if (c->state == C_READY) {
		/* keepalive: a server that sends nothing for several intervals is gone */
		uint64_t now = uv_now(c->X->loop);
		if (c->procs && now - c->last_rx_ms > KEEPALIVE_MISSES * c->X->o.keepalive_ms) {
			conn_fail(c, xasprintf("connection lost: no answer to keepalives for %llus",
					      (unsigned long long)((now - c->last_rx_ms) / 1000)));
			return;
		}
		int next = 0;
		libssh2_keepalive_send(c->s, &next);
		poll_update(c);
		return;
	}
	if (c->state == C_RESOLVE || c->state == C_CONNECT)
		conn_fail(c, xasprintf("connection timed out after %llus (connect_timeout)", (unsigned long long)secs));
	else if (c->state == C_HANDSHAKE)
		conn_fail(c, xasprintf("the server accepted the connection but did not complete the SSH handshake "
				       "within %llus (connect_timeout)",
				       (unsigned long long)secs));
	else
		conn_fail(c, xasprintf("authentication did not complete within %llus (connect_timeout)",
				       (unsigned long long)secs));
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct conn *c = h->data;
	if (c->dead)
		return;
	if (status < 0 && c->state != C_CONNECT) {
		conn_fail(c, xasprintf("connection lost: %s", uv_strerror(status)));
		return;
	}
	if (events & UV_READABLE)
		c->last_rx_ms = uv_now(c->X->loop);
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
		if (err == ECONNREFUSED)
			conn_fail(c, xstrdup("connection refused (is sshd running and listening on that port?)"));
		else
			conn_fail(c, xasprintf("cannot connect: %s", strerror(err)));
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

static int key_bits(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
#ifdef LIBSSH2_HOSTKEY_TYPE_ECDSA_256
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
#endif
#ifdef LIBSSH2_HOSTKEY_TYPE_ED25519
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return LIBSSH2_KNOWNHOST_KEY_ED25519;
#endif
	default:
		return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	}
}

static const char *key_name(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		return "RSA";
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		return "DSA";
#ifdef LIBSSH2_HOSTKEY_TYPE_ECDSA_256
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		return "ECDSA";
#endif
#ifdef LIBSSH2_HOSTKEY_TYPE_ED25519
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		return "ED25519";
#endif
	default:
		return "unknown";
	}
}

/* "SHA256:..." as ssh-keygen -l prints it: unpadded base64. */
static void fingerprint(LIBSSH2_SESSION *s, struct buf *out)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *h = (const unsigned char *)libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
	if (!h) {
		buf_adds(out, "(no fingerprint)");
		return;
	}
	buf_adds(out, "SHA256:");
	for (size_t i = 0; i < 32; i += 3) {
		unsigned v = (unsigned)h[i] << 16;
		size_t n = 32 - i < 3 ? 32 - i : 3;
		if (n > 1)
			v |= (unsigned)h[i + 1] << 8;
		if (n > 2)
			v |= h[i + 2];
		buf_addc(out, b64[(v >> 18) & 63]);
		buf_addc(out, b64[(v >> 12) & 63]);
		if (n > 1)
			buf_addc(out, b64[(v >> 6) & 63]);
		if (n > 2)
			buf_addc(out, b64[v & 63]);
	}
}

/* The host as known_hosts names it: the address, in brackets with a port other than 22. */
static char *kh_name(const struct exec_host *h)
{
	return h->port == 22 ? xstrdup(h->address) : xasprintf("[%s]:%d", h->address, h->port);
}

/* Which line of the file holds another key for this host (0 if none is found). */
static long mismatch_line(struct ssh *X, LIBSSH2_SESSION *s, const struct exec_host *h, const char *key,
			  size_t klen, int mask)
{
	FILE *f = fopen(X->known_hosts_file, "re");
	if (!f)
		return 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long no = 0, found = 0;
	while (!found && (n = getline(&line, &cap, f)) > 0) {
		no++;
		LIBSSH2_KNOWNHOSTS *one = libssh2_knownhost_init(s);
		if (!one)
			break;
		if (libssh2_knownhost_readline(one, line, (size_t)n, LIBSSH2_KNOWNHOST_FILE_OPENSSH) == 0 &&
		    libssh2_knownhost_checkp(one, h->address, h->port, key, klen, mask, NULL) ==
			    LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
			found = no;
		libssh2_knownhost_free(one);
	}
	free(line);
	fclose(f);
	return found;
}

/* Appends the host's key to the known_hosts file (accept-new). */
static char *kh_append(struct ssh *X, const struct exec_host *h, const char *key, size_t klen, int mask)
{
	struct libssh2_knownhost *entry = NULL;
	char *name = kh_name(h);
	int rc = libssh2_knownhost_addc(X->kh, name, NULL, key, klen, NULL, 0, mask, &entry);
	free(name);
	if (rc)
		return xstrdup("cannot record the host key");
	char line[8192];
	size_t len = 0;
	if (libssh2_knownhost_writeline(X->kh, entry, line, sizeof line, &len, LIBSSH2_KNOWNHOST_FILE_OPENSSH))
		return xstrdup("cannot format the host key");
	int fd = open(X->known_hosts_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return xasprintf("cannot add the host key to %s: %s", X->known_hosts_file, strerror(errno));
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, line + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			close(fd);
			return xasprintf("cannot add the host key to %s: %s", X->known_hosts_file, strerror(e));
		}
		off += (size_t)w;
	}
	if (close(fd) != 0)
		return xasprintf("cannot add the host key to %s: %s", X->known_hosts_file, strerror(errno));
	return NULL;
}

/* Checks the server's key; false (and the connection failed) when it is refused. */
static bool check_host_key(struct conn *c)
{
	struct ssh *X = c->X;
	if (X->o.known_hosts == EXEC_KH_OFF)
		return true;
	size_t klen = 0;
	int type = 0;
	const char *key = libssh2_session_hostkey(c->s, &klen, &type);
	if (!key) {
		conn_fail(c, xstrdup("the server sent no host key"));
		return false;
	}
	if (!X->kh_loaded) {
		X->kh_session = libssh2_session_init_ex(NULL, NULL, NULL, NULL);
		X->kh = X->kh_session ? libssh2_knownhost_init(X->kh_session) : NULL;
		if (!X->kh) {
			conn_fail(c, xstrdup("cannot read known hosts (out of memory?)"));
			return false;
		}
		X->kh_loaded = true;
		struct stat st;
		if (stat(X->known_hosts_file, &st) == 0 &&
		    libssh2_knownhost_readfile(X->kh, X->known_hosts_file, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
			/* a line libssh2 cannot parse stops its reader; what it read is kept */
		}
	}
	int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | key_bits(type);
	int rc = libssh2_knownhost_checkp(X->kh, c->h->address, c->h->port, key, klen, mask, NULL);
	if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		return true;
	struct buf fp = {0};
	fingerprint(c->s, &fp);
	char *name = kh_name(c->h);
	if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		long line = mismatch_line(X, c->s, c->h, key, klen, mask);
		char where[32] = "";
		if (line)
			snprintf(where, sizeof where, ":%ld", line);
		conn_fail(c, xasprintf("host key changed: the server offers %s key %s, but %s%s has another key for "
				       "%s; refusing the host (if the change is expected, remove that line: "
				       "ssh-keygen -R '%s' -f %s)",
				       key_name(type), fp.data, X->known_hosts_file, where, name, name,
				       X->known_hosts_file));
	} else if (X->o.known_hosts == EXEC_KH_ACCEPT_NEW) {
		char *err = kh_append(X, c->h, key, klen, mask);
		free(name);
		buf_free(&fp);
		if (err) {
			conn_fail(c, err);
			return false;
		}
		return true;
	} else {
		conn_fail(c, xasprintf("host key unknown: the server's %s key %s for %s is not in %s; refusing the "
				       "host (check it and add it, e.g. ssh-keyscan -p %d %s >> %s, or set "
				       "ssh: {known_hosts: accept-new})",
				       key_name(type), fp.data, name, X->known_hosts_file, c->h->port, c->h->address,
				       X->known_hosts_file));
	}
	free(name);
	buf_free(&fp);
	return false;
}

/* ---- authentication: the agent, then identity files ---- */

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
static bool auth_step(struct conn *c)
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
		c->auth_phase = 1;
		const char *sock = getenv("SSH_AUTH_SOCK");
		if (sock && *sock) {
			c->agent = libssh2_agent_init(c->s);
			if (c->agent && (libssh2_agent_connect(c->agent) != 0 ||
					 libssh2_agent_list_identities(c->agent) != 0)) {
				libssh2_agent_disconnect(c->agent);
				libssh2_agent_free(c->agent);
				c->agent = NULL;
			}
		}
		if (!c->agent)
			c->auth_phase = 2;
	}
	while (c->auth_phase == 1) {
		if (!c->agent_id) {
			if (libssh2_agent_get_identity(c->agent, &c->agent_id, NULL) != 0) {
				c->auth_phase = 2;
				break;
			}
		}
		int rc = libssh2_agent_userauth(c->agent, user, c->agent_id);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc == 0)
			return true;
		c->agent_tried++;
		struct libssh2_agent_publickey *prev = c->agent_id;
		if (libssh2_agent_get_identity(c->agent, &c->agent_id, prev) != 0)
			c->auth_phase = 2;
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
	if (c->agent_tried)
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

/* Starts `kill -s SIG -- -PGID` on a channel of its own. */
static void send_remote_signal(struct exec_proc *p, int sig)
{
	struct conn *c = p->c;
	if (c->dead || c->state != C_READY || !p->pgid)
		return;
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
		p->pgid = strtol(m + ml, NULL, 10);
		size_t before = (size_t)(m - s), after = (size_t)(nl - s) + 1;
		memmove(p->head.data + before, s + after, len - after);
		p->head.len = before + (len - after);
		if (p->pgid > 0 && p->want_signal) {
			send_remote_signal(p, p->want_signal);
			p->want_signal = 0;
		}
	}
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
	proc_finish(t->data);
}

/* Ends a proc from the loop, never inside the scheduler's own call. */
static void proc_defer_finish(struct exec_proc *p)
{
	proc_timer(p, on_deferred_finish, 0);
}

static void on_kill_timer(uv_timer_t *t)
{
	struct exec_proc *p = t->data;
	if (p->state == P_DONE)
		return;
	/* the group was killed but something still holds the channel: stop waiting for it */
	p->st.exit_code = -1;
	p->st.signal = SIGKILL;
	if (p->ch) {
		libssh2_channel_close(p->ch);
		p->state = P_FREE;
		conn_drive(p->c);
	}
}

/* Advances one channel; true when it made progress. */
static bool proc_step(struct exec_proc *p)
{
	struct conn *c = p->c;
	char *buf = c->X->buf;
	int rc;
	switch (p->state) {
	case P_WAIT:
		return false;
	case P_OPEN:
		p->ch = libssh2_channel_open_session(c->s);
		if (!p->ch) {
			int e = libssh2_session_last_errno(c->s);
			if (e == LIBSSH2_ERROR_EAGAIN)
				return false;
			if (e == LIBSSH2_ERROR_SOCKET_SEND || e == LIBSSH2_ERROR_SOCKET_RECV ||
			    e == LIBSSH2_ERROR_SOCKET_DISCONNECT) {
				conn_fail(c, lost_reason(c->s));
				return false;
			}
			if (p->control && p->retries < CONTROL_RETRIES) {
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
				if (p->control)
					continue;
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
	}
		/* fall through */
	case P_CLOSE:
		rc = libssh2_channel_close(p->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		rc = libssh2_channel_wait_closed(p->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		p->st.exit_code = libssh2_channel_get_exit_status(p->ch);
		{
			char *sig = NULL;
			size_t slen = 0;
			libssh2_channel_get_exit_signal(p->ch, &sig, &slen, NULL, NULL, NULL, NULL);
			if (sig && slen) {
				p->st.signal = signal_number(sig);
				p->st.exit_code = -1;
			}
			free(sig); /* allocated with the default allocator */
		}
		p->state = P_FREE;
		/* fall through */
	case P_FREE:
		rc = libssh2_channel_free(p->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		p->ch = NULL;
		proc_finish(p);
		return true;
	case P_DONE:
		return false;
	}
	return false;
}

/* ---- tunnels (ProxyJump) ---- */

static void on_tunnel_poll(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	struct tunnel *t = h->data;
	tunnel_pump(t);
	if (t->via)
		conn_drive(t->via);
}

static void on_tunnel_closed(uv_handle_t *h)
{
	struct tunnel *t = h->data;
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

static void tunnel_close(struct tunnel *t)
{
	if (t->via) {
		for (size_t i = 0; i < t->via->n_carries; i++)
			if (t->via->carries[i] == t)
				t->via->carries[i] = NULL;
		if (t->ch)
			libssh2_channel_free(t->ch);
	}
	t->ch = NULL;
	t->target = NULL;
	if (t->poll_init) {
		t->poll_init = false;
		t->poll.data = t;
		uv_close((uv_handle_t *)&t->poll, on_tunnel_closed);
	} else {
		if (t->fd >= 0)
			close(t->fd);
		free(t);
	}
}

/* Moves bytes between the socketpair and the jump channel, as far as both take them. */
static void tunnel_pump(struct tunnel *t)
{
	if (!t->ch || !t->via || t->via->dead)
		return;
	for (int guard = 0; guard < 64; guard++) {
		bool progress = false;
		if (t->up_len < sizeof t->up) {
			ssize_t n = read(t->fd, t->up + t->up_len, sizeof t->up - t->up_len);
			if (n > 0) {
				t->up_len += (size_t)n;
				progress = true;
			}
		}
		if (t->up_len) {
			ssize_t n = libssh2_channel_write(t->ch, t->up, t->up_len);
			if (n > 0) {
				memmove(t->up, t->up + n, t->up_len - (size_t)n);
				t->up_len -= (size_t)n;
				progress = true;
			} else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
				if (t->target)
					conn_fail(t->target, xasprintf("the tunnel through %s broke", t->via->h->name));
				return;
			}
		}
		if (t->down_len < sizeof t->down) {
			ssize_t n = libssh2_channel_read(t->ch, t->down + t->down_len, sizeof t->down - t->down_len);
			if (n > 0) {
				t->down_len += (size_t)n;
				progress = true;
			} else if (n == 0 && libssh2_channel_eof(t->ch) && !t->eof) {
				t->eof = true;
				shutdown(t->fd, SHUT_WR);
			} else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
				if (t->target)
					conn_fail(t->target, xasprintf("the tunnel through %s broke", t->via->h->name));
				return;
			}
		}
		if (t->down_len) {
			ssize_t n = write(t->fd, t->down, t->down_len);
			if (n > 0) {
				memmove(t->down, t->down + n, t->down_len - (size_t)n);
				t->down_len -= (size_t)n;
				progress = true;
			}
		}
		if (!progress)
			break;
	}
	if (t->poll_init) {
		int ev = UV_READABLE;
		if (t->down_len)
			ev |= UV_WRITABLE;
		uv_poll_start(&t->poll, ev, on_tunnel_poll);
		if (t->target && t->target->procs)
			uv_ref((uv_handle_t *)&t->poll);
		else
			uv_unref((uv_handle_t *)&t->poll);
	}
}

/* Opens the direct-tcpip channel for a tunnel, once the jump connection is ready. */
static bool tunnel_step(struct tunnel *t)
{
	if (t->open)
		return false;
	t->ch = libssh2_channel_direct_tcpip_ex(t->via->s, t->target->h->address, t->target->h->port, "127.0.0.1", 22);
	if (!t->ch) {
		if (libssh2_session_last_errno(t->via->s) == LIBSSH2_ERROR_EAGAIN)
			return false;
		char *why = session_error(t->via->s);
		if (t->target)
			conn_fail(t->target, xasprintf("the jump host %s could not open a channel to %s:%d: %s",
						       t->via->h->name, t->target->h->address, t->target->h->port, why));
		free(why);
		return true;
	}
	t->open = true;
	/* now the target's session may start on its end of the pair */
	if (t->target)
		conn_drive(t->target);
	return true;
}

/* ---- driving a connection ---- */

static void conn_drive(struct conn *c)
{
	if (c->dead)
		return;
	if (c->driving) {
		c->redrive = true;
		return;
	}
	c->driving = true;
	for (int round = 0; round < 1000 && !c->dead; round++) {
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
				conn_fail(c, xasprintf("SSH handshake failed: %s", why));
				free(why);
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
		bool progress = false;
		for (size_t i = 0; i < c->n_carries && !c->dead; i++)
			if (c->carries[i]) {
				progress |= tunnel_step(c->carries[i]);
				if (c->carries[i])
					tunnel_pump(c->carries[i]);
			}
		struct exec_proc *p = c->procs;
		while (p && !c->dead) {
			struct exec_proc *next = p->next;
			progress |= proc_step(p);
			p = next;
		}
		if (!progress && !c->redrive)
			break;
	}
	c->driving = false;
	if (c->dead)
		conn_maybe_free(c);
	else
		poll_update(c);
}

static void conn_start(struct conn *c)
{
	struct ssh *X = c->X;
	uv_timer_init(X->loop, &c->timer);
	c->timer.data = c;
	c->timer_init = true;
	if (c->connect_timeout_ms)
		uv_timer_start(&c->timer, on_timer, c->connect_timeout_ms, 0);
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

/* The live connection for h, opened now if there is none. */
static struct conn *conn_get(struct ssh *X, const struct exec_host *h, uint64_t connect_timeout_ms)
{
	for (struct conn *c = X->conns; c; c = c->next)
		if (c->key == h && !c->dead)
			return c;
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
	c->state = C_RESOLVE;
	c->connect_timeout_ms = connect_timeout_ms;
	c->next = X->conns;
	X->conns = c;
	conn_start(c);
	return c->dead ? NULL : c;
}

/* ---- the executor interface ---- */

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
	struct exec_proc *p = xcalloc(1, sizeof *p);
	p->c = c;
	p->cb = *cb;
	p->ud = ud;
	p->state = c->state == C_READY ? P_OPEN : P_WAIT;
	/* the login shell is the session's process-group leader: its pid names the group */
	p->cmd = xasprintf("printf '" PGID_MARK "%%d\\n' \"$$\" >&2; %s", spec->command);
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

static void ssh_signal(struct exec_proc *p, int sig)
{
	if (p->state == P_DONE)
		return;
	struct conn *c = p->c;
	if (p->state == P_WAIT || p->state == P_OPEN || c->state != C_READY) {
		/* not started remotely: nothing to stop there */
		p->st.exit_code = -1;
		p->st.signal = sig;
		proc_unlink(p); /* the connection must not start it now */
		proc_defer_finish(p);
		return;
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
}

static void ssh_free(struct executor *x)
{
	struct ssh *X = (struct ssh *)x;
	X->closing = true;
	while (X->conns) {
		struct conn *c = X->conns;
		conn_fail(c, xstrdup("baton is exiting"));
	}
	if (X->kh)
		libssh2_knownhost_free(X->kh);
	if (X->kh_session)
		libssh2_session_free(X->kh_session);
	free(X->known_hosts_file);
	free(X->home);
	free(X);
	libssh2_exit();
}

static const struct executor_ops ssh_ops = {NULL, NULL, ssh_start, ssh_signal, ssh_free};

struct executor *exec_ssh_new(uv_loop_t *loop, const struct exec_ssh_options *o, const char **why)
{
	if ((*why = ssh2_load()))
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
