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
	cr_assert_geq(h->v[h_find(h, EV_BATCH_START, "f", 1)].t_ms - h->v[h_find(h, EV_BATCH_END, "f", 0)].t_ms, 5,
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
		cr_assert_geq(h->v[next].t_ms - h->v[r].t_ms, want[k], "attempt %zu started after %llu ms", k + 2,
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
	cr_assert_geq(h->v[kill].t_ms - h->v[term].t_ms, 30, "SIGKILL came %llu ms after SIGTERM",
		      (unsigned long long)(h->v[kill].t_ms - h->v[term].t_ms));
	/* the one that obeys SIGTERM never needs SIGKILL, however long its grace */
	cr_assert_lt(h->elapsed_ms, 900);
	expect_status(h, "p.again", ST_SUCCESS);
	cr_assert_eq(h_count(h, EV_TASK_START, "p.again"), 2);
	h_free(h);
}

/* tasks the executor cannot admit (no descriptor to spare) wait, and start as descriptors come back */
Test(once, tasks_held_back_for_descriptors_start_as_descriptors_come_back)
{
	struct harness *h = h_new("steps:\n"
				  "  - id: p\n"
				  "    parallel:\n"
				  "      - { id: a, run: 'w:5' }\n"
				  "      - { id: b, run: 'w:1' }\n"
				  "      - { id: c, run: 'w:1' }\n");
	h_limit_fds(h, EXEC_FDS_LOCAL);
	h_run(h);
	h_check_invariants(h);
	expect_rc(h, EXIT_OK);
	expect_started(h, "p.a,p.b,p.c");
	expect_before(h, h_find(h, EV_TASK_END, "p.a", 0), h_find(h, EV_TASK_START, "p.b", 0),
		      "b started while a held the only descriptors");
	expect_before(h, h_find(h, EV_TASK_END, "p.b", 0), h_find(h, EV_TASK_START, "p.c", 0),
		      "c started while b held the only descriptors");
	cr_assert_eq(h_count(h, EV_WARNING, NULL), 1, "the descriptor limit was not said once");
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

/* ---- counts: tasks only, tolerated failures apart ---- */

/* The one task.end (last attempt) or step.end of id: its tolerated flag. */
static bool tolerated_of(const struct harness *h, enum event_type type, const char *id)
{
	long i = -1;
	for (size_t n = 0; h_find(h, type, id, n) >= 0; n++)
		i = h_find(h, type, id, n);
	cr_assert_geq(i, 0, "no %s of %s", event_type_name(type), id);
	return h->v[i].tolerated;
}

/* run.end's counts as "success failed timeout cancelled skipped tolerated". */
static void expect_counts(const struct harness *h, const char *want)
{
	const struct rec *e = h_run_end(h);
	char got[128];
	snprintf(got, sizeof got, "%llu %llu %llu %llu %llu %llu", (unsigned long long)e->counts[ST_SUCCESS],
		 (unsigned long long)e->counts[ST_FAILED], (unsigned long long)e->counts[ST_TIMEOUT],
		 (unsigned long long)e->counts[ST_CANCELLED], (unsigned long long)e->counts[ST_SKIPPED],
		 (unsigned long long)e->n_tolerated);
	if (strcmp(got, want)) {
		char *d = h_dump(h);
		cr_assert_fail("counts [%s], expected [%s]\n%s", got, want, d);
	}
}

Test(counts, a_fan_out_counts_its_tasks_not_its_items_groups_or_barriers)
{
	struct harness *h = run_checked("steps:\n"
					"  - { id: f, for_each: [a, b, c, d, e], run: 'w:1' }\n"
					"  - id: g\n"
					"    for_each: [1, 2]\n"
					"    steps: [{ id: s, run: 'w:1' }, { id: m, barrier: b }, { id: t, run: 'w:1' }]\n");
	expect_rc(h, EXIT_OK);
	expect_counts(h, "9 0 0 0 0 0");
	h_free(h);
}

Test(counts, continue_on_error_tolerates_the_failure_of_its_step_and_of_what_it_holds)
{
	struct harness *h = run_checked("steps:\n"
					"  - { id: a, run: 'x:1', continue_on_error: true }\n"
					"  - id: g\n"
					"    continue_on_error: true\n"
					"    steps: [{ id: x, run: 'x:2' }, { id: y, run: 'w:1' }]\n"
					"  - id: p\n"
					"    parallel: [{ id: q, run: 'x:1' }, { id: r, run: 'w:1' }]\n");
	expect_rc(h, EXIT_FAILED);
	cr_assert(tolerated_of(h, EV_TASK_END, "a"));
	cr_assert(tolerated_of(h, EV_STEP_END, "a"));
	cr_assert(tolerated_of(h, EV_TASK_END, "g.x"), "a failure inside a step that continues on error");
	cr_assert(tolerated_of(h, EV_STEP_END, "g"));
	cr_assert_not(tolerated_of(h, EV_TASK_END, "p.q"), "a plain failure is not tolerated");
	cr_assert_not(tolerated_of(h, EV_STEP_END, "p"));
	cr_assert_not(tolerated_of(h, EV_TASK_END, "p.r"));
	/* p.r: cancelled or succeeded, by the race with q's failure */
	const struct rec *e = h_run_end(h);
	cr_assert_eq(e->counts[ST_FAILED], 1);
	cr_assert_eq(e->n_tolerated, 2);
	cr_assert_eq(e->counts[ST_SKIPPED], 1, "g.y never ran");
	h_free(h);
}

Test(counts, max_failures_tolerates_failures_within_it_and_not_past_it)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: f\n"
					"    for_each: [a, b, c, d, e]\n"
					"    batch: { size: 1, max_failures: 1 }\n"
					"    run: 'w:1 failitem:b failitem:d'\n");
	expect_rc(h, EXIT_FAILED);
	cr_assert(tolerated_of(h, EV_TASK_END, "f#1"), "the first failure is within max_failures");
	cr_assert_not(tolerated_of(h, EV_TASK_END, "f#3"), "the second is past it");
	expect_counts(h, "2 1 0 1 0 1");
	h_free(h);
}

