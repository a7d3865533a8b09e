#!/usr/bin/env bats
# Timeouts, kill_grace, the plan's deadline, signals, and no process left
# behind. Leftovers are found (in /proc) through a per-test $E2E_MARK that is
# part of every sleep's argument.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

@test "timeout per attempt ends the task with status timeout" {
	p=$(plan to <<EOF
steps:
  - id: slow
    run: sleep 30.$E2E_MARK
    timeout: 300ms
  - id: after
    run: touch after-marker
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("slow", "after")')" "timeout skipped"
	assert_eq "$(ev "$EV" 'tend("slow")["status"]' 'tend("slow")["exit_code"]' 'tend("slow")["signal"]')" $'timeout\nnull\n15'
	d=$(ev "$EV" 'tend("slow")["duration_ms"]')
	assert_ge "$d" 290 "duration of the timed-out attempt"
	assert_le "$d" 2000 "duration of the timed-out attempt"
	assert_contains "$(ev "$EV" 'tend("slow")["reason"]')" "timed out"
	assert_match "$output" '\[slow\] .*timeout'
	assert_eq "$(ev "$EV" 'run_end()["counts"]["timeout"]')" 1
	assert_no_leftovers
	assert_file_absent after-marker
}

@test "kill_grace: a command that ignores SIGTERM is SIGKILLed after the grace" {
	p=$(plan grace <<EOF
steps:
  - id: stubborn
    run: trap '' TERM; echo ready; sleep 30.$E2E_MARK; sleep 31.$E2E_MARK
    timeout: 300ms
    kill_grace: 700ms
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'tend("stubborn")["status"]' 'tend("stubborn")["signal"]')" $'timeout\n9'
	d=$(ev "$EV" 'tend("stubborn")["duration_ms"]')
	assert_ge "$d" 950 "ms until SIGKILL (timeout 300ms + grace 700ms)"
	assert_le "$d" 3000 "ms until SIGKILL"
	assert_eq "$(ev "$EV" 'lines("stubborn")')" ready
	assert_no_leftovers
}

@test "a timed-out task leaves no descendant behind, even one in the background" {
	p=$(plan bg <<EOF
steps:
  - parallel:
      - id: background
        run: sleep 30.$E2E_MARK & sleep 31.$E2E_MARK
      - id: nested-shell
        run: sh -c 'sleep 32.$E2E_MARK & sleep 33.$E2E_MARK; wait'
      - id: subshell
        run: ( sleep 34.$E2E_MARK ) ; true
      - id: bash-bg
        shell: bash
        run: (sleep 35.$E2E_MARK &) ; sleep 36.$E2E_MARK
    mode: settle
    timeout: 400ms
EOF
)
	# the children must have started before the timeout fires
	start=$(date +%s%N)
	run b run "$p" --output quiet --events "$EV"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_status 1
	ev_valid "$EV"
	tasks='("parallel-1.background", "parallel-1.nested-shell", "parallel-1.subshell", "parallel-1.bash-bg")'
	assert_eq "$(ev "$EV" "[tend(t)['status'] for t in $tasks]")" "timeout timeout timeout timeout"
	# SIGTERM went to each whole group at the timeout: every task ended then,
	# not kill_grace (5s) later, when the final sweep of the group would have
	# killed what the shell left running
	assert_le "$(ev "$EV" "max(tend(t)['duration_ms'] for t in $tasks)")" 2500 \
		"ms for the slowest timed-out task (timeout 400ms; kill_grace 5s)"
	assert_le "$elapsed" 4000 "ms for the run (timeout 400ms; kill_grace 5s)"
	assert_no_leftovers
}

@test "a timed-out task ends even when a setsid descendant keeps its output open" {
	# The descendant escapes the process group; baton cannot wait for EOF on
	# the task's pipes forever: the timeout must still bound the task.
	p=$(plan setsid <<EOF
steps:
  - id: escapee
    run: setsid sleep 6.$E2E_MARK & sleep 30.$E2E_MARK
    timeout: 300ms
    kill_grace: 300ms
EOF
)
	start=$(date +%s%N)
	run b run "$p" --output quiet --events "$EV"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("escapee")["status"]')" timeout
	assert_le "$elapsed" 3000 "ms for baton to finish (timeout 300ms + grace 300ms)"
}

@test "a task that exits leaves nothing of its process group behind: a nohup'd background process is killed before the task ends" {
	p=$(plan nohup <<EOF
steps:
  - id: starter
    run: nohup sleep 351.$E2E_MARK >/dev/null 2>&1 & echo started
  - id: after
    run: ps -eo args | grep -c '^sleep 351\\.$E2E_MARK' || true
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'tend("starter")["status"]' 'lines("starter")' 'lines("after")')" $'success\nstarted\n0' \
		"the next step found the background process gone"
	assert_no_leftovers
}

@test "what a task leaves running in its process group is killed when the task ends, before the next step (checked by pid)" {
	# gone PIDFILE: "gone" once the pid in PIDFILE is no longer this test's
	# sleep (exited, a zombie, or the pid reused), "alive" if it still is
	# after 2 s (SIGKILL takes effect when the process is next scheduled)
	cat >"$E2E_TMP/gone.sh" <<'EOF'
pid=$(cat "$1") i=0
while [ $i -lt 100 ]; do
	st=$(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$pid/stat" 2>/dev/null)
	case $st in '' | Z) echo gone; exit 0 ;; esac
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "^sleep 353\.$E2E_MARK" || { echo gone; exit 0; }
	i=$((i + 1))
	sleep 0.02
done
echo alive
EOF
	p=$(plan sweep <<EOF
steps:
  - id: starter
    run: sleep 353.$E2E_MARK >/dev/null 2>&1 & echo \$! >"$E2E_TMP/bg.pid"; echo started
  - id: after
    run: sh "$E2E_TMP/gone.sh" "$E2E_TMP/bg.pid"
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	# the background sleep's output is not the task's: the task ends as its shell exits
	assert_eq "$(ev "$EV" 'tend("starter")["status"]' 'lines("starter")')" $'success\nstarted'
	assert_eq "$(ev "$EV" 'seq("task.end", task="starter") < seq("task.start", task="after")')" true
	assert_eq "$(ev "$EV" 'lines("after")')" gone "the background sleep when the next step ran"
	assert_eq "$(sh "$E2E_TMP/gone.sh" "$E2E_TMP/bg.pid")" gone "the background sleep after the run"
	assert_no_leftovers
}

@test "a cancel sends SIGTERM to the task's whole process group: a descendant's TERM trap runs, the task ends without waiting for kill_grace" {
	# trigger fails (fail-fast) only once the descendant has set its trap
	p=$(plan term <<EOF
steps:
  - parallel:
      - id: graceful
        kill_grace: 3s
        run: |
          sh -c 'trap "echo descendant got SIGTERM; exit 0" TERM; touch "$E2E_TMP/ready"; while :; do sleep 0.05; done' &
          wait
      - id: trigger
        run: until [ -e "$E2E_TMP/ready" ]; do sleep 0.01; done; exit 1
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'tend("parallel-1.graceful")["status"]')" cancelled
	assert_eq "$(ev "$EV" 'lines("parallel-1.graceful", "stdout")')" "descendant got SIGTERM" \
		"the descendant (not the command's own process) got SIGTERM"
	assert_le "$(ev "$EV" 'ms(tend("parallel-1.graceful")) - ms(tend("parallel-1.trigger"))')" 2000 \
		"ms from the failure to the cancelled task's end: it ended when its descendant left, not after kill_grace (3s)"
}

@test "a background process that keeps the task's output open: late output within kill_grace is kept, then the group is killed and the task ends" {
	p=$(plan holder <<EOF
steps:
  - id: holder
    kill_grace: 1s
    run: (sleep 0.3; echo late; sleep 352.$E2E_MARK) & echo early
EOF
)
	start=$(date +%s%N)
	run b run "$p" --output plain --events "$EV"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_status 0
	assert_eq "$(ev "$EV" 'tend("holder")["status"]' 'lines("holder")')" $'success\nearly late'
	d=$(ev "$EV" 'tend("holder")["duration_ms"]')
	assert_ge "$d" 950 "ms: the output was held open for kill_grace (1s) after the command exited"
	assert_le "$elapsed" 4000 "ms for the run: the holder was killed after kill_grace"
	assert_no_leftovers
}

@test "the plan's timeout stops the run with exit status 3" {
	p=$(plan deadline <<EOF
timeout: 600ms
steps:
  - id: first
    run: "true"
  - id: slow
    run: sleep 30.$E2E_MARK; echo never
  - id: after
    run: touch after-marker
EOF
)
	start=$(date +%s%N)
	run b run "$p" --output plain --events "$EV"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_status 3
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'run_end()["status"]' 'run_end()["exit_code"]')" $'timeout\n3'
	assert_eq "$(ev "$EV" 'statuses("first", "slow", "after")')" "success cancelled cancelled"
	assert_le "$elapsed" 3000 "ms for the run (plan timeout 600ms)"
	assert_contains "$output" "exit 3"
	assert_no_leftovers
	assert_file_absent after-marker
}

@test "the plan's timeout also covers a task that ignores SIGTERM" {
	p=$(plan deadline <<EOF
timeout: 400ms
steps:
  - id: stubborn
    run: trap '' TERM; sleep 30.$E2E_MARK
    kill_grace: 300ms
EOF
)
	start=$(date +%s%N)
	run b run "$p" --output quiet --events "$EV"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_status 3
	assert_eq "$(ev "$EV" 'tend("stubborn")["signal"]')" 9
	assert_le "$(ev "$EV" 'tend("stubborn")["duration_ms"]')" 2500 "ms until SIGKILL (plan timeout 400ms + kill_grace 300ms)"
	assert_le "$elapsed" 4000 "ms for the run (plan timeout 400ms + kill_grace 300ms)"
	assert_no_leftovers
}

@test "a timeout applies to each attempt and a timed-out attempt can be retried" {
	p=$(plan toretry <<EOF
steps:
  - id: t
    run: '[ "\$BATON_ATTEMPT" -ge 2 ] || sleep 30.$E2E_MARK'
    timeout: 300ms
    retry: { attempts: 2, delay: 10ms }
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[e["status"] for e in of("task.end")]')" "timeout success"
	# the shell and its sleep both got SIGTERM at the timeout (not the sleep
	# killed kill_grace, 5s, later)
	assert_le "$(ev "$EV" 'tend("t", 1)["duration_ms"]')" 2000 "ms for the timed-out attempt (timeout 300ms; kill_grace 5s)"
	assert_no_leftovers
}

# start baton in the background, wait for a task to run, send SIG, and check
# the exit status, the events and that no process is left
signal_run() { # SIG EXPECTED_STATUS
	p=$(plan sig <<EOF
steps:
  - parallel:
      - { id: plain, run: "sleep 30.$E2E_MARK" }
      - { id: background, run: "sleep 31.$E2E_MARK & sleep 32.$E2E_MARK" }
      - id: stubborn
        run: trap '' INT TERM; sleep 33.$E2E_MARK
        kill_grace: 300ms
  - id: after
    run: touch after-marker
EOF
)
	"$BATON" run "$p" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	wait_for_event "$EV" task.start
	# give all three tasks a moment to have spawned their children
	for i in $(seq 40); do
		[ "$(grep -c '"type":"task.start"' "$EV")" -ge 3 ] && break
		sleep 0.05
	done
	sleep 0.2
	start=$(date +%s%N)
	kill -"$1" "$pid"
	wait_pid "$pid" 15
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$WAIT_STATUS" "$2" "baton's exit status after SIG$1 (output: $(cat out.txt))"
	# every group got SIGTERM at once, the stubborn one SIGKILL 300ms later
	# (not kill_grace, 5s, later for what a shell left running)
	assert_le "$elapsed" 3000 "ms from SIG$1 to baton's exit (kill_grace 300ms for the stubborn task, 5s for the others)"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'run_end()["status"]' 'run_end()["exit_code"]')" "cancelled"$'\n'"$2"
	assert_eq "$(ev "$EV" 'statuses("parallel-1.plain", "parallel-1.background", "parallel-1.stubborn", "after")')" \
		"cancelled cancelled cancelled cancelled"
	assert_contains "$(cat out.txt)" "summary"
	assert_no_leftovers
	assert_file_absent after-marker
}

@test "SIGINT mid-run exits 130 and leaves no child behind" {
	signal_run INT 130
}

@test "SIGTERM mid-run exits 143 and leaves no child behind" {
	signal_run TERM 143
}

@test "a second SIGINT kills the running tasks at once" {
	p=$(plan sig2 <<EOF
steps:
  - id: stubborn
    run: trap '' INT TERM; sleep 30.$E2E_MARK
    kill_grace: 30s
EOF
)
	"$BATON" run "$p" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	wait_for_event "$EV" task.start
	sleep 0.2
	kill -INT "$pid"
	sleep 0.3
	kill -0 "$pid" 2>/dev/null || fail "baton ended before the grace of 30s (it should wait)"
	start=$(date +%s%N)
	kill -INT "$pid"
	wait_pid "$pid" 5
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$WAIT_STATUS" 130 "exit status after two SIGINTs"
	assert_le "$elapsed" 2000 "ms from the second SIGINT to baton's exit"
	assert_eq "$(ev "$EV" 'tend("stubborn")["signal"]')" 9
	assert_no_leftovers
}

@test "the plan's timeout ends the run promptly during a retry delay or a sleep" {
	p=$(plan retrydelay <<'EOF'
timeout: 500ms
steps:
  - id: flaky
    run: exit 1
    retry: { attempts: 3, delay: 10s }
EOF
)
	start=$(date +%s%N)
	run b run "$p" --output quiet --events "$EV"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_status 3
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'status("flaky")')" cancelled
	assert_le "$elapsed" 3000 "ms for the run (plan timeout 500ms, retry delay 10s)"
	p=$(plan sleeping <<'EOF'
timeout: 500ms
steps:
  - sleep: 30s
  - id: after
    run: touch after-marker
EOF
)
	start=$(date +%s%N)
	run b run "$p" --output quiet --events "$EV"
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_status 3
	ev_valid "$EV"
	assert_le "$elapsed" 3000 "ms for the run (plan timeout 500ms, sleep 30s)"
	assert_file_absent after-marker
}

