/*
 * fuzz_plan.c — libFuzzer target for the plan loader: any bytes must load or
 * be rejected with diagnostics, never crash, hang or leak. When the input
 * loads, the graph is compiled and the dry run rendered too.
 */
#include <stdint.h>
#include <stdio.h>

#include "graph/graph.h"
#include "plan/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diags d = {0};
	struct plan *p = plan_load_buffer("fuzz.yaml", (const char *)data, size, NULL, &d);
	if (p) {
		struct graph_options o = {0};
		struct graph *g = graph_compile(p, &o, &d);
		if (g) {
			FILE *f = fopen("/dev/null", "w");
			if (f) {
				graph_render(g, NULL, 0, f, false);
				fclose(f);
			}
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
