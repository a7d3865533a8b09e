/*
 * sftp.c — `copy` and `fetch` on a host (exec.h, exec_copy_*): SFTP on the
 * host's own connection of the SSH executor (ssh.c), no second login. A copy
 * is a proc of that connection whose steps (sftp_step, called by conn_drive
 * as proc_step is for a command) advance a state machine of non-blocking
 * libssh2 calls, each tried again where libssh2 said EAGAIN. A file streams
 * through one fixed buffer into a temporary name beside its destination,
 * renamed at its end; an existing file of the same size is first compared
 * by its sha256, computed on the host (`openssl dgst -sha256` where it
 * runs, which uses the CPU's SHA instructions, else `sha256sum`: a command
 * on a channel of the same connection) and here on a worker, once per run
 * for all hosts (filehash.c), and left alone when equal. A file larger than
 * SLICE_MIN is written in slices on a worker thread when one is free
 * (sftp_job.c), so that many hosts' encryption runs on as many cores.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/copy.h"
#include "exec/ssh_internal.h"

#define XFER_BUF (256 * 1024) /* libssh2 pipelines a large write as many SFTP packets */
#define CMD_OUT_MAX 4096
#define SLICE_MIN (1024 * 1024) /* a file larger than this is written on a worker, in slices (sftp_job.c) */

/* One entry of a local tree to put on the host, in an order where a directory comes before its contents. */
struct entry {
	char *rel; /* "" for the top */
	char type; /* 'd', 'f', 'l' */
	uint64_t size;
	int mode;
	char *link;
	char hash[65]; /* the sha256 of the file at its destination, when the host told it up front; "" else */
};

enum xstate {
	X_INIT,
	X_TARGET,   /* upload: is dest a directory? */
	X_STALE,    /* temporaries of this destination left by a baton that is gone: listed (stale_cmd) */
	X_STALE_RM, /* and removed */
	X_PREHASH,  /* a directory: the sha256 of every file already there, in one command */
	X_NEXT,     /* the next entry */
	X_MKDIR,
	X_DIRSTAT,
	X_STAT,     /* a file's destination: there, and of the same size? */
	X_HASHED,   /* sha256sum has answered */
	X_CHMOD,
	X_OPEN,
	X_WRITE,
	X_WFAIL,    /* a write failed with the server's catch-all status: is the disk full? */
	X_CLOSE,
	X_CLOSED,
	X_RENAME,
	X_MOVED,    /* mv -f has answered */
	X_FSTAT,    /* fetch: the remote file */
	X_FHASHED,
	X_FOPEN,
	X_READ,
	X_FCLOSE,
	X_CMD,      /* a command on its own channel; then `after` */
	X_CLEANUP,  /* after a failure or a stop: the temporary file closed and removed */
	X_UNLINK,
	X_SHUTDOWN,
	X_END,
};

enum cstep { CS_OPEN, CS_EXEC, CS_READ, CS_CLOSE, CS_FREE };

struct sftp_xfer {
	struct exec_proc *p;
	bool fetch;
	char *src, *dest;
	int mode;
	enum xstate st;
	LIBSSH2_SFTP *sftp;
	LIBSSH2_SFTP_HANDLE *h;
	struct entry *e;
	size_t n, i;
	char *root;   /* remote path of the top entry */
	char *path;   /* remote path of the current entry */
	char *tmp;    /* its temporary name, while it exists */
	bool tmp_local;
	bool existed; /* the destination was there: renamed over with mv -f */
	int fd;
	char *buf;
	size_t len, off;
	uint64_t got, size; /* fetch: bytes read, and the remote size */
	int rmode;          /* fetch: the remote file's bits */
	char *local;        /* fetch: the local destination */
	/* a command */
	LIBSSH2_CHANNEL *ch;
	enum cstep cs;
	char *cmd;
	struct buf out;
	int exit;
	enum xstate after;
	bool cmd_failed; /* the server would not run it */
	bool hashes;     /* the command's output is sha256sum lines for the entries (X_PREHASH) */
	int lh;          /* the local file's sha256 (filehash.c): 1 in lhex, 0 on its way, -1 none */
	char lhex[65];
	size_t *order;   /* entries by rel, for those lines */
	bool stop;
	bool dir_top_created;
	struct xfer_job *job;     /* a slice of X_WRITE is out on a worker (it has fd and buf meanwhile) */
	bool slice_ready;         /* waiting for the end of the drive to send one (sftp_slice_go) */
	bool slice_inline;        /* one could not go: the next step writes on the loop */
	uint64_t slice_seq;       /* when it last had one: the copy that waited longest goes first */
	bool sliced;              /* its results are back, not yet taken: slice */
	struct xfer_slice slice;
};

/* ---- the local tree ---- */

static void add_entry(struct sftp_xfer *x, const char *rel, const struct stat *st, const char *full)
{
	if (x->n % 64 == 0)
		x->e = xrealloc(x->e, (x->n + 64) * sizeof *x->e);
	struct entry *e = &x->e[x->n++];
	*e = (struct entry){xstrdup(rel), S_ISDIR(st->st_mode) ? 'd' : S_ISLNK(st->st_mode) ? 'l' : 'f',
			    (uint64_t)st->st_size, (int)(st->st_mode & 07777), NULL, {0}};
	if (e->type == 'l') {
		char t[4096];
		ssize_t k = readlink(full, t, sizeof t - 1);
		t[k < 0 ? 0 : k] = 0;
		e->link = xstrdup(t);
	}
}

