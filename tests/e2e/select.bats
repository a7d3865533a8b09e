#!/usr/bin/env bats
# --only and --from with task ids (baton(1)): STEP@HOST for a host of an `on:`
# step, STEP#INDEX for an item of a for_each, one part per fan-out from the
# outermost down. Every command touches a marker file named after its task,
# so each test says exactly which commands ran.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

# A for_each of 4 items holding a step and a nested for_each of 2; a step
# before and one after. (No `on:` here: ev_valid checks local runs only; the
# hosts are in hosts_plan.)
nested_plan() {
	plan nested <<'EOF'
steps:
  - id: pre
    run: touch m-pre
  - id: rollout
    for_each: [a, b, c, d]
    steps:
      - id: install
        run: touch m-install-${{ index }}
      - id: inner
        for_each: [x, y]
        run: touch m-inner-${{ steps.install.status }}-${{ item }}
      - id: last
        run: touch m-last-${{ index }}
  - id: post
    run: touch m-post
EOF
}

# The markers present, sorted, on one line.
markers() {
	local f out=()
	for f in m-*; do
		[ -e "$f" ] && out+=("$f")
	done
	printf '%s\n' "${out[*]}"
}

# The task ids that started, in the order they started.
started() { ev "$EV" 'starts()'; }

@test "--only ITEM runs that item of a for_each and what it holds, and skips the others" {
	p=$(nested_plan)
	run b run "$p" --output quiet --events "$EV" --only 'rollout#1'
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'sorted(starts())')" "rollout.inner#1#0 rollout.inner#1#1 rollout.install#1 rollout.last#1"
	assert_eq "$(ev "$EV" 'statuses("pre", "rollout", "rollout#0", "rollout#1", "rollout#2", "rollout#3", "post")')" \
		"skipped success skipped success skipped skipped skipped"
	assert_eq "$(ev "$EV" 'statuses("rollout.install#0", "rollout.inner#0", "rollout.last#3")')" \
		"skipped skipped skipped" "what a skipped item holds ends skipped too"
	assert_eq "$(ev "$EV" 'len(of("step.start", step="rollout#0"))')" 0 "a skipped instance never starts"
	# the counts are of the run's tasks: what --only leaves out is in neither its total nor its counts
	assert_eq "$(ev "$EV" 'E[0]["tasks"]' 'run_end()["counts"]["skipped"]' 'run_end()["counts"]["success"]')" $'4\n0\n4'
	assert_eq "$(markers)" "m-inner-success-x m-inner-success-y m-install-1 m-last-1"
}

@test "--only STEP#INDEX runs one step of one item" {
	p=$(nested_plan)
	run b run "$p" --output quiet --events "$EV" --only 'rollout.install#2'
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(started)" "rollout.install#2"
	assert_eq "$(ev "$EV" 'statuses("rollout#2", "rollout.inner#2", "rollout.last#2")')" "success skipped skipped"
	assert_eq "$(markers)" "m-install-2"
}

@test "a nested id names one index per for_each, outermost first; inner levels may be left out" {
	p=$(nested_plan)
	run b run "$p" --output quiet --events "$EV" --only 'rollout.inner#0#1'
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(started)" "rollout.inner#0#1"
	assert_eq "$(ev "$EV" 'statuses("rollout.inner#0#0", "rollout.install#0", "rollout#1")')" "skipped skipped skipped"
	assert_eq "$(markers)" "m-inner-skipped-y"
	rm -f m-*
	run b run "$p" --output quiet --events "$EV" --only 'rollout.inner#3'
	assert_status 0
	assert_eq "$(ev "$EV" 'sorted(starts())')" "rollout.inner#3#0 rollout.inner#3#1"
}

@test "several --only run their union, and nothing more" {
	p=$(nested_plan)
	run b run "$p" --output quiet --events "$EV" --only 'rollout.install#1' --only 'rollout.inner#2' --only post
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'sorted(starts())')" "post rollout.inner#2#0 rollout.inner#2#1 rollout.install#1"
	assert_eq "$(ev "$EV" 'E[0]["tasks"]' 'of("progress")[-1]["done"]' 'of("progress")[-1]["total"]')" $'4\n4\n4'
	assert_eq "$(markers)" "m-inner-skipped-x m-inner-skipped-y m-install-1 m-post"
}

