/*
 * The local executor (src/exec/local.c) on a real loop with real processes:
 * output and exit status, signals, the process group, what a command leaves
 * behind, and a background child that holds the command's output. The test
 * process is made a child subreaper, so that what a command leaves behind
 * comes back to it and the way it died can be read with waitpid.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "exec/exec.h"
#include "util/util.h"

#define BOUND_MS 5000 /* no test here waits longer for anything */

/* One command run through the local executor. */
struct lrun {
	uv_loop_t loop;
	uv_timer_t tick; /* wakes the loop so that the bound is checked */
	struct executor *x;
	struct exec_proc *p;
	struct buf out, err;
	struct exec_status st;
	char *st_error;
	int n_done;
	uint64_t t0, t_done; /* ms */
};

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

static void on_output(void *ud, int stream, const char *data, size_t len)
{
	struct lrun *r = ud;
	buf_add(stream == 1 ? &r->out : &r->err, data, len);
}

static void on_done(void *ud, const struct exec_status *st)
{
	struct lrun *r = ud;
	r->n_done++;
	r->st = *st;
	r->st_error = st->error ? xstrdup(st->error) : NULL;
	r->t_done = now_ms();
}

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

static void lrun_init(struct lrun *r)
{
	memset(r, 0, sizeof *r);
	cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	cr_assert_eq(uv_loop_init(&r->loop), 0);
	uv_timer_init(&r->loop, &r->tick);
	r->x = exec_local_new(&r->loop, NULL);
}

/* Starts argv (fallback may be NULL); returns the start error (caller frees), or NULL when it started. */
static char *lrun_start(struct lrun *r, char *const *argv, char *const *fallback, const char *cwd, uint64_t grace_ms)
{
	extern char **environ;
	struct exec_spec spec = {.argv = argv, .fallback = fallback, .envp = environ, .cwd = cwd, .grace_ms = grace_ms};
	struct exec_callbacks cb = {on_output, on_done, NULL};
	char *err = NULL;
	r->t0 = now_ms();
	r->p = r->x->ops->start(r->x, &spec, &cb, r, &err);
	cr_assert((r->p != NULL) == (err == NULL), "start returned a proc and an error, or neither");
	return err;
}

/* Runs the loop until pred(r) holds; fails the test after BOUND_MS. */
static void lrun_until(struct lrun *r, bool (*pred)(const struct lrun *))
{
	uv_timer_start(&r->tick, on_tick, 20, 20);
	uint64_t start = now_ms();
	while (!pred(r)) {
		cr_assert_lt(now_ms() - start, BOUND_MS, "waited %d ms", BOUND_MS);
		uv_run(&r->loop, UV_RUN_ONCE);
	}
	uv_timer_stop(&r->tick);
}

static bool is_done(const struct lrun *r)
{
	return r->n_done > 0;
}

static bool has_line(const struct lrun *r)
{
	return r->out.len && memchr(r->out.data, '\n', r->out.len);
}

/* Frees the executor and checks that nothing is left on the loop and that done came `done` times. */
static void lrun_free(struct lrun *r, int done)
{
	uv_close((uv_handle_t *)&r->tick, NULL);
	r->x->ops->free(r->x);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&r->loop), 0, "handles left open on the loop");
	cr_assert_eq(r->n_done, done, "done called %d times", r->n_done);
	buf_free(&r->out);
	buf_free(&r->err);
	free(r->st_error);
}

/* The first line of the output as a pid. */
static pid_t out_pid(const struct lrun *r)
{
	cr_assert(has_line(r), "no pid printed");
	pid_t pid = (pid_t)atol(r->out.data);
	cr_assert_gt(pid, 1);
	return pid;
}

/*
 * Waits (bounded) for pid, one of the test's own (through the subreaper), to
 * die; returns the signal that killed it, 0 if it exited, -1 if it still runs.
 */
static int reap_within(pid_t pid, uint64_t ms)
{
	uint64_t start = now_ms();
	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
		cr_assert_neq(w, -1, "waitpid(%d): %s", (int)pid, strerror(errno));
		if (now_ms() - start > ms)
			return -1;
		usleep(2000);
	}
}

/* ---- output and exit status ---- */

Test(local, output_on_both_streams_and_the_exit_code)
{
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"/bin/sh", "-c", "printf 'a\\nb'; printf 'e\\n' >&2; exit 3", NULL};
	cr_assert_null(lrun_start(&r, argv, NULL, NULL, 5000));
	lrun_until(&r, is_done);
	cr_assert_eq(r.st.exit_code, 3);
	cr_assert_eq(r.st.signal, 0);
	cr_assert_null(r.st_error);
	cr_assert_eq(r.out.len, 3);
	cr_assert_arr_eq(r.out.data, "a\nb", 3);
	cr_assert_eq(r.err.len, 2);
	cr_assert_arr_eq(r.err.data, "e\n", 2);
	lrun_free(&r, 1);
}

