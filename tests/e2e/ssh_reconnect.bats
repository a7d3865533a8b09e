#!/usr/bin/env bats
# Connection resilience: a connection the server closed while it sat idle
# between two steps is opened again, transparently (a warning says so);
# one lost while a command ran still fails that task (ssh_failures.bats).
# An ssh-agent that never answers is given up after 10s, on a worker thread:
# the loop, and the other tasks' timeouts, go on meanwhile.
# Against a real sshd on loopback (tests/ssh/harness.sh); needs root.

bats_require_minimum_version 1.5.0
load helpers
load ssh_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; }
teardown() { ssh_teardown; }

# A local shell command that ends every session of the test sshd (its
# per-connection processes, children of the listener, which stays): the
# server side of a restart, for every connection baton holds.
# shellcheck disable=SC2016 # expanded by the plan's shell
CUT='for p in $(pgrep -P '"$SSH_PID"'); do pkill -KILL -P $p || true; kill -KILL $p 2>/dev/null || true; done; i=0; while pgrep -P '"$SSH_PID"' >/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; true'

accepted() { grep -c "Accepted publickey for $SSH_USER" "$SSH_LOG" || true; }

@test "an idle connection the server closed between two steps is opened again: the run succeeds, a warning says so" {
	p=$(plan idle-closed <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: first
    on: fleet
    run: "true"
  - id: cut
    run: '$CUT; sleep 0.3'
  - id: again
    on: fleet
    run: echo ok
EOF
)
	before=$(accepted)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	ssh_ev_check "$EV"
	for h in h1 h2 h3; do
		assert_eq "$(ev "$EV" "tend('first@$h')['status']")" success
		assert_eq "$(ev "$EV" "tend('again@$h')['status']")" success
		assert_eq "$(ev "$EV" "tend('again@$h')['attempt']")" 1 "no retry was needed"
		assert_contains "$output" "[again@$h] ok"
		assert_eq "$(grep -c "warning: ssh $h: the server had closed the idle connection; connected again" <<<"$stderr")" 1 \
			"one warning for $h in: $stderr"
		assert_eq "$(ev "$EV" "len([e for e in of('warning') if 'ssh $h: the server had closed the idle' in e['message']])")" 1 \
			"one warning event for $h"
	done
	# three connections, then three new ones
	assert_eq "$(($(accepted) - before))" 6 "logins on the server"
}

