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

# proxied_run CMD [PROXY ARGS...]: runs step s (CMD) on host far, reached
# through the fault proxy (tests/ssh/tcp.py) in front of sshd, keepalive 1s,
# in the background (pid in $pid, output in out.txt); returns once the
# command printed a line.
proxied_run() {
	tcp_proxy "$SSH_PORT" "${@:2}"
	cat >"$BATS_TEST_TMPDIR/inv-far.yaml" <<EOF
hosts:
  far: { address: 127.0.0.1, port: $TCP_PORT, user: batontest, identity: "$SSH_KEY" }
EOF
	kh=$(proxy_known_hosts)
	p=$(plan proxied <<EOF
ssh: { known_hosts_file: "$kh", keepalive: 1s, connect_timeout: 30s }
steps:
  - id: s
    on: far
    run: $1
EOF
)
	"$BATON" run "$p" --inventory "$BATS_TEST_TMPDIR/inv-far.yaml" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	SSH_BG_PIDS="$SSH_BG_PIDS $pid"
	# a dozen round trips to connect: through a delay, and on a busy machine, that takes a while
	wait_for_event "$EV" task.output 30
}

# lag: how late (ms) the line holding the remote clock (date +%s%3N) reached
# baton: the link's one-way delay, and a little (one machine, one clock)
lag() {
	ev "$EV" '[int(__import__("datetime").datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=__import__("datetime").timezone.utc).timestamp() * 1000) - int(e["line"]) for e in of("task.output", task="s@far") if e["line"].isdigit()][0]'
}

# lost_at_once FAULT...: the fault mid-command ends the task at once as a lost
# connection, and what ran on the server is ended through a new connection
lost_at_once() {
	proxied_run "echo started; sleep 300.$M; echo finished"
	wait_remote "^sleep 300\\.$M" 1 5
	t0=$(now_ms)
	tcp_ctl "$@"
	wait_pid "$pid" 15
	elapsed=$(($(now_ms) - t0))
	output=$(cat out.txt)
	assert_eq "$WAIT_STATUS" 1 "exit status after '$*'; output: $output"
	assert_le "$elapsed" 4000 "ms from '$*' to the end of the run (the loss is seen at once)"
	assert_eq "$(ev "$EV" 'tend("s@far")["status"]')" failed
	assert_not_contains "$output" "[s@far] finished"
	assert_line_has "$(reason s@far)" '^ssh far \(127\.0\.0\.1:[0-9]+\): ' 'connection lost: the server or the network closed it$' \
		"the reason names the host and the closed connection"
	ssh_harness_wait_gone "^sleep 300\\.$M" 5 || fail "left running on the server after '$*'"
}

@test "fault delay: 1s more latency each way, set mid-command: the task succeeds, later, with all its output" {
	proxied_run "echo started; sleep 1.$M; date +%s%3N; echo finished"
	tcp_ctl delay 1000
	wait_pid "$pid" 30
	assert_eq "$WAIT_STATUS" 0 "exit status with the delay; output: $(cat out.txt)"
	assert_eq "$(ev "$EV" 'tend("s@far")["status"]' 'len(lines("s@far"))' 'lines("s@far")[-1]')" $'success\n3\nfinished'
	assert_ge "$(lag)" 950 "ms the output took to arrive (the delay is 1000 ms)"
	ssh_harness_wait_gone "^sleep 1\\.$M" 5
}

@test "fault delay from the start (a schedule): connecting and running take longer, and succeed" {
	proxied_run "date +%s%3N; echo finished" --schedule "0 delay 300"
	wait_pid "$pid" 30
	assert_eq "$WAIT_STATUS" 0 "exit status with the delay; output: $(cat out.txt)"
	assert_eq "$(ev "$EV" 'tend("s@far")["status"]' 'lines("s@far")[-1]')" $'success\nfinished'
	assert_ge "$(lag)" 280 "ms the output took to arrive (the delay is 300 ms)"
	# the handshake, authentication and the channel are a dozen round trips of 600 ms
	assert_ge "$(ev "$EV" 'tend("s@far")["duration_ms"]')" 3000 "ms for the task, its connection included"
}

@test "fault stall: no byte either way, connection kept open: lost after the keepalive rule (4-5 intervals), exit 1, nothing left on the server" {
	proxied_run "echo started; sleep 300.$M; echo finished"
	wait_remote "^sleep 300\\.$M" 1 5
	t0=$(now_ms)
	tcp_ctl stall
	wait_pid "$pid" 15
	elapsed=$(($(now_ms) - t0))
	output=$(cat out.txt)
	assert_eq "$WAIT_STATUS" 1 "exit status after the stall; output: $output"
	assert_ge "$elapsed" 3000 "ms: declared lost after 3 silent keepalive intervals and a fresh one, not before"
	assert_le "$elapsed" 8000 "ms from the stall to the end of the run"
	assert_eq "$(ev "$EV" 'tend("s@far")["status"]')" failed
	assert_line_has "$(reason s@far)" '^ssh far \(127\.0\.0\.1:[0-9]+\): ' 'connection lost: no answer to keepalives' "the reason"
	ssh_harness_wait_gone "^sleep 300\\.$M" 5 || fail "left running on the server after the stall"
}

@test "fault cut: both sides closed mid-command: lost at once, exit 1, nothing left on the server" {
	lost_at_once cut
}

@test "fault half-close, server to client (baton reads EOF, can still send): lost at once, nothing left on the server" {
	lost_at_once halfclose down
}

@test "fault half-close, client to server (sshd reads EOF): lost at once, nothing left on the server" {
	lost_at_once halfclose up
}

@test "fault cut on a schedule (3s after connecting, mid-command): lost, exit 1, nothing left on the server" {
	proxied_run "echo started; sleep 300.$M; echo finished" --schedule "3 cut"
	wait_pid "$pid" 15
	assert_eq "$WAIT_STATUS" 1 "exit status after the scheduled cut; output: $(cat out.txt)"
	assert_contains "$(reason s@far)" "connection lost"
	ssh_harness_wait_gone "^sleep 300\\.$M" 5 || fail "left running on the server after the scheduled cut"
}
