/*
 * approve.c — how `baton run` answers an `approve` gate (the scheduler's
 * approver, sched.h): --yes or BATON_APPROVE=all approve every gate;
 * otherwise the question is asked on the controlling terminal, /dev/tty, so
 * that `baton run … | tee log` still asks. The answer is read inside the
 * loop (uv_poll), never blocking it. `y` or `yes` (any case) then Enter
 * approves; anything else does not. No terminal (a detached run, cron, a
 * run in the background of its terminal): the gate fails at once.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cmd.h"
#include "event/event.h"
#include "sched/sched.h"
#include "util/util.h"

struct tty_approver {
	struct sched_approver a;
	uv_loop_t *loop;
	const char *all_by; /* "--yes", "BATON_APPROVE", or NULL */
	bool echo;          /* the terminal echoes the answer (no live view to keep clean) */
	bool prompt;        /* the question is written to the terminal here: the human output is elsewhere */
	int fd;             /* /dev/tty from preset to the answer, else -1 */
	uv_poll_t *poll;    /* while asking */
	struct termios saved;
	bool changed; /* the terminal's mode is ours until restored */
	char line[32];
	size_t len;
	size_t extra; /* characters typed beyond line */
	void (*answer)(void *ctx, bool approved);
	void *ctx;
	struct sink *view; /* the live view that shows what is typed, or NULL */
};

static void close_tty(struct tty_approver *T)
{
	if (T->changed) {
		tcsetattr(T->fd, TCSANOW, &T->saved);
		T->changed = false;
	}
	if (T->poll) {
		uv_poll_stop(T->poll);
		uv_close((uv_handle_t *)T->poll, (uv_close_cb)free);
		T->poll = NULL;
	}
	if (T->fd >= 0)
		close(T->fd);
	T->fd = -1;
}

static const char *preset(void *ud, bool *approved)
{
	struct tty_approver *T = ud;
	if (T->all_by) {
		*approved = true;
		return T->all_by;
	}
	*approved = false;
	if (T->fd < 0)
		T->fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	/* a run in the background of its terminal would be stopped by reading it: no terminal to ask on */
	if (T->fd >= 0 && tcgetpgrp(T->fd) != getpgrp())
		close_tty(T);
	return T->fd >= 0 ? NULL : "no terminal";
}

static void decide(struct tty_approver *T)
{
	size_t a = 0, b = T->len;
	while (a < b && isspace((unsigned char)T->line[a]))
		a++;
	while (b > a && isspace((unsigned char)T->line[b - 1]))
		b--;
	bool yes = !T->extra && ((b - a == 1 && tolower((unsigned char)T->line[a]) == 'y') ||
				    (b - a == 3 && !strncasecmp(T->line + a, "yes", 3)));
	void (*answer)(void *, bool) = T->answer;
	close_tty(T);
	T->answer = NULL;
	answer(T->ctx, yes);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct tty_approver *T = h->data;
	char buf[64];
	ssize_t n = status < 0 ? -1 : read(T->fd, buf, sizeof buf);
	if (n < 0 && (errno == EAGAIN || errno == EINTR) && status >= 0)
		return;
	if (n <= 0) { /* the terminal is gone */
		T->len = 0;
		decide(T);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		char c = buf[i];
		if (c == '\n' || c == '\r' || c == 4 /* Ctrl-D */) {
			decide(T);
			return;
		}
		if (c == 0x7f || c == '\b') {
			if (T->extra)
				T->extra--;
			else if (T->len)
				T->len--;
		} else if (T->len < sizeof T->line - 1) {
			T->line[T->len++] = c;
		} else {
			T->extra++; /* a long answer is no yes */
		}
	}
	if (T->view) {
		T->line[T->len] = 0;
		sink_tty_typed(T->view, T->line);
	}
}

/* Writes s to the terminal, as much as it takes at once (it is non-blocking; a question is short). */
static void say(int fd, const char *s)
{
	size_t len = strlen(s);
	while (len) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		s += n;
		len -= (size_t)n;
	}
}

static bool ask(void *ud, const char *step, const char *message, void (*answer)(void *ctx, bool approved),
		void *ctx)
{
	struct tty_approver *T = ud;
	if (T->fd < 0)
		return false;
	tcflush(T->fd, TCIFLUSH); /* keys typed before the question do not answer it */
	T->len = 0;
	T->extra = 0;
	if (!T->echo && tcgetattr(T->fd, &T->saved) == 0) {
		/* the live view redraws under the cursor: keys are read one by one, unechoed; Ctrl-C still interrupts */
		struct termios t = T->saved;
		t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		T->changed = tcsetattr(T->fd, TCSANOW, &t) == 0;
	}
	if (T->prompt) {
		/* the human output (a file, a pipe, JSON, quiet) is not on the terminal: ask there too */
		struct buf q = {0};
		buf_printf(&q, "⏸ approve %s: %s", step, message);
		for (size_t i = 0; i < q.len; i++)
			if ((unsigned char)q.data[i] < 0x20 || q.data[i] == 0x7f)
				q.data[i] = '?'; /* neither a plan nor a label drives the terminal */
		buf_adds(&q, " [y/N] ");
		say(T->fd, q.data);
		buf_free(&q);
	}
	T->poll = xcalloc(1, sizeof *T->poll);
	if (uv_poll_init(T->loop, T->poll, T->fd) != 0) {
		free(T->poll);
		T->poll = NULL;
		close_tty(T);
		return false;
	}
	T->poll->data = T;
	T->answer = answer;
	T->ctx = ctx;
	if (uv_poll_start(T->poll, UV_READABLE, on_readable) != 0) {
		close_tty(T);
		return false;
	}
	return true;
}

static void stop(void *ud)
{
	struct tty_approver *T = ud;
	T->answer = NULL;
	close_tty(T);
}

struct sched_approver *cmd_approver_new(uv_loop_t *loop, bool yes, bool echo, bool prompt)
{
	struct tty_approver *T = xcalloc(1, sizeof *T);
	T->a = (struct sched_approver){preset, ask, stop, T};
	T->loop = loop;
	T->fd = -1;
	T->echo = echo;
	T->prompt = prompt;
	const char *env = getenv("BATON_APPROVE");
	T->all_by = yes ? "--yes" : env && !strcmp(env, "all") ? "BATON_APPROVE" : NULL;
	return &T->a;
}

void cmd_approver_view(struct sched_approver *a, struct sink *view)
{
	((struct tty_approver *)a->ud)->view = view;
}

void cmd_approver_free(struct sched_approver *a)
{
	if (!a)
		return;
	struct tty_approver *T = a->ud;
	close_tty(T);
	free(T);
}
