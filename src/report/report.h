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

/*
 * The report data document (v 1): what the HTML page embeds and draws, and
 * what report_data returns. Times are milliseconds from the run's start
 * (run.start's ts); a time not known is null.
 *
 * {"v":1,
 *  "run":{"id","plan","name","status","exit_code","start" (ISO 8601 UTC),
 *         "duration_ms","dry_run",
 *         "counts":{"success","failed","timeout","cancelled","skipped","tolerated"}},
 *  "steps":[{"id","name"|null,"kind","depth","label"|null,"status"|null,
 *            "start_ms"|null,"end_ms"|null}],
 *  "tasks":[{"id","step","host"|null,"item"|null,"label"|null,"attempt",
 *            "start_ms","end_ms"|null,"status"|null (null: still running),
 *            "exit_code"|null,"signal"|null,"reason"|null,"command",
 *            "tolerated","reused",
 *            "output":[["o"|"e", LINE]...] (the attempt's last lines),
 *            "output_dropped" (lines before those)}],   one per attempt
 *  "batches":[{"step","batch","start_ms","end_ms"|null,"instances","failed"}],
 *  "barriers":[{"barrier","step","release_ms","arrived","expected"}],
 *  "warnings":[MESSAGE...]}
 */
json_t *report_data(const struct report *r);

/* Writes the self-contained HTML timeline of data (report_data's document) to f; false with *err. */
bool report_html_write(FILE *f, const json_t *data, char **err);

#endif
