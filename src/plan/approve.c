/*
 * approve.c — the `approve` step kind (plan-format.md section 3): a human
 * gate. Its value is the message to ask (a string, ${{ }} allowed), or a
 * map {message, timeout}. The asking itself is the scheduler's (and, through
 * its approver, the command line's).
 */
#include <string.h>

#include "plan/internal.h"

static void get_message(struct loader *L, const struct ynode *n, struct step *s)
{
	if (n->kind == YNODE_SCALAR && strspn(n->str, " \t\n") == n->len) {
		ERR(L, n, "'approve' needs a message to ask, e.g. approve: \"Deploy to production?\"");
		return;
	}
	s->approve_message = ld_get_tmpl(L, n, "approve");
}

void ld_parse_approve(struct loader *L, const struct ynode *v, struct step *s)
{
	s->approve_message = NULL;
	s->approve_timeout_ms = 0;
	if (v->kind == YNODE_SEQ) {
		ERR(L, v, "'approve' takes a message or {message, timeout}, not a list");
		return;
	}
	if (v->kind == YNODE_SCALAR) {
		get_message(L, v, s);
		return;
	}
	static const char *const keys[] = {"message", "timeout"};
	ld_check_keys(L, v, "approve", keys, 2, NULL, 0);
	const struct ynode *msg = ynode_get(v, "message"), *to = ynode_get(v, "timeout");
	if (!msg)
		ERR(L, v, "'approve' needs a 'message'");
	else if (msg->kind != YNODE_SCALAR)
		ERR(L, msg, "'message' must be a string, not %s", ld_type_name(msg));
	else
		get_message(L, msg, s);
	if (to && ld_get_duration(L, to, "timeout", &s->approve_timeout_ms) && !s->approve_timeout_ms)
		ERR(L, to, "'timeout' of an approve gate must be more than 0 (leave it out to wait as long as it takes)");
}
