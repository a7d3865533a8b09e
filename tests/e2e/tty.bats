#!/usr/bin/env bats
# The human views: the live terminal view (driven in tmux or script(1)), and
# the plain output and summary people read after a run.

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
	# scroll-on-clear off: tmux would otherwise keep a copy of a screen cleared from its top
	tmux -S "$SOCK" set -g scroll-on-clear off
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

pane() {
	tmux -S "$SOCK" capture-pane -p -J -S -
}

@test "summary: the never-started items of a failed batched for_each are listed in order, each under its own row" {
	p=$(plan order <<'EOF2'
steps:
  - id: roll
    for_each: [a, b, c, d]
    batch: { size: 1 }
    steps:
      - id: one
        run: test "${{ item }}" != b
      - id: two
        run: echo two
EOF2
)
	run b run "$p" --output plain
	assert_status 1
	rows=$(sed -n '/^summary$/,/^$/p' <<<"$output" | grep -oE 'roll[^ ]*' | tr '\n' ' ')
	assert_eq "$rows" "roll roll#0 roll.one#0 roll.two#0 roll#1 roll.one#1 roll.two#1 roll#2 roll.one#2 roll.two#2 roll#3 roll.one#3 roll.two#3 " "the summary's rows in order"
	assert_match "$output" '^  ○ cancelled    roll#2 \(c\) +$' "item #2 at the depth of an item"
	assert_match "$output" '^  ○ cancelled      roll\.one#2 \(c\) +$' "its step one level deeper"
	# the tty view's summary is the same tree
	if command -v script >/dev/null; then
		TERM=xterm NO_COLOR=1 COLUMNS=100 timeout 20 script -qfec "$BATON run '$p' --output tty" /dev/null >out.txt || true
		rows=$(tr -d '\r' <out.txt | sed -n '/^summary$/,/^$/p' | grep -oE 'roll[^ ]*' | tr '\n' ' ')
		assert_eq "$rows" "roll roll#0 roll.one#0 roll.two#0 roll#1 roll.one#1 roll.two#1 roll#2 roll.one#2 roll.two#2 roll#3 roll.one#3 roll.two#3 " "the tty summary's rows in order"
	fi
}

@test "tty: live rows of a long step's items are cut in the middle, their #N and label kept" {
	command -v tmux >/dev/null || skip "tmux is not installed"
	p=$(plan long <<EOF2
steps:
  - id: a-step-whose-name-is-far-too-long-for-a-narrow-terminal
    for_each: [app01, app02, app03]
    run: sleep 3.$E2E_MARK
EOF2
)
	tmux_start 50 20 "NO_COLOR=1 timeout --foreground 20 $BATON run '$p' --output tty; sleep 20"
	tmux_wait '3 running'
	live=$(pane | grep '▸')
	tmux -S "$SOCK" kill-server
	for i in 0 1 2; do
		assert_match "$live" "^  ▸ a-step-whose.*…#$i \\(app0$((i + 1))\\) +[0-9.]+m?s\$" "item #$i's row keeps its index and label"
	done
	while IFS= read -r line; do
		[ "${#line}" -le 49 ] || fail "a live row wider than the terminal (${#line}): '$line'"
	done <<<"$live"
}

@test "tty: a batch pause shows 'next batch in' live, counting down; plain output and the event say it too" {
	command -v tmux >/dev/null || skip "tmux is not installed"
	p=$(plan pause <<'EOF2'
steps:
  - id: roll
    for_each: [a, b]
    batch: { size: 1, pause: 25s }
    run: echo ${{ item }}
EOF2
)
	tmux_start 100 20 "NO_COLOR=1 timeout --foreground 20 $BATON run '$p' --output tty; sleep 20"
	tmux_wait '⏸ roll: next batch in 2[45]s'
	sleep 1.2
	tmux_wait '⏸ roll: next batch in 2[34]s'
	screen=$(pane)
	tmux -S "$SOCK" kill-server
	assert_contains "$screen" "[roll] batch 1 ended (1 instance); next batch in 25.0s"
	# the event carries the pause; the last batch has none
	p2=$(plan pause2 <<'EOF2'
steps:
  - id: roll
    for_each: [a, b]
    batch: { size: 1, pause: 200ms }
    run: echo ${{ item }}
EOF2
)
	run b run "$p2" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[roll] batch 1 ended (1 instance); next batch in 200ms"
	assert_match "$output" '^\[roll\] batch 2 ended \(1 instance\)$'
	assert_eq "$(ev "$EV" '[e["pause_ms"] for e in of("batch.end")]')" "200 0"
}