@test "--from ITEM skips the steps before the for_each and the items before it" {
	p=$(nested_plan)
	run b run "$p" --output quiet --events "$EV" --from 'rollout#2'
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("pre", "rollout#0", "rollout#1", "rollout#2", "rollout#3", "post")')" \
		"skipped skipped skipped success success success"
	assert_eq "$(ev "$EV" 'E[0]["tasks"]')" 9
	assert_eq "$(markers)" "m-inner-success-x m-inner-success-y m-install-2 m-install-3 m-last-2 m-last-3 m-post"
}

@test "--from a step in an item skips what comes before it there; the later items run whole" {
	p=$(nested_plan)
	run b run "$p" --output quiet --events "$EV" --from 'rollout.inner#1#1'
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'sorted(starts())')" "post rollout.inner#1#1 rollout.inner#2#0 rollout.inner#2#1 rollout.inner#3#0 rollout.inner#3#1 rollout.install#2 rollout.install#3 rollout.last#1 rollout.last#2 rollout.last#3"
	assert_eq "$(ev "$EV" 'statuses("rollout.install#1", "rollout.inner#1#0", "rollout#0")')" "skipped skipped skipped"
	assert_eq "$(ev "$EV" 'E[0]["tasks"]')" 11
}

@test "--only and --from together run the union of both" {
	p=$(nested_plan)
	run b run "$p" --output quiet --events "$EV" --only pre --from 'rollout.last#3'
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'sorted(starts())')" "post pre rollout.last#3"
}

# Three hosts of an `on:` step: two in the inventory on a closed port (any
# attempt to reach them fails at once) and this machine, last in host order.
hosts_plan() {
	plan hosts <<'EOF'
inventory:
  hosts:
    web1: { address: 127.0.0.1, port: 1 }
    web2: { address: 127.0.0.1, port: 1 }
ssh: { connect_timeout: 2s, known_hosts: off }
steps:
  - id: deploy
    on: [localhost, web1, web2]
    mode: settle
    run: touch m-deploy-$BATON_HOST
  - id: push
    on: [web1, localhost]
    for_each: [u, v, w]
    run: touch m-push-$BATON_HOST-${{ item }}
  - id: wave
    for_each: [1, 2]
    steps:
      - id: ping
        on: [web2, localhost]
        run: touch m-ping-$BATON_HOST-${{ item }}
EOF
}

@test "--only STEP@HOST runs on that host alone: the other hosts are never contacted" {
	p=$(hosts_plan)
	run b run "$p" --output quiet --events "$EV" --only deploy@localhost
	assert_status 0
	assert_eq "$(started)" "deploy@localhost"
	assert_eq "$(ev "$EV" 'statuses("deploy", "deploy@web1", "deploy@web2", "push", "wave")')" "success skipped skipped skipped skipped"
	assert_eq "$(markers)" "m-deploy-localhost"
	# a remote host selected is contacted, and the local one is not run
	run b run "$p" --output plain --events "$EV" --only deploy@web2
	assert_status 1
	assert_eq "$(started)" "deploy@web2"
	assert_contains "$output" "deploy@web2"
	assert_eq "$(ev "$EV" 'statuses("deploy@web1", "deploy@localhost")')" "skipped skipped"
}

@test "an on: step inside a for_each: STEP#INDEX@HOST" {
	p=$(hosts_plan)
	run b run "$p" --output quiet --events "$EV" --only 'wave.ping#1@localhost'
	assert_status 0
	assert_eq "$(started)" "wave.ping#1@localhost"
	assert_eq "$(ev "$EV" 'statuses("wave#0", "wave#1", "wave.ping#1@web2")')" "skipped success skipped"
	assert_eq "$(markers)" "m-ping-localhost-2"
	run b run "$p" --only 'wave.ping@localhost'
	assert_status 2
	assert_contains "$output" "the ids of wave.ping's instances have the form wave.ping#INDEX@HOST"
}