/* Lists src (a directory) below rel; false with *err. */
static bool walk(struct sftp_xfer *x, const char *full, const char *rel, char **err)
{
	DIR *d = opendir(full);
	if (!d) {
		*err = xasprintf("cannot read the directory %s: %s", full, strerror(errno));
		return false;
	}
	struct dirent *de;
	bool ok = true;
	while (ok && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *f = copy_join(full, de->d_name);
		char *r = *rel ? copy_join(rel, de->d_name) : xstrdup(de->d_name);
		struct stat st;
		if (lstat(f, &st) != 0) {
			*err = xasprintf("cannot read %s: %s", f, strerror(errno));
			ok = false;
		} else if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
			*err = xasprintf("%s is not a regular file, a directory or a symlink", f);
			ok = false;
		} else {
			add_entry(x, r, &st, f);
			if (S_ISDIR(st.st_mode))
				ok = walk(x, f, r, err);
		}
		free(f);
		free(r);
	}
	closedir(d);
	return ok;
}

/* ---- errors ---- */

static const char *fx_word(unsigned long e)
{
	switch (e) {
	case LIBSSH2_FX_NO_SUCH_FILE:
	case LIBSSH2_FX_NO_SUCH_PATH:
		return "no such file or directory";
	case LIBSSH2_FX_PERMISSION_DENIED:
		return "permission denied";
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
		return "no space left on the device (disk full)";
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return "disk quota exceeded";
	case LIBSSH2_FX_WRITE_PROTECT:
		return "read-only file system";
	case LIBSSH2_FX_FILE_ALREADY_EXISTS:
		return "already exists";
	case LIBSSH2_FX_NOT_A_DIRECTORY:
		return "not a directory";
	case LIBSSH2_FX_FAILURE:
		return "failure (the server says no more: a full disk is one cause)";
	default:
		return "SFTP error";
	}
}

static void xfer_fail(struct sftp_xfer *x, char *why)
{
	struct exec_proc *p = x->p;
	if (!p->error)
		p->error = xasprintf("%s %s: %s", x->fetch ? "fetch from" : "copy to", p->c->h->name, why);
	free(why);
	x->st = X_CLEANUP;
}

/*
 * The SFTP call just made failed with rc (not EAGAIN): false after failing
 * the connection (a socket error) or the transfer with what, path and the
 * server's status in words.
 */
static bool sftp_err(struct sftp_xfer *x, int rc, const char *what, const char *path)
{
	struct conn *c = x->p->c;
	if (rc != LIBSSH2_ERROR_SFTP_PROTOCOL && socket_error(rc)) {
		conn_fail(c, lost_reason(c->s));
		return false;
	}
	unsigned long e = rc == LIBSSH2_ERROR_SFTP_PROTOCOL ? libssh2_sftp_last_error(x->sftp) : 0;
	if (e)
		xfer_fail(x, xasprintf("%s %s: %s", what, path, fx_word(e)));
	else {
		char *why = session_error(c->s);
		xfer_fail(x, xasprintf("%s %s: %s", what, path, why));
		free(why);
	}
	return false;
}

/* The SFTP status of the last failed call (0 for a non-SFTP error). */
static unsigned long fx(struct sftp_xfer *x, int rc)
{
	return rc == LIBSSH2_ERROR_SFTP_PROTOCOL ? libssh2_sftp_last_error(x->sftp) : 0;
}

/* Where the last failure of a file or directory at path leaves us: the parent missing, or else. */
static bool path_fail(struct sftp_xfer *x, int rc, const char *what, const char *path)
{
	unsigned long e = fx(x, rc);
	if (e == LIBSSH2_FX_NO_SUCH_FILE || e == LIBSSH2_FX_NO_SUCH_PATH) {
		char *d = copy_dir_of(path);
		xfer_fail(x, xasprintf("destination directory %s does not exist", d));
		free(d);
		return false;
	}
	return sftp_err(x, rc, what, path);
}

/* ---- a command on its own channel ---- */

static void shell_word(struct buf *b, const char *s)
{
	buf_addc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			buf_adds(b, "'\\''");
		else
			buf_addc(b, *s);
	}
	buf_addc(b, '\'');
}

static int cmp_rel(const void *a, const void *b, void *ud)
{
	const struct entry *e = ud;
	return strcmp(e[*(const size_t *)a].rel, e[*(const size_t *)b].rel);
}

