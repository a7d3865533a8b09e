/*
 * local.c — the local executor. Each command is posix_spawn'ed (vfork-style,
 * much cheaper than fork) in its own process group with stdin from /dev/null
 * and stdout/stderr on pipes read through libuv. A proc is done only when it
 * has been reaped *and* both pipes reached EOF, in either order, so no
 * trailing output is lost. A child's exit is seen (pidfd, or SIGCHLD) without
 * reaping it: the zombie keeps its pid, so its process-group id cannot be
 * reused while baton may still signal the group; it is reaped last.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/exec.h"
#include "exec/output.h"
#include "util/util.h"

#define READ_CHUNK 65536

enum { OPEN_OUT = 1, OPEN_ERR = 2 };

#define ORPHAN_PIPE_MS 500 /* after SIGKILL, how long output may stay open */
#define EXIT_WATCH_MS 50   /* a child still running after this gets a pidfd: its exit may not close its output */

struct exec_proc {
	struct local *L;
	struct exec_fds *fds; /* the budget its descriptors count against, or NULL */
	pid_t pid;
	bool reaped;      /* it has exited (seen with WNOWAIT; the zombie is reaped in maybe_done) */
	bool sigwatch;    /* its exit is awaited through SIGCHLD */
	bool killed;      /* SIGKILL was sent to its group */
	char why[160];    /* st.error's text, when its output could not be watched */
	uint64_t grace_ms; /* exited with its output open: how long before the group is killed */
	uv_timer_t orphan; /* that wait; after SIGKILL, the wait for pipes held outside the group */
	bool orphan_started;
	int pidfd;        /* readable once the process has exited; -1 without pidfd support */
	uv_poll_t pidpoll;
	int pipes_open; /* OPEN_OUT | OPEN_ERR */
	int handles;    /* uv handles not yet closed */
	uv_pipe_t out, err;
	struct exec_status st;
	struct exec_callbacks cb;
	void *ud;
	char *outpath; /* its $BATON_OUTPUT file, or NULL */
	struct exec_proc *next, *prev;
};

#define PATH_CACHE_MAX 64

/*
 * Programs found along baton's own PATH, so a thousand `true`s do not search
 * it a thousand times. Exact, not a guess: every directory of the PATH is
 * watched with inotify and any change there empties the cache; a directory
 * that did not exist is checked on every lookup, and the cache is dropped
 * for good the moment one appears.
 */
struct path_cache {
	int fd; /* inotify; -1: no cache */
	char *path;
	char **missing;
	size_t n_missing;
	char *names[PATH_CACHE_MAX];
	char *found[PATH_CACHE_MAX];
	size_t n;
};

struct local {
	struct executor base;
	uv_loop_t *loop;
	struct path_cache pc;
	uv_signal_t sigchld;
	bool sig_started;
	size_t n_sigwatch;       /* procs whose exit SIGCHLD must tell: while any, SIGCHLD keeps the loop alive */
	struct exec_proc *procs; /* running (not exited yet) */
	struct exec_fds *fds;    /* the descriptor budget, or NULL */
	bool use_pidfd;          /* exits come through pidfds, not SIGCHLD */
	struct exec_outdir outdir; /* the $BATON_OUTPUT files */
	char buf[READ_CHUNK];
};

static void proc_unlink(struct local *L, struct exec_proc *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else if (L->procs == p)
		L->procs = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->next = p->prev = NULL;
}

static void on_close(uv_handle_t *h)
{
	struct exec_proc *p = h->data;
	if (--p->handles == 0) {
		if (p->pidfd >= 0)
			close(p->pidfd);
		struct exec_fds *fds = p->fds; /* not p->L's: the executor may be gone by now */
		free(p);
		exec_fds_give(fds, EXEC_FDS_LOCAL);
	}
}

static void maybe_done(struct exec_proc *p);
static void reaped(struct local *L, struct exec_proc *p, const siginfo_t *si);
static void watch_exit(struct exec_proc *p);
static void reap(uv_signal_t *h, int sig);

/*
 * True when p's process has exited, with how in *si; the zombie stays (no
 * reaping), so its pid, which is its group's id, is not reused meanwhile.
 */
