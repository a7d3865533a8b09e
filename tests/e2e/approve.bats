#!/usr/bin/env bats
# `approve` gates: asked on the terminal (driven in tmux), --yes and
# BATON_APPROVE=all, no terminal, a timeout; the loop goes on while a gate asks.

load helpers

setup() { e2e_setup; }
teardown() {
	[ -z "${SOCK:-}" ] || tmux -S "$SOCK" kill-server 2>/dev/null || true
	e2e_teardown
}

# tmux_start COLS ROWS COMMAND: a detached tmux server of its own, running COMMAND.
tmux_start() {
	SOCK="$BATS_TEST_TMPDIR/tmux.sock"
	tmux -S "$SOCK" -f /dev/null new-session -d -x "$1" -y "$2" "$3"
	tmux -S "$SOCK" set -g history-limit 5000
}

# tmux_wait ERE [TRIES]: waits (0.05 s a try, 200 tries at most) until the pane shows ERE.
tmux_wait() {
	local i
	for i in $(seq "${2:-200}"); do
		tmux -S "$SOCK" capture-pane -p -J -S - | grep -Eq -- "$1" && return 0
		sleep 0.05
	done
	fail "the pane never showed '$1':
$(tmux -S "$SOCK" capture-pane -p -J -S -)"
}

pane() { tmux -S "$SOCK" capture-pane -p -J -S -; }

gate_plan() {
	plan gate <<'EOF2'
vars: { env: prod }
steps:
  - run: echo before
  - id: deploy-prod
    approve: "Deploy to ${{ vars.env }}?"
  - run: echo after-the-gate
EOF2
}

@test "tty: y at the prompt approves; the next step runs; approve.wait and approve.end (by tty)" {
	p=$(gate_plan)
	tmux_start 100 20 "NO_COLOR=1 $BATON run '$p' --output tty --events '$EV'; echo \"exit=\$?\"; stty -a | grep -o -- ' -\\?icanon' | sed 's/^/mode:/'; sleep 20"
	tmux_wait '⏸ approve deploy-prod: Deploy to prod\? \[y/N\]'
	sleep 0.3
	assert_not_contains "$(pane)" "after-the-gate"
	# the live row shows what is typed (the terminal does not echo it), backspace included
	tmux_wait '^  ⏸ approve deploy-prod: Deploy to prod\? \[y/N\] type y and Enter \(waiting [0-9]+s\)$'
	tmux -S "$SOCK" send-keys n BSpace y
	tmux_wait '^  ⏸ approve deploy-prod: Deploy to prod\? \[y/N\] y \(waiting [0-9]+s\)$'
	tmux -S "$SOCK" send-keys Enter
	tmux_wait 'exit=[0-9]+'
	screen=$(pane)
	assert_contains "$screen" "exit=0"
	assert_contains "$screen" "✓ approved deploy-prod (tty)"
	assert_contains "$screen" "after-the-gate"
	# the terminal is back in canonical mode
	assert_contains "$screen" "mode: icanon"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'one("approve.wait")["step"]' 'one("approve.wait")["message"]')" "deploy-prod
Deploy to prod?"
	assert_eq "$(ev "$EV" '[one("approve.end")[k] for k in ("step", "approved", "by")]' 'one("approve.end")["message"]')" "deploy-prod true tty
Deploy to prod?"
	# the question came before the next step started
	assert_eq "$(ev "$EV" 'seq("approve.end") < seq("task.start", task="run-3")')" true
}

@test "tty: n at the prompt fails the gate, exit 1, later steps skipped" {
	p=$(gate_plan)
	tmux_start 100 20 "NO_COLOR=1 $BATON run '$p' --output tty --events '$EV'; echo \"exit=\$?\"; sleep 20"
	tmux_wait '⏸ approve deploy-prod'
	tmux -S "$SOCK" send-keys n Enter
	tmux_wait 'exit=[0-9]+'
	screen=$(pane)
	assert_contains "$screen" "exit=1"
	assert_contains "$screen" "not approved at the prompt"
	assert_not_contains "$screen" "after-the-gate"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[one("approve.end")[k] for k in ("approved", "by")]')" "false tty"
	assert_eq "$(ev "$EV" 'one("step.end", step="deploy-prod")["reason"]' 'statuses("deploy-prod", "run-3")')" "not approved at the prompt
failed skipped"
}

