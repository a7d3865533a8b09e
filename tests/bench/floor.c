/*
 * floor -- the lowest honest cost of what baton does.
 *
 *   floor N J CMD [ARGS...]
 *
 * Runs CMD N times with posix_spawnp, at most J children in flight.  Each
 * child gets stdin from /dev/null and stdout/stderr on two separate pipes,
 * which the floor drains with poll() until EOF and discards; each child is
 * then reaped with waitpid().  No shell, no output processing, no logging.
 *
 * Exits 0 if every child exited 0, 1 if any child failed, 2 on a usage or
 * system-call error.
 *
 * Build: cc -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -o floor floor.c
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct slot {
	pid_t pid;   /* 0 when the slot is free */
	int fd[2];   /* read ends of the stdout/stderr pipes, -1 once at EOF */
};

__attribute__((format(printf, 1, 2)))
_Noreturn static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("floor: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static long parse_long(const char *s, const char *what, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		die("bad %s '%s' (want an integer in [%ld, %ld])", what, s, min, max);
	return v;
}

static void xclose(int fd)
{
	/* On Linux the descriptor is released even when close() reports EINTR,
	 * so retrying would be wrong; treat EINTR as success. */
	if (close(fd) == -1 && errno != EINTR)
		die("close(%d): %s", fd, strerror(errno));
}

/* Make sure descriptors 0, 1 and 2 are open, so no pipe end can land on
 * them (dup2(fd, fd) in the child would then leave FD_CLOEXEC set). */
static void ensure_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1)
			continue;
		if (errno != EBADF)
			die("fcntl(%d, F_GETFD): %s", fd, strerror(errno));
		int nfd = open("/dev/null", O_RDWR);
		if (nfd == -1)
			die("open /dev/null: %s", strerror(errno));
		if (nfd != fd)
			die("open /dev/null returned %d, expected %d", nfd, fd);
	}
}

static void spawn_one(struct slot *s, int devnull, char **argv)
{
	int out[2], err[2];
	if (pipe2(out, O_CLOEXEC) == -1)
		die("pipe2: %s", strerror(errno));
	if (pipe2(err, O_CLOEXEC) == -1)
		die("pipe2: %s", strerror(errno));

	posix_spawn_file_actions_t fa;
	int rc = posix_spawn_file_actions_init(&fa);
	if (rc != 0)
		die("posix_spawn_file_actions_init: %s", strerror(rc));
	/* Every other descriptor is O_CLOEXEC, so these three are all the
	 * child keeps across exec. */
	if ((rc = posix_spawn_file_actions_adddup2(&fa, devnull, 0)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1)) != 0 ||
	    (rc = posix_spawn_file_actions_adddup2(&fa, err[1], 2)) != 0)
		die("posix_spawn_file_actions_adddup2: %s", strerror(rc));

	pid_t pid;
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	if (rc != 0)
		die("posix_spawnp %s: %s", argv[0], strerror(rc));
	rc = posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		die("posix_spawn_file_actions_destroy: %s", strerror(rc));

	xclose(out[1]);
	xclose(err[1]);
	s->pid = pid;
	s->fd[0] = out[0];
	s->fd[1] = err[0];
}

/* Returns 1 if the child failed, 0 if it exited 0. */
static int reap(struct slot *s)
{
	int status;
	pid_t r;
	do
		r = waitpid(s->pid, &status, 0);
	while (r == -1 && errno == EINTR);
	if (r == -1)
		die("waitpid(%ld): %s", (long)s->pid, strerror(errno));
	s->pid = 0;
	return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fputs("usage: floor N J CMD [ARGS...]\n", stderr);
		return 2;
	}
	long n = parse_long(argv[1], "N", 0, LONG_MAX);
	long j = parse_long(argv[2], "J", 1, 4096);
	char **cmd = argv + 3;

	ensure_std_fds();
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull == -1)
		die("open /dev/null: %s", strerror(errno));

	struct slot *slots = calloc((size_t)j, sizeof *slots);
	struct pollfd *pfds = calloc((size_t)j * 2, sizeof *pfds);
	/* pidx[k] = slot index * 2 + stream for pfds[k] */
	long *pidx = calloc((size_t)j * 2, sizeof *pidx);
	if (slots == NULL || pfds == NULL || pidx == NULL)
		die("out of memory");

	static char buf[65536];
	long started = 0, active = 0, failed = 0;

	while (started < n || active > 0) {
		/* Fill free slots. */
		for (long i = 0; i < j && started < n; i++) {
			if (slots[i].pid != 0)
				continue;
			spawn_one(&slots[i], devnull, cmd);
			started++;
			active++;
		}

		/* Reap children whose pipes are both at EOF. */
		int reaped = 0;
		for (long i = 0; i < j; i++) {
			struct slot *s = &slots[i];
			if (s->pid != 0 && s->fd[0] == -1 && s->fd[1] == -1) {
				failed += reap(s);
				active--;
				reaped = 1;
			}
		}
		if (reaped)
			continue;

		/* Wait for output or EOF on any open pipe. */
		nfds_t nfds = 0;
		for (long i = 0; i < j; i++) {
			if (slots[i].pid == 0)
				continue;
			for (int k = 0; k < 2; k++) {
				if (slots[i].fd[k] == -1)
					continue;
				pfds[nfds].fd = slots[i].fd[k];
				pfds[nfds].events = POLLIN;
				pfds[nfds].revents = 0;
				pidx[nfds] = i * 2 + k;
				nfds++;
			}
		}
		if (nfds == 0)
			die("internal error: nothing to wait for");
		int pr = poll(pfds, nfds, -1);
		if (pr == -1) {
			if (errno == EINTR)
				continue;
			die("poll: %s", strerror(errno));
		}
		for (nfds_t k = 0; k < nfds; k++) {
			if (pfds[k].revents == 0)
				continue;
			if (pfds[k].revents & POLLNVAL)
				die("poll: invalid descriptor %d", pfds[k].fd);
			struct slot *s = &slots[pidx[k] / 2];
			int *fdp = &s->fd[pidx[k] % 2];
			ssize_t r = read(*fdp, buf, sizeof buf);
			if (r > 0)
				continue;          /* output discarded */
			if (r == -1) {
				if (errno == EINTR || errno == EAGAIN)
					continue;
				die("read(%d): %s", *fdp, strerror(errno));
			}
			xclose(*fdp);              /* EOF */
			*fdp = -1;
		}
	}

	free(pidx);
	free(pfds);
	free(slots);
	xclose(devnull);
	if (failed > 0) {
		fprintf(stderr, "floor: %ld of %ld commands failed\n", failed, n);
		return 1;
	}
	return 0;
}
