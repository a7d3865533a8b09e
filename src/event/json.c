/*
 * json.c — the JSON lines sink: one object per event, schema 1 of
 * architecture.md. Bytes that are not UTF-8 become the text \xNN.
 */
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

/*
 * Appends s as a JSON string. Events have a fixed shape, so they are written
 * directly rather than built as jansson trees: that was two thirds of a
 * trivial task's cost. Escaping follows RFC 8259; bytes that are not UTF-8
 * become the text \xNN, so nothing a command prints is dropped.
 */
static void put_str(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	buf_grow(b, n + 2);
	buf_addc(b, '"');
	size_t run = 0; /* start of the pending run of bytes that need no escape */
	for (size_t i = 0; i < n;) {
		/* most text needs no escaping: skip over it fast */
		while (i < n && u[i] >= 0x20 && u[i] < 0x7f && u[i] != '"' && u[i] != '\\')
			i++;
		if (i >= n)
			break;
		unsigned char c = u[i];
		size_t k = 1;
		const char *esc = NULL;
		char tmp[8];
		if (c >= 0x80) {
			k = utf8_seq_len(u + i, n - i);
			if (!k) {
				snprintf(tmp, sizeof tmp, "\\\\x%02X", c);
				esc = tmp;
				k = 1;
			}
		} else if (c == '"') {
			esc = "\\\"";
		} else if (c == '\\') {
			esc = "\\\\";
		} else if (c == '\n') {
			esc = "\\n";
		} else if (c == '\t') {
			esc = "\\t";
		} else if (c == '\r') {
			esc = "\\r";
		} else if (c < 0x20 || c == 0x7f) {
			tmp[0] = '\\', tmp[1] = 'u', tmp[2] = '0', tmp[3] = '0';
			tmp[4] = hex[c >> 4], tmp[5] = hex[c & 15], tmp[6] = 0;
			esc = tmp;
		}
		if (esc) {
			buf_add(b, s + run, i - run);
			buf_adds(b, esc);
			run = i + k;
		}
		i += k;
	}
	buf_add(b, s + run, n - run);
	buf_addc(b, '"');
}

static void key(struct buf *b, const char *k)
{
	buf_addc(b, ',');
	buf_addc(b, '"');
	buf_adds(b, k);
	buf_addc(b, '"');
	buf_addc(b, ':');
}

static void str_field(struct buf *b, const char *k, const char *v)
{
	key(b, k);
	if (v)
		put_str(b, v, strlen(v));
	else
		buf_adds(b, "null");
}