static bool has_exited(const struct exec_proc *p, siginfo_t *si)
{
	memset(si, 0, sizeof *si);
	return waitid(P_PID, (id_t)p->pid, si, WEXITED | WNOHANG | WNOWAIT) == 0 && si->si_pid == p->pid;
}

/* Notices p's exit if it has happened; true if it had. */
static bool check_exit(struct exec_proc *p)
{
	siginfo_t si;
	if (p->reaped || !has_exited(p, &si))
		return p->reaped;
	reaped(p->L, p, &si);
	return true;
}

/* p's exit is to come through SIGCHLD: the handler runs, and keeps the loop alive until it came. */
static bool sigwatch_start(struct exec_proc *p)
{
	struct local *L = p->L;
	if (!L->sig_started) {
		if (uv_signal_start(&L->sigchld, reap, SIGCHLD) != 0)
			return false;
		L->sig_started = true;
	}
	if (!p->sigwatch) {
		p->sigwatch = true;
		if (L->n_sigwatch++ == 0)
			uv_ref((uv_handle_t *)&L->sigchld);
	}
	return true;
}

static void sigwatch_stop(struct exec_proc *p)
{
	if (!p->sigwatch)
		return;
	p->sigwatch = false;
	if (--p->L->n_sigwatch == 0)
		uv_unref((uv_handle_t *)&p->L->sigchld);
}

/*
 * The process group is dead but its output is still open: something that
 * left the group (setsid) holds it. The task is over; stop reading.
 */
static void on_orphan(uv_timer_t *t)
{
	struct exec_proc *p = t->data;
	if (!check_exit(p))
		watch_exit(p);
	if (p->pipes_open & OPEN_OUT)
		uv_read_stop((uv_stream_t *)&p->out);
	if (p->pipes_open & OPEN_ERR)
		uv_read_stop((uv_stream_t *)&p->err);
	p->pipes_open = 0;
	maybe_done(p);
}

static void orphan_watch(struct exec_proc *p)
{
	if (p->orphan_started || !p->killed || !p->pipes_open)
		return;
	p->orphan_started = true;
	uv_timer_start(&p->orphan, on_orphan, ORPHAN_PIPE_MS, 0);
}

/*
 * The child has run for EXIT_WATCH_MS: watch for its exit on its own, since
 * something it starts may hold its output open after it exits. Shorter
 * tasks (most) close their output as they exit and never need a pidfd.
 */
static void on_exit_watch(uv_timer_t *t)
{
	watch_exit(t->data);
}

/* The grace after the command's exit is over and its output is still open: the rest of its group goes. */
static void on_linger(uv_timer_t *t)
{
	struct exec_proc *p = t->data;
	kill(-p->pid, SIGKILL);
	p->killed = true;
	orphan_watch(p);
}

/*
 * The command exited but something it started still holds its output: late
 * output is read for up to grace_ms, then the group is killed, so a
 * background process that keeps the pipes open cannot hold the task forever.
 */
static void linger_watch(struct exec_proc *p)
{
	if (p->killed || !p->pipes_open)
		return;
	uv_timer_start(&p->orphan, on_linger, p->grace_ms, 0);
}

/* Ends a proc when both conditions hold: reaped, and every pipe at EOF. */
static void maybe_done(struct exec_proc *p)
{
	if (!p->reaped || p->pipes_open)
		return;
	/* anything the command left running in its group goes with it; then the zombie, whose pid held the group id */
	kill(-p->pid, SIGKILL);
	int st;
	while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
		;
	struct buf out = {0};
	char *why = NULL;
	if (p->outpath) {
		if (exec_output_read(p->outpath, &out, &why)) {
			p->st.output = out.data ? out.data : "";
			p->st.output_len = out.len;
		} else {
			p->st.output_error = why;
		}
		free(p->outpath);
		p->outpath = NULL;
	}
	p->cb.done(p->ud, &p->st);
	buf_free(&out);
	free(why);
	p->handles = p->pidfd >= 0 ? 4 : 3;
	uv_timer_stop(&p->orphan);
	uv_close((uv_handle_t *)&p->out, on_close);
	uv_close((uv_handle_t *)&p->err, on_close);
	uv_close((uv_handle_t *)&p->orphan, on_close);
	if (p->pidfd >= 0)
		uv_close((uv_handle_t *)&p->pidpoll, on_close);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)hint;
	struct exec_proc *p = h->data;
	/* one read is handled at a time on the single loop thread, so one buffer serves all */
	b->base = p->L->buf;
	b->len = sizeof p->L->buf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct exec_proc *p = s->data;
	int which = s == (uv_stream_t *)&p->out ? OPEN_OUT : OPEN_ERR;
	if (n > 0) {
		p->cb.output(p->ud, which == OPEN_OUT ? 1 : 2, b->base, (size_t)n);
		return;
	}
	if (n == 0)
		return;
	/* EOF or a read error: either way this stream is finished */
	uv_read_stop(s);
	p->pipes_open &= ~which;
	if (!p->pipes_open && !p->reaped) {
		/* output closed usually means the process has exited: see it now rather than
		 * wait a loop turn for SIGCHLD */
		if (check_exit(p))
			return;
		if (p->L->use_pidfd)
			watch_exit(p); /* still running with its output closed */
	}
	maybe_done(p);
}