@test "tty: instances at a barrier are shown in the live area as 'waiting at X (n/m)'" {
	command -v tmux >/dev/null || skip "tmux is not installed"
	p=$(plan barrier <<EOF2
steps:
  - id: roll
    for_each: [app1, app2, app3]
    steps:
      - run: if [ "\${{ item }}" = app3 ]; then sleep 4.$E2E_MARK; fi
      - barrier: drained
      - run: "true"
EOF2
)
	tmux_start 100 20 "NO_COLOR=1 timeout --foreground 20 $BATON run '$p' --output tty; sleep 20"
	tmux_wait '⏸ waiting at drained \(2/3\): roll\.barrier-2#[01] \(app[12]\), roll\.barrier-2#[01] \(app[12]\)$'
	tmux_wait 'run success'
	screen=$(pane)
	tmux -S "$SOCK" kill-server
	assert_not_contains "$screen" "⏸ waiting at drained (" "no waiting row left once released (only its lines stay)"
}

@test "tty: Ctrl-C says at once that the run is cancelling and how many tasks stop; exit 130" {
	command -v tmux >/dev/null || skip "tmux is not installed"
	p=$(plan cancel <<EOF2
steps:
  - parallel:
      - { run: "trap '' TERM; sleep 30.$E2E_MARK", kill_grace: 2s }
      - { run: "trap '' TERM; sleep 30.$E2E_MARK", kill_grace: 2s }
      - { run: "trap '' TERM; sleep 30.$E2E_MARK", kill_grace: 2s }
EOF2
)
	# no timeout(1) around it: it would pass the terminal's SIGINT on, a second one (the tmux
	# server, killed at teardown, bounds it)
	tmux_start 100 20 "NO_COLOR=1 $BATON run '$p' --output tty; echo \"exit=\$?\"; sleep 20"
	tmux_wait '3 running'
	# their shells have set their traps once the three sleeps run
	local i
	for ((i = 0; i < 200; i++)); do
		[ "$(mark_pids | wc -l)" -ge 3 ] && break
		sleep 0.05
	done
	tmux -S "$SOCK" send-keys C-c
	# while the tasks ignore SIGTERM (until their kill_grace), a live row says what is going on
	tmux_wait '^  ⚠ cancelling — 3 tasks stopping \(Ctrl-C again to kill\)$' 20
	tmux_wait 'exit=[0-9]+'
	screen=$(pane)
	tmux -S "$SOCK" kill-server
	assert_contains "$screen" "⚠ cancelling — 3 tasks stopping (Ctrl-C again to kill)"
	assert_contains "$screen" "exit=130"
	assert_match "$screen" '^○ run cancelled'
}

@test "Ctrl-C twice: the second says the tasks are killed; plain output and the run.cancel events" {
	p=$(plan cancel2 <<EOF2
steps:
  - run: trap '' TERM; sleep 30.$E2E_MARK
EOF2
)
	"$BATON" run "$p" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	wait_for_event "$EV" task.process
	# the shell has set its trap once its sleep runs (TERM before it would end the task at once)
	local i
	for ((i = 0; i < 200; i++)); do
		[ -n "$(mark_pids)" ] && break
		sleep 0.05
	done
	[ -n "$(mark_pids)" ] || fail "the task's sleep did not start"
	kill -INT "$pid"
	wait_for_event "$EV" run.cancel
	kill -INT "$pid"
	wait_pid "$pid" 10
	assert_eq "$WAIT_STATUS" 130
	out=$(cat out.txt)
	assert_contains "$out" "⚠ cancelling — 1 task stopping (Ctrl-C again to kill)"
	assert_contains "$out" "⚠ killing — 1 task killed at once, no more handlers"
	assert_eq "$(ev "$EV" '" ".join("%d/%d/%s" % (e["signal"], e["running"], e["kill"]) for e in of("run.cancel"))')" "2/1/False 2/1/True"
}

@test "TERM=dumb on a terminal: plain output, no escape byte at all (auto, and --output tty)" {
	command -v script >/dev/null || skip "script(1) is not installed"
	p=$(plan dumb <<EOF2
steps:
  - parallel:
      - run: sleep 0.4; echo one
      - run: echo two >&2
EOF2
)
	for mode in auto tty; do
		TERM=dumb COLUMNS=100 timeout 20 script -qfec "$BATON run '$p' --output $mode" /dev/null >out.txt || true
		grep -q 'run success' out.txt || fail "no run in the output: $(cat out.txt)"
		assert_contains "$(cat out.txt)" "[parallel-1.run-1] one"
		if grep -q $'\033' out.txt; then fail "an escape byte with TERM=dumb (--output $mode): $(cat -v out.txt)"; fi
	done
	# an unset TERM is no better; a real one gets the live area (its cursor moves)
	env -u TERM COLUMNS=100 timeout 20 script -qfec "$BATON run '$p'" /dev/null >out.txt || true
	if grep -q $'\033' out.txt; then fail "an escape byte with TERM unset: $(cat -v out.txt)"; fi
	TERM=xterm COLUMNS=100 timeout 20 script -qfec "$BATON run '$p'" /dev/null >out.txt || true
	grep -q $'\033\\[[0-9]*A' out.txt || fail "no cursor movement with TERM=xterm: $(cat -v out.txt)"
}