@test "plain output piped through tee still asks on the terminal; YES (any case) approves" {
	p=$(gate_plan)
	tmux_start 100 20 "$BATON run '$p' --output plain | tee '$BATS_TEST_TMPDIR/log'; echo \"exit=\${PIPESTATUS[0]}\"; sleep 20"
	tmux_wait '⏸ approve deploy-prod: Deploy to prod\? \[y/N\]'
	tmux -S "$SOCK" send-keys ' YeS' Enter
	tmux_wait 'exit=[0-9]+'
	assert_contains "$(pane)" "exit=0"
	assert_contains "$(cat log)" "✓ approved deploy-prod (tty)"
	assert_contains "$(cat log)" "after-the-gate"
}

@test "--yes and BATON_APPROVE=all approve without asking, and the events say by what" {
	p=$(gate_plan)
	run setsid -w "$BATON" run "$p" --yes --output plain --events "$EV" </dev/null
	assert_status 0
	assert_contains "$output" "after-the-gate"
	assert_not_contains "$output" "[y/N]"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'len(of("approve.wait"))' '[one("approve.end")[k] for k in ("approved", "by")]')" "0
true --yes"
	BATON_APPROVE=all run setsid -w "$BATON" run "$p" --output plain --events "$EV" </dev/null
	assert_status 0
	assert_contains "$output" "after-the-gate"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[one("approve.end")[k] for k in ("approved", "by")]')" "true BATON_APPROVE"
	# any other value of BATON_APPROVE approves nothing
	BATON_APPROVE=yes run setsid -w "$BATON" run "$p" --output plain </dev/null
	assert_status 1
}

@test "no terminal: the gate fails at once, saying how to approve" {
	p=$(gate_plan)
	start=$(date +%s%N)
	run setsid -w "$BATON" run "$p" --output plain --events "$EV" </dev/null
	ms=$((($(date +%s%N) - start) / 1000000))
	assert_status 1
	assert_contains "$output" "no terminal to ask on: pass --yes or set BATON_APPROVE=all"
	assert_not_contains "$output" "after-the-gate"
	[ "$ms" -lt 8000 ] || fail "took ${ms}ms (at once, not after waiting for an answer)"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[one("approve.end")[k] for k in ("approved", "by")]' 'len(of("approve.wait"))')" "false no terminal
0"
	# a detached run has no terminal either
	run "$BATON" run "$p" --detach
	assert_status 0
	id=$(printf '%s\n' "$output" | sed -n 's/^run \([^ ]*\) started.*/\1/p')
	run "$BATON" wait "$id"
	assert_status 1
	run "$BATON" status "$id"
	assert_contains "$output" "no terminal to ask on"
}

@test "timeout: nobody answers, the gate fails after it with the reason; the terminal is restored" {
	p=$(plan to <<'EOF2'
steps:
  - approve: { message: "Go?", timeout: 1s }
  - run: echo after-the-gate
EOF2
)
	tmux_start 100 20 "NO_COLOR=1 $BATON run '$p' --output tty --events '$EV'; echo \"exit=\$?\"; stty -a | grep -o -- ' -\\?echo ' | sed 's/^/mode:/'; sleep 20"
	tmux_wait 'exit=[0-9]+'
	screen=$(pane)
	assert_contains "$screen" "exit=1"
	assert_contains "$screen" "not approved within 1.0s"
	assert_contains "$screen" "mode: echo"
	assert_not_contains "$screen" "after-the-gate"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[one("approve.end")[k] for k in ("approved", "by")]')" "false timeout"
	ms=$(ev "$EV" 'one("step.end", step="approve-1")["duration_ms"]')
	assert_ge "$ms" 950 "the gate's duration"
	assert_le "$ms" 3000 "the gate's duration"
	assert_eq "$(ev "$EV" '[one("step.end", step="approve-1")[k] for k in ("status", "reason")]')" "timeout not approved within 1.0s"
}

