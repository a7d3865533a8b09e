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