/* Records how an exited process ended and finishes it if its output is closed. */
static void reaped(struct local *L, struct exec_proc *p, const siginfo_t *si)
{
	p->reaped = true;
	if (si->si_code == CLD_EXITED) {
		p->st.exit_code = si->si_status;
	} else {
		p->st.exit_code = -1;
		p->st.signal = si->si_status;
	}
	proc_unlink(L, p);
	if (p->pidfd >= 0)
		uv_poll_stop(&p->pidpoll);
	sigwatch_stop(p);
	orphan_watch(p);
	linger_watch(p);
	maybe_done(p);
}

/* The pidfd of a child became readable: it has exited. */
static void on_pid_exit(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	check_exit(h->data);
}

/*
 * Waits on the loop for a child that is still running once its output has
 * closed (or it was killed): a pidfd when the kernel has them, else SIGCHLD.
 * Most children have exited by the time their output closes, so most never
 * need this.
 */
static void watch_exit(struct exec_proc *p)
{
	struct local *L = p->L;
	if (p->reaped || p->pidfd >= 0)
		return;
	if (L->use_pidfd) {
		int fd = (int)syscall(SYS_pidfd_open, p->pid, 0);
		if (fd >= 0 && uv_poll_init(L->loop, &p->pidpoll, fd) == 0) {
			p->pidfd = fd;
			p->pidpoll.data = p;
			if (uv_poll_start(&p->pidpoll, UV_READABLE, on_pid_exit) == 0)
				return;
			/* the handle is closed with the others; fall through to SIGCHLD */
		} else if (fd >= 0) {
			close(fd);
		}
	}
	sigwatch_start(p);
	/* it may have exited before the watch began */
	check_exit(p);
}

/* SIGCHLD: each child that has not been seen to exit is asked (without reaping: see has_exited). */
static void reap(uv_signal_t *h, int sig)
{
	(void)sig;
	struct local *L = h->data;
	for (struct exec_proc *p = L->procs, *next; p; p = next) {
		next = p->next; /* reaped() unlinks p */
		check_exit(p);
	}
}

/*
 * Finds a program the way execvp would, but along the PATH the command will
 * have (a plan may set its own), not baton's. Returns NULL if none.
 */
static char *search_path(const char *name, char *const *envp)
{
	const char *path = NULL;
	for (char *const *e = envp; e && *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	struct buf b = {0};
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t dl = end ? (size_t)(end - p) : strlen(p);
		buf_reset(&b);
		if (dl)
			buf_add(&b, p, dl);
		else
			buf_addc(&b, '.');
		buf_addc(&b, '/');
		buf_adds(&b, name);
		struct stat st;
		if (access(b.data, X_OK) == 0 && stat(b.data, &st) == 0 && S_ISREG(st.st_mode))
			return buf_detach(&b);
		if (!end)
			break;
		p = end;
	}
	buf_free(&b);
	return NULL;
}

static void path_cache_clear(struct path_cache *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->names[i]);
		free(c->found[i]);
	}
	c->n = 0;
}

