/*
 * Shared helpers for the unit tests: load a plan from a literal YAML string,
 * look diagnostics up by message, and run strings through /bin/sh.
 */
#ifndef BATON_TEST_HELPERS_H
#define BATON_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plan/plan.h"
#include "util/util.h"

/* Every diagnostic as FILE:LINE:COL: error: MSG lines (caller frees). */
static inline char *th_diags_text(const struct diags *d)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&s, &n);
	cr_assert_not_null(f);
	diags_print(d, f);
	fclose(f);
	return s;
}

/* Loads yaml as "plan.yaml"; fails the test (printing every diagnostic) if it does not load. */
static inline struct plan *th_load_ok_with(const char *yaml, json_t *overrides)
{
	struct diags d = {0};
	struct plan *p = plan_load_buffer("plan.yaml", yaml, strlen(yaml), overrides, &d);
	if (!p || d.n) {
		char *t = th_diags_text(&d);
		cr_assert_fail("plan did not load cleanly:\n%s", t);
	}
	diags_free(&d);
	return p;
}

static inline struct plan *th_load_ok(const char *yaml)
{
	return th_load_ok_with(yaml, NULL);
}

/* Loads yaml expecting failure: asserts NULL and at least one diagnostic. */
static inline void th_load_fail(const char *yaml, struct diags *d)
{
	struct plan *p = plan_load_buffer("plan.yaml", yaml, strlen(yaml), NULL, d);
	if (p) {
		plan_free(p);
		cr_assert_fail("plan loaded but errors were expected");
	}
	cr_assert_gt(d->n, 0, "no diagnostic for a plan that failed to load");
}

/* The first diagnostic whose message contains sub, or NULL. */
static inline const struct diag *th_diag_find(const struct diags *d, const char *sub)
{
	for (size_t i = 0; i < d->n; i++)
		if (strstr(d->v[i].msg, sub))
			return &d->v[i];
	return NULL;
}

/* Asserts a diagnostic containing sub exists in file f at line:col (0:0 for a --var). */
#define ASSERT_DIAG_IN(d, f, sub, ln, cl)                                                                  \
	do {                                                                                               \
		const struct diag *g_ = th_diag_find((d), (sub));                                          \
		if (!g_) {                                                                                 \
			char *t_ = th_diags_text(d);                                                       \
			cr_assert_fail("no diagnostic containing \"%s\"; got:\n%s", (sub), t_);            \
		}                                                                                          \
		cr_assert_str_eq(g_->file, (f), "\"%s\" is in %s", g_->msg, g_->file);                     \
		cr_assert_eq(g_->line, (ln), "\"%s\": line %d, expected %d", g_->msg, g_->line, (ln));     \
		cr_assert_eq(g_->col, (cl), "\"%s\": col %d, expected %d", g_->msg, g_->col, (cl));        \
	} while (0)

/* Asserts d holds exactly want diagnostics, listing them when not. */
#define EXPECT_N(d, want)                                                                                  \
	do {                                                                                               \
		if ((d)->n != (size_t)(want)) {                                                            \
			char *t_ = th_diags_text(d);                                                       \
			cr_assert_fail("%zu diagnostics, expected %d:\n%s", (d)->n, (int)(want), t_);      \
		}                                                                                          \
	} while (0)

/* Asserts a diagnostic containing sub exists at line:col. */
#define TH_ASSERT_DIAG(d, sub, ln, cl)                                                                      \
	do {                                                                                                \
		const struct diag *th_g = th_diag_find((d), (sub));                                         \
		if (!th_g) {                                                                                \
			char *th_t = th_diags_text(d);                                                      \
			cr_assert_fail("no diagnostic containing \"%s\"; got:\n%s", (sub), th_t);           \
		}                                                                                           \
		cr_assert_str_eq(th_g->file, "plan.yaml");                                                  \
		cr_assert_eq(th_g->line, (ln), "\"%s\": line %d, expected %d", th_g->msg, th_g->line, (ln)); \
		cr_assert_eq(th_g->col, (cl), "\"%s\": col %d, expected %d", th_g->msg, th_g->col, (cl));   \
	} while (0)

/*
 * Runs SHELL -c SCRIPT (no other shell in between) with env (NAME=VALUE
 * strings, NULL-terminated, may be NULL) added to the environment; returns
 * its stdout (caller frees); *status gets its exit status.
 */
static inline char *th_shell_env(const char *shell, const char *script, char *const *env, int *status)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0, "pipe failed");
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_neq(pid, -1, "fork failed");
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		int devnull = open("/dev/null", O_WRONLY);
		if (devnull >= 0)
			dup2(devnull, 2);
		for (size_t i = 0; env && env[i]; i++)
			putenv(env[i]);
		execl(shell, shell, "-c", script, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	struct buf out = {0};
	char chunk[4096];
	ssize_t n;
	while ((n = read(fds[0], chunk, sizeof chunk)) > 0)
		buf_add(&out, chunk, (size_t)n);
	close(fds[0]);
	int st = 0;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	if (status)
		*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return buf_detach(&out);
}

/* Runs /bin/sh -c SCRIPT and returns its stdout (caller frees); *status gets its exit status. */
static inline char *th_sh(const char *script, int *status)
{
	return th_shell_env("/bin/sh", script, NULL, status);
}

#endif
