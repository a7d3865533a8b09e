#!/usr/bin/env bats
# Remote concurrency: remote tasks take ssh.max_hosts (--max-hosts, default
# 64), not the global concurrency (-j), which is a limit of this machine.
# Each host records, on the server, when its command started and ended, so
# the overlap is measured where the commands ran.
# Against a real sshd on loopback (tests/ssh/harness.sh); needs root.

bats_require_minimum_version 1.5.0
load helpers
load ssh_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; }
teardown() { ssh_teardown; }

# fleet_plan NAME SECONDS [SSH SETTINGS]: a plan whose step s runs on the
# fleet, each host writing "START END" (ns, server clock) to $RT/t.HOST.
fleet_plan() {
	plan "$1" <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS"${3:+, $3} }
steps:
  - id: s
    on: fleet
    run: s=\$(date +%s%N); sleep $2; echo "\$s \$(date +%s%N)" >"$RT/t.\$BATON_HOST"
EOF
}

# remote_overlap: the most commands running at once on the server, from $RT/t.*, and how many files.
remote_overlap() {
	"$E2E_PY" -S -c '
import glob, sys
iv = [tuple(map(int, open(f).read().split())) for f in glob.glob(sys.argv[1] + "/t.*")]
pts = sorted([(s, 1) for s, e in iv] + [(e, -1) for s, e in iv], key=lambda p: (p[0], p[1]))
cur = mx = 0
for _, d in pts:
    cur += d; mx = max(mx, cur)
print(mx, len(iv))
' "$RT"
}

@test "--max-hosts 2: 6 hosts of 0.5 s run 2 at a time, about 1.5 s in all, never 3 at once" {
	ssh_harness_inventory "$BATS_TEST_TMPDIR/inv6.yaml" 6
	p=$(fleet_plan two 0.5)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv6.yaml" --max-hosts 2 --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 0
	assert_eq "$(remote_overlap)" "2 6" "most commands at once on the server, hosts that ran"
	assert_eq "$(ev "$EV" 'inflight()')" 2 "tasks in flight at once (baton's events)"
	# three rounds of 0.5 s, and the logins
	assert_ge "$elapsed" 1500 "ms for 6 hosts, 2 at a time"
	assert_le "$elapsed" 6000 "ms for 6 hosts, 2 at a time"
	ssh_ev_check "$EV"
}

@test "ssh.max_hosts in the plan limits the hosts; --max-hosts wins over it" {
	ssh_harness_inventory "$BATS_TEST_TMPDIR/inv6.yaml" 6
	p=$(fleet_plan three 0.4 'max_hosts: 3')
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv6.yaml" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(remote_overlap)" "3 6" "most commands at once under ssh.max_hosts 3"
	rm -f "$RT"/t.*
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv6.yaml" --max-hosts 1 --output plain --events "$EV"
	assert_status 0
	assert_eq "$(remote_overlap)" "1 6" "most commands at once under --max-hosts 1"
	run sb plan "$p" --inventory "$BATS_TEST_TMPDIR/inv6.yaml"
	assert_contains "$output" "max_hosts 3"
}

