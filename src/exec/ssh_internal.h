/*
 * Private to the SSH executor (ssh.c, ssh_auth.c, ssh_tunnel.c): a
 * connection per host, its channels (procs) and the tunnels that carry a
 * connection through a jump host. Other modules see only exec.h.
 */
#ifndef BATON_SSH_INTERNAL_H
#define BATON_SSH_INTERNAL_H

#include <netdb.h>

#include "exec/exec.h"
#include "exec/output.h"
#include "exec/ssh2.h"
#include "exec/sshctl.h"
#include "util/util.h"

#define READ_CHUNK 32768
#define PGID_MARK "\036baton-pgid "
#define HEAD_MAX 4096         /* stderr kept back while looking for the marker */
#define KILL_CLOSE_MS 2000    /* after a remote SIGKILL: how long the channel may stay open */
#define KEEPALIVE_MISSES 3    /* keepalive intervals without a byte from the server: lost */
#define TUNNEL_BUF 65536
#define CLEANUP_CONNECT_MS 2000
#define CONNECTING_MAX 100 /* direct connections being set up at once (ssh_pace.c) */
#define CONNECT_ATTEMPTS 4 /* a connection reset before the server's first byte is made again (conn_retry) */
#define CONTROL_RETRIES 40     /* a refused kill session is tried again, every CONTROL_RETRY_MS */
#define CONTROL_RETRY_MS 250 /* a connection opened only to end what a lost one left running */
#define POLL_MS 1000          /* a running command: how often baton's shell checks it still exists */
#define JUMP_DEPTH_MAX 16     /* ProxyJump hops followed at most (the plan refuses longer chains) */
#define AGENT_TIMEOUT_MS 10000 /* one exchange with ssh-agent (list the keys, sign): then it is given up */
#define AWAY_RETRY_MS 20 /* a timer that needs the session while a worker has it: tried again after this */

enum cstate { C_RESOLVE, C_CONNECT, C_HANDSHAKE, C_AUTH, C_READY, C_FAILED };
/* P_SHELL: baton's own shell, taking requests; P_REAP: the command has ended and its channel
 * is gone, what it left in its group is being killed */
enum pstate { P_WAIT, P_OPEN, P_EXEC, P_EOF, P_RUN, P_SHELL, P_CLOSE, P_FREE, P_REAP, P_DONE };

/* baton's shell on a host (sshctl.h): not yet asked for, opening, taking requests, or not to be used */
enum shstate { SH_NONE, SH_OPENING, SH_READY, SH_OFF };

