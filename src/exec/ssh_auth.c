/*
 * ssh_auth.c — authenticating a connection: the methods the server offers,
 * then the ssh-agent's keys, then the identity files (the host's, the plan's
 * `ssh.identity`, OpenSSH's defaults), each tried without blocking the loop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/ssh_internal.h"

static bool file_exists(const char *p)
{
	return access(p, R_OK) == 0;
}

/* The identity files to try: the host's own, else ~/.ssh/id_{ed25519,ecdsa,rsa} that exist. */
static const char *identity_at(struct conn *c, size_t i, char *tmp, size_t tmpsz)
{
	if (c->h->n_identities)
		return i < c->h->n_identities ? c->h->identities[i] : NULL;
	static const char *const defs[] = {"id_ed25519", "id_ecdsa", "id_rsa"};
	if (!c->X->home || i >= ARRAY_LEN(defs))
		return NULL;
	snprintf(tmp, tmpsz, "%s/.ssh/%s", c->X->home, defs[i]);
	return tmp;
}

/* Advances authentication; returns false while it must wait (or failed). */
bool auth_step(struct conn *c)
{
	const char *user = c->h->user;
	unsigned ulen = (unsigned)strlen(user);
	if (c->auth_phase == 0) {
		char *list = libssh2_userauth_list(c->s, user, ulen);
		if (!list) {
			if (libssh2_userauth_authenticated(c->s))
				return true;
			if (libssh2_session_last_errno(c->s) == LIBSSH2_ERROR_EAGAIN)
				return false;
			char *why = session_error(c->s);
			conn_fail(c, xasprintf("authentication failed: %s", why));
			free(why);
			return false;
		}
		c->authlist = xstrdup(list);
		if (!strstr(c->authlist, "publickey")) {
			conn_fail(c, xasprintf("authentication failed: the server offers only %s; baton uses keys "
					       "(ssh-agent or identity files)",
					       c->authlist));
			return false;
		}
		c->auth_phase = 1;
		const char *sock = getenv("SSH_AUTH_SOCK");
		if (sock && *sock) {
			c->agent = libssh2_agent_init(c->s);
			if (c->agent && (libssh2_agent_connect(c->agent) != 0 ||
					 libssh2_agent_list_identities(c->agent) != 0)) {
				libssh2_agent_disconnect(c->agent);
				libssh2_agent_free(c->agent);
				c->agent = NULL;
			}
		}
		if (!c->agent)
			c->auth_phase = 2;
	}
	while (c->auth_phase == 1) {
		if (!c->agent_id) {
			if (libssh2_agent_get_identity(c->agent, &c->agent_id, NULL) != 0) {
				c->auth_phase = 2;
				break;
			}
		}
		int rc = libssh2_agent_userauth(c->agent, user, c->agent_id);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc == 0)
			return true;
		c->agent_tried++;
		struct libssh2_agent_publickey *prev = c->agent_id;
		if (libssh2_agent_get_identity(c->agent, &c->agent_id, prev) != 0)
			c->auth_phase = 2;
	}
	while (c->auth_phase == 2) {
		char tmp[4096];
		const char *path = identity_at(c, c->id_next, tmp, sizeof tmp);
		if (!path) {
			c->auth_phase = 3;
			break;
		}
		if (!file_exists(path)) {
			c->id_next++;
			continue;
		}
		int rc = libssh2_userauth_publickey_fromfile_ex(c->s, user, ulen, NULL, path, NULL);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (rc == 0)
			return true;
		c->id_next++;
	}
	struct buf tried = {0};
	if (c->agent_tried)
		buf_adds(&tried, "ssh-agent's keys");
	else
		buf_adds(&tried, getenv("SSH_AUTH_SOCK") && *getenv("SSH_AUTH_SOCK") ? "ssh-agent (no key it holds was accepted)"
										      : "no ssh-agent (SSH_AUTH_SOCK unset)");
	char tmp[4096];
	for (size_t i = 0; identity_at(c, i, tmp, sizeof tmp); i++) {
		const char *p = identity_at(c, i, tmp, sizeof tmp);
		buf_adds(&tried, ", ");
		buf_adds(&tried, p);
		if (!file_exists(p))
			buf_adds(&tried, " (missing)");
	}
	conn_fail(c, xasprintf("authentication failed for user %s: the server accepted none of the keys (tried %s)",
			       user, tried.data));
	buf_free(&tried);
	return false;
}

