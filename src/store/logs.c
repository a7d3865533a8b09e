/*
 * logs.c — `baton logs`: a run's output lines from its events.jsonl, as
 * --output plain prints them, or its raw event lines; and following a run
 * that still goes on. The writer appends whole lines, but a reader can see
 * one half-written: only lines that ended are shown, each exactly once.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/internal.h"
#include "util/util.h"

#define FOLLOW_POLL_MS 100

bool store_id_matches(const char *filter, const char *id)
{
	size_t fb = strcspn(filter, "@#"), ib = strcspn(id, "@#");
	if (strncmp(id, filter, fb) || (ib != fb && (ib < fb || id[fb] != '.')))
		return false;
	const char *fs = filter + fb, *is = id + ib;
	size_t n = strlen(fs);
	return !strncmp(is, fs, n) && (!is[n] || is[n] == '@' || is[n] == '#');
}

struct logs {
	FILE *out;
	const struct store_logs_options *o;
	struct buf pending; /* a line not ended yet */
	struct buf vis;
	json_t *labels; /* running tasks' labels, from their task.start: the prefix shows them as plain output does */
	bool ended; /* run.end was read */
};

static bool wanted(const struct logs *L, const char *id)
{
	if (!L->o->n_tasks)
		return true;
	if (!id)
		return false;
	for (size_t i = 0; i < L->o->n_tasks; i++)
		if (store_id_matches(L->o->tasks[i], id))
			return true;
	return false;
}

/* A task.start with a label, or the task.end of a task that had one: the label a task's lines are shown with. */
static void track_label(struct logs *L, const char *s, size_t len, bool start)
{
	json_t *e = json_loadb(s, len, JSON_ALLOW_NUL, NULL);
	const char *task = json_string_value(json_object_get(e, "task"));
	json_t *label = json_object_get(e, "label");
	if (task && start && json_is_string(label))
		json_object_set(L->labels, task, label);
	else if (task && !start)
		json_object_del(L->labels, task);
	json_decref(e);
}

/* One whole event line (no newline). */
static void one_line(struct logs *L, const char *s, size_t len)
{
	/* the envelope comes first and a string's quotes are escaped: these cannot match inside a value */
	if (memmem(s, len, ",\"type\":\"run.end\"", 17))
		L->ended = true;
	bool output = memmem(s, len, ",\"type\":\"task.output\",", 22) != NULL;
	if (!L->o->events && !output) {
		bool start = memmem(s, len, ",\"type\":\"task.start\",", 21) && memmem(s, len, ",\"label\":\"", 10);
		if (start || (json_object_size(L->labels) && memmem(s, len, ",\"type\":\"task.end\",", 19)))
			track_label(L, s, len, start);
		return;
	}
	if (L->o->events && !L->o->n_tasks) {
		fwrite(s, 1, len, L->out);
		fputc('\n', L->out);
		return;
	}
	json_t *e = json_loadb(s, len, JSON_ALLOW_NUL, NULL);
	if (!e)
		return;
	const char *task = json_string_value(json_object_get(e, "task"));
	if (L->o->events) {
		if (wanted(L, task ? task : json_string_value(json_object_get(e, "step")))) {
			fwrite(s, 1, len, L->out);
			fputc('\n', L->out);
		}
	} else if (task && wanted(L, task)) {
		/* as the plain sink prints it: the id and the line made visible, a CR before the newline dropped */
		json_t *line = json_object_get(e, "line");
		const char *text = json_string_value(line);
		size_t n = json_string_length(line);
		if (n && text[n - 1] == '\r')
			n--;
		struct buf id = {0};
		event_display_id(&id, task, json_string_value(json_object_get(L->labels, task)));
		buf_reset(&L->vis);
		buf_addc(&L->vis, '[');
		str_visible(&L->vis, id.data, id.len);
		buf_adds(&L->vis, "] ");
		buf_free(&id);
		if (text)
			str_visible(&L->vis, text, n);
		buf_addc(&L->vis, '\n');
		fwrite(L->vis.data, 1, L->vis.len, L->out);
	}
	json_decref(e);
}

/* Reads what fd holds now and shows every line that ended; false (with errno) on a read error. */
static bool drain(struct logs *L, int fd)
{
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		if (n == 0)
			return true;
		buf_add(&L->pending, chunk, (size_t)n);
		char *start = L->pending.data, *end = start + L->pending.len, *nl;
		while ((nl = memchr(start, '\n', (size_t)(end - start)))) {
			one_line(L, start, (size_t)(nl - start));
			start = nl + 1;
		}
		size_t rest = (size_t)(end - start);
		memmove(L->pending.data, start, rest);
		L->pending.len = rest;
		L->pending.data[rest] = 0;
	}
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int store_logs(FILE *out, struct store *st, const struct store_run *r, const struct store_logs_options *o,
	       char **err)
{
	struct logs L = {.out = out, .o = o, .labels = json_object()};
	char *path = store_events_path(st, r->id);
	/* a crashed run is followed as a live one: to say, at its last line, that it crashed */
	bool live = r->state == RS_RUNNING || r->state == RS_CRASHED;
	int fd = -1, rc = 0;
	for (;;) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		/* a run that has just begun may not have opened its events yet */
		if (fd >= 0 || errno != ENOENT || !o->follow || !live || !store_run_alive(r))
			break;
		pause_ms(FOLLOW_POLL_MS);
	}
	if (fd < 0) {
		if (errno == ENOENT && r->state == RS_RUNNING && !o->follow)
			goto done; /* nothing yet */
		*err = xasprintf("cannot read %s: %s", path, strerror(errno));
		rc = 1;
		goto done;
	}
	for (;;) {
		if (!drain(&L, fd)) {
			*err = xasprintf("cannot read %s: %s", path, strerror(errno));
			rc = 1;
			break;
		}
		if (fflush(out) != 0 || ferror(out)) {
			/* a reader that went away (a pipe into head) is no error to tell */
			if (errno != EPIPE)
				*err = xasprintf("cannot write standard output: %s", strerror(errno));
			rc = 1;
			break;
		}
		if (!o->follow || !live || L.ended)
			break;
		if (!store_run_alive(r)) {
			/* its last lines may have come after the read above */
			if (!drain(&L, fd)) {
				*err = xasprintf("cannot read %s: %s", path, strerror(errno));
				rc = 1;
				break;
			}
			fflush(out);
			if (L.ended)
				break;
			/* ended without its run.end in the file (a write that failed), or crashed */
			struct store_run now;
			char *why = NULL;
			bool found = store_find(st, r->id, NULL, &now, &why);
			free(why);
			if (!found || now.state == RS_CRASHED) {
				*err = xasprintf("run %s crashed: its controller (pid %ld) is gone and the run did not end;"
						 " 'baton resume' re-runs what did not succeed",
						 r->id, r->pid);
				rc = 1;
			}
			store_run_free(&now);
			break;
		}
		pause_ms(FOLLOW_POLL_MS);
	}
	close(fd);
done:
	free(path);
	buf_free(&L.pending);
	buf_free(&L.vis);
	json_decref(L.labels);
	return rc;
}
