/*
 * replay.c — the report model of a recorded run: its events.jsonl, line by
 * line, back into struct event and through report_feed, as the live sink
 * feeds it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static long long num(const json_t *o, const char *k, long long dflt)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static bool parse_type(const char *s, enum event_type *t)
{
	for (int i = EV_RUN_START; s && i <= EV_PLAN_TASK; i++)
		if (!strcmp(s, event_type_name((enum event_type)i))) {
			*t = (enum event_type)i;
			return true;
		}
	return false;
}

static enum status parse_status(const char *s)
{
	for (int i = 0; s && i < ST__COUNT; i++)
		if (!strcmp(s, status_name((enum status)i)))
			return (enum status)i;
	return ST_FAILED;
}

/* Feeds one event line; false when it is not one (skipped). */
static bool feed_line(struct report *r, const char *line, size_t len)
{
	json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return false;
	}
	struct event e = {.exit_code = -1, .tasks = -1};
	const char *ts = str(o, "ts");
	if (!parse_type(str(o, "type"), &e.type) || !ts || strlen(ts) >= sizeof e.ts) {
		json_decref(o);
		return false;
	}
	memcpy(e.ts, ts, strlen(ts) + 1);
	e.seq = (uint64_t)num(o, "seq", 0);
	e.run_id = str(o, "run");
	e.plan = str(o, "plan");
	e.name = str(o, "name");
	e.dry_run = json_is_true(json_object_get(o, "dry_run"));
	e.step = str(o, "step");
	e.kind = str(o, "kind");
	e.status = parse_status(str(o, "status"));
	e.duration_ms = (uint64_t)num(o, "duration_ms", 0);
	e.task = str(o, "task");
	e.host = str(o, "host");
	e.item = str(o, "item");
	e.label = str(o, "label");
	e.attempt = (int)num(o, "attempt", 1);
	e.command = str(o, "command");
	e.stream_stderr = !strcmp(str(o, "stream") ? str(o, "stream") : "", "stderr");
	json_t *l = json_object_get(o, "line");
	e.line = json_string_value(l);
	e.line_len = json_string_length(l);
	e.exit_code = (int)num(o, "exit_code", -1);
	e.signal = (int)num(o, "signal", 0);
	e.delay_ms = (uint64_t)num(o, "delay_ms", 0);
	e.reason = str(o, "reason");
	e.reused = json_is_true(json_object_get(o, "reused"));
	e.tolerated = json_is_true(json_object_get(o, "tolerated"));
	e.batch = (long)num(o, "batch", -1);
	json_t *inst = json_object_get(o, "instances");
	e.n_instances = json_is_array(inst) ? json_array_size(inst) : 0;
	e.failed = (uint64_t)num(o, "failed", 0);
	e.barrier = str(o, "barrier");
	e.arrived = (uint64_t)num(o, "arrived", 0);
	e.expected = (uint64_t)num(o, "expected", 0);
	e.message = str(o, "message");
	if (e.type == EV_RUN_END) {
		e.exit_code_run = (int)num(o, "exit_code", 0);
		json_t *c = json_object_get(o, "counts");
		for (int i = 0; i < ST__COUNT; i++)
			e.counts[i] = (uint64_t)num(c, status_name((enum status)i), 0);
		e.n_tolerated = (uint64_t)num(c, "tolerated", 0);
	}
	report_feed(r, &e);
	json_decref(o);
	return true;
}

bool report_replay(struct report *r, const char *path, char **err)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		*err = xasprintf("%s: %s", path, strerror(errno));
		return false;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n')
			break; /* being written: not an event yet */
		feed_line(r, line, (size_t)n - 1);
	}
	bool ok = !ferror(f);
	if (!ok)
		*err = xasprintf("%s: %s", path, strerror(errno ? errno : EIO));
	free(line);
	fclose(f);
	return ok;
}