static void path_cache_init(struct path_cache *c)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	const char *path = getenv("PATH");
	if (!path)
		return;
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return;
	const uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF |
			      IN_MOVE_SELF;
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		char *dir = xstrndup(p, end ? (size_t)(end - p) : strlen(p));
		if (!*dir) {
			free(dir);
			dir = xstrdup(".");
		}
		if (inotify_add_watch(fd, dir, mask) < 0) {
			if (errno != ENOENT && errno != ENOTDIR) {
				free(dir);
				close(fd);
				for (size_t i = 0; i < c->n_missing; i++)
					free(c->missing[i]);
				free(c->missing);
				c->missing = NULL;
				c->n_missing = 0;
				return; /* cannot watch it: no cache */
			}
			c->missing = xrealloc(c->missing, (c->n_missing + 1) * sizeof *c->missing);
			c->missing[c->n_missing++] = dir;
		} else {
			free(dir);
		}
		if (!end)
			break;
		p = end;
	}
	c->fd = fd;
	c->path = xstrdup(path);
}

static void path_cache_free(struct path_cache *c)
{
	path_cache_clear(c);
	if (c->fd >= 0)
		close(c->fd);
	for (size_t i = 0; i < c->n_missing; i++)
		free(c->missing[i]);
	free(c->missing);
	free(c->path);
}

/* The program's path along the command's PATH (caller frees), or NULL. */
static char *find_program(struct path_cache *c, const char *name, char *const *envp)
{
	const char *path = NULL;
	for (char *const *e = envp; e && *e; e++)
		if (!strncmp(*e, "PATH=", 5))
			path = *e + 5;
	if (c->fd < 0 || !path || strcmp(path, c->path))
		return search_path(name, envp);
	char ev[4096];
	ssize_t r;
	bool changed = false;
	while ((r = read(c->fd, ev, sizeof ev)) > 0)
		changed = true;
	if (changed)
		path_cache_clear(c);
	for (size_t i = 0; i < c->n_missing; i++)
		if (access(c->missing[i], F_OK) == 0) {
			/* a directory of the PATH appeared: it is not watched, so stop caching */
			path_cache_clear(c);
			close(c->fd);
			c->fd = -1;
			return search_path(name, envp);
		}
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->names[i], name))
			return xstrdup(c->found[i]);
	char *found = search_path(name, envp);
	if (found && c->n < PATH_CACHE_MAX) {
		c->names[c->n] = xstrdup(name);
		c->found[c->n++] = xstrdup(found);
	}
	return found;
}

static int spawn(struct local *L, pid_t *pid, const char *path, char *const *argv, char *const *envp,
		 const char *cwd, int out, int err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int rc = posix_spawn_file_actions_init(&fa);
	if (rc)
		return rc;
	rc = posix_spawnattr_init(&at);
	if (rc) {
		posix_spawn_file_actions_destroy(&fa);
		return rc;
	}
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	if (!rc)
		rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, out, 1);
	if (!rc)
		rc = posix_spawn_file_actions_adddup2(&fa, err, 2);
	if (!rc && cwd)
		rc = posix_spawn_file_actions_addchdir_np(&fa, cwd);
	if (!rc)
		rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (!rc)
		rc = posix_spawnattr_setpgroup(&at, 0);
	if (!rc)
		rc = posix_spawnattr_setsigmask(&at, &none);
	if (!rc)
		rc = posix_spawnattr_setsigdefault(&at, &all);
	char *found = NULL;
	if (!rc && !strchr(path, '/')) {
		found = find_program(&L->pc, path, envp);
		if (!found)
			rc = ENOENT;
	}
	if (!rc)
		rc = posix_spawn(pid, found ? found : path, &fa, &at, argv, envp);
	free(found);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/*
 * Reads the command's output ends (out, err) on the loop. On failure every
 * descriptor is closed or owned by a handle, p->why says what failed, and
 * nothing is read.
 */
static bool output_watch(struct exec_proc *p, int out, int err)
{
	int rc = uv_pipe_open(&p->out, out);
	if (rc != 0)
		close(out); /* not the handle's: ours to close */
	int rc2 = uv_pipe_open(&p->err, err);
	if (rc2 != 0)
		close(err);
	if (!rc)
		rc = rc2;
	if (!rc)
		rc = uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read);
	if (!rc)
		rc = uv_read_start((uv_stream_t *)&p->err, on_alloc, on_read);
	if (!rc)
		return true;
	uv_read_stop((uv_stream_t *)&p->out);
	snprintf(p->why, sizeof p->why, "cannot read the command's output (%s): it was stopped", uv_strerror(rc));
	p->pipes_open = 0;
	return false;
}

