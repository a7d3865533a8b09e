/*
 * cmd: the command line. main.c dispatches to one cmd_NAME per subcommand;
 * each is a thin layer over src/. common.c holds what several share.
 */
#ifndef BATON_CMD_H
#define BATON_CMD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define BATON_VERSION "0.1.0"

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_version(int argc, char **argv);

/* Variables from --var K=V and --var-file F, applied in command-line order. */
struct var_args {
	json_t *vars; /* object */
	bool bad;
};
void var_args_init(struct var_args *v);
/* Handles one --var or --var-file; prints an error and sets bad on failure. */
void var_args_add(struct var_args *v, bool is_file, const char *arg);
void var_args_free(struct var_args *v);

struct load_options;
/* Loads plan `path` with the command line's options (--var, --inventory, --limit), printing every error. NULL on error. */
struct plan *cmd_load_plan(const char *path, const struct load_options *o);

/* Prints "baton NAME: MSG" and a hint to see --help; returns 2. */
int cmd_usage_error(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
