/* dir.c — where the run store lives (runs.md: "Where it lives"). */
#include <stdlib.h>

#include "store/store.h"
#include "util/util.h"

char *store_dir(const char *cli, char **err)
{
	if (cli && *cli)
		return xstrdup(cli);
	const char *v = getenv("BATON_STATE_DIR");
	if (v && *v)
		return xstrdup(v);
	v = getenv("XDG_STATE_HOME");
	if (v && *v == '/')
		return xasprintf("%s/baton", v);
	v = getenv("HOME");
	if (v && *v)
		return xasprintf("%s/.local/state/baton", v);
	*err = xstrdup("no state directory: set --state-dir, BATON_STATE_DIR or HOME");
	return NULL;
}

size_t store_keep_runs(void)
{
	const char *v = getenv("BATON_KEEP_RUNS");
	char *end;
	long n = v && *v ? strtol(v, &end, 10) : 0;
	return v && *v && !*end && n >= 1 ? (size_t)n : STORE_KEEP_RUNS;
}
