#!/usr/bin/env bats
# Cross-run locks (`lock:`, runs.md "Cross-run locks"): while a run holds a
# lock, another run naming it waits up to `wait`, then fails with exit 4,
# saying who holds it. The lock is a flock under STATE_DIR/locks, so a dead
# holder never leaves it taken. Every test uses its own state directory.

load helpers
setup() {
	e2e_setup
	export BATON_STATE_DIR="$E2E_TMP/state"
	unset XDG_STATE_HOME
}
teardown() { e2e_teardown; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# hold NAME [ARGS...]: starts, in the background, a run that holds lock NAME
# while its command sleeps (until the test stops it); sets HOLDER_PID and
# HOLDER_RUN (its run id) once the command has started.
hold() {
	local name=$1 p
	shift
	p=$(plan "hold-$name" <<EOF
lock: $name
steps:
  - { id: hold, run: sleep 30.$E2E_MARK }
EOF
)
	"$BATON" run "$p" --output plain --events "$E2E_TMP/hold-$name.jsonl" "$@" >"$E2E_TMP/hold-$name.out" 2>&1 3>&- &
	HOLDER_PID=$!
	wait_for_event "$E2E_TMP/hold-$name.jsonl" task.start
	HOLDER_RUN=$(ev "$E2E_TMP/hold-$name.jsonl" 'E[0]["run"]')
}

# unhold: stops the holder (SIGTERM) and waits for it.
unhold() {
	kill -TERM "$HOLDER_PID"
	wait_pid "$HOLDER_PID" 10
	assert_eq "$WAIT_STATUS" 143 "the holder's exit status"
}

# waiter NAME WAIT: a plan naming lock NAME with that wait, whose step writes ran.txt.
waiter() {
	plan "wait-$1" <<EOF
lock: { name: $1, wait: $2 }
steps:
  - { id: mine, run: echo MINE-RAN > ran.txt }
EOF
}

@test "a second run naming a held lock fails at once with exit 4, naming the holder's run id, user and since" {
	hold deploy
	p=$(waiter deploy 0s)
	start=$(now_ms)
	run --separate-stderr b run "$p" --output plain
	took=$(($(now_ms) - start))
	assert_status 4
	assert_le "$took" 1500 "ms to fail without a wait"
	assert_match "$stderr" "^baton: lock deploy is held by run $HOLDER_RUN \\(user $(id -un), since [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z\\)$"
	assert_not_contains "$stderr" "waiting"
	assert_eq "$output" "" "nothing on stdout"
	assert_file_absent ran.txt
	# the plain form (no map) is the same lock
	p=$(plan plain <<'EOF'
lock: deploy
steps: [touch ran.txt]
EOF
)
	run b run "$p"
	assert_status 4
	assert_file_absent ran.txt
	unhold
}

@test "a locked-out run leaves the holder's --events file alone" {
	hold shared
	p=$(waiter shared 0s)
	run b run "$p" --output quiet --events "$E2E_TMP/hold-shared.jsonl"
	assert_status 4
	unhold
	ev_valid "$E2E_TMP/hold-shared.jsonl"
	assert_eq "$(ev "$E2E_TMP/hold-shared.jsonl" 'E[0]["run"]')" "$HOLDER_RUN" "the events are the holder's"
}

@test "with a wait, the second run waits for the holder to end, says so, then runs" {
	p1=$(plan first <<EOF
lock: x
steps:
  - run: sleep 1.$E2E_MARK && touch first-done
EOF
)
	"$BATON" run "$p1" --output plain --events "$E2E_TMP/first.jsonl" >first.out 2>&1 3>&- &
	pid=$!
	wait_for_event "$E2E_TMP/first.jsonl" task.start
	run_id=$(ev "$E2E_TMP/first.jsonl" 'E[0]["run"]')
	p2=$(plan second <<'EOF'
lock: { name: x, wait: 20s }
steps:
  - { id: after, run: test -e first-done && echo SECOND-RAN }
EOF
)
	start=$(now_ms)
	run --separate-stderr b run "$p2" --output plain
	took=$(($(now_ms) - start))
	assert_status 0
	assert_contains "$output" "SECOND-RAN"
	assert_match "$stderr" "^baton: lock x is held by run $run_id \\(user $(id -un), since .*\\); waiting up to 20.0s$"
	assert_match "$stderr" "^baton: took lock x after [0-9.]+m?s$"
	assert_ge "$took" 300 "ms the second run waited"
	# it looks often: it starts soon after the holder (a sleep of 1.8 s or less) ends
	assert_le "$took" 3500 "ms the second run waited"
	wait_pid "$pid" 10
	assert_eq "$WAIT_STATUS" 0
}

@test "a wait shorter than the holder: exit 4 after about the wait" {
	hold x
	p=$(waiter x 700ms)
	start=$(now_ms)
	run --separate-stderr b run "$p" --output plain
	took=$(($(now_ms) - start))
	assert_status 4
	assert_ge "$took" 700 "ms waited"
	assert_le "$took" 3000 "ms waited"
	assert_match "$stderr" "^baton: lock x is held by run $HOLDER_RUN \\(user .*\\); waiting up to 700ms$"
	assert_match "$stderr" "^baton: lock x is held by run $HOLDER_RUN \\(user $(id -un), since [^)]*\\)$"
	assert_eq "$(grep -c waiting <<<"$stderr")" 1 "the wait is announced once"
	assert_file_absent ran.txt
	unhold
}

@test "runs naming different locks run at once" {
	hold a
	p=$(waiter b 0s)
	run b run "$p" --output quiet
	assert_status 0
	assert_eq "$(cat ran.txt)" MINE-RAN
	unhold
}

@test "a holder killed with SIGKILL does not leave the lock taken" {
	hold x
	kill -KILL "$HOLDER_PID"
	wait_pid "$HOLDER_PID" 10
	assert_eq "$WAIT_STATUS" 137
	p=$(waiter x 0s)
	start=$(now_ms)
	run b run "$p" --output quiet
	took=$(($(now_ms) - start))
	assert_status 0
	assert_le "$took" 1500 "ms to take a lock its holder died with"
	assert_eq "$(cat ran.txt)" MINE-RAN
}

@test "a process a command leaves behind does not keep the lock (close-on-exec)" {
	p=$(plan bg <<EOF
lock: x
steps:
  - run: |
      setsid sh -c 'touch started; exec sleep 30.$E2E_MARK' </dev/null >/dev/null 2>&1 &
      # until it has left the group (which baton kills when the command ends)
      i=0; while [ ! -e started ] && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i + 1)); done
EOF
)
	run b run "$p" --output quiet
	assert_status 0
	[ -n "$(mark_pids)" ] || fail "the background sleep should have outlived the run"
	p=$(waiter x 0s)
	run b run "$p" --output quiet
	assert_status 0
	assert_eq "$(cat ran.txt)" MINE-RAN
}