Test(counts, a_failure_in_an_any_fan_out_is_not_tolerated_and_a_retry_only_on_its_last_attempt)
{
	struct harness *h = run_checked("steps:\n"
					"  - { id: f, mode: any, for_each: [a, b], run: 'w:1 failitem:a' }\n"
					"  - { id: r, run: 'x:1', retry: { attempts: 2, delay: 1ms }, continue_on_error: true }\n");
	expect_rc(h, EXIT_OK);
	cr_assert_not(tolerated_of(h, EV_TASK_END, "f#0"));
	cr_assert_not(h->v[h_find(h, EV_TASK_END, "r", 0)].tolerated, "an attempt that is retried");
	cr_assert(h->v[h_find(h, EV_TASK_END, "r", 1)].tolerated, "the last attempt");
	expect_counts(h, "1 1 0 0 0 1");
	h_free(h);
}

Test(once, a_when_that_fails_fails_the_group_and_skips_everything_below_it)
{
	/* len(1) is an error at run time: g fails, and each of its steps ends once, skipped */
	struct harness *h = run_checked("steps:\n"
					"  - id: g\n"
					"    when: \"len(1) > 0\"\n"
					"    steps: [{ id: x, run: 'w:1' }, { id: f, for_each: [1, 2], run: 'w:1' }]\n"
					"  - { id: b, run: 'w:1' }\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "g", ST_FAILED);
	expect_status(h, "g.x", ST_SKIPPED);
	expect_status(h, "g.f", ST_SKIPPED);
	expect_status(h, "b", ST_SKIPPED);
	expect_started(h, "");
	h_free(h);
}

/* ---- 2. handlers end before their step ---- */

/* Asserts every step.end whose id starts with prefix comes before step.end of id. */
static void expect_handlers_before(const struct harness *h, const char *prefix, const char *id)
{
	long end = h_find(h, EV_STEP_END, id, 0);
	size_t seen = 0;
	for (size_t i = 0; i < h->n; i++) {
		const struct rec *r = &h->v[i];
		if (r->kind != REC_EVENT || r->type != EV_STEP_END || strncmp(r->id, prefix, strlen(prefix)))
			continue;
		seen++;
		expect_before(h, (long)i, end, "a handler's step ended after the step it belongs to");
	}
	cr_assert_gt(seen, 0, "no step of %s ran", prefix);
}

Test(handlers, on_success_then_finally_end_before_the_step_and_before_what_follows)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: a\n"
					"    steps: [{ id: x, run: 'w:1' }]\n"
					"    on_success: [{ id: s1, run: 'w:3' }, { id: s2, run: 'w:1' }]\n"
					"    on_failure: [{ id: f1, run: 'w:1' }]\n"
					"    finally: [{ id: z, run: 'w:3' }]\n"
					"  - { id: b, run: 'w:1' }\n");
	expect_rc(h, EXIT_OK);
	expect_status(h, "a", ST_SUCCESS);
	expect_handlers_before(h, "a.on_success", "a");
	expect_handlers_before(h, "a.finally", "a");
	cr_assert_eq(h_count(h, EV_STEP_START, "a.on_failure"), 0, "on_failure ran after a success");
	/* on_success before finally, and b only once a is over */
	expect_before(h, h_find(h, EV_STEP_END, "a.on_success", 0), h_find(h, EV_STEP_START, "a.finally", 0),
		      "finally began before on_success ended");
	expect_before(h, h_find(h, EV_STEP_END, "a", 0), h_find(h, EV_TASK_START, "b", 0),
		      "the next step started before a's handlers ended");
	expect_started(h, "a.x,a.on_success.s1,a.on_success.s2,a.finally.z,b");
	h_free(h);
}

Test(handlers, on_failure_runs_after_the_last_retry_and_the_step_stays_failed)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: a\n"
					"    run: 'x:4'\n"
					"    retry: { attempts: 2, delay: 1ms }\n"
					"    on_success: [{ id: s, run: 'w:1' }]\n"
					"    on_failure: [{ id: f, run: 'w:2' }]\n"
					"    finally: [{ id: z, run: 'w:1' }]\n"
					"  - { id: b, run: 'w:1' }\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "a", ST_FAILED);
	expect_status(h, "a.on_failure.f", ST_SUCCESS);
	expect_status(h, "b", ST_SKIPPED);
	expect_handlers_before(h, "a.on_failure", "a");
	expect_handlers_before(h, "a.finally", "a");
	expect_before(h, h_find(h, EV_TASK_END, "a", 1), h_find(h, EV_STEP_START, "a.on_failure", 0),
		      "on_failure began before the last attempt ended");
	expect_started(h, "a,a,a.on_failure.f,a.finally.z");
	h_free(h);
}

/* a handler never turns a failure into success, but its own failure fails the step */
Test(handlers, a_failing_finally_fails_a_succeeded_step_and_stops_the_sequence)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: a\n"
					"    run: 'w:1'\n"
					"    finally: [{ id: z, run: 'w:2 x:1' }, { id: z2, run: 'w:1' }]\n"
					"  - { id: b, run: 'w:1' }\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "a.finally.z", ST_FAILED);
	expect_status(h, "a.finally.z2", ST_SKIPPED);
	expect_status(h, "a", ST_FAILED);
	expect_status(h, "b", ST_SKIPPED);
	expect_handlers_before(h, "a.finally", "a");
	const struct rec *e = &h->v[h_find(h, EV_STEP_END, "a", 0)];
	cr_assert(e->reason && strstr(e->reason, "a.finally"), "a's reason (%s) does not name its finally",
		  e->reason ? e->reason : "none");
	h_free(h);
}

Test(handlers, a_failing_on_success_fails_the_step_and_on_failure_does_not_run)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: a\n"
					"    run: 'w:1'\n"
					"    on_success: [{ id: s, run: 'x:1' }]\n"
					"    on_failure: [{ id: f, run: 'w:1' }]\n"
					"    finally: [{ id: z, run: 'w:1' }]\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "a", ST_FAILED);
	expect_status(h, "a.finally.z", ST_SUCCESS);
	cr_assert_eq(h_count(h, EV_STEP_START, "a.on_failure"), 0);
	expect_handlers_before(h, "a.on_success", "a");
	expect_handlers_before(h, "a.finally", "a");
	h_free(h);
}

