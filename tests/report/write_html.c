/*
 * Test helper: writes the HTML report of a report data document (a JSON
 * file, report.h) with report_html_write, so the browser tests can open
 * pages of known content before any run makes one.
 *   build/report-html DATA.json OUT.html
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "report/report.h"

int main(int argc, char **argv)
{
	json_error_t jerr;
	char *err = NULL;
	if (argc != 3) {
		fprintf(stderr, "usage: report-html DATA.json OUT.html\n");
		return 2;
	}
	json_t *data = json_load_file(argv[1], 0, &jerr);
	if (!data) {
		fprintf(stderr, "report-html: %s:%d: %s\n", argv[1], jerr.line, jerr.text);
		return 2;
	}
	FILE *f = fopen(argv[2], "w");
	if (!f) {
		perror(argv[2]);
		json_decref(data);
		return 1;
	}
	bool ok = report_html_write(f, data, &err);
	json_decref(data);
	if (fclose(f) != 0 && ok) {
		perror(argv[2]);
		return 1;
	}
	if (!ok) {
		fprintf(stderr, "report-html: %s\n", err);
		free(err);
		return 1;
	}
	return 0;
}