@test "--color: auto colours a terminal unless NO_COLOR; always colours plain output; never colours nothing" {
	command -v script >/dev/null || skip "script(1) is not installed"
	p=$(plan color <<'EOF2'
steps:
  - run: echo hi
EOF2
)
	run b run "$p" --output plain --color always
	assert_status 0
	[[ "$output" == *$'\033[32m'* ]] || fail "no colour with --color always: $output"
	run b run "$p" --output plain
	[[ "$output" != *$'\033'* ]] || fail "colour in plain output by default: $output"
	TERM=xterm timeout 20 script -qfec "$BATON run '$p' --output tty" /dev/null >out.txt
	grep -q $'\033\\[32m' out.txt || fail "no colour on a terminal (auto): $(cat -v out.txt)"
	TERM=xterm timeout 20 script -qfec "$BATON run '$p' --output tty --color never" /dev/null >out.txt
	if grep -q $'\033\\[[0-9;]*m' out.txt; then fail "colour with --color never: $(cat -v out.txt)"; fi
	TERM=xterm NO_COLOR=1 timeout 20 script -qfec "$BATON run '$p' --output tty" /dev/null >out.txt
	if grep -q $'\033\\[[0-9;]*m' out.txt; then fail "colour with NO_COLOR: $(cat -v out.txt)"; fi
	TERM=xterm NO_COLOR=1 timeout 20 script -qfec "$BATON run '$p' --output tty --color always" /dev/null >out.txt
	grep -q $'\033\\[32m' out.txt || fail "--color always loses to NO_COLOR: $(cat -v out.txt)"
	run b run "$p" --color sometimes
	assert_status 2
	assert_contains "$output" "--color takes auto, always or never, not 'sometimes'"
}

@test "--timestamps: each line of the run starts with its time (UTC, as the events'); the summary does not" {
	p=$(plan stamps <<'EOF2'
steps:
  - run: echo hi; echo oops >&2
EOF2
)
	run b run "$p" --output plain --timestamps --events "$EV"
	assert_status 0
	run_lines=$(sed '/^$/,$d' <<<"$output")
	assert_eq "$(grep -c . <<<"$run_lines")" 4 "lines of the run"
	assert_eq "$(grep -cE '^[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\.[0-9]{3} \[' <<<"$run_lines")" 4 "lines with a time"
	ts=$(ev "$EV" 'one("task.output", line="hi")["ts"][11:23]')
	assert_contains "$output" "$ts [run-1] hi" "the line's time is its event's"
	assert_match "$output" '^summary$'
	assert_match "$output" '^✓ run success'
	# GitHub's ::group:: lines stay at the start of their line
	GITHUB_ACTIONS=true run b run "$p" --output plain --timestamps
	assert_match "$output" '^::group::run-1'
	assert_match "$output" '^::endgroup::'
}

@test "-v shows a multi-line script in full; without it, its first line and …; the failure block shows the command" {
	p=$(plan verbose <<'EOF2'
steps:
  - id: script
    run: |
      echo first
      echo second
      exit 3
EOF2
)
	run b run "$p" --output plain
	assert_status 1
	assert_contains "$output" "[script] \$ echo first …"
	assert_not_contains "$output" "> echo second"
	run b run "$p" --output plain -v
	assert_status 1
	assert_contains "$output" "[script] \$ echo first
[script] > echo second
[script] > exit 3
[script] first"
	assert_contains "$output" "✗ script: exit code 3
  \$ echo first
    echo second
    exit 3
  last 2 lines of output:"
	run b run "$p" --output plain --verbose
	assert_contains "$output" "[script] > exit 3"
}

