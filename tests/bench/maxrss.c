/*
 * maxrss -- run a command and report its peak resident set size.
 *
 *   maxrss CMD [ARGS...]
 *
 * Spawns CMD (stdio inherited), waits for it with wait4() and prints
 * "maxrss_kib=N" to stderr, where N is ru_maxrss of the child in KiB (on
 * Linux this is the peak RSS of the child or of any descendant it reaped,
 * whichever is larger).  Exits with the child's exit status, or 128+signal
 * if it was killed; 127 if it could not be started.
 *
 * Build: cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -o maxrss maxrss.c
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs("usage: maxrss CMD [ARGS...]\n", stderr);
		return 2;
	}

	pid_t pid;
	int rc = posix_spawnp(&pid, argv[1], NULL, NULL, argv + 1, environ);
	if (rc != 0) {
		fprintf(stderr, "maxrss: posix_spawnp %s: %s\n", argv[1], strerror(rc));
		return 127;
	}

	int status;
	struct rusage ru;
	pid_t r;
	do
		r = wait4(pid, &status, 0, &ru);
	while (r == -1 && errno == EINTR);
	if (r == -1) {
		fprintf(stderr, "maxrss: wait4: %s\n", strerror(errno));
		return 2;
	}

	if (fprintf(stderr, "maxrss_kib=%ld\n", ru.ru_maxrss) < 0)
		return 2;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 2;
}
