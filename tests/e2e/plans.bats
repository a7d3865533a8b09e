#!/usr/bin/env bats
# Every example plan in plans/ validates, previews and runs successfully
# (those with an inventory run in ssh_fanout.bats, against loopback hosts).
# The loop picks up new plans automatically.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

example_plans() {
	local f
	for f in "$REPO_DIR"/plans/*.yaml "$REPO_DIR"/plans/*.yml; do
		[ -e "$f" ] && printf '%s\n' "${f#"$REPO_DIR"/}"
	done
	return 0
}

@test "plans/ holds at least one example plan" {
	[ -n "$(example_plans)" ] || fail "no plans in $REPO_DIR/plans"
}

@test "every plan in plans/ passes baton check" {
	cd "$REPO_DIR"
	failed=
	while IFS= read -r f; do
		if ! out=$(b check "$f" 2>&1); then
			printf 'baton check %s failed:\n%s\n' "$f" "$out" >&2
			failed="$failed $f"
		fi
	done < <(example_plans)
	[ -z "$failed" ] || fail "invalid example plans:$failed"
}

@test "every plan in plans/ previews with baton plan: text, JSON and DOT" {
	cd "$REPO_DIR"
	failed=
	while IFS= read -r f; do
		if ! out=$(b plan "$f" 2>&1); then
			printf 'baton plan %s failed:\n%s\n' "$f" "$out" >&2
			failed="$failed $f"
		fi
		# the JSON document parses and lists tasks with ids; its task count is the text's
		if ! out=$(b plan --output json "$f" 2>&1) ||
			! printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["v"] == 1 and d["kind"] == "baton.plan", d.get("kind")
def tasks(s):
    n = len(s.get("tasks") or [])
    for c in s.get("steps") or []:
        n += tasks(c)
    return n
assert d["steps"], "no steps"
n = sum(tasks(s) for s in d["steps"])
c = d["counts"]
assert n == c["tasks"] + c["handler_tasks"], "%d tasks listed, counts say %r" % (n, c)
' 2>&1; then
			printf 'baton plan --output json %s failed:\n%s\n' "$f" "${out: -2000}" >&2
			failed="$failed $f(json)"
		fi
		if ! out=$(b plan --output dot "$f" 2>&1) || [[ "$out" != digraph* ]] || [[ "$out" != *"}" ]]; then
			printf 'baton plan --output dot %s failed:\n%s\n' "$f" "$out" >&2
			failed="$failed $f(dot)"
		fi
	done < <(example_plans)
	[ -z "$failed" ] || fail "example plans that do not preview:$failed"
}

@test "every plan in plans/ declares inputs or labels its instances, as a real plan would" {
	cd "$REPO_DIR"
	failed=
	while IFS= read -r f; do
		grep -qE '^inputs:|^ +label:' "$f" || failed="$failed $f"
	done < <(example_plans)
	[ -z "$failed" ] || fail "example plans with neither inputs nor labels:$failed"
}

@test "every plan in plans/ runs successfully (exit 0) with a valid event stream" {
	cd "$REPO_DIR"
	failed=
	i=0
	while IFS= read -r f; do
		# a plan with an inventory needs its hosts: ssh_fanout.bats runs such
		# plans against a loopback sshd (with --inventory)
		if grep -q '^inventory:' "$f"; then continue; fi
		i=$((i + 1))
		evf="$BATS_TEST_TMPDIR/plan-$i.jsonl"
		st=0
		# --yes: a plan's approve gates must not ask whoever runs the tests in a terminal
		out=$(E2E_TIMEOUT=60 b run "$f" --yes --output plain --events "$evf" 2>&1) || st=$?
		# (kept in a variable, not seen by the stall guard's `run` or teardown)
		stall_guard_text "$out" "baton run $f" || failed="$failed $f(stalled)"
		if [ "$st" != 0 ]; then
			printf 'baton run %s --output plain: exit %s\n%s\n' "$f" "$st" "$out" >&2
			failed="$failed $f"
		elif ! ev_valid "$evf" >&2; then
			failed="$failed $f(events)"
		fi
	done < <(example_plans)
	[ -z "$failed" ] || fail "example plans that did not run:$failed"
}
