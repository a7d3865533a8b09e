/*
 * ssh_tunnel.c — ProxyJump: the jump host's connection opens a
 * direct-tcpip channel to the target, and the target's session talks over
 * one end of a socketpair whose other end is pumped to and from that
 * channel, in bounded buffers, as either side is ready.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/ssh_internal.h"

static void on_tunnel_poll(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	struct tunnel *t = h->data;
	tunnel_pump(t);
	if (t->via)
		conn_drive(t->via);
}

static void on_tunnel_closed(uv_handle_t *h)
{
	struct tunnel *t = h->data;
	if (t->fd >= 0)
		close(t->fd);
	free(t);
}

void tunnel_close(struct tunnel *t)
{
	struct conn *via = t->via;
	if (via) {
		for (size_t i = 0; i < via->n_carries; i++)
			if (via->carries[i] == t)
				via->carries[i] = NULL;
		if (t->ch)
			libssh2_channel_free(t->ch);
	}
	t->ch = NULL;
	t->target = NULL;
	t->via = NULL;
	if (via)
		conn_refs(via); /* it may carry nothing needed now */
	if (t->poll_init) {
		t->poll_init = false;
		t->poll.data = t;
		uv_close((uv_handle_t *)&t->poll, on_tunnel_closed);
	} else {
		if (t->fd >= 0)
			close(t->fd);
		free(t);
	}
}

/*
 * The tunnel's channel failed with libssh2 error e: when the jump host's
 * connection itself is broken, it fails, and with it every connection it
 * carries (their commands' groups are then ended through a new one);
 * otherwise only this tunnel's connection fails.
 */
static void tunnel_broke(struct tunnel *t, int e)
{
	struct conn *via = t->via;
	if (socket_error(e))
		conn_fail(via, lost_reason(via->s));
	else if (t->target)
		conn_fail(t->target, xasprintf("the tunnel through %s broke", via->h->name));
}

/* Moves bytes between the socketpair and the jump channel, as far as both take them. */
void tunnel_pump(struct tunnel *t)
{
	if (!t->ch || !t->via || t->via->dead)
		return;
	if (conn_away(t->via)) {
		/* a worker has the jump host's session (sftp.c gives none to a connection carrying
		 * tunnels; kept safe anyway): pumped again when it is back (conn_drive) */
		if (t->poll_init)
			uv_poll_stop(&t->poll);
		return;
	}
	for (int guard = 0; guard < 64; guard++) {
		bool progress = false;
		if (t->up_len < sizeof t->up) {
			ssize_t n = read(t->fd, t->up + t->up_len, sizeof t->up - t->up_len);
			if (n > 0) {
				t->up_len += (size_t)n;
				progress = true;
			}
		}
		if (t->up_len) {
			ssize_t n = libssh2_channel_write(t->ch, t->up, t->up_len);
			if (n > 0) {
				memmove(t->up, t->up + n, t->up_len - (size_t)n);
				t->up_len -= (size_t)n;
				progress = true;
			} else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
				tunnel_broke(t, (int)n);
				return;
			}
		}
		if (t->down_len < sizeof t->down) {
			ssize_t n = libssh2_channel_read(t->ch, t->down + t->down_len, sizeof t->down - t->down_len);
			if (n > 0) {
				t->down_len += (size_t)n;
				progress = true;
			} else if (n == 0 && libssh2_channel_eof(t->ch) && !t->eof) {
				t->eof = true;
				shutdown(t->fd, SHUT_WR);
			} else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
				tunnel_broke(t, (int)n);
				return;
			}
		}
		if (t->down_len) {
			ssize_t n = write(t->fd, t->down, t->down_len);
			if (n > 0) {
				memmove(t->down, t->down + n, t->down_len - (size_t)n);
				t->down_len -= (size_t)n;
				progress = true;
			}
		}
		if (!progress)
			break;
	}
	if (t->poll_init) {
		int ev = UV_READABLE;
		if (t->down_len)
			ev |= UV_WRITABLE;
		uv_poll_start(&t->poll, ev, on_tunnel_poll);
		set_ref((uv_handle_t *)&t->poll, t->target && conn_needed(t->target, 1));
	}
}

/* Opens the direct-tcpip channel for a tunnel, once the jump connection is ready. */
bool tunnel_step(struct tunnel *t)
{
	if (t->open)
		return false;
	t->ch = libssh2_channel_direct_tcpip_ex(t->via->s, t->target->h->address, t->target->h->port, "127.0.0.1", 22);
	if (!t->ch) {
		int e = libssh2_session_last_errno(t->via->s);
		if (e == LIBSSH2_ERROR_EAGAIN)
			return false;
		if (socket_error(e)) {
			conn_fail(t->via, lost_reason(t->via->s));
			return true;
		}
		char *why = session_error(t->via->s);
		if (t->target)
			conn_fail(t->target, xasprintf("the jump host %s could not open a channel to %s:%d: %s",
						       t->via->h->name, t->target->h->address, t->target->h->port, why));
		free(why);
		return true;
	}
	t->open = true;
	/* now the target's session may start on its end of the pair */
	if (t->target)
		conn_drive(t->target);
	return true;
}

