/*
 * The scheduler's state machine (src/sched), driven through sched_run() on a
 * real loop with a fake executor (sched_harness.h): every node finishes
 * exactly once, handlers end before their step, and every kind of wait is
 * cancelled by a plan timeout and by SIGINT.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "sched/sched.h"
#include "sched_harness.h"

/* Runs yaml, checks the invariants, and returns the harness for more checks (caller frees). */
static struct harness *run_checked(const char *yaml)
{
	struct harness *h = h_new(yaml);
	h_run(h);
	h_check_invariants(h);
	return h;
}

/* Asserts the run's exit status, with the log on failure. */
static void expect_rc(const struct harness *h, int rc)
{
	if (h->rc != rc) {
		char *d = h_dump(h);
		cr_assert_fail("exit status %d, expected %d\n%s", h->rc, rc, d);
	}
}

/* Asserts step id ended with status st, with the log on failure. */
static void expect_status(const struct harness *h, const char *id, enum status st)
{
	enum status got = h_status(h, id);
	if (got != st) {
		char *d = h_dump(h);
		cr_assert_fail("step %s ended %s, expected %s\n%s", id, status_name(got), status_name(st), d);
	}
}

/* Asserts the fake started exactly these tasks, in this order ("a,b#1"). */
static void expect_started(const struct harness *h, const char *want)
{
	char *got = h_started(h);
	if (strcmp(got, want)) {
		char *d = h_dump(h);
		cr_assert_fail("started [%s], expected [%s]\n%s", got, want, d);
	}
	free(got);
}

/* Asserts event a (index) comes before event b, both present. */
static void expect_before(const struct harness *h, long a, long b, const char *what)
{
	if (a < 0 || b < 0 || a >= b) {
		char *d = h_dump(h);
		cr_assert_fail("%s (indexes %ld, %ld)\n%s", what, a, b, d);
	}
}

/* ---- 1. every node finishes exactly once ---- */

Test(once, a_sequence_runs_in_order_and_stops_at_a_failure)
{
	struct harness *h = run_checked("steps:\n"
					"  - { id: a, run: 'w:1' }\n"
					"  - { id: b, run: 'x:2' }\n"
					"  - { id: c, run: 'w:1' }\n"
					"  - { id: d, steps: [{ id: e, run: 'w:1' }] }\n");
	expect_rc(h, EXIT_FAILED);
	expect_started(h, "a,b");
	expect_status(h, "a", ST_SUCCESS);
	expect_status(h, "b", ST_FAILED);
	expect_status(h, "c", ST_SKIPPED);
	expect_status(h, "d", ST_SKIPPED);
	expect_status(h, "d.e", ST_SKIPPED);
	cr_assert_eq(h_run_end(h)->status, ST_FAILED);
	h_free(h);
}

/* all and race cancel the rest at the first end, any at the first success; settle lets everything end */
Test(once, parallel_modes_each_end_once)
{
	static const char *const modes[] = {"all", "settle", "any", "race"};
	static const int rcs[] = {EXIT_FAILED, EXIT_FAILED, EXIT_OK, EXIT_FAILED};
	for (size_t m = 0; m < 4; m++) {
		bool settle = m == 1;
		char *y = xasprintf("steps:\n"
				    "  - id: p\n"
				    "    mode: %s\n"
				    "    parallel:\n"
				    "      - { id: fast-fail, run: 'w:1 x:1' }\n"
				    "      - { id: ok, run: 'w:5' }\n"
				    "      - { id: slow, run: '%s' }\n"
				    "      - { id: seq, steps: [{ id: s1, run: 'w:10' }, { id: s2, run: '%s' }] }\n",
				    modes[m], settle ? "w:20" : "hang", settle ? "w:20" : "hang");
		struct harness *h = run_checked(y);
		expect_rc(h, rcs[m]);
		expect_status(h, "p.slow", settle ? ST_SUCCESS : ST_CANCELLED);
		expect_status(h, "p.seq.s2", settle ? ST_SUCCESS : ST_CANCELLED);
		expect_status(h, "p.ok", m == 0 || m == 3 ? ST_CANCELLED : ST_SUCCESS);
		h_free(h);
		free(y);
	}
}