@test "-j 1 does not serialize remote hosts: 6 hosts of 1 s all run at once, beside a local task" {
	ssh_harness_inventory "$BATS_TEST_TMPDIR/inv6.yaml" 6
	p=$(plan jobs1 <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: p
    parallel:
      - id: s
        on: fleet
        run: s=\$(date +%s%N); sleep 1; echo "\$s \$(date +%s%N)" >"$RT/t.\$BATON_HOST"
      - { id: l1, run: sleep 1 }
      - { id: l2, run: sleep 0.2 }
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv6.yaml" -j 1 --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 0
	assert_eq "$(remote_overlap)" "6 6" "most commands at once on the server under -j 1"
	assert_eq "$(ev "$EV" 'inflight("p.l")')" 1 "local tasks at once under -j 1"
	assert_eq "$(ev "$EV" 'inflight()')" 7 "tasks at once: 6 hosts and 1 local"
	assert_le "$elapsed" 5000 "ms: the hosts did not run one after another (6 s)"
	ssh_ev_check "$EV"
}

@test "ssh.max_hosts: 0 and --max-hosts abc are usage errors (exit 2), said clearly" {
	p=$(plan zero <<EOF
ssh:
  max_hosts: 0
steps:
  - { id: s, on: h1, run: "true" }
EOF
)
	run --separate-stderr sb check "$p" --inventory "$INV"
	assert_status 2
	assert_contains "$stderr" "zero.yaml:2:14: error: 'max_hosts' must be at least 1, not 0"
	run --separate-stderr sb run "$p" --inventory "$INV"
	assert_status 2
	assert_contains "$stderr" "'max_hosts' must be at least 1, not 0"
	p=$(fleet_plan ok 0)
	for bad in abc 0 -3 1x ''; do
		run --separate-stderr sb run "$p" --inventory "$INV" --max-hosts "$bad"
		assert_status 2
		assert_contains "$stderr" "--max-hosts takes a number from 1 to 100000, not '$bad'"
	done
	[ -z "$(ls "$RT")" ] || fail "a host ran: $(ls "$RT")"
}

@test "connections follow the hosts worked on, not the inventory: 12 hosts at --max-hosts 2 never hold more than 4 open" {
	ssh_harness_inventory "$BATS_TEST_TMPDIR/inv12.yaml" 12
	p=$(plan conns <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - { id: s, on: fleet, run: sleep 0.3 }
  - { id: t, on: fleet, run: "true" }
EOF
)
	bg "$BATON" run "$p" --inventory "$BATS_TEST_TMPDIR/inv12.yaml" --max-hosts 2 --output quiet --events "$EV"
	pid=$BG_PID peak=0
	while kill -0 "$pid" 2>/dev/null; do
		n=$(ss -Htnp state established "( dport = :$SSH_PORT )" 2>/dev/null | grep -c "pid=$pid,") || n=0
		[ "$n" -gt "$peak" ] && peak=$n
		sleep 0.03
	done
	wait "$pid" || fail "the run failed: $(tail -3 "$EV")"
	assert_eq "$(ev "$EV" 'len([e for e in of("task.end") if e["status"] == "success"])')" 24 "tasks that succeeded"
	assert_ge "$peak" 2 "connections seen open at once (the sampling works)"
	assert_le "$peak" 4 "connections open at once: 2 hosts worked on and 2 idle, of 12"
}

@test "at most 100 connections are set up at once: 150 hosts that never answer are tried in two waves, each given its own connect_timeout" {
	tcp_silent
	{
		echo "hosts:"
		for i in $(seq 1 150); do
			printf '    m%d: { address: 127.0.0.1, port: %s, user: batontest, identity: "%s" }\n' "$i" "$TCP_PORT" "$SSH_KEY"
		done
		echo "groups:"
		printf '  mute: [%s]\n' "$(seq -f 'm%g' 1 150 | paste -sd, - | sed 's/,/, /g')"
	} >"$BATS_TEST_TMPDIR/inv-mute.yaml"
	p=$(plan waves <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS", connect_timeout: 3s }
steps:
  - id: s
    on: mute
    mode: settle
    run: "true"
EOF
)
	conns="$BATS_TEST_TMPDIR/silent.port.conns"
	bg "$BATON" run "$p" --inventory "$BATS_TEST_TMPDIR/inv-mute.yaml" --max-hosts 200 --output plain --events "$EV"
	pid=$BG_PID
	# the first wave: 100 accepted, and no more while they wait out their timeout
	for _ in $(seq 1 100); do
		[ "$(wc -l <"$conns" 2>/dev/null || echo 0)" -ge 100 ] && break
		sleep 0.05
	done
	sleep 1
	assert_eq "$(wc -l <"$conns")" 100 "connections accepted during the first wave"
	wait_pid "$pid" 60
	assert_eq "$WAIT_STATUS" 1 "baton's exit status"
	assert_eq "$(wc -l <"$conns")" 150 "connections accepted in all"
	assert_eq "$(ev "$EV" "len([e for e in of('task.end') if e['status'] == 'failed' and 'SSH handshake within 3s (connect_timeout)' in e['reason']])")" 150 \
		"every host failed at its own 3 s connect_timeout"
}
