/*
 * check.c — `baton check PLAN...`: load and validate each plan, print every
 * error as FILE:LINE:COL: error: MESSAGE, exit 2 if there was any.
 */
#include <getopt.h>
#include <stdio.h>

#include "cmd.h"
#include "graph/graph.h"
#include "plan/plan.h"

static const char help[] =
	"usage: baton check [--var K=V]... [--var-file F] [--secret-file K=PATH]... [--inventory F]\n"
	"                   [--limit P] PLAN...\n"
	"\n"
	"Validates each plan and reports every error as FILE:LINE:COL: error: MESSAGE.\n"
	"Says how many steps and tasks (commands, as a run counts them) each plan has.\n"
	"Runs nothing. Exit status: 0 when every plan is valid, 2 otherwise. Required\n"
	"inputs need not be given here; what --var and --var-file give is checked.\n"
	"\n"
	"  --var K=V       set the var or input K, typed as its default or type (a list or map\n"
	"                  in YAML flow syntax: 'K=[a, b]'); may be repeated; not for secrets\n"
	"  --var-file F    set vars and inputs from a YAML map in F\n"
	"  --secret-file K=PATH  set secret K to the contents of file PATH (may be repeated)\n"
	"  --inventory F   hosts and groups from F (replaces each plan's 'inventory')\n"
	"  --limit P       narrow every 'on:' to the hosts P matches (comma-separated\n"
	"                  patterns: host, group, all, glob, !exclusion)\n"
	"  -q, --quiet     print only errors\n"
	"  -h, --help      show this help\n"
	"\n"
	"Environment: BATON_SECRET_NAME sets the secret NAME (the name upper-cased).\n";

/* the options of 'baton check' as getopt_long reads them (completion offers them too) */
const char check_shorts[] = "qh";
const struct option check_opts[] = {{"var", required_argument, 0, 'v'},
					     {"var-file", required_argument, 0, 'f'},
					     {"secret-file", required_argument, 0, 's'},
					     {"inventory", required_argument, 0, 'i'},
					     {"limit", required_argument, 0, 'l'},
					     {"quiet", no_argument, 0, 'q'},
					     {"help", no_argument, 0, 'h'},
					     {0, 0, 0, 0}};

int cmd_check(int argc, char **argv)
{
	struct var_args va;
	var_args_init(&va);
	struct load_options lo = {.secrets_optional = true, .inputs_optional = true};
	bool quiet = false;
	int c;
	optind = 0;
	opterr = 0; /* cmd_bad_option says why, with "did you mean" */
	while ((c = getopt_long(argc, argv, check_shorts, check_opts, NULL)) != -1) {
		switch (c) {
		case 'v':
		case 'f':
			var_args_add(&va, c == 'f', optarg);
			break;
		case 's':
			var_args_secret_file(&va, optarg);
			break;
		case 'i':
		case 'l':
			if (c == 'i' ? lo.inventory != NULL : lo.limit != NULL) {
				var_args_free(&va);
				return cmd_usage_error("check", "--%s may be given once%s", c == 'i' ? "inventory" : "limit",
						       c == 'l' ? " (it takes a comma-separated list)" : "");
			}
			*(c == 'i' ? &lo.inventory : &lo.limit) = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			fputs(help, stdout);
			var_args_free(&va);
			return 0;
		default:
			var_args_free(&va);
			return cmd_bad_option("check", argc, argv, check_opts, check_shorts);
		}
	}
	if (optind >= argc) {
		var_args_free(&va);
		return cmd_usage_error("check", "no plan given");
	}
	int rc = va.bad ? 2 : 0;
	var_args_load_options(&va, &lo);
	for (int i = optind; i < argc; i++) {
		struct plan *p = cmd_load_plan(argv[i], &lo);
		if (!p) {
			rc = 2;
			continue;
		}
		if (!quiet) {
			/* tasks as a run counts them (commands, when:-skipped included; handlers' only as they run) */
			struct diags d = {0};
			struct graph *g = graph_compile(p, &(struct graph_options){0}, &d);
			diags_free(&d);
			printf("%s: ok (%zu step%s, ", argv[i], p->n_steps, p->n_steps == 1 ? "" : "s");
			if (g && g->tasks_exact)
				printf("%zu task%s)\n", g->n_tasks, g->n_tasks == 1 ? "" : "s");
			else
				printf("tasks known at run time)\n");
			graph_free(g);
		}
		plan_free(p);
	}
	var_args_free(&va);
	return rc;
}
