#!/usr/bin/env bats
# When a remote task ends, nothing of its process group is left on the host,
# as on this machine (tests/e2e/timeouts.bats): a background process is
# killed before the task is reported done, and one that holds the output
# open cannot hold the task past kill_grace. Against a real sshd on loopback
# (tests/ssh/harness.sh); needs root.

bats_require_minimum_version 1.5.0
load helpers
load ssh_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; }
teardown() { ssh_teardown; }

@test "a remote task that exits leaves nothing of its process group behind: a nohup'd background process is killed before the task ends" {
	p=$(plan nohup <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: starter
    on: h1
    run: nohup sleep 351.$M >/dev/null 2>&1 & echo started
  - id: after
    on: h1
    run: pgrep -c -u batontest -f '^sleep 351\\.$M' || true
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'tend("starter@h1")["status"]' 'lines("starter@h1")' 'lines("after@h1")')" $'success\nstarted\n0' \
		"the next step on the host found the background process gone"
	assert_eq "$(ssh_harness_count "^sleep 351\\.$M")" 0 "left running: $(ssh_harness_list "^sleep 351\\.$M")"
}

@test "a remote background process that keeps the output open: late output within kill_grace is kept, then its group is killed and the task ends" {
	p=$(plan holder <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - { id: connect, on: h1, run: "true" }
  - id: holder
    on: h1
    kill_grace: 1s
    run: (sleep 0.3; echo late; sleep 352.$M) & echo early
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'tend("holder@h1")["status"]' 'lines("holder@h1")')" $'success\nearly late'
	d=$(ev "$EV" 'tend("holder@h1")["duration_ms"]')
	assert_ge "$d" 950 "ms: the output was kept open for kill_grace (1s)"
	assert_le "$d" 8000 "ms: kill_grace 1s, at most 1s to notice the exit, then the group is killed (not 352s)"
	assert_eq "$(ssh_harness_count "^sleep 352\\.$M")" 0 "left running: $(ssh_harness_list "^sleep 352\\.$M")"
}

@test "a remote timeout: a background process that ignores SIGTERM and does not hold the output is killed when the task ends" {
	p=$(plan stubborn-bg <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - { id: connect, on: h1, run: "true" }
  - id: s
    on: h1
    timeout: 1s
    kill_grace: 10s
    run: (trap '' TERM; exec sleep 353.$M) >/dev/null 2>&1 & sleep 354.$M
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("s@h1")["status"]')" timeout
	assert_le "$(ev "$EV" 'tend("s@h1")["duration_ms"]')" 8000 "ms: the task ended at SIGTERM, not after kill_grace (10s)"
	assert_eq "$(ssh_harness_count "^sleep 35[34]\\.$M")" 0 "left running: $(ssh_harness_list "^sleep 35[34]\\.$M")"
}

@test "ordinary remote tasks: exit codes, signals and output are what the command gave, with the cleanup in place" {
	p=$(plan ordinary <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: h1
    mode: settle
    parallel:
      - { id: zero, run: "echo out; echo err >&2" }
      - { id: three, run: "exit 3" }
      - { id: killed, run: "kill -KILL \$\$" }
      - { id: closed, run: "exec >&- 2>&-; sleep 0.3; exit 4" }
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" '[tend("s.%s@h1" % t)[k] for t in ("zero", "three", "killed", "closed") for k in ("exit_code", "signal")]')" \
		"0 null 3 null null 9 4 null"
}

@test "a remote process that left the group (setsid) and holds the output: the task ends kill_grace + 2s after the command, with its status" {
	p=$(plan setsid <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - { id: connect, on: h1, run: "true" }
  - id: escapee
    on: h1
    kill_grace: 1s
    run: setsid sleep 355.$M & echo started; exit 3
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("escapee@h1")["exit_code"]' 'lines("escapee@h1")')" $'3\nstarted'
	d=$(ev "$EV" 'tend("escapee@h1")["duration_ms"]')
	assert_ge "$d" 950 "ms: kill_grace (1s) after the exit"
	assert_le "$d" 8000 "ms: then the group is killed and, the output still held outside it, the wait ends"
}
