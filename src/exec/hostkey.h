/*
 * hostkey.h — the SSH server's host key checked against known_hosts, and the
 * host key algorithms offered for it (internal to src/exec/; hostkey.c).
 */
#ifndef BATON_EXEC_HOSTKEY_H
#define BATON_EXEC_HOSTKEY_H

#include <libssh2.h>
#include <stdbool.h>

#include "exec/exec.h"
#include "exec/knownhosts.h"

/*
 * Checks the key the server of session s offered for host h, as ssh(1)
 * does: a revoked key or a changed one (another key on file for the host)
 * is refused; an unknown host is refused, or with accept_new recorded in
 * the file. NULL when accepted, else the refusal, one line (caller frees).
 */
char *exec_hostkey_check(LIBSSH2_SESSION *s, const struct exec_host *h, struct exec_kh *kh, const char *file,
			 bool accept_new);

/*
 * Offers the server the host key algorithms of the keys on file for h
 * first, as ssh(1) does, so a host with several keys shows the one on file
 * (any other would be a changed key); then the rest, ed25519 first, and no
 * certificates, which baton cannot check.
 */
void exec_hostkey_prefer(LIBSSH2_SESSION *s, const struct exec_kh *kh, const struct exec_host *h);

#endif