@test "--from STEP@HOST skips the hosts before it in the step's host order (the inventory's)" {
	p=$(hosts_plan)
	# inventory order: web1, web2, then localhost (added when an on: names it)
	run b run "$p" --output quiet --events "$EV" --from deploy@web2
	assert_status 1
	assert_eq "$(ev "$EV" 'sorted(starts())')" "deploy@localhost deploy@web2"
	assert_eq "$(ev "$EV" 'statuses("deploy@web1", "deploy@web2", "deploy@localhost")')" "skipped failed success"
	assert_eq "$(markers)" "m-deploy-localhost"
	rm -f m-*
	# the steps after it run whole: wave reaches web2 and fails the run
	run b run "$p" --output quiet --events "$EV" --from 'push@localhost#2'
	assert_status 1
	assert_eq "$(ev "$EV" '[t for t in starts() if t.startswith("push")]')" "push@localhost#2"
	assert_eq "$(ev "$EV" 'statuses("deploy", "push@web1#2", "push@localhost#1", "push@localhost#2")')" \
		"skipped skipped skipped success"
	assert_eq "$(ev "$EV" 'status("wave")')" failed
}

@test "a step with both on: and for_each: takes @HOST#INDEX, @HOST alone, or #INDEX on every host" {
	p=$(hosts_plan)
	run b run "$p" --output quiet --events "$EV" --only 'push@localhost#1'
	assert_status 0
	assert_eq "$(started)" "push@localhost#1"
	assert_eq "$(markers)" "m-push-localhost-v"
	rm -f m-*
	run b run "$p" --output quiet --events "$EV" --only 'push@localhost'
	assert_status 0
	assert_eq "$(markers)" "m-push-localhost-u m-push-localhost-v m-push-localhost-w"
	rm -f m-*
	run b run "$p" --output quiet --events "$EV" --only 'push#2' --only 'push@localhost#0'
	assert_status 1
	assert_eq "$(ev "$EV" 'sorted(starts())')" "push@localhost#0 push@localhost#2 push@web1#2"
	assert_eq "$(ev "$EV" 'statuses("push@web1#0", "push@localhost#1")')" "skipped skipped"
}

@test "an index past a known list, an unknown host or a malformed id is an error naming what exists (exit 2)" {
	p=$(nested_plan)
	run b run "$p" --only 'rollout#4'
	assert_status 2
	assert_contains "$output" "--only rollout#4: rollout has items #0..#3; there is no #4"
	run b run "$p" --from 'rollout.inner#0#2'
	assert_status 2
	assert_contains "$output" "--from rollout.inner#0#2: rollout.inner has items #0..#1; there is no #2"
	run b run "$p" --only 'rollout@web1'
	assert_status 2
	assert_contains "$output" "the ids of rollout's instances have the form rollout#INDEX"
	run b run "$p" --only 'pre#0'
	assert_status 2
	assert_contains "$output" "pre is inside no for_each or on: step"
	run b plan "$p" --only 'rolout#1'
	assert_status 2
	assert_contains "$output" "no step with the full id 'rolout'; did you mean 'rollout#1'?"
	p2=$(hosts_plan)
	run b run "$p2" --only deploy@web3 --only 'push#3'
	assert_status 2
	assert_contains "$output" "--only deploy@web3: deploy does not run on web3; its hosts: web1, web2, localhost"
	assert_contains "$output" "--only push#3: push has items #0..#2; there is no #3"
	run b run "$p2" --only 'wave.ping#0@web1'
	assert_status 2
	assert_contains "$output" "wave.ping does not run on web1; its hosts: web2, localhost"
	assert_eq "$(markers)" ""
}

@test "a list known only at run time is selected when it is made; an index past its end fails the for_each" {
	p=$(plan dyn <<'EOF'
steps:
  - id: gen
    run: printf 'a\nb\nc\n'
  - id: big
    for_each: ${{ steps.gen.stdout_lines }}
    run: touch m-big-${{ item }}
  - id: post
    run: touch m-post
EOF
)
	run b run "$p" --output quiet --events "$EV" --only gen --only 'big#1'
	assert_status 0
	assert_eq "$(ev "$EV" 'statuses("big#0", "big#1", "big#2", "post")')" "skipped success skipped skipped"
	assert_eq "$(ev "$EV" 'of("progress")[-1]["done"]' 'of("progress")[-1]["total"]')" $'2\n2'
	assert_eq "$(markers)" "m-big-b"
	rm -f m-*
	run b run "$p" --output plain --events "$EV" --only gen --only 'big#5'
	assert_status 1
	assert_contains "$output" "big: for_each: --only big#5: the list has items #0..#2; there is no #5"
	assert_eq "$(ev "$EV" 'status("big")')" failed
	assert_eq "$(markers)" ""
	run b plan "$p" --only gen --only 'big#5'
	assert_status 0
	assert_contains "$output" "selected: the items --only big#5 names (the others are skipped)"
}

