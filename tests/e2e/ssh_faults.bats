#!/usr/bin/env bats
# Faults injected into SSH connections mid-command, through a TCP proxy in
# front of the test sshd (tests/ssh/tcp.py: delay, stall, cut, half-close),
# and baton itself stopped (SIGSTOP) longer than the keepalive rule allows.
# Each asserts the outcome baton-plan(5) documents and that nothing of the
# commands is left running on the server. Against a real sshd on loopback
# (tests/ssh/harness.sh); needs root.

bats_require_minimum_version 1.5.0
load helpers
load ssh_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; }
teardown() { ssh_teardown; }

@test "baton stopped (SIGSTOP) for 5 keepalive intervals, then continued: the remote commands finish and succeed" {
	p=$(plan stopped <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS", keepalive: 1s }
steps:
  - id: s
    on: [h1, h2]
    run: |
      echo started
      if [ "\${{ host.name }}" = h1 ]; then sleep 2.$M; else sleep 7.$M; fi
      echo finished
EOF
)
	# baton itself (not under timeout(1)): it is the process stopped; wait_pid bounds it
	"$BATON" run "$p" --inventory "$INV" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	SSH_BG_PIDS="$SSH_BG_PIDS $pid"
	wait_remote "^sleep [27]\\.$M" 2 10
	kill -STOP "$pid"
	sleep 5 # h1's command ends meanwhile; h2's runs on
	kill -CONT "$pid"
	wait_pid "$pid" 15
	assert_eq "$WAIT_STATUS" 0 "exit status after SIGSTOP/SIGCONT; output: $(cat out.txt)"
	assert_eq "$(ev "$EV" 'tend("s@h1")["status"]' 'tend("s@h2")["status"]')" $'success\nsuccess'
	assert_contains "$(cat out.txt)" "[s@h1] finished"
	assert_contains "$(cat out.txt)" "[s@h2] finished"
	ssh_ev_check "$EV"
}