Test(once, stages_run_one_after_another_and_a_failed_stage_stops_the_rest)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: st\n"
					"    stages:\n"
					"      - { id: one, steps: [{ id: a, run: 'w:2' }, { id: b, run: 'w:1' }] }\n"
					"      - { id: two, steps: [{ id: c, run: 'x:1' }, { id: d, run: 'w:1' }] }\n"
					"      - { id: three, steps: [{ id: e, run: 'w:1' }] }\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "st.one", ST_SUCCESS);
	expect_status(h, "st.two", ST_FAILED);
	expect_status(h, "st.three", ST_SKIPPED);
	expect_status(h, "st.three.e", ST_SKIPPED);
	/* stage two starts only after both of stage one's steps ended */
	expect_before(h, h_find(h, EV_STEP_END, "st.one.a", 0), h_find(h, EV_TASK_START, "st.two.c", 0),
		      "stage two began before stage one ended");
	expect_before(h, h_find(h, EV_STEP_END, "st.one.b", 0), h_find(h, EV_TASK_START, "st.two.c", 0),
		      "stage two began before stage one ended");
	h_free(h);
}

/* max_failures counts failures over every batch so far: one in each of two batches is two */
Test(once, for_each_batches_run_in_turn_and_stop_past_max_failures)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: f\n"
					"    for_each: [a, b, c, d, e]\n"
					"    batch: { size: 2, pause: 5ms, max_failures: 1 }\n"
					"    steps:\n"
					"      - { id: s, run: 'w:1 failitem:b failitem:c' }\n"
					"      - { id: t, run: 'w:1' }\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "f", ST_FAILED);
	expect_status(h, "f#0", ST_SUCCESS);
	expect_status(h, "f#1", ST_FAILED);
	expect_status(h, "f#2", ST_FAILED);
	expect_status(h, "f#4", ST_CANCELLED);
	expect_status(h, "f.s#4", ST_CANCELLED);
	cr_assert_eq(h_count(h, EV_BATCH_START, "f"), 2, "a third batch started past max_failures");
	cr_assert_lt(h_find_fake(h, REC_START, "f.s#4"), 0);
	/* the next batch starts only after the previous one ended */
	expect_before(h, h_find(h, EV_BATCH_END, "f", 0), h_find(h, EV_BATCH_START, "f", 1),
		      "batch 1 started before batch 0 ended");
	expect_before(h, h_find(h, EV_BATCH_END, "f", 0), h_find(h, EV_TASK_START, "f.s#2", 0),
		      "an item of batch 1 started before batch 0 ended");
	cr_assert_geq(h->v[h_find(h, EV_BATCH_START, "f", 1)].t_ms - h->v[h_find(h, EV_BATCH_END, "f", 0)].t_ms, 4,
		      "no pause between batches");
	h_free(h);
}

/* the barrier releases once every instance arrived, and nothing after it starts before the release */
Test(once, a_barrier_holds_every_instance_until_the_last_arrives)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: f\n"
					"    for_each: [a, b, c]\n"
					"    steps:\n"
					"      - { id: pre, run: 'w:1 failitem:zz' }\n"
					"      - { id: wait, barrier: here }\n"
					"      - { id: post, run: 'w:1' }\n");
	expect_rc(h, EXIT_OK);
	cr_assert_eq(h_count(h, EV_BARRIER_WAIT, NULL), 3);
	cr_assert_eq(h_count(h, EV_BARRIER_RELEASE, NULL), 1);
	long rel = h_find(h, EV_BARRIER_RELEASE, "f", 0);
	cr_assert_eq(h->v[rel].arrived, 3);
	cr_assert_eq(h->v[rel].expected, 3);
	for (size_t k = 0; k < 3; k++) {
		char *pre = xasprintf("f.pre#%zu", k), *post = xasprintf("f.post#%zu", k);
		expect_before(h, h_find(h, EV_TASK_END, pre, 0), rel, "released before an instance arrived");
		expect_before(h, rel, h_find(h, EV_TASK_START, post, 0), "a step after the barrier started early");
		free(pre);
		free(post);
	}
	h_free(h);
}

