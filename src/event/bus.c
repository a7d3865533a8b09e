/*
 * bus.c — stamps events and hands them to the sinks; masks secrets first so
 * that no sink can write one. Warnings about the outputs themselves (a write
 * that failed) come back through here as `warning` events.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "event/event.h"
#include "plan/plan.h"
#include "util/util.h"

const char *status_name(enum status s)
{
	static const char *const names[] = {"success", "failed", "timeout", "cancelled", "skipped"};
	return s < ST__COUNT ? names[s] : "unknown";
}

const char *event_type_name(enum event_type t)
{
	static const char *const names[] = {"run.start",   "step.start",    "step.end",     "task.start",
					    "task.output", "task.retry",    "task.end",     "progress",
					    "run.end",     "batch.start",   "batch.end",    "barrier.wait",
					    "barrier.release", "warning",     "task.process", "plan.task",
					    "run.cancel", "approve.wait", "approve.end", "task.transfer"};
	return names[t];
}

void bus_init(struct bus *b, const char *run_id, const char *const *secrets, size_t n_secrets)
{
	memset(b, 0, sizeof *b);
	b->run_id = xstrdup(run_id);
	b->secrets = secrets;
	b->n_secrets = n_secrets;
}

void bus_add(struct bus *b, struct sink *s)
{
	b->sinks = xrealloc(b->sinks, (b->n + 1) * sizeof *b->sinks);
	b->sinks[b->n++] = s;
}

/*
 * The event's string fields that can hold text from a plan, a value or a
 * command: every one but those baton writes from its own vocabulary (type,
 * kind, status, stream) or makes up (run id, timestamp). A new string field
 * of struct event belongs here, so that no sink can ever write a secret.
 */
static const size_t text_fields[] = {
	offsetof(struct event, plan),    offsetof(struct event, name),	 offsetof(struct event, step),
	offsetof(struct event, task),    offsetof(struct event, host),	 offsetof(struct event, item),
	offsetof(struct event, command), offsetof(struct event, reason), offsetof(struct event, barrier),
	offsetof(struct event, message), offsetof(struct event, env),	 offsetof(struct event, label),
	offsetof(struct event, shell),   offsetof(struct event, cwd),	 offsetof(struct event, handler),
	offsetof(struct event, condition), offsetof(struct event, outputs),
};

/* What masking an event allocated, freed once every sink has seen it. */
struct masked {
	struct buf text[ARRAY_LEN(text_fields) + 3]; /* the fields, the output line, captured stdout and stderr */
	char **names[2];                             /* instance names and labels, masked */
	size_t n_names;
};

/*
 * Masks a batch event's list of n names (host names, labels) into *v:
 * returns *v when any held a secret, else the list as it was.
 */
static const char *const *mask_names(const struct bus *b, const char *const *names, size_t n, char ***v)
{
	*v = xcalloc(n + 1, sizeof **v);
	bool any = false;
	for (size_t k = 0; k < n; k++) {
		struct buf o = {0};
		any |= mask_secrets(names[k], strlen(names[k]), b->secrets, b->n_secrets, &o);
		(*v)[k] = buf_detach(&o);
	}
	return any ? (const char *const *)*v : names;
}

/* Replaces every secret in e's text by ***, pointing e at masked copies that m holds. */
static void mask_event(const struct bus *b, struct event *e, struct masked *m)
{
	for (size_t i = 0; i < ARRAY_LEN(text_fields); i++) {
		const char **f = (const char **)((char *)e + text_fields[i]);
		if (*f && mask_secrets(*f, strlen(*f), b->secrets, b->n_secrets, &m->text[i]))
			*f = m->text[i].data;
	}
	struct buf *line = &m->text[ARRAY_LEN(text_fields)];
	if (e->line && mask_secrets(e->line, e->line_len, b->secrets, b->n_secrets, line)) {
		e->line = line->data;
		e->line_len = line->len;
	}
	struct buf *out = &m->text[ARRAY_LEN(text_fields) + 1], *err = out + 1;
	if (e->out && mask_secrets(e->out, e->out_len, b->secrets, b->n_secrets, out)) {
		e->out = out->data;
		e->out_len = out->len;
	}
	if (e->err && mask_secrets(e->err, e->err_len, b->secrets, b->n_secrets, err)) {
		e->err = err->data;
		e->err_len = err->len;
	}
	m->n_names = e->n_instances;
	if (e->instance_names)
		e->instance_names = mask_names(b, e->instance_names, e->n_instances, &m->names[0]);
	if (e->labels)
		e->labels = mask_names(b, e->labels, e->n_instances, &m->names[1]);
}

