#!/usr/bin/env bats
# The ASan/UBSan build on representative plans: same exit status as the
# normal build, and no sanitizer report.

load helpers
setup() {
	e2e_setup
	[ -x "$BATON_ASAN" ] || skip "ASan build not found at $BATON_ASAN (make build/baton-asan)"
}
teardown() { e2e_teardown; }

SANITIZER_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error|SUMMARY: UndefinedBehaviorSanitizer'

# asan_matches EXPECTED_STATUS ARGS...: run both builds with ARGS and compare
asan_matches() {
	local want=$1
	shift
	local st=0 ast=0 d=$BATS_TEST_TMPDIR
	b "$@" >"$d/normal.out" 2>"$d/normal.err" || st=$?
	b_asan "$@" >"$d/asan.out" 2>"$d/asan.err" || ast=$?
	if grep -E -q "$SANITIZER_RE" "$d/asan.err" "$d/asan.out"; then
		printf 'sanitizer report for baton %s:\n' "$*" >&2
		grep -E -h -A 30 "$SANITIZER_RE" "$d/asan.err" "$d/asan.out" | head -60 >&2
		return 1
	fi
	assert_eq "$st" "$want" "exit status of the normal build for: baton $*"
	assert_eq "$ast" "$st" "exit status of the ASan build vs the normal build for: baton $*"
}

@test "asan: the demo plan runs clean" {
	cd "$REPO_DIR"
	[ -e plans/demo.yaml ] || skip "no plans/demo.yaml"
	asan_matches 0 run plans/demo.yaml --output plain --events "$BATS_TEST_TMPDIR/ev.jsonl"
}

@test "asan: a failing plan runs clean with exit 1" {
	asan_matches 1 run "$FIXTURES/failing.yaml" --output plain
	asan_matches 1 run "$FIXTURES/failing.yaml" --output json
}

@test "asan: timeouts, kill_grace and the plan's deadline run clean with exit 3" {
	asan_matches 3 run "$FIXTURES/timeout.yaml" --output plain --events "$BATS_TEST_TMPDIR/ev.jsonl"
}

@test "asan: multi-line commands shortened in the plain output run clean" {
	asan_matches 0 run "$FIXTURES/multiline-command.yaml" --output plain
}

@test "asan: interpolation, captures and secrets run clean" {
	asan_matches 0 run "$FIXTURES/interpolation.yaml" --output plain --events "$BATS_TEST_TMPDIR/ev.jsonl"
	assert_file_absent pwned
}

@test "asan: an invalid plan is reported clean with exit 2" {
	asan_matches 2 check "$FIXTURES/invalid-many.yaml"
	asan_matches 2 run "$FIXTURES/invalid-many.yaml"
}

