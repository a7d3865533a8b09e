/*
 * output.h — the $BATON_OUTPUT file of a command (internal to src/exec/):
 * where it lives locally, and the shell words that make and read it on an
 * SSH host. The parsing of its content is public (exec.h).
 */
#ifndef BATON_EXEC_OUTPUT_H
#define BATON_EXEC_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

#include "exec/exec.h"
#include "util/util.h"

/* The local executor's private directory for the files, made on first use. */
struct exec_outdir {
	char *dir; /* NULL until the first file */
	unsigned long next;
};

/* Creates an empty file (mode 0600) for one command; its path (caller frees), or NULL with *err. */
char *exec_outdir_file(struct exec_outdir *o, char **err);
/* Reads the file into out (at most EXEC_OUTPUT_MAX bytes) and removes it; false with *err. A missing file is empty. */
bool exec_output_read(const char *path, struct buf *out, char **err);
/* Removes the directory and what is left in it (run end). */
void exec_outdir_remove(struct exec_outdir *o);
/* The reason a file over EXEC_OUTPUT_MAX fails its task (caller frees). */
char *exec_output_too_big(void);

/* The wrapper's words that set and export BATON_OUTPUT on a host: a new file (want), else /dev/null. */
const char *exec_output_remote_setup(bool want);
/* The command that prints the file at path and removes it (caller frees). */
char *exec_output_fetch_command(const char *path);

/* A remote command's file, as ssh.c reads it back: where it is, what came back, or why nothing did. */
struct exec_rout {
	bool want; /* spec.output */
	char *path; /* on the host, from the marker line; NULL: none */
	struct buf data;
	bool over; /* more than EXEC_OUTPUT_MAX came */
	char *error;
	enum { ROUT_NONE, ROUT_ASKED, ROUT_DONE } state;
};
/* What follows the pgid on the marker line (s: " PATH", n bytes; NULL: no marker came). */
void exec_rout_marker(struct exec_rout *o, const char *s, size_t n, const char *host);
/* Bytes the reading command printed: kept up to the bound. */
void exec_rout_take(struct exec_rout *o, const char *d, size_t n);
/* The reading command ended (error: why it failed, or NULL). */
void exec_rout_fetched(struct exec_rout *o, const char *error, const char *host);
/* Sets st's output fields from what came back (only when o->want). */
void exec_rout_status(struct exec_rout *o, struct exec_status *st);
void exec_rout_free(struct exec_rout *o);

#endif
