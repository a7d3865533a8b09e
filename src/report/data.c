/*
 * data.c — the report data document (report.h), what the HTML page embeds.
 */
#include <string.h>

#include "report/internal.h"

static json_t *jstr(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *jms(int64_t ms)
{
	return ms >= 0 ? json_integer(ms) : json_null();
}

static json_t *task_json(const struct rtask *t)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", jstr(t->id));
	json_object_set_new(o, "step", jstr(t->step));
	json_object_set_new(o, "host", jstr(t->host));
	json_object_set_new(o, "item", jstr(t->item));
	json_object_set_new(o, "label", jstr(t->label));
	json_object_set_new(o, "attempt", json_integer(t->attempt));
	json_object_set_new(o, "start_ms", json_integer(t->start_ms));
	json_object_set_new(o, "end_ms", jms(t->end_ms));
	json_object_set_new(o, "status", t->status >= 0 ? json_string(status_name((enum status)t->status)) : json_null());
	json_object_set_new(o, "exit_code", t->exit_code >= 0 ? json_integer(t->exit_code) : json_null());
	json_object_set_new(o, "signal", t->signal ? json_integer(t->signal) : json_null());
	json_object_set_new(o, "reason", jstr(t->reason));
	json_object_set_new(o, "command", json_string(t->command ? t->command : ""));
	json_object_set_new(o, "tolerated", json_boolean(t->tolerated));
	json_object_set_new(o, "reused", json_boolean(t->reused));
	json_t *out = json_array();
	for (size_t i = 0; i < t->out_n; i++) {
		const struct rline *l = rtask_line(t, i);
		json_t *pair = json_array();
		json_array_append_new(pair, json_string(l->err ? "e" : "o"));
		json_array_append_new(pair, json_string(l->text));
		json_array_append_new(out, pair);
	}
	json_object_set_new(o, "output", out);
	json_object_set_new(o, "output_dropped", json_integer((json_int_t)t->dropped));
	return o;
}

/* The latest time the model knows of: the run's length while it has not ended. */
static int64_t latest(const struct report *r)
{
	int64_t m = 0;
	for (size_t i = 0; i < r->n_tasks; i++) {
		const struct rtask *t = &r->tasks[i];
		if (t->start_ms > m)
			m = t->start_ms;
		if (t->end_ms > m)
			m = t->end_ms;
	}
	for (size_t i = 0; i < r->n_steps; i++)
		if (r->steps[i].end_ms > m)
			m = r->steps[i].end_ms;
	return m;
}

json_t *report_data(const struct report *r)
{
	json_t *d = json_object();
	json_object_set_new(d, "v", json_integer(1));
	json_t *run = json_object();
	json_object_set_new(run, "id", jstr(r->run_id));
	json_object_set_new(run, "plan", jstr(r->plan));
	json_object_set_new(run, "name", jstr(r->name));
	json_object_set_new(run, "status", r->ended ? json_string(report_status_name(r)) : json_null());
	json_object_set_new(run, "exit_code", r->ended ? json_integer(r->exit_code) : json_null());
	json_object_set_new(run, "start", jstr(r->start_iso));
	json_object_set_new(run, "duration_ms", json_integer(r->ended ? (json_int_t)r->duration_ms : latest(r)));
	json_object_set_new(run, "dry_run", json_boolean(r->dry_run));
	uint64_t c[ST__COUNT], tol;
	report_counts(r, c, &tol);
	json_t *counts = json_object();
	for (int i = 0; i < ST__COUNT; i++)
		json_object_set_new(counts, status_name((enum status)i), json_integer((json_int_t)c[i]));
	json_object_set_new(counts, "tolerated", json_integer((json_int_t)tol));
	json_object_set_new(run, "counts", counts);
	json_object_set_new(d, "run", run);

	json_t *steps = json_array();
	for (size_t i = 0; i < r->n_steps; i++) {
		const struct rstep *s = &r->steps[i];
		json_t *o = json_object();
		json_object_set_new(o, "id", jstr(s->id));
		json_object_set_new(o, "name", json_null());
		json_object_set_new(o, "kind", json_string(s->kind ? s->kind : ""));
		json_object_set_new(o, "depth", json_integer(s->depth));
		json_object_set_new(o, "label", jstr(s->label));
		json_object_set_new(o, "status",
				    s->status >= 0 ? json_string(status_name((enum status)s->status)) : json_null());
		json_object_set_new(o, "start_ms", s->started ? jms(s->start_ms) : json_null());
		json_object_set_new(o, "end_ms", jms(s->end_ms));
		json_array_append_new(steps, o);
	}
	json_object_set_new(d, "steps", steps);

	json_t *tasks = json_array();
	for (size_t i = 0; i < r->n_tasks; i++)
		json_array_append_new(tasks, task_json(&r->tasks[i]));
	json_object_set_new(d, "tasks", tasks);

	json_t *batches = json_array();
	for (size_t i = 0; i < r->n_batches; i++) {
		const struct rbatch *b = &r->batches[i];
		json_t *o = json_object();
		json_object_set_new(o, "step", json_string(b->step));
		json_object_set_new(o, "batch", json_integer(b->batch));
		json_object_set_new(o, "start_ms", json_integer(b->start_ms));
		json_object_set_new(o, "end_ms", jms(b->end_ms));
		json_object_set_new(o, "instances", json_integer((json_int_t)b->instances));
		json_object_set_new(o, "failed", json_integer((json_int_t)b->failed));
		json_array_append_new(batches, o);
	}
	json_object_set_new(d, "batches", batches);

	json_t *barriers = json_array();
	for (size_t i = 0; i < r->n_barriers; i++) {
		const struct rbarrier *b = &r->barriers[i];
		json_t *o = json_object();
		json_object_set_new(o, "barrier", json_string(b->barrier));
		json_object_set_new(o, "step", json_string(b->step));
		json_object_set_new(o, "release_ms", json_integer(b->release_ms));
		json_object_set_new(o, "arrived", json_integer((json_int_t)b->arrived));
		json_object_set_new(o, "expected", json_integer((json_int_t)b->expected));
		json_array_append_new(barriers, o);
	}
	json_object_set_new(d, "barriers", barriers);

	json_t *w = json_array();
	for (size_t i = 0; i < r->n_warnings; i++)
		json_array_append_new(w, json_string(r->warnings[i]));
	json_object_set_new(d, "warnings", w);
	return d;
}