/* One "HEX  ./REL" line of sha256sum: the entry REL gets the hash (names sha256sum escapes are left out). */
static void take_hash_line(struct sftp_xfer *x, const char *l, size_t n)
{
	if (n < 68 || l[0] == '\\' || l[64] != ' ' || l[65] != ' ' || l[66] != '.' || l[67] != '/')
		return;
	char *rel = xstrndup(l + 68, n - 68);
	size_t lo = 0, hi = x->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(x->e[x->order[mid]].rel, rel);
		if (c == 0) {
			struct entry *e = &x->e[x->order[mid]];
			if (e->type == 'f')
				memcpy(e->hash, l, 64), e->hash[64] = 0;
			break;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	free(rel);
}

/* Output of the X_PREHASH command, in any chunks: complete lines taken, the rest kept (at most a line). */
static void take_hashes(struct sftp_xfer *x, const char *d, size_t n)
{
	buf_add(&x->out, d, n);
	size_t start = 0;
	for (size_t i = 0; i < x->out.len; i++)
		if (x->out.data[i] == '\n') {
			take_hash_line(x, x->out.data + start, i - start);
			start = i + 1;
		}
	if (x->out.len - start > 8192)
		start = x->out.len; /* a line that long names no entry */
	memmove(x->out.data, x->out.data + start, x->out.len - start);
	x->out.len -= start;
}

/* Runs cmd (taken) on a channel, then goes on at state after with x->out and x->exit. */
static void run_cmd(struct sftp_xfer *x, char *cmd, enum xstate after)
{
	free(x->cmd);
	x->cmd = cmd;
	x->cs = CS_OPEN;
	x->after = after;
	x->exit = -1;
	x->cmd_failed = false;
	buf_reset(&x->out);
	x->st = X_CMD;
}

/* One step of the command; false while it must wait. */
static bool cmd_step(struct sftp_xfer *x)
{
	struct conn *c = x->p->c;
	int rc;
	switch (x->cs) {
	case CS_OPEN:
		x->ch = libssh2_channel_open_session(c->s);
		if (!x->ch) {
			int e = libssh2_session_last_errno(c->s);
			if (e == LIBSSH2_ERROR_EAGAIN)
				return false;
			if (socket_error(e)) {
				conn_fail(c, lost_reason(c->s));
				return false;
			}
			char *why = session_error(c->s);
			xfer_fail(x, xasprintf("the server refused a session for a command (%s); its MaxSessions may be "
					       "lower than max_sessions + 1",
					       why));
			free(why);
			return true;
		}
		x->cs = CS_EXEC;
		/* fall through */
	case CS_EXEC:
		rc = libssh2_channel_exec(x->ch, x->cmd);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc) {
			x->cs = CS_CLOSE;
			x->cmd_failed = true;
			return true;
		}
		x->cs = CS_READ;
		/* fall through */
	case CS_READ:
		for (;;) {
			char b[1024];
			ssize_t r = libssh2_channel_read(x->ch, b, sizeof b);
			if (r == LIBSSH2_ERROR_EAGAIN)
				return false;
			if (r < 0) {
				conn_fail(c, lost_reason(c->s));
				return false;
			}
			if (r == 0 && libssh2_channel_eof(x->ch))
				break;
			if (r == 0)
				return false;
			if (x->hashes)
				take_hashes(x, b, (size_t)r);
			else if (x->out.len < CMD_OUT_MAX)
				buf_add(&x->out, b, (size_t)r);
		}
		x->cs = CS_CLOSE;
		/* fall through */
	case CS_CLOSE:
		rc = libssh2_channel_close(x->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		rc = libssh2_channel_wait_closed(x->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		x->exit = rc == 0 && !x->cmd_failed ? libssh2_channel_get_exit_status(x->ch) : -1;
		x->cs = CS_FREE;
		/* fall through */
	case CS_FREE:
		rc = libssh2_channel_free(x->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		x->ch = NULL;
		x->st = x->after;
		return true;
	}
	return false;
}

/* ---- temporaries left behind ---- */

/* A find(1) -name pattern matching s literally. */
static void name_pattern(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '*' || *s == '?' || *s == '[' || *s == '\\')
			buf_addc(b, '\\');
		buf_addc(b, *s);
	}
}

/*
 * The command listing the temporaries of this copy: beside a file, its own
 * (.NAME.baton-*); in a tree, any under it. Each line "old PATH" (not written
 * for COPY_STALE_MIN minutes) or "new PATH". A host without find lists nothing.
 */
static char *stale_cmd(struct sftp_xfer *x)
{
	struct buf b = {0}, pat = {0};
	bool tree = x->e[0].type == 'd';
	char *dir = tree ? xstrdup(x->root) : copy_dir_of(x->root);
	buf_adds(&pat, ".");
	if (tree)
		buf_adds(&pat, "*");
	else {
		char *base = copy_basename(x->root);
		name_pattern(&pat, base);
		free(base);
	}
	buf_adds(&pat, ".baton-*");
	buf_adds(&b, "command -v find >/dev/null 2>&1 || exit 0; exec find ");
	shell_word(&b, dir);
	buf_adds(&b, tree ? "" : " -maxdepth 1");
	buf_adds(&b, " -name ");
	shell_word(&b, pat.data);
	buf_printf(&b, " \\( -type f -o -type l \\) \\( -mmin +%d -exec printf 'old %%s\\n' {} + -o -exec printf 'new "
		       "%%s\\n' {} + \\) 2>/dev/null",
		   COPY_STALE_MIN);
	free(dir);
	buf_free(&pat);
	return buf_detach(&b);
}

/* rm -f of the stale temporaries X_STALE listed (complete lines only), or NULL: none. */
static char *stale_rm_cmd(struct sftp_xfer *x)
{
	struct buf b = {0};
	const char *p = x->out.data, *end = p + x->out.len;
	bool any = false;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break; /* cut short: not a whole path */
		char *l = xstrndup(p, (size_t)(nl - p));
		bool old = !strncmp(l, "old ", 4);
		if ((old || !strncmp(l, "new ", 4)) && copy_tmp_stale(l + 4, old)) {
			buf_adds(&b, any ? " " : "exec rm -f -- ");
			shell_word(&b, l + 4);
			any = true;
		}
		free(l);
		p = nl + 1;
	}
	buf_reset(&x->out);
	if (!any) {
		buf_free(&b);
		return NULL;
	}
	return buf_detach(&b);
}

/* ---- the transfer ---- */

