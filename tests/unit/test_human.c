/*
 * The human sinks' pieces that are pure functions of their input: which step
 * holds which (event_id_inside, the summary's tree) and how a live row cuts a
 * long task id (live_cut_id).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "event/human_int.h"

Test(human_ids, a_step_holds_its_instances_and_their_steps)
{
	cr_assert(event_id_inside("roll#2", "roll"));
	cr_assert(event_id_inside("roll.one#2", "roll"));
	cr_assert(event_id_inside("roll.one#2", "roll#2"));
	cr_assert(event_id_inside("a.b#1#2", "a.b#1"));
	cr_assert(event_id_inside("deploy@web1.example.com", "deploy"));
	cr_assert(event_id_inside("deploy.check@web1", "deploy@web1"));
	cr_assert(event_id_inside("a.b.c", "a"));
}

Test(human_ids, no_step_holds_another_instance_or_a_namesake)
{
	cr_assert_not(event_id_inside("roll.one#2", "roll#1"));
	cr_assert_not(event_id_inside("roll.one#20", "roll#2"), "#2 is no prefix of #20");
	cr_assert_not(event_id_inside("rollout#0", "roll"));
	cr_assert_not(event_id_inside("roll", "roll"), "a step does not hold itself");
	cr_assert_not(event_id_inside("roll", "roll#2"));
	cr_assert_not(event_id_inside("deploy@web10", "deploy@web1"));
	cr_assert_not(event_id_inside("other.one#2", "roll#2"));
}

static void expect_cut(const char *id, size_t room, const char *want)
{
	struct buf b = {0};
	live_cut_id(&b, id, room);
	cr_assert_str_eq(b.data, want, "%s in %zu columns", id, room);
	buf_free(&b);
}

Test(human_cut, a_short_id_is_padded_a_long_one_cut_in_the_middle)
{
	expect_cut("build", 8, "build   ");
	expect_cut("a-very-long-step-name#3 (app04)", 20, "a-very-lo…#3 (app04)");
	expect_cut("rollout.deploy@web12", 12, "rollo…@web12");
	expect_cut("parallel-1.a-task-with-a-rather-long-name-one", 20, "parallel-1.a-…me-one");
	expect_cut("ünïcödé-step-name#1", 12, "ünïcödé-s…#1");
}

Test(human_cut, an_instance_too_long_keeps_the_ids_start_and_its_own)
{
	expect_cut("step#3 (a-label-far-too-long-to-fit-anywhere)", 16, "step…#3 (a-labe…");
}
