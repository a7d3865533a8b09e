/*
 * store_dir: where the run store lives (runs.md) — --state-dir, then
 * $BATON_STATE_DIR, then $XDG_STATE_HOME/baton, then ~/.local/state/baton
 * (~: $HOME, else the passwd entry's home).
 * Criterion runs each test in its own process, so the environment set here
 * does not leak into other tests.
 */
#include <criterion/criterion.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "util/util.h"

static void env(const char *state, const char *xdg, const char *home)
{
	state ? setenv("BATON_STATE_DIR", state, 1) : unsetenv("BATON_STATE_DIR");
	xdg ? setenv("XDG_STATE_HOME", xdg, 1) : unsetenv("XDG_STATE_HOME");
	home ? setenv("HOME", home, 1) : unsetenv("HOME");
}

static void expect(const char *cli, const char *want)
{
	char *err = NULL;
	char *dir = store_dir(cli, &err);
	cr_assert_not_null(dir, "store_dir failed: %s", err ? err : "(no error)");
	cr_assert_str_eq(dir, want);
	cr_assert_null(err);
	free(dir);
}

Test(store_dir, the_option_wins_over_every_variable)
{
	env("/env/state", "/xdg", "/home/u");
	expect("/cli/dir", "/cli/dir");
	expect("relative/dir", "relative/dir");
}

Test(store_dir, baton_state_dir_wins_over_xdg_and_home)
{
	env("/env/state", "/xdg", "/home/u");
	expect(NULL, "/env/state");
}

Test(store_dir, xdg_state_home_then_baton)
{
	env(NULL, "/xdg", "/home/u");
	expect(NULL, "/xdg/baton");
}

Test(store_dir, home_local_state_baton_last)
{
	env(NULL, NULL, "/home/u");
	expect(NULL, "/home/u/.local/state/baton");
}

Test(store_dir, empty_variables_count_as_unset)
{
	env("", "", "/home/u");
	expect(NULL, "/home/u/.local/state/baton");
}

Test(store_dir, a_relative_xdg_state_home_is_ignored)
{
	env(NULL, "relative/xdg", "/home/u");
	expect(NULL, "/home/u/.local/state/baton");
}

Test(store_dir, without_home_the_passwd_home_else_an_error_that_says_what_to_do)
{
	env(NULL, NULL, NULL);
	struct passwd *pw = getpwuid(getuid());
	char *err = NULL;
	char *dir = store_dir(NULL, &err);
	if (pw && pw->pw_dir && *pw->pw_dir) {
		char *want = xasprintf("%s/.local/state/baton", pw->pw_dir);
		cr_assert_not_null(dir, "%s", err);
		cr_assert_str_eq(dir, want);
		free(want);
	} else {
		cr_assert_null(dir);
		cr_assert_not_null(err);
		cr_assert_not_null(strstr(err, "HOME"), "%s", err);
		cr_assert_not_null(strstr(err, "--state-dir"), "%s", err);
	}
	free(dir);
	free(err);
	/* the option and the variable still come first */
	expect("/cli", "/cli");
	setenv("BATON_STATE_DIR", "/env", 1);
	expect(NULL, "/env");
}

Test(store_dir, an_empty_option_is_an_error)
{
	env("/env/state", NULL, "/home/u");
	char *err = NULL;
	cr_assert_null(store_dir("", &err));
	cr_assert_not_null(err);
	free(err);
}
