/*
 * sshctl.h — baton's own shell on an SSH host (internal to src/exec/): one
 * long-lived `sh` per connection, on a session of its own, to which ssh.c
 * writes short requests (signal a process group, is a process alive?) and
 * from which it reads one tagged answer line each. Nothing is forked on the
 * host per request, so ending a task's group costs one round trip. This
 * file is the protocol and the queue; ssh.c carries the bytes.
 */
#ifndef BATON_EXEC_SSHCTL_H
#define BATON_EXEC_SSHCTL_H

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

/* An answer: 1 or 0 (alive: the process exists or not; kill: sent), -1 when the shell went away first. */
typedef void sshctl_done_fn(void *ud, int answer);

struct sshctl_req;

struct sshctl {
	struct buf out;   /* requests not written yet, from out_off */
	size_t out_off;
	struct buf line;  /* the answer line being read */
	bool overlong;    /* the line is past its bound: dropped */
	struct sshctl_req *head, *tail; /* written, waiting for their answers */
	long next_id;
};

/* Queues `kill -s SIG -- -PGID` (sig: "TERM", "KILL", ...). */
void sshctl_kill(struct sshctl *s, long pgid, const char *sig, sshctl_done_fn *done, void *ud);
/* Queues: unless process PGID (the group's leader) still exists, kill the group with SIGKILL.
 * The answer is 1 when it did, 0 when the leader was still there. */
void sshctl_reap(struct sshctl *s, long pgid, sshctl_done_fn *done, void *ud);
/* Queues `kill -0 PID`: does the process exist? */
void sshctl_alive(struct sshctl *s, long pid, sshctl_done_fn *done, void *ud);

/* What to write to the shell's stdin now (NULL when nothing), and how much went. */
const char *sshctl_output(const struct sshctl *s, size_t *len);
void sshctl_wrote(struct sshctl *s, size_t n);

/* Bytes the shell printed: each whole answer line completes its request. */
void sshctl_input(struct sshctl *s, const char *data, size_t n);

/* True when no request waits for an answer or to be written. */
bool sshctl_idle(const struct sshctl *s);

/* ud goes away: its requests stay queued (and answered) but call nobody. */
void sshctl_forget(struct sshctl *s, void *ud);

/* The shell is gone: every waiting request gets -1; s is empty and reusable. */
void sshctl_abort(struct sshctl *s);

#endif