struct ssh;
struct conn;
struct agent_job; /* ssh_auth.c: a call into libssh2's agent code, on a worker thread */
struct xfer_job;  /* sftp_job.c: a slice of an upload's writes, on a worker thread */

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
	struct exec_proc *reaped; /* control: the proc whose group this kills; it ends when this does */
	struct exec_proc *reaper; /* P_REAP: that control proc */
	bool shell;      /* control: the connection's shell, which stays (sshctl.h) */
	bool slot_retry; /* refused a session after baton closed its shell to make room: tried again */
	enum { R_NONE, R_ASKED, R_DONE } reap; /* killing what the command left in its group */
	bool polling;    /* an "is it alive?" request is out */
	bool exited;     /* the command's process is gone, though its output is still open */
	int last_signal; /* the latest signal sent through the shell */
	uint64_t grace_ms;
	bool killed;
	bool reopened;   /* moved once to a new connection, the first having closed before it started */
	struct exec_rout out;      /* $BATON_OUTPUT (spec.output): its file on the host, read back by `fetcher` */
	struct exec_proc *fetcher; /* that control proc, while it runs */
	struct exec_proc *fetched; /* control: the proc whose file this reads */
	uv_timer_t kill_timer;
	bool kill_timer_init;
	int handles;
	struct exec_status st;
	char *error;
	struct sftp_xfer *xfer; /* a copy or fetch (sftp.c) instead of a command */
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
	struct agent_job *agent_job; /* out on a worker: the loop leaves the session alone meanwhile */
	struct xfer_job *xfer_job;   /* likewise (conn_away) */
	bool agent_have;      /* the last job's result, not yet taken: agent_rc */
	bool agent_listing;   /* that job listed the agent's keys (else it tried one) */
	bool agent_timed_out; /* the agent did not answer within AGENT_TIMEOUT_MS: not asked again */
	int agent_rc;
	uint64_t last_rx_ms;
	uint64_t rx_bytes; /* read from the socket by libssh2, for every channel at once (by a job's
			    * thread while it is away: the loop reads it only when it is not) */
	uint64_t probe_ms; /* when a keepalive went to a server silent too long; 0: none yet */
	bool tick_due;     /* a keepalive tick came while a worker had the session: conn_tick when it is back */
	bool slice_ready;  /* a copy waits to give the session to a worker: at the end of the drive (sftp_slice_go) */
	bool slice_waiting; /* in sftp_job.c's queue for a thread */
	uint64_t connect_timeout_ms;
	char *error;
	struct exec_proc *procs;
	struct sshctl ctl;          /* requests for baton's shell on the host */
	struct exec_proc *shell;    /* that shell's proc, while it has one */
	enum shstate shell_state;
	struct tunnel *tun;      /* this connection reaches its host through a jump */
	struct tunnel **carries; /* tunnels this connection carries for others */
	size_t n_carries;
	int handles;
	bool dead; /* closing: handles are being closed */
	int deferred; /* procs it has let go whose end is still to be reported (proc_defer_finish) */
	struct exec_fds *fds; /* the budget it counts against, or NULL */
	long fds_held;        /* descriptors counted there, given back when it is freed */
	uint64_t used_ms; /* when a command last asked for it: the idle one used longest ago closes first */
	bool driving;
	bool redrive;
	bool reopened;   /* opened again for a host whose idle connection the server had closed: said when ready */
	enum { PACE_NONE, PACE_COUNTED, PACE_QUEUED } pacing; /* ssh_pace.c */
	struct conn *pace_next; /* waiting to be set up, in order */
	uint64_t timeout_said_ms; /* connect_timeout as the plan gave it, for messages (a retry has what is left) */
	unsigned attempt;     /* connecting again after a reset before the server said a word (conn_retry): 0 first */
	uint64_t deadline_ms; /* uv_now when connect_timeout ends, over all attempts; 0: none */
	bool idle_deaf;  /* idle, with bytes in the socket that nothing reads: not watched until the next command */
	struct conn *next;
};

struct ssh {
	struct executor base;
	uv_loop_t *loop;
	struct exec_ssh_options o;
	char *known_hosts_file;
	char *home;
	struct exec_kh *kh; /* the known hosts file, read when the first connection needs it */
	struct conn *conns;
	bool closing; /* ssh_free: no more cleanups */
	const struct exec_host **idle_closed; /* hosts whose idle connection the server closed (keys) */
	size_t n_idle_closed;
	int n_connecting;              /* direct connections being set up (ssh_pace.c) */
	struct conn *pace_head, *pace_tail; /* and those waiting to be */
	uv_timer_t *pace_timer;
	bool agent_silent; /* ssh-agent did not answer a connection in time: the others do not ask it */
	char buf[READ_CHUNK];
};

/* ---- shared by ssh.c, ssh_auth.c, ssh_tunnel.c, sftp.c and sftp_job.c ---- */

/* A worker has c's session (an agent call, a slice of an upload): the loop leaves it and its socket alone. */
static inline bool conn_away(const struct conn *c)
{
	return c->agent_job || c->xfer_job;
}

/*
 * What a slice of an upload works on (sftp_job.c), handed over by the loop
 * while the job is out: the SFTP handle, the local file, the buffer and how
 * much of it is still to be written; and what the slice did.
 */
struct xfer_slice {
	LIBSSH2_SFTP_HANDLE *h;
	int fd; /* the local file */
	char *buf;
	size_t cap, len, off; /* buf[off, len) is still to be written */
	uint64_t bytes;       /* written by the slice */
	bool eof;             /* the local file is all written */
	int rc;               /* the write's libssh2 error (not EAGAIN); 0: none */
	int read_errno;       /* reading the local file failed; 0: it did not */
	bool rx;              /* bytes came from the server meanwhile */
};

