/*
 * The ready queue (priority desc, then plan order asc) and the counting
 * limiters that tasks take all together or not at all.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "sched/sched.h"

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return rng_state >> 8;
}

static int by_rule(const void *a, const void *b)
{
	const struct qitem *x = a, *y = b;
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

Test(heap, empty_heap_pops_null)
{
	struct heap h = {0};
	cr_assert_null(heap_pop(&h));
	cr_assert_null(heap_peek(&h));
	heap_free(&h);
}

Test(heap, qitem_before_orders_by_priority_then_order)
{
	struct qitem hi = {5, 10, 0}, lo = {1, 1, 0}, early = {5, 3, 0};
	cr_assert(qitem_before(&hi, &lo));
	cr_assert_not(qitem_before(&lo, &hi));
	cr_assert(qitem_before(&early, &hi));
	cr_assert_not(qitem_before(&hi, &early));
	cr_assert_not(qitem_before(&hi, &hi));
	struct qitem neg = {-1, 0, 0}, zero = {0, 99, 0};
	cr_assert(qitem_before(&zero, &neg));
}

Test(heap, pops_by_priority_desc_then_order_asc_across_random_pushes)
{
	enum { N = 3000 };
	struct qitem *items = calloc(N, sizeof *items);
	struct qitem *sorted = calloc(N, sizeof *sorted);
	cr_assert_not_null(items);
	cr_assert_not_null(sorted);
	/* unique orders in shuffled push order, priorities with many ties */
	for (size_t i = 0; i < N; i++)
		items[i].order = i;
	for (size_t i = N - 1; i > 0; i--) {
		size_t j = rng() % (i + 1);
		uint64_t t = items[i].order;
		items[i].order = items[j].order;
		items[j].order = t;
	}
	for (size_t i = 0; i < N; i++)
		items[i].priority = (long)(rng() % 11) - 5;
	struct heap h = {0};
	for (size_t i = 0; i < N; i++) {
		heap_push(&h, &items[i]);
		sorted[i] = items[i];
	}
	cr_assert_eq(h.n, N);
	qsort(sorted, N, sizeof *sorted, by_rule);
	for (size_t i = 0; i < N; i++) {
		struct qitem *top = heap_peek(&h);
		struct qitem *it = heap_pop(&h);
		cr_assert_not_null(it, "heap ran out at %zu", i);
		cr_assert_eq(top, it);
		cr_assert_eq(it->priority, sorted[i].priority, "pop %zu: priority %ld, expected %ld", i, it->priority,
			     sorted[i].priority);
		cr_assert_eq(it->order, sorted[i].order, "pop %zu: order %llu, expected %llu", i,
			     (unsigned long long)it->order, (unsigned long long)sorted[i].order);
	}
	cr_assert_null(heap_pop(&h));
	cr_assert_eq(h.n, 0);
	heap_free(&h);
	free(items);
	free(sorted);
}

/*
 * Real ties. Two groups share one priority: plan order 3 and plan order 4,
 * pushed interleaved in a shuffled sequence, the later plan order holding
 * the smaller seqs (so seq deciding before order would show). Within a
 * group priority and order tie, and seq alone decides.
 */
Test(heap, ties_on_priority_and_order_are_broken_by_seq_after_order)
{
	enum { N = 64 };
	struct qitem items[2 * N];
	uint64_t seqs[N];
	for (size_t i = 0; i < N; i++)
		seqs[i] = i + 1;
	for (size_t i = N - 1; i > 0; i--) {
		size_t j = rng() % (i + 1);
		uint64_t t = seqs[i];
		seqs[i] = seqs[j];
		seqs[j] = t;
	}
	struct heap h = {0};
	for (size_t i = 0; i < N; i++) {
		items[2 * i] = (struct qitem){7, 4, seqs[i]};	      /* order 4: seqs 1..N */
		items[2 * i + 1] = (struct qitem){7, 3, N + seqs[i]}; /* order 3: seqs N+1..2N */
		heap_push(&h, &items[2 * i]);
		heap_push(&h, &items[2 * i + 1]);
	}
	for (size_t i = 0; i < 2 * N; i++) {
		struct qitem *it = heap_pop(&h);
		cr_assert_not_null(it, "heap ran out at %zu", i);
		uint64_t want_order = i < N ? 3 : 4, want_seq = i < N ? N + i + 1 : i - N + 1;
		cr_assert_eq(it->priority, 7);
		cr_assert_eq(it->order, want_order, "pop %zu: order %llu, expected %llu (order before seq)", i,
			     (unsigned long long)it->order, (unsigned long long)want_order);
		cr_assert_eq(it->seq, want_seq, "pop %zu: seq %llu, expected %llu (equal priority and order: seq decides)",
			     i, (unsigned long long)it->seq, (unsigned long long)want_seq);
	}
	cr_assert_null(heap_pop(&h));
	heap_free(&h);
}

/* Equal priority, distinct plan orders, seqs against them: plan order decides. */
Test(heap, equal_priority_is_broken_by_order_not_seq)
{
	enum { N = 40 };
	struct qitem items[N];
	struct heap h = {0};
	for (size_t i = 0; i < N; i++) {
		size_t k = (i * 17) % N; /* a fixed shuffle of 0..N-1 (17 is prime to 40) */
		items[i] = (struct qitem){-2, k, (uint64_t)(N - k)};
		heap_push(&h, &items[i]);
	}
	for (size_t i = 0; i < N; i++) {
		struct qitem *it = heap_pop(&h);
		cr_assert_not_null(it, "heap ran out at %zu", i);
		cr_assert_eq(it->order, i, "pop %zu returned order %llu (seq %llu)", i, (unsigned long long)it->order,
			     (unsigned long long)it->seq);
	}
	heap_free(&h);
}

