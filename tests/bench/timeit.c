/*
 * timeit -- wall-clock one command with CLOCK_MONOTONIC, with a time limit.
 *
 *   timeit OUTFILE TIMEOUT_SECONDS CMD [ARGS...]
 *
 * Spawns CMD (stdio inherited) in a new process group, waits for it and
 * writes the elapsed wall time in nanoseconds, one line, to OUTFILE.  The
 * clock is read immediately before posix_spawnp() and immediately after
 * waitpid() returns, so the only overhead measured beyond CMD itself is one
 * posix_spawnp (a vfork-style clone in glibc).
 *
 * If CMD runs longer than TIMEOUT_SECONDS (0 = no limit), its whole process
 * group is killed with SIGKILL and timeit exits 124.  SIGINT, SIGTERM and
 * SIGHUP are forwarded to the process group.  Otherwise exits with CMD's
 * exit status (128+signal if it was killed); 127 if it could not be started.
 *
 * Build: cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -o timeit timeit.c
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static volatile sig_atomic_t child_pgid;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
	if (child_pgid > 0)
		kill(-(pid_t)child_pgid, SIGKILL);
}

static void on_term(int sig)
{
	if (child_pgid > 0)
		kill(-(pid_t)child_pgid, sig);
}

static int install(int sig, void (*fn)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	if (sigemptyset(&sa.sa_mask) == -1)
		return -1;
	sa.sa_flags = 0; /* no SA_RESTART: let waitpid see EINTR */
	return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fputs("usage: timeit OUTFILE TIMEOUT_SECONDS CMD [ARGS...]\n", stderr);
		return 2;
	}
	const char *outpath = argv[1];
	char *end;
	errno = 0;
	long timeout = strtol(argv[2], &end, 10);
	if (errno != 0 || end == argv[2] || *end != '\0' || timeout < 0 ||
	    timeout > INT_MAX) {
		fprintf(stderr, "timeit: bad timeout '%s'\n", argv[2]);
		return 2;
	}
	char **cmd = argv + 3;

	/* Open the result file first so nothing can fail after the run. */
	FILE *out = fopen(outpath, "w");
	if (out == NULL) {
		fprintf(stderr, "timeit: %s: %s\n", outpath, strerror(errno));
		return 2;
	}

	if (install(SIGALRM, on_alarm) == -1 || install(SIGINT, on_term) == -1 ||
	    install(SIGTERM, on_term) == -1 || install(SIGHUP, on_term) == -1) {
		fprintf(stderr, "timeit: sigaction: %s\n", strerror(errno));
		return 2;
	}

	posix_spawnattr_t attr;
	int rc = posix_spawnattr_init(&attr);
	if (rc == 0)
		rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	if (rc == 0)
		rc = posix_spawnattr_setpgroup(&attr, 0);
	if (rc != 0) {
		fprintf(stderr, "timeit: posix_spawnattr: %s\n", strerror(rc));
		return 2;
	}

	struct timespec t0, t1;
	if (clock_gettime(CLOCK_MONOTONIC, &t0) == -1) {
		fprintf(stderr, "timeit: clock_gettime: %s\n", strerror(errno));
		return 2;
	}
	pid_t pid;
	rc = posix_spawnp(&pid, cmd[0], NULL, &attr, cmd, environ);
	if (rc != 0) {
		fprintf(stderr, "timeit: posix_spawnp %s: %s\n", cmd[0], strerror(rc));
		return 127;
	}
	child_pgid = pid;
	if (timeout > 0)
		alarm((unsigned)timeout);

	int status;
	pid_t r;
	do
		r = waitpid(pid, &status, 0);
	while (r == -1 && errno == EINTR);
	int wait_errno = errno;
	if (clock_gettime(CLOCK_MONOTONIC, &t1) == -1) {
		fprintf(stderr, "timeit: clock_gettime: %s\n", strerror(errno));
		return 2;
	}
	alarm(0);
	if (r == -1) {
		fprintf(stderr, "timeit: waitpid: %s\n", strerror(wait_errno));
		return 2;
	}
	/* Clean up any stragglers left in the group (e.g. after a timeout). */
	if (kill(-pid, SIGKILL) == -1 && errno != ESRCH) {
		fprintf(stderr, "timeit: kill: %s\n", strerror(errno));
		return 2;
	}
	posix_spawnattr_destroy(&attr);

	long long ns = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL +
		       (t1.tv_nsec - t0.tv_nsec);
	if (fprintf(out, "%lld\n", ns) < 0 || fclose(out) == EOF) {
		fprintf(stderr, "timeit: write %s: %s\n", outpath, strerror(errno));
		return 2;
	}

	if (timed_out) {
		fprintf(stderr, "timeit: %s: timed out after %ld s, killed\n",
			cmd[0], timeout);
		return 124;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 2;
}
