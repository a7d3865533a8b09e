/*
 * output.c — a command's $BATON_OUTPUT file (plan-format.md section 6): the
 * KEY=VALUE lines and KEY<<DELIM blocks it may write there, parsed once the
 * command has ended, as GitHub Actions parses $GITHUB_OUTPUT. Locally the
 * file lives in a private directory per run; remotely the wrapper makes one
 * with mktemp and ssh.c reads it back over the same connection (the shell
 * words for both are here, so ssh.c only carries them).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/output.h"

static bool key_ok(const char *s, size_t n)
{
	if (!n || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* The line from *pos (without its "\n" or "\r\n"); false at the end. */
static bool next_line(const char *d, size_t len, size_t *pos, const char **line, size_t *n)
{
	if (*pos >= len)
		return false;
	const char *s = d + *pos;
	const char *nl = memchr(s, '\n', len - *pos);
	size_t l = nl ? (size_t)(nl - s) : len - *pos;
	*pos += l + (nl ? 1 : 0);
	if (l && s[l - 1] == '\r')
		l--;
	*line = s;
	*n = l;
	return true;
}

/* A line as a message shows it: at most 40 bytes, unprintable bytes escaped. */
static void shown(struct buf *b, const char *s, size_t n)
{
	str_visible(b, s, n < 40 ? n : 40);
	if (n > 40)
		buf_adds(b, "...");
}

json_t *exec_output_parse(const char *data, size_t len, char **err)
{
	json_t *o = json_object();
	size_t pos = 0, lineno = 0;
	const char *line;
	size_t n;
	while (next_line(data, len, &pos, &line, &n)) {
		lineno++;
		if (!n)
			continue;
		const char *eq = memchr(line, '=', n);
		const char *hd = NULL;
		for (size_t i = 0; i + 1 < n && !hd; i++)
			if (line[i] == '<' && line[i + 1] == '<')
				hd = line + i;
		const char *key = line;
		size_t klen = eq && (!hd || eq < hd) ? (size_t)(eq - line) : hd ? (size_t)(hd - line) : n;
		if (!eq && !hd) {
			struct buf b = {0};
			shown(&b, line, n);
			*err = xasprintf("$BATON_OUTPUT line %zu: expected KEY=VALUE or KEY<<DELIMITER, got '%s'", lineno,
					 b.data ? b.data : "");
			buf_free(&b);
			json_decref(o);
			return NULL;
		}
		if (!key_ok(key, klen)) {
			struct buf b = {0};
			shown(&b, key, klen);
			*err = xasprintf("$BATON_OUTPUT line %zu: '%s' is not a valid output name (letters, digits, _ and -, "
					 "not starting with a digit or -)",
					 lineno, b.data ? b.data : "");
			buf_free(&b);
			json_decref(o);
			return NULL;
		}
		char *k = xstrndup(key, klen);
		json_t *v;
		if (eq && (!hd || eq < hd)) {
			v = json_stringn_nocheck(eq + 1, n - klen - 1);
		} else {
			const char *delim = hd + 2;
			size_t dlen = n - klen - 2, start = lineno;
			if (!dlen) {
				*err = xasprintf("$BATON_OUTPUT line %zu: '%s<<' needs a delimiter after '<<'", lineno, k);
				free(k);
				json_decref(o);
				return NULL;
			}
			struct buf val = {0};
			bool closed = false, first = true;
			while (next_line(data, len, &pos, &line, &n)) {
				lineno++;
				if (n == dlen && !memcmp(line, delim, dlen)) {
					closed = true;
					break;
				}
				if (!first)
					buf_addc(&val, '\n');
				buf_add(&val, line, n);
				first = false;
			}
			if (!closed) {
				struct buf b = {0};
				shown(&b, delim, dlen);
				*err = xasprintf("$BATON_OUTPUT line %zu: the block '%s<<%s' has no line '%s' to end it", start,
						 k, b.data ? b.data : "", b.data ? b.data : "");
				buf_free(&b);
				buf_free(&val);
				free(k);
				json_decref(o);
				return NULL;
			}
			v = json_stringn_nocheck(val.data ? val.data : "", val.len);
			buf_free(&val);
		}
		json_object_set_new(o, k, v ? v : json_string(""));
		free(k);
	}
	return o;
}

/* ---- locally: a private directory per run ---- */