static void entry_begin(struct sftp_xfer *x)
{
	struct entry *e = &x->e[x->i];
	free(x->path);
	x->path = *e->rel ? copy_join(x->root, e->rel) : xstrdup(x->root);
	x->existed = false;
	if (e->type == 'd')
		x->st = X_MKDIR;
	else if (e->type == 'f')
		x->st = X_STAT;
	else {
		/* a link: made under a temporary name and moved over, by a command */
		struct buf b = {0};
		char *d = copy_dir_of(x->path), *base = copy_basename(x->path);
		char *tmp = xasprintf("%s/.%s.baton-%s-%ld-l", d, base, copy_boot_id(), (long)getpid());
		buf_adds(&b, "t=");
		shell_word(&b, tmp);
		buf_adds(&b, "; [ \"$(readlink -- ");
		shell_word(&b, x->path);
		buf_adds(&b, " 2>/dev/null)\" = ");
		shell_word(&b, e->link);
		buf_adds(&b, " ] && exit 3; rm -f -- \"$t\" && ln -s -- ");
		shell_word(&b, e->link);
		buf_adds(&b, " \"$t\" && mv -f -- \"$t\" ");
		shell_word(&b, x->path);
		buf_adds(&b, " || { rm -f -- \"$t\"; exit 1; }");
		free(d);
		free(base);
		free(tmp);
		run_cmd(x, buf_detach(&b), X_MOVED);
		x->existed = true; /* X_MOVED: exit 3 is "the same link already" */
	}
}

/*
 * The command that prints the sha256 of path on the host: openssl's, which
 * uses the CPU's SHA instructions (4x sha256sum's speed on a 100 MB file),
 * where it is installed and works, else sha256sum; exit 127 with neither.
 */
static char *hash_cmd(const char *path)
{
	struct buf b = {0};
	buf_adds(&b, "command -v openssl >/dev/null 2>&1 && openssl dgst -sha256 -r -- ");
	shell_word(&b, path);
	buf_adds(&b, " 2>/dev/null && exit 0; command -v sha256sum >/dev/null 2>&1 || exit 127; exec sha256sum -- ");
	shell_word(&b, path);
	return buf_detach(&b);
}

/* Does the hash command's output (or the X_PREHASH line's hash) start with hex and a space? */
static bool remote_hash_is(const struct sftp_xfer *x, const char hex[65])
{
	if (x->out.len < 65 || x->out.data[64] != ' ')
		return false;
	for (int i = 0; i < 64; i++)
		if (!strchr("0123456789abcdef", x->out.data[i]) || !x->out.data[i])
			return false;
	return !memcmp(hex, x->out.data, 64);
}

static void local_hash_ready(void *ud)
{
	struct sftp_xfer *x = ud;
	const char *path = x->fetch ? x->local : NULL;
	char *mine = NULL;
	if (!path) {
		const struct entry *e = &x->e[x->i];
		path = mine = *e->rel ? copy_join(x->src, e->rel) : xstrdup(x->src);
	}
	x->lh = filehash_get(x->p->c->X->loop, path, x->lhex, local_hash_ready, x);
	free(mine);
	if (x->lh != 0 && !x->p->c->dead)
		conn_drive(x->p->c);
}

/* The sha256 of the local file at path is asked for (x->lh, x->lhex). */
static void local_hash(struct sftp_xfer *x, const char *path)
{
	filehash_forget(x);
	x->lh = filehash_get(x->p->c->X->loop, path, x->lhex, local_hash_ready, x);
}

static void next_entry(struct sftp_xfer *x)
{
	x->i++;
	x->st = X_NEXT;
}

/* On the loop, a slice being back: its results wait for X_WRITE; the file and the buffer are the copy's again. */
static void slice_back(void *ud, struct xfer_slice *sl)
{
	struct sftp_xfer *x = ud;
	x->job = NULL;
	x->fd = sl->fd;
	x->buf = sl->buf;
	x->len = sl->len;
	x->off = sl->off;
	x->slice = *sl;
	x->sliced = true;
	x->p->st.bytes += sl->bytes;
}

/*
 * X_WRITE's next slice is to go to a worker (sftp_job.c) when it pays: a
 * large file, on a connection carrying no tunnel (the loop uses a jump
 * host's session for those). True: it waits, for the end of the drive
 * (sftp_slice_go, when every other channel of the connection has been
 * stepped), or, with no thread free, for its turn (xfer_job_wait).
 */
static bool slice_want(struct sftp_xfer *x)
{
	struct conn *c = x->p->c;
	if (x->slice_inline) {
		x->slice_inline = false;
		return false;
	}
	if (x->stop || x->e[x->i].size <= SLICE_MIN)
		return false;
	for (size_t i = 0; i < c->n_carries; i++)
		if (c->carries[i])
			return false;
	if (!xfer_job_can(c))
		return xfer_job_wait(c);
	x->slice_ready = true;
	c->slice_ready = true;
	return true;
}

bool sftp_slice_go(struct conn *c)
{
	static uint64_t seq;
	struct sftp_xfer *x = NULL;
	for (struct exec_proc *p = c->procs; p; p = p->next) {
		struct sftp_xfer *y = p->xfer;
		if (!y || !y->slice_ready)
			continue;
		y->slice_ready = false;
		if (y->st == X_WRITE && !y->stop && (!x || y->slice_seq < x->slice_seq))
			x = y;
	}
	if (!x)
		return true;
	struct xfer_slice sl = {.h = x->h, .fd = x->fd, .buf = x->buf, .cap = XFER_BUF, .len = x->len, .off = x->off};
	x->job = xfer_job_start(c, &sl, slice_back, x);
	if (!x->job) {
		x->slice_inline = true;
		return false;
	}
	x->slice_seq = ++seq;
	x->fd = -1; /* the job's until it is back */
	x->buf = NULL;
	return true;
}

