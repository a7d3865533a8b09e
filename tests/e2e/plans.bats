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

@test "every plan in plans/ previews with baton plan" {
	cd "$REPO_DIR"
	failed=
	while IFS= read -r f; do
		if ! out=$(b plan "$f" 2>&1); then
			printf 'baton plan %s failed:\n%s\n' "$f" "$out" >&2
			failed="$failed $f"
		fi
	done < <(example_plans)
	[ -z "$failed" ] || fail "example plans that do not preview:$failed"
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
		out=$(E2E_TIMEOUT=60 b run "$f" --output plain --events "$evf" 2>&1) || st=$?
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
