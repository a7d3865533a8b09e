#!/usr/bin/env bats
# The fault suite, descriptor part over SSH: more hosts than the
# file-descriptor limit allows connections for. Connections wait for
# descriptors (they do not fail), idle ones close to make room, and the
# limit is said once. Against a real sshd on loopback; needs root.

bats_require_minimum_version 1.5.0
load helpers
load ssh_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; }
teardown() { ssh_teardown; }

@test "under ulimit -n 64, 60 hosts at once all succeed: connections wait their turn and idle ones make room" {
	ssh_harness_inventory "$BATS_TEST_TMPDIR/inv60.yaml" 60
	p=$(plan sixty <<EOF
concurrency: 100
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS", max_sessions: 1 }
steps:
  - id: s
    on: fleet
    run: echo "up \${{ host.name }}"; sleep 0.3 # $M
  - id: again
    on: fleet
    run: echo "again \${{ host.name }}"
EOF
)
	run --separate-stderr bash -c 'ulimit -n 64 && exec "$@"' _ "$BATON" run "$p" --inventory "$BATS_TEST_TMPDIR/inv60.yaml" \
		--output plain --events "$EV"
	assert_status 0
	assert_not_contains "$output$stderr" "Too many open files"
	assert_eq "$(ev "$EV" 'len([e for e in of("task.end") if e["status"] == "success"])')" 120 "successful tasks"
	for i in 1 30 60; do
		assert_contains "$output" "[s@h$i] up h$i"
		assert_contains "$output" "[again@h$i] again h$i"
	done
	assert_eq "$(ev "$EV" 'len(of("warning"))')" 1 "warnings: the limit, said once"
	assert_contains "$stderr" "the file-descriptor limit (64; hard limit 64)"
	# never more connections at once than the budget allows (64 less the reserve, 2 each)
	assert_le "$(ev "$EV" 'inflight()')" 16 "tasks in flight at once"
	ssh_ev_check "$EV"
	ssh_harness_wait_gone "$M" 5
}