static bool upload_step(struct sftp_xfer *x)
{
	struct exec_proc *p = x->p;
	LIBSSH2_SFTP_ATTRIBUTES a;
	int rc;
	switch (x->st) {
	case X_TARGET: {
		size_t dl = strlen(x->dest);
		char *b = copy_basename(x->src);
		bool contents = x->src[strlen(x->src) - 1] == '/';
		if (x->e[0].type == 'd') {
			x->root = contents ? xstrdup(x->dest) : copy_join(x->dest, b);
		} else if (x->dest[dl - 1] == '/') {
			x->root = copy_join(x->dest, b);
		} else {
			rc = libssh2_sftp_stat_ex(x->sftp, x->dest, (unsigned)dl, LIBSSH2_SFTP_STAT, &a);
			if (rc == LIBSSH2_ERROR_EAGAIN) {
				free(b);
				return false;
			}
			bool dir = rc == 0 && (a.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS) && LIBSSH2_SFTP_S_ISDIR(a.permissions);
			x->root = dir ? copy_join(x->dest, b) : xstrdup(x->dest);
		}
		free(b);
		x->i = 0;
		run_cmd(x, stale_cmd(x), X_STALE);
		return true;
	}
	case X_STALE: {
		char *rm = stale_rm_cmd(x);
		if (rm) {
			run_cmd(x, rm, X_STALE_RM);
			return true;
		}
	}
		/* fall through */
	case X_STALE_RM:
		/* what rm said does not matter: a temporary left there is only left there */
		x->st = x->e[0].type == 'd' && x->n > 1 ? X_PREHASH : X_NEXT;
		return true;
	case X_PREHASH: {
		x->order = xcalloc(x->n, sizeof *x->order);
		for (size_t i = 0; i < x->n; i++)
			x->order[i] = i;
		qsort_r(x->order, x->n, sizeof *x->order, cmp_rel, x->e);
		struct buf b = {0};
		buf_adds(&b, "cd -- ");
		shell_word(&b, x->root);
		buf_adds(&b, " 2>/dev/null || exit 0; command -v sha256sum >/dev/null 2>&1 || exit 0; "
			     "exec find . -type f -exec sha256sum -- {} + 2>/dev/null");
		run_cmd(x, buf_detach(&b), X_NEXT);
		x->hashes = true;
		return true;
	}
	case X_NEXT:
		x->hashes = false;
		if (x->i >= x->n) {
			x->st = X_SHUTDOWN;
			return true;
		}
		entry_begin(x);
		return true;
	case X_MKDIR:
		rc = libssh2_sftp_mkdir_ex(x->sftp, x->path, (unsigned)strlen(x->path), x->e[x->i].mode);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc == 0) {
			p->st.changed = true;
			next_entry(x);
			return true;
		}
		if (fx(x, rc) == LIBSSH2_FX_NO_SUCH_FILE || fx(x, rc) == LIBSSH2_FX_NO_SUCH_PATH)
			return path_fail(x, rc, "cannot make the directory", x->path);
		x->st = X_DIRSTAT; /* it may be there already */
		/* fall through */
	case X_DIRSTAT:
		rc = libssh2_sftp_stat_ex(x->sftp, x->path, (unsigned)strlen(x->path), LIBSSH2_SFTP_STAT, &a);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc)
			return path_fail(x, rc, "cannot make the directory", x->path);
		if (!LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
			xfer_fail(x, xasprintf("%s is not a directory", x->path));
			return true;
		}
		next_entry(x);
		return true;
	case X_STAT: {
		const struct entry *e = &x->e[x->i];
		rc = libssh2_sftp_stat_ex(x->sftp, x->path, (unsigned)strlen(x->path), LIBSSH2_SFTP_LSTAT, &a);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		x->existed = rc == 0;
		x->rmode = rc == 0 ? (int)(a.permissions & 07777) : -1;
		if (rc == 0 && LIBSSH2_SFTP_S_ISDIR(a.permissions)) {
			xfer_fail(x, xasprintf("%s is a directory, in the way of the file", x->path));
			return true;
		}
		bool same_size = rc == 0 && LIBSSH2_SFTP_S_ISREG(a.permissions) && (a.flags & LIBSSH2_SFTP_ATTR_SIZE) &&
				 a.filesize == e->size;
		if (same_size) {
			char *local = *e->rel ? copy_join(x->src, e->rel) : xstrdup(x->src);
			local_hash(x, local);
			free(local);
		}
		if (same_size && e->hash[0]) {
			/* told up front (X_PREHASH) */
			buf_reset(&x->out);
			buf_add(&x->out, e->hash, 64);
			buf_adds(&x->out, " ");
			x->exit = 0;
			x->st = X_HASHED;
			return true;
		}
		if (same_size) {
			run_cmd(x, hash_cmd(x->path), X_HASHED);
			return true;
		}
		x->st = X_OPEN;
		return true;
	}
	case X_HASHED: {
		if (x->lh == 0)
			return false; /* the local hash is on its way: local_hash_ready drives us */
		bool same = x->exit == 0 && x->lh == 1 && remote_hash_is(x, x->lhex);
		int want = x->mode >= 0 ? x->mode : x->e[x->i].mode;
		if (!same)
			x->st = X_OPEN;
		else if (x->rmode != want)
			x->st = X_CHMOD;
		else
			next_entry(x);
		return true;
	}
	case X_CHMOD:
		memset(&a, 0, sizeof a);
		a.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
		a.permissions = (unsigned long)(x->mode >= 0 ? x->mode : x->e[x->i].mode);
		rc = libssh2_sftp_stat_ex(x->sftp, x->path, (unsigned)strlen(x->path), LIBSSH2_SFTP_SETSTAT, &a);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc)
			return sftp_err(x, rc, "cannot chmod", x->path);
		p->st.changed = true;
		next_entry(x);
		return true;
	case X_OPEN: {
		const struct entry *e = &x->e[x->i];
		if (!x->tmp) {
			char *local = *e->rel ? copy_join(x->src, e->rel) : xstrdup(x->src);
			x->fd = open(local, O_RDONLY | O_CLOEXEC);
			if (x->fd < 0) {
				xfer_fail(x, xasprintf("cannot read %s: %s", local, strerror(errno)));
				free(local);
				return true;
			}
			free(local);
			x->tmp = copy_tmp_name(x->path);
			x->len = x->off = 0;
			x->sliced = false;
		}
		x->h = libssh2_sftp_open_ex(x->sftp, x->tmp, (unsigned)strlen(x->tmp),
					    LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL, 0600,
					    LIBSSH2_SFTP_OPENFILE);
		if (!x->h) {
			int e2 = libssh2_session_last_errno(p->c->s);
			if (e2 == LIBSSH2_ERROR_EAGAIN)
				return false;
			free(x->tmp); /* never made */
			x->tmp = NULL;
			return path_fail(x, e2, "cannot write", x->path);
		}
		x->st = X_WRITE;
	}
		/* fall through */
	case X_WRITE:
		if (x->sliced) {
			x->sliced = false;
			if (x->slice.read_errno) {
				xfer_fail(x, xasprintf("cannot read the source: %s", strerror(x->slice.read_errno)));
				return true;
			}
			if (x->slice.rc && fx(x, x->slice.rc) == LIBSSH2_FX_FAILURE) {
				x->st = X_WFAIL; /* as below */
				return true;
			}
			if (x->slice.rc)
				return sftp_err(x, x->slice.rc, "cannot write", x->path);
			if (x->slice.eof)
				goto written;
		}
		if (slice_want(x))
			return false; /* the slice goes at the end of the drive */
		for (;;) {
			if (x->stop) {
				xfer_fail(x, xstrdup("stopped"));
				return true;
			}
			if (x->off == x->len) {
				ssize_t r = read(x->fd, x->buf, XFER_BUF);
				if (r < 0 && errno == EINTR)
					continue;
				if (r < 0) {
					xfer_fail(x, xasprintf("cannot read the source: %s", strerror(errno)));
					return true;
				}
				if (r == 0)
					break;
				x->len = (size_t)r;
				x->off = 0;
			}
			ssize_t w = libssh2_sftp_write(x->h, x->buf + x->off, x->len - x->off);
			if (w == LIBSSH2_ERROR_EAGAIN)
				return false;
			if (w < 0 && fx(x, (int)w) == LIBSSH2_FX_FAILURE) {
				/* OpenSSH's server says FAILURE for ENOSPC: ask the file system */
				x->st = X_WFAIL;
				return true;
			}
			if (w < 0)
				return sftp_err(x, (int)w, "cannot write", x->path);
			x->off += (size_t)w;
			p->st.bytes += (uint64_t)w;
		}
	written:
		close(x->fd);
		x->fd = -1;
		x->st = X_CLOSE;
		/* fall through */
	case X_CLOSE:
		/* the mode, whatever the server's umask made of 0600 */
		memset(&a, 0, sizeof a);
		a.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS;
		a.permissions = (unsigned long)(x->mode >= 0 ? x->mode : x->e[x->i].mode);
		rc = libssh2_sftp_fstat_ex(x->h, &a, 1);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc)
			return sftp_err(x, rc, "cannot chmod", x->path);
		x->st = X_CLOSED;
		/* fall through */
	case X_CLOSED:
		rc = libssh2_sftp_close_handle(x->h);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		x->h = NULL;
		if (rc)
			return sftp_err(x, rc, "cannot write", x->path);
		x->st = X_RENAME;
		/* fall through */
	case X_RENAME:
		if (x->existed) {
			struct buf b = {0};
			buf_adds(&b, "exec mv -f -- ");
			shell_word(&b, x->tmp);
			buf_addc(&b, ' ');
			shell_word(&b, x->path);
			run_cmd(x, buf_detach(&b), X_MOVED);
			return true;
		}
		rc = libssh2_sftp_rename_ex(x->sftp, x->tmp, (unsigned)strlen(x->tmp), x->path, (unsigned)strlen(x->path),
					    LIBSSH2_SFTP_RENAME_OVERWRITE | LIBSSH2_SFTP_RENAME_ATOMIC |
						    LIBSSH2_SFTP_RENAME_NATIVE);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc) {
			x->existed = true; /* made meanwhile: moved over instead */
			return true;
		}
		free(x->tmp);
		x->tmp = NULL;
		p->st.changed = true;
		next_entry(x);
		return true;
	case X_MOVED:
		if (x->e[x->i].type == 'l' && x->exit == 3) {
			next_entry(x); /* the same link already */
			return true;
		}
		if (x->exit != 0) {
			xfer_fail(x, x->exit < 0 ? xasprintf("cannot put %s in place: the server would not run mv", x->path)
						 : xasprintf("cannot put %s in place: mv -f exited %d", x->path, x->exit));
			return true;
		}
		free(x->tmp);
		x->tmp = NULL;
		p->st.changed = true;
		next_entry(x);
		return true;
	case X_WFAIL: {
		LIBSSH2_SFTP_STATVFS v;
		rc = libssh2_sftp_fstatvfs(x->h, &v);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		bool full = rc == 0 && (v.f_bavail == 0 || v.f_bavail * v.f_frsize < XFER_BUF);
		char *d = copy_dir_of(x->path);
		xfer_fail(x, full ? xasprintf("cannot write %s: no space left on the device (disk full: %s)", x->path, d)
				  : xasprintf("cannot write %s: the server refused the write", x->path));
		free(d);
		return true;
	}
	default:
		return false;
	}
}

