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
      - run: sleep 30.$E2E_MARK
      - run: sleep 30.$E2E_MARK
      - run: sleep 30.$E2E_MARK
EOF2
)
	tmux_start 100 20 "NO_COLOR=1 timeout --foreground 20 $BATON run '$p' --output tty; echo \"exit=\$?\"; sleep 20"
	tmux_wait '3 running'
	tmux -S "$SOCK" send-keys C-c
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
