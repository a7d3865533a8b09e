/*
 * common.c — what several subcommands share: variable overrides from the
 * command line, loading a plan with every error printed, usage errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "plan/plan.h"

void var_args_init(struct var_args *v)
{
	v->vars = json_object();
	v->bad = false;
}

void var_args_add(struct var_args *v, bool is_file, const char *arg)
{
	if (is_file) {
		struct diags d = {0};
		if (!plan_load_var_file(arg, v->vars, &d)) {
			diags_print(&d, stderr);
			v->bad = true;
		}
		diags_free(&d);
		return;
	}
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg) {
		fprintf(stderr, "baton: --var %s: expected NAME=VALUE\n", arg);
		v->bad = true;
		return;
	}
	char *name = xstrndup(arg, (size_t)(eq - arg));
	/* typed like a plain YAML scalar, so --var dry_run=false is false */
	json_t *probe = json_string(eq + 1); /* NULL when not UTF-8 */
	json_t *val = probe ? plan_scalar_json(eq + 1) : NULL;
	json_decref(probe);
	if (!val) {
		fprintf(stderr, "baton: --var %s: the value is not valid UTF-8\n", name);
		v->bad = true;
	} else {
		json_object_set_new(v->vars, name, val);
	}
	free(name);
}

void var_args_free(struct var_args *v)
{
	json_decref(v->vars);
	v->vars = NULL;
}

struct plan *cmd_load_plan(const char *path, const struct load_options *o)
{
	struct diags d = {0};
	struct plan *p = plan_load_file_opts(path, o, &d);
	diags_print(&d, stderr);
	if (!p && d.n)
		fprintf(stderr, "%s: %zu error%s\n", path, d.n, d.n == 1 ? "" : "s");
	diags_free(&d);
	return p;
}

int cmd_usage_error(const char *name, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "baton %s: ", name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'baton %s --help'.\n", name);
	return 2;
}
