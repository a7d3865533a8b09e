/*
 * report: the model (attempts, the bounded output tail, text made valid
 * UTF-8), replay of an events file (the same model as live, torn lines
 * skipped), and the writers' escaping (JUnit XML, Markdown fences).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/internal.h"

static uint64_t seq;

/* Stamps e as the bus would (seq, ts: second s of a fixed minute) and feeds it to r, and to j when set. */
static void feed(struct report *r, struct sink *j, struct event *e, int ms)
{
	e->seq = ++seq;
	e->run_id = "RUN1";
	snprintf(e->ts, sizeof e->ts, "2026-11-22T10:00:%02d.%03dZ", ms / 1000, ms % 1000);
	if (r)
		report_feed(r, e);
	if (j)
		j->emit(j, e);
}

static void start_run(struct report *r, struct sink *j)
{
	struct event e = {.type = EV_RUN_START, .plan = "p.yaml", .name = "demo", .tasks = -1};
	feed(r, j, &e, 0);
}

static void task_start(struct report *r, struct sink *j, const char *id, const char *step, int attempt, int ms)
{
	struct event e = {.type = EV_TASK_START, .task = id, .step = step, .attempt = attempt, .command = "make"};
	feed(r, j, &e, ms);
}

static void task_line(struct report *r, struct sink *j, const char *id, const char *line, size_t len, bool err, int ms)
{
	struct event e = {.type = EV_TASK_OUTPUT, .task = id, .line = line, .line_len = len, .stream_stderr = err};
	feed(r, j, &e, ms);
}

static void task_end(struct report *r, struct sink *j, const char *id, enum status st, int attempt, int ms,
		     bool tolerated)
{
	struct event e = {.type = EV_TASK_END, .task = id, .status = st, .attempt = attempt, .duration_ms = 5,
			  .exit_code = st == ST_SUCCESS ? 0 : 1, .reason = st == ST_SUCCESS ? NULL : "exit code 1",
			  .tolerated = tolerated};
	feed(r, j, &e, ms);
}

static char *junit(const struct report *r)
{
	struct buf b = {0};
	report_junit(&b, r);
	return buf_detach(&b);
}

Test(report_model, keeps_the_last_lines_of_each_attempt_and_counts_the_rest)
{
	struct report *r = report_new();
	start_run(r, NULL);
	task_start(r, NULL, "build", "build", 1, 100);
	char line[32];
	for (int i = 1; i <= 25; i++) {
		snprintf(line, sizeof line, "line %d", i);
		task_line(r, NULL, "build", line, strlen(line), i % 2 == 0, 150);
	}
	task_end(r, NULL, "build", ST_SUCCESS, 1, 1250, false);
	cr_assert_eq(r->n_tasks, 1);
	const struct rtask *t = &r->tasks[0];
	cr_assert_eq(t->out_n, REPORT_TAIL_LINES);
	cr_assert_eq(t->dropped, 5);
	cr_assert_str_eq(rtask_line(t, 0)->text, "line 6");
	cr_assert(rtask_line(t, 0)->err);
	cr_assert_str_eq(rtask_line(t, 19)->text, "line 25");
	cr_assert_not(rtask_line(t, 19)->err);
	cr_assert_eq(t->start_ms, 100);
	cr_assert_eq(t->end_ms, 1250);
	report_free(r);
}

Test(report_model, cuts_long_lines_and_makes_text_valid_utf8)
{
	struct report *r = report_new();
	start_run(r, NULL);
	task_start(r, NULL, "t", "t", 1, 0);
	char big[1000];
	memset(big, 'x', sizeof big);
	task_line(r, NULL, "t", big, sizeof big, false, 1);
	task_line(r, NULL, "t", "a\xff\xfe" "b\0c", 6, false, 1);
	/* a cut never splits a character: 299 x's then a 2-byte é would pass 300 */
	char accent[400];
	memset(accent, 'x', 299);
	memcpy(accent + 299, "\xc3\xa9rest", 6);
	task_line(r, NULL, "t", accent, 305, false, 1);
	const struct rtask *t = &r->tasks[0];
	const char *cut = rtask_line(t, 0)->text;
	cr_assert_eq(strlen(cut), REPORT_LINE_MAX + 3, "%zu", strlen(cut));
	cr_assert_str_eq(cut + REPORT_LINE_MAX, "\xE2\x80\xA6");
	cr_assert_str_eq(rtask_line(t, 1)->text, "a\\xFF\\xFEb\\x00c");
	const char *acc = rtask_line(t, 2)->text;
	cr_assert_eq(strlen(acc), 299 + 3);
	cr_assert_str_eq(acc + 299, "\xE2\x80\xA6");
	report_free(r);
}

