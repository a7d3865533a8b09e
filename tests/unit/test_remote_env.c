/*
 * remote_env: a remote command takes its environment from stdin and runs
 * only when all of it arrived. Cut at every byte (what a killed baton or a
 * cut connection leaves), dash and bash themselves must run nothing; whole,
 * the command sees every value as it was, none run as code.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sched/internal.h"
#include "util/util.h"

extern char **environ;

/* Runs SHELL -c cmd with stdin the first n bytes of in; its stdout in *out. The exit status. */
static int run_cut(const char *shell, const char *cmd, const char *in, size_t n, struct buf *out)
{
	char inpath[] = "/tmp/baton-remote-env-in.XXXXXX", outpath[] = "/tmp/baton-remote-env-out.XXXXXX";
	int fi = mkstemp(inpath), fo = mkstemp(outpath);
	cr_assert(fi >= 0 && fo >= 0);
	cr_assert_eq(write(fi, in, n), (ssize_t)n);
	close(fi);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, inpath, O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fo, 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0); /* the shells' syntax errors */
	char *argv[] = {(char *)shell, "-c", (char *)cmd, NULL};
	pid_t pid;
	cr_assert_eq(posix_spawn(&pid, shell, &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	buf_reset(out);
	char b[4096];
	ssize_t r;
	lseek(fo, 0, SEEK_SET);
	while ((r = read(fo, b, sizeof b)) > 0)
		buf_add(out, b, (size_t)r);
	close(fo);
	unlink(inpath);
	unlink(outpath);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(remote_env, cut_anywhere_runs_nothing_whole_runs_with_every_value)
{
	/* E holds the marker's own line: a cut right after it must not pass for whole */
	const char *env[] = {"A=two words", "B=it's \"quoted\"", "C=$(echo INJECTED) `id` ;exit 0", "D=",
			     "E=line1\n__baton_env_whole=1\nline2"};
	struct buf cmd = {0}, out = {0};
	char *in = NULL, *err = NULL;
	cr_assert(remote_env(&cmd, env, 5, &in, &err), "%s", err ? err : "");
	cr_assert_not_null(in);
	buf_adds(&cmd, "exec sh -c 'printf \"%s|%s|%s|%s|%s\" \"$A\" \"$B\" \"$C\" \"$D\" \"$E\"'");
	const char *shells[] = {"/bin/dash", "/bin/bash"};
	size_t len = strlen(in);
	for (size_t k = 0; k < 2; k++) {
		/* (all but the final newline is all of it: $(cat) drops trailing newlines) */
		for (size_t n = 0; n + 1 < len; n++) {
			int rc = run_cut(shells[k], cmd.data, in, n, &out);
			cr_assert_neq(rc, 0, "%s: input cut at %zu of %zu bytes: the command ran (exit 0)", shells[k], n, len);
			cr_assert_eq(out.len, 0, "%s: input cut at %zu of %zu bytes: the command ran: %.*s", shells[k], n, len,
				     (int)out.len, out.data);
		}
		int rc = run_cut(shells[k], cmd.data, in, len, &out);
		cr_assert_eq(rc, 0, "%s: the whole input: exit %d", shells[k], rc);
		cr_assert_str_eq(out.data, "two words|it's \"quoted\"|$(echo INJECTED) `id` ;exit 0||line1\n__baton_env_whole=1\nline2",
				 "%s", shells[k]);
	}
	free(in);
	buf_free(&cmd);
	buf_free(&out);
}

Test(remote_env, no_environment_adds_nothing_and_a_bad_name_is_refused)
{
	struct buf cmd = {0};
	char *in = (char *)"x", *err = NULL;
	cr_assert(remote_env(&cmd, NULL, 0, &in, &err));
	cr_assert_null(in);
	cr_assert_eq(cmd.len, 0);
	const char *bad[] = {"1X=v"};
	cr_assert_not(remote_env(&cmd, bad, 1, &in, &err));
	cr_assert(strstr(err, "env 1X: a remote shell cannot take this variable name"), "%s", err);
	free(err);
	buf_free(&cmd);
}