/* a fan-out's handlers run once, for the fan-out, after every instance ended */
Test(handlers, a_fan_outs_handlers_run_once_after_its_instances)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: f\n"
					"    for_each: [a, b, c]\n"
					"    run: 'w:2 failitem:b'\n"
					"    on_failure: [{ id: f1, run: 'w:1' }]\n"
					"    finally: [{ id: z, run: 'w:1' }]\n"
					"  - id: p\n"
					"    parallel: [{ id: x, run: 'w:3' }, { id: y, run: 'w:1' }]\n"
					"    finally: [{ id: z, run: 'w:1' }]\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "f", ST_FAILED);
	cr_assert_eq(h_count(h, EV_TASK_START, "f.on_failure.f1"), 1);
	expect_handlers_before(h, "f.on_failure", "f");
	expect_handlers_before(h, "f.finally", "f");
	for (size_t k = 0; k < 3; k++) {
		char *inst = xasprintf("f#%zu", k);
		expect_before(h, h_find(h, EV_STEP_END, inst, 0), h_find(h, EV_STEP_START, "f.on_failure", 0),
			      "on_failure began before an instance ended");
		free(inst);
	}
	expect_status(h, "p", ST_SKIPPED);
	h_free(h);
	h = run_checked("steps:\n"
			"  - id: p\n"
			"    parallel: [{ id: x, run: 'w:3' }, { id: y, run: 'w:1' }]\n"
			"    on_success: [{ id: s, run: 'w:1' }]\n"
			"    finally: [{ id: z, run: 'w:1 x:1' }]\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "p", ST_FAILED);
	expect_handlers_before(h, "p.on_success", "p");
	expect_handlers_before(h, "p.finally", "p");
	expect_before(h, h_find(h, EV_STEP_END, "p.x", 0), h_find(h, EV_STEP_START, "p.on_success", 0),
		      "on_success began before a branch ended");
	h_free(h);
}

/* the plan's own handlers: before run.end, and a failing one fails the run */
Test(handlers, plan_handlers_end_before_run_end_and_a_failing_finally_fails_the_run)
{
	struct harness *h = run_checked("steps:\n"
					"  - { id: a, run: 'w:1' }\n"
					"on_success: [{ id: s, run: 'w:2' }]\n"
					"on_failure: [{ id: f, run: 'w:1' }]\n"
					"finally: [{ id: z, run: 'w:2 x:1' }, { id: z2, run: 'w:1' }]\n");
	expect_rc(h, EXIT_FAILED);
	const struct rec *end = h_run_end(h);
	cr_assert_eq(end->status, ST_FAILED);
	cr_assert_eq(end->run_exit, EXIT_FAILED);
	expect_status(h, "on_success", ST_SUCCESS);
	expect_status(h, "finally", ST_FAILED);
	expect_status(h, "finally.z2", ST_SKIPPED);
	cr_assert_eq(h_count(h, EV_STEP_START, "on_failure"), 0);
	expect_before(h, h_find(h, EV_STEP_END, "on_success", 0), h_find(h, EV_STEP_START, "finally", 0),
		      "the plan's finally began before its on_success ended");
	h_free(h);
	h = run_checked("steps:\n"
			"  - { id: a, run: 'x:1' }\n"
			"on_success: [{ id: s, run: 'w:1' }]\n"
			"on_failure: [{ id: f, run: 'w:1' }]\n");
	expect_rc(h, EXIT_FAILED);
	expect_status(h, "on_failure.f", ST_SUCCESS);
	cr_assert_eq(h_count(h, EV_STEP_START, "on_success"), 0);
	h_free(h);
}

/*
 * Issue 9, bug 1: a join that has a handler is finished twice (joins_check
 * keeps it listed after join_try started its finally), so it ends before
 * its finally, as a success, and the next step starts beside the handler.
 */
Test(handlers, a_join_ends_after_its_finally_and_a_failing_finally_fails_it)
{
	struct harness *h = run_checked("steps:\n"
					"  - { id: bg, async: bg, run: 'w:20' }\n"
					"  - id: j\n"
					"    join: bg\n"
					"    finally: [{ id: fin, run: 'w:20 x:1' }]\n"
					"  - { id: next, run: 'w:1' }\n");
	expect_handlers_before(h, "j.finally", "j");
	expect_status(h, "j", ST_FAILED);
	expect_status(h, "next", ST_SKIPPED);
	expect_rc(h, EXIT_FAILED);
	h_free(h);
}

/*
 * The same double finish by another road: a join cancelled while it waits
 * runs its finally, and the async's end (it is cancelled too) must not
 * finish the join a second time while that finally runs.
 */
Test(handlers, a_join_cancelled_while_waiting_ends_after_its_finally)
{
	struct harness *h = h_new("steps:\n"
				  "  - { id: bg, async: bg, run: hang }\n"
				  "  - id: j\n"
				  "    join: bg\n"
				  "    finally: [{ id: fin, run: 'w:20' }]\n"
				  "  - { id: next, run: 'w:1' }\n");
	h_signal_at(h, EV_STEP_START, "j", SIGINT);
	h_run(h);
	h_check_invariants(h);
	expect_handlers_before(h, "j.finally", "j");
	expect_status(h, "j", ST_CANCELLED);
	expect_started(h, "bg,j.finally.fin");
	expect_rc(h, EXIT_SIGINT);
	h_free(h);
}

/* ---- 3. cancellation of every kind of wait ---- */

/*
 * A run cancelled while one of its steps waits: by the plan's timeout, or by
 * a signal raised from the sink at a chosen event. The fake's commands hang
 * and every wait is a minute long, so a run that ends within the bound ended
 * because of the cancel.
 */
struct cancel_case {
	const char *top;     /* top-level keys before `steps:` (concurrency, semaphores) */
	const char *steps;   /* the plan's steps */
	const char *waiting; /* the step that waits when the cancel comes */
	enum event_type at;  /* the signal goes at the first such event... */
	const char *at_id;   /* ...of this id */
	const char *started; /* every task the fake starts, in order */
	const char *running; /* the task that runs meanwhile and must get SIGTERM, or NULL */
	long fd_budget;      /* > 0: the executor admits one process at a time */
};

#define CANCEL_BOUND_MS 1000