Test(report_model, retries_are_attempts_of_one_testcase_and_tolerated_is_said)
{
	struct report *r = report_new();
	start_run(r, NULL);
	task_start(r, NULL, "flaky", "flaky", 1, 0);
	task_line(r, NULL, "flaky", "first try", 9, false, 1);
	task_end(r, NULL, "flaky", ST_FAILED, 1, 10, false);
	task_start(r, NULL, "flaky", "flaky", 2, 20);
	task_line(r, NULL, "flaky", "second try", 10, false, 21);
	task_end(r, NULL, "flaky", ST_FAILED, 2, 30, true);
	cr_assert_eq(r->n_tasks, 2);
	cr_assert_eq(r->n_cases, 1);
	cr_assert_eq(r->tasks[0].out_n, 1);
	cr_assert_eq(r->tasks[1].out_n, 1, "each attempt has its own output");
	cr_assert_eq(r->tasks[1].prev, 0);
	char *x = junit(r);
	cr_assert(strstr(x, "<skipped message=\"tolerated failure: exit code 1\"/>"), "%s", x);
	cr_assert(strstr(x, "attempt 1: failed (exit code 1)"), "%s", x);
	cr_assert(strstr(x, "time=\"0.010\""), "both attempts' durations: %s", x);
	cr_assert_null(strstr(x, "<failure"), "%s", x);
	free(x);
	uint64_t c[ST__COUNT], tol;
	report_counts(r, c, &tol);
	cr_assert_eq(tol, 1);
	cr_assert_eq(c[ST_FAILED], 0, "a tolerated failure is counted apart, as run.end counts it");
	report_free(r);
}

Test(report_model, a_step_that_never_ran_is_a_testcase_and_a_step_with_children_is_not)
{
	struct report *r = report_new();
	start_run(r, NULL);
	struct event s1 = {.type = EV_STEP_START, .step = "deploy", .kind = "for_each"};
	feed(r, NULL, &s1, 0);
	struct event s2 = {.type = EV_STEP_START, .step = "deploy#2", .kind = "group"};
	feed(r, NULL, &s2, 0);
	struct event s3 = {.type = EV_STEP_START, .step = "deploy.push#2", .kind = "run"};
	feed(r, NULL, &s3, 0);
	task_start(r, NULL, "deploy.push#2", "deploy.push", 1, 1);
	task_end(r, NULL, "deploy.push#2", ST_CANCELLED, 1, 2, false);
	struct event e1 = {.type = EV_STEP_END, .step = "deploy#2", .kind = "group", .status = ST_CANCELLED};
	feed(r, NULL, &e1, 3);
	struct event e2 = {.type = EV_STEP_END, .step = "later", .kind = "run", .status = ST_SKIPPED};
	feed(r, NULL, &e2, 3);
	cr_assert_eq(r->n_cases, 2, "the task and the skipped step, not deploy#2 (%zu)", r->n_cases);
	cr_assert(r->cases[1].step);
	cr_assert_str_eq(r->steps[r->cases[1].idx].id, "later");
	cr_assert_eq(r->steps[2].depth, 3, "deploy.push#2 is in deploy and deploy#2");
	report_free(r);
}

