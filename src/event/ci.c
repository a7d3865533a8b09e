/*
 * ci.c — what CI systems read in a run's plain output, beside the lines
 * people read: on GitHub Actions an `::error` (a `::warning` when tolerated)
 * annotation for each task that failed for good, pointing at its step in the
 * plan; on GitLab CI a collapsible section per top-level step; on Buildkite a
 * `---` group per top-level step, expanded (`^^^ +++`) when the step failed.
 * It writes to the plain sink's stream, after it on the bus, so its lines
 * fall where they belong.
 *
 * A task's own lines cannot pose as these: the plain sink prefixes every one
 * with `[TASK] `, and CI systems read a command only at the start of a line.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event/event.h"
#include "util/util.h"

/* The last failure of a task still running or retried, until its step ends it for good. */
struct pending {
	char *task;
	char *step; /* the plan step (task.*'s `step`), for its place in the plan */
	char *label;
	char *reason;
	bool timeout, tolerated;
};

struct ci {
	struct sink base;
	FILE *f;
	struct ci_options o;
	struct pending *p;
	size_t n, cap;
	char *section; /* the open GitLab section's name, or NULL */
	unsigned long n_sections;
	size_t n_annotations;
};

/* Annotations beyond this many are left out: GitHub shows only the first ones of a step anyway. */
#define MAX_ANNOTATIONS 100

enum ci_kind ci_detect(void)
{
	const char *v = getenv("GITHUB_ACTIONS");
	if (v && !strcmp(v, "true"))
		return CI_GITHUB;
	v = getenv("GITLAB_CI");
	if (v && *v)
		return CI_GITLAB;
	v = getenv("BUILDKITE");
	if (v && !strcmp(v, "true"))
		return CI_BUILDKITE;
	return CI_NONE;
}

/*
 * A workflow command's text: made visible first (control characters, C1
 * ones included, as ^X / M-^X, as everywhere baton writes), then %, and in
 * a property (prop) also : and , which end one, escaped as GitHub unescapes
 * them.
 */
static void gh_escape(struct buf *b, const char *s, bool prop)
{
	if (!s)
		return;
	struct buf v = {0};
	str_visible(&v, s, strlen(s));
	for (size_t i = 0; i < v.len; i++) {
		char c = v.data[i];
		if (c == '%')
			buf_adds(b, "%25");
		else if (prop && c == ':')
			buf_adds(b, "%3A");
		else if (prop && c == ',')
			buf_adds(b, "%2C");
		else
			buf_addc(b, c);
	}
	buf_free(&v);
}

static struct pending *find(struct ci *C, const char *task)
{
	for (size_t i = 0; i < C->n; i++)
		if (!strcmp(C->p[i].task, task))
			return &C->p[i];
	return NULL;
}

static void pending_free(struct pending *p)
{
	free(p->task);
	free(p->step);
	free(p->label);
	free(p->reason);
}

static void annotate(struct ci *C, const struct pending *p)
{
	if (C->n_annotations++ >= MAX_ANNOTATIONS)
		return;
	struct buf b = {0};
	buf_adds(&b, p->tolerated ? "::warning " : "::error ");
	int line = 0, col = 0;
	if (C->o.plan && C->o.where && C->o.where(C->o.ud, p->step, &line, &col) && line > 0) {
		buf_adds(&b, "file=");
		gh_escape(&b, C->o.plan, true);
		buf_printf(&b, ",line=%d,col=%d,", line, col > 0 ? col : 1);
	}
	buf_adds(&b, "title=");
	struct buf title = {0};
	event_display_id(&title, p->task, p->label);
	if (p->tolerated)
		buf_adds(&title, " (tolerated)");
	gh_escape(&b, title.data, true);
	buf_free(&title);
	buf_adds(&b, "::");
	gh_escape(&b, p->reason ? p->reason : p->timeout ? "timed out" : "failed", false);
	buf_addc(&b, '\n');
	fwrite(b.data, 1, b.len, C->f);
	buf_free(&b);
}

