/*
 * exec: runs one command somewhere and reports its output and its end. The
 * scheduler talks to every executor through struct executor; local.c spawns
 * processes with posix_spawn in their own process group. Executors know
 * nothing about plans.
 */
#ifndef BATON_EXEC_H
#define BATON_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* What to run. argv is exec'd as is; when it cannot be found and fallback is
 * set, fallback runs instead (the shell form of a directly exec'd string). */
struct exec_spec {
	char *const *argv;
	char *const *fallback;
	char *const *envp;
	const char *cwd; /* NULL: baton's own */
};

/* How a process ended. */
struct exec_status {
	int exit_code;     /* -1 when killed by a signal or never started */
	int signal;        /* 0 when it exited */
	const char *error; /* set when it could not be started */
};

struct exec_callbacks {
	/* A chunk of output; stream is 1 (stdout) or 2 (stderr). */
	void (*output)(void *ud, int stream, const char *data, size_t len);
	/* The process has been reaped and its output has reached EOF. Last call. */
	void (*done)(void *ud, const struct exec_status *st);
};

struct exec_proc;
struct executor;

struct executor_ops {
	/* Starts spec; returns NULL with *err (caller frees) if nothing could start. */
	struct exec_proc *(*start)(struct executor *x, const struct exec_spec *spec, const struct exec_callbacks *cb,
				   void *ud, char **err);
	/* Sends sig to the whole process group of a running proc. */
	void (*signal)(struct exec_proc *p, int sig);
	/* Releases the executor once every proc has finished and the loop has run. */
	void (*free)(struct executor *x);
};

struct executor {
	const struct executor_ops *ops;
};

/* The local executor: posix_spawn, own process group, pipes read on loop. */
struct executor *exec_local_new(uv_loop_t *loop);

/* True when a command string can be exec'd directly without changing what the user observes. */
bool exec_is_simple_command(const char *cmd);
/* Splits a simple command into words (caller frees each and the array). */
char **exec_split_words(const char *cmd, size_t *n);

#endif
