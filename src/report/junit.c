/*
 * junit.c — JUnit XML, as Jenkins and GitLab read it (the mapping is in
 * report.h; the schema the tests check it against is
 * tests/fixtures/junit.xsd). Everything a command printed is escaped as
 * text: the XML specials, the control characters XML 1.0 forbids (and
 * U+FFFE, U+FFFF) as the visible text \xNN, so no output can end an element
 * or make the file unreadable. No CDATA: '>' is always &gt;, so "]]>" is
 * harmless.
 */
#include <string.h>

#include "report/internal.h"

/* Appends s escaped as XML 1.0 character data (attr: for an attribute value, newlines kept as &#10;). */
static void xml(struct buf *b, const char *s, bool attr)
{
	const unsigned char *u = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)u);
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		if (c >= 0x80) {
			size_t k = utf8_seq_len(u + i, n - i);
			if (!k) {
				buf_printf(b, "\\x%02X", c);
				i++;
			} else if (k == 3 && c == 0xEF && u[i + 1] == 0xBF && (u[i + 2] == 0xBE || u[i + 2] == 0xBF)) {
				buf_printf(b, "\\u%s", u[i + 2] == 0xBE ? "FFFE" : "FFFF");
				i += 3;
			} else {
				buf_add(b, u + i, k);
				i += k;
			}
			continue;
		}
		switch (c) {
		case '<': buf_adds(b, "&lt;"); break;
		case '>': buf_adds(b, "&gt;"); break;
		case '&': buf_adds(b, "&amp;"); break;
		case '"': buf_adds(b, attr ? "&quot;" : "\""); break;
		case '\'': buf_adds(b, attr ? "&apos;" : "'"); break;
		case '\n': buf_adds(b, attr ? "&#10;" : "\n"); break;
		case '\t': buf_adds(b, attr ? "&#9;" : "\t"); break;
		case '\r': buf_adds(b, "&#13;"); break;
		default:
			if (c < 0x20)
				buf_printf(b, "\\x%02X", c);
			else
				buf_addc(b, (char)c);
		}
		i++;
	}
}

static void attr(struct buf *b, const char *name, const char *v)
{
	buf_printf(b, " %s=\"", name);
	xml(b, v, true);
	buf_addc(b, '"');
}

static void seconds(struct buf *b, const char *name, uint64_t ms)
{
	buf_printf(b, " %s=\"%llu.%03llu\"", name, (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000));
}

/* The testcase's name: the id and its instance's label, "fan#0 (x-a)". */
static void case_name(struct buf *b, const char *id, const char *label)
{
	struct buf n = {0};
	event_display_id(&n, id, label);
	attr(b, "name", n.data ? n.data : id);
	buf_free(&n);
}

/* The attempt's kept lines (only stdout's, only stderr's, or both), each ended. */
static void lines(struct buf *b, const struct rtask *t, int which /* 0 both, 1 out, 2 err */)
{
	for (size_t i = 0; i < t->out_n; i++) {
		const struct rline *l = rtask_line(t, i);
		if ((which == 1 && l->err) || (which == 2 && !l->err))
			continue;
		xml(b, l->text, false);
		buf_addc(b, '\n');
	}
}

/* A failure's or error's body: the command, then the last lines of its output. */
static void body(struct buf *b, const struct rtask *t)
{
	buf_adds(b, "$ ");
	xml(b, t->command, false);
	buf_addc(b, '\n');
	if (t->dropped)
		buf_printf(b, "(%llu earlier lines not kept)\n", (unsigned long long)t->dropped);
	lines(b, t, 0);
}

