#!/usr/bin/env bats
# Limits and scheduling: concurrency, -j, max_concurrency, semaphores,
# priority, and sleep holding no slot. Checked from the event stream.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

eight_sleeps='["sleep 0.25", "sleep 0.25", "sleep 0.25", "sleep 0.25", "sleep 0.25", "sleep 0.25", "sleep 0.25", "sleep 0.25"]'

@test "the plan's concurrency bounds the tasks in flight" {
	p=$(plan conc <<EOF
concurrency: 3
steps:
  - parallel: $eight_sleeps
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'inflight()')" 3
	assert_eq "$(ev "$EV" 'len(of("task.end", status="success"))')" 8
}

@test "-j overrides the plan's concurrency, both lower and higher" {
	p=$(plan conc <<EOF
concurrency: 3
steps:
  - parallel: $eight_sleeps
EOF
)
	run b run "$p" --output quiet --events "$EV" -j 2
	assert_status 0
	assert_eq "$(ev "$EV" 'inflight()')" 2
	run b run "$p" --output quiet --events "$EV" -j 8
	assert_status 0
	assert_eq "$(ev "$EV" 'inflight()')" 8
	p=$(plan three <<<'steps: [{parallel: ["sleep 0.1", "sleep 0.1", "sleep 0.1"]}]')
	run b run "$p" --output quiet --events "$EV" --jobs 1
	assert_status 0
	assert_eq "$(ev "$EV" 'inflight()')" 1
}

@test "without concurrency or -j at least 4 tasks run at once" {
	p=$(plan conc <<EOF
steps:
  - parallel: $eight_sleeps
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_ge "$(ev "$EV" 'inflight()')" 4 "tasks in flight by default"
}

@test "max_concurrency limits a group's subtree under a larger global limit" {
	p=$(plan maxc <<'EOF'
concurrency: 10
steps:
  - parallel:
      - id: g
        max_concurrency: 2
        parallel:
          - "sleep 0.1"
          - "sleep 0.1"
          - steps: ["sleep 0.1", "sleep 0.1"]
          - parallel: ["sleep 0.1", "sleep 0.1"]
      - id: free
        parallel: ["sleep 0.2", "sleep 0.2", "sleep 0.2"]
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'inflight("parallel-1.g.")')" 2 "tasks in flight inside g"
	assert_ge "$(ev "$EV" 'inflight()')" 4 "tasks in flight overall"
}

@test "a semaphore of capacity 1 never has two holders at once" {
	p=$(plan sem <<'EOF'
semaphores: { lock: 1, pair: 2 }
steps:
  - parallel:
      - { id: a, run: "sleep 0.1", semaphore: lock }
      - { id: b, run: "sleep 0.1", semaphore: lock }
      - { id: c, run: "sleep 0.1", semaphore: [lock, pair] }
      - { id: free, run: "sleep 0.3" }
      - id: grp
        semaphore: lock
        parallel: ["sleep 0.1", "sleep 0.1"]
      - id: pairs
        semaphore: pair
        parallel: ["sleep 0.1", "sleep 0.1", "sleep 0.1", "sleep 0.1"]
EOF
)
	run b run "$p" --output quiet --events "$EV" -j 4
	assert_status 0
	ev_valid "$EV"
	run ev "$EV" '
(lambda holders: max(
    sum(1 for e in E[:i+1] if e["type"] == "task.start" and e["task"] in holders)
  - sum(1 for e in E[:i+1] if e["type"] == "task.end" and e["task"] in holders)
  for i in range(len(E))))(
    {"parallel-1.a", "parallel-1.b", "parallel-1.c", "parallel-1.grp.run-1", "parallel-1.grp.run-2"})'
	assert_eq "$output" 1 "holders of 'lock' at once"
	run ev "$EV" '
(lambda holders: max(
    sum(1 for e in E[:i+1] if e["type"] == "task.start" and (e["task"] in holders or e["task"].startswith("parallel-1.pairs.")))
  - sum(1 for e in E[:i+1] if e["type"] == "task.end" and (e["task"] in holders or e["task"].startswith("parallel-1.pairs.")))
  for i in range(len(E))))({"parallel-1.c"})'
	assert_eq "$output" 2 "holders of 'pair' at once"
	# a task that needs no semaphore is not held up by them
	assert_contains "$(ev "$EV" 'starts()[:4]')" "parallel-1.free"
}

@test "fail-fast cancels a task parked on a semaphore: it ends cancelled and never runs its command" {
	# holder takes 'lock' first (plan order), parked waits for it, fails
	# fails at once: the cancel must reach parked where it waits, not only
	# the running holder, or parked gets the lock when holder is killed
	p=$(plan parked <<EOF
semaphores: { lock: 1 }
steps:
  - parallel:
      - { id: holder, run: "sleep 30.$E2E_MARK", semaphore: lock }
      - { id: parked, run: "touch '$E2E_TMP/parked-ran'", semaphore: lock }
      - { id: fails, run: "exit 1" }
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'starts()')" "parallel-1.holder parallel-1.fails" "the tasks that started"
	assert_eq "$(ev "$EV" 'statuses("parallel-1.holder", "parallel-1.parked", "parallel-1.fails", "parallel-1")')" \
		"cancelled cancelled failed failed"
	assert_eq "$(ev "$EV" 'seq("task.end", task="parallel-1.fails") < seq("step.end", step="parallel-1.parked")')" true
	assert_eq "$(ev "$EV" 'tend("parallel-1.holder")["status"]')" cancelled
	assert_file_absent "$E2E_TMP/parked-ran" "the parked task ran its command after the fail-fast"
	assert_no_leftovers
}

@test "with -j 1 the highest priority starts first; ties keep plan order" {
	p=$(plan prio <<'EOF'
steps:
  - parallel:
      - { id: low, run: "true" }
      - { id: tie-a, run: "true", priority: 5 }
      - { id: high, run: "true", priority: 10 }
      - { id: tie-b, run: "true", priority: 5 }
      - { id: negative, run: "true", priority: -1 }
      - id: grp
        priority: 7
        parallel: ["true", "true"]
      - { id: plain, run: "true" }
EOF
)
	run b run "$p" --output quiet --events "$EV" -j 1
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[t.split(".", 1)[1] for t in starts()]')" \
		"high grp.run-1 grp.run-2 tie-a tie-b low plain negative"
}

@test "priority orders tasks that wait while the slot is busy" {
	p=$(plan prio-wait <<'EOF'
steps:
  - parallel:
      - { id: first, run: "sleep 0.2", priority: 100 }
      - { id: later-low, run: "true" }
      - { id: later-high, run: "true", priority: 50 }
EOF
)
	run b run "$p" --output quiet --events "$EV" -j 1
	assert_status 0
	assert_eq "$(ev "$EV" 'starts()')" "parallel-1.first parallel-1.later-high parallel-1.later-low"
}

@test "sleep holds no concurrency slot (with -j 1 a parallel run step is not delayed)" {
	p=$(plan sleepslot <<'EOF'
steps:
  - parallel:
      - sleep: 1500ms
      - { id: quick, run: "echo quick" }
      - sleep: 1500ms
EOF
)
	run b run "$p" --output quiet --events "$EV" -j 1
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'seq("task.end", task="parallel-1.quick") < seq("step.end", step="parallel-1.sleep-1")')" true
	assert_le "$(ev "$EV" 'ms(one("task.end", task="parallel-1.quick")) - ms(E[0])')" 1000 "ms before the run step ended"
	assert_ge "$(ev "$EV" 'one("step.end", step="parallel-1.sleep-1")["duration_ms"]')" 1450 "the sleep's duration"
	assert_eq "$(ev "$EV" 'len(of("task.start"))')" 1 "a sleep is not a task"
}

