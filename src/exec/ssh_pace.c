/*
 * ssh_pace.c — how many connections are being set up at once: at most
 * CONNECTING_MAX direct connections are between their first packet and
 * their login (TCP connect, SSH handshake, host key, authentication); the
 * others wait, in the order they were asked for, and their connect_timeout
 * starts when they do.
 *
 * A thousand hosts connected to at the same instant gain nothing: the
 * handshakes share the controller's CPU (each slower, all finishing late,
 * past their timeout), and hosts that are names of one address (a load
 * balancer, a bastion, the test fleet) see a SYN flood that their listen
 * queue drops, each dropped SYN costing its connection seconds of TCP
 * back-off. With the setups paced, each takes what it needs and the next
 * follows. A connection through a jump host opens no socket of its own (a
 * channel of the jump host's connection) and is not paced: its jump host
 * is, and a target never holds a place its jump host would wait for.
 */
#include <stdlib.h>

#include "exec/ssh_internal.h"

static void on_pace(uv_timer_t *t);

static void pace_closed(uv_handle_t *h)
{
	free(h);
}

bool pace_admit(struct conn *c)
{
	struct ssh *X = c->X;
	if (c->h->jump)
		return true;
	if (X->n_connecting < CONNECTING_MAX && !X->pace_head) {
		X->n_connecting++;
		c->pacing = PACE_COUNTED;
		return true;
	}
	c->pacing = PACE_QUEUED;
	c->pace_next = NULL;
	if (X->pace_tail)
		X->pace_tail->pace_next = c;
	else
		X->pace_head = c;
	X->pace_tail = c;
	return false;
}

/* Starts waiting connections while there is room, from the loop (never inside a caller's call). */
static void pace_kick(struct ssh *X)
{
	if (!X->pace_head || X->n_connecting >= CONNECTING_MAX || X->closing)
		return;
	if (!X->pace_timer) {
		X->pace_timer = xmalloc(sizeof *X->pace_timer);
		uv_timer_init(X->loop, X->pace_timer);
		X->pace_timer->data = X;
	}
	uv_timer_start(X->pace_timer, on_pace, 0, 0);
}

static void on_pace(uv_timer_t *t)
{
	struct ssh *X = t->data;
	while (X->pace_head && X->n_connecting < CONNECTING_MAX && !X->closing) {
		struct conn *c = X->pace_head;
		X->pace_head = c->pace_next;
		if (!X->pace_head)
			X->pace_tail = NULL;
		c->pace_next = NULL;
		X->n_connecting++;
		c->pacing = PACE_COUNTED;
		conn_start(c); /* may fail at once: pace_done gives its place back */
	}
}

void pace_done(struct conn *c)
{
	struct ssh *X = c->X;
	if (c->pacing == PACE_COUNTED) {
		X->n_connecting--;
		pace_kick(X);
	} else if (c->pacing == PACE_QUEUED) {
		struct conn **pp = &X->pace_head, *prev = NULL;
		while (*pp && *pp != c) {
			prev = *pp;
			pp = &(*pp)->pace_next;
		}
		if (*pp) {
			*pp = c->pace_next;
			if (X->pace_tail == c)
				X->pace_tail = prev;
		}
		c->pace_next = NULL;
	}
	c->pacing = PACE_NONE;
}

void pace_free(struct ssh *X)
{
	if (X->pace_timer) {
		uv_close((uv_handle_t *)X->pace_timer, pace_closed);
		X->pace_timer = NULL;
	}
}