/* by: 0 the plan's timeout, else the signal to raise */
static void cancel_run(const struct cancel_case *c, int by)
{
	char *y = xasprintf("%s%ssteps:\n%s", c->top ? c->top : "", by ? "" : "timeout: 40ms\n", c->steps);
	struct harness *h = h_new(y);
	if (by)
		h_signal_at(h, c->at, c->at_id, by);
	if (c->fd_budget)
		h_limit_fds(h, c->fd_budget);
	h_run(h);
	h_check_invariants(h);
	int rc = by == SIGINT ? EXIT_SIGINT : by == SIGTERM ? EXIT_SIGTERM : EXIT_TIMEOUT;
	expect_rc(h, rc);
	const struct rec *end = h_run_end(h);
	cr_assert_eq(end->status, by ? ST_CANCELLED : ST_TIMEOUT, "run.end says %s", status_name(end->status));
	cr_assert_eq(end->run_exit, rc);
	expect_status(h, c->waiting, ST_CANCELLED);
	expect_started(h, c->started);
	if (c->running) {
		long sig = h_find_fake(h, REC_SIGNAL, c->running);
		cr_assert_geq(sig, 0, "%s was never signalled", c->running);
		cr_assert_eq(h->v[sig].sig, SIGTERM);
		expect_status(h, c->running, ST_CANCELLED);
	}
	if (h->elapsed_ms >= CANCEL_BOUND_MS) {
		char *d = h_dump(h);
		cr_assert_fail("the cancelled run took %llu ms\n%s", (unsigned long long)h->elapsed_ms, d);
	}
	h_free(h);
	free(y);
}

static void cancel_both(const struct cancel_case *c)
{
	cancel_run(c, 0);
	cancel_run(c, SIGINT);
}

Test(cancel, a_task_queued_behind_the_concurrency_limit)
{
	struct cancel_case c = {.top = "concurrency: 1\n",
				.steps = "  - id: p\n"
					 "    parallel:\n"
					 "      - { id: busy, run: hang }\n"
					 "      - { id: queued, run: 'w:1' }\n",
				.waiting = "p.queued",
				.at = EV_TASK_START,
				.at_id = "p.busy",
				.started = "p.busy",
				.running = "p.busy"};
	cancel_both(&c);
}

Test(cancel, a_task_parked_on_a_semaphore)
{
	struct cancel_case c = {.top = "semaphores: { s: 1 }\n",
				.steps = "  - id: p\n"
					 "    parallel:\n"
					 "      - { id: busy, run: hang, semaphore: s }\n"
					 "      - { id: parked, run: 'w:1', semaphore: s }\n",
				.waiting = "p.parked",
				.at = EV_TASK_START,
				.at_id = "p.busy",
				.started = "p.busy",
				.running = "p.busy"};
	cancel_both(&c);
	cancel_run(&c, SIGTERM);
}

Test(cancel, a_task_waiting_for_file_descriptors)
{
	struct cancel_case c = {.steps = "  - id: p\n"
					 "    parallel:\n"
					 "      - { id: busy, run: hang }\n"
					 "      - { id: waiting, run: 'w:1' }\n",
				.waiting = "p.waiting",
				.at = EV_TASK_START,
				.at_id = "p.busy",
				.started = "p.busy",
				.running = "p.busy",
				.fd_budget = EXEC_FDS_LOCAL};
	cancel_both(&c);
}

Test(cancel, a_sleep_step)
{
	struct cancel_case c = {.steps = "  - { id: nap, sleep: 60s }\n"
					 "  - { id: after, run: 'w:1' }\n",
				.waiting = "nap",
				.at = EV_STEP_START,
				.at_id = "nap",
				.started = ""};
	cancel_both(&c);
}

Test(cancel, a_step_waiting_at_a_barrier)
{
	struct cancel_case c = {.steps = "  - id: p\n"
					 "    parallel:\n"
					 "      - { id: a, steps: [{ id: w, barrier: x }, { id: post, run: 'w:1' }] }\n"
					 "      - { id: b, steps: [{ id: busy, run: hang }, { id: w, barrier: x }] }\n",
				.waiting = "p.a.w",
				.at = EV_BARRIER_WAIT,
				.at_id = "p.a.w",
				.started = "p.b.busy",
				.running = "p.b.busy"};
	cancel_both(&c);
}

Test(cancel, a_step_in_its_retry_delay)
{
	struct cancel_case c = {.steps = "  - { id: r, run: 'x:1', retry: { attempts: 3, delay: 60s } }\n"
					 "  - { id: after, run: 'w:1' }\n",
				.waiting = "r",
				.at = EV_TASK_RETRY,
				.at_id = "r",
				.started = "r"};
	cancel_both(&c);
}

Test(cancel, a_join_waiting_for_its_async)
{
	struct cancel_case c = {.steps = "  - { id: bg, async: bg, run: hang }\n"
					 "  - { id: j, join: bg }\n"
					 "  - { id: after, run: 'w:1' }\n",
				.waiting = "j",
				.at = EV_STEP_START,
				.at_id = "j",
				.started = "bg",
				.running = "bg"};
	cancel_both(&c);
}

Test(cancel, a_for_each_in_its_batch_pause)
{
	struct cancel_case c = {.steps = "  - id: f\n"
					 "    for_each: [a, b, c]\n"
					 "    batch: { size: 1, pause: 60s }\n"
					 "    run: 'w:1'\n",
				.waiting = "f",
				.at = EV_BATCH_END,
				.at_id = "f",
				.started = "f#0"};
	cancel_both(&c);
}

/* a cancel ends the running step, and its finally still runs; the rest of the sequence does not */
Test(cancel, finally_still_runs_after_an_interrupt)
{
	struct harness *h = h_new("steps:\n"
				  "  - id: a\n"
				  "    run: hang\n"
				  "    on_failure: [{ id: f, run: 'w:1' }]\n"
				  "    finally: [{ id: z, run: 'w:1' }]\n"
				  "  - { id: b, run: 'w:1' }\n");
	h_signal_at(h, EV_TASK_START, "a", SIGINT);
	h_run(h);
	h_check_invariants(h);
	expect_rc(h, EXIT_SIGINT);
	expect_status(h, "a", ST_CANCELLED);
	expect_status(h, "a.finally.z", ST_SUCCESS);
	expect_status(h, "b", ST_CANCELLED);
	expect_started(h, "a,a.finally.z");
	h_free(h);
}

