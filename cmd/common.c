/*
 * common.c — what several subcommands share: variable overrides and secret
 * files from the command line, loading a plan with every error printed,
 * usage errors (an option getopt refused, with "did you mean").
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "plan/plan.h"

/* A secret file larger than this is refused: a secret is a token or a key, not a data set. */
#define SECRET_FILE_MAX (1u << 20)

void var_args_init(struct var_args *v)
{
	v->sources = NULL;
	v->n_sources = 0;
	v->cli_names = json_object();
	v->secret_files = json_object();
	v->bad = false;
}

/* The loader reads the files and types every value against the plan; here only the form NAME=VALUE is checked. */
void var_args_add(struct var_args *v, bool is_file, const char *arg)
{
	if (!is_file) {
		const char *eq = strchr(arg, '=');
		if (!eq || eq == arg) {
			fprintf(stderr, "baton: --var %s: expected NAME=VALUE\n", arg);
			v->bad = true;
			return;
		}
		char *name = xstrndup(arg, (size_t)(eq - arg));
		json_object_set_new(v->cli_names, name, json_true());
		free(name);
	}
	v->sources = xrealloc(v->sources, (v->n_sources + 1) * sizeof *v->sources);
	v->sources[v->n_sources++] = (struct var_source){.file = is_file, .text = arg};
}

/*
 * Reads a secret's file whole, one trailing newline (\n or \r\n) removed.
 * Returns the value as a JSON string, or NULL after printing why not.
 */
static json_t *read_secret_file(const char *name, const char *path)
{
	FILE *f = fopen(path, "rbe");
	if (!f) {
		fprintf(stderr, "baton: --secret-file %s=%s: %s\n", name, path, strerror(errno));
		return NULL;
	}
	struct buf b = {0};
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len <= SECRET_FILE_MAX)
		buf_add(&b, chunk, n);
	const char *why = ferror(f) ? strerror(errno) : NULL;
	fclose(f);
	if (!why && b.len > SECRET_FILE_MAX)
		why = "larger than 1 MiB";
	if (!why && b.len && memchr(b.data, '\0', b.len))
		why = "holds a NUL byte, which no command can be given";
	if (!why && b.len && b.data[b.len - 1] == '\n')
		b.len -= b.len >= 2 && b.data[b.len - 2] == '\r' ? 2 : 1;
	json_t *j = why ? NULL : json_stringn(b.data ? b.data : "", b.len);
	if (!why && !j)
		why = "not valid UTF-8";
	if (why)
		fprintf(stderr, "baton: --secret-file %s=%s: %s\n", name, path, why);
	buf_free(&b);
	return j;
}

void var_args_secret_file(struct var_args *v, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1]) {
		fprintf(stderr, "baton: --secret-file %s: expected NAME=PATH\n", arg);
		v->bad = true;
		return;
	}
	char *name = xstrndup(arg, (size_t)(eq - arg));
	json_t *val = read_secret_file(name, eq + 1);
	if (val)
		json_object_set_new(v->secret_files, name, val);
	else
		v->bad = true;
	free(name);
}

void var_args_load_options(const struct var_args *v, struct load_options *o)
{
	o->var_sources = v->sources;
	o->n_var_sources = v->n_sources;
	o->cli_vars = v->cli_names;
	o->secret_files = v->secret_files;
}

void var_args_free(struct var_args *v)
{
	free(v->sources);
	v->sources = NULL;
	v->n_sources = 0;
	json_decref(v->cli_names);
	json_decref(v->secret_files);
	v->cli_names = v->secret_files = NULL;
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

/* The long option named by the n bytes at s: exact, else the only one they begin (as getopt_long reads them). */
static const struct option *long_option(const struct option *opts, const char *s, size_t n)
{
	const struct option *found = NULL;
	size_t prefixed = 0;
	for (const struct option *o = opts; o->name; o++) {
		if (strncmp(o->name, s, n))
			continue;
		if (!o->name[n])
			return o;
		found = o;
		prefixed++;
	}
	return prefixed == 1 ? found : NULL;
}

/* "; did you mean '--NAME'?" when a long option is close to the n bytes at s, else "". */
static void option_guess(const struct option *opts, const char *s, size_t n, char *out, size_t outlen)
{
	size_t k = 0;
	while (opts[k].name)
		k++;
	const char **names = xmalloc((k ? k : 1) * sizeof *names);
	for (size_t i = 0; i < k; i++)
		names[i] = opts[i].name;
	char *key = xstrndup(s, n);
	const char *hint = closest_name(key, names, k);
	if (hint)
		snprintf(out, outlen, "; did you mean '--%s'?", hint);
	else
		out[0] = '\0';
	free(key);
	free(names);
}

/* Reports a long option (argv word w, "--" included) getopt_long refused. */
static int bad_long_option(const char *name, const char *w, const struct option *opts)
{
	const char *s = w + 2;
	size_t n = strcspn(s, "=");
	if (!n)
		return cmd_usage_error(name, "unknown option '%s'", w);
	const struct option *o = long_option(opts, s, n);
	if (o && s[n] == '=' && o->has_arg == no_argument)
		return cmd_usage_error(name, "option '--%s' takes no value (got '%s')", o->name, w);
	if (o)
		return cmd_usage_error(name, "option '--%s' needs a value", o->name);
	struct buf b = {0};
	for (const struct option *x = opts; x->name; x++)
		if (!strncmp(x->name, s, n))
			buf_printf(&b, "%s--%s", b.len ? ", " : "", x->name);
	int rc;
	if (b.len) {
		rc = cmd_usage_error(name, "option '%.*s' is ambiguous: %s", (int)(n + 2), w, b.data);
	} else {
		char guess[128];
		option_guess(opts, s, n, guess, sizeof guess);
		rc = cmd_usage_error(name, "unknown option '%.*s'%s", (int)(n + 2), w, guess);
	}
	buf_free(&b);
	return rc;
}

int cmd_bad_option(const char *name, int argc, char *const *argv, const struct option *opts, const char *shorts)
{
	const char *w = optind > 0 && optind <= argc ? argv[optind - 1] : "";
	if (!strncmp(w, "--", 2) && w[2]) {
		/* a long option: unknown, ambiguous, or its value missing or not wanted */
		const char *s = w + 2;
		const struct option *o = long_option(opts, s, strcspn(s, "="));
		if (!optopt || (o && o->val == optopt))
			return bad_long_option(name, w, opts);
	}
	const char *sc = optopt ? strchr(shorts, optopt) : NULL;
	if (sc && sc[1] == ':')
		return cmd_usage_error(name, "option '-%c' needs a value", optopt);
	/* the word the short option is in: getopt may still be inside it (-dry-run) */
	const char *word = optind < argc && argv[optind][0] == '-' && strchr(argv[optind], optopt) ? argv[optind] : w;
	char guess[128] = "";
	if (word[0] == '-' && word[1] != '-' && strlen(word) > 2)
		option_guess(opts, word + 1, strlen(word + 1), guess, sizeof guess);
	if (*guess)
		return cmd_usage_error(name, "unknown option '-%c' (in '%s')%s", optopt, word, guess);
	return cmd_usage_error(name, "unknown option '-%c'", optopt);
}

bool cmd_dumb_terminal(void)
{
	const char *t = getenv("TERM");
	return !t || !*t || !strcmp(t, "dumb");
}
