#!/usr/bin/env bats
# Fan-out over hosts: many hosts at once, the per-host session limit,
# batches, barriers and groups of steps across hosts, for_each with on:, and
# the example plan plans/rolling-deploy.yaml against a loopback fleet.
# Against a real sshd on loopback (tests/ssh/harness.sh); needs root.

bats_require_minimum_version 1.5.0
load helpers
load ssh_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; }
teardown() { ssh_teardown; }

# for `ev`: the most tasks in flight at once on h1, and on h2
PER_HOST_INFLIGHT='[max([0] + list(__import__("itertools").accumulate((1 if e["type"] == "task.start" else -1) for e in E if e["type"] in ("task.start", "task.end") and e["task"].split("#")[0].endswith("@" + h)))) for h in ("h1", "h2")]'

@test "20 inventory names for one server: every host runs, all succeed" {
	ssh_harness_inventory "$BATS_TEST_TMPDIR/inv20.yaml" 20
	p=$(plan twenty <<EOF
concurrency: 32
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: fleet
    run: echo "up \${{ host.name }}"; sleep 0.2
EOF
)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv20.yaml" --output plain --events "$EV"
	assert_status 0
	for i in $(seq 20); do
		assert_contains "$output" "[s@h$i] up h$i"
	done
	assert_eq "$(ev "$EV" 'len([e for e in of("task.end") if e["status"] == "success"])')" 20 "successful tasks"
	assert_ge "$(ev "$EV" 'inflight()')" 10 "tasks in flight at once (20 hosts, concurrency 32)"
	ssh_ev_check "$EV"
}

@test "tty: a step on 8 hosts is one live row (done, failed, running, slowest hosts), not a line per host" {
	ssh_harness_inventory "$BATS_TEST_TMPDIR/inv8.yaml" 8
	p=$(plan fleettty <<EOF
concurrency: 16
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: fleet
    mode: settle
    run: if [ "\$BATON_HOST" = h3 ]; then echo "h3 is broken" >&2; exit 4; fi; sleep 0.6; echo "done \${{ host.name }}"
EOF
)
	TERM=xterm run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv8.yaml" --output tty --events "$EV"
	assert_status 1
	# the live row, redrawn while hosts run
	assert_match "$output" "s on 8 hosts: [0-9]+ done .*[0-9]+ running · slowest: h[0-9]+ [0-9]"
	assert_match "$output" "s on 8 hosts: [0-9]+ done · 1 failed"
	# one line at the end for the whole step
	assert_match "$output" "\\[s\\].* on 8 hosts: 7 succeeded, 1 failed, 0 cancelled or skipped, 0 not started"
	# no start line per host, no success line per host; the failure and the output still print
	[[ "$output" != *"[s@h1] \$ "* ]] || fail "a start line per host was printed"
	[[ "$output" != *"[s@h1]"*"success in"* ]] || fail "a success line per host was printed"
	assert_contains "$output" "[s@h3]! h3 is broken" "its stderr line, marked"
	assert_match "$output" "\\[s@h3\\].* failed in .*exit code 4"
	# plain output keeps a line per host
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv8.yaml" --output plain
	assert_status 1
	assert_contains "$output" "[s@h1] \$ "
	[[ "$output" != *"on 8 hosts"* ]] || fail "plain output shows the tty fleet row"
}

@test "one connection per host: 2 hosts x 10 commands in sequence make exactly 2 logins" {
	p=$(plan reuse <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: [h1, h2]
    steps: [echo 1, echo 2, echo 3, echo 4, echo 5, echo 6, echo 7, echo 8, echo 9, echo 10]
EOF
)
	before=$(accepted_logins)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'len([e for e in of("task.end") if e["status"] == "success"])')" 20 "successful commands"
	# sshd logs each login once it is accepted; give the log a moment
	for _ in $(seq 20); do
		[ "$(($(accepted_logins) - before))" -ge 2 ] && break
		sleep 0.05
	done
	assert_eq "$(($(accepted_logins) - before))" 2 "logins for 20 commands on 2 hosts"
}

