/*
 * dir.c — where the run store lives (runs.md "Where it lives"): --state-dir,
 * else $BATON_STATE_DIR, else $XDG_STATE_HOME/baton, else
 * ~/.local/state/baton (~: $HOME, else the passwd entry's home). Nothing is
 * created here; the writer and the locks do.
 */
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"
#include "util/util.h"

/* An environment variable's value, or NULL when it is unset or empty (an empty one means unset). */
static const char *env_value(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

char *store_dir(const char *cli, char **err)
{
	if (cli) {
		if (!*cli) {
			*err = xstrdup("--state-dir: the directory is empty");
			return NULL;
		}
		return xstrdup(cli);
	}
	const char *v = env_value("BATON_STATE_DIR");
	if (v)
		return xstrdup(v);
	/* the XDG spec: a relative XDG_STATE_HOME is invalid and is ignored */
	v = env_value("XDG_STATE_HOME");
	if (v && v[0] == '/')
		return xasprintf("%s/baton", v);
	/* ~ as everywhere else in baton: $HOME, else the user's home in the passwd database */
	v = env_value("HOME");
	if (!v) {
		struct passwd *pw = getpwuid(getuid());
		v = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
	}
	if (v)
		return xasprintf("%s/.local/state/baton", v);
	*err = xstrdup("no state directory: HOME is not set and the user has no home directory "
		       "(give --state-dir DIR or set BATON_STATE_DIR)");
	return NULL;
}

size_t store_keep_runs(void)
{
	const char *v = getenv("BATON_KEEP_RUNS");
	char *end;
	long n = v && *v ? strtol(v, &end, 10) : 0;
	return v && *v && !*end && n >= 1 ? (size_t)n : STORE_KEEP_RUNS;
}
