/*
 * fuzz_plan.c — libFuzzer target for the plan loader: any bytes must load or
 * be rejected with diagnostics, never crash, hang or leak. When the input
 * loads, the graph is compiled and the preview rendered too (text, JSON,
 * DOT). Inventories are fuzzed inline (`inventory: {hosts: ...}`); no file is
 * ever read.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "graph/graph.h"
#include "plan/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diags d = {0};
	/*
	 * Hosts are resolved too, but never from this machine's files: no
	 * `inventory:` path is read (no_files) and ~ points nowhere, so neither the
	 * real ~/.ssh/config nor whatever path the input names is opened.
	 */
	struct load_options lo = {.home = "/nonexistent/baton-fuzz-home", .no_files = true};
	struct plan *p = plan_load_buffer_opts("fuzz.yaml", (const char *)data, size, &lo, &d);
	if (p) {
		struct graph_options o = {0};
		struct graph *g = graph_compile(p, &o, &d);
		if (g) {
			/* the secrets' forms and masking, over the whole dry run */
			size_t n;
			char **sec = plan_secret_values(p, &n);
			FILE *f = fopen("/dev/null", "w");
			if (f) {
				struct preview *pv = preview_new(g, (const char *const *)sec, n);
				preview_text(pv, f, false);
				preview_json(pv, f);
				preview_dot(pv, f);
				preview_free(pv);
				fclose(f);
			}
			for (size_t i = 0; i < n; i++)
				free(sec[i]);
			free(sec);
			graph_free(g);
		}
		plan_free(p);
	}
	FILE *f = fopen("/dev/null", "w");
	if (f) {
		diags_print(&d, f);
		fclose(f);
	}
	diags_free(&d);
	return 0;
}