/* Why a connection broke, in words: libssh2's own ("transport read") say little. */
char *lost_reason(LIBSSH2_SESSION *s); /* ssh.c */
/* libssh2's last error on s, as text (caller frees). */
char *session_error(LIBSSH2_SESSION *s); /* ssh.c */
/* Is e an error of the whole connection (its socket), not of one channel? */
bool socket_error(int e); /* ssh.c */
/* Does c have commands to carry, itself or through a connection it carries (to JUMP_DEPTH_MAX hops)? */
bool conn_needed(const struct conn *c, int depth); /* ssh.c */
/* Keeps the loop alive for h, or not. */
void set_ref(uv_handle_t *h, bool ref); /* ssh.c */
/*
 * Only what a command needs keeps the loop alive: c's socket and timer
 * while c is needed, each tunnel it carries while that tunnel's target is.
 * Whether c is needed decides it for the jump hosts it goes through, so
 * they are updated too, up the chain: a jump host whose last carried
 * command ended must not hold the loop until its next keepalive.
 */
void conn_refs(struct conn *c); /* ssh.c */
/*
 * The connection is gone (or never came): every proc on it fails with the
 * reason, the tunnels it carries close, and it leaves the table so the
 * next command for the host connects again.
 */
void conn_fail(struct conn *c, char *reason); /* ssh.c */
/*
 * The connection's socket failed (EOF, reset, a send that cannot go): if
 * nothing can have run on it since it was last idle (every command on it
 * still waits for its channel, none moved before), it is closed and the
 * host connected to again, those commands moved there; else conn_fail.
 */
void conn_broke(struct conn *c, char *reason); /* ssh_idle.c */
/*
 * c's socket failed while connecting, before the server sent a byte: NULL
 * when c's commands went to a new attempt (reason taken), else the reason
 * to fail c with (the same, or saying how many attempts were made).
 */
char *conn_retry(struct conn *c, char *reason); /* ssh_idle.c */
/* Resolves c's address and connects (or opens its tunnel); its connect_timeout starts. */
void conn_start(struct conn *c); /* ssh.c */
/* May c be set up now? Else it waits, and conn_start is called for it when its turn comes. */
bool pace_admit(struct conn *c); /* ssh_pace.c */
/* c is ready, or failed (queued or not): its place goes to the next. */
void pace_done(struct conn *c); /* ssh_pace.c */
void pace_free(struct ssh *X);  /* ssh_pace.c */
/* True when c could close now with nothing lost: logged in, running nothing, carrying no tunnel. */
bool conn_idle(const struct conn *c); /* ssh_idle.c */
/* An idle connection's socket is readable: the server's close is handled (conn_broke); true: drive c. */
bool idle_readable(struct conn *c); /* ssh_idle.c */
/* A connection to h is about to open: idle ones past o.max_idle - 1 close, the one used longest ago first. */
void idle_cap(struct ssh *X, const struct exec_host *h); /* ssh_idle.c */
/* Was h's idle connection closed by the server? Forgotten once asked. */
bool idle_closed_take(struct ssh *X, const struct exec_host *h); /* ssh_idle.c */
/* Does c carry anything of the caller's (baton's own shell, idle, does not count)? */
bool conn_busy(const struct conn *c); /* ssh.c */
/* The live connection for h, opened now if there is none. */
struct conn *conn_get(struct ssh *X, const struct exec_host *h, uint64_t connect_timeout_ms); /* ssh.c */
/* Opens baton's own shell channel on c (for kills and reads), once it is ready. */
void shell_open(struct conn *c); /* ssh.c */
/* A keepalive tick of a ready connection: its server lost (conn_fail), or a keepalive sent. */
void conn_tick(struct conn *c); /* ssh.c */
/* Watches c's socket for what it waits for now. */
void poll_update(struct conn *c); /* ssh.c */
/* Reports p's end from the loop, not from inside the call that ended it. */
void proc_defer_finish(struct exec_proc *p); /* ssh.c */
/* Advances everything c carries until libssh2 says it must wait. */
void conn_drive(struct conn *c); /* ssh.c */
/* Closes t: its channel, its end of the socketpair and its poll. */
void tunnel_close(struct tunnel *t); /* ssh_tunnel.c */
/* Moves bytes between the socketpair and the jump channel, as far as both take them. */
void tunnel_pump(struct tunnel *t); /* ssh_tunnel.c */
/* Opens the direct-tcpip channel for a tunnel, once the jump connection is ready. */
bool tunnel_step(struct tunnel *t); /* ssh_tunnel.c */
/* Reports p's end (once, with p->st and p->error) and frees it. */
void proc_finish(struct exec_proc *p); /* ssh.c */
/* A new proc of the connection to h (opened now if there is none), not yet started; NULL with *err. */
struct exec_proc *proc_add(struct ssh *X, const struct exec_host *h, const struct exec_callbacks *cb, void *ud,
			   char **err); /* ssh.c */