/* output larger than a pipe and a read: every byte arrives, before done */
Test(local, large_output_arrives_whole)
{
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' x; echo", NULL};
	cr_assert_null(lrun_start(&r, argv, NULL, NULL, 5000));
	lrun_until(&r, is_done);
	cr_assert_eq(r.st.exit_code, 0);
	cr_assert_eq(r.out.len, 300001);
	cr_assert_eq(r.out.data[0], 'x');
	cr_assert_eq(r.out.data[299999], 'x');
	lrun_free(&r, 1);
}

Test(local, a_command_found_along_the_path_is_run_directly)
{
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"echo", "hi", NULL};
	cr_assert_null(lrun_start(&r, argv, NULL, NULL, 5000));
	lrun_until(&r, is_done);
	cr_assert_eq(r.st.exit_code, 0);
	cr_assert_eq(r.out.len, 3);
	cr_assert_arr_eq(r.out.data, "hi\n", 3);
	lrun_free(&r, 1);
}

/* no such program: start fails with a reason, unless a fallback (the shell form) runs instead */
Test(local, a_missing_program_fails_to_start_or_runs_its_fallback)
{
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"baton-no-such-program", NULL};
	char *err = lrun_start(&r, argv, NULL, NULL, 5000);
	cr_assert_not_null(err);
	cr_assert(strstr(err, "baton-no-such-program") && strstr(err, "No such file"), "error: %s", err);
	free(err);
	char *fallback[] = {"/bin/sh", "-c", "echo fallback", NULL};
	cr_assert_null(lrun_start(&r, argv, fallback, NULL, 5000));
	lrun_until(&r, is_done);
	cr_assert_eq(r.st.exit_code, 0);
	cr_assert_eq(r.out.len, 9);
	cr_assert_arr_eq(r.out.data, "fallback\n", 9);
	lrun_free(&r, 1);
}

Test(local, a_missing_directory_fails_to_start_and_says_so)
{
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"/bin/true", NULL};
	char *err = lrun_start(&r, argv, NULL, "/baton-no-such-dir", 5000);
	cr_assert_not_null(err);
	cr_assert(strstr(err, "cannot change to directory /baton-no-such-dir"), "error: %s", err);
	free(err);
	lrun_free(&r, 0);
}

/* ---- signals ---- */

Test(local, a_command_killed_by_a_signal_reports_it)
{
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"/bin/sh", "-c", "kill -9 $$", NULL};
	cr_assert_null(lrun_start(&r, argv, NULL, NULL, 5000));
	lrun_until(&r, is_done);
	cr_assert_eq(r.st.exit_code, -1);
	cr_assert_eq(r.st.signal, SIGKILL);
	lrun_free(&r, 1);
}

Test(local, signal_ends_a_running_command)
{
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"sleep", "30", NULL};
	cr_assert_null(lrun_start(&r, argv, NULL, NULL, 5000));
	r.x->ops->signal(r.p, SIGTERM);
	lrun_until(&r, is_done);
	cr_assert_eq(r.st.exit_code, -1);
	cr_assert_eq(r.st.signal, SIGTERM);
	cr_assert_lt(r.t_done - r.t0, 1000);
	lrun_free(&r, 1);
}

/*
 * SIGTERM goes to the whole process group: a background child that holds
 * the output dies of it too, at once. Were only the leader signalled, the
 * child would hold the output until grace_ms (2 s) ran out and then die of
 * the final SIGKILL.
 */
Test(local, signal_reaches_the_whole_process_group)
{
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"/bin/sh", "-c", "sleep 30 & echo $!; wait", NULL};
	cr_assert_null(lrun_start(&r, argv, NULL, NULL, 2000));
	lrun_until(&r, has_line);
	pid_t bg = out_pid(&r);
	uint64_t t = now_ms();
	r.x->ops->signal(r.p, SIGTERM);
	lrun_until(&r, is_done);
	cr_assert_eq(r.st.signal, SIGTERM, "the shell ended with signal %d", r.st.signal);
	int how = reap_within(bg, 1000);
	if (how < 0)
		kill(bg, SIGKILL);
	cr_assert_eq(how, SIGTERM, "the background child ended with %d, not SIGTERM", how);
	cr_assert_lt(r.t_done - t, 1000, "done %llu ms after SIGTERM", (unsigned long long)(r.t_done - t));
	lrun_free(&r, 1);
}

/* ---- what a command leaves behind ---- */

