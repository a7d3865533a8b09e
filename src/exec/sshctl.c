/*
 * sshctl.c — the request queue and line protocol of baton's own shell on an
 * SSH host (see sshctl.h). Each request is one line of sh that ends by
 * printing "ID ANSWER"; answers come back in order, but are matched by ID,
 * so a stray line the shell prints cannot shift them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/sshctl.h"

#define LINE_MAX_BYTES 256 /* an answer is a few digits; anything longer is not one */

struct sshctl_req {
	long id;
	sshctl_done_fn *done;
	void *ud;
	struct sshctl_req *next;
};

/* Queues a request: line is its shell text, which echoes "ID ANSWER" for the next id. */
static void queue(struct sshctl *s, sshctl_done_fn *done, void *ud, const char *line)
{
	struct sshctl_req *r = xcalloc(1, sizeof *r);
	r->id = ++s->next_id;
	r->done = done;
	r->ud = ud;
	if (s->tail)
		s->tail->next = r;
	else
		s->head = r;
	s->tail = r;
	buf_adds(&s->out, line);
}

void sshctl_kill(struct sshctl *s, long pgid, const char *sig, sshctl_done_fn *done, void *ud)
{
	char line[128];
	snprintf(line, sizeof line, "kill -s %s -- -%ld 2>/dev/null; echo '%ld 1'\n", sig, pgid, s->next_id + 1);
	queue(s, done, ud, line);
}

void sshctl_reap(struct sshctl *s, long pgid, sshctl_done_fn *done, void *ud)
{
	char line[160];
	long id = s->next_id + 1;
	snprintf(line, sizeof line,
		 "if kill -0 %ld 2>/dev/null; then echo '%ld 0'; else kill -s KILL -- -%ld 2>/dev/null; echo '%ld 1'; fi\n",
		 pgid, id, pgid, id);
	queue(s, done, ud, line);
}

void sshctl_alive(struct sshctl *s, long pid, sshctl_done_fn *done, void *ud)
{
	char line[128];
	long id = s->next_id + 1;
	snprintf(line, sizeof line, "if kill -0 %ld 2>/dev/null; then echo '%ld 1'; else echo '%ld 0'; fi\n", pid, id,
		 id);
	queue(s, done, ud, line);
}

const char *sshctl_output(const struct sshctl *s, size_t *len)
{
	*len = s->out.len - s->out_off;
	return *len ? s->out.data + s->out_off : NULL;
}

void sshctl_wrote(struct sshctl *s, size_t n)
{
	s->out_off += n;
	if (s->out_off >= s->out.len) {
		buf_reset(&s->out);
		s->out_off = 0;
	}
}

/* One answer line: completes the request it names, and any older one left without an answer. */
static void answer(struct sshctl *s, const char *line)
{
	long id, v;
	char extra;
	if (sscanf(line, "%ld %ld%c", &id, &v, &extra) != 2 || (v != 0 && v != 1))
		return; /* not an answer of ours */
	while (s->head && s->head->id <= id) {
		struct sshctl_req *r = s->head;
		s->head = r->next;
		if (!s->head)
			s->tail = NULL;
		if (r->done)
			r->done(r->ud, r->id == id ? (int)v : -1);
		free(r);
	}
}

void sshctl_input(struct sshctl *s, const char *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (data[i] != '\n') {
			if (s->line.len < LINE_MAX_BYTES)
				buf_addc(&s->line, data[i]);
			else
				s->overlong = true;
			continue;
		}
		if (!s->overlong && s->line.len)
			answer(s, s->line.data);
		buf_reset(&s->line);
		s->overlong = false;
	}
}

bool sshctl_idle(const struct sshctl *s)
{
	return !s->head && s->out_off >= s->out.len;
}

void sshctl_forget(struct sshctl *s, void *ud)
{
	for (struct sshctl_req *r = s->head; r; r = r->next)
		if (r->ud == ud)
			r->done = NULL;
}

void sshctl_abort(struct sshctl *s)
{
	struct sshctl_req *r = s->head;
	s->head = s->tail = NULL; /* a callback may queue anew */
	buf_free(&s->out);
	buf_free(&s->line);
	s->out_off = 0;
	s->overlong = false;
	while (r) {
		struct sshctl_req *next = r->next;
		if (r->done)
			r->done(r->ud, -1);
		free(r);
		r = next;
	}
}