@test "tty: stderr lines are marked apart from stdout ('[task]! line', the ! red), readable without colour" {
	command -v script >/dev/null || skip "script(1) is not installed"
	p=$(plan stderr <<'EOF2'
steps:
  - id: t
    run: echo to-out; echo to-err >&2
EOF2
)
	TERM=xterm NO_COLOR=1 timeout 20 script -qfec "$BATON run '$p' --output tty" /dev/null >out.txt
	out=$(tr -d '\r' <out.txt)
	assert_contains "$out" "[t] to-out"
	assert_contains "$out" "[t]! to-err"
	TERM=xterm timeout 20 script -qfec "$BATON run '$p' --output tty" /dev/null >out.txt
	grep -q $'\\[t\\]\033\\[0m\033\\[1;31m!\033\\[0m to-err' out.txt || fail "no red ! before the stderr line: $(cat -v out.txt)"
	# plain output is unchanged: both streams read alike
	run b run "$p" --output plain
	assert_contains "$output" "[t] to-err"
}

@test "summary: a fan-out whose instances all succeeded is one row with count and min/median/max; a failed one keeps its rows" {
	p=$(plan fold <<'EOF2'
steps:
  - id: many
    for_each: [1, 2, 3, 4, 5, 6]
    run: sleep 0.0${{ item }}
  - id: few
    for_each: [a, b]
    run: "true"
  - id: bad
    for_each: [a, b, c, d, e]
    continue_on_error: true
    run: test "${{ item }}" != c
EOF2
)
	run b run "$p" --output plain
	summary=$(sed -n '/^summary$/,/^$/p' <<<"$output")
	assert_match "$summary" '^  ✓ success    many +[0-9.]+m?s  6 instances: min [0-9.]+m?s · median [0-9.]+m?s · max [0-9.]+m?s$'
	assert_not_contains "$summary" "many#" "the instances of a folded fan-out have no rows"
	assert_contains "$summary" "few#1 (b)" "a fan-out of fewer than 5 keeps its rows"
	assert_contains "$summary" "bad#2 (c)" "a fan-out with a failure keeps its rows"
	assert_contains "$output" "✗ bad#2 (c) (tolerated): exit code 1
  \$ test \"c\" != c" "the failure block: the item's label and the command"
	# a large run (past 60 steps the summary keeps the top level only): the fan-out's row still has its figures
	items=$(seq -s, 1 150)
	p=$(plan large <<EOF2
steps:
  - id: fleet
    for_each: [$items]
    run: "true"
  - id: after
    run: "true"
EOF2
)
	run b run "$p" --output plain
	assert_status 0
	summary=$(sed -n '/^summary$/,/^$/p' <<<"$output")
	assert_match "$summary" '^  ✓ success    fleet +[0-9.]+m?s  150 instances: min [0-9.]+m?s · median [0-9.]+m?s · max [0-9.]+m?s$'
	assert_eq "$(grep -c '✓ success' <<<"$summary")" 2 "rows of the summary"
}

@test "the failure block shows the command with its secrets masked" {
	p=$(plan secretfail <<'EOF2'
secrets: [token]
steps:
  - id: call
    run: echo "${{ vars.token }}" >/dev/null; exit 4
EOF2
)
	BATON_SECRET_TOKEN=hunter2-xyz run b run "$p" --output plain -v
	assert_status 1
	assert_not_contains "$output" "hunter2-xyz"
	assert_contains "$output" "✗ call: exit code 4
  \$ echo \"***\" >/dev/null; exit 4"
}

@test "tty: nothing is drawn below the summary's last line (no live area after run.end)" {
	command -v script >/dev/null || skip "script(1) is not installed"
	p=$(plan after <<'EOF2'
steps:
  - id: many
    for_each: [1, 2, 3]
    run: sleep 0.1
EOF2
)
	for i in 1 2 3; do
		TERM=xterm COLUMNS=80 timeout 20 script -qfec "$BATON run '$p' --output tty" /dev/null >out.txt
		after=$(sed -n '/run success/,$p' out.txt | tail -n +2 | tr -d '\r')
		assert_eq "$after" "" "what follows the last line (try $i)"
		grep -q 'run success.*skipped' out.txt || fail "no final line: $(cat -v out.txt)"
	done
}

@test "status --watch on a TERM=dumb terminal: no clear-screen escapes, the end state once" {
	command -v script >/dev/null || skip "script(1) is not installed"
	p=$(plan w <<EOF2
name: w
steps:
  - id: nap
    run: sleep 1.5$E2E_MARK
EOF2
)
	b run "$p" --output quiet &
	pid=$!
	for i in $(seq 100); do b status 2>/dev/null | grep -q "running    nap" && break; sleep 0.05; done
	TERM=dumb timeout -k 5 20 script -qec "$BATON status --watch" /dev/null >out.txt </dev/null
	if grep -q $'\033' out.txt; then fail "an escape byte with TERM=dumb: $(cat -v out.txt)"; fi
	assert_contains "$(cat out.txt)" "state     success (exit 0)"
	wait_pid "$pid" 20
	assert_eq "$WAIT_STATUS" 0
}