/* Emits the warnings that waited while the bus was busy (none after run.end). */
static void emit_pending(struct bus *b)
{
	while (b->n_pending) {
		char **list = b->pending;
		size_t n = b->n_pending;
		b->pending = NULL;
		b->n_pending = 0;
		b->busy = true; /* a warning that these cause waits for the next round */
		for (size_t i = 0; i < n; i++) {
			struct event w = {.type = EV_WARNING, .message = list[i]};
			bus_emit(b, &w);
			free(list[i]);
		}
		free(list);
		b->busy = false;
	}
}

void bus_warn(struct bus *b, bool lost, FILE *from, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct buf m = {0};
	buf_vprintf(&m, fmt, ap);
	va_end(ap);
	b->lost |= lost;
	struct buf masked = {0};
	if (b->n_secrets && mask_secrets(m.data, m.len, b->secrets, b->n_secrets, &masked)) {
		buf_free(&m);
		m = masked;
	} else {
		buf_free(&masked);
	}
	FILE *err = b->err ? b->err : stderr;
	if (err != from) {
		fprintf(err, "baton: %s\n", m.data);
		fflush(err);
	}
	/*
	 * The event waits for the end of the bus's work in hand, or for its next
	 * flush (every turn of the loop): this may be a sink's write, inside its
	 * FILE, which no event may re-enter.
	 */
	if (b->ended || !b->n) {
		buf_free(&m);
		return;
	}
	b->pending = xrealloc(b->pending, (b->n_pending + 1) * sizeof *b->pending);
	b->pending[b->n_pending++] = buf_detach(&m);
}

void bus_emit(struct bus *b, struct event *e)
{
	if (!b->n || b->ended)
		return;
	bool busy = b->busy;
	b->busy = true;
	e->seq = ++b->seq;
	clock_iso(e->ts);
	e->run_id = b->run_id;
	struct masked m = {0};
	if (b->n_secrets)
		mask_event(b, e, &m);
	if (e->type == EV_RUN_END)
		b->ended = true; /* a warning it causes comes too late for the stream */
	for (size_t i = 0; i < b->n; i++)
		b->sinks[i]->emit(b->sinks[i], e);
	for (size_t i = 0; i < ARRAY_LEN(m.text); i++)
		buf_free(&m.text[i]);
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; m.names[k] && i < m.n_names; i++)
			free(m.names[k][i]);
		free(m.names[k]);
	}
	b->busy = busy;
	if (!busy)
		emit_pending(b);
}

void bus_tick(struct bus *b)
{
	bool busy = b->busy;
	b->busy = true;
	for (size_t i = 0; i < b->n; i++)
		if (b->sinks[i]->tick)
			b->sinks[i]->tick(b->sinks[i]);
	b->busy = busy;
	if (!busy)
		emit_pending(b);
}

void bus_flush(struct bus *b)
{
	bool busy = b->busy;
	b->busy = true;
	for (size_t i = 0; i < b->n; i++)
		if (b->sinks[i]->flush)
			b->sinks[i]->flush(b->sinks[i]);
	b->busy = busy;
	if (!busy && b->n_pending) {
		emit_pending(b);
		bus_flush(b); /* the warnings go out now too; the streams warn once each, so this ends */
	}
}

void bus_barrier(struct bus *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->sinks[i] && b->sinks[i]->barrier) /* NULL: closed by bus_close */
			b->sinks[i]->barrier(b->sinks[i]);
}

void bus_close(struct bus *b)
{
	b->busy = true; /* a sink's last flush may warn: said on err, no more events */
	for (size_t i = 0; i < b->n; i++) {
		/* out of the list first: what a later sink flushes as it closes calls bus_barrier */
		struct sink *s = b->sinks[i];
		b->sinks[i] = NULL;
		s->close(s);
	}
	free(b->sinks);
	free(b->run_id);
	for (size_t i = 0; i < b->n_pending; i++)
		free(b->pending[i]);
	free(b->pending);
	b->sinks = NULL;
	b->n = 0;
	b->run_id = NULL;
	b->pending = NULL;
	b->n_pending = 0;
	b->busy = false;
	b->ended = true;
}

char *event_new_run_id(void)
{
	unsigned char r[3] = {0};
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, r, sizeof r) != (ssize_t)sizeof r) {
		unsigned v = (unsigned)getpid() ^ (unsigned)clock_ms();
		r[0] = (unsigned char)v;
		r[1] = (unsigned char)(v >> 8);
		r[2] = (unsigned char)(v >> 16);
	}
	if (fd >= 0)
		close(fd);
	time_t now = time(NULL);
	struct tm tm;
	char ts[32] = "19700101T000000Z";
	if (gmtime_r(&now, &tm))
		strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
	return xasprintf("%s-%02x%02x%02x", ts, r[0], r[1], r[2]);
}

bool event_kind_is_task(const char *kind)
{
	return !strcmp(kind, "run") || !strcmp(kind, "copy") || !strcmp(kind, "fetch");
}