@test "asan: the dry run is clean" {
	cd "$REPO_DIR"
	for f in plans/*.yaml; do
		[ -e "$f" ] || continue
		asan_matches 0 plan "$f"
	done
	asan_matches 0 plan "$FIXTURES/interpolation.yaml"
}

@test "asan: the preview as text, JSON, DOT and plan.task events is clean" {
	cd "$REPO_DIR"
	for f in plans/*.yaml; do
		[ -e "$f" ] || continue
		asan_matches 0 plan "$f" --output json
		asan_matches 0 plan "$f" --output dot
		asan_matches 0 run --dry-run "$f" --output json
	done
	p=$(plan pv <<'EOF'
vars: { xs: [a, b, c], tok: tok-1234 }
secrets: [tok]
env: { T: "${{ vars.tok }}" }
inventory: { hosts: { h1: { address: 192.0.2.1 }, h2: { address: 192.0.2.2 } } }
steps:
  - id: out
    for_each: ${{ vars.xs }}
    when: item != "b"
    batch: { size: [1, "50%"] }
    steps:
      - { id: in, for_each: [1, 2], run: "echo ${{ item }} ${{ vars.tok }}" }
      - { id: argv, run: [echo, "${{ item }}"] }
    on_failure: [echo failed]
  - id: roll
    on: [h1, h2]
    run: echo ${{ host.address }}
  - id: late
    when: steps.out.status == "success"
    for_each: ${{ steps.out.stdout_lines }}
    run: echo ${{ item }}
EOF
)
	asan_matches 0 plan "$p"
	asan_matches 0 plan "$p" --output json
	asan_matches 0 plan "$p" --output dot --only out.in#2#1
	asan_matches 0 run --dry-run "$p" --output json --var 'xs=[x]'
}

@test "asan: the valgrind fixture (every scheduler path) runs clean" {
	[ -e "$REPO_DIR/tests/fixtures/valgrind.yaml" ] || skip "no tests/fixtures/valgrind.yaml"
	asan_matches 0 run "$REPO_DIR/tests/fixtures/valgrind.yaml" --output plain
}

@test "asan: SIGINT mid-run is clean and exits 130" {
	p=$(plan sig <<EOF
steps:
  - parallel:
      - run: sleep 30.$E2E_MARK
      - run: sleep 31.$E2E_MARK & sleep 32.$E2E_MARK
EOF
)
	ASAN_OPTIONS=detect_leaks=1 "$BATON_ASAN" run "$p" --output plain --events "$EV" >asan.out 2>asan.err 3>&- &
	pid=$!
	wait_for_event "$EV" task.start
	sleep 0.3
	start=$(date +%s%N)
	kill -INT "$pid"
	wait_pid "$pid" 20
	elapsed=$((($(date +%s%N) - start) / 1000000))
	if grep -E -q "$SANITIZER_RE" asan.err; then
		head -60 asan.err >&2
		fail "sanitizer report after SIGINT"
	fi
	assert_eq "$WAIT_STATUS" 130 "exit status after SIGINT"
	# both groups stopped at once (not kill_grace, 5s, later for the shell's sleeps)
	assert_le "$elapsed" 4000 "ms from SIGINT to the exit of the ASan build"
	assert_no_leftovers
}

# asan_clean FILE...: no sanitizer report in FILE
asan_clean() {
	if grep -E -q "$SANITIZER_RE" "$@"; then
		grep -E -h -A 30 "$SANITIZER_RE" "$@" | head -60 >&2
		fail "sanitizer report"
	fi
}

@test "asan: failed writes, a slow reader's spill file and terminal controls run clean" {
	p=$(plan chatty <<'EOF'
name: "odd \e]0;title\a"
steps:
  - id: chatty
    run: "yes 'line \e[31m \x9b' | head -n 100000"
  - id: bad
    cwd: "/nonexistent/\e[2J"
    run: "true"
EOF
)
	st=0
	b_asan run "$p" --output plain --events /dev/full >/dev/null 2>asan.err || st=$?
	asan_clean asan.err
	assert_eq "$st" 1 "exit status, --events /dev/full"
	st=0
	b_asan run "$p" --output plain --events "$EV" >/dev/full 2>asan.err || st=$?
	asan_clean asan.err
	assert_eq "$st" 1 "exit status, stdout /dev/full"
	# 2.5 MB for a reader that waits: through the spill file
	b_asan run "$p" --output plain 2>asan.err | (sleep 2; cat) >out.txt
	st=${PIPESTATUS[0]}
	asan_clean asan.err
	assert_eq "$st" 1 "exit status, slow reader"
	assert_eq "$(grep -c '^\[chatty\] line ^\[\[31m M-^\[$' out.txt)" 100000 "lines through the spill file"
}

@test "asan: step outputs, from_json, malformed and oversized output files, continue_on_error and batch expressions run clean" {
	p=$(plan outputs <<'EOF'
vars: { size: [1, "50%"], lenient: [b] }
steps:
  - id: probe
    run: |
      echo '{"ok": true}'
      printf 'v=1\nnotes<<END\na\nb\nEND\n' >> "$BATON_OUTPUT"
  - id: each
    for_each: [a, b, c]
    batch: { size: "${{ vars.size }}", pause: "${{ '10ms' }}" }
    continue_on_error: ${{ contains(vars.lenient, item) }}
    run: echo "got=${{ item }}" >> "$BATON_OUTPUT"; test "${{ item }}" != b
  - id: bad
    continue_on_error: true
    run: printf 'x<<EOF\n' >> "$BATON_OUTPUT"
  - id: big
    continue_on_error: true
    run: head -c 1100000 /dev/zero | tr '\0' a | sed 's/^/k=/' >> "$BATON_OUTPUT"
  - run: echo "${{ from_json(steps.probe.stdout).ok }} ${{ steps.probe.outputs.notes }} ${{ steps.each.items[2].outputs.got }} ${{ steps.bad.outputs }} ${{ steps.big.outputs }}"
EOF
)
	asan_matches 0 run "$p" --output plain
	asan_matches 0 plan "$p"
}