static bool local_fail(struct sftp_xfer *x, const char *what, const char *path, int e)
{
	if (e == ENOENT) {
		char *d = copy_dir_of(path);
		xfer_fail(x, xasprintf("destination directory %s does not exist", d));
		free(d);
	} else
		xfer_fail(x, xasprintf("%s %s: %s", what, path, e == EACCES ? "permission denied" : e == ENOSPC ? "no space left on the device (disk full)" : strerror(e)));
	return true;
}

static bool fetch_step(struct sftp_xfer *x)
{
	struct exec_proc *p = x->p;
	LIBSSH2_SFTP_ATTRIBUTES a;
	int rc;
	switch (x->st) {
	case X_FSTAT: {
		rc = libssh2_sftp_stat_ex(x->sftp, x->src, (unsigned)strlen(x->src), LIBSSH2_SFTP_STAT, &a);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc) {
			unsigned long e = fx(x, rc);
			if (e == LIBSSH2_FX_NO_SUCH_FILE || e == LIBSSH2_FX_NO_SUCH_PATH) {
				xfer_fail(x, xasprintf("%s does not exist there", x->src));
				return true;
			}
			return sftp_err(x, rc, "cannot read", x->src);
		}
		if (!LIBSSH2_SFTP_S_ISREG(a.permissions)) {
			xfer_fail(x, xasprintf("%s is not a regular file (fetch takes one file)", x->src));
			return true;
		}
		x->size = a.filesize;
		x->rmode = (int)(a.permissions & 07777);
		/* dest is this host's directory: made here when its parent exists */
		struct stat ls;
		if (stat(x->dest, &ls) != 0 && mkdir(x->dest, 0777) != 0 && errno != EEXIST)
			return local_fail(x, "cannot make", x->dest, errno);
		char *b = copy_basename(x->src);
		x->local = copy_join(x->dest, b);
		free(b);
		if (stat(x->local, &ls) == 0 && S_ISREG(ls.st_mode) && (uint64_t)ls.st_size == x->size) {
			local_hash(x, x->local);
			run_cmd(x, hash_cmd(x->src), X_FHASHED);
			return true;
		}
		x->st = X_FOPEN;
		return true;
	}
	case X_FHASHED: {
		if (x->lh == 0)
			return false; /* the local hash is on its way: local_hash_ready drives us */
		if (x->exit == 0 && x->lh == 1 && remote_hash_is(x, x->lhex)) {
			x->st = X_SHUTDOWN;
			return true;
		}
		x->st = X_FOPEN;
		return true;
	}
	case X_FOPEN:
		x->h = libssh2_sftp_open_ex(x->sftp, x->src, (unsigned)strlen(x->src), LIBSSH2_FXF_READ, 0,
					    LIBSSH2_SFTP_OPENFILE);
		if (!x->h) {
			int e2 = libssh2_session_last_errno(p->c->s);
			if (e2 == LIBSSH2_ERROR_EAGAIN)
				return false;
			return sftp_err(x, e2, "cannot read", x->src);
		}
		{
			char *d = x->dest, *base = copy_basename(x->src);
			x->tmp = xasprintf("%s/.%s.baton-XXXXXX", d, base);
			free(base);
			x->tmp_local = true;
			x->fd = mkostemp(x->tmp, O_CLOEXEC);
			if (x->fd < 0) {
				int e = errno;
				free(x->tmp);
				x->tmp = NULL;
				return local_fail(x, "cannot write in", x->dest, e);
			}
		}
		x->st = X_READ;
		/* fall through */
	case X_READ:
		for (;;) {
			if (x->stop) {
				xfer_fail(x, xstrdup("stopped"));
				return true;
			}
			ssize_t r = libssh2_sftp_read(x->h, x->buf, XFER_BUF);
			if (r == LIBSSH2_ERROR_EAGAIN)
				return false;
			if (r < 0)
				return sftp_err(x, (int)r, "cannot read", x->src);
			if (r == 0)
				break;
			for (ssize_t off = 0; off < r;) {
				ssize_t w = write(x->fd, x->buf + off, (size_t)(r - off));
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0)
					return local_fail(x, "cannot write", x->local, errno);
				off += w;
			}
			p->st.bytes += (uint64_t)r;
		}
		x->st = X_FCLOSE;
		/* fall through */
	case X_FCLOSE:
		rc = libssh2_sftp_close_handle(x->h);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		x->h = NULL;
		if (fchmod(x->fd, (mode_t)x->rmode) != 0 || close(x->fd) != 0) {
			x->fd = -1;
			return local_fail(x, "cannot write", x->local, errno);
		}
		x->fd = -1;
		if (rename(x->tmp, x->local) != 0)
			return local_fail(x, "cannot rename to", x->local, errno);
		free(x->tmp);
		x->tmp = NULL;
		p->st.changed = true;
		x->st = X_SHUTDOWN;
		return true;
	default:
		return false;
	}
}