@test "SIGINT during a retry delay ends the run at once with 130" {
	p=$(plan sigretry <<'EOF'
steps:
  - id: flaky
    run: exit 1
    retry: { attempts: 3, delay: 30s }
EOF
)
	"$BATON" run "$p" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	wait_for_event "$EV" task.retry
	start=$(date +%s%N)
	kill -INT "$pid"
	wait_pid "$pid" 5
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_eq "$WAIT_STATUS" 130 "exit status after SIGINT during a retry delay"
	assert_le "$elapsed" 2000 "ms from SIGINT to baton's exit (retry delay 30s)"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'status("flaky")' 'run_end()["status"]')" $'cancelled\ncancelled'
}

@test "a slow reader of baton's output does not delay a timeout" {
	# baton's loop must not block on a full stdout pipe: timers still fire
	# (the busy task's output can wait, the deadline cannot).
	p=$(plan backpressure <<EOF
steps:
  - mode: settle
    parallel:
      - id: chatty
        run: yes aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa | head -n 20000
      - id: slow
        run: sleep 30.$E2E_MARK
        timeout: 300ms
EOF
)
	b run "$p" --output plain --events "$EV" | { sleep 2; cat >/dev/null; }
	assert_eq "${PIPESTATUS[0]}" 1 "exit status (the timed-out step failed the run)"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'tend("parallel-1.slow")["status"]')" timeout
	assert_le "$(ev "$EV" 'tend("parallel-1.slow")["duration_ms"]')" 1500 "ms until the 300ms timeout fired"
}