char *exec_outdir_file(struct exec_outdir *o, char **err)
{
	if (!o->dir) {
		const char *tmp = getenv("TMPDIR");
		char *tpl = xasprintf("%s/baton-out.XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(tpl)) { /* mode 0700 */
			*err = xasprintf("cannot create a directory for $BATON_OUTPUT (%s): %s", tpl, strerror(errno));
			free(tpl);
			return NULL;
		}
		o->dir = tpl;
	}
	char *path = xasprintf("%s/%lu", o->dir, ++o->next);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*err = xasprintf("cannot create %s for $BATON_OUTPUT: %s", path, strerror(errno));
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

bool exec_output_read(const char *path, struct buf *out, char **err)
{
	buf_reset(out);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return true; /* the command removed it: no outputs */
		*err = xasprintf("cannot read $BATON_OUTPUT (%s): %s", path, strerror(errno));
		return false;
	}
	struct stat sb;
	bool ok = fstat(fd, &sb) == 0;
	if (ok && S_ISREG(sb.st_mode) && sb.st_size > EXEC_OUTPUT_MAX) {
		*err = exec_output_too_big();
		close(fd);
		unlink(path);
		return false;
	}
	char chunk[65536];
	while (ok) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = n == 0;
			break;
		}
		if (out->len + (size_t)n > EXEC_OUTPUT_MAX) {
			*err = exec_output_too_big();
			close(fd);
			unlink(path);
			return false;
		}
		buf_add(out, chunk, (size_t)n);
	}
	if (!ok)
		*err = xasprintf("cannot read $BATON_OUTPUT (%s): %s", path, strerror(errno));
	close(fd);
	unlink(path);
	return ok;
}

char *exec_output_too_big(void)
{
	return xstrdup("$BATON_OUTPUT holds more than 1 MiB, the most baton reads back; write large results to a file "
		       "and pass its name as an output");
}

void exec_outdir_remove(struct exec_outdir *o)
{
	if (!o->dir)
		return;
	DIR *d = opendir(o->dir);
	if (d) {
		/* files of commands that ended with the run (cancelled, failed to start) */
		struct dirent *de;
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
				char *p = xasprintf("%s/%s", o->dir, de->d_name);
				unlink(p);
				free(p);
			}
		closedir(d);
	}
	rmdir(o->dir);
	free(o->dir);
	o->dir = NULL;
}

/* ---- remotely: the wrapper's words, and the command that reads the file back ---- */

const char *exec_output_remote_setup(bool want)
{
	/* the file's name follows the pgid on the marker line: `printf ... "$$" "$BATON_OUTPUT"` */
	return want ? "BATON_OUTPUT=$(umask 077; mktemp \"${TMPDIR:-/tmp}/baton-out.XXXXXX\" 2>/dev/null) || "
		      "BATON_OUTPUT=; export BATON_OUTPUT; "
		    : "BATON_OUTPUT=/dev/null; export BATON_OUTPUT; ";
}

char *exec_output_fetch_command(const char *path)
{
	struct buf q = {0};
	shell_quote(&q, path, strlen(path));
	char *cmd = xasprintf("cat -- %s 2>/dev/null; rm -f -- %s", q.data, q.data);
	buf_free(&q);
	return cmd;
}

/* True when a name the host reported can be a file made by mktemp (absolute, no control bytes). */
static bool path_ok(const char *s, size_t n)
{
	if (!n || s[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20)
			return false;
	return true;
}

void exec_rout_marker(struct exec_rout *o, const char *s, size_t n, const char *host)
{
	if (!o->want || o->path || o->error)
		return;
	if (s && n > 1 && s[0] == ' ' && path_ok(s + 1, n - 1))
		o->path = xstrndup(s + 1, n - 1);
	else if (s)
		o->error = xasprintf("$BATON_OUTPUT: no file could be made on %s (mktemp failed)", host);
	else
		o->error = xasprintf("$BATON_OUTPUT: %s did not say where its file is", host);
}

void exec_rout_take(struct exec_rout *o, const char *d, size_t n)
{
	if (o->over)
		return;
	if (o->data.len + n > EXEC_OUTPUT_MAX) {
		o->over = true;
		buf_free(&o->data);
		return;
	}
	buf_add(&o->data, d, n);
}

void exec_rout_fetched(struct exec_rout *o, const char *error, const char *host)
{
	o->state = ROUT_DONE;
	if (error && !o->error)
		o->error = xasprintf("$BATON_OUTPUT could not be read back from %s: %s", host, error);
}

void exec_rout_status(struct exec_rout *o, struct exec_status *st)
{
	if (!o->want)
		return;
	if (o->over && !o->error)
		o->error = exec_output_too_big();
	if (o->error) {
		st->output_error = o->error;
	} else if (o->state == ROUT_DONE) {
		st->output = o->data.data ? o->data.data : "";
		st->output_len = o->data.len;
	}
}

void exec_rout_free(struct exec_rout *o)
{
	buf_free(&o->data);
	free(o->path);
	free(o->error);
}
