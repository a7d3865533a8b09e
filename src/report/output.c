/*
 * output.c — where reports go: files opened before the run (a temporary
 * name renamed into place when written), the GitHub job summary (appended),
 * and the live sink that writes them when the run ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/internal.h"

bool report_write(FILE *f, enum report_format fmt, const struct report *r, char **err)
{
	if (fmt == REPORT_HTML) {
		json_t *d = report_data(r);
		bool ok = report_html_write(f, d, err);
		json_decref(d);
		return ok;
	}
	struct buf b = {0};
	if (fmt == REPORT_JUNIT)
		report_junit(&b, r);
	else
		report_markdown(&b, r);
	bool ok = !b.len || fwrite(b.data, 1, b.len, f) == b.len;
	if (!ok)
		*err = xasprintf("%s", strerror(errno ? errno : EIO));
	buf_free(&b);
	return ok;
}

struct report_file {
	enum report_format fmt;
	char *path, *tmp; /* tmp NULL: standard output */
	FILE *f;
};

const char *report_file_path(const struct report_file *f)
{
	return f->path;
}

struct report_file *report_file_open(enum report_format fmt, const char *path, char **err)
{
	struct report_file *rf = xcalloc(1, sizeof *rf);
	rf->fmt = fmt;
	rf->path = xstrdup(path);
	if (!strcmp(path, "-")) {
		rf->f = stdout;
		return rf;
	}
	struct stat st;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		*err = xasprintf("%s: %s", path, strerror(EISDIR));
		goto fail;
	}
	char *d = xstrdup(path), *bn = xstrdup(path);
	rf->tmp = xasprintf("%s/.%s.XXXXXX", dirname(d), basename(bn));
	free(d);
	free(bn);
	int fd = mkostemp(rf->tmp, O_CLOEXEC);
	if (fd < 0) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		free(rf->tmp);
		rf->tmp = NULL;
		goto fail;
	}
	rf->f = fdopen(fd, "w");
	if (!rf->f) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		close(fd);
		goto fail;
	}
	return rf;
fail:
	report_file_discard(rf);
	return NULL;
}

void report_file_discard(struct report_file *rf)
{
	if (!rf)
		return;
	if (rf->tmp) {
		if (rf->f)
			fclose(rf->f);
		unlink(rf->tmp);
	}
	free(rf->tmp);
	free(rf->path);
	free(rf);
}

void report_file_release(struct report_file *rf)
{
	if (!rf)
		return;
	if (rf->tmp && rf->f)
		fclose(rf->f);
	free(rf->tmp);
	free(rf->path);
	free(rf);
}

bool report_file_commit(struct report_file *rf, const struct report *r, char **err)
{
	char *why = NULL;
	bool ok = report_write(rf->f, rf->fmt, r, &why);
	if (ok && (fflush(rf->f) != 0 || ferror(rf->f))) {
		ok = false;
		why = xasprintf("%s", strerror(errno ? errno : EIO));
	}
	if (ok && rf->tmp) {
		FILE *f = rf->f;
		rf->f = NULL;
		if (fclose(f) != 0) {
			ok = false;
			why = xasprintf("%s", strerror(errno));
		} else if (rename(rf->tmp, rf->path) != 0) {
			ok = false;
			why = xasprintf("%s", strerror(errno));
		} else {
			free(rf->tmp);
			rf->tmp = NULL; /* in place: nothing to remove */
		}
	}
	if (!ok)
		*err = xasprintf("%s: %s", rf->path, why ? why : "cannot write");
	free(why);
	report_file_discard(rf);
	return ok;
}

bool report_append_summary(const char *path, const struct report *r, char **err)
{
	struct buf b = {0};
	report_markdown(&b, r);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
	bool ok = fd >= 0;
	/* one write: the summary is not interleaved with another writer's */
	for (size_t off = 0; ok && off < b.len;) {
		ssize_t n = write(fd, b.data + off, b.len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = false;
			break;
		}
		off += (size_t)n;
	}
	if (!ok)
		*err = xasprintf("%s: %s", path, strerror(errno ? errno : EIO));
	if (fd >= 0 && close(fd) != 0 && ok) {
		ok = false;
		*err = xasprintf("%s: %s", path, strerror(errno));
	}
	buf_free(&b);
	return ok;
}

/* --- the live sink --- */

struct report_sink {
	struct sink base;
	struct report *r;
	struct report_file **files;
	size_t n;
	char *step_summary;
	struct bus *bus;
};

static void rs_emit(struct sink *s, const struct event *e)
{
	report_feed(((struct report_sink *)s)->r, e);
}

static void rs_close(struct sink *s)
{
	struct report_sink *R = (struct report_sink *)s;
	for (size_t i = 0; i < R->n; i++) {
		char *err = NULL;
		if (!report_file_commit(R->files[i], R->r, &err))
			bus_warn(R->bus, true, NULL, "report %s", err);
		free(err);
	}
	if (R->step_summary) {
		char *err = NULL;
		if (!report_append_summary(R->step_summary, R->r, &err))
			bus_warn(R->bus, true, NULL, "GITHUB_STEP_SUMMARY %s", err);
		free(err);
	}
	report_free(R->r);
	free(R->files);
	free(R->step_summary);
	free(R);
}

struct sink *report_sink_new(struct report_file **files, size_t n, const char *step_summary, struct bus *bus)
{
	struct report_sink *R = xcalloc(1, sizeof *R);
	R->base.emit = rs_emit;
	R->base.close = rs_close;
	R->r = report_new();
	R->files = xmalloc((n ? n : 1) * sizeof *R->files);
	if (n)
		memcpy(R->files, files, n * sizeof *files);
	R->n = n;
	R->step_summary = step_summary ? xstrdup(step_summary) : NULL;
	R->bus = bus;
	return &R->base;
}