/* an instance whose barrier timed out left it: a later arrival waits for itself alone (1/1) */
Test(once, a_barrier_timeout_leaves_the_barrier)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: p\n"
					"    mode: settle\n"
					"    parallel:\n"
					"      - { id: a, steps: [{ id: w, barrier: { name: x, timeout: 5ms } }] }\n"
					"      - { id: b, steps: [{ id: busy, run: 'w:40' }, { id: w, barrier: x }] }\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "p.a.w", ST_TIMEOUT);
	expect_status(h, "p.b.w", ST_SUCCESS);
	long wait = h_find(h, EV_BARRIER_WAIT, "p.b.w", 0);
	cr_assert_geq(wait, 0);
	cr_assert_eq(h->v[wait].arrived, 1, "b's wait counts %llu arrived", (unsigned long long)h->v[wait].arrived);
	cr_assert_eq(h->v[wait].expected, 1);
	long rel = h_find(h, EV_BARRIER_RELEASE, "p", 0);
	cr_assert_geq(rel, 0);
	cr_assert_eq(h->v[rel].arrived, 1);
	h_free(h);
}

Test(once, a_join_ends_after_its_async_and_the_sequence_waits_for_it)
{
	struct harness *h = run_checked("steps:\n"
					"  - { id: bg, async: bg, run: 'w:20' }\n"
					"  - { id: a, run: 'w:1' }\n"
					"  - { id: j, join: bg }\n"
					"  - { id: after, run: 'w:1' }\n");
	expect_rc(h, EXIT_OK);
	expect_status(h, "j", ST_SUCCESS);
	/* bg runs beside a */
	expect_before(h, h_find(h, EV_TASK_START, "a", 0), h_find(h, EV_TASK_END, "bg", 0), "bg held up the sequence");
	expect_before(h, h_find(h, EV_STEP_END, "bg", 0), h_find(h, EV_STEP_END, "j", 0), "j ended before bg");
	expect_before(h, h_find(h, EV_STEP_END, "j", 0), h_find(h, EV_TASK_START, "after", 0),
		      "the step after the join started before it ended");
	h_free(h);
}