/*
 * Issue 9, bug 3: a second interrupt stops the handlers at once, a sleep in
 * a finally included, and nothing after it starts.
 */
Test(cancel, a_second_interrupt_stops_a_sleep_in_a_finally)
{
	struct harness *h = h_new("steps:\n"
				  "  - id: a\n"
				  "    run: hang\n"
				  "    finally: [{ id: nap, sleep: 3s }, { id: cleanup, run: 'w:1' }]\n");
	h_signal_at(h, EV_TASK_START, "a", SIGINT);
	h_signal_at(h, EV_STEP_START, "a.finally.nap", SIGINT);
	h_run(h);
	h_check_invariants(h);
	expect_rc(h, EXIT_SIGINT);
	expect_started(h, "a");
	cr_assert_lt(h->elapsed_ms, CANCEL_BOUND_MS, "the second interrupt took %llu ms to end the run",
		     (unsigned long long)h->elapsed_ms);
	h_free(h);
}

/* a second interrupt SIGKILLs a task that ignores SIGTERM, without waiting for its kill_grace */
Test(cancel, a_second_interrupt_kills_what_ignores_sigterm)
{
	struct harness *h = h_new("steps:\n"
				  "  - { id: a, run: 'hang noterm', kill_grace: 60s }\n"
				  "  - { id: b, run: 'w:1' }\n");
	h_signal_at(h, EV_TASK_START, "a", SIGINT);
	h_signal_when_signalled(h, "a", SIGINT);
	h_run(h);
	h_check_invariants(h);
	expect_rc(h, EXIT_SIGINT);
	expect_status(h, "a", ST_CANCELLED);
	expect_started(h, "a");
	long term = h_find_fake(h, REC_SIGNAL, "a");
	cr_assert_eq(h->v[term].sig, SIGTERM);
	cr_assert_eq(h->v[h_find_fake(h, REC_DONE, "a")].sig, SIGKILL);
	cr_assert_lt(h->elapsed_ms, CANCEL_BOUND_MS);
	h_free(h);
}

/*
 * Issue 9, bug 2: a run that timed out while an async step (never joined)
 * still ran is a failure: the plan's on_failure runs, never its on_success;
 * one interrupted is cancelled: neither runs (plan-format.md section 5). The
 * finally runs either way.
 */
Test(cancel, a_cancelled_run_with_an_unjoined_async_never_runs_on_success)
{
	static const char plan[] = "steps:\n"
				   "  - { id: bg, async: bg, run: hang }\n"
				   "  - { id: t, run: 'w:1' }\n"
				   "on_success: [{ id: yes, run: 'w:1' }]\n"
				   "on_failure: [{ id: no, run: 'w:1' }]\n"
				   "finally: [{ id: fin, run: 'w:1' }]\n";
	for (int by = 0; by < 2; by++) {
		char *y = xasprintf("%s%s", by ? "" : "timeout: 40ms\n", plan);
		struct harness *h = h_new(y);
		if (by)
			h_signal_at(h, EV_STEP_END, "t", SIGINT);
		h_run(h);
		h_check_invariants(h);
		expect_rc(h, by ? EXIT_SIGINT : EXIT_TIMEOUT);
		expect_status(h, "bg", ST_CANCELLED);
		cr_assert_eq(h_count(h, EV_STEP_START, "on_success"), 0, "on_success ran after a %s",
			     by ? "SIGINT" : "plan timeout");
		cr_assert_eq(h_count(h, EV_STEP_START, "on_failure"), by ? 0 : 1,
			     "on_failure %s after a %s", by ? "ran" : "did not run", by ? "SIGINT" : "plan timeout");
		expect_status(h, "finally.fin", ST_SUCCESS);
		h_free(h);
		free(y);
	}
}

/* ---- 1 again: random small plans ---- */

/*
 * A generator of small valid plans from the pieces above: sequences,
 * parallel (every mode), stages, for_each (batches, pauses, max_failures),
 * barriers (one name per fan-out, at most once per instance: no deadlock by
 * construction), async steps and joins, handlers, retries, timeouts,
 * semaphores, `when` skips, continue_on_error; some runs get a plan timeout
 * or one or two SIGINTs at a random event. Commands take 0-3 ms, so a plan
 * runs in a few ms. Each plan must keep h_check_invariants.
 */
struct gen {
	uint32_t s;
	struct buf y;
	int next_id;
	int n_async;
	int asyncs[8];
	int budget; /* steps left to make: keeps plans small */
};

static uint32_t gen_rand(struct gen *G)
{
	/* xorshift32: the same plans on every machine */
	G->s ^= G->s << 13;
	G->s ^= G->s >> 17;
	G->s ^= G->s << 5;
	return G->s;
}

static bool chance(struct gen *G, unsigned pct)
{
	return gen_rand(G) % 100 < pct;
}

static unsigned pick(struct gen *G, unsigned n)
{
	return gen_rand(G) % n;
}

/* The context a step is made in. */
struct gctx {
	int depth;
	bool in_handler;
	bool in_foreach; /* an item's id would carry #N: failitem: can name an item */
};

static void gen_step(struct gen *G, struct gctx c);

/* A command for the fake: a short wait, sometimes a failure, perhaps only on the first attempt. */
static void gen_command(struct gen *G, struct gctx c, bool may_hang)
{
	static const unsigned waits[] = {0, 0, 1, 2, 3};
	if (may_hang && chance(G, 30)) {
		buf_adds(&G->y, chance(G, 30) ? "'hang noterm'" : chance(G, 50) ? "hang" : "'hang1 w:1'");
		return;
	}
	buf_printf(&G->y, "'w:%u", waits[pick(G, 5)]);
	if (chance(G, 10))
		buf_adds(&G->y, " x:1");
	if (chance(G, 10))
		buf_adds(&G->y, " okat:2");
	if (c.in_foreach && chance(G, 15))
		buf_printf(&G->y, " failitem:i%u", pick(G, 3));
	buf_adds(&G->y, "'");
}

