#!/usr/bin/env bats
# A server whose MaxSessions is as low as baton's max_sessions: the session
# baton opens to signal a command may be refused at first, and must not be lost.
# Against a real sshd on loopback (tests/ssh/harness.sh); needs root.

bats_require_minimum_version 1.5.0
load helpers
load ssh_helpers

setup_file() { SSH_HARNESS_MAX_SESSIONS=2 ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; }
teardown() { ssh_teardown; }

@test "MaxSessions 2 and max_sessions 2: a timed-out command's kill, refused while both sessions are busy, goes once one ends" {
	cat >"$BATS_TEST_TMPDIR/inv.yaml" <<EOF
hosts:
$(host_line h1 'max_sessions: 2')
EOF
	p=$(plan busy <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: p
    on: h1
    mode: settle
    parallel:
      - id: stuck
        timeout: 1s
        run: sleep 300.$M
      - id: short
        run: sleep 2.$M
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv.yaml" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("p.stuck@h1")["status"]' 'tend("p.short@h1")["status"]')" $'timeout\nsuccess'
	# SIGTERM went when `short` freed its session (about 2 s), not SIGKILL after kill_grace (5 s)
	assert_le "$elapsed" 4500 "ms for the run"
	ssh_harness_wait_gone "^sleep 300\\.$M" 5 || fail "left running: $(ssh_harness_list "^sleep 300\\.$M")"
}

@test "MaxSessions 2 and max_sessions 2: baton's own shell gives its session to the commands, and without it a task's group is still ended and a held output still bounded" {
	cat >"$BATS_TEST_TMPDIR/inv.yaml" <<EOF
hosts:
$(host_line h1 'max_sessions: 2')
EOF
	p=$(plan noshell <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - { id: first, on: h1, run: "sleep 0.5" }
  - id: both
    on: h1
    parallel:
      - { id: a, run: "sleep 1.$M" }
      - { id: b, run: "sleep 1.$M" }
  - id: nohup
    on: h1
    run: nohup sleep 356.$M >/dev/null 2>&1 & echo started
  - id: holder
    on: h1
    kill_grace: 1s
    run: (sleep 0.3; echo late; sleep 357.$M) & echo early
EOF
)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv.yaml" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" '[tend(t)["status"] for t in ("both.a@h1", "both.b@h1", "nohup@h1", "holder@h1")]')" \
		"success success success success" "two commands at once on a server with room for two"
	assert_eq "$(ev "$EV" 'lines("holder@h1")')" "early late"
	assert_le "$(ev "$EV" 'tend("holder@h1")["duration_ms"]')" 8000 "ms: the held output is bounded by kill_grace"
	assert_eq "$(ssh_harness_count "^sleep 35[67]\\.$M")" 0 "left running: $(ssh_harness_list "^sleep 35[67]\\.$M")"
}
