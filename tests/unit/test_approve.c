/*
 * The `approve` step kind in the loader: a message or {message, timeout},
 * ${{ }} in the message, and each mistake at its FILE:LINE:COL.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "helpers.h"
#include "plan/plan.h"

Test(approve, message_or_map_with_timeout)
{
	struct plan *p = th_load_ok("vars: { env: prod }\n"
				    "steps:\n"
				    "  - approve: Deploy?\n"
				    "  - approve: { message: \"Deploy to ${{ vars.env }}?\", timeout: 5m }\n"
				    "  - id: gate\n"
				    "    approve:\n"
				    "      message: ok\n"
				    "  - { approve: later?, timeout: 2s }\n");
	struct step **c = p->root->children;
	cr_assert_eq(p->root->n_children, 4u);
	cr_assert_eq(c[0]->kind, STEP_APPROVE);
	cr_assert_str_eq(step_kind_name(c[0]->kind), "approve");
	cr_assert_str_eq(c[0]->id, "approve-1");
	cr_assert_str_eq(tmpl_source(c[0]->approve_message), "Deploy?");
	cr_assert_eq(c[0]->approve_timeout_ms, 0u);
	cr_assert_str_eq(tmpl_source(c[1]->approve_message), "Deploy to ${{ vars.env }}?");
	cr_assert_not(tmpl_is_literal(c[1]->approve_message));
	cr_assert_eq(c[1]->approve_timeout_ms, 300000u);
	cr_assert_str_eq(c[2]->id, "gate");
	cr_assert_str_eq(tmpl_source(c[2]->approve_message), "ok");
	cr_assert_eq(c[2]->approve_timeout_ms, 0u);
	cr_assert_eq(c[3]->approve_timeout_ms, 2000u, "the step's timeout: is the gate's");
	plan_free(p);
}

Test(approve, mistakes_are_reported_where_they_stand)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - approve: { message: go, timeout: soon }\n"
		     "  - approve: { message: go, timeot: 1s }\n"
		     "  - approve: [a, b]\n"
		     "  - approve: { timeout: 1s }\n"
		     "  - approve: \"\"\n"
		     "  - approve: { message: [x] }\n"
		     "  - approve: \"${{ vars.nope }}\"\n"
		     "  - approve: { message: go, timeout: 0s }\n",
		     &d);
	TH_ASSERT_DIAG(&d, "'timeout': bad duration 'soon'", 2, 38);
	TH_ASSERT_DIAG(&d, "unknown key 'timeot' in approve", 3, 29);
	TH_ASSERT_DIAG(&d, "did you mean 'timeout'", 3, 29);
	TH_ASSERT_DIAG(&d, "'approve' takes a message or {message, timeout}, not a list", 4, 14);
	TH_ASSERT_DIAG(&d, "'approve' needs a 'message'", 5, 14);
	TH_ASSERT_DIAG(&d, "'approve' needs a message to ask", 6, 14);
	TH_ASSERT_DIAG(&d, "'message' must be a string, not a list", 7, 25);
	TH_ASSERT_DIAG(&d, "vars.nope is not defined", 8, 15);
	TH_ASSERT_DIAG(&d, "must be more than 0", 9, 38);
	EXPECT_N(&d, 8);
	diags_free(&d);
}

Test(approve, a_step_has_one_kind)
{
	struct diags d = {0};
	th_load_fail("steps:\n"
		     "  - run: echo\n"
		     "    approve: ok?\n",
		     &d);
	TH_ASSERT_DIAG(&d, "exactly one kind", 3, 5);
	diags_free(&d);
}