@test "baton stopped while the server closes its idle connections: the next step's channel open finds out, and connects again" {
	# baton does not see the close while idle (it is stopped): once it runs
	# again, the next step's commands are usually already waiting for their
	# channels when it finds the connections dead, and are moved to new ones
	p=$(plan stopped <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: first
    on: fleet
    run: "true"
  - id: cut
    run: 'b=\$PPID; ( sleep 0.3; $CUT; sleep 0.3; kill -CONT \$b ) >/dev/null 2>&1 & kill -STOP \$b'
  - id: again
    on: fleet
    run: echo ok
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	for h in h1 h2 h3; do
		assert_eq "$(ev "$EV" "tend('again@$h')['status']")" success
		assert_contains "$output" "[again@$h] ok"
	done
	assert_eq "$(grep -c "the server had closed the idle connection; connected again" <<<"$stderr")" 3 "warnings in: $stderr"
}

@test "a connection closed while a command runs is not opened again for it: that task fails with connection lost" {
	p=$(plan mid-command <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: h1
    run: echo started; sleep 300.$M
EOF
)
	sb run "$p" --inventory "$INV" --output plain --events "$EV" >out.txt 2>err.txt 3>&- &
	pid=$!
	SSH_BG_PIDS="$SSH_BG_PIDS $pid"
	wait_remote "^sleep 300\\.$M" 1 10
	before=$(accepted)
	eval "$CUT"
	wait_pid "$pid" 15
	output=$(cat out.txt) stderr=$(cat err.txt)
	assert_eq "$WAIT_STATUS" 1 "exit status"
	assert_eq "$(ev "$EV" 'tend("s@h1")["status"]')" failed
	assert_line_has "$(all_text)" 'h1' 'connection lost' "the error names the host and the lost connection"
	assert_not_contains "$stderr" "connected again"
	# at most one login after the cut: the one that ends what was left running, never a second run
	assert_le "$(($(accepted) - before))" 1 "logins after the cut"
}

# stuck_agent: an ssh-agent socket that accepts and never answers; sets SSH_AUTH_SOCK.
stuck_agent() {
	export SSH_AUTH_SOCK="$BATS_TEST_TMPDIR/stuck.sock"
	bg "$E2E_PY" -S -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(64)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$SSH_AUTH_SOCK"
	for _ in $(seq 100); do [ -S "$SSH_AUTH_SOCK" ] && return 0; sleep 0.05; done
	fail "the fake agent did not start"
}

# h1 with the harness's key, h2 with none (and no default key in the empty HOME)
agent_inventory() {
	cat >"$BATS_TEST_TMPDIR/inv-agent.yaml" <<EOF
hosts:
$(host_line h1)
    h2: { address: 127.0.0.1, port: $SSH_PORT, user: $SSH_USER }
$(host_line h3)
EOF
}

@test "an ssh-agent that never answers: given up after 10s without blocking the loop; the identity files are tried next, and later logins skip it" {
	stuck_agent
	agent_inventory
	p=$(plan stuck-agent <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS", connect_timeout: 30s }
steps:
  - parallel:
      - id: remote
        on: [h1, h2]
        run: echo remote ok
        mode: settle
      - id: ticker
        run: sleep 20
        timeout: 1s
    mode: settle
    continue_on_error: true
  - id: later
    on: h3
    run: echo later ok
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv-agent.yaml" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 0
	# the local task's timeout fired on time while the agent kept both connections waiting
	assert_eq "$(ev "$EV" 'tend("parallel-1.ticker")["status"]')" timeout
	assert_le "$(ev "$EV" 'tend("parallel-1.ticker")["duration_ms"]')" 2500 "ms the 1s timeout took"
	# h1 logs in with its identity file once the agent is given up; h2 has nothing else
	assert_eq "$(ev "$EV" 'tend("parallel-1.remote@h1")["status"]')" success
	assert_contains "$output" "[parallel-1.remote@h1] remote ok"
	assert_eq "$(ev "$EV" 'tend("parallel-1.remote@h2")["status"]')" failed
	assert_line_has "$(all_text)" 'h2' 'ssh-agent \(it did not answer within 10s\)' "h2's error names the silent agent"
	[ "$elapsed" -ge 9500 ] || fail "the agent was given up after $elapsed ms, before its 10s"
	# a connection made after that does not wait for the agent again
	assert_eq "$(ev "$EV" 'tend("later@h3")["status"]')" success
	assert_le "$(ev "$EV" 'tend("later@h3")["duration_ms"]')" 3000 "ms h3's task took"
	assert_le "$elapsed" 20000 "ms for the run"
}

@test "an ssh-agent that never answers, connect_timeout shorter than the agent's 10s: the host fails at connect_timeout, naming the agent" {
	stuck_agent
	agent_inventory
	p=$(plan stuck-agent-short <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS", connect_timeout: 2s }
steps:
  - id: remote
    on: h1
    run: echo remote ok
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv-agent.yaml" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("remote@h1")["status"]')" failed
	assert_line_has "$(all_text)" 'h1' 'authentication did not complete within 2s \(connect_timeout\): ssh-agent did not answer' \
		"the error names the timeout and the agent"
	assert_le "$elapsed" 8000 "ms for the run (connect_timeout 2s, well before the agent's 10s)"
}

# proxied_plan: an inventory with host px behind the TCP proxy (tcp_proxy
# first), its key known under the proxy's port; prints the plan's path
proxied_plan() {
	cat >"$BATS_TEST_TMPDIR/inv-px.yaml" <<EOF2
hosts:
    px: { address: 127.0.0.1, port: $TCP_PORT, user: batontest, identity: "$SSH_KEY" }
EOF2
	kh=$(proxy_known_hosts)
	plan reset <<EOF2
inventory: $BATS_TEST_TMPDIR/inv-px.yaml
ssh: { known_hosts_file: "$kh", connect_timeout: 20s }
steps:
  - id: s
    on: px
    run: echo ok
EOF2
}

@test "a connection reset before the server said a word is made again (4 attempts at most), within connect_timeout" {
	tcp_proxy "$SSH_PORT"
	p=$(proxied_plan)
	# three resets (an accept queue that overflowed): the fourth attempt logs in
	tcp_ctl reset 3
	before=$(accepted)
	run --separate-stderr b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[s@px] ok"
	assert_eq "$("$E2E_PY" "$SSH_TESTS_DIR/tcp.py" ctl "$PROXY_PF" resets)" "ok 3" "resets made"
	assert_eq "$(($(accepted) - before))" 1 "one login"
	assert_eq "$(ev "$EV" "tend('s@px')['attempt']")" 1 "the task ran once"
	# more resets than attempts: the host fails, saying what happened and how often
	tcp_ctl reset 10
	run --separate-stderr b run "$p" --output plain --events "$EV"
	assert_status 1
	reason=$(ev "$EV" "tend('s@px')['reason']")
	assert_contains "$reason" "(4 attempts)"
	assert_match "$reason" "reset by peer|closed it"
	assert_not_contains "$reason" "bad file descriptor"
	assert_eq "$("$E2E_PY" "$SSH_TESTS_DIR/tcp.py" ctl "$PROXY_PF" resets)" "ok 7" "4 more resets"
}
