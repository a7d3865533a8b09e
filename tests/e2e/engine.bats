#!/usr/bin/env bats
# Engine correctness (issue 9): a node ends exactly once, handlers see the
# run's real status, a second interrupt stops everything at once, long
# for_each batches take no stack, retry delays saturate instead of
# overflowing, and the local executor survives failing system calls
# (through tests/fault/inject.c, preloaded). Each test failed before its fix.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

: "${FAULT_SO:=$REPO_DIR/build/fault.so}"

# The fault library is built by `make e2e` (and `make mutants`): missing, the
# test fails rather than skips, so a fault test can never pass unseen.
need_fault_so() {
	[ -f "$FAULT_SO" ] || fail "$FAULT_SO is not built (make build/fault.so)"
}

@test "a join whose finally fails fails the run, and what follows waits for the finally" {
	p=$(plan joinfin <<EOF
steps:
  - { id: bg, async: bg, run: sleep 0.3 }
  - id: j
    join: bg
    finally: [{ id: fin, run: "sleep 0.3; exit 1" }]
  - { id: next, run: echo next }
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'len(of("step.end", step="j"))')" 1 "the join ends once"
	assert_eq "$(ev "$EV" 'statuses("j", "next")')" "failed skipped"
	assert_eq "$(ev "$EV" 'seq("step.end", step="j.finally.fin") < seq("step.end", step="j")')" true \
		"the join's end comes after its finally's"
	assert_eq "$(ev "$EV" 'len(of("task.start", task="next"))')" 0 "next never starts"
	assert_contains "$output" "run failed"
}

@test "the plan's timeout with an unjoined async step running runs on_failure, not on_success" {
	p=$(plan asynctimeout <<EOF
timeout: 500ms
steps:
  - { id: bg, async: bg, run: sleep 30.$E2E_MARK }
  - { id: t, run: "true" }
on_success: [{ id: ons, run: 'echo ON-SUCCESS \${{ run.status }}' }]
on_failure: [{ id: onf, run: 'echo ON-FAILURE \${{ run.status }}' }]
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 3
	assert_contains "$output" "ON-FAILURE timeout"
	assert_not_contains "$output" "ON-SUCCESS"
	assert_eq "$(ev "$EV" 'run_end()["status"]')" timeout
	assert_no_leftovers
}

@test "Ctrl-C with an unjoined async step running runs neither on_success nor on_failure, but finally" {
	p=$(plan asyncint <<EOF
steps:
  - { id: bg, async: bg, run: sleep 30.$E2E_MARK }
  - { id: t, run: "true" }
on_success: [{ id: ons, run: echo ON-SUCCESS }]
on_failure: [{ id: onf, run: echo ON-FAILURE }]
finally: [{ id: fin, run: 'echo FINALLY \${{ run.status }}' }]
EOF
)
	"$BATON" run "$p" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	wait_for_event "$EV" 'step.end","step":"t'
	kill -INT "$pid"
	wait_pid "$pid" 10
	assert_eq "$WAIT_STATUS" 130
	out=$(cat out.txt)
	assert_contains "$out" "FINALLY cancelled"
	assert_not_contains "$out" "ON-SUCCESS"
	assert_not_contains "$out" "ON-FAILURE"
	assert_no_leftovers
}

@test "a second SIGINT stops a sleep inside finally at once, and nothing after it starts" {
	p=$(plan sig2fin <<EOF
steps:
  - { id: long, run: sleep 30.$E2E_MARK }
finally: [{ id: nap, sleep: 8s }, { id: cleanup, run: echo cleanup }]
EOF
)
	"$BATON" run "$p" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	wait_for_event "$EV" task.start
	kill -INT "$pid"
	wait_for_event "$EV" 'step.start","step":"finally.nap'
	kill -INT "$pid"
	start=$(date +%s%N)
	wait_pid "$pid" 10
	took=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$WAIT_STATUS" 130
	assert_le "$took" 2000 "ms from the second SIGINT to baton's exit (the sleep is 8 s)"
	assert_eq "$(ev "$EV" 'len(of("task.start", task="finally.cleanup"))')" 0 "cleanup never starts"
	assert_eq "$(ev "$EV" 'statuses("finally.nap", "finally.cleanup")')" "cancelled cancelled"
	assert_no_leftovers
}

# A for_each of N items in batches of one, every item skipped: each batch ends
# as it starts. This recursed once per batch (a segfault at 30,000).
skipped_batches_plan() {
	"$E2E_PY" -S -c '
import sys
n = int(sys.argv[1])
print("steps:\n  - id: many\n    for_each: [" + ",".join(map(str, range(n))) + "]")
print("    batch: {size: 1}\n    when: \"false\"\n    run: echo ${{ item }}")' "$1" >"$2"
}

@test "a for_each of 30,000 one-item batches that all skip runs, with every batch and item accounted for" {
	skipped_batches_plan 30000 many.yaml
	run b run many.yaml --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'len(of("batch.start"))' 'len(of("batch.end"))' 'run_end()["counts"]["skipped"]')" \
		"$(printf '30000\n30000\n30000')"
	assert_eq "$(ev "$EV" 'of("batch.start")[-1]["instances"]')" 29999
}

