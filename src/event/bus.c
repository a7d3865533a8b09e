/*
 * bus.c — stamps events and hands them to the sinks; masks secrets first so
 * that no sink can write one.
 */
#include <fcntl.h>
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
					    "barrier.release"};
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
};

/* What masking an event allocated, freed once every sink has seen it. */
struct masked {
	struct buf text[ARRAY_LEN(text_fields) + 1]; /* the fields, then the output line */
	char **names;                                /* instance names, when one held a secret */
	size_t n_names;
};

/* Masks the host names of a batch event: e points at masked copies (in m) when any held a secret. */
static void mask_names(const struct bus *b, struct event *e, struct masked *m)
{
	char **v = xcalloc(e->n_instances + 1, sizeof *v);
	bool any = false;
	for (size_t k = 0; k < e->n_instances; k++) {
		struct buf o = {0};
		any |= mask_secrets(e->instance_names[k], strlen(e->instance_names[k]), b->secrets, b->n_secrets, &o);
		v[k] = buf_detach(&o);
	}
	m->names = v;
	m->n_names = e->n_instances;
	if (any)
		e->instance_names = (const char *const *)v;
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
	if (e->instance_names)
		mask_names(b, e, m);
}

void bus_emit(struct bus *b, struct event *e)
{
	if (!b->n)
		return;
	e->seq = ++b->seq;
	clock_iso(e->ts);
	e->run_id = b->run_id;
	struct masked m = {0};
	if (b->n_secrets)
		mask_event(b, e, &m);
	for (size_t i = 0; i < b->n; i++)
		b->sinks[i]->emit(b->sinks[i], e);
	for (size_t i = 0; i < ARRAY_LEN(m.text); i++)
		buf_free(&m.text[i]);
	for (size_t i = 0; i < m.n_names; i++)
		free(m.names[i]);
	free(m.names);
}

void bus_tick(struct bus *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->sinks[i]->tick)
			b->sinks[i]->tick(b->sinks[i]);
}

void bus_flush(struct bus *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->sinks[i]->flush)
			b->sinks[i]->flush(b->sinks[i]);
}

void bus_close(struct bus *b)
{
	for (size_t i = 0; i < b->n; i++)
		b->sinks[i]->close(b->sinks[i]);
	free(b->sinks);
	free(b->run_id);
	memset(b, 0, sizeof *b);
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
