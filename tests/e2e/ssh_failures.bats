#!/usr/bin/env bats
# What goes wrong with hosts: refused connections, silent servers,
# authentication, connections lost mid-command, and how modes and batches
# react; timeouts and cancellation that must end the remote processes.
# Against a real sshd on loopback (tests/ssh/harness.sh); needs root.

bats_require_minimum_version 1.5.0
load helpers
load ssh_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; }
teardown() { ssh_teardown; }

# an inventory with the good hosts h1, h2 and whatever lines follow on stdin,
# all in group mixed (in this order: h1, the extra hosts, h2)
mixed_inventory() {
	local extra names
	extra=$(cat)
	names=$(printf '%s\n' "$extra" | sed -n 's/^    \([a-z0-9_-]*\):.*/\1/p' | paste -sd, - | sed 's/,/, /g')
	cat >"$BATS_TEST_TMPDIR/inv-mixed.yaml" <<EOF
hosts:
$(host_line h1)
$extra
$(host_line h2)
groups:
  mixed: [h1, $names, h2]
EOF
	printf '%s\n' "$BATS_TEST_TMPDIR/inv-mixed.yaml"
}

# run_through_proxy HOST: starts, in the background (pid in $pid, output in
# out.txt), a run of step s on HOST, a host reached through a TCP proxy in
# front of sshd (PROXY_PID) with keepalive 1s; returns once the command printed.
run_through_proxy() {
	tcp_proxy "$SSH_PORT"
	inv=$(mixed_inventory <<EOF
    $1: { address: 127.0.0.1, port: $TCP_PORT, user: batontest, identity: "$SSH_KEY" }
EOF
)
	# the server's key under the proxy's port too
	kh=$(proxy_known_hosts)
	p=$(plan "proxied-$1" <<EOF
ssh: { known_hosts_file: "$kh", keepalive: 1s }
steps:
  - id: s
    on: $1
    run: echo started; sleep 300.$M; echo finished
EOF
)
	sb run "$p" --inventory "$inv" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	SSH_BG_PIDS="$SSH_BG_PIDS $pid"
	wait_for_event "$EV" task.output 10
}