@test "the loop goes on while a gate asks: with -j 1 a sibling runs, its timeout fires, output flows" {
	p=$(plan busy <<'EOF2'
steps:
  - parallel:
      - id: gate
        approve: "Go?"
      - id: slow
        run: sleep 10
        timeout: 500ms
        continue_on_error: true
      - id: ticks
        run: for i in 1 2 3; do echo tick$i; sleep 0.2; done
  - id: after
    run: echo after-the-gate
EOF2
)
	tmux_start 100 20 "NO_COLOR=1 $BATON run '$p' -j 1 --output plain --events '$EV'; echo \"exit=\$?\"; sleep 20"
	tmux_wait '⏸ approve parallel-1.gate: Go\? \[y/N\]'
	tmux_wait 'tick3'
	tmux -S "$SOCK" send-keys y Enter
	tmux_wait 'exit=[0-9]+'
	assert_contains "$(pane)" "exit=0" # slow's timeout is tolerated
	ev_valid "$EV"
	# between the question and its answer: the sibling's timeout and the other's output
	w=$(ev "$EV" 'seq("approve.wait")')
	e=$(ev "$EV" 'seq("approve.end")')
	assert_eq "$(ev "$EV" 'tend("parallel-1.slow")["status"]')" timeout
	assert_ge "$(ev "$EV" 'tend("parallel-1.slow")["seq"]')" "$w" "the sibling's timeout came after the question"
	assert_le "$(ev "$EV" 'tend("parallel-1.slow")["seq"]')" "$e" "the sibling's timeout came before the answer"
	assert_le "$(ev "$EV" '[x for x in of("task.output") if x["line"] == "tick3"][0]["seq"]')" "$e" "the output flowed before the answer"
	assert_eq "$(ev "$EV" '[one("approve.end")[k] for k in ("approved", "by")]' 'status("after")' )" "true tty
success"
}

@test "a fan-out's gates ask one at a time; Ctrl-C while asking cancels the run" {
	p=$(plan fan <<'EOF2'
steps:
  - for_each: [a, b]
    approve: "ship ${{ item }}?"
EOF2
)
	tmux_start 100 20 "NO_COLOR=1 $BATON run '$p' --output tty --events '$EV'; echo \"exit=\$?\"; stty -a | grep -o -- ' -\\?icanon' | sed 's/^/mode:/'; sleep 20"
	tmux_wait '⏸ approve approve-1#0 \(a\): ship a\? \[y/N\]'
	sleep 0.3
	assert_not_contains "$(pane)" "ship b?"
	tmux -S "$SOCK" send-keys y Enter
	tmux_wait '⏸ approve approve-1#1 \(b\): ship b\? \[y/N\]'
	tmux -S "$SOCK" send-keys C-c
	tmux_wait 'exit=[0-9]+'
	screen=$(pane)
	assert_contains "$screen" "exit=130"
	assert_contains "$screen" "mode: icanon"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[(x["type"], x["label"], x.get("by")) for x in E if x["type"].startswith("approve.")]')" \
		"approve.wait a null approve.end a tty approve.wait b null approve.end b cancelled"
	assert_eq "$(ev "$EV" 'one("run.end")["status"]')" cancelled
}

@test "dry run and plan show the gate and ask nothing" {
	p=$(gate_plan)
	run "$BATON" run "$p" --dry-run
	assert_status 0
	assert_contains "$output" "deploy-prod  [approve: Deploy to \${{ vars.env }}?]"
	run "$BATON" plan "$p" --output json
	assert_status 0
	assert_contains "$output" '"approve":"Deploy to ${{ vars.env }}?"'
}

@test "--output json on a terminal: the question is asked on the terminal itself, secrets masked" {
	p=$(plan secret <<'EOF2'
secrets: [token]
steps:
  - approve: "ship with ${{ vars.token }}?"
  - run: echo after-the-gate
EOF2
)
	tmux_start 100 20 "BATON_SECRET_TOKEN=hunter2 $BATON run '$p' --output json >'$BATS_TEST_TMPDIR/out.jsonl'; echo \"exit=\$?\"; sleep 20"
	tmux_wait '^⏸ approve approve-1: ship with \*\*\*\? \[y/N\]'
	tmux -S "$SOCK" send-keys y Enter
	tmux_wait 'exit=[0-9]+'
	assert_contains "$(pane)" "exit=0"
	assert_not_contains "$(pane)" "hunter2"
	ev_valid out.jsonl
	assert_eq "$(ev out.jsonl 'one("approve.wait")["message"]' '[one("approve.end")[k] for k in ("approved", "by")]')" "ship with ***?
true tty"
	assert_not_contains "$(cat out.jsonl)" "hunter2"
}