/* After a failure: the half-written file closed and removed, then the SFTP session. */
static bool cleanup_step(struct sftp_xfer *x)
{
	int rc;
	if (x->ch) {
		/* a command was under way: let it go with the session */
		rc = libssh2_channel_close(x->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		while ((rc = libssh2_channel_free(x->ch)) == LIBSSH2_ERROR_EAGAIN)
			return false;
		x->ch = NULL;
	}
	if (x->h) {
		rc = libssh2_sftp_close_handle(x->h);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		x->h = NULL;
	}
	if (x->fd >= 0) {
		close(x->fd);
		x->fd = -1;
	}
	if (x->tmp && x->tmp_local) {
		unlink(x->tmp);
	} else if (x->tmp && x->sftp) {
		rc = libssh2_sftp_unlink_ex(x->sftp, x->tmp, (unsigned)strlen(x->tmp));
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
	}
	free(x->tmp);
	x->tmp = NULL;
	x->st = X_SHUTDOWN;
	return true;
}

bool sftp_step(struct exec_proc *p)
{
	struct sftp_xfer *x = p->xfer;
	struct conn *c = p->c;
	bool progress = false;
	if (p->state == P_DONE)
		return false;
	p->state = P_RUN;
	for (;;) {
		if (c->dead)
			return false;
		bool moved;
		if (x->stop && x->st != X_CLEANUP && x->st != X_SHUTDOWN && x->st != X_END && x->st != X_CMD &&
		    !p->error) {
			xfer_fail(x, xstrdup("stopped"));
		}
		switch (x->st) {
		case X_INIT:
			x->sftp = libssh2_sftp_init(c->s);
			if (!x->sftp) {
				int e = libssh2_session_last_errno(c->s);
				if (e == LIBSSH2_ERROR_EAGAIN)
					return progress;
				if (socket_error(e)) {
					conn_fail(c, lost_reason(c->s));
					return false;
				}
				char *why = session_error(c->s);
				xfer_fail(x, xasprintf("the server offers no SFTP (%s): copy and fetch need its sftp "
						       "subsystem",
						       why));
				free(why);
				x->st = X_END;
				moved = true;
				break;
			}
			x->st = x->fetch ? X_FSTAT : X_TARGET;
			moved = true;
			break;
		case X_CMD:
			moved = cmd_step(x);
			break;
		case X_CLEANUP:
			moved = cleanup_step(x);
			break;
		case X_SHUTDOWN:
			if (x->sftp) {
				int rc = libssh2_sftp_shutdown(x->sftp);
				if (rc == LIBSSH2_ERROR_EAGAIN)
					return progress;
				x->sftp = NULL;
			}
			x->st = X_END;
			moved = true;
			break;
		case X_END:
			if (x->stop && !p->error)
				p->error = xstrdup("stopped");
			p->st.exit_code = p->error ? -1 : 0;
			proc_finish(p);
			return true;
		default:
			moved = x->fetch ? fetch_step(x) : upload_step(x);
			break;
		}
		if (c->dead)
			return false;
		if (!moved)
			return progress;
		progress = true;
	}
}

bool sftp_signal(struct exec_proc *p, int sig)
{
	(void)sig;
	p->xfer->stop = true; /* seen at its next step: the caller has the connection driven */
	if (p->xfer->job)
		xfer_job_cancel(p->xfer->job); /* back soon: the connection is driven then */
	xfer_job_unwait(p->c); /* driven now, to clean up; another copy on it waits again */
	return true;
}

void sftp_xfer_free(struct sftp_xfer *x)
{
	if (!x)
		return;
	filehash_forget(x);
	if (x->job)
		xfer_job_orphan(x->job); /* it has fd and buf, and frees them when it is back */
	if (x->fd >= 0)
		close(x->fd);
	if (x->tmp && x->tmp_local)
		unlink(x->tmp);
	for (size_t i = 0; i < x->n; i++) {
		free(x->e[i].rel);
		free(x->e[i].link);
	}
	free(x->e);
	free(x->order);
	free(x->src);
	free(x->dest);
	free(x->root);
	free(x->path);
	free(x->tmp);
	free(x->local);
	free(x->buf);
	free(x->cmd);
	buf_free(&x->out);
	free(x);
}

struct exec_proc *sftp_copy_start(struct executor *ssh, const struct exec_copy_spec *spec,
				  const struct exec_callbacks *cb, void *ud, char **err)
{
	struct sftp_xfer *x = xcalloc(1, sizeof *x);
	x->fetch = spec->fetch;
	x->src = xstrdup(spec->src);
	x->dest = xstrdup(spec->dest);
	x->mode = spec->mode;
	x->fd = -1;
	x->st = X_INIT;
	if (!x->fetch) {
		struct stat st;
		const char *s = x->src;
		if (lstat(s, &st) != 0 || (S_ISLNK(st.st_mode) && s[strlen(s) - 1] == '/' && stat(s, &st) != 0)) {
			*err = xasprintf("cannot read %s: %s", s, strerror(errno));
			sftp_xfer_free(x);
			return NULL;
		}
		add_entry(x, "", &st, s);
		if (S_ISDIR(st.st_mode) && !walk(x, s, "", err)) {
			sftp_xfer_free(x);
			return NULL;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) {
			*err = xasprintf("%s is not a regular file, a directory or a symlink", s);
			sftp_xfer_free(x);
			return NULL;
		}
	}
	x->buf = xmalloc(XFER_BUF);
	struct exec_proc *p = proc_add((struct ssh *)ssh, spec->host, cb, ud, err);
	if (!p) {
		sftp_xfer_free(x);
		return NULL;
	}
	p->xfer = x;
	x->p = p;
	return p;
}

void sftp_progress(const struct exec_proc *p, uint64_t *bytes, int64_t *total)
{
	const struct sftp_xfer *x = p->xfer;
	*bytes = p->st.bytes;
	*total = -1;
	if (!x)
		return;
	if (x->fetch && x->local)
		*total = (int64_t)x->size; /* known once the remote file was looked at */
	else if (!x->fetch && x->n == 1 && x->e[0].type == 'f')
		*total = (int64_t)x->e[0].size;
}