@test "sleep in a sequence delays the next step by its duration" {
	p=$(plan sleepseq <<'EOF'
steps:
  - id: a
    run: "true"
  - sleep: 300ms
  - id: b
    run: "true"
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_ge "$(ev "$EV" 'ms(one("task.start", task="b")) - ms(one("task.end", task="a"))')" 290 "ms between a and b"
	assert_eq "$(ev "$EV" 'one("step.end", step="sleep-2")["kind"]')" sleep
}

@test "many short tasks complete under a small limit without losing any" {
	{
		echo 'steps:'
		echo '  - id: many'
		echo '    parallel:'
		for i in $(seq 300); do echo "      - echo line-$i"; done
	} >many.yaml
	run b run many.yaml --output quiet --events "$EV" -j 4
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'len(of("task.end", status="success"))' 'len(of("task.output"))' 'inflight()')" $'300\n300\n4'
}

@test "a task waiting for several limits holds none of them while it waits" {
	# holds-a keeps a until the event stream shows that needs-b and free ran
	# and ended (at most 5 s, then it fails): they can only if needs-both,
	# waiting for a, took neither b nor one of the 3 slots meanwhile
	p=$(plan allornone <<'EOF2'
semaphores: { a: 1, b: 1 }
steps:
  - parallel:
      - id: holds-a
        semaphore: a
        run: |
          i=0
          until grep -q '"type":"task.end","task":"parallel-1.needs-b"' "$E2E_TMP/events.jsonl" &&
            grep -q '"type":"task.end","task":"parallel-1.free"' "$E2E_TMP/events.jsonl"; do
            i=$((i + 1)); [ $i -lt 250 ] || exit 99; sleep 0.02
          done
      - { id: needs-both, run: "true", semaphore: [a, b] }
      - { id: needs-b, run: "true", semaphore: b }
      - { id: free, run: "true" }
EOF2
)
	run b run "$p" --output quiet --events "$EV" -j 3
	assert_status 0
	ev_valid "$EV"
	# needs-b and free run while needs-both waits for a: it took neither b
	# nor a global slot
	assert_eq "$(ev "$EV" 'seq("task.end", task="parallel-1.needs-b") < seq("task.end", task="parallel-1.holds-a")')" true
	assert_eq "$(ev "$EV" 'seq("task.end", task="parallel-1.free") < seq("task.end", task="parallel-1.holds-a")')" true
	assert_eq "$(ev "$EV" 'seq("task.start", task="parallel-1.needs-both") > seq("task.end", task="parallel-1.holds-a")')" true
}
