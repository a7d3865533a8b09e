/*
 * exec: runs one command somewhere and reports its output and its end. The
 * scheduler talks to every executor through struct executor; local.c spawns
 * processes with posix_spawn in their own process group. Executors know
 * nothing about plans.
 */
#ifndef BATON_EXEC_H
#define BATON_EXEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/*
 * A remote host as the SSH executor needs it: where to connect, as whom, with
 * which keys, and through which jump host. The executor keeps one connection
 * per exec_host (compared by address of the struct), so the caller keeps
 * these alive and unique while the executor runs.
 */
struct exec_host {
	const char *name;    /* for messages */
	const char *address; /* to connect to; also the name checked in known_hosts */
	const char *user;
	int port;
	const char *const *identities; /* private key files tried after the agent */
	size_t n_identities;
	const struct exec_host *jump; /* reached through a direct-tcpip channel of this one, or NULL */
};

/* What to run. argv is exec'd as is; when it cannot be found and fallback is
 * set, fallback runs instead (the shell form of a directly exec'd string).
 * For the SSH executor, host and command say what runs where instead: command
 * is a POSIX shell command line, environment and directory included. */
struct exec_spec {
	char *const *argv;
	char *const *fallback;
	char *const *envp;
	const char *cwd; /* NULL: baton's own */
	const struct exec_host *host;
	const char *command;
	const char *input; /* SSH: written to the command's stdin before EOF (NULL: nothing) */
	/* once the command has exited, how long what it started may keep its output open
	 * before the rest of its process group is killed (the step's kill_grace) */
	uint64_t grace_ms;
	/* give the command a $BATON_OUTPUT file and read it back at its end (else BATON_OUTPUT=/dev/null) */
	bool output;
};

/* How a process ended. */
struct exec_status {
	int exit_code;     /* -1 when killed by a signal or never started */
	int signal;        /* 0 when it exited */
	const char *error; /* set when it could not be started */
	/* spec.output: what the command wrote to $BATON_OUTPUT (output_len bytes; NULL: nothing read back),
	 * or why it could not be read back (output_error) */
	const char *output;
	size_t output_len;
	const char *output_error;
	/* a copy (exec_copy_start): did it change anything at the destination, and the bytes it wrote */
	bool changed;
	uint64_t bytes;
};

#define EXEC_OUTPUT_MAX (1024 * 1024) /* the most of a $BATON_OUTPUT file that is read back */

/*
 * Parses what a command wrote to $BATON_OUTPUT (output.c): KEY=VALUE lines
 * and KEY<<DELIM ... DELIM blocks, as GitHub Actions' $GITHUB_OUTPUT; empty
 * lines are skipped, a later key replaces an earlier. Returns a new object
 * of strings, or NULL with *err (caller frees) naming the line at fault.
 */
json_t *exec_output_parse(const char *data, size_t len, char **err);

struct exec_callbacks {
	/* A chunk of output; stream is 1 (stdout) or 2 (stderr). */
	void (*output)(void *ud, int stream, const char *data, size_t len);
	/* The process has been reaped and its output has reached EOF. Last call. */
	void (*done)(void *ud, const struct exec_status *st);
	/* Its process group is known (remote: on the host); may be NULL. Called once, before done. */
	void (*process)(void *ud, long pgid);
};

struct exec_proc;
struct executor;

/*
 * The file descriptors executors may hold at once (fds.c): the soft
 * RLIMIT_NOFILE, raised to the hard one at start, less a reserve for baton's
 * own files. Executors take what a running command or an open connection
 * holds and give it back at its end; a start that would go past the budget
 * waits instead (executor_ops.admit), and room() says when to try again.
 */
struct exec_fds {
	long limit;  /* the soft limit, after raising it */
	long hard;   /* the hard limit; -1: unlimited */
	long budget; /* what executors may hold: limit less EXEC_FDS_RESERVE */
	long used;
	void (*room)(void *ud); /* descriptors were given back; may be NULL */
	void *room_ud;
};

#define EXEC_FDS_RESERVE 64     /* the loop's own, events, spill files, known_hosts, the agent... */
#define EXEC_FDS_MIN_RESERVE 24 /* what baton itself holds before any command starts, and some */
#define EXEC_FDS_LOCAL 3    /* a local command: its two pipes, and a pidfd once it runs a while */
#define EXEC_FDS_SSH 2      /* an SSH connection: its socket, and a file or agent socket while it logs in */
#define EXEC_FDS_SSH_JUMP 2 /* a connection through a jump host: the socketpair it is pumped over */

/* Raises the soft limit to the hard one and sets the budget. */
void exec_fds_init(struct exec_fds *f);
/* True when n more descriptors fit the budget (always, with f NULL). */
bool exec_fds_fit(const struct exec_fds *f, long n);
void exec_fds_take(struct exec_fds *f, long n);
/* Gives n back and calls room(). */
void exec_fds_give(struct exec_fds *f, long n);

