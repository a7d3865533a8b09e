#!/usr/bin/env bats
# Counts: one unit, the task (a command), everywhere — the final line, the
# progress bar and events, run.end, `baton check`, `baton status` and `runs`;
# a failure absorbed by continue_on_error or max_failures is tolerated and
# counted apart; `--output quiet` tells failures on stderr.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

# The counts part of the final line ("5 succeeded, ...") of $output.
final_counts() { grep -E ' run [a-z]+ in .*\(exit [0-9]+\): ' <<<"$output" | sed 's/.*): //'; }

# The last progress event's done/total and run.end's counts, as "done total success failed ... tolerated".
end_figures() {
	ev "$EV" '[[e for e in E if e["type"] == "progress"][-1][k] for k in ("done", "failed", "tolerated", "total")]' \
		'[E[-1]["counts"][k] for k in ("success", "failed", "timeout", "cancelled", "skipped", "tolerated")]' \
		'E[0]["tasks"]'
}

fan_plan() {
	plan fan <<'EOF'
name: fan
steps:
  - id: fan
    for_each: [a, b, c, d, e]
    run: echo item ${{ item }}
EOF
}

@test "a 5-item fan-out counts 5 tasks: final line, progress, run.end, check, status and runs agree" {
	p=$(fan_plan)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(final_counts)" "5 succeeded, 0 failed, 0 timed out, 0 cancelled, 0 skipped"
	assert_eq "$(end_figures)" $'5 0 0 5\n5 0 0 0 0 0\n5'
	run b check "$p"
	assert_status 0
	assert_eq "$output" "$p: ok (1 step, 5 tasks)"
	run b status
	assert_status 0
	assert_contains "$output" "(exit 0): 5 succeeded, 0 failed, 0 timed out, 0 cancelled, 0 skipped"
	run --separate-stderr b runs --json
	assert_status 0
	assert_eq "$(E2E_J="$output" "$E2E_PY" -c 'import json, os; J = json.loads(os.environ["E2E_J"]); print(J[0]["tasks"], json.dumps(J[0]["counts"], sort_keys=True))')" \
		'5 {"cancelled": 0, "failed": 0, "skipped": 0, "success": 5, "timeout": 0, "tolerated": 0}'
	run b runs
	assert_match "$output" ' fan +success .* 5 ok$'
}

