#!/usr/bin/env bats
# The crash test of tracked runs (runs.md, "Durability rule" and `resume`):
# a run of a ~200-task plan SIGKILLed at a random moment, 20 times (every
# fourth time its first resume too); each time `baton resume` must not run
# again what the store recorded succeeded, must run everything else exactly
# once, and nothing of the killed run may be left running, here or on the
# SSH host. The driver is crash.py (its
# header says what it checks); CRASH_SEED=N replays a seed it printed, and
# BATON_CRASH_LOG=FILE appends the outcome lines to FILE.
#
# With root, the plan also has steps on the test sshd (ssh_helpers.bash);
# without, those are left out and a test of their own says it skipped.

load helpers
load ssh_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }

setup() {
	if [ -z "${SSH_SKIP:-}" ]; then
		ssh_setup
	else
		e2e_setup
	fi
	export BATON_STATE_DIR="$E2E_TMP/state"
}

teardown() {
	if [ -z "${SSH_SKIP:-}" ]; then
		ssh_teardown
	else
		e2e_teardown
	fi
}

CRASH_PY="$E2E_DIR/crash.py"

# crash_run [ARGS...]: crash.py with this test's binary, mark and scratch space, bounded in time.
crash_run() {
	local seed=${CRASH_SEED:-$(((RANDOM << 15 | RANDOM) + 1))}
	run timeout -k 5 170 "$E2E_PY" "$CRASH_PY" --baton "$BATON" --work "$E2E_TMP/crash" --mark "$E2E_MARK" \
		--seed "$seed" ${BATON_CRASH_LOG:+--log "$BATON_CRASH_LOG"} "$@"
	# the outcome lines show in bats' output (and in the TAP file) whatever the result
	printf '# %s\n' "${lines[@]}" >&3
}

@test "crash: 20 SIGKILLs at random moments; resume runs what was not recorded succeeded exactly once, and nothing is left running" {
	mkdir -p "$E2E_TMP/crash"
	if [ -z "${SSH_SKIP:-}" ]; then
		crash_run --inventory "$INV" --rt "$RT" --user "$SSH_HARNESS_USER" --known-hosts "$SSH_KNOWN_HOSTS"
	else
		crash_run
	fi
	assert_status 0
	assert_match "$output" "^crash: seed [0-9]+ \\(CRASH_SEED=[0-9]+ replays it\\)"
	assert_match "$output" "^crash: 20 iterations, all held$"
	local n
	n=$(grep -cE '^crash [0-9]+: killed at [0-9.]+s(, its resume killed at [0-9.]+s)?: ([0-9]+ recorded succeeded, [0-9]+ ran again, [0-9]+ ran after resume, resume exit 0, leftovers 0|before the run was recorded, 0 tasks ran)$' <<<"$output")
	assert_eq "$n" 20 "outcome lines that held"
	# every fourth time, the resume was killed too, and the next one carried over from both
	n=$(grep -c ', its resume killed at ' <<<"$output")
	assert_ge "$n" 3 "iterations whose resume was killed too"
	# the kills landed at different places: some before most tasks, some after
	n=$(sed -nE 's/^crash [0-9]+: killed at [0-9.]+s: ([0-9]+) recorded succeeded.*/\1/p' <<<"$output" | sort -n | uniq | wc -l)
	assert_ge "$n" 5 "distinct numbers of tasks recorded succeeded at the kill"
}

@test "crash: the plan's steps on SSH hosts (needs root for the test sshd)" {
	[ -z "${SSH_SKIP:-}" ] || skip "$SSH_SKIP (the crash test above ran without its on: steps)"
	# the crash test above ran them; what is left to show: a killed run's remote commands end by themselves,
	# while its local ones go on until resume (or cancel) ends them
	local p
	p=$(plan remote <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: both
    parallel:
      - { id: here, run: "sleep 30.$E2E_MARK" }
      - { id: there, on: fleet, run: ": crash-$M; sleep 30" }
EOF
)
	"$BATON" run "$p" --inventory "$INV" --output quiet --events "$EV" 3>&- &
	local pid=$!
	SSH_BG_PIDS="$SSH_BG_PIDS $pid"
	wait_remote "crash-$M" 3
	wait_for_event "$EV" task.process
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	ssh_harness_wait_gone "crash-$M" 5 || fail "remote commands of the killed run still running after 5 s: $(ssh_harness_list "crash-$M")"
	[ -n "$(mark_pids)" ] || fail "the local command ended with the run; it should run on until resume or cancel ends it"
	run --separate-stderr b cancel
	assert_status 0
	assert_contains "$stderr" "had crashed: ended 1 process group it left running here"
	assert_contains "$stderr" "3 tasks running on remote hosts; each ends there when its connection is gone"
	assert_no_leftovers
}
