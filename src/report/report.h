/*
 * report: what people and CI systems keep of a run — JUnit XML, a Markdown
 * summary, a self-contained HTML timeline — built from the run's events:
 * live (report_sink_new, one more sink on the bus) or after the fact
 * (report_replay of the run store's events.jsonl). Both fill the same model
 * (struct report); every writer reads only the model, so `run --junit` and
 * `baton report RUN --junit` write the same file for the same run. Secrets
 * are masked already: the bus masks every event before a sink sees it.
 */
#ifndef BATON_REPORT_H
#define BATON_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "event/event.h"

struct report;
struct bus;
struct buf;

/* How much of each task attempt's output the model keeps: its last lines, each cut at REPORT_LINE_MAX bytes. */
#define REPORT_TAIL_LINES 20
#define REPORT_LINE_MAX 300

struct report *report_new(void);
void report_free(struct report *r);
/*
 * Feeds one event to the model: run.start, step.start/end, task.start,
 * task.output, task.retry, task.end, batch.start/end, barrier.release,
 * warning, run.end (others are ignored). One entry per task attempt. Text
 * is kept as valid UTF-8: a byte that is not becomes the text \xNN, as the
 * JSON sink writes it, so a live model and a replayed one are the same.
 */
void report_feed(struct report *r, const struct event *e);
/*
 * Feeds every complete line of an events.jsonl file (the run store's) to r.
 * A line that is not ended (a running run's last) or not an event is
 * skipped. False with *err when the file cannot be read.
 */
bool report_replay(struct report *r, const char *path, char **err);

/*
 * The report data document (v 1): what the HTML page embeds and draws, and
 * what report_data returns. Times are milliseconds from the run's start
 * (run.start's ts); a time not known is null. All text is valid UTF-8
 * (bytes that were not are the text \xNN) and is NOT escaped for HTML:
 * the page must escape it, and must embed the document so that no text ends
 * its script element (e.g. json_dumps with JSON_ESCAPE_SLASH).
 *
 * {"v":1,
 *  "run":{"id","plan","name","status"|null (null: not ended),"exit_code"|null,
 *         "start" (ISO 8601 UTC, run.start's ts),
 *         "duration_ms" (run.end's; before it, the latest time known),"dry_run",
 *         "counts":{"success","failed","timeout","cancelled","skipped","tolerated"}},
 *  "steps":[{"id","name"|null (events carry no name: null today),"kind","depth"
 *            (1: top level; + each step it is inside),"label"|null,"status"|null,
 *            "start_ms"|null (null: never started),"end_ms"|null}],   in the order first seen
 *  "tasks":[{"id","step","host"|null,"item"|null,"label"|null,"attempt",
 *            "start_ms","end_ms"|null,"status"|null (null: still running),
 *            "exit_code"|null,"signal"|null,"reason"|null,"command",
 *            "tolerated","reused",
 *            "output":[["o"|"e", LINE]...] (the attempt's last lines, at most
 *                      REPORT_TAIL_LINES, each cut at REPORT_LINE_MAX bytes + "…"),
 *            "output_dropped" (lines before those)}],   one per attempt, in start order
 *  "batches":[{"step","batch","start_ms","end_ms"|null,"instances" (how many),"failed"}],
 *  "barriers":[{"barrier","step","release_ms","arrived","expected"}],
 *  "warnings":[MESSAGE...]}   (at most 1000)
 *
 * counts are run.end's (tasks by status; a step skipped whole counts once),
 * or while the run has not ended, those of the tasks' last attempts and of
 * the steps skipped or cancelled before they started anything; tolerated:
 * the tasks whose last attempt's failure was tolerated (counted in failed
 * or timeout too). A task carried over by resume (reused) has no task.start:
 * its start_ms is its end less its duration.
 */
json_t *report_data(const struct report *r);

/* Writes the self-contained HTML timeline of data (report_data's document) to f; false with *err. */
bool report_html_write(FILE *f, const json_t *data, char **err);

/*
 * JUnit XML (junit.c), as Jenkins and GitLab read it (tests/fixtures/junit.xsd):
 * <testsuites> holding one <testsuite> for the run (name: the plan's name),
 * one <testcase> per task (all its attempts; classname: its step's full id,
 * name: the task id and its label, "fan#0 (x-a)"; time: the attempts'
 * durations in seconds). A failed task has <failure message=REASON> with the
 * last lines of its output, a timed-out one <error type="timeout">, a task
 * cancelled or a step skipped (never run) <skipped message=...>, a tolerated
 * failure <skipped message="tolerated failure: REASON"> (so the build stays
 * green, and it is still said); earlier attempts are noted in <system-out>
 * with the output's tail (stderr's lines in <system-err>).
 */
void report_junit(struct buf *b, const struct report *r);
/*
 * The Markdown summary (markdown.c): status, counts, failures with their
 * last lines of output (in fences no output can close), the 10 slowest tasks.
 */
void report_markdown(struct buf *b, const struct report *r);

enum report_format { REPORT_JUNIT, REPORT_HTML, REPORT_MARKDOWN };
/* Writes r to f as fmt; false with *err. */
bool report_write(FILE *f, enum report_format fmt, const struct report *r, char **err);

/*
 * A report file, opened before the run starts so that a path that cannot
 * be written fails at once: a temporary file next to path (.NAME.XXXXXX,
 * mode 0600), renamed over path once written, so no reader ever sees half a
 * report. "-" is standard output. NULL with *err ("PATH: REASON").
 */
struct report_file;
struct report_file *report_file_open(enum report_format fmt, const char *path, char **err);
const char *report_file_path(const struct report_file *f);
/* Writes r, renames the file into place and frees f; false with *err (the temporary file removed). */
bool report_file_commit(struct report_file *f, const struct report *r, char **err);
/* Removes the temporary file and frees f (NULL: nothing). */
void report_file_discard(struct report_file *f);
/* Closes and frees f, leaving its temporary file to another process that has it (run --detach's foreground). */
void report_file_release(struct report_file *f);

/* Appends the Markdown summary to path (GITHUB_STEP_SUMMARY) with O_APPEND; false with *err. */
bool report_append_summary(const char *path, const struct report *r, char **err);

/*
 * The live report: a sink that feeds a model and, when it closes (after
 * run.end, also of a failed or interrupted run), commits files[0..n) (it
 * takes them) and appends to step_summary (NULL: none). A file it cannot
 * write is said through bus_warn (the run's exit status then says output was
 * lost).
 */
struct sink *report_sink_new(struct report_file **files, size_t n, const char *step_summary, struct bus *bus);

#endif
