#!/usr/bin/env bats
# Fan-out: parallel modes (all, settle, any, race), min_success, stages.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

# three branches: long, a shell waiting for a sleep of $2 s (found through
# $E2E_MARK) that it started in the background; fail, which fails once long's
# sleep runs; ok, which succeeds once the event stream ($EV, so run with
# --events "$EV") shows that failure. No sleep decides the order: each waits
# for what it needs (at most 5 s, then it exits 99).
modes_plan() {
	plan "mode-$1" <<EOF
steps:
  - id: p
    mode: $1
    parallel:
      - id: fail
        run: |
          $(await "[ -e long-started ]")
          exit 1
      - id: ok
        run: |
          $(await "grep -q '\"type\":\"task.end\",\"task\":\"p.fail\"' '$EV'")
          echo ok
      - { id: long, run: "sleep $2.$E2E_MARK & touch long-started; wait" }
  - id: after
    run: touch after-marker
EOF
}

# await CONDITION: a line of shell that polls CONDITION (a shell command) every
# 20 ms, and exits 99 if it is still false after 5 s.
await() {
	printf 'i=0; until %s; do i=$((i + 1)); [ $i -lt 250 ] || exit 99; sleep 0.02; done' "$1"
}

# elapsed_since START: milliseconds since START (date +%s%N).
elapsed_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

@test "parallel mode all cancels siblings on first failure, quickly" {
	p=$(modes_plan all 30)
	start=$(date +%s%N)
	run b run "$p" --output plain --events "$EV"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("p.fail", "p.ok", "p.long", "p", "after")')" "failed cancelled cancelled failed skipped"
	# cancelled right after the failure, not after the long sibling
	assert_le "$(ev "$EV" 'ms(tend("p.long")) - ms(tend("p.fail"))')" 1000 "ms from the failure to the cancel"
	assert_le "$elapsed" 3000 "ms for the whole run (the long branch, a shell and its sleep, stopped at once)"
	assert_eq "$(ev "$EV" 'tend("p.long")["reason"]')" cancelled
	assert_no_leftovers
	assert_file_absent after-marker
}

@test "parallel is mode all by default" {
	p=$(plan default <<EOF
steps:
  - id: p
    parallel:
      - { id: fail, run: "$(await "[ -e long-started ]"); exit 1" }
      - { id: long, run: "sleep 30.$E2E_MARK & touch long-started; wait" }
EOF
)
	start=$(date +%s%N)
	run b run "$p" --output quiet --events "$EV"
	elapsed=$(elapsed_since "$start")
	assert_status 1
	assert_eq "$(ev "$EV" 'statuses("p.fail", "p.long", "p")')" "failed cancelled failed"
	assert_le "$(ev "$EV" 'ms(tend("p.long")) - ms(tend("p.fail"))')" 1000 "ms from the failure to the cancel"
	assert_le "$elapsed" 3000 "ms for the run (kill_grace 5s)"
	assert_no_leftovers
}

@test "parallel mode settle lets every branch finish, then fails" {
	p=$(modes_plan settle 0)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("p.fail", "p.ok", "p.long", "p", "after")')" "failed success success failed skipped"
	# the group ends after its last branch
	assert_eq "$(ev "$EV" 'seq("step.end", step="p") > seq("task.end", task="p.long")')" true
}

@test "parallel mode settle succeeds when every branch succeeds" {
	p=$(plan settle-ok <<'EOF'
steps:
  - id: p
    mode: settle
    parallel: ["true", "sleep 0.1"]
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'status("p")')" success
}

@test "parallel mode any: the first success wins and cancels the rest" {
	p=$(modes_plan any 30)
	start=$(date +%s%N)
	run b run "$p" --output quiet --events "$EV"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("p.fail", "p.ok", "p.long", "p", "after")')" "failed success cancelled success success"
	assert_le "$(ev "$EV" 'ms(tend("p.long")) - ms(tend("p.ok"))')" 1000 "ms from the success to the cancel"
	assert_le "$elapsed" 3000 "ms for the whole run"
	assert_no_leftovers
}

@test "parallel mode any fails only when every branch failed" {
	p=$(plan any-fail <<'EOF'
steps:
  - id: p
    mode: any
    parallel: ["exit 1", "sleep 0.2; exit 2", "exit 3"]
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'status("p")' 'len([e for e in of("task.end") if e["status"] == "failed"])')" $'failed\n3'
}

@test "parallel mode race: the first to end decides, even a failure" {
	p=$(modes_plan race 30)
	start=$(date +%s%N)
	run b run "$p" --output quiet --events "$EV"
	elapsed=$(elapsed_since "$start")
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("p.fail", "p.ok", "p.long", "p")')" "failed cancelled cancelled failed"
	assert_le "$(ev "$EV" 'ms(tend("p.long")) - ms(tend("p.fail"))')" 1000 "ms from the first end to the cancel"
	assert_le "$elapsed" 3000 "ms for the run (kill_grace 5s)"
	assert_no_leftovers
}

@test "parallel mode race: a first success wins" {
	p=$(plan race-ok <<EOF
steps:
  - id: p
    mode: race
    parallel:
      - { id: quick, run: "$(await "[ -e slow-started ]")" }
      - { id: slow-fail, run: "sleep 30.$E2E_MARK & touch slow-started; wait; exit 1" }
EOF
)
	start=$(date +%s%N)
	run b run "$p" --output quiet --events "$EV"
	elapsed=$(elapsed_since "$start")
	assert_status 0
	assert_eq "$(ev "$EV" 'statuses("p.quick", "p.slow-fail", "p")')" "success cancelled success"
	assert_le "$elapsed" 3000 "ms for the run (kill_grace 5s)"
	assert_no_leftovers
}