/* A run step's modifiers: retry, a timeout (with a hang to cut short), a semaphore. */
static void gen_run(struct gen *G, struct gctx c)
{
	bool timeout = chance(G, 15);
	buf_adds(&G->y, "run: ");
	gen_command(G, c, timeout);
	if (timeout)
		buf_printf(&G->y, ", timeout: %ums, kill_grace: %ums", 3 + pick(G, 6), 1 + pick(G, 4));
	if (chance(G, 15))
		buf_printf(&G->y, ", retry: { attempts: %u, delay: %ums, jitter: 0 }", 2 + pick(G, 2), pick(G, 3));
	if (chance(G, 10))
		buf_adds(&G->y, ", semaphore: s");
}

/* A handler list: one or two short run steps. */
static void gen_handler(struct gen *G, const char *key)
{
	buf_printf(&G->y, ", %s: [", key);
	unsigned n = 1 + pick(G, 2);
	for (unsigned i = 0; i < n; i++) {
		buf_printf(&G->y, "%s{ id: n%d, run: ", i ? ", " : "", G->next_id++);
		gen_command(G, (struct gctx){0}, false);
		buf_adds(&G->y, " }");
	}
	buf_adds(&G->y, "]");
}

/* Modifiers any step may have: when, continue_on_error, handlers. */
static void gen_mods(struct gen *G, struct gctx c)
{
	if (chance(G, 8))
		buf_adds(&G->y, chance(G, 70) ? ", when: 'false'" : ", when: 'true'");
	if (chance(G, 8))
		buf_adds(&G->y, ", continue_on_error: true");
	if (c.in_handler)
		return;
	static const char *const keys[] = {"on_success", "on_failure", "finally"};
	for (size_t k = 0; k < 3; k++)
		if (chance(G, 10))
			gen_handler(G, keys[k]);
}

/* A sequence's steps, with one `barrier: NAME` among them when barrier is set (most of the time). */
static void gen_list(struct gen *G, struct gctx c, unsigned n, const char *barrier)
{
	unsigned at = barrier && chance(G, 80) ? pick(G, n + 1) : n + 1;
	buf_adds(&G->y, "[");
	for (unsigned i = 0; i <= n; i++) {
		if (i == at) {
			buf_printf(&G->y, "%s{ id: n%d, barrier: ", i ? ", " : "", G->next_id++);
			if (chance(G, 20))
				buf_printf(&G->y, "{ name: %s, timeout: %ums } }", barrier, 2 + pick(G, 5));
			else
				buf_printf(&G->y, "%s }", barrier);
		}
		if (i < n) {
			buf_adds(&G->y, i || at == 0 ? ", " : "");
			gen_step(G, c);
		}
	}
	buf_adds(&G->y, "]");
}

static const char *const fan_modes[] = {"all", "settle", "any", "race"};

/* parallel: two or three branches; with a barrier, each a sequence that may meet at it. */
static void gen_parallel(struct gen *G, struct gctx c)
{
	char barrier[16] = "";
	if (chance(G, 35))
		snprintf(barrier, sizeof barrier, "b%d", G->next_id++);
	buf_adds(&G->y, "parallel: [");
	unsigned n = 2 + pick(G, 2);
	for (unsigned i = 0; i < n; i++) {
		buf_adds(&G->y, i ? ", " : "");
		if (*barrier) {
			buf_printf(&G->y, "{ id: n%d, steps: ", G->next_id++);
			gen_list(G, c, 1 + pick(G, 2), barrier);
			buf_adds(&G->y, " }");
		} else {
			gen_step(G, c);
		}
	}
	buf_adds(&G->y, "]");
	if (chance(G, 40))
		buf_printf(&G->y, ", mode: %s", fan_modes[pick(G, 4)]);
}

/* for_each over one to four items: a run or a sequence (perhaps with a barrier), perhaps in batches. */
static void gen_foreach(struct gen *G, struct gctx c)
{
	unsigned n = 1 + pick(G, 4);
	buf_adds(&G->y, "for_each: [");
	for (unsigned i = 0; i < n; i++)
		buf_printf(&G->y, "%si%u", i ? ", " : "", i);
	buf_adds(&G->y, "], ");
	c.in_foreach = true;
	if (chance(G, 45)) {
		gen_run(G, c);
	} else {
		char barrier[16] = "";
		if (chance(G, 35))
			snprintf(barrier, sizeof barrier, "b%d", G->next_id++);
		buf_adds(&G->y, "steps: ");
		gen_list(G, c, 1 + pick(G, 2), *barrier ? barrier : NULL);
	}
	if (chance(G, 40))
		buf_printf(&G->y, ", batch: { size: %u, pause: %ums, max_failures: %u }", 1 + pick(G, 2), pick(G, 3),
			   pick(G, 2));
	if (chance(G, 25))
		buf_printf(&G->y, ", mode: %s", fan_modes[pick(G, 4)]);
}

/* One step (a map in flow style) of a random kind; deeper down, mostly runs. */
static void gen_step(struct gen *G, struct gctx c)
{
	G->budget--;
	buf_printf(&G->y, "{ id: n%d, ", G->next_id++);
	struct gctx d = c;
	d.depth++;
	unsigned k = c.depth >= 3 || G->budget <= 0 ? pick(G, 10) : pick(G, 100);
	if (k < 8) {
		gen_run(G, c);
	} else if (k < 12) {
		buf_printf(&G->y, "sleep: %ums", pick(G, 3));
	} else if (k < 35) {
		buf_adds(&G->y, "steps: ");
		gen_list(G, d, 1 + pick(G, 3), NULL);
	} else if (k < 60) {
		gen_parallel(G, d);
	} else if (k < 70) {
		buf_adds(&G->y, "stages: [");
		unsigned n = 1 + pick(G, 2);
		for (unsigned i = 0; i < n; i++) {
			buf_printf(&G->y, "%s{ id: n%d, steps: ", i ? ", " : "", G->next_id++);
			gen_list(G, d, 1 + pick(G, 2), NULL);
			buf_adds(&G->y, " }");
		}
		buf_adds(&G->y, "]");
	} else {
		gen_foreach(G, d);
	}
	gen_mods(G, c);
	buf_adds(&G->y, " }");
}