/* sftp.c: advances a copy's proc (p->xfer), as proc_step does a command's; true on progress. */
bool sftp_step(struct exec_proc *p);
/*
 * sftp.c, at the end of conn_drive (every channel stepped first, so none
 * waits behind the slices): of the copies waiting for a slice, the one
 * that had one least recently gets it. False if none could go (c is then
 * to be driven again: the copies write on the loop).
 */
bool sftp_slice_go(struct conn *c);
/* sftp.c: a copy under way is to stop at its next step (what it half wrote removed). */
bool sftp_signal(struct exec_proc *p, int sig);
void sftp_xfer_free(struct sftp_xfer *x);
/* Advances authentication; returns false while it must wait (or failed). */
bool auth_step(struct conn *c); /* ssh_auth.c */
/* A job is out (c->agent_job): it is told to stop waiting for the agent, and ends soon. */
void agent_cancel(struct conn *c); /* ssh_auth.c */
/* How many agent jobs are out, in all: libssh2 stays initialised until they are back. */
int agent_jobs_out(void); /* ssh_auth.c */
/* CLOCK_MONOTONIC in ms, for deadlines on a worker thread. */
uint64_t mono_ms(void); /* ssh_auth.c */
/* libssh2's socket I/O for the session, and for the agent's socket (waited for on a job, to its deadline). */
ssize_t conn_recv(libssh2_socket_t fd, void *buf, size_t len, int flags, void **abstract); /* ssh_auth.c */
ssize_t conn_send(libssh2_socket_t fd, const void *buf, size_t len, int flags, void **abstract); /* ssh_auth.c */
/*
 * sftp_job.c: one slice of an upload's writes goes to a worker with c's
 * session; *sl is taken (its fd and buffer belong to the job until it is
 * back). back(ud, sl) is called on the loop when it is back, then c is
 * driven; NULL (nothing taken) if it cannot go (no thread free for it). The
 * job is returned for xfer_job_cancel and xfer_job_orphan.
 */
struct xfer_job *xfer_job_start(struct conn *c, const struct xfer_slice *sl,
				void (*back)(void *ud, struct xfer_slice *sl), void *ud);
/* Could a slice of c's go to a worker now (a thread free for it, and no other connection waiting for one)? */
bool xfer_job_can(const struct conn *c);
/* No: c waits in the queue for a thread (once), and is driven when it has one; false if it cannot wait. */
bool xfer_job_wait(struct conn *c);
/* c leaves that queue (it is freed). */
void xfer_job_unwait(struct conn *c);
/* Stop the slice soon (a stop, the connection failing). */
void xfer_job_cancel(struct xfer_job *j);
/* Its owner is gone: stop soon, and when back, close the file and free the buffer, calling nobody. */
void xfer_job_orphan(struct xfer_job *j);
/* How many slices are out, in all: libssh2 stays initialised until they are back. */
int xfer_jobs_out(void);
/* Frees c if nothing holds it any more (handles, a resolve, a drive, a job on a worker). */
void conn_maybe_free(struct conn *c); /* ssh.c */

#endif
