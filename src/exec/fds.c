/*
 * fds.c — the file descriptors the executors may hold at once. At start the
 * soft RLIMIT_NOFILE is raised to the hard one; a reserve stays for baton's
 * own files (the loop, events, logs, known_hosts). A command or a connection
 * that would go past the rest waits for one to end (executor_ops.admit), so
 * a plan wider than the limit runs in turns instead of failing with EMFILE.
 */
#include <stdio.h>
#include <sys/resource.h>

#include "exec/exec.h"

/* What Linux allows a process at most when the hard limit says "unlimited". */
static rlim_t nr_open(void)
{
	FILE *f = fopen("/proc/sys/fs/nr_open", "r");
	unsigned long v = 0;
	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v ? (rlim_t)v : (rlim_t)1 << 20;
}

void exec_fds_init(struct exec_fds *f)
{
	struct rlimit rl;
	f->used = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		f->limit = f->hard = 1024; /* the usual default */
	} else {
		rlim_t want = rl.rlim_max == RLIM_INFINITY ? nr_open() : rl.rlim_max;
		if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
			struct rlimit up = {want, rl.rlim_max};
			if (setrlimit(RLIMIT_NOFILE, &up) == 0)
				rl.rlim_cur = want;
		}
		f->limit = rl.rlim_cur == RLIM_INFINITY ? (long)want : (long)rl.rlim_cur;
		f->hard = rl.rlim_max == RLIM_INFINITY ? -1 : (long)rl.rlim_max;
	}
	/* the reserve: EXEC_FDS_RESERVE, or half a small limit, but never less than baton's own start-up needs */
	long reserve = f->limit / 2 < EXEC_FDS_RESERVE ? f->limit / 2 : EXEC_FDS_RESERVE;
	if (reserve < EXEC_FDS_MIN_RESERVE)
		reserve = EXEC_FDS_MIN_RESERVE;
	f->budget = f->limit > reserve ? f->limit - reserve : 0;
}

bool exec_fds_fit(const struct exec_fds *f, long n)
{
	/* one thing at a time always fits, however low the limit: a plan must not wait forever */
	return !f || f->used == 0 || f->used + n <= f->budget;
}

void exec_fds_take(struct exec_fds *f, long n)
{
	if (f)
		f->used += n;
}

void exec_fds_give(struct exec_fds *f, long n)
{
	if (!f)
		return;
	f->used -= n;
	if (f->room)
		f->room(f->room_ud);
}