/* The root sequence: steps, async steps and joins of those already started. */
static void gen_root(struct gen *G)
{
	unsigned n = 1 + pick(G, 4);
	buf_adds(&G->y, "steps:\n");
	for (unsigned i = 0; i < n; i++) {
		if (G->n_async < 8 && chance(G, 25)) {
			int a = G->next_id++;
			G->asyncs[G->n_async++] = a;
			buf_printf(&G->y, "  - { id: n%d, async: a%d, ", a, a);
			if (chance(G, 50)) {
				gen_run(G, (struct gctx){.depth = 1});
			} else {
				buf_adds(&G->y, "steps: ");
				gen_list(G, (struct gctx){.depth = 2}, 1 + pick(G, 2), NULL);
			}
			buf_adds(&G->y, " }\n");
		}
		if (G->n_async && chance(G, 30)) {
			buf_printf(&G->y, "  - { id: n%d, join: a%d", G->next_id++, G->asyncs[pick(G, (unsigned)G->n_async)]);
			gen_mods(G, (struct gctx){.depth = 1});
			buf_adds(&G->y, " }\n");
		}
		buf_adds(&G->y, "  - ");
		gen_step(G, (struct gctx){.depth = 1});
		buf_adds(&G->y, "\n");
	}
}

/* Makes plan number seed (caller frees); *sigint_at and *sigint2_at: seqs for SIGINT, or 0. */
static char *gen_plan(uint32_t seed, uint64_t *sigint_at, uint64_t *sigint2_at)
{
	struct gen G = {.s = seed * 2654435761u + 1, .budget = 12};
	for (int i = 0; i < 4; i++)
		gen_rand(&G);
	buf_printf(&G.y, "# generated plan, seed %u\nconcurrency: %u\nsemaphores: { s: 1 }\n", seed, 1 + pick(&G, 4));
	if (chance(&G, 20))
		buf_printf(&G.y, "timeout: %ums\n", 1 + pick(&G, 12));
	*sigint_at = chance(&G, 12) ? 2 + pick(&G, 30) : 0;
	*sigint2_at = *sigint_at && chance(&G, 40) ? *sigint_at + 1 + pick(&G, 10) : 0;
	gen_root(&G);
	static const char *const keys[] = {"on_success", "on_failure", "finally"};
	for (size_t k = 0; k < 3; k++)
		if (chance(&G, 12)) {
			buf_printf(&G.y, "%s: [{ id: n%d, run: ", keys[k], G.next_id++);
			gen_command(&G, (struct gctx){0}, false);
			buf_adds(&G.y, " }]\n");
		}
	return buf_detach(&G.y);
}

/* Runs the generated plans first..last-1 and checks each one's invariants. */
static void run_generated(uint32_t first, uint32_t last)
{
	for (uint32_t seed = first; seed < last; seed++) {
		uint64_t s1, s2;
		char *y = gen_plan(seed, &s1, &s2);
		struct harness *h = h_new(y);
		if (s1)
			h_signal_at_seq(h, s1, SIGINT);
		if (s2)
			h_signal_at_seq(h, s2, SIGINT);
		h_run(h);
		h_check_invariants(h);
		cr_assert_eq(h_run_end(h)->run_exit, h->rc);
		h_free(h);
		free(y);
	}
}

/* three tests, so that Criterion's jobs share them */
Test(generated, plans_0_to_99)
{
	run_generated(0, 100);
}

Test(generated, plans_100_to_199)
{
	run_generated(100, 200);
}

Test(generated, plans_200_to_299)
{
	run_generated(200, 300);
}

/* ---- remote tasks: max_hosts, not concurrency ---- */

/* What ran at once, from the fake's starts and ends. */
struct overlap {
	size_t hosts;       /* most distinct remote hosts with a task running */
	size_t remote;      /* most remote tasks running */
	size_t local;       /* most local tasks running */
	size_t per_host;    /* most tasks running on one host */
	size_t local_while_remote; /* local starts while a remote task ran */
};

/* The host of a task id (STEP@HOST[#N]), copied into out; "" when local. */
static void task_host(const char *id, char *out, size_t cap)
{
	const char *at = id ? strchr(id, '@') : NULL;
	size_t n = at ? strcspn(at + 1, "#.") : 0;
	cr_assert_lt(n, cap);
	memcpy(out, at ? at + 1 : "", n);
	out[n] = 0;
}

static struct overlap overlap_of(const struct harness *h)
{
	struct overlap o = {0};
	char names[64][16];
	size_t running[64] = {0}, n_names = 0, remote = 0, local = 0;
	bool *is_remote = xcalloc(h->fake.n_started + 1, sizeof *is_remote);
	char(*proc_host)[16] = xcalloc(h->fake.n_started + 1, sizeof *proc_host);
	for (size_t i = 0; i < h->n; i++) {
		const struct rec *r = &h->v[i];
		if (r->kind != REC_START && r->kind != REC_DONE)
			continue;
		if (r->kind == REC_START && strstr(r->cmd, "nostart"))
			continue;
		if (r->kind == REC_START) {
			is_remote[r->proc] = r->remote;
			task_host(r->id, proc_host[r->proc], sizeof proc_host[r->proc]);
		}
		int d = r->kind == REC_START ? 1 : -1;
		if (!is_remote[r->proc]) {
			local += (size_t)d;
			if (d > 0 && remote)
				o.local_while_remote++;
			if (local > o.local)
				o.local = local;
			continue;
		}
		size_t k = 0;
		while (k < n_names && strcmp(names[k], proc_host[r->proc]))
			k++;
		if (k == n_names) {
			cr_assert_lt(n_names, 64);
			strcpy(names[n_names++], proc_host[r->proc]);
		}
		running[k] += (size_t)d;
		remote += (size_t)d;
		size_t busy = 0;
		for (size_t j = 0; j < n_names; j++) {
			busy += running[j] > 0;
			if (running[j] > o.per_host)
				o.per_host = running[j];
		}
		if (busy > o.hosts)
			o.hosts = busy;
		if (remote > o.remote)
			o.remote = remote;
	}
	free(is_remote);
	free(proc_host);
	return o;
}

/* An inventory of n hosts h1..hn (each max_sessions), and `ssh:` extra settings, then steps. */
static char *remote_plan(int n, int max_sessions, const char *ssh, const char *steps)
{
	struct buf b = {0};
	buf_printf(&b, "inventory:\n  hosts:\n");
	for (int i = 1; i <= n; i++)
		buf_printf(&b, "    h%d: { max_sessions: %d }\n", i, max_sessions);
	if (ssh)
		buf_printf(&b, "ssh: { %s }\n", ssh);
	buf_printf(&b, "steps:\n%s", steps);
	return buf_detach(&b);
}

