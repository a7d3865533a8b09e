/*
 * inject.c — an LD_PRELOAD library for the fault tests: makes chosen calls
 * fail, to reach error paths no real system produces on demand. BATON_FAULT
 * lists "NAME:FIRST[-[LAST]]" entries, comma-separated: the calls of NAME
 * numbered FIRST to LAST (1-based; "N-" means from N on) fail. NAMEs:
 * pidfd_open (the syscall; EMFILE), uv_pipe_open (UV_EMFILE), uv_read_start
 * (UV_EINVAL), uv_signal_start_sigchld (uv_signal_start for SIGCHLD only;
 * UV_EINVAL).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <uv.h>

/* True when this call (counted in *count) of name is one BATON_FAULT says fails. */
static int should_fail(const char *name, unsigned long *count)
{
	unsigned long n = ++*count;
	const char *spec = getenv("BATON_FAULT");
	size_t nl = strlen(name);
	for (const char *p = spec; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > nl && !strncmp(p, name, nl) && p[nl] == ':') {
			char *q;
			unsigned long first = strtoul(p + nl + 1, &q, 10), last = first;
			if (*q == '-')
				last = (q[1] >= '0' && q[1] <= '9') ? strtoul(q + 1, NULL, 10) : (unsigned long)-1;
			if (n >= first && n <= last)
				return 1;
		}
		p = end ? end + 1 : p + len;
	}
	return 0;
}

long syscall(long number, ...)
{
	static long (*real)(long, ...);
	static unsigned long n_pidfd;
	va_list ap;
	va_start(ap, number);
	long a[6];
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (number == SYS_pidfd_open && should_fail("pidfd_open", &n_pidfd)) {
		errno = EMFILE;
		return -1;
	}
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "syscall");
	return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int uv_pipe_open(uv_pipe_t *h, uv_file fd)
{
	static int (*real)(uv_pipe_t *, uv_file);
	static unsigned long n;
	if (should_fail("uv_pipe_open", &n))
		return UV_EMFILE;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "uv_pipe_open");
	return real(h, fd);
}

int uv_read_start(uv_stream_t *s, uv_alloc_cb a, uv_read_cb r)
{
	static int (*real)(uv_stream_t *, uv_alloc_cb, uv_read_cb);
	static unsigned long n;
	if (should_fail("uv_read_start", &n))
		return UV_EINVAL;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "uv_read_start");
	return real(s, a, r);
}

int uv_signal_start(uv_signal_t *h, uv_signal_cb cb, int signum)
{
	static int (*real)(uv_signal_t *, uv_signal_cb, int);
	static unsigned long n;
	if (signum == SIGCHLD && should_fail("uv_signal_start_sigchld", &n))
		return UV_EINVAL;
	if (!real)
		*(void **)&real = dlsym(RTLD_NEXT, "uv_signal_start");
	return real(h, cb, signum);
}
