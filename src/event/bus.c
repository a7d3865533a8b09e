/*
 * bus.c — stamps events and hands them to the sinks; masks secrets first so
 * that no sink can write one.
 */
#include <fcntl.h>
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

void bus_emit(struct bus *b, struct event *e)
{
	if (!b->n)
		return;
	e->seq = ++b->seq;
	clock_iso(e->ts);
	e->run_id = b->run_id;
	struct buf cmd = {0}, line = {0}, reason = {0}, item = {0};
	if (b->n_secrets) {
		if (e->command && mask_secrets(e->command, strlen(e->command), b->secrets, b->n_secrets, &cmd))
			e->command = cmd.data;
		if (e->line && mask_secrets(e->line, e->line_len, b->secrets, b->n_secrets, &line)) {
			e->line = line.data;
			e->line_len = line.len;
		}
		if (e->reason && mask_secrets(e->reason, strlen(e->reason), b->secrets, b->n_secrets, &reason))
			e->reason = reason.data;
		if (e->item && mask_secrets(e->item, strlen(e->item), b->secrets, b->n_secrets, &item))
			e->item = item.data;
	}
	for (size_t i = 0; i < b->n; i++)
		b->sinks[i]->emit(b->sinks[i], e);
	buf_free(&cmd);
	buf_free(&line);
	buf_free(&reason);
	buf_free(&item);
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
