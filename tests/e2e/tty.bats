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