@test "min_success as a count and as a percentage" {
	p=$(plan minsucc <<'EOF'
steps:
  - id: two-of-four
    min_success: 2
    parallel: ["exit 1", "exit 1", "true", "true"]
    continue_on_error: true
  - id: three-of-four
    min_success: 3
    parallel: ["exit 1", "exit 1", "true", "true"]
    continue_on_error: true
  - id: half
    min_success: "50%"
    parallel: ["exit 1", "exit 1", "true", "true"]
    continue_on_error: true
  - id: three-quarters
    min_success: "75%"
    parallel: ["exit 1", "exit 1", "true", "true"]
    continue_on_error: true
  - id: rounds-up
    min_success: "60%"
    parallel: ["exit 1", "exit 1", "true", "true"]
    continue_on_error: true
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("two-of-four", "three-of-four", "half", "three-quarters", "rounds-up")')" \
		"success failed success failed failed"
}

@test "min_success implies settle: every branch runs to the end" {
	p=$(plan minsettle <<EOF
steps:
  - id: p
    min_success: 1
    parallel:
      - { id: fail, run: "exit 1" }
      - id: slow
        run: |
          $(await "grep -q '\"type\":\"task.end\",\"task\":\"p.fail\"' '$EV'")
          touch slow-marker
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'statuses("p.fail", "p.slow", "p")')" "failed success success"
	[ -e slow-marker ] || fail "the slow branch was cancelled"
}

@test "stages run one after another: stage 2 starts after every task of stage 1 ended" {
	p=$(plan stages <<'EOF'
steps:
  - id: st
    stages:
      - { name: one, steps: ["sleep 0.3", "sleep 0.1", "sleep 0.2"] }
      - { name: two, steps: ["true", "sleep 0.1"] }
      - { name: three, steps: ["true"] }
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	ev_valid "$EV"
	# the members of one stage run concurrently
	assert_eq "$(ev "$EV" 'inflight("st.one.")')" 3
	assert_eq "$(ev "$EV" 'max(e["seq"] for e in of("task.end") if e["task"].startswith("st.one.")) < min(e["seq"] for e in of("task.start") if e["task"].startswith("st.two."))')" true
	assert_eq "$(ev "$EV" 'seq("step.end", step="st.one") < seq("step.start", step="st.two")')" true
	assert_eq "$(ev "$EV" 'max(e["seq"] for e in of("task.end") if e["task"].startswith("st.two.")) < min(e["seq"] for e in of("task.start") if e["task"].startswith("st.three."))')" true
	assert_eq "$(ev "$EV" '[e["kind"] for e in of("step.start") if e["step"] in ("st", "st.one")]')" "stages stage"
}

@test "a failed stage skips the later stages and fails the stages step" {
	p=$(plan stagefail <<'EOF'
steps:
  - id: st
    stages:
      - { name: one, steps: ["true"] }
      - { name: two, steps: ["exit 1", "sleep 0.2"] }
      - { name: three, steps: ["touch three-marker"] }
  - id: after
    run: touch after-marker
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("st.one", "st.two", "st.three", "st.three.run-1", "st", "after")')" \
		"success failed skipped skipped failed skipped"
	assert_file_absent three-marker
	assert_file_absent after-marker
}

@test "mode settle on stages lets each stage's members finish" {
	p=$(plan stagesettle <<'EOF'
steps:
  - id: st
    mode: settle
    stages:
      - { name: one, steps: ["exit 1", "sleep 0.2; touch slow-marker"] }
      - { name: two, steps: ["touch two-marker"] }
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'statuses("st.one.run-1", "st.one.run-2", "st.one", "st.two", "st")')" \
		"failed success failed skipped failed"
	[ -e slow-marker ] || fail "settle cancelled a member of the stage"
	assert_file_absent two-marker
}

@test "a failure under continue_on_error does not fail a parallel group" {
	p=$(plan coe <<'EOF'
steps:
  - id: p
    parallel:
      - { id: lint, run: "exit 1", continue_on_error: true }
      - { id: slow, run: "sleep 0.3; echo done" }
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'statuses("p.lint", "p.slow", "p")')" "failed success success"
}

@test "nested groups: a failure deep inside cancels and fails every ancestor" {
	p=$(plan nested <<EOF
steps:
  - id: outer
    parallel:
      - id: inner
        steps:
          - { id: a, run: "true" }
          - id: deep
            parallel:
              - { id: bad, run: "$(await "[ -e long-started ] && [ -e sibling-started ]"); exit 4" }
              - { id: long, run: "sleep 30.$E2E_MARK & touch long-started; wait" }
      - { id: sibling, run: "sleep 31.$E2E_MARK & touch sibling-started; wait" }
EOF
)
	start=$(date +%s%N)
	run b run "$p" --output quiet --events "$EV"
	elapsed=$(elapsed_since "$start")
	assert_status 1
	assert_le "$elapsed" 3000 "ms for the run (kill_grace 5s)"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("outer.inner.deep.bad", "outer.inner.deep.long", "outer.inner.deep", "outer.inner", "outer.sibling", "outer")')" \
		"failed cancelled failed failed cancelled failed"
	assert_no_leftovers
}
