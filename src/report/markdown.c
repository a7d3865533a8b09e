/*
 * markdown.c — the Markdown summary of a run (GitHub's job summary, or
 * `baton report --markdown`): its status and counts, its failures with the
 * last lines of their output, its slowest tasks. Text from the run never
 * becomes markup: prose is backslash-escaped, names are code spans and
 * output is fenced with more backticks than it holds anywhere in a row.
 */
#include <stdlib.h>
#include <string.h>

#include "report/internal.h"

#define MD_MAX_FAILURES 50
#define MD_SLOWEST 10

/* Appends one character of text, control characters shown as \xNN. */
static void ctl(struct buf *b, char c)
{
	if ((unsigned char)c < 0x20 && c != '\t')
		buf_printf(b, "\\x%02X", (unsigned char)c);
	else
		buf_addc(b, c);
}

/* Prose: every ASCII punctuation character that could be markup, backslash-escaped. */
static void md_text(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		if (strchr("\\`*_{}[]<>()#+-.!|~&\"'=:", *s))
			buf_addc(b, '\\');
		ctl(b, *s == '\n' ? ' ' : *s);
	}
}

/* The longest run of backticks in s. */
static size_t ticks(const char *s)
{
	size_t best = 0, run = 0;
	for (; s && *s; s++) {
		run = *s == '`' ? run + 1 : 0;
		if (run > best)
			best = run;
	}
	return best;
}

/* s as a code span (in a table: '|' escaped, which GFM reads inside code spans too). */
static void md_code(struct buf *b, const char *s, bool table)
{
	size_t n = ticks(s) + 1;
	for (size_t i = 0; i < n; i++)
		buf_addc(b, '`');
	buf_addc(b, ' ');
	for (; s && *s; s++) {
		if (table && *s == '|')
			buf_addc(b, '\\');
		ctl(b, *s == '\n' ? ' ' : *s);
	}
	buf_addc(b, ' ');
	for (size_t i = 0; i < n; i++)
		buf_addc(b, '`');
}

static void display(struct buf *b, const char *id, const char *label, bool table)
{
	struct buf n = {0};
	event_display_id(&n, id, label);
	md_code(b, n.data ? n.data : id, table);
	buf_free(&n);
}

static void fenced(struct buf *b, const struct rtask *t)
{
	size_t n = 3;
	for (size_t i = 0; i < t->out_n; i++) {
		size_t k = ticks(rtask_line(t, i)->text) + 1;
		if (k > n)
			n = k;
	}
	for (size_t i = 0; i < n; i++)
		buf_addc(b, '`');
	buf_adds(b, "text\n");
	if (t->dropped)
		buf_printf(b, "(%llu earlier lines not kept)\n", (unsigned long long)t->dropped);
	for (size_t i = 0; i < t->out_n; i++) {
		for (const char *s = rtask_line(t, i)->text; *s; s++)
			ctl(b, *s);
		buf_addc(b, '\n');
	}
	for (size_t i = 0; i < n; i++)
		buf_addc(b, '`');
	buf_adds(b, "\n\n");
}

static const char *mark(int st)
{
	return st == ST_SUCCESS ? "✓" : st == ST_FAILED || st == ST_TIMEOUT ? "✗" : st < 0 ? "…" : "○";
}

static void failures(struct buf *b, const struct report *r)
{
	size_t shown = 0, more = 0;
	for (size_t i = 0; i < r->n_cases; i++) {
		if (r->cases[i].step)
			continue;
		const struct rtask *t = rtask_last(r, r->cases[i].idx);
		if (t->status != ST_FAILED && t->status != ST_TIMEOUT)
			continue;
		if (shown == MD_MAX_FAILURES) {
			more++;
			continue;
		}
		if (!shown++)
			buf_adds(b, "### Failures\n\n");
		buf_printf(b, "**%s** ", mark(t->status));
		display(b, t->id, t->label, false);
		buf_printf(b, " %s%s", status_name((enum status)t->status), t->tolerated ? " (tolerated)" : "");
		if (t->reason) {
			buf_adds(b, ": ");
			md_text(b, t->reason);
		}
		if (t->attempt > 1)
			buf_printf(b, " (attempt %d)", t->attempt);
		buf_adds(b, "\n\n");
		if (t->out_n)
			fenced(b, t);
	}
	if (more)
		buf_printf(b, "… and %zu more failures (see the JUnit or HTML report).\n\n", more);
}

static int by_duration(const void *a, const void *b)
{
	const struct rtask *x = *(const struct rtask *const *)a, *y = *(const struct rtask *const *)b;
	if (x->duration_ms != y->duration_ms)
		return x->duration_ms < y->duration_ms ? 1 : -1;
	return x < y ? -1 : x > y;
}

static void slowest(struct buf *b, const struct report *r)
{
	size_t n = 0;
	const struct rtask **v = xmalloc((r->n_tasks ? r->n_tasks : 1) * sizeof *v);
	for (size_t i = 0; i < r->n_tasks; i++)
		if (r->tasks[i].status >= 0 && !r->tasks[i].reused)
			v[n++] = &r->tasks[i];
	qsort(v, n, sizeof *v, by_duration);
	if (n) {
		buf_adds(b, "### Slowest tasks\n\n| task | status | duration |\n|---|---|---:|\n");
		for (size_t i = 0; i < n && i < MD_SLOWEST; i++) {
			char d[32];
			duration_format(v[i]->duration_ms, d, sizeof d);
			buf_adds(b, "| ");
			display(b, v[i]->id, v[i]->label, true);
			if (v[i]->attempt > 1)
				buf_printf(b, " (attempt %d)", v[i]->attempt);
			buf_printf(b, " | %s %s | %s |\n", mark(v[i]->status), status_name((enum status)v[i]->status), d);
		}
		buf_addc(b, '\n');
	}
	free(v);
}

void report_markdown(struct buf *b, const struct report *r)
{
	const char *status = report_status_name(r);
	buf_printf(b, "## %s baton: ", mark(r->status));
	md_text(b, r->name ? r->name : r->plan ? r->plan : "run");
	buf_printf(b, " — %s\n\n", status);
	buf_adds(b, "Run ");
	md_code(b, r->run_id ? r->run_id : "?", false);
	if (r->plan) {
		buf_adds(b, " of ");
		md_code(b, r->plan, false);
	}
	if (r->ended) {
		char d[32];
		duration_format(r->duration_ms, d, sizeof d);
		buf_printf(b, ": **%s** (exit %d) in %s.\n\n", status, r->exit_code, d);
	} else {
		buf_adds(b, ": still running (or it did not end).\n\n");
	}
	uint64_t c[ST__COUNT], tol;
	report_counts(r, c, &tol);
	buf_printf(b,
		   "| succeeded | failed | timed out | cancelled | skipped | tolerated |\n"
		   "|---:|---:|---:|---:|---:|---:|\n"
		   "| %llu | %llu | %llu | %llu | %llu | %llu |\n\n",
		   (unsigned long long)c[ST_SUCCESS], (unsigned long long)c[ST_FAILED],
		   (unsigned long long)c[ST_TIMEOUT], (unsigned long long)c[ST_CANCELLED],
		   (unsigned long long)c[ST_SKIPPED], (unsigned long long)tol);
	failures(b, r);
	slowest(b, r);
	if (r->n_warnings) {
		buf_adds(b, "### Warnings\n\n");
		for (size_t i = 0; i < r->n_warnings; i++) {
			buf_adds(b, "- ");
			md_text(b, r->warnings[i]);
			buf_addc(b, '\n');
		}
		buf_addc(b, '\n');
	}
}