Test(once, a_failed_async_fails_its_join_and_an_unjoined_one_the_run)
{
	struct harness *h = run_checked("steps:\n"
					"  - { id: bg, async: bg, run: 'w:5 x:1' }\n"
					"  - { id: j, join: bg }\n"
					"  - { id: after, run: 'w:1' }\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "j", ST_FAILED);
	expect_status(h, "after", ST_SKIPPED);
	h_free(h);
	h = run_checked("steps:\n"
			"  - { id: bg, async: bg, run: 'w:5 x:1' }\n"
			"  - { id: a, run: 'w:1' }\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "a", ST_SUCCESS);
	expect_status(h, "bg", ST_FAILED);
	cr_assert_eq(h_run_end(h)->status, ST_FAILED);
	h_free(h);
}

Test(once, retries_run_each_attempt_once_until_one_succeeds)
{
	struct harness *h = run_checked("steps:\n"
					"  - { id: r, run: 'x:3 okat:3', retry: { attempts: 4, delay: 1ms, jitter: 0 } }\n"
					"  - { id: n, run: 'x:3', retry: { attempts: 3, delay: 1ms, on_exit: [4] } }\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "r", ST_SUCCESS);
	cr_assert_eq(h_count(h, EV_TASK_START, "r"), 3);
	cr_assert_eq(h_count(h, EV_TASK_RETRY, "r"), 2);
	/* on_exit names other codes: no retry */
	expect_status(h, "n", ST_FAILED);
	cr_assert_eq(h_count(h, EV_TASK_START, "n"), 1);
	h_free(h);
}

/* delay × backoff^(n-2), capped by max_delay: 10, then 100 capped to 25, then 25 */
Test(once, retry_delays_grow_by_backoff_up_to_max_delay)
{
	struct harness *h =
		run_checked("steps:\n"
			    "  - id: r\n"
			    "    run: 'x:1'\n"
			    "    retry: { attempts: 4, delay: 10ms, backoff: 10, max_delay: 25ms, jitter: 0 }\n");
	expect_rc(h, EXIT_FAILED);
	static const uint64_t want[] = {10, 25, 25};
	for (size_t k = 0; k < 3; k++) {
		long r = h_find(h, EV_TASK_RETRY, "r", k);
		cr_assert_geq(r, 0);
		cr_assert_eq(h->v[r].delay_ms, want[k], "retry %zu: delay %llu ms, expected %llu", k,
			     (unsigned long long)h->v[r].delay_ms, (unsigned long long)want[k]);
		/* and the next attempt really waited that long */
		long next = h_find(h, EV_TASK_START, "r", k + 1);
		cr_assert_geq(h->v[next].t_ms - h->v[r].t_ms, want[k] - 1, "attempt %zu started after %llu ms", k + 2,
			      (unsigned long long)(h->v[next].t_ms - h->v[r].t_ms));
	}
	h_free(h);
}

/* jitter 0.5 spreads each delay over [delay/2, 3·delay/2], and really varies it */
Test(once, retry_jitter_spreads_the_delay)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: r\n"
					"    run: 'x:1'\n"
					"    retry: { attempts: 5, delay: 8ms, backoff: 1, jitter: 0.5 }\n");
	size_t exact = 0;
	for (size_t k = 0; k < 4; k++) {
		uint64_t d = h->v[h_find(h, EV_TASK_RETRY, "r", k)].delay_ms;
		cr_assert(d >= 4 && d <= 12, "retry %zu: delay %llu ms, not within 8ms ± 50%%", k, (unsigned long long)d);
		exact += d == 8;
	}
	cr_assert_lt(exact, 4, "jitter 0.5 left every delay at exactly 8 ms");
	h_free(h);
}

/* a step timeout: SIGTERM; one that ignores it gets SIGKILL after kill_grace; a timeout is retried */
Test(once, a_step_timeout_terminates_then_kills_after_kill_grace)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: p\n"
					"    mode: settle\n"
					"    parallel:\n"
					"      - { id: t, run: hang, timeout: 10ms, kill_grace: 1s }\n"
					"      - { id: stubborn, run: 'hang noterm', timeout: 10ms, kill_grace: 30ms }\n"
					"      - { id: again, run: 'hang1 w:1', timeout: 10ms, retry: { attempts: 2, delay: 1ms } }\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "p.t", ST_TIMEOUT);
	expect_status(h, "p.stubborn", ST_TIMEOUT);
	long term = h_find_fake(h, REC_SIGNAL, "p.stubborn");
	cr_assert_geq(term, 0);
	cr_assert_eq(h->v[term].sig, SIGTERM);
	long kill = -1;
	for (size_t i = (size_t)term + 1; i < h->n && kill < 0; i++)
		if (h->v[i].kind == REC_SIGNAL && !strcmp(h->v[i].id, "p.stubborn"))
			kill = (long)i;
	cr_assert_geq(kill, 0, "no SIGKILL after kill_grace");
	cr_assert_eq(h->v[kill].sig, SIGKILL);
	cr_assert_geq(h->v[kill].t_ms - h->v[term].t_ms, 29, "SIGKILL came %llu ms after SIGTERM",
		      (unsigned long long)(h->v[kill].t_ms - h->v[term].t_ms));
	/* the one that obeys SIGTERM never needs SIGKILL, however long its grace */
	cr_assert_lt(h->elapsed_ms, 900);
	expect_status(h, "p.again", ST_SUCCESS);
	cr_assert_eq(h_count(h, EV_TASK_START, "p.again"), 2);
	h_free(h);
}

Test(once, when_false_skips_a_step_and_all_below_it)
{
	struct harness *h = run_checked("steps:\n"
					"  - { id: a, run: 'x:1', continue_on_error: true }\n"
					"  - id: g\n"
					"    when: \"steps.a.status == 'success'\"\n"
					"    steps: [{ id: x, run: 'w:1' }, { id: f, for_each: [1, 2], run: 'w:1' }]\n"
					"  - { id: b, when: \"steps.a.status == 'failed'\", run: 'w:1' }\n");
	expect_rc(h, EXIT_OK);
	expect_status(h, "g", ST_SKIPPED);
	expect_status(h, "g.x", ST_SKIPPED);
	expect_status(h, "g.f", ST_SKIPPED);
	cr_assert_lt(h_find(h, EV_STEP_START, "g", 0), 0, "a skipped step started");
	expect_status(h, "b", ST_SUCCESS);
	expect_started(h, "a,b");
	h_free(h);
}
