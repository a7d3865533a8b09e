/*
 * sshctl: the request queue of baton's shell on an SSH host — each request
 * is one line of sh that a real /bin/sh answers with "ID ANSWER", answers
 * are matched by id, a stray line changes nothing, and a shell that goes
 * away answers -1 to everything still waiting.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/sshctl.h"
#include "util/util.h"

struct got {
	int answers[16];
	int n;
};

static void record(void *ud, int answer)
{
	struct got *g = ud;
	if (g->n < 16)
		g->answers[g->n++] = answer;
}

/* Runs what s has to write through /bin/sh and feeds its output back, in chunks of one byte. */
static void through_sh(struct sshctl *s)
{
	size_t len;
	const char *out = sshctl_output(s, &len);
	cr_assert_not_null(out);
	char *script = xstrndup(out, len);
	sshctl_wrote(s, len);
	cr_assert_null(sshctl_output(s, &len), "everything was taken");
	char path[] = "/tmp/baton-sshctl-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, script, strlen(script)), (ssize_t)strlen(script));
	close(fd);
	char *cmd = xasprintf("/bin/sh %s", path);
	FILE *p = popen(cmd, "r");
	cr_assert_not_null(p);
	int c;
	while ((c = fgetc(p)) != EOF) {
		char ch = (char)c;
		sshctl_input(s, &ch, 1);
	}
	pclose(p);
	unlink(path);
	free(cmd);
	free(script);
}

Test(sshctl, a_real_sh_answers_alive_and_kill_in_order)
{
	struct sshctl s = {0};
	struct got g = {0};
	pid_t child = fork();
	cr_assert(child >= 0);
	if (child == 0) {
		setpgid(0, 0);
		pause();
		_exit(0);
	}
	setpgid(child, child);
	sshctl_alive(&s, getpid(), record, &g);
	sshctl_alive(&s, 999999999, record, &g);
	sshctl_kill(&s, child, "TERM", record, &g);
	cr_assert_not(sshctl_idle(&s));
	through_sh(&s);
	cr_assert_eq(g.n, 3);
	cr_assert_eq(g.answers[0], 1, "this process exists");
	cr_assert_eq(g.answers[1], 0, "no such process");
	cr_assert_eq(g.answers[2], 1, "the kill was sent");
	int st;
	cr_assert_eq(waitpid(child, &st, 0), child);
	cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "the process group got SIGTERM");
	cr_assert(sshctl_idle(&s));
	sshctl_abort(&s);
}

Test(sshctl, answers_are_matched_by_id_stray_lines_change_nothing)
{
	struct sshctl s = {0};
	struct got g = {0};
	sshctl_alive(&s, 1, record, &g);
	sshctl_alive(&s, 1, record, &g);
	size_t len;
	sshctl_output(&s, &len);
	sshctl_wrote(&s, len);
	const char *noise = "Welcome to the host\n7\nx 1\n1 2\n";
	sshctl_input(&s, noise, strlen(noise));
	cr_assert_eq(g.n, 0, "no stray line is an answer");
	sshctl_input(&s, "1 ", 2);
	cr_assert_eq(g.n, 0, "half a line is no answer yet");
	sshctl_input(&s, "1\n2 0\n", 6);
	cr_assert_eq(g.n, 2);
	cr_assert_eq(g.answers[0], 1);
	cr_assert_eq(g.answers[1], 0);
	/* an answer for a later request completes the older ones it skipped, with -1 */
	sshctl_alive(&s, 1, record, &g);
	sshctl_alive(&s, 1, record, &g);
	sshctl_input(&s, "4 1\n", 4);
	cr_assert_eq(g.n, 4);
	cr_assert_eq(g.answers[2], -1);
	cr_assert_eq(g.answers[3], 1);
	/* a line far too long is dropped whole */
	char big[1000];
	memset(big, '5', sizeof big);
	sshctl_alive(&s, 1, record, &g);
	sshctl_input(&s, big, sizeof big);
	sshctl_input(&s, " 1\n", 3);
	cr_assert_eq(g.n, 4);
	sshctl_input(&s, "5 0\n", 4);
	cr_assert_eq(g.n, 5);
	cr_assert_eq(g.answers[4], 0);
	sshctl_abort(&s);
}

Test(sshctl, a_shell_that_goes_away_answers_minus_one_and_forgotten_requests_call_nobody)
{
	struct sshctl s = {0};
	struct got a = {0}, b = {0};
	sshctl_kill(&s, 42, "KILL", record, &a);
	sshctl_alive(&s, 42, record, &b);
	sshctl_kill(&s, 43, "KILL", record, &a);
	sshctl_forget(&s, &b);
	sshctl_abort(&s);
	cr_assert_eq(a.n, 2);
	cr_assert_eq(a.answers[0], -1);
	cr_assert_eq(a.answers[1], -1);
	cr_assert_eq(b.n, 0, "a forgotten request calls nobody");
	cr_assert(sshctl_idle(&s));
	/* reusable after an abort */
	sshctl_alive(&s, 1, record, &a);
	size_t len;
	cr_assert_not_null(sshctl_output(&s, &len));
	sshctl_abort(&s);
	cr_assert_eq(a.n, 3);
}

Test(sshctl, a_reap_kills_the_group_only_once_its_leader_is_gone)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t leader = fork();
	cr_assert(leader >= 0);
	if (leader == 0) {
		setpgid(0, 0);
		if (fork() == 0) { /* a member of the group, the pipe's only writer */
			close(fds[0]);
			if (write(fds[1], "r", 1) != 1)
				_exit(1);
			pause();
			_exit(0);
		}
		close(fds[1]);
		pause(); /* until the test ends it */
		_exit(0);
	}
	close(fds[1]);
	setpgid(leader, leader);
	char c;
	cr_assert_eq(read(fds[0], &c, 1), 1, "the member is there");
	struct sshctl s = {0};
	struct got g = {0};
	sshctl_reap(&s, leader, record, &g);
	through_sh(&s);
	cr_assert_eq(g.n, 1);
	cr_assert_eq(g.answers[0], 0, "the leader is alive: nothing is killed");
	kill(leader, SIGTERM);
	int st;
	cr_assert_eq(waitpid(leader, &st, 0), leader);
	sshctl_reap(&s, leader, record, &g);
	through_sh(&s);
	cr_assert_eq(g.n, 2);
	cr_assert_eq(g.answers[1], 1, "the leader is gone: the group is killed");
	cr_assert_eq(read(fds[0], &c, 1), 0, "the member died (the pipe it held is closed)");
	close(fds[0]);
	sshctl_abort(&s);
}
