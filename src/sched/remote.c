/*
 * remote.c — how a remote command gets the environment the plan gives it.
 * Servers usually refuse `setenv`, and an argv would show secrets to `ps`,
 * so the values travel on the channel's stdin as `export` lines that the
 * remote shell evaluates before it runs the command.
 *
 * That stdin can end early: baton killed, the connection cut, while the
 * lines are on their way. The shell must then run nothing — a command run
 * with half its values (an empty path, an empty host name) is a command
 * the plan never asked for. So the lines end with a marker assignment,
 * and the command runs only when the marker arrived: a script cut short
 * anywhere lacks it (cut inside a quoted value, it does not even parse).
 */
#include <string.h>

#include "sched/internal.h"
#include "util/util.h"

/* What the shell exits with when the environment did not arrive whole. */
#define REMOTE_ENV_CUT 125

/* A name a POSIX shell can export. */
static bool shell_name(const char *s, size_t n)
{
	if (!n || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

bool remote_env(struct buf *cmd, const char *const *env, size_t n, char **input, char **err)
{
	struct buf in = {0};
	*input = NULL;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(env[i], '=');
		if (!eq)
			continue;
		if (!shell_name(env[i], (size_t)(eq - env[i]))) {
			*err = xasprintf("env %.*s: a remote shell cannot take this variable name", (int)(eq - env[i]),
					 env[i]);
			buf_free(&in);
			return false;
		}
		buf_adds(&in, in.len ? " " : "export ");
		buf_add(&in, env[i], (size_t)(eq - env[i]) + 1);
		shell_quote(&in, eq + 1, strlen(eq + 1));
	}
	if (!in.len)
		return true;
	buf_adds(&in, "\n__baton_env_whole=1\n");
	*input = buf_detach(&in);
	/*
	 * All of stdin first, evaluated only when it ends with the marker line
	 * (a prefix of the export line, `e` or `ex`, would run as a command), and
	 * the command only when evaluating it set the marker (a cut inside a
	 * quoted value that holds the marker's text does not parse).
	 */
	buf_printf(cmd,
		   "__baton_env_whole=; __baton_env=$(cat); case $__baton_env in *\"\n__baton_env_whole=1\") "
		   "eval \"$__baton_env\" >/dev/null;; esac; [ \"$__baton_env_whole\" = 1 ] || exit %d; "
		   "unset __baton_env __baton_env_whole; ",
		   REMOTE_ENV_CUT);
	return true;
}
