/*
 * html.c — TEMPORARY stand-in for the HTML timeline, so that the h-report
 * branch builds and `--html`/`--report` can be tested: a minimal valid page
 * embedding the report data document. The real page (another helper's
 * src/report/html.c) replaces this file at merge.
 */
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "util/util.h"

bool report_html_write(FILE *f, const json_t *data, char **err)
{
	/* JSON_ESCAPE_SLASH: "</script>" in any text cannot end the script element */
	char *json = json_dumps(data, JSON_COMPACT | JSON_ESCAPE_SLASH);
	if (!json) {
		*err = xstrdup("cannot serialise the report data");
		return false;
	}
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>baton report</title></head>\n"
	      "<body><p>baton report (placeholder page)</p>\n"
	      "<script type=\"application/json\" id=\"baton-data\">",
	      f);
	fputs(json, f);
	fputs("</script>\n</body></html>\n", f);
	free(json);
	if (ferror(f)) {
		*err = xstrdup("write error");
		return false;
	}
	return true;
}
