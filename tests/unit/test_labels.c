/*
 * Labels of for_each instances (plan-format.md section 3, `label`): how an
 * id and its label are shown (event_display_id), and what the scheduler
 * puts in the events, the reasons and the warnings.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "sched/sched.h"
#include "sched_harness.h"

static void expect_display(const char *id, const char *label, const char *want)
{
	struct buf b = {0};
	event_display_id(&b, id, label);
	cr_assert_str_eq(b.data, want, "id %s label %s", id, label ? label : "(null)");
	buf_free(&b);
}

Test(display, the_label_follows_the_id_in_parentheses)
{
	expect_display("rollout#2", "app02", "rollout#2 (app02)");
	expect_display("rollout.deploy@web1#2", "app02", "rollout.deploy@web1#2 (app02)");
	expect_display("a.b#1@h2", "x", "a.b#1@h2 (x)");
}

Test(display, no_label_or_one_that_only_repeats_the_index_adds_nothing)
{
	expect_display("rollout#2", NULL, "rollout#2");
	expect_display("rollout#2", "", "rollout#2");
	expect_display("rollout#12", "12", "rollout#12");
	expect_display("a.b#1#2", "2", "a.b#1#2");   /* the innermost index is the last */
	expect_display("a.b#1@h2", "1", "a.b#1@h2"); /* an item's index before a host */
	expect_display("a.b#1#2", "1", "a.b#1#2 (1)");
	expect_display("rollout#2", "21", "rollout#2 (21)");
	expect_display("rollout#21", "2", "rollout#21 (2)");
	expect_display("build", "x", "build (x)");
}

static struct harness *run_checked(const char *yaml)
{
	struct harness *h = h_new(yaml);
	h_run(h);
	h_check_invariants(h);
	return h;
}

/* The label of the one event of type with id; fails the test (with the log) when it differs from want. */
static void expect_label(const struct harness *h, enum event_type type, const char *id, const char *want)
{
	long i = h_find(h, type, id, 0);
	const char *got = i >= 0 ? h->v[i].label : NULL;
	if (i < 0 || (want ? !got || strcmp(got, want) : got != NULL)) {
		char *d = h_dump(h);
		cr_assert_fail("%s %s: label %s, expected %s\n%s", event_type_name(type), id ? id : "-",
			       got ? got : "(none)", want ? want : "(none)", d);
	}
}

static void expect_reason(const struct harness *h, const char *id, const char *want)
{
	long i = h_find(h, EV_STEP_END, id, 0);
	const char *got = i >= 0 ? h->v[i].reason : NULL;
	if (!got || strcmp(got, want)) {
		char *d = h_dump(h);
		cr_assert_fail("step.end %s: reason %s, expected %s\n%s", id, got ? got : "(none)", want, d);
	}
}

Test(sched_labels, tasks_steps_and_batches_carry_the_label_of_their_instance)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: r\n"
					"    for_each: [{n: web1}, {n: web2}, {n: web3}]\n"
					"    label: \"${{ item.n }}-${{ index }}\"\n"
					"    batch: { size: 2 }\n"
					"    steps:\n"
					"      - { id: a, run: 'w:1' }\n"
					"  - { id: plain, run: 'w:1' }\n");
	cr_assert_eq(h->rc, EXIT_OK);
	expect_label(h, EV_TASK_START, "r.a#0", "web1-0");
	expect_label(h, EV_TASK_END, "r.a#2", "web3-2");
	expect_label(h, EV_STEP_START, "r#1", "web2-1");
	expect_label(h, EV_STEP_END, "r.a#1", "web2-1");
	expect_label(h, EV_STEP_END, "r", NULL);
	expect_label(h, EV_TASK_START, "plain", NULL);
	expect_label(h, EV_BATCH_START, "r", "web1-0,web2-1");
	cr_assert_eq(h_count(h, EV_WARNING, NULL), 0);
	h_free(h);
}

Test(sched_labels, a_failure_names_the_instance_with_its_label)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: all\n"
					"    for_each: [a, b, 'an item of more than forty characters, to be sure']\n"
					"    run: 'x:1 w:1'\n"
					"  - id: settle\n"
					"    for_each: [a, b, c, d, e]\n"
					"    mode: settle\n"
					"    continue_on_error: true\n"
					"    run: 'failitem:b failitem:c failitem:d failitem:e'\n");
	cr_assert_eq(h->rc, EXIT_FAILED);
	/* the first failure: which one comes first is the fake's order, so accept either */
	long i = h_find(h, EV_STEP_END, "all", 0);
	cr_assert(i >= 0);
	const char *r = h->v[i].reason;
	cr_assert(r && (!strcmp(r, "all#0 (a) failed") || !strcmp(r, "all#1 (b) failed") || !strcmp(r, "all#2 failed")),
		  "reason %s", r ? r : "(none)");
	h_free(h);
}

Test(sched_labels, settle_names_its_first_three_failed_instances)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: s\n"
					"    for_each: [a, b, c, d, e]\n"
					"    mode: settle\n"
					"    continue_on_error: true\n"
					"    run: 'failitem:b'\n"
					"  - id: t\n"
					"    for_each: [a, b, c, d, e]\n"
					"    mode: settle\n"
					"    run: 'x:1'\n");
	expect_reason(h, "s", "1 of 5 failed: s#1 (b)");
	expect_reason(h, "t", "5 of 5 failed: t#0 (a), t#1 (b), t#2 (c), …");
	h_free(h);
}

Test(sched_labels, a_label_that_cannot_be_rendered_gives_the_default_and_one_warning)
{
	struct harness *h = run_checked("steps:\n"
					"  - id: x\n"
					"    for_each: [{n: one}, {m: two}, {m: three}]\n"
					"    label: ${{ item.n }}\n"
					"    run: 'w:1'\n");
	cr_assert_eq(h->rc, EXIT_OK);
	expect_label(h, EV_TASK_START, "x#0", "one");
	expect_label(h, EV_TASK_START, "x#1", "1");
	expect_label(h, EV_TASK_START, "x#2", "2");
	cr_assert_eq(h_count(h, EV_WARNING, NULL), 1, "one warning for the step, not one per instance");
	long w = h_find(h, EV_WARNING, NULL, 0);
	cr_assert(strstr(h->v[w].label, "x#1: its label could not be rendered"), "%s", h->v[w].label);
	h_free(h);
}
