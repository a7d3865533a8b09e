/*
 * sftp.c — `copy` and `fetch` on a host: SFTP on the host's connection of
 * the SSH executor (ssh.c), non-blocking, driven by the loop like its
 * channels.
 */
#include "exec/copy.h"
#include "util/util.h"

struct exec_proc *sftp_copy_start(struct executor *ssh, const struct exec_copy_spec *spec,
				  const struct exec_callbacks *cb, void *ud, char **err)
{
	(void)ssh;
	(void)spec;
	(void)cb;
	(void)ud;
	*err = xstrdup("copy and fetch on a host are not available yet");
	return NULL;
}
