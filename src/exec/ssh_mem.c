/*
 * ssh_mem.c — the memory of a libssh2 session, each allocation on a list of
 * its connection's, so that what the session still holds when it is freed
 * is freed with it.
 *
 * libssh2 (1.10) leaves some of a session's memory behind when the
 * connection dies under it: an SFTP handle whose close could not be sent,
 * with its queued writes (a copy cut halfway: some 260 KB), the SFTP
 * session around it. Nothing of the session is used once
 * libssh2_session_free has returned, so whatever is still on the list then
 * is freed by session_sweep. A session is only ever used by one thread at a
 * time (the loop, or a worker the loop leaves it to: ssh_auth.c,
 * sftp_job.c), and so is its list.
 */
#include <stddef.h>
#include <stdlib.h>

#include "exec/ssh_internal.h"

union mem_hdr {
	struct {
		union mem_hdr *prev, *next;
	} l;
	max_align_t align; /* what follows is aligned as malloc's is */
};

static void link_in(struct conn *c, union mem_hdr *h)
{
	union mem_hdr *head = c->mem;
	h->l.prev = NULL;
	h->l.next = head;
	if (head)
		head->l.prev = h;
	c->mem = h;
}

static void unlink_out(struct conn *c, union mem_hdr *h)
{
	if (h->l.prev)
		h->l.prev->l.next = h->l.next;
	else
		c->mem = h->l.next;
	if (h->l.next)
		h->l.next->l.prev = h->l.prev;
}

static void *mem_alloc(size_t n, void **abstract)
{
	struct conn *c = *abstract;
	union mem_hdr *h = malloc(sizeof *h + n);
	if (!h)
		return NULL;
	link_in(c, h);
	return h + 1;
}

static void mem_free(void *p, void **abstract)
{
	if (!p)
		return;
	struct conn *c = *abstract;
	union mem_hdr *h = (union mem_hdr *)p - 1;
	unlink_out(c, h);
	free(h);
}

static void *mem_realloc(void *p, size_t n, void **abstract)
{
	if (!p)
		return mem_alloc(n, abstract);
	struct conn *c = *abstract;
	union mem_hdr *h = (union mem_hdr *)p - 1;
	unlink_out(c, h);
	union mem_hdr *nh = realloc(h, sizeof *nh + n);
	if (!nh) {
		link_in(c, h);
		return NULL;
	}
	link_in(c, nh);
	return nh + 1;
}

LIBSSH2_SESSION *session_new(struct conn *c)
{
	return libssh2_session_init_ex(mem_alloc, mem_free, mem_realloc, c);
}

void session_sweep(struct conn *c)
{
	while (c->mem) {
		union mem_hdr *h = c->mem;
		unlink_out(c, h);
		free(h);
	}
}
