/*
 * json.c — the JSON lines sink: one object per event, schema 1 of
 * architecture.md, written with jansson so anything a command prints is
 * escaped correctly. Bytes that are not UTF-8 become the text \xNN.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "event/event.h"
#include "util/util.h"

struct json_sink {
	struct sink base;
	FILE *f;
	bool own;
	struct buf tmp;
};

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned min;
	unsigned cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2, min = 0x80, cp = c & 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3, min = 0x800, cp = c & 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4, min = 0x10000, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* A JSON string for bytes that may not be UTF-8: invalid bytes become \xNN. */
static json_t *json_bytes(const char *s, size_t n, struct buf *tmp)
{
	json_t *j = json_stringn(s, n);
	if (j)
		return j;
	buf_reset(tmp);
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(u + i, n - i);
		if (k) {
			buf_add(tmp, s + i, k);
			i += k;
		} else {
			buf_printf(tmp, "\\x%02X", u[i]);
			i++;
		}
	}
	j = json_stringn(tmp->data ? tmp->data : "", tmp->len);
	return j ? j : json_string("");
}

static void set_str(json_t *o, const char *k, const char *v, struct buf *tmp)
{
	json_object_set_new(o, k, v ? json_bytes(v, strlen(v), tmp) : json_null());
}

static void json_emit(struct sink *s, const struct event *e)
{
	struct json_sink *J = (struct json_sink *)s;
	json_t *o = json_object();
	json_object_set_new(o, "v", json_integer(1));
	json_object_set_new(o, "seq", json_integer((json_int_t)e->seq));
	json_object_set_new(o, "ts", json_string(e->ts));
	set_str(o, "run", e->run_id, &J->tmp);
	json_object_set_new(o, "type", json_string(event_type_name(e->type)));
	switch (e->type) {
	case EV_RUN_START:
		set_str(o, "plan", e->plan, &J->tmp);
		set_str(o, "name", e->name, &J->tmp);
		json_object_set_new(o, "dry_run", json_boolean(e->dry_run));
		json_object_set_new(o, "tasks", e->tasks >= 0 ? json_integer(e->tasks) : json_null());
		break;
	case EV_STEP_START:
	case EV_STEP_END:
		set_str(o, "step", e->step, &J->tmp);
		set_str(o, "kind", e->kind, &J->tmp);
		if (e->type == EV_STEP_END) {
			json_object_set_new(o, "status", json_string(status_name(e->status)));
			json_object_set_new(o, "duration_ms", json_integer((json_int_t)e->duration_ms));
		}
		break;
	case EV_TASK_START:
		set_str(o, "task", e->task, &J->tmp);
		set_str(o, "step", e->step, &J->tmp);
		set_str(o, "host", e->host, &J->tmp);
		set_str(o, "item", e->item, &J->tmp);
		json_object_set_new(o, "attempt", json_integer(e->attempt));
		set_str(o, "command", e->command, &J->tmp);
		break;
	case EV_TASK_OUTPUT:
		set_str(o, "task", e->task, &J->tmp);
		json_object_set_new(o, "stream", json_string(e->stream_stderr ? "stderr" : "stdout"));
		json_object_set_new(o, "line", json_bytes(e->line, e->line_len, &J->tmp));
		break;
	case EV_TASK_RETRY:
		set_str(o, "task", e->task, &J->tmp);
		json_object_set_new(o, "attempt", json_integer(e->attempt));
		json_object_set_new(o, "delay_ms", json_integer((json_int_t)e->delay_ms));
		set_str(o, "reason", e->reason, &J->tmp);
		break;
	case EV_TASK_END:
		set_str(o, "task", e->task, &J->tmp);
		json_object_set_new(o, "status", json_string(status_name(e->status)));
		json_object_set_new(o, "exit_code", e->exit_code >= 0 ? json_integer(e->exit_code) : json_null());
		json_object_set_new(o, "signal", e->signal ? json_integer(e->signal) : json_null());
		json_object_set_new(o, "duration_ms", json_integer((json_int_t)e->duration_ms));
		json_object_set_new(o, "attempt", json_integer(e->attempt));
		if (e->reason)
			set_str(o, "reason", e->reason, &J->tmp);
		break;
	case EV_PROGRESS:
		json_object_set_new(o, "done", json_integer((json_int_t)e->done));
		json_object_set_new(o, "failed", json_integer((json_int_t)e->failed));
		json_object_set_new(o, "running", json_integer((json_int_t)e->running));
		json_object_set_new(o, "waiting", json_integer((json_int_t)e->waiting));
		json_object_set_new(o, "total", json_integer((json_int_t)e->total));
		break;
	case EV_RUN_END: {
		json_object_set_new(o, "status", json_string(status_name(e->status)));
		json_object_set_new(o, "exit_code", json_integer(e->exit_code_run));
		json_object_set_new(o, "duration_ms", json_integer((json_int_t)e->duration_ms));
		json_t *c = json_object();
		for (int i = 0; i < ST__COUNT; i++)
			json_object_set_new(c, status_name((enum status)i), json_integer((json_int_t)e->counts[i]));
		json_object_set_new(o, "counts", c);
		break;
	}
	}
	char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (line) {
		fputs(line, J->f);
		fputc('\n', J->f);
		free(line);
	}
	/* lines go out whole and promptly: a consumer may be tailing the stream */
	if (e->type != EV_TASK_OUTPUT || e->stream_stderr)
		fflush(J->f);
}

static void json_flush(struct sink *s)
{
	fflush(((struct json_sink *)s)->f);
}

static void json_close(struct sink *s)
{
	struct json_sink *J = (struct json_sink *)s;
	fflush(J->f);
	if (J->own)
		fclose(J->f);
	buf_free(&J->tmp);
	free(J);
}

struct sink *sink_json_new(FILE *f, bool own)
{
	struct json_sink *J = xcalloc(1, sizeof *J);
	J->base.emit = json_emit;
	J->base.flush = json_flush;
	J->base.close = json_close;
	J->f = f;
	J->own = own;
	return &J->base;
}