@test "a group of 2 tasks and barriers counts 2: groups, branches and barriers are not tasks" {
	p=$(plan grp <<'EOF'
name: grp
steps:
  - id: g
    parallel:
      - id: one
        steps:
          - { id: a, run: "true" }
          - { id: meet, barrier: w }
      - id: two
        steps:
          - { id: b, run: "true" }
          - { id: meet, barrier: w }
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(final_counts)" "2 succeeded, 0 failed, 0 timed out, 0 cancelled, 0 skipped"
	assert_eq "$(end_figures)" $'2 0 0 2\n2 0 0 0 0 0\n2'
	run b check "$p"
	assert_eq "$output" "$p: ok (7 steps, 2 tasks)"
}

@test "continue_on_error: the failure is tolerated, counted apart, and the run succeeds" {
	p=$(plan coe <<'EOF'
name: coe
steps:
  - id: first
    run: "true"
  - id: bad
    run: echo broken >&2; exit 3
    continue_on_error: true
  - id: grp
    continue_on_error: true
    steps:
      - { id: inner, run: "exit 4" }
      - { id: never, run: "true" }
  - id: last
    run: "true"
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(final_counts)" "2 succeeded, 2 tolerated failures, 0 failed, 0 timed out, 0 cancelled, 1 skipped"
	assert_eq "$(end_figures)" $'5 0 2 5\n2 0 0 0 1 2\n5'
	# on the task.end and the step.end of each tolerated task, and of the group that tolerates its child
	assert_eq "$(ev "$EV" 'tend("bad").get("tolerated")' 'tend("grp.inner").get("tolerated")' \
		'one("step.end", step="bad").get("tolerated")' 'one("step.end", step="grp").get("tolerated")' \
		'"tolerated" in tend("first")' '"tolerated" in one("step.end", step="first")')" \
		$'true\ntrue\ntrue\ntrue\nfalse\nfalse'
	# written only when true
	run grep -c '"tolerated":false' "$EV"
	assert_eq "$output" 0
	run b status
	assert_contains "$output" "(exit 0): 2 succeeded, 2 tolerated failures, 0 failed, 0 timed out, 0 cancelled, 1 skipped"
	run b runs
	assert_match "$output" ' coe +success .* 2 ok, 2 tolerated, 1 skipped$'
}

@test "continue_on_error as an expression tolerates only the instances it is true for" {
	p=$(plan coex <<'EOF'
name: coex
steps:
  - id: fan
    for_each: [a, b, c]
    mode: settle # under `all` c's failure could cancel a and b before they fail
    run: "false"
    continue_on_error: ${{ item != 'c' }}
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'tend("fan#0").get("tolerated")' 'tend("fan#1").get("tolerated")' 'tend("fan#2").get("tolerated")')" \
		$'true\ntrue\nnull'
	assert_eq "$(final_counts)" "0 succeeded, 2 tolerated failures, 1 failed, 0 timed out, 0 cancelled, 0 skipped"
}

@test "max_failures: 1 in a batched for_each with one failure: tolerated, the run succeeds" {
	p=$(plan mf <<'EOF'
name: mf
steps:
  - id: roll
    for_each: [a, b, c, d]
    batch: { size: 2, max_failures: 1 }
    run: test ${{ item }} != b
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(final_counts)" "3 succeeded, 1 tolerated failure, 0 failed, 0 timed out, 0 cancelled, 0 skipped"
	assert_eq "$(end_figures)" $'4 0 1 4\n3 0 0 0 0 1\n4'
	assert_eq "$(ev "$EV" 'tend("roll#1")["status"]' 'tend("roll#1").get("tolerated")')" $'failed\ntrue'
	# past max_failures the second failure is not tolerated, and fails the run
	p=$(plan mf2 <<'EOF'
name: mf2
steps:
  - id: roll
    for_each: [a, b, c, d]
    batch: { size: 1, max_failures: 1 }
    run: test ${{ item }} != b -a ${{ item }} != c
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'tend("roll#1").get("tolerated")' 'tend("roll#2").get("tolerated")')" $'true\nnull'
	assert_eq "$(final_counts)" "1 succeeded, 1 tolerated failure, 1 failed, 0 timed out, 1 cancelled, 0 skipped"
}

@test "a retried task is tolerated only on its last attempt" {
	p=$(plan retry <<'EOF'
name: retry
steps:
  - id: flaky
    run: "false"
    retry: { attempts: 2, delay: 1ms }
    continue_on_error: true
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'tend("flaky", 1).get("tolerated")' 'tend("flaky", 2).get("tolerated")')" $'null\ntrue'
	assert_eq "$(final_counts)" "0 succeeded, 1 tolerated failure, 0 failed, 0 timed out, 0 cancelled, 0 skipped"
}

@test "when:-skipped tasks are in the total: check, run.start, the last progress and run.end agree" {
	p=$(plan skip <<'EOF'
name: skip
steps:
  - id: a
    run: "true"
  - id: nope
    when: ${{ false }}
    steps:
      - { id: x, run: "true" }
      - id: fan
        for_each: [1, 2, 3]
        run: "true"
  - id: fan
    for_each: [p, q]
    when: ${{ item == 'p' }}
    run: "true"
EOF
)
	run b check "$p"
	assert_status 0
	assert_eq "$output" "$p: ok (5 steps, 7 tasks)"
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	# a, fan#0 succeed; nope.x, nope.fan's 3 items (never made) and fan#1 are skipped
	assert_eq "$(end_figures)" $'7 0 0 7\n2 0 0 0 5 0\n7'
	assert_eq "$(final_counts)" "2 succeeded, 0 failed, 0 timed out, 0 cancelled, 5 skipped"
}

@test "the tasks of a fan-out that never starts end with it: a failed run's progress reaches its total" {
	p=$(plan stop <<'EOF'
name: stop
steps:
  - id: bad
    run: "exit 1"
  - id: fan
    for_each: [1, 2, 3, 4]
    run: "true"
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(end_figures)" $'5 1 0 5\n0 1 0 0 4 0\n5'
	assert_eq "$(final_counts)" "0 succeeded, 1 failed, 0 timed out, 0 cancelled, 4 skipped"
}

@test "a handler's tasks join the total as they start" {
	p=$(plan hand <<'EOF'
name: hand
steps:
  - id: a
    run: "true"
    on_success:
      - { id: yes, run: "true" }
    on_failure:
      - { id: no, run: "true" }
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(end_figures)" $'2 0 0 2\n2 0 0 0 0 0\n1'
	run b check "$p"
	assert_eq "$output" "$p: ok (5 steps, 1 task)"
}

@test "a for_each over a step's output: check says so; the run counts its items" {
	p=$(plan late <<'EOF'
name: late
steps:
  - id: list
    run: printf 'x\ny\nz\n'
  - id: fan
    for_each: ${{ steps.list.stdout_lines }}
    run: echo ${{ item }}
EOF
)
	run b check "$p"
	assert_status 0
	assert_eq "$output" "$p: ok (2 steps, tasks known at run time)"
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(end_figures)" $'4 0 0 4\n4 0 0 0 0 0\nnull'
}

@test "the tty progress bar ends full and leaves tolerated failures out of its failed count" {
	command -v script >/dev/null || fail "script(1) is needed"
	p=$(plan bar <<'EOF'
name: bar
steps:
  - id: p
    parallel:
      - { id: a, run: sleep 1.2 }
      - { id: b, run: sleep 1.2; false, continue_on_error: true }
      - { id: c, run: sleep 1.2 }
EOF
)
	run script -qec "COLUMNS=100 $BATON run $p --output tty" /dev/null
	assert_status 0
	# the last bar drawn: every task done, no failed count (the one failure is tolerated)
	last=$(tr '\r' '\n' <<<"$output" | grep -aE '[0-9]+/[0-9]+ ·' | tail -1)
	assert_match "$last" ' 3/3 · [0-9]+ running'
	assert_not_contains "$(tr '\r' '\n' <<<"$output" | grep -aE '[0-9]+/[0-9]+ ·')" "failed"
	assert_contains "$output" "2 succeeded, 1 tolerated failure, 0 failed"
}

# ---- --output quiet ----

@test "--output quiet: nothing for a success; failed tasks and the final line on stderr for a failure" {
	p=$(fan_plan)
	run --separate-stderr b run "$p" --output quiet
	assert_status 0
	assert_eq "$output" ""
	assert_eq "$stderr" ""
	p=$(plan qfail <<'EOF'
name: qfail
steps:
  - id: ok
    run: echo fine
  - id: tolerated
    run: "exit 7"
    continue_on_error: true
  - id: fan
    for_each: [web1, web2]
    label: ${{ item }}-box
    run: test ${{ item }} != web2 || { echo boom >&2; exit 2; }
  - id: slow
    run: sleep 5
    timeout: 200ms
    continue_on_error: false
EOF
)
	run --separate-stderr b run "$p" --output quiet -j 1
	assert_status 1
	assert_eq "$output" "" "nothing on stdout"
	assert_eq "$(sed 's/ in [0-9.]*m\?s / in T /' <<<"$stderr")" "✗ fan#1 (web2-box): exit code 2
✗ run failed in T (exit 1): 2 succeeded, 1 tolerated failure, 1 failed, 0 timed out, 0 cancelled, 1 skipped"
	# a timeout, too
	p=$(plan qslow <<'EOF'
name: qslow
steps:
  - id: slow
    run: sleep 5
    timeout: 200ms
EOF
)
	run --separate-stderr b run "$p" --output quiet
	assert_status 1
	assert_eq "$output" ""
	assert_contains "$stderr" "✗ slow: timed out after 200ms"
	assert_contains "$stderr" "✗ run failed in "
	assert_contains "$stderr" "0 failed, 1 timed out"
}

@test "--output quiet with --events: the stream is whole, stderr has only the failure" {
	p=$(plan q2 <<'EOF'
name: q2
steps:
  - id: bad
    run: "exit 1"
EOF
)
	run --separate-stderr b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(grep -c . <<<"$stderr")" 2
	assert_contains "$stderr" "✗ bad: exit code 1"
}

@test "a tolerated failure says so on its line, in its summary row and its failure block" {
	p=$(plan tolmark <<'EOF2'
steps:
  - id: soft
    continue_on_error: true
    run: exit 1
  - id: fan
    for_each: [a, b, c, d]
    batch: {size: 2, max_failures: 1}
    run: test "${{ item }}" != c
  - id: hard-ok
    run: "true"
EOF2
)
	run b run "$p" --output plain
	assert_status 0
	assert_match "$output" '^\[soft\] ✗ failed in [0-9.]*m?s: exit code 1 \(tolerated: the run goes on\)$'
	assert_match "$output" '^\[fan#2 \(c\)\] ✗ failed in [0-9.]*m?s: exit code 1 \(tolerated: the run goes on\)$'
	assert_match "$output" '^  ✗ tolerated  soft '
	assert_match "$output" '^  ✗ tolerated    fan#2 \(c\) '
	assert_match "$output" '^✗ soft \(tolerated\): exit code 1$'
	assert_match "$output" '^✗ fan#2 \(c\) \(tolerated\): exit code 1$'
	assert_match "$output" ': 4 succeeded, 2 tolerated failures, 0 failed, '
	# a failure that is not tolerated is not called so
	p2=$(plan hard <<'EOF2'
steps:
  - id: hard
    run: exit 1
EOF2
)
	run b run "$p2" --output plain
	assert_status 1
	assert_not_contains "$output" "tolerated"
}