@test "connection refused fails only that host (mode settle): the others succeed, the message names the host" {
	dead=$(free_port)
	inv=$(mixed_inventory <<EOF
    dead: { address: 127.0.0.1, port: $dead, user: batontest, identity: "$SSH_KEY" }
EOF
)
	p=$(plan refused <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: mixed
    mode: settle
    run: touch "$RT/ran-\${{ host.name }}"; echo "ok \${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$inv" --output plain --events "$EV"
	assert_status 1
	[ -e "$RT/ran-h1" ] && [ -e "$RT/ran-h2" ] || fail "the good hosts did not run: $(ls "$RT")"
	assert_eq "$(ev "$EV" 'tend("s@h1")["status"]' 'tend("s@h2")["status"]' 'tend("s@dead")["status"]' 'status("s")')" \
		$'success\nsuccess\nfailed\nfailed'
	assert_line_has "$(all_text)" 'dead' 'refused' "the error names the host and says the connection was refused"
	ssh_ev_check "$EV"
}

@test "a run cancelled while its hosts are still connecting ends at once, not at their connect_timeout" {
	tcp_silent
	inv=$(mixed_inventory <<EOF
    mute1: { address: 127.0.0.1, port: $TCP_PORT, user: batontest, identity: "$SSH_KEY" }
    mute2: { address: 127.0.0.1, port: $TCP_PORT, user: batontest, identity: "$SSH_KEY" }
EOF
)
	p=$(plan cancel-connecting <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS", connect_timeout: 60s }
steps:
  - id: par
    parallel:
      - id: r
        on: [mute1, mute2]
        run: "true"
      - id: f
        run: sleep 0.5; exit 3
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$inv" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("par.r@mute1")["status"]' 'tend("par.r@mute2")["status"]' 'tend("par.f")["status"]')" \
		$'cancelled\ncancelled\nfailed'
	assert_le "$elapsed" 20000 "ms for the run (connect_timeout 60s; it ends once f failed)"
}

@test "a host that accepts TCP but never speaks fails after connect_timeout (1s) with a timeout message" {
	tcp_silent
	inv=$(mixed_inventory <<EOF
    mute: { address: 127.0.0.1, port: $TCP_PORT, user: batontest, identity: "$SSH_KEY" }
EOF
)
	p=$(plan silent <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS", connect_timeout: 1s }
steps:
  - id: s
    on: mixed
    mode: settle
    run: echo "ok \${{ host.name }}"
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$inv" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 1
	[ -s "$BATS_TEST_TMPDIR/silent.port.conns" ] || fail "baton never connected to the silent host"
	assert_eq "$(ev "$EV" 'tend("s@h1")["status"]' 'tend("s@h2")["status"]' 'tend("s@mute")["status"]')" \
		$'success\nsuccess\nfailed'
	assert_line_has "$(all_text)" 'mute' 'timed out|timeout' "the error names the host and says it timed out"
	assert_ge "$elapsed" 900 "ms for the run (connect_timeout 1s)"
	assert_le "$elapsed" 5000 "ms for the run (connect_timeout 1s)"
	assert_le "$(ev "$EV" 'tend("s@mute")["duration_ms"]')" 3500 "duration_ms of the silent host's task (connect_timeout 1s)"
}

@test "settle: good hosts succeed, a refused and an unauthenticated host each fail with their own reason" {
	dead=$(free_port)
	inv=$(mixed_inventory <<EOF
    dead: { address: 127.0.0.1, port: $dead, user: batontest, identity: "$SSH_KEY" }
    locked: { address: 127.0.0.1, port: $SSH_PORT, user: batontest, identity: "$SSH_DIR/other_ed25519" }
EOF
)
	p=$(plan settle <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: mixed
    mode: settle
    run: touch "$RT/ran-\${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$inv" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ls "$RT" | sort | paste -sd' ' -)" "ran-h1 ran-h2" "where the command ran"
	assert_eq "$(ev "$EV" '[tend("s@" + h)["status"] for h in ("h1", "dead", "locked", "h2")]')" \
		"success failed failed success"
	assert_line_has "$(reason s@dead)$(printf '\n')$(all_text | grep -i dead)" 'dead' 'refused' "dead: refused"
	assert_line_has "$(reason s@locked)$(printf '\n')$(all_text | grep -i locked)" 'locked' 'authenticat' "locked: authentication"
}

@test "a connection lost mid-command fails that task with a connection-lost message" {
	run_through_proxy flaky
	wait_remote "^sleep 300\\.$M" 1 5
	kill -KILL "$PROXY_PID"
	wait "$PROXY_PID" 2>/dev/null || true
	t0=$(now_ms)
	wait_pid "$pid" 15
	elapsed=$(($(now_ms) - t0))
	output=$(cat out.txt)
	assert_eq "$WAIT_STATUS" 1 "exit status after the connection was lost"
	assert_le "$elapsed" 8000 "ms from the drop to the end of the run"
	assert_eq "$(ev "$EV" 'tend("s@flaky")["status"]')" failed
	assert_not_contains "$output" "[s@flaky] finished"
	assert_line_has "$(all_text)" 'flaky' 'connection (was )?(lost|closed|dropped|reset)|lost (the )?connection|disconnect|EOF' \
		"the error names the host and says the connection was lost"
}

@test "a connection lost mid-command: baton reconnects to end what was left running there (TERM to the group)" {
	p=$(plan orphans <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: h1
    run: sleep 300.$M & echo started; sleep 0.3; kill -9 \$PPID; sleep 301.$M
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("s@h1")["status"]')" failed
	assert_line_has "$(all_text)" 'h1' 'connection lost' "the error names the host and the lost connection"
	# the session's sshd is gone, but its commands were ended through a new connection
	ssh_harness_wait_gone "^sleep 30[01]\\.$M" 5 || fail "left running: $(ssh_harness_list "^sleep 30[01]\\.$M")"
}

@test "keepalive: a server gone silent mid-command (no bytes, no close) fails that task after 3 keepalive intervals" {
	run_through_proxy frozen
	# the proxy stops forwarding but keeps both sockets open: a network partition
	kill -STOP "$PROXY_PID"
	t0=$(now_ms)
	wait_pid "$pid" 15
	elapsed=$(($(now_ms) - t0))
	kill -KILL "$PROXY_PID" 2>/dev/null || true
	output=$(cat out.txt)
	assert_eq "$WAIT_STATUS" 1 "exit status after the server went silent"
	assert_le "$elapsed" 8000 "ms from the silence to the end of the run"
	[ "$elapsed" -ge 2000 ] || fail "declared lost after only $elapsed ms: keepalive is 1s, 3 misses"
	assert_eq "$(ev "$EV" 'tend("s@frozen")["status"]')" failed
	assert_line_has "$(all_text)" 'frozen' 'keepalive' "the error names the host and the missed keepalives"
}

@test "mode all: a host that cannot connect cancels the others (they never finish), exit 1" {
	dead=$(free_port)
	inv=$(mixed_inventory <<EOF
    dead: { address: 127.0.0.1, port: $dead, user: batontest, identity: "$SSH_KEY" }
EOF
)
	p=$(plan failfast <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: mixed
    run: sleep 10.$M; touch "$RT/finished-\${{ host.name }}"
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$inv" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 1
	# at once: well before the 10 s command, and before kill_grace (5 s) could rescue a late cancel
	assert_le "$elapsed" 4000 "ms for the run (a 10 s command cancelled at once)"
	[ -z "$(ls -A "$RT")" ] || fail "a cancelled host finished: $(ls "$RT")"
	assert_eq "$(ev "$EV" 'tend("s@dead")["status"]' 'status("s")')" $'failed\nfailed'
	for h in h1 h2; do
		st=$(ev "$EV" "(of('task.end', task='s@$h') or [{'status': 'never started'}])[-1]['status']")
		[ "$st" = cancelled ] || [ "$st" = "never started" ] || fail "s@$h ended $st, not cancelled"
	done
	ssh_harness_wait_gone "sleep 10\\.$M" 5
}

@test "mode all: a host failing cancels the commands running on the others, and their remote processes end" {
	p=$(plan cancelothers <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: fleet
    kill_grace: 1s
    run: |
      if [ "\${{ host.name }}" = h3 ]; then
        i=0
        while [ "\$(pgrep -c -u batontest -f '^sleep 30[01]\\.$M')" -lt 4 ] && [ \$i -lt 100 ]; do
          sleep 0.1; i=\$((i + 1))
        done
        exit 1
      fi
      sleep 300.$M & sleep 301.$M
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 1
	assert_le "$elapsed" 8000 "ms for the run"
	assert_eq "$(ev "$EV" 'tend("s@h3")["status"]' 'tend("s@h1")["status"]' 'tend("s@h2")["status"]')" \
		$'failed\ncancelled\ncancelled'
	ssh_harness_wait_gone "sleep 30[01]\\.$M" 5
}

@test "batch size 1, max_failures 0: after a failed host no later batch starts" {
	dead=$(free_port)
	inv=$(mixed_inventory <<EOF
    dead: { address: 127.0.0.1, port: $dead, user: batontest, identity: "$SSH_KEY" }
EOF
)
	p=$(plan batch0 <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: mixed
    batch: { size: 1, max_failures: 0 }
    run: touch "$RT/ran-\${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$inv" --output plain --events "$EV"
	assert_status 1
	[ -e "$RT/ran-h1" ] || fail "the first batch did not run"
	assert_file_absent "$RT/ran-h2" "a batch after the failed one ran"
	assert_eq "$(ev "$EV" 'status("s")')" failed
	assert_eq "$(ev "$EV" '[e["instances"] for e in of("batch.start", step="s")]')" "h1 dead" "batches started"
}

@test "batch size 1, max_failures 1: a tolerated failed host, the later batch runs, the step succeeds" {
	dead=$(free_port)
	inv=$(mixed_inventory <<EOF
    dead: { address: 127.0.0.1, port: $dead, user: batontest, identity: "$SSH_KEY" }
EOF
)
	p=$(plan batch1 <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: mixed
    batch: { size: 1, max_failures: 1 }
    run: touch "$RT/ran-\${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$inv" --output plain --events "$EV"
	assert_status 0
	[ -e "$RT/ran-h1" ] && [ -e "$RT/ran-h2" ] || fail "not every batch ran: $(ls "$RT")"
	assert_eq "$(ev "$EV" 'tend("s@dead")["status"]' 'status("s")')" $'failed\nsuccess'
	assert_eq "$(ev "$EV" 'len(of("batch.start", step="s"))')" 3 "batches"
}

# ---- timeouts and cancellation end the remote processes ----

@test "timeout on a remote command: status timeout, and no remote process is left" {
	p=$(plan rtimeout <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: slow
    on: h1
    timeout: 1s
    kill_grace: 1s
    run: sleep 300.$M & sleep 301.$M
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("slow@h1")["status"]')" timeout
	assert_le "$elapsed" 8000 "ms for a 1s timeout"
	ssh_harness_wait_gone "sleep 30[01]\\.$M" 5
}

@test "SIGINT to baton while remote commands run: exit 130, and no remote process is left" {
	p=$(plan rsigint <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: fleet
    kill_grace: 1s
    run: sleep 300.$M & sleep 301.$M
EOF
)
	"$BATON" run "$p" --inventory "$INV" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	SSH_BG_PIDS="$SSH_BG_PIDS $pid"
	wait_remote "^sleep 30[01]\\.$M" 6 10
	kill -INT "$pid"
	wait_pid "$pid" 10
	assert_eq "$WAIT_STATUS" 130 "exit status after SIGINT; output: $(cat out.txt)"
	assert_eq "$(ev "$EV" '[tend("s@" + h)["status"] for h in ("h1", "h2", "h3")]')" "cancelled cancelled cancelled"
	ssh_harness_wait_gone "sleep 30[01]\\.$M" 5
}

@test "a remote command that ignores SIGTERM is killed after kill_grace" {
	p=$(plan stubborn <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: h1
    timeout: 1s
    kill_grace: 1s
    run: trap '' TERM INT HUP; sleep 300.$M
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("s@h1")["status"]')" timeout
	assert_le "$elapsed" 8000 "ms for timeout 1s + kill_grace 1s"
	ssh_harness_wait_gone "sleep 300\\.$M" 5
}

@test "ASan: a refused connection with commands waiting on it: the ones cancelled by fail-fast end cleanly" {
	# the first command's failure cancels its siblings on the same connection
	# while that connection is failing: they used to be finished a loop turn
	# later, after the connection was freed (a use after free)
	dead=$(free_port)
	p=$(plan waiting <<EOF
inventory:
  hosts:
    dead: { address: 127.0.0.1, port: $dead, user: batontest }
ssh: { known_hosts: off }
steps:
  - parallel:
      - { id: a, on: dead, run: sleep 1 }
      - { id: b, on: dead, run: sleep 1 }
      - { id: c, on: dead, run: sleep 1 }
EOF
)
	for i in 1 2 3; do
		run --separate-stderr b_asan run "$p" --output plain --events "$EV"
		assert_status 1
		assert_not_contains "$stderr" "ERROR: AddressSanitizer"
		assert_eq "$(ev "$EV" 'len([e for e in of("task.end") if e["status"] in ("failed", "cancelled")])')" 3
	done
}