static void task_case(struct buf *b, const struct report *r, size_t first, uint64_t *fail, uint64_t *errs,
		      uint64_t *skip)
{
	const struct rtask *t = rtask_last(r, first);
	uint64_t ms = 0;
	for (const struct rtask *a = &r->tasks[first];; a = &r->tasks[a->next]) {
		ms += a->duration_ms;
		if (a->next < 0)
			break;
	}
	buf_adds(b, "    <testcase");
	attr(b, "classname", t->step && *t->step ? t->step : t->id);
	case_name(b, t->id, t->label);
	seconds(b, "time", ms);
	buf_adds(b, ">\n");
	const char *reason = t->reason ? t->reason : "";
	struct buf msg = {0};
	switch (t->status) {
	case -1:
		buf_adds(b, "      <skipped message=\"still running\"/>\n");
		++*skip;
		break;
	case ST_SUCCESS:
		break;
	case ST_FAILED:
	case ST_TIMEOUT:
		if (t->tolerated) {
			buf_printf(&msg, "tolerated %s: %s", t->status == ST_TIMEOUT ? "timeout" : "failure", reason);
			buf_adds(b, "      <skipped");
			attr(b, "message", msg.data);
			buf_adds(b, "/>\n");
			++*skip;
			break;
		}
		buf_adds(b, t->status == ST_TIMEOUT ? "      <error" : "      <failure");
		attr(b, "message", reason);
		attr(b, "type", status_name((enum status)t->status));
		buf_addc(b, '>');
		body(b, t);
		buf_adds(b, t->status == ST_TIMEOUT ? "</error>\n" : "</failure>\n");
		++*(t->status == ST_TIMEOUT ? errs : fail);
		break;
	default:
		if (!strcmp(reason, status_name((enum status)t->status)))
			reason = ""; /* "cancelled: cancelled" says it twice */
		buf_printf(&msg, "%s%s%s", status_name((enum status)t->status), *reason ? ": " : "", reason);
		buf_adds(b, "      <skipped");
		attr(b, "message", msg.data);
		buf_adds(b, "/>\n");
		++*skip;
	}
	buf_free(&msg);
	buf_adds(b, "      <system-out>");
	for (const struct rtask *a = &r->tasks[first]; a != t; a = &r->tasks[a->next]) {
		buf_printf(b, "attempt %d: %s", a->attempt, a->status >= 0 ? status_name((enum status)a->status) : "?");
		if (a->reason) {
			buf_adds(b, " (");
			xml(b, a->reason, false);
			buf_addc(b, ')');
		}
		buf_addc(b, '\n');
	}
	if (t->attempt > 1)
		buf_printf(b, "attempt %d:\n", t->attempt);
	if (t->reused)
		buf_adds(b, "carried over from an earlier run by resume, not run\n");
	if (t->dropped)
		buf_printf(b, "(%llu earlier lines not kept)\n", (unsigned long long)t->dropped);
	lines(b, t, 1);
	buf_adds(b, "</system-out>\n");
	bool any_err = false;
	for (size_t i = 0; i < t->out_n && !any_err; i++)
		any_err = rtask_line(t, i)->err;
	if (any_err) {
		buf_adds(b, "      <system-err>");
		lines(b, t, 2);
		buf_adds(b, "</system-err>\n");
	}
	buf_adds(b, "    </testcase>\n");
}

/* A step that never ran (skipped, or cancelled before it started anything). */
static void step_case(struct buf *b, const struct rstep *s, uint64_t *skip)
{
	size_t cls = strcspn(s->id, "#@");
	char *classname = xstrndup(s->id, cls);
	buf_adds(b, "    <testcase");
	attr(b, "classname", classname);
	free(classname);
	case_name(b, s->id, s->label);
	buf_adds(b, " time=\"0.000\">\n      <skipped");
	struct buf msg = {0};
	buf_printf(&msg, "%s%s%s", status_name((enum status)s->status), s->reason ? ": " : "",
		   s->reason ? s->reason : "");
	attr(b, "message", msg.data);
	buf_free(&msg);
	buf_adds(b, "/>\n    </testcase>\n");
	++*skip;
}

void report_junit(struct buf *b, const struct report *r)
{
	struct buf cases = {0};
	uint64_t fail = 0, errs = 0, skip = 0;
	for (size_t i = 0; i < r->n_cases; i++) {
		if (r->cases[i].step)
			step_case(&cases, &r->steps[r->cases[i].idx], &skip);
		else
			task_case(&cases, r, r->cases[i].idx, &fail, &errs, &skip);
	}
	const char *name = r->name ? r->name : r->plan ? r->plan : "baton";
	uint64_t ms = r->ended ? r->duration_ms : 0;
	buf_adds(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites");
	attr(b, "name", name);
	buf_printf(b, " tests=\"%zu\" failures=\"%llu\" errors=\"%llu\"", r->n_cases, (unsigned long long)fail,
		   (unsigned long long)errs);
	seconds(b, "time", ms);
	buf_adds(b, ">\n  <testsuite");
	attr(b, "name", name);
	buf_printf(b, " tests=\"%zu\" failures=\"%llu\" errors=\"%llu\" skipped=\"%llu\"", r->n_cases,
		   (unsigned long long)fail, (unsigned long long)errs, (unsigned long long)skip);
	seconds(b, "time", ms);
	if (r->start_iso)
		attr(b, "timestamp", r->start_iso);
	if (r->run_id)
		attr(b, "id", r->run_id);
	buf_adds(b, ">\n    <properties>\n");
	const char *props[][2] = {{"baton.run", r->run_id},
				  {"baton.plan", r->plan},
				  {"baton.status", report_status_name(r)}};
	for (size_t i = 0; i < ARRAY_LEN(props); i++) {
		if (!props[i][1])
			continue;
		buf_adds(b, "      <property");
		attr(b, "name", props[i][0]);
		attr(b, "value", props[i][1]);
		buf_adds(b, "/>\n");
	}
	if (r->ended)
		buf_printf(b, "      <property name=\"baton.exit_code\" value=\"%d\"/>\n", r->exit_code);
	buf_adds(b, "    </properties>\n");
	buf_add(b, cases.data ? cases.data : "", cases.len);
	buf_free(&cases);
	buf_adds(b, "  </testsuite>\n</testsuites>\n");
}