struct executor_ops {
	/*
	 * True when a command for host (NULL: local) can start now without
	 * passing the descriptor budget; may make room (close an idle
	 * connection). NULL: always.
	 */
	bool (*admit)(struct executor *x, const struct exec_host *host);
	/* Closes what it keeps idle (connections) until n descriptors were given back; true if any. NULL: none. */
	bool (*trim)(struct executor *x, long n);
	/* Starts spec; returns NULL with *err (caller frees) if nothing could start. */
	struct exec_proc *(*start)(struct executor *x, const struct exec_spec *spec, const struct exec_callbacks *cb,
				   void *ud, char **err);
	/*
	 * Sends sig to the whole process group of a running proc. Returns false
	 * when the command itself had already exited (its end is its own, not
	 * the signal's: only what it left behind gets the signal), else true.
	 */
	bool (*signal)(struct exec_proc *p, int sig);
	/* Releases the executor once every proc has finished and the loop has run. */
	void (*free)(struct executor *x);
};

struct executor {
	const struct executor_ops *ops;
};

/* The local executor: posix_spawn, own process group, pipes read on loop;
 * fds may be NULL (no budget). When the command ends, nothing of its process
 * group is left (SIGKILL). */
struct executor *exec_local_new(uv_loop_t *loop, struct exec_fds *fds);

enum exec_known_hosts { EXEC_KH_STRICT, EXEC_KH_ACCEPT_NEW, EXEC_KH_OFF };

struct exec_ssh_options {
	enum exec_known_hosts known_hosts;
	const char *known_hosts_file; /* required */
	uint64_t connect_timeout_ms;  /* TCP connect, handshake and authentication; 0: none */
	uint64_t keepalive_ms;        /* 0: no keepalives */
	const char *home;             /* for the default identities (~/.ssh/id_*); NULL: none */
	/* a line of the known hosts file that is skipped ("FILE:LINE: why"), once per run, or a host whose idle
	 * connection the server closed, connected to again ("ssh HOST: ..."); NULL: silent */
	void (*warn)(void *ud, const char *msg);
	void *warn_ud;
	struct exec_fds *fds; /* the descriptor budget shared with the local executor; NULL: none */
	/* idle connections kept open for their host's next command: before a new one opens, the idle ones used
	 * longest ago are closed down to max_idle - 1, so what is open grows with the hosts worked on, not the
	 * inventory; 0: no cap (the descriptor budget alone) */
	size_t max_idle;
};

/*
 * The SSH executor (libssh2, non-blocking, on the loop): one connection per
 * host, opened on first use, each command a channel of it. signal() ends the
 * remote command's whole process group, and so does the command's end,
 * through a shell of baton's own on the host (else a second channel). libssh2
 * is loaded here, on first use; NULL with *why (static text) if it cannot be.
 */
struct executor *exec_ssh_new(uv_loop_t *loop, const struct exec_ssh_options *o, const char **why);

/*
 * The run-time version of libssh2, loaded as the SSH executor loads it (no
 * connection made), and in *crypto the libcrypto it brought in ("OpenSSL
 * 3.0.15 3 Sep 2024"; NULL when that cannot be told); NULL with *why (static
 * text) when libssh2 cannot be loaded.
 */
const char *exec_ssh_versions(const char **crypto, const char **why);

/*
 * A copy or fetch (copy_local.c here, sftp.c on a host): files moved, not a
 * command run. Every file is written to a temporary name in its directory
 * and renamed, so no reader sees half of it; a file whose content is already
 * there is left alone. A directory recurses (symlinks copied as links): a
 * src ending in '/' puts its entries into dest, else the directory itself
 * goes into dest. A file's dest that ends in '/' or is a directory gets the
 * file inside it, under its own name.
 */
struct exec_copy_spec {
	const struct exec_host *host; /* NULL: here, both sides local */
	bool fetch;                   /* src is on host, dest here (a remote file into a local path) */
	const char *src;
	const char *dest;
	int mode; /* permission bits of the files written; -1: the source's own */
};

struct exec_copy;

/*
 * Starts a copy; cb->done tells its end (st.error: why it failed, naming the
 * path; st.changed, st.bytes); cb->output and cb->process are not called.
 * ssh is the SSH executor for a spec with a host. NULL with *err (caller
 * frees) if nothing could start.
 */
struct exec_copy *exec_copy_start(uv_loop_t *loop, struct executor *ssh, const struct exec_copy_spec *spec,
				  const struct exec_callbacks *cb, void *ud, char **err);
/* Stops a running copy: it ends soon through done() (a file half written is removed). */
void exec_copy_stop(struct exec_copy *c);
/*
 * How far a running copy is, read when the caller wants it (no callback per
 * chunk): *bytes written so far, *total the bytes of the one file it copies
 * (-1: not known yet, or a directory).
 */
void exec_copy_progress(const struct exec_copy *c, uint64_t *bytes, int64_t *total);

/* True when a command string can be exec'd directly without changing what the user observes. */
bool exec_is_simple_command(const char *cmd);
/* Splits a simple command into words (caller frees each and the array). */
char **exec_split_words(const char *cmd, size_t *n);

#endif