@test "the lock is held until the run ends, its finally included" {
	p=$(plan fin <<EOF
lock: x
steps:
  - run: "true"
finally:
  - run: sleep 1.$E2E_MARK
EOF
)
	"$BATON" run "$p" --output plain --events "$E2E_TMP/fin.jsonl" >fin.out 2>&1 3>&- &
	pid=$!
	wait_for_event "$E2E_TMP/fin.jsonl" 'task.start","task":"finally.run-1'
	p2=$(waiter x 0s)
	run b run "$p2" --output quiet
	assert_status 4
	wait_pid "$pid" 10
	assert_eq "$WAIT_STATUS" 0
	run b run "$p2" --output quiet
	assert_status 0
}

@test "bad lock names and waits are FILE:LINE:COL errors (exit 2), before anything runs" {
	p=$(plan bad <<'EOF'
lock: { name: "../etc/x", wait: soon }
steps: [touch ran.txt]
EOF
)
	run --separate-stderr b check "$p"
	assert_status 2
	assert_contains "$stderr" "$p:1:33: error: 'wait': bad duration 'soon'"
	assert_contains "$stderr" "$p:1:18: error: lock name '../etc/x': only letters, digits, '.', '_' and '-' are allowed"
	p=$(plan expr <<'EOF'
vars: { env: prod }
lock: deploy-${{ vars.env }}
steps: [touch ran.txt]
EOF
)
	run --separate-stderr b check "$p"
	assert_status 2
	assert_contains "$stderr" "$p:2:14: error: a lock name is plain text: \${{ }} is not allowed in it"
	p=$(plan dot <<'EOF'
lock: .x
steps: [touch ran.txt]
EOF
)
	run --separate-stderr b run "$p"
	assert_status 2
	assert_contains "$stderr" "$p:1:7: error: lock name '.x' may not start with '.'"
	assert_file_absent ran.txt
	assert_file_absent "$BATON_STATE_DIR"
}