@test "batches, min_success and max_failures count only the instances that run" {
	p=$(plan batches <<'EOF'
steps:
  - id: roll
    for_each: [a, b, c, d, e, f]
    batch: { size: 3, pause: 30s }
    run: touch m-roll-${{ item }}
  - id: quorum
    for_each: [ok, bad, bad, bad]
    min_success: 3
    run: touch m-quorum-${{ index }}; test ${{ item }} = ok
  - id: tol
    for_each: [ok, bad, bad, ok, ok, ok]
    batch: { size: 6, max_failures: "50%" }
    run: test ${{ item }} = ok
EOF
)
	# the 3 selected items make one batch: batches of all 6 would pause 30 s, past the test's timeout
	run b run "$p" --output quiet --events "$EV" --only 'roll#1' --only 'roll#4' --only 'roll#5'
	assert_status 0
	assert_eq "$(ev "$EV" '[",".join(map(str, e["instances"])) for e in of("batch.start")]')" "1,4,5"
	assert_eq "$(markers)" "m-roll-b m-roll-e m-roll-f"
	rm -f m-*
	# one item selected: min_success 3 asks for that one
	run b run "$p" --output quiet --events "$EV" --only 'quorum#0'
	assert_status 0
	assert_eq "$(ev "$EV" 'status("quorum")')" success
	run b run "$p" --output quiet --events "$EV" --only 'quorum#0' --only 'quorum#1'
	assert_status 1
	assert_eq "$(ev "$EV" 'one("step.end", step="quorum")["reason"]')" "1 of 2 succeeded, min_success needs 2"
	# 50% of the 2 selected tolerates one failure, not the 3 of all six
	run b run "$p" --output quiet --events "$EV" --only 'tol#1' --only 'tol#2'
	assert_status 1
	assert_eq "$(ev "$EV" 'status("tol")')" failed
	run b run "$p" --output quiet --events "$EV" --only 'tol#1' --only 'tol#3'
	assert_status 0
}

@test "the dry run marks the items and hosts left out, and counts only the tasks that run" {
	p=$(nested_plan)
	run b plan "$p" --only 'rollout.install#1' --only 'rollout.install#3'
	assert_status 0
	assert_match "$output" '^  2 tasks, '
	assert_contains "$output" "for_each: 4 items: a (skipped), b, c (skipped), d"
	assert_match "$output" 'rollout\.inner .*\(skipped: not selected\)'
	assert_match "$output" 'rollout\.install +\[run\]$'
	p2=$(hosts_plan)
	run b run --dry-run "$p2" --only deploy@web2 --events "$EV"
	assert_status 0
	assert_match "$output" ' web1 \([^)]*\) \(skipped\), web2 \([^)]*\), localhost \(local\) \(skipped\)$'
	assert_eq "$(ev "$EV" 'E[0]["tasks"]')" 1
	assert_eq "$(markers)" ""
}

@test "ASan: selections by instance run and preview with no sanitizer report" {
	p=$(nested_plan)
	run b_asan run "$p" --output plain --only 'rollout.install#1' --only 'rollout.inner#2' --from 'rollout.last#3'
	assert_status 0
	assert_not_contains "$output" "ERROR: AddressSanitizer"
	assert_not_contains "$output" "runtime error"
	run b_asan plan "$p" --from 'rollout.inner#1#1'
	assert_status 0
	assert_not_contains "$output" "Sanitizer"
	run b_asan run "$p" --only 'rollout#9' --only nope
	assert_status 2
	assert_not_contains "$output" "Sanitizer"
}