/* a background child that does not hold the output is SIGKILLed as the command ends */
Test(local, what_a_command_leaves_in_its_group_is_killed_when_it_ends)
{
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"/bin/sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!", NULL};
	cr_assert_null(lrun_start(&r, argv, NULL, NULL, 5000));
	lrun_until(&r, is_done);
	cr_assert_eq(r.st.exit_code, 0);
	pid_t bg = out_pid(&r);
	int how = reap_within(bg, 1000);
	if (how < 0)
		kill(bg, SIGKILL);
	cr_assert_eq(how, SIGKILL, "the background child %s", how < 0 ? "still runs" : "ended otherwise");
	lrun_free(&r, 1);
}

/*
 * The command exits while a background child holds its output: late output
 * is read for grace_ms, then the group is killed and the command reported
 * with its own exit status.
 */
Test(local, a_child_holding_the_output_is_killed_after_grace_ms)
{
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"/bin/sh", "-c", "sleep 30 & echo $!; (sleep 0.05; echo late) & exit 4", NULL};
	cr_assert_null(lrun_start(&r, argv, NULL, NULL, 300));
	lrun_until(&r, is_done);
	uint64_t took = r.t_done - r.t0;
	cr_assert_eq(r.st.exit_code, 4);
	cr_assert_eq(r.st.signal, 0);
	cr_assert_geq(took, 290, "ended after %llu ms, before grace_ms", (unsigned long long)took);
	cr_assert_lt(took, 2000, "ended after %llu ms", (unsigned long long)took);
	cr_assert(r.out.len > 5 && !memcmp(r.out.data + r.out.len - 5, "late\n", 5), "the late output was lost");
	pid_t bg = out_pid(&r);
	int how = reap_within(bg, 1000);
	if (how < 0)
		kill(bg, SIGKILL);
	cr_assert_eq(how, SIGKILL);
	lrun_free(&r, 1);
}

/* a child that left the group (setsid) and holds the output cannot hold the command past grace and the orphan wait */
Test(local, a_holder_outside_the_group_does_not_hold_the_command_forever)
{
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"/bin/sh", "-c", "setsid sleep 30 & echo $!", NULL};
	cr_assert_null(lrun_start(&r, argv, NULL, NULL, 100));
	lrun_until(&r, is_done);
	uint64_t took = r.t_done - r.t0;
	pid_t holder = out_pid(&r);
	cr_assert_eq(kill(holder, 0), 0, "the holder is gone: it was in the group after all");
	kill(holder, SIGKILL);
	cr_assert_eq(reap_within(holder, 1000), SIGKILL);
	cr_assert_eq(r.st.exit_code, 0);
	/* grace_ms, then ORPHAN_PIPE_MS (500) for the output held outside the group */
	cr_assert(took >= 550 && took < 2500, "ended after %llu ms", (unsigned long long)took);
	lrun_free(&r, 1);
}

/* ---- the SIGCHLD fallback ---- */

/* The highest descriptor open in this process. */
static int max_fd(void)
{
	int m = 2;
	for (int fd = 0; fd < 4096; fd++)
		if (fcntl(fd, F_GETFD) != -1)
			m = fd;
	return m;
}

/*
 * Issue 9, bug 6: when pidfd_open fails (EMFILE), a command whose output
 * closed before it exited is watched through SIGCHLD; once it is reaped,
 * nothing of that watch may keep the loop alive.
 */
Test(local, after_the_sigchld_fallback_the_loop_can_end)
{
	int probe = (int)syscall(SYS_pidfd_open, getpid(), 0);
	cr_assert_geq(probe, 0, "no pidfd_open on this kernel: the fallback cannot be told apart");
	close(probe);
	struct lrun r;
	lrun_init(&r);
	char *argv[] = {"/bin/sh", "-c", "exec >&- 2>&-; sleep 0.2", NULL};
	cr_assert_null(lrun_start(&r, argv, NULL, NULL, 5000));
	/* no descriptor to spare from here on: pidfd_open fails with EMFILE */
	struct rlimit old, low;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)max_fd() + 1;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	int fill[4096], n_fill = 0;
	while (n_fill < 4096 && (fill[n_fill] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
		n_fill++;
	cr_assert_eq(errno, EMFILE);
	lrun_until(&r, is_done);
	for (int i = 0; i < n_fill; i++)
		close(fill[i]);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	cr_assert_eq(r.st.exit_code, 0);
	for (int i = 0; i < 5; i++)
		uv_run(&r.loop, UV_RUN_NOWAIT);
	cr_assert_not(uv_loop_alive(&r.loop), "the loop still has work after the command was reaped");
	lrun_free(&r, 1);
}