@test "SIGINT while waiting for a lock exits 130 at once; SIGTERM 143" {
	hold x
	p=$(waiter x 30s)
	for sig in INT TERM; do
		"$BATON" run "$p" --output plain >"w-$sig.out" 2>&1 3>&- &
		pid=$!
		for _ in $(seq 100); do
			grep -q "waiting up to" "w-$sig.out" && break
			sleep 0.05
		done
		assert_contains "$(cat "w-$sig.out")" "waiting up to 30.0s"
		start=$(now_ms)
		kill -"$sig" "$pid"
		wait_pid "$pid" 10
		took=$(($(now_ms) - start))
		assert_eq "$WAIT_STATUS" "$([ $sig = INT ] && echo 130 || echo 143)" "exit status after SIG$sig"
		assert_le "$took" 1000 "ms from SIG$sig to exit"
		assert_contains "$(cat "w-$sig.out")" "baton: interrupted while waiting for the plan's lock"
	done
	assert_file_absent ran.txt
	unhold
}

@test "BATON_STATE_DIR, --state-dir, XDG_STATE_HOME and HOME choose where locks live" {
	p=$(waiter x 0s)
	run b run "$p" --output quiet
	assert_status 0
	[ -f "$BATON_STATE_DIR/locks/x" ] || fail "no lock file under BATON_STATE_DIR"
	assert_eq "$(stat -c %a "$BATON_STATE_DIR" "$BATON_STATE_DIR/locks" "$BATON_STATE_DIR/locks/x" | tr '\n' ' ')" \
		"700 700 600 " "modes"
	run b run "$p" --output quiet --state-dir "$E2E_TMP/cli"
	assert_status 0
	[ -f "$E2E_TMP/cli/locks/x" ] || fail "--state-dir is not used"
	unset BATON_STATE_DIR
	XDG_STATE_HOME="$E2E_TMP/xdg" HOME="$E2E_TMP/home" run b run "$p" --output quiet
	assert_status 0
	[ -f "$E2E_TMP/xdg/baton/locks/x" ] || fail "XDG_STATE_HOME/baton is not used"
	HOME="$E2E_TMP/home" run b run "$p" --output quiet
	assert_status 0
	[ -f "$E2E_TMP/home/.local/state/baton/locks/x" ] || fail "~/.local/state/baton is not used"
	# a lock in one state directory is not the same lock in another
	hold x --state-dir "$E2E_TMP/one"
	run b run "$p" --output quiet --state-dir "$E2E_TMP/one"
	assert_status 4
	run b run "$p" --output quiet --state-dir "$E2E_TMP/two"
	assert_status 0
	unhold
}

@test "a state directory that cannot be made is an error naming it (exit 4)" {
	touch "$E2E_TMP/afile"
	p=$(waiter x 0s)
	run --separate-stderr b run "$p" --output quiet --state-dir "$E2E_TMP/afile/state"
	assert_status 4
	assert_contains "$stderr" "baton: cannot create $E2E_TMP/afile/state: Not a directory"
	assert_file_absent ran.txt
}

@test "baton plan and --dry-run show the lock and never take it" {
	hold x
	p=$(waiter x 5s)
	run b plan "$p"
	assert_status 0
	assert_contains "$output" "  lock: x (wait 5.0s)"
	run b run --dry-run "$p"
	assert_status 0
	assert_contains "$output" "  lock: x (wait 5.0s)"
	unhold
	p=$(plan nowait <<'EOF'
lock: y
steps: [echo]
EOF
)
	export BATON_STATE_DIR="$E2E_TMP/fresh"
	run b plan "$p"
	assert_status 0
	assert_contains "$output" "  lock: y (no wait: fails at once if held)"
	assert_file_absent "$E2E_TMP/fresh" "a preview records nothing"
}

@test "ASan: waiting, failing and taking a lock leak nothing" {
	[ -x "$BATON_ASAN" ] || skip "no ASan build"
	hold x
	p=$(waiter x 300ms)
	run --separate-stderr b_asan run "$p" --output quiet
	assert_status 4
	assert_not_contains "$stderr" "Sanitizer"
	unhold
	p=$(waiter x 5s)
	run --separate-stderr b_asan run "$p" --output quiet
	assert_status 0
	assert_not_contains "$stderr" "Sanitizer"
}

@test "run --help lists --state-dir and exit status 4" {
	run b run --help
	assert_status 0
	assert_contains "$output" "--state-dir DIR"
	assert_contains "$output" "4 the plan's lock was held by another run"
}