static struct harness *run_remote(const char *yaml, int jobs, int max_hosts)
{
	struct harness *h = h_new_with(yaml, &(struct graph_options){.concurrency = jobs, .max_hosts = max_hosts});
	h_run(h);
	h_check_invariants(h);
	expect_rc(h, EXIT_OK);
	return h;
}

Test(remote, jobs_1_does_not_serialize_remote_hosts)
{
	char *y = remote_plan(10, 4, NULL, "  - { id: s, on: all, run: 'w:60' }\n");
	struct harness *h = run_remote(y, 1, 0);
	struct overlap o = overlap_of(h);
	cr_assert_eq(h->g->concurrency, 1);
	cr_assert_eq(h->g->max_hosts, 64, "the default max_hosts");
	cr_assert_eq(h_count(h, EV_TASK_START, NULL), 10);
	if (o.hosts != 10 || o.remote != 10) {
		char *d = h_dump(h);
		cr_assert_fail("%zu hosts (%zu tasks) at once under -j 1, expected all 10\n%s", o.hosts, o.remote, d);
	}
	cr_assert_lt(h->elapsed_ms, 500, "%llu ms: the hosts ran one after another",
		     (unsigned long long)h->elapsed_ms);
	h_free(h);
	free(y);
}

Test(remote, max_hosts_bounds_distinct_hosts_while_a_busy_host_takes_more_sessions)
{
	/* two steps on 6 hosts at once: a host already worked on takes a second task (max_sessions 2) */
	char *y = remote_plan(6, 2, "max_hosts: 3",
			      "  - id: p\n"
			      "    parallel:\n"
			      "      - { id: a, on: all, run: 'w:40' }\n"
			      "      - { id: b, on: all, run: 'w:40' }\n");
	struct harness *h = run_remote(y, 1, 0);
	struct overlap o = overlap_of(h);
	cr_assert_eq(h->g->max_hosts, 3, "ssh.max_hosts");
	cr_assert_eq(h_count(h, EV_TASK_START, NULL), 12);
	if (o.hosts != 3 || o.per_host != 2 || o.remote != 6) {
		char *d = h_dump(h);
		cr_assert_fail("%zu hosts, %zu tasks, %zu on one host at once; expected 3, 6 and 2\n%s", o.hosts, o.remote,
			       o.per_host, d);
	}
	/* 6 hosts 3 at a time, both tasks of a host together: two rounds of 40 ms */
	cr_assert_geq(h->elapsed_ms, 80);
	h_free(h);
	free(y);
}

Test(remote, max_hosts_option_wins_over_the_plan)
{
	char *y = remote_plan(6, 4, "max_hosts: 5", "  - { id: s, on: all, run: 'w:20' }\n");
	struct harness *h = run_remote(y, 0, 2);
	struct overlap o = overlap_of(h);
	cr_assert_eq(h->g->max_hosts, 2);
	if (o.hosts != 2) {
		char *d = h_dump(h);
		cr_assert_fail("%zu hosts at once, expected 2 (--max-hosts 2)\n%s", o.hosts, d);
	}
	h_free(h);
	free(y);
}

Test(remote, local_tasks_keep_to_jobs_while_remote_ones_run_beside_them)
{
	char *y = remote_plan(4, 4, "max_hosts: 2",
			      "  - id: p\n"
			      "    parallel:\n"
			      "      - { id: r, on: all, run: 'w:40' }\n"
			      "      - { id: l1, run: 'w:15' }\n"
			      "      - { id: l2, run: 'w:15' }\n"
			      "      - { id: l3, run: 'w:15' }\n"
			      "      - { id: here, on: localhost, run: 'w:15' }\n");
	struct harness *h = run_remote(y, 1, 0);
	struct overlap o = overlap_of(h);
	if (o.local != 1 || o.hosts != 2 || o.local_while_remote < 1) {
		char *d = h_dump(h);
		cr_assert_fail("%zu local tasks (-j 1), %zu hosts (max_hosts 2) at once, %zu local starts beside remote "
			       "ones\n%s",
			       o.local, o.hosts, o.local_while_remote, d);
	}
	h_free(h);
	free(y);
}

Test(remote, max_concurrency_and_semaphores_still_hold_remote_tasks)
{
	char *y = remote_plan(6, 4, NULL,
			      "  - { id: s, on: all, max_concurrency: 2, run: 'w:20' }\n"
			      "  - { id: t, on: all, semaphore: one, run: 'w:5' }\n");
	char *y2 = xasprintf("semaphores: { one: 1 }\n%s", y);
	struct harness *h = run_remote(y2, 0, 0);
	struct overlap o = overlap_of(h);
	if (o.remote != 2) {
		char *d = h_dump(h);
		cr_assert_fail("%zu remote tasks at once, expected 2 (max_concurrency 2; semaphore one: 1)\n%s", o.remote, d);
	}
	h_free(h);
	free(y);
	free(y2);
}

/*
 * A task promoted for a host slot its host no longer needs (another task of
 * that host took one first) hands the slot on: d@h4 starts as h1 and h2 end,
 * not once h3's tasks end too.
 */
Test(remote, a_slot_promoted_for_a_host_already_worked_on_goes_to_the_next_host)
{
	char *y = remote_plan(4, 4, "max_hosts: 2",
			      "  - id: p\n"
			      "    parallel:\n"
			      "      - { id: x1, on: h1, run: 'w:20' }\n"
			      "      - { id: x2, on: h2, run: 'w:20' }\n"
			      "      - { id: b, on: h3, for_each: [1, 2], run: 'w:60' }\n"
			      "      - { id: d, on: h4, run: 'w:10' }\n");
	struct harness *h = run_remote(y, 0, 0);
	struct overlap o = overlap_of(h);
	if (o.hosts != 2)
		cr_assert_fail("%zu hosts at once, expected 2", o.hosts);
	expect_before(h, h_find(h, EV_TASK_START, "p.d@h4", 0), h_find(h, EV_TASK_END, "p.b@h3#0", 0),
		      "d waited for h3's tasks although a slot was free");
	h_free(h);
	free(y);
}