static void put_num(struct buf *b, long long v)
{
	char tmp[24];
	size_t i = sizeof tmp;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do {
		tmp[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[--i] = '-';
	buf_add(b, tmp + i, sizeof tmp - i);
}

static void num_field(struct buf *b, const char *k, long long v)
{
	key(b, k);
	put_num(b, v);
}

static void json_emit(struct sink *s, const struct event *e)
{
	struct json_sink *J = (struct json_sink *)s;
	struct buf *b = &J->tmp;
	buf_reset(b);
	buf_adds(b, "{\"v\":1,\"seq\":");
	put_num(b, (long long)e->seq);
	buf_adds(b, ",\"ts\":\"");
	buf_adds(b, e->ts);
	buf_addc(b, '"');
	str_field(b, "run", e->run_id);
	str_field(b, "type", event_type_name(e->type));
	switch (e->type) {
	case EV_RUN_START:
		str_field(b, "plan", e->plan);
		str_field(b, "name", e->name);
		key(b, "dry_run");
		buf_adds(b, e->dry_run ? "true" : "false");
		if (e->tasks >= 0)
			num_field(b, "tasks", e->tasks);
		else
			str_field(b, "tasks", NULL);
		str_field(b, "resumed_from", e->resumed_from);
		break;
	case EV_STEP_START:
	case EV_STEP_END:
		str_field(b, "step", e->step);
		str_field(b, "kind", e->kind);
		if (e->type == EV_STEP_START && e->hosts)
			num_field(b, "hosts", (long long)e->hosts);
		if (e->type == EV_STEP_END) {
			str_field(b, "status", status_name(e->status));
			num_field(b, "duration_ms", (long long)e->duration_ms);
			if (e->reason)
				str_field(b, "reason", e->reason);
			if (e->tolerated)
				buf_adds(b, ",\"tolerated\":true");
		}
		if (e->label)
			str_field(b, "label", e->label);
		break;
	case EV_TASK_START:
		str_field(b, "task", e->task);
		str_field(b, "step", e->step);
		str_field(b, "host", e->host);
		str_field(b, "item", e->item);
		num_field(b, "attempt", e->attempt);
		str_field(b, "command", e->command);
		str_field(b, "label", e->label);
		break;
	case EV_TASK_OUTPUT:
		str_field(b, "task", e->task);
		str_field(b, "stream", e->stream_stderr ? "stderr" : "stdout");
		key(b, "line");
		put_str(b, e->line, e->line_len);
		break;
	case EV_TASK_RETRY:
		str_field(b, "task", e->task);
		num_field(b, "attempt", e->attempt);
		num_field(b, "delay_ms", (long long)e->delay_ms);
		str_field(b, "reason", e->reason);
		if (e->label)
			str_field(b, "label", e->label);
		break;
	case EV_TASK_END:
		str_field(b, "task", e->task);
		str_field(b, "status", status_name(e->status));
		if (e->exit_code >= 0)
			num_field(b, "exit_code", e->exit_code);
		else
			str_field(b, "exit_code", NULL);
		if (e->signal)
			num_field(b, "signal", e->signal);
		else
			str_field(b, "signal", NULL);
		num_field(b, "duration_ms", (long long)e->duration_ms);
		num_field(b, "attempt", e->attempt);
		if (e->reason)
			str_field(b, "reason", e->reason);
		key(b, "reused");
		buf_adds(b, e->reused ? "true" : "false");
		if (e->tolerated)
			buf_adds(b, ",\"tolerated\":true");
		if (e->copy) {
			key(b, "changed");
			buf_adds(b, e->changed ? "true" : "false");
			num_field(b, "bytes", (long long)e->bytes);
		}
		str_field(b, "label", e->label);
		break;
	case EV_PLAN_TASK:
		str_field(b, "task", e->task);
		str_field(b, "step", e->step);
		str_field(b, "host", e->host);
		str_field(b, "item", e->item);
		str_field(b, "label", e->label);
		num_field(b, "attempt", e->attempt);
		str_field(b, "command", e->command);
		str_field(b, "shell", e->shell);
		str_field(b, "cwd", e->cwd);
		if (e->batch >= 0)
			num_field(b, "batch", e->batch);
		else
			str_field(b, "batch", NULL);
		str_field(b, "handler", e->handler);
		str_field(b, "condition", e->condition);
		break;
	case EV_TASK_PROCESS:
		str_field(b, "task", e->task);
		str_field(b, "host", e->host);
		num_field(b, "pgid", e->pgid);
		key(b, "remote");
		buf_adds(b, e->remote ? "true" : "false");
		break;
	case EV_PROGRESS:
		num_field(b, "done", (long long)e->done);
		num_field(b, "failed", (long long)e->failed);
		num_field(b, "tolerated", (long long)e->n_tolerated);
		num_field(b, "running", (long long)e->running);
		num_field(b, "waiting", (long long)e->waiting);
		num_field(b, "total", (long long)e->total);
		break;
	case EV_BATCH_START:
	case EV_BATCH_END:
		str_field(b, "step", e->step);
		num_field(b, "batch", e->batch);
		key(b, "instances");
		buf_addc(b, '[');
		for (size_t i = 0; i < e->n_instances; i++) {
			if (i)
				buf_addc(b, ',');
			if (e->instance_names)
				put_str(b, e->instance_names[i], strlen(e->instance_names[i]));
			else
				put_num(b, e->instances[i]);
		}
		buf_addc(b, ']');
		key(b, "labels");
		buf_addc(b, '[');
		for (size_t i = 0; i < e->n_instances; i++) {
			if (i)
				buf_addc(b, ',');
			const char *l = e->labels ? e->labels[i] : e->instance_names ? e->instance_names[i] : NULL;
			if (l) {
				put_str(b, l, strlen(l));
			} else {
				buf_addc(b, '"');
				put_num(b, e->instances[i]);
				buf_addc(b, '"');
			}
		}
		buf_addc(b, ']');
		if (e->type == EV_BATCH_END) {
			num_field(b, "failed", (long long)e->failed);
			num_field(b, "pause_ms", (long long)e->pause_ms);
		}
		break;
	case EV_BARRIER_WAIT:
	case EV_BARRIER_RELEASE:
		str_field(b, "barrier", e->barrier);
		str_field(b, "step", e->step);
		num_field(b, "arrived", (long long)e->arrived);
		num_field(b, "expected", (long long)e->expected);
		if (e->label)
			str_field(b, "label", e->label);
		break;
	case EV_WARNING:
		str_field(b, "message", e->message);
		break;
	case EV_TASK_TRANSFER:
		str_field(b, "task", e->task);
		str_field(b, "host", e->host);
		num_field(b, "bytes", (long long)e->bytes);
		if (e->size >= 0)
			num_field(b, "total", (long long)e->size);
		else
			str_field(b, "total", NULL);
		break;
	case EV_APPROVE_WAIT:
	case EV_APPROVE_END:
		str_field(b, "step", e->step);
		str_field(b, "message", e->message);
		if (e->type == EV_APPROVE_END) {
			key(b, "approved");
			buf_adds(b, e->approved ? "true" : "false");
			str_field(b, "by", e->by);
		}
		if (e->label)
			str_field(b, "label", e->label);
		break;
	case EV_RUN_CANCEL:
		num_field(b, "signal", e->signal);
		num_field(b, "running", (long long)e->running);
		key(b, "kill");
		buf_adds(b, e->kill ? "true" : "false");
		break;
	case EV_RUN_END:
		str_field(b, "status", status_name(e->status));
		num_field(b, "exit_code", e->exit_code_run);
		num_field(b, "duration_ms", (long long)e->duration_ms);
		key(b, "counts");
		for (int i = 0; i < ST__COUNT; i++)
			buf_printf(b, "%c\"%s\":%llu", i ? ',' : '{', status_name((enum status)i),
				   (unsigned long long)e->counts[i]);
		buf_printf(b, ",\"tolerated\":%llu}", (unsigned long long)e->n_tolerated);
		break;
	}
	buf_adds(b, "}\n");
	fwrite(b->data, 1, b->len, J->f);
	/*
	 * Lines go out whole and promptly: the loop flushes every sink before it
	 * waits (bus_flush), so a consumer tailing the stream sees each burst as
	 * it happens, at one write per burst rather than per event.
	 */
	if (e->type == EV_RUN_END)
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