/* A GitLab section name: letters, digits, _ . - only, and unique within the log. */
static char *section_name(struct ci *C, const char *step)
{
	struct buf b = {0};
	buf_printf(&b, "baton_%lu_", ++C->n_sections);
	for (const char *s = step; *s && b.len < 80; s++)
		buf_addc(&b, (strchr("_.-", *s) || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
			      (*s >= '0' && *s <= '9'))
				     ? *s
				     : '_');
	return buf_detach(&b);
}

static void section_end(struct ci *C)
{
	if (!C->section)
		return;
	fprintf(C->f, "\033[0Ksection_end:%lld:%s\r\033[0K\n", (long long)time(NULL), C->section);
	free(C->section);
	C->section = NULL;
}

static void step_start(struct ci *C, const struct event *e)
{
	struct buf head = {0};
	str_visible(&head, e->step, strlen(e->step));
	if (e->name) {
		buf_adds(&head, " — ");
		str_visible(&head, e->name, strlen(e->name));
	}
	if (C->o.kind == CI_GITLAB) {
		section_end(C);
		C->section = section_name(C, e->step);
		fprintf(C->f, "\033[0Ksection_start:%lld:%s[collapsed=true]\r\033[0K%s\n", (long long)time(NULL),
			C->section, head.data);
	} else if (C->o.kind == CI_BUILDKITE) {
		fprintf(C->f, "--- %s\n", head.data);
	}
	buf_free(&head);
}

static void ci_emit(struct sink *s, const struct event *e)
{
	struct ci *C = (struct ci *)s;
	struct pending *p;
	bool bad = e->status == ST_FAILED || e->status == ST_TIMEOUT;
	switch (e->type) {
	case EV_STEP_START:
		if (e->depth == 1)
			step_start(C, e);
		break;
	case EV_TASK_END:
		if (C->o.kind != CI_GITHUB || !e->task)
			break;
		p = find(C, e->task);
		if (!bad) {
			if (p) {
				pending_free(p);
				*p = C->p[--C->n];
			}
			break;
		}
		if (!p) {
			if (C->n == C->cap) {
				C->cap = C->cap ? 2 * C->cap : 16;
				C->p = xrealloc(C->p, C->cap * sizeof *C->p);
			}
			p = &C->p[C->n++];
			memset(p, 0, sizeof *p);
			p->task = xstrdup(e->task);
		}
		free(p->step);
		free(p->label);
		free(p->reason);
		p->step = e->step ? xstrdup(e->step) : NULL;
		p->label = e->label ? xstrdup(e->label) : NULL;
		p->reason = e->reason ? xstrdup(e->reason) : NULL;
		p->timeout = e->status == ST_TIMEOUT;
		p->tolerated = e->tolerated;
		break;
	case EV_STEP_END:
		/* the step of a task ended: its last failure is for good (no retry follows) */
		if (C->o.kind == CI_GITHUB && (p = find(C, e->step))) {
			if (bad || p->tolerated)
				annotate(C, p);
			pending_free(p);
			*p = C->p[--C->n];
		}
		if (e->depth == 1 && C->o.kind == CI_GITLAB)
			section_end(C);
		if (e->depth == 1 && C->o.kind == CI_BUILDKITE && bad)
			fputs("^^^ +++\n", C->f);
		break;
	case EV_RUN_END:
		section_end(C);
		break;
	default:
		break;
	}
}

static void ci_close(struct sink *s)
{
	struct ci *C = (struct ci *)s;
	section_end(C);
	fflush(C->f);
	for (size_t i = 0; i < C->n; i++)
		pending_free(&C->p[i]);
	free(C->p);
	free(C->section);
	free(C);
}

struct sink *sink_ci_new(FILE *f, const struct ci_options *o)
{
	struct ci *C = xcalloc(1, sizeof *C);
	C->base.emit = ci_emit;
	C->base.close = ci_close;
	C->f = f;
	C->o = *o;
	return &C->base;
}