@test "a for_each of 10^6 one-item batches that all skip ends with exit 0" {
	skipped_batches_plan 1000000 huge.yaml
	run b run huge.yaml --output quiet
	assert_status 0
}

@test "retry delays saturate: backoff 1000 from 0ms stays 0, and 200 attempts all run" {
	p=$(plan nan <<'EOF'
steps:
  - id: flaky
    run: exit 1
    retry: {attempts: 200, delay: 0ms, backoff: 1000, jitter: 0}
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'len(of("task.end", task="flaky"))' 'sorted(set(e["delay_ms"] for e in of("task.retry")))')" \
		"$(printf '200\n0')"
}

@test "retry delays grow by the backoff up to max_delay, and jitter never passes the cap" {
	p=$(plan cap <<'EOF'
steps:
  - id: exact
    run: exit 1
    continue_on_error: true
    retry: {attempts: 6, delay: 1ms, backoff: 1000, max_delay: 20ms, jitter: 0}
  - id: jittered
    run: exit 1
    retry: {attempts: 8, delay: 10ms, backoff: 2, max_delay: 30ms, jitter: 1}
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" '[e["delay_ms"] for e in of("task.retry", task="exact")]')" "1 20 20 20 20"
	assert_eq "$(ev "$EV" 'len(of("task.retry", task="jittered"))' 'all(0 <= e["delay_ms"] <= 30 for e in of("task.retry", task="jittered"))')" \
		"$(printf '7\ntrue')"
}

@test "when pidfd_open fails (EMFILE) after the start, 40 commands that close their output still end and baton exits" {
	need_fault_so
	p=$(plan pidfd <<'EOF'
steps:
  - id: many
    for_each: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40]
    mode: settle
    run: "exec >&- 2>&-; sleep 0.3; exit ${{ item }}"
EOF
)
	BATON_FAULT=pidfd_open:2- LD_PRELOAD="$FAULT_SO" run b run "$p" -j 40 --output quiet --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'sorted(e["exit_code"] for e in of("task.end"))')" "$(seq 1 40 | tr '\n' ' ' | sed 's/ $//')" \
		"every command's own exit code, seen through SIGCHLD"
}

@test "without pidfds at all (SIGCHLD only), commands end with their exit codes and baton exits" {
	need_fault_so
	p=$(plan nopidfd <<'EOF'
steps:
  - id: quick
    for_each: [3, 4]
    mode: settle
    run: "exit ${{ item }}"
    continue_on_error: true
  - id: closed
    run: "exec >&- 2>&-; sleep 0.2; exit 7"
EOF
)
	BATON_FAULT=pidfd_open:1- LD_PRELOAD="$FAULT_SO" run b run "$p" --output quiet --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" '[tend(t)["exit_code"] for t in ("quick#0", "quick#1", "closed")]')" "3 4 7"
}