/*
 * The command's environment: spec's, with BATON_OUTPUT first, naming a new
 * file of the run's directory (spec->output; *path set) or /dev/null. The
 * array is the caller's to free, and so is its first string. NULL with *err.
 */
static char **output_env(struct local *L, const struct exec_spec *spec, char **path, char **err)
{
	size_t n = 0;
	while (spec->envp && spec->envp[n])
		n++;
	*path = NULL;
	if (spec->output && !(*path = exec_outdir_file(&L->outdir, err)))
		return NULL;
	char **v = xmalloc((n + 2) * sizeof *v);
	v[0] = xasprintf("BATON_OUTPUT=%s", *path ? *path : "/dev/null");
	for (size_t i = 0; i < n; i++)
		v[i + 1] = spec->envp[i];
	v[n + 1] = NULL;
	return v;
}

static struct exec_proc *local_start(struct executor *x, const struct exec_spec *spec,
				     const struct exec_callbacks *cb, void *ud, char **errmsg)
{
	struct local *L = (struct local *)x;
	if (!L->use_pidfd && !L->sig_started) {
		if (uv_signal_start(&L->sigchld, reap, SIGCHLD) != 0) {
			*errmsg = xstrdup("cannot watch SIGCHLD");
			return NULL;
		}
		L->sig_started = true;
	}
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) != 0) {
		*errmsg = xasprintf("pipe: %s", strerror(errno));
		return NULL;
	}
	if (pipe2(pe, O_CLOEXEC) != 0) {
		*errmsg = xasprintf("pipe: %s", strerror(errno));
		close(po[0]);
		close(po[1]);
		return NULL;
	}
	char *outpath = NULL;
	char **envp = output_env(L, spec, &outpath, errmsg);
	if (!envp) {
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return NULL;
	}
	pid_t pid;
	int rc = spawn(L, &pid, spec->argv[0], spec->argv, envp, spec->cwd, po[1], pe[1]);
	if (rc && spec->fallback && (rc == ENOENT || rc == EACCES || rc == ENOEXEC || rc == ENOTDIR))
		rc = spawn(L, &pid, spec->fallback[0], spec->fallback, envp, spec->cwd, po[1], pe[1]);
	close(po[1]);
	close(pe[1]);
	free(envp[0]); /* BATON_OUTPUT=..., the one string of its own */
	free(envp);
	if (rc && outpath) {
		unlink(outpath);
		free(outpath);
		outpath = NULL;
	}
	if (rc) {
		close(po[0]);
		close(pe[0]);
		if (spec->cwd && (rc == ENOENT || rc == ENOTDIR || rc == EACCES) && access(spec->cwd, X_OK) != 0)
			*errmsg = xasprintf("cannot change to directory %s: %s", spec->cwd, strerror(rc));
		else
			*errmsg = xasprintf("cannot run %s: %s", spec->argv[0], strerror(rc));
		return NULL;
	}
	struct exec_proc *p = xcalloc(1, sizeof *p);
	p->fds = L->fds;
	exec_fds_take(p->fds, EXEC_FDS_LOCAL); /* given back when its last handle closes */
	p->L = L;
	p->pid = pid;
	p->grace_ms = spec->grace_ms;
	p->cb = *cb;
	p->ud = ud;
	p->outpath = outpath;
	p->pipes_open = OPEN_OUT | OPEN_ERR;
	uv_pipe_init(L->loop, &p->out, 0);
	uv_pipe_init(L->loop, &p->err, 0);
	uv_timer_init(L->loop, &p->orphan);
	p->out.data = p->err.data = p->orphan.data = p->pidpoll.data = p;
	p->pidfd = -1; /* a pidfd only if it runs a while or outlives its output: see watch_exit */
	p->next = L->procs;
	if (L->procs)
		L->procs->prev = p;
	L->procs = p;
	if (cb->process)
		cb->process(ud, pid);
	if (!output_watch(p, po[0], pe[0])) {
		/* cannot read its output: stop it rather than lose it, and see it exit */
		kill(-pid, SIGKILL);
		p->killed = true;
		p->st.error = p->why;
		watch_exit(p);
		return p;
	}
	/* while a child runs, its SIGCHLD is something to wait for even after its pipes close */
	if (!L->use_pidfd)
		sigwatch_start(p);
	else
		uv_timer_start(&p->orphan, on_exit_watch, EXIT_WATCH_MS, 0);
	return p;
}

