/*
 * queue.c — the priority heap of ready tasks, the counting limiters and the
 * barrier's release rule: the scheduler's pure parts, tested on their own.
 * Taking limits is all-or-nothing so a task never holds one slot while it
 * waits for another (no deadlock, no wasted capacity).
 */
#include <stdlib.h>

#include "sched/sched.h"
#include "util/util.h"

bool qitem_before(const struct qitem *a, const struct qitem *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	if (a->order != b->order)
		return a->order < b->order;
	return a->seq < b->seq;
}

void heap_push(struct heap *h, struct qitem *it)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 16;
		h->v = xrealloc(h->v, h->cap * sizeof *h->v);
	}
	size_t i = h->n++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!qitem_before(it, h->v[up]))
			break;
		h->v[i] = h->v[up];
		i = up;
	}
	h->v[i] = it;
}

struct qitem *heap_peek(const struct heap *h)
{
	return h->n ? h->v[0] : NULL;
}

struct qitem *heap_pop(struct heap *h)
{
	if (!h->n)
		return NULL;
	struct qitem *top = h->v[0];
	struct qitem *last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, best = i;
		const struct qitem *bv = last;
		if (l < h->n && qitem_before(h->v[l], bv)) {
			best = l;
			bv = h->v[l];
		}
		if (r < h->n && qitem_before(h->v[r], bv))
			best = r;
		if (best == i)
			break;
		h->v[i] = h->v[best];
		i = best;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

void heap_free(struct heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

int limiters_try_take(struct limiter *const *ls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ls[i]->used >= ls[i]->capacity)
			return (int)i;
	for (size_t i = 0; i < n; i++)
		ls[i]->used++;
	return -1;
}

void limiters_release(struct limiter *const *ls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ls[i]->used > 0)
			ls[i]->used--;
}

bool barrier_can_release(const unsigned char *state, const bool *awaited, size_t n)
{
	bool someone = false;
	for (size_t i = 0; i < n; i++) {
		if (state[i] == 1)
			someone = true;
		else if (awaited[i])
			return false;
	}
	return someone;
}