@test "a command whose output cannot be watched is stopped and fails with the reason; the run goes on" {
	need_fault_so
	p=$(plan pipeopen <<EOF
steps:
  - { id: a, run: echo a }
  - { id: b, run: sleep 30.$E2E_MARK, continue_on_error: true }
  - { id: c, run: echo c }
EOF
)
	# the 3rd and 4th uv_pipe_open calls are b's stdout and stderr
	BATON_FAULT=uv_pipe_open:3-4 LD_PRELOAD="$FAULT_SO" run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'statuses("a", "b", "c")')" "success failed success"
	assert_eq "$(ev "$EV" 'tend("b")["reason"]')" "cannot read the command's output (too many open files): it was stopped"
	assert_le "$(ev "$EV" 'tend("b")["duration_ms"]')" 2000
	assert_no_leftovers
}

@test "uv_read_start failing stops the command too, and 200 such failures leak no descriptor under ulimit -n 64" {
	need_fault_so
	"$E2E_PY" -S -c '
print("steps:")
for i in range(200): print("  - { id: s%d, run: \"sleep 5\", continue_on_error: true }" % i)' >many.yaml
	BATON_FAULT=uv_pipe_open:1- LD_PRELOAD="$FAULT_SO" run prlimit --nofile=64 "$BATON" run many.yaml --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'sorted(set(e["reason"] for e in of("task.end")))')" \
		"cannot read the command's output (too many open files): it was stopped" "no 'pipe: Too many open files'"
	BATON_FAULT=uv_read_start:2 LD_PRELOAD="$FAULT_SO" run b run many.yaml --only s0 --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'tend("s0")["reason"]')" "cannot read the command's output (invalid argument): it was stopped"
}

@test "a command's pid stays reserved (a zombie) while something it left holds its output, so its group id is not reused" {
	p=$(plan zombie <<EOF
steps:
  - id: both
    parallel:
      - id: lead
        run: 'echo \$\$ > lead.pid; setsid sleep 1.$E2E_MARK & exit 0'
        kill_grace: 1500ms
      - id: probe
        run: 'sleep 0.6; cut -d" " -f3 /proc/\$(cat lead.pid)/stat'
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("both.probe")')" Z "the exited leader is a zombie, not reaped, while the task lingers"
	assert_no_leftovers
}

@test "a command that exited 0 before fail-fast's cancel reached it is a success, not cancelled" {
	# `done` exits 0 at once, but its background sleep holds the output open,
	# so the task is still open when `boom` fails and fail-fast cancels it
	p=$(plan race <<EOF
steps:
  - id: both
    parallel:
      - id: done
        run: 'sleep 10.$E2E_MARK & exit 0'
      - id: boom
        run: 'sleep 0.3; exit 1'
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'statuses("both.done", "both.boom")' 'tend("both.done")["exit_code"]')" \
		"$(printf 'success failed\n0')"
	assert_no_leftovers
}

@test "a command that exited 0 before its timeout, its output still held open, is not a timeout" {
	p=$(plan lingertimeout <<EOF
steps:
  - id: quick
    run: 'sleep 10.$E2E_MARK & exit 0'
    timeout: 300ms
    kill_grace: 5s
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'status("quick")')" success
	assert_le "$(ev "$EV" 'tend("quick")["duration_ms"]')" 2000 "the leftover goes at the timeout, not after kill_grace"
	assert_no_leftovers
}

@test "a run the scheduler finds stalled says so and exits 70 (internal error), not 1" {
	need_fault_so
	# no pidfd for a command that closed its output, and no SIGCHLD either:
	# nothing can tell its exit, so the loop has nothing left to wait on
	p=$(plan stall <<'EOF'
steps:
  - id: closed
    run: "exec >&- 2>&-; sleep 0.2"
EOF
)
	STALL_EXPECTED=1 # the stall guard (stall_guard.bash) lets this one through
	BATON_FAULT=pidfd_open:2-,uv_signal_start_sigchld:1- LD_PRELOAD="$FAULT_SO" run b run "$p" --output plain
	assert_status 70
	assert_contains "$output" "internal error: the run stalled with work pending"
}