@test "max_sessions 2 on a host: 6 parallel 1 s sleeps take about 3 s, never more than 2 at once" {
	cat >"$BATS_TEST_TMPDIR/inv-ms.yaml" <<EOF
hosts:
$(host_line h1 'max_sessions: 2')
EOF
	p=$(plan sessions <<EOF
concurrency: 16
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: p
    on: h1
    parallel:
      - sleep 1
      - sleep 1
      - sleep 1
      - sleep 1
      - sleep 1
      - sleep 1
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv-ms.yaml" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 0
	assert_eq "$(ev "$EV" 'len(of("task.end", status="success"))')" 6 "successful tasks"
	assert_eq "$(ev "$EV" "$PER_HOST_INFLIGHT")" "2 0" "tasks in flight at once on a host with max_sessions 2"
	assert_ge "$elapsed" 2500 "ms for 6 x 1 s, 2 at a time"
	assert_le "$elapsed" 8000 "ms for 6 x 1 s, 2 at a time"
	assert_eq "$(ev "$EV" 'sorted(set(e["host"] for e in of("task.start")))')" "h1"
}

@test "ssh.max_sessions applies per host: with 1, two parallel 1 s sleeps on each of two hosts take about 2 s" {
	p=$(plan sessions1 <<EOF
concurrency: 16
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS", max_sessions: 1 }
steps:
  - id: p
    on: [h1, h2]
    parallel:
      - sleep 1
      - sleep 1
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 0
	assert_eq "$(ev "$EV" 'len(of("task.end", status="success"))')" 4 "successful tasks"
	# one at a time per host, the two hosts side by side
	assert_eq "$(ev "$EV" "$PER_HOST_INFLIGHT")" "1 1" "tasks in flight at once per host (h1 h2)"
	assert_eq "$(ev "$EV" 'inflight()')" 2 "tasks in flight at once over both hosts"
	assert_ge "$elapsed" 1800 "ms for 2 x 1 s per host, one at a time"
	assert_le "$elapsed" 10000 "ms for 2 x 1 s per host"
}

@test "batches over hosts: size 2 runs h1,h2 then h3,h4, the second batch after the first ended" {
	ssh_harness_inventory "$BATS_TEST_TMPDIR/inv4.yaml" 4
	p=$(plan batches <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: b
    on: fleet
    batch: { size: 2 }
    run: echo "batch member \${{ host.name }}"; sleep 0.2
EOF
)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv4.yaml" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" '[" ".join(e["instances"]) for e in of("batch.start", step="b")]')" "h1 h2 h3 h4" "batches"
	assert_eq "$(ev "$EV" 'len(of("batch.start", step="b"))')" 2 "batch count"
	assert_eq "$(ev "$EV" 'max(seq("task.end", task="b@h1"), seq("task.end", task="b@h2")) < min(seq("task.start", task="b@h3"), seq("task.start", task="b@h4"))')" \
		true "the second batch started after the first ended"
}

@test "a group of steps under on: runs per host; a barrier inside waits for every host" {
	p=$(plan barrier <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: r
    on: fleet
    steps:
      - id: before
        run: case \${{ host.name }} in h1) sleep 0.6 ;; esac; echo "before \${{ host.name }}"
      - barrier: all-ready
      - id: after
        run: echo "after \${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	for h in h1 h2 h3; do
		assert_contains "$output" "[r.before@$h] before $h"
		assert_contains "$output" "[r.after@$h] after $h"
		assert_eq "$(ev "$EV" "one('task.start', task='r.after@$h')['host']")" "$h"
	done
	assert_eq "$(ev "$EV" 'max(seq("task.end", task="r.before@" + h) for h in ("h1", "h2", "h3")) < min(seq("task.start", task="r.after@" + h) for h in ("h1", "h2", "h3"))')" \
		true "every host passed the barrier only after all had arrived"
	assert_ge "$(ev "$EV" 'len(of("barrier.release"))')" 1 "barrier.release events"
}

@test "for_each with on: one task per (host, item), ids STEP@HOST#INDEX" {
	p=$(plan foreach <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: fe
    on: [h1, h2]
    for_each: [red, blue]
    run: echo "\${{ host.name }} \${{ item }} \${{ index }} \$BATON_ITEM"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[fe@h1#0 (red)] h1 red 0 red"
	assert_contains "$output" "[fe@h1#1 (blue)] h1 blue 1 blue"
	assert_contains "$output" "[fe@h2#0 (red)] h2 red 0 red"
	assert_contains "$output" "[fe@h2#1 (blue)] h2 blue 1 blue"
	assert_eq "$(ev "$EV" 'sorted(starts())')" "fe@h1#0 fe@h1#1 fe@h2#0 fe@h2#1"
	assert_eq "$(ev "$EV" 'one("task.start", task="fe@h2#1")["host"]' 'one("task.start", task="fe@h2#1")["item"]')" $'h2\nblue'
}

# ---- plans/rolling-deploy.yaml against four loopback hosts ----

rolling() { # ARGS...: run the example plan against web1..web4 → the harness
	ssh_harness_inventory "$BATS_TEST_TMPDIR/web.yaml" 4 web web
	# the plan checks host keys strictly against ~/.ssh/known_hosts
	cp "$SSH_KNOWN_HOSTS" "$HOME/.ssh/known_hosts"
	run --separate-stderr sb run "$REPO_DIR/plans/rolling-deploy.yaml" --inventory "$BATS_TEST_TMPDIR/web.yaml" \
		--var release_dir="$RT/release" --output plain --events "$EV" "$@"
}

@test "plans/rolling-deploy.yaml: canary, batches 1, 2, 1 behind a barrier, health, success" {
	rolling
	assert_status 0
	assert_contains "$output" "[canary@web1] canary: 1.4.2 on web1"
	for h in web1 web2 web3 web4; do
		assert_eq "$(cat "$RT/release/$h/current" 2>/dev/null)" 1.4.2 "version deployed on $h"
		assert_contains "$output" "[health@$h] $h healthy on 1.4.2"
		assert_file_absent "$RT/release/$h/rolled-back" "rolled back although the deploy succeeded"
	done
	assert_eq "$(ev "$EV" '[" ".join(e["instances"]) for e in of("batch.start", step="rollout")]')" \
		"web1 web2 web3 web4" "batches"
	assert_eq "$(ev "$EV" '[len(e["instances"]) for e in of("batch.start", step="rollout")]')" "1 2 1" "batch sizes"
	# the canary ends before the rollout starts
	assert_eq "$(ev "$EV" 'seq("task.end", task="canary@web1") < min(e["seq"] for e in of("task.start") if e["task"].startswith("rollout."))')" true
	assert_eq "$(ev "$EV" 'status("rollout")' 'status("health")' 'run_end()["status"]')" $'success\nsuccess\nsuccess'
}

@test "plans/rolling-deploy.yaml: one unhealthy host of four is within min_success 75%" {
	rolling --var fail_health=web3
	assert_status 0
	assert_eq "$(ev "$EV" 'tend("health@web3")["status"]' 'status("health")')" $'failed\nsuccess'
	assert_file_absent "$RT/release/web1/rolled-back"
}

@test "plans/rolling-deploy.yaml: every host unhealthy fails the health check and rolls every host back (exit 1)" {
	rolling --var 'fail_health=web*'
	assert_status 1
	assert_eq "$(ev "$EV" 'status("health")')" failed
	for h in web1 web2 web3 web4; do
		[ -e "$RT/release/$h/rolled-back" ] || fail "$h was not rolled back"
		assert_file_absent "$RT/release/$h/current" "the new version is still current on $h"
		assert_contains "$output" "rolled back $h"
	done
	assert_contains "$output" "ended failed"
}

@test "--only STEP@HOST runs on that host of the fleet alone; --from STEP@HOST on it and the hosts after it, in one batch" {
	p=$(plan pick <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: fleet
    batch: { size: 2 }
    run: touch "$RT/m-\${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output quiet --events "$EV" --only s@h2
	assert_status 0
	assert_eq "$(cd "$RT" && echo m-*)" "m-h2"
	assert_eq "$(ev "$EV" 'statuses("s@h1", "s@h2", "s@h3")')" "skipped success skipped"
	rm -f "$RT"/m-*
	run --separate-stderr sb run "$p" --inventory "$INV" --output quiet --events "$EV" --from s@h2
	assert_status 0
	assert_eq "$(cd "$RT" && echo m-*)" "m-h2 m-h3"
	assert_eq "$(ev "$EV" '[",".join(e["instances"]) for e in of("batch.start")]')" "h2,h3" "one batch of the 2 selected hosts"
	ssh_ev_check "$EV"
}
