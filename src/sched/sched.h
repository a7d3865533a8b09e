/*
 * sched: runs a compiled graph on one libuv loop. Steps become tasks in a
 * priority queue; a task starts only when every limiter above it (global
 * concurrency for a local task, its host's max_sessions and max_hosts for a
 * remote one, max_concurrency, semaphores) has room, and takes them all at
 * once. Here live modes, retries, timeouts, cancellation and signals. The
 * scheduler knows nothing about terminals or SSH: it talks to executors
 * through exec.h and to people through events.
 */
#ifndef BATON_SCHED_H
#define BATON_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "event/event.h"
#include "exec/exec.h"
#include "graph/graph.h"

/* Exit statuses of a run (architecture.md). */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,
	EXIT_USAGE = 2,
	EXIT_TIMEOUT = 3,
	EXIT_LOCKED = 4, /* the plan's `lock` was held by another run (cmd/run.c, store/lock.c) */
	EXIT_OUTPUT = 5, /* the run succeeded, but some of its output could not be written */
	EXIT_INTERNAL = 70, /* out of memory, or the scheduler stalled: a bug in baton, never the plan's doing */
	EXIT_SIGINT = 130,
	EXIT_SIGTERM = 143,
};

/* What an earlier run recorded of a task that resume carries over instead of running it. */
struct sched_reuse {
	uint64_t duration_ms;
	const char *out, *err; /* captured output (stdout, stderr), as recorded; NULL: none */
	size_t out_len, err_len;
	const char *outputs; /* its $BATON_OUTPUT values, a JSON object as recorded; NULL: none */
	/* filled by the scheduler */
	const char *step, *host, *item, *command, *env;
};

/* A command run on a remote host before the graph starts, and waited for. */
struct sched_preamble {
	const char *host; /* inventory name */
	const char *command;
};

/*
 * Who answers an `approve` gate (cmd/ asks on the terminal: the scheduler
 * knows nothing about terminals). Gates are asked one at a time.
 * preset: the answer known without asking — "--yes" or "BATON_APPROVE"
 * (approved), "no terminal" (not) — or NULL: a person must be asked.
 * ask: starts reading the answer to gate step's message (the sinks print
 * approve.wait's question) without blocking the loop; it calls answer(ctx, ok)
 * from the loop once given. False: it cannot ask (no terminal after all).
 * stop: stops asking (the gate timed out or the run is cancelled); answer is
 * then not called.
 */
struct sched_approver {
	const char *(*preset)(void *ud, bool *approved);
	bool (*ask)(void *ud, const char *step, const char *message, void (*answer)(void *ctx, bool approved),
		    void *ctx);
	void (*stop)(void *ud);
	void *ud;
};

struct sched_options {
	uv_loop_t *loop;
	struct bus *bus;
	struct executor *exec;
	struct executor *ssh; /* for steps with `on:` remote hosts; NULL when the plan has none */
	struct exec_fds *fds; /* the descriptor budget both executors share, or NULL */
	const char *run_id;
	bool dry_run;
	/*
	 * resume: true (and r filled) when task, about to run command (as shown:
	 * secrets not yet masked) with env (the plan's part of its environment,
	 * as event.env; NULL: none) on host (NULL: local), succeeded in the run
	 * resumed: it is then not run, and keeps what was recorded. NULL: none.
	 */
	bool (*reuse)(void *ud, const char *task, const char *command, const char *env, const char *host,
		      struct sched_reuse *r);
	void *reuse_ud;
	const char *resumed_from; /* for run.start */
	/* resume of a crashed run: what ends there what it left running on remote hosts */
	const struct sched_preamble *preamble;
	size_t n_preamble;
	/* answers `approve` gates; NULL: nobody can, every gate fails as with no terminal */
	const struct sched_approver *approver;
};

/* Runs g to the end and returns the run's exit status. */
int sched_run(const struct graph *g, const struct sched_options *o);

/*
 * The ready queue: a binary heap ordered by priority (higher first), then
 * plan order (lower first). Items are embedded in their owners.
 */
struct qitem {
	long priority;
	uint64_t order;
	uint64_t seq; /* enqueue order: items of one for_each keep their list order */
};

struct heap {
	struct qitem **v;
	size_t n;
	size_t cap;
};

bool qitem_before(const struct qitem *a, const struct qitem *b);
void heap_push(struct heap *h, struct qitem *it);
struct qitem *heap_pop(struct heap *h);
struct qitem *heap_peek(const struct heap *h);
void heap_free(struct heap *h);

/* A counting limit with a queue of the tasks parked on it while it is full. */
struct limiter {
	int capacity;
	int used;
	struct heap waiters;
};

/*
 * The barrier's release rule (plan-format.md section 4): with n
 * participants, state[i] 1 when participant i waits at the barrier, and
 * awaited[i] when it is still running (an instance that ended before
 * arriving is no longer awaited), the barrier releases once someone waits and
 * every awaited participant does.
 */
bool barrier_can_release(const unsigned char *state, const bool *awaited, size_t n);

/*
 * Takes one unit of every limiter in ls, or none: returns -1 when all were
 * taken, else the index of the first limiter that had no room.
 */
int limiters_try_take(struct limiter *const *ls, size_t n);
void limiters_release(struct limiter *const *ls, size_t n);

#endif