Test(report_junit, escapes_what_xml_cannot_hold)
{
	struct report *r = report_new();
	start_run(r, NULL);
	task_start(r, NULL, "t", "t", 1, 0);
	const char text[] = "</x> ]]> <&>\"' \x01 \x1b[31m \xef\xbf\xbe end";
	task_line(r, NULL, "t", text, sizeof text - 1, false, 1);
	task_end(r, NULL, "t", ST_FAILED, 1, 2, false);
	char *x = junit(r);
	cr_assert(strstr(x, "&lt;/x&gt; ]]&gt; &lt;&amp;&gt;\"' \\x01 \\x1B[31m \\uFFFE end"), "%s", x);
	cr_assert_null(strstr(x, "]]>"));
	cr_assert_null(strchr(x, '\x01'));
	cr_assert_null(strchr(x, '\x1b'));
	free(x);
	report_free(r);
}

Test(report_markdown, a_fence_longer_than_any_backtick_run)
{
	struct report *r = report_new();
	start_run(r, NULL);
	task_start(r, NULL, "t", "t", 1, 0);
	task_line(r, NULL, "t", "``````` seven", 13, false, 1);
	task_end(r, NULL, "t", ST_FAILED, 1, 2, false);
	struct buf b = {0};
	report_markdown(&b, r);
	cr_assert(strstr(b.data, "\n````````text\n``````` seven\n````````\n"), "%s", b.data);
	buf_free(&b);
	report_free(r);
}

Test(report_replay, the_json_sink_s_file_replays_to_the_same_model)
{
	char path[] = "/tmp/baton-report-test-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	FILE *f = fdopen(fd, "w");
	struct sink *j = sink_json_new(f, true);
	struct report *live = report_new();
	start_run(live, j);
	task_start(live, j, "a", "a", 1, 10);
	task_line(live, j, "a", "bad \xff byte", 10, true, 11);
	task_end(live, j, "a", ST_FAILED, 1, 20, false);
	task_start(live, j, "b", "b", 1, 30);
	task_end(live, j, "b", ST_SUCCESS, 1, 40, false);
	struct event end = {.type = EV_RUN_END, .status = ST_FAILED, .exit_code_run = 1, .duration_ms = 40,
			    .counts = {1, 1, 0, 0, 0}};
	feed(live, j, &end, 40);
	j->close(j);
	/* a torn last line (a run still writing) and a line that is not JSON are skipped */
	f = fopen(path, "a");
	fputs("not json\n{\"v\":1,\"seq\":99,\"ts\":\"2026-11-22T10:00:09.000Z\",\"type\":\"task.start\",\"task\":\"c", f);
	fclose(f);
	struct report *back = report_new();
	char *err = NULL;
	cr_assert(report_replay(back, path, &err), "%s", err);
	unlink(path);
	char *x1 = junit(live), *x2 = junit(back);
	cr_assert_str_eq(x1, x2);
	cr_assert(strstr(x1, "bad \\xFF byte"), "%s", x1);
	json_t *d1 = report_data(live), *d2 = report_data(back);
	cr_assert(json_equal(d1, d2));
	cr_assert_eq(json_array_size(json_object_get(d2, "tasks")), 2);
	json_decref(d1);
	json_decref(d2);
	free(x1);
	free(x2);
	report_free(live);
	report_free(back);
	struct report *none = report_new();
	cr_assert_not(report_replay(none, "/nonexistent/events.jsonl", &err));
	cr_assert(strstr(err, "No such file"), "%s", err);
	free(err);
	report_free(none);
}

Test(report_model, ten_thousand_tasks_stay_bounded)
{
	struct report *r = report_new();
	start_run(r, NULL);
	char id[32];
	for (int i = 0; i < 10000; i++) {
		snprintf(id, sizeof id, "fan#%d", i);
		task_start(r, NULL, id, "fan", 1, i % 1000);
		for (int k = 0; k < 50; k++)
			task_line(r, NULL, id, "some output of a task", 21, false, i % 1000);
		task_end(r, NULL, id, ST_SUCCESS, 1, i % 1000, false);
	}
	cr_assert_eq(r->n_tasks, 10000);
	for (size_t i = 0; i < r->n_tasks; i++) {
		cr_assert_eq(r->tasks[i].out_n, REPORT_TAIL_LINES);
		cr_assert_eq(r->tasks[i].dropped, 30);
	}
	report_free(r);
}