static bool local_signal(struct exec_proc *p, int sig)
{
	/*
	 * Asked at the moment of the signal: a command that exited on its own
	 * keeps its own status. Only asked (has_exited): noticing the exit here
	 * could end the proc, and its task, inside the caller.
	 */
	siginfo_t si;
	bool running = !p->reaped && !has_exited(p, &si);
	if (kill(-p->pid, sig) != 0 && errno == ESRCH && !p->reaped)
		kill(p->pid, sig);
	if (sig == SIGKILL) {
		p->killed = true;
		orphan_watch(p);
	}
	return running;
}

static void on_sig_close(uv_handle_t *h)
{
	free(h->data);
}

static void local_free(struct executor *x)
{
	struct local *L = (struct local *)x;
	path_cache_free(&L->pc);
	exec_outdir_remove(&L->outdir);
	L->sigchld.data = L;
	uv_close((uv_handle_t *)&L->sigchld, on_sig_close);
}

/* A local command may start while its pipes and pidfd fit the budget. */
static bool local_admit(struct executor *x, const struct exec_host *host)
{
	(void)host;
	return exec_fds_fit(((struct local *)x)->fds, EXEC_FDS_LOCAL);
}

static const struct executor_ops local_ops = {local_admit, NULL, local_start, local_signal, local_free};

struct executor *exec_local_new(uv_loop_t *loop, struct exec_fds *fds)
{
	struct local *L = xcalloc(1, sizeof *L);
	L->base.ops = &local_ops;
	L->loop = loop;
	L->fds = fds;
	path_cache_init(&L->pc);
	/* pidfds (Linux 5.3+) tell of each child's exit on the loop; else SIGCHLD does */
	int probe = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (probe >= 0) {
		L->use_pidfd = true;
		close(probe);
	}
	uv_signal_init(loop, &L->sigchld);
	L->sigchld.data = L;
	/* SIGCHLD alone must not keep the loop alive */
	uv_unref((uv_handle_t *)&L->sigchld);
	return &L->base;
}

/* Words that the shell treats specially, or builtins whose behaviour differs from the program of that name. */
static const char *const shell_words[] = {
	"!",     ".",     ":",     "[",     "alias", "bg",       "break",  "case",   "cd",    "command",
	"continue", "do", "done",  "echo",  "elif",  "else",     "esac",   "eval",   "exec",  "exit",
	"export", "fc",   "fg",    "fi",    "for",   "function", "getopts", "hash",  "if",    "in",
	"jobs",  "kill",  "local", "printf", "pwd",  "read",     "readonly", "return", "select", "set",
	"shift", "source", "test", "then",  "time",  "times",    "trap",   "type",   "typeset", "ulimit",
	"umask", "unalias", "unset", "until", "wait", "while",   "{",      "}",
};

bool exec_is_simple_command(const char *cmd)
{
	size_t n = strlen(cmd);
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)cmd[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  strchr("_-./:,+@%= ", c);
		if (!ok)
			return false;
	}
	size_t wl = strcspn(cmd + strspn(cmd, " "), " ");
	const char *w = cmd + strspn(cmd, " ");
	if (!wl || memchr(w, '=', wl))
		return false; /* an assignment */
	for (size_t i = 0; i < ARRAY_LEN(shell_words); i++)
		if (strlen(shell_words[i]) == wl && !memcmp(shell_words[i], w, wl))
			return false;
	return true;
}

char **exec_split_words(const char *cmd, size_t *n)
{
	size_t cap = 4;
	char **v = xmalloc(cap * sizeof *v);
	*n = 0;
	const char *p = cmd;
	for (;;) {
		p += strspn(p, " ");
		if (!*p)
			break;
		size_t l = strcspn(p, " ");
		if (*n + 2 > cap) {
			cap *= 2;
			v = xrealloc(v, cap * sizeof *v);
		}
		v[(*n)++] = xstrndup(p, l);
		p += l;
	}
	v[*n] = NULL;
	return v;
}