Test(heap, interleaved_push_and_pop)
{
	enum { N = 2000 };
	struct qitem *items = calloc(N, sizeof *items);
	cr_assert_not_null(items);
	struct heap h = {0};
	size_t pushed = 0, popped = 0;
	long last_pri = 0;
	uint64_t last_order = 0;
	bool have_last = false;
	while (popped < N) {
		bool push = pushed < N && (h.n == 0 || rng() % 3 != 0);
		if (push) {
			items[pushed] = (struct qitem){(long)(rng() % 4), pushed, 0};
			heap_push(&h, &items[pushed]);
			pushed++;
			have_last = false; /* a new item may outrank what came before */
			continue;
		}
		struct qitem *it = heap_pop(&h);
		cr_assert_not_null(it);
		/* every remaining item comes after what was just popped */
		for (size_t k = 0; k < h.n; k++)
			cr_assert_not(qitem_before(h.v[k], it), "heap kept an item that outranks the popped one");
		if (have_last)
			cr_assert(last_pri > it->priority || (last_pri == it->priority && last_order < it->order));
		last_pri = it->priority;
		last_order = it->order;
		have_last = true;
		popped++;
	}
	cr_assert_eq(h.n, 0);
	heap_free(&h);
	free(items);
}

Test(heap, free_empties_the_heap)
{
	struct qitem a = {1, 1, 0};
	struct heap h = {0};
	heap_push(&h, &a);
	heap_free(&h);
	cr_assert_eq(h.n, 0);
	cr_assert_null(h.v);
	cr_assert_null(heap_pop(&h));
	heap_push(&h, &a);
	cr_assert_eq(heap_pop(&h), &a);
	heap_free(&h);
}

/* ---- limiters ---- */

Test(limiters, take_is_all_or_nothing)
{
	struct limiter a = {.capacity = 2}, b = {.capacity = 1}, c = {.capacity = 3};
	struct limiter *ls[] = {&a, &b, &c};
	cr_assert_eq(limiters_try_take(ls, 3), -1);
	cr_assert_eq(a.used, 1);
	cr_assert_eq(b.used, 1);
	cr_assert_eq(c.used, 1);
	/* b is full: nothing is taken, and its index comes back */
	cr_assert_eq(limiters_try_take(ls, 3), 1);
	cr_assert_eq(a.used, 1);
	cr_assert_eq(b.used, 1);
	cr_assert_eq(c.used, 1);
}

Test(limiters, returns_the_first_full_limiter)
{
	struct limiter a = {.capacity = 1, .used = 1}, b = {.capacity = 5}, c = {.capacity = 1, .used = 1};
	struct limiter *ls[] = {&b, &c, &a};
	cr_assert_eq(limiters_try_take(ls, 3), 1);
	cr_assert_eq(b.used, 0);
	struct limiter *ls2[] = {&a, &b, &c};
	cr_assert_eq(limiters_try_take(ls2, 3), 0);
	cr_assert_eq(b.used, 0);
}

Test(limiters, release_frees_capacity)
{
	struct limiter a = {.capacity = 1}, b = {.capacity = 1};
	struct limiter *ls[] = {&a, &b};
	cr_assert_eq(limiters_try_take(ls, 2), -1);
	cr_assert_eq(limiters_try_take(ls, 2), 0);
	limiters_release(ls, 2);
	cr_assert_eq(a.used, 0);
	cr_assert_eq(b.used, 0);
	cr_assert_eq(limiters_try_take(ls, 2), -1);
	/* a task holding only b leaves a free for others */
	limiters_release(ls, 2);
	cr_assert_eq(limiters_try_take(&ls[1], 1), -1);
	cr_assert_eq(limiters_try_take(ls, 2), 1);
	cr_assert_eq(a.used, 0);
	cr_assert_eq(limiters_try_take(ls, 1), -1);
	cr_assert_eq(a.used, 1);
}

Test(limiters, capacity_is_respected)
{
	struct limiter g = {.capacity = 3};
	struct limiter *ls[] = {&g};
	for (int i = 0; i < 3; i++)
		cr_assert_eq(limiters_try_take(ls, 1), -1, "take %d", i + 1);
	cr_assert_eq(g.used, 3);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(limiters_try_take(ls, 1), 0);
	cr_assert_eq(g.used, 3);
	limiters_release(ls, 1);
	cr_assert_eq(g.used, 2);
	cr_assert_eq(limiters_try_take(ls, 1), -1);
	cr_assert_eq(limiters_try_take(ls, 1), 0);
}

Test(limiters, release_never_goes_below_zero)
{
	struct limiter g = {.capacity = 1};
	struct limiter *ls[] = {&g};
	limiters_release(ls, 1);
	cr_assert_eq(g.used, 0);
	cr_assert_eq(limiters_try_take(ls, 1), -1);
	cr_assert_eq(limiters_try_take(ls, 1), 0, "a spurious release must not add capacity");
}

Test(limiters, no_limiters_always_succeeds)
{
	cr_assert_eq(limiters_try_take(NULL, 0), -1);
	limiters_release(NULL, 0);
}

/* Items of one for_each share priority and plan order: their enqueue order decides. */
Test(heap, ties_on_order_keep_enqueue_sequence)
{
	enum { N = 50 };
	struct qitem items[N];
	struct heap h = {0};
	for (size_t i = 0; i < N; i++) {
		items[i] = (struct qitem){0, 7, (uint64_t)(N - i)};
		heap_push(&h, &items[i]);
	}
	for (size_t i = 0; i < N; i++) {
		struct qitem *q = heap_pop(&h);
		cr_assert_eq(q->seq, (uint64_t)(i + 1));
	}
	heap_free(&h);
}
