#!/usr/bin/env bats
# The fault suite, output part: a slow reader of baton's output, a full disk
# under --events and under stdout, /dev/full. baton must never block its loop
# on output, never drop a line it could keep, write whole lines only, say at
# once when a write fails, and exit 5 when a run that succeeded lost output.

load helpers
setup() {
	e2e_setup
	SMALL_FS=""
}
teardown() {
	if [ -n "$SMALL_FS" ]; then
		umount "$SMALL_FS" 2>/dev/null || umount -l "$SMALL_FS" 2>/dev/null || true
	fi
	e2e_teardown
}

# small_fs DIR [SIZE]: a tmpfs of SIZE (64k) at DIR, to fill up. Mounting
# needs root: skip, saying so, otherwise.
small_fs() {
	[ "$(id -u)" = 0 ] || skip "a full disk needs a small tmpfs, and mounting one needs root"
	mkdir -p "$1"
	mount -t tmpfs -o "size=${2:-64k},mode=1777" tmpfs "$1" 2>mount.err ||
		skip "cannot mount a tmpfs here: $(cat mount.err)"
	SMALL_FS="$1"
}

# full_fs DIR: a small tmpfs at DIR with no room left at all.
full_fs() {
	small_fs "$1" 64k
	head -c 1000000 /dev/zero >"$1/filler" 2>/dev/null || true
}

# all_json FILE: every line of FILE is one whole JSON object, the last one ended.
all_json() {
	"$E2E_PY" -S -c '
import json, sys
data = open(sys.argv[1], "rb").read()
if data and not data.endswith(b"\n"):
    sys.exit("the file ends in the middle of a line: %r" % data[-80:])
for i, l in enumerate(data.split(b"\n")[:-1], 1):
    try:
        json.loads(l)
    except ValueError as e:
        sys.exit("line %d is not JSON (%s): %r" % (i, e, l[:200]))
print(len(data.split(b"\n")) - 1)
' "$1"
}

# A plan whose output does not fit in 64 KiB, in lines of many lengths (so a
# failed write can stop in the middle of one), then a step that must still run.
chatty_plan() {
	plan chatty <<EOF
steps:
  - id: chatty
    run: i=0; while [ \$i -lt 3000 ]; do i=\$((i+1)); printf 'line %d %0*d\\n' \$i \$((i % 97)) 0; done
  - id: after
    run: sleep 0.1$E2E_MARK; touch after-ran
EOF
}

# A plan with a timeout of 1s on a sleep of 5s, next to a step printing 10.5
# MB (13 MB of plain output: more than baton ever keeps in memory).
timeout_and_flood_plan() {
	plan flood <<EOF
steps:
  - mode: settle
    parallel:
      - id: slow
        run: sleep 5.$E2E_MARK
        timeout: 1s
      - id: big
        run: yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -n 150000
EOF
}

# task_ends FILE: the task.end events of FILE alone, in ends.jsonl (quicker to query).
task_ends() {
	grep '"type":"task.end"' "$1" >ends.jsonl
}

@test "a slow reader of stdout neither delays a 1s timeout nor loses a line of 13 MB" {
	p=$(timeout_and_flood_plan)
	E2E_TIMEOUT=60 b run "$p" --output plain --events "$EV" | (sleep 8; cat) | grep -c '^\[parallel-1\.big\] 0123456789' >count.txt
	st=${PIPESTATUS[0]}
	n=$(cat count.txt)
	assert_eq "$st" 1 "exit status (the timed-out step failed the run)"
	assert_eq "$n" 150000 "lines of the big step that reached the slow reader"
	task_ends "$EV"
	assert_eq "$(ev ends.jsonl 'tend("parallel-1.slow")["status"]')" timeout
	ms=$(ev ends.jsonl 'tend("parallel-1.slow")["duration_ms"]')
	assert_le "$ms" 5000 "ms until the 1s timeout fired (the reader slept 8s)"
	assert_ge "$ms" 1000 "ms until the 1s timeout fired"
	assert_no_leftovers
}

@test "a slow reader: memory stays bounded, the backlog waits in an unlinked 0600 file in TMPDIR" {
	[ -x "$MAXRSS" ] || skip "maxrss helper not built (make build/maxrss)"
	mkdir spill-dir
	p=$(plan big <<'EOF'
steps:
  - id: big
    run: yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -n 300000
EOF
)
	mkfifo out.fifo
	TMPDIR="$PWD/spill-dir" timeout -k 5 60 "$MAXRSS" "$BATON" run "$p" --output plain >out.fifo 2>rss.err 3>&- &
	pid=$!
	exec 4<out.fifo # the reader: opened, and not read for now
	# baton is the child of maxrss, the child of timeout; wait for its spill file to appear
	spill=""
	for i in $(seq 100); do
		bpid=$pid
		for level in 1 2; do
			bpid=$(cat /proc/$bpid/task/$bpid/children 2>/dev/null) && bpid=${bpid%% *}
		done
		fd=$(ls -l /proc/${bpid:-0}/fd 2>/dev/null | sed -n "s|.* \([0-9]*\) -> $PWD/spill-dir/.*(deleted)\$|\1|p")
		[ -n "$fd" ] && spill=/proc/$bpid/fd/$fd && break
		sleep 0.1
	done
	[ -n "$spill" ] || { exec 4<&-; wait_pid "$pid" 10; fail "no unlinked spill file in \$TMPDIR after 10s"; }
	mode=$(stat -L -c %a "$spill")
	assert_eq "$(ls -A spill-dir)" "" "the spill file has no name in TMPDIR"
	n=$(cat <&4 | grep -c '^\[big\] 0123456789')
	exec 4<&-
	wait_pid "$pid" 30
	assert_eq "$WAIT_STATUS" 0 "exit status"
	assert_eq "$mode" 600 "the spill file's mode"
	assert_eq "$n" 300000 "lines that reached the reader"
	rss=$(sed -n 's/.*maxrss_kib=\([0-9]*\).*/\1/p' rss.err | tail -1)
	assert_le "$rss" 16384 "peak RSS in KiB with 21 MB waiting for the reader"
}

@test "--events - and stderr, slow readers both: the timeout still fires at about 1s, every line arrives" {
	p=$(timeout_and_flood_plan)
	# the events on stdout, the human output on stderr, each read late
	E2E_TIMEOUT=60 b run "$p" --output plain --events - 2> >(sleep 5; cat >err.txt) | (sleep 5; cat) >out.jsonl
	st=${PIPESTATUS[0]}
	for i in $(seq 100); do grep -q '^✗ run failed' err.txt 2>/dev/null && break; sleep 0.1; done
	assert_eq "$st" 1 "exit status"
	task_ends out.jsonl
	assert_eq "$(ev ends.jsonl 'tend("parallel-1.slow")["duration_ms"] <= 4000')" true "the 1s timeout fired in time"
	assert_eq "$(grep -c '"type":"task.output","task":"parallel-1.big"' out.jsonl)" 150000 "task.output events"
	assert_eq "$(grep -c '^\[parallel-1\.big\] 0123456789' err.txt)" 150000 "lines on stderr"
	# both on one pipe: one stream for the two, still whole lines
	E2E_TIMEOUT=60 b run "$p" --output plain --events - 2>&1 | (sleep 5; cat) >both.txt
	assert_eq "${PIPESTATUS[0]}" 1 "exit status, stdout and stderr on one pipe"
	grep '^{' both.txt >both.jsonl
	all_json both.jsonl >/dev/null || fail "$(all_json both.jsonl 2>&1)"
	task_ends both.jsonl
	assert_eq "$(ev ends.jsonl 'tend("parallel-1.slow")["duration_ms"] <= 4000')" true "the 1s timeout fired in time"
	assert_eq "$(grep -c '"type":"task.output","task":"parallel-1.big"' both.jsonl)" 150000 "task.output events"
	assert_eq "$(grep -c '^\[parallel-1\.big\] 0123456789' both.txt)" 150000 "human lines on the shared pipe"
	assert_no_leftovers
}

@test "a spill file that cannot be written: lines are dropped, said once on stderr and in a warning event" {
	full_fs "$PWD/fullfs"
	p=$(plan big <<'EOF'
steps:
  - id: big
    run: yes 0123456789012345678901234567890123456789012345678901234567890123456789 | head -n 200000
EOF
)
	TMPDIR="$PWD/fullfs" E2E_TIMEOUT=60 b run "$p" --output plain --events "$EV" 2>err.txt | (sleep 2; cat) |
		grep -c '^\[big\] 0123456789' >count.txt
	st=${PIPESTATUS[0]}
	n=$(cat count.txt)
	assert_eq "$st" 5 "exit status of a run that succeeded but dropped output"
	assert_eq "$(grep -c 'lines are dropped' err.txt)" 1 "times the drop is said on stderr"
	assert_contains "$(cat err.txt)" "baton: standard output: its reader is slow and no spill file can be written in $PWD/fullfs (No space left on device): lines are dropped"
	dropped=$(sed -n 's/^baton: standard output: \([0-9]*\) lines were dropped$/\1/p' err.txt)
	[ -n "$dropped" ] || fail "no count of dropped lines on stderr: $(cat err.txt)"
	assert_le "$n" 199999 "lines that reached the reader"
	assert_ge "$((n + dropped))" 200000 "lines received plus lines dropped"
	assert_eq "$(grep -c '"type":"task.output","task":"big"' "$EV")" 200000 "task.output events (the events file lost nothing)"
	grep -v '"type":"task.output"' "$EV" >rest.jsonl
	assert_eq "$(ev rest.jsonl '[e["message"] for e in of("warning")]' 'run_end()["exit_code"]')" \
		"standard output: its reader is slow and no spill file can be written in $PWD/fullfs (No space left on device): lines are dropped
5" "the warning event and run.end's exit code"
}

@test "--events on a full disk: whole lines only, said at once on stderr and in the summary, exit 5, the run goes on" {
	small_fs "$PWD/small"
	p=$(chatty_plan)
	run --separate-stderr b run "$p" --output plain --events "$PWD/small/ev.jsonl"
	assert_status 5
	assert_contains "$stderr" "baton: --events $PWD/small/ev.jsonl: write failed (No space left on device); it ends with the last whole line written"
	assert_eq "$(grep -c 'write failed' <<<"$stderr")" 1 "times the failure is said"
	lines=$(all_json "$PWD/small/ev.jsonl" 2>&1) || fail "$lines"
	assert_ge "$lines" 100 "whole event lines kept"
	assert_match "$output" "⚠ warning: --events $PWD/small/ev.jsonl: write failed \(No space left on device\)"
	assert_match "$output" '^✓ run success .*\(exit 5\)'
	[ -e after-ran ] || fail "the step after the failure did not run"
	assert_contains "$output" "[chatty] line 3000 "
	assert_no_leftovers
}

@test "stdout on a full disk: whole lines only (plain and json), the error on stderr, a warning event, exit 5" {
	small_fs "$PWD/small"
	p=$(chatty_plan)
	b run "$p" --output plain --events "$EV" >"$PWD/small/out.txt" 2>err.txt && st=0 || st=$?
	assert_eq "$st" 5 "exit status"
	assert_contains "$(cat err.txt)" "baton: standard output: write failed (No space left on device); it ends with the last whole line written"
	[ "$(tail -c 1 "$PWD/small/out.txt" | od -An -c | tr -d ' ')" = '\n' ] || fail "stdout ends in the middle of a line"
	while IFS= read -r line; do
		[[ "$line" == "[chatty] "* ]] || fail "a line that is not whole: $line"
	done <"$PWD/small/out.txt"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[e["message"] for e in of("warning")]')" "standard output: write failed (No space left on device); it ends with the last whole line written, and nothing more is written to it"
	assert_eq "$(ev "$EV" 'run_end()["status"]' 'run_end()["exit_code"]')" $'success\n5'
	[ -e after-ran ] || fail "the step after the failure did not run"
	rm -f "$PWD/small/out.txt" after-ran
	b run "$p" --output json >"$PWD/small/out.jsonl" 2>err.txt && st=0 || st=$?
	assert_eq "$st" 5 "exit status with --output json"
	assert_contains "$(cat err.txt)" "baton: standard output: write failed (No space left on device)"
	all_json "$PWD/small/out.jsonl" >/dev/null || fail "$(all_json "$PWD/small/out.jsonl" 2>&1)"
	[ -e after-ran ] || fail "the step after the failure did not run (json)"
	assert_no_leftovers
}

@test "/dev/full as --events: said at once on stderr and in the summary, exit 5" {
	p=$(chatty_plan)
	run --separate-stderr b run "$p" --output plain --events /dev/full
	assert_status 5
	assert_eq "$stderr" "baton: --events /dev/full: write failed (No space left on device); nothing more is written to it"
	assert_contains "$output" "⚠ warning: --events /dev/full: write failed (No space left on device)"
	[ -e after-ran ] || fail "the step after the failure did not run"
	run --separate-stderr b run "$p" --output json --events /dev/full
	assert_status 5
	echo "$output" >out.jsonl
	ev_valid out.jsonl
	assert_eq "$(ev out.jsonl 'run_end()["exit_code"]' '[e["message"] for e in of("warning")]')" \
		$'5\n--events /dev/full: write failed (No space left on device); nothing more is written to it' \
		"the stream on stdout tells of the events file that failed"
	assert_no_leftovers
}

@test "/dev/full as stdout: said on stderr, in a warning event, exit 5; as stderr with --events -, too" {
	p=$(chatty_plan)
	b run "$p" --output plain --events "$EV" >/dev/full 2>err.txt && st=0 || st=$?
	assert_eq "$st" 5 "exit status"
	assert_eq "$(cat err.txt)" "baton: standard output: write failed (No space left on device); nothing more is written to it"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[e["message"] for e in of("warning")]')" "standard output: write failed (No space left on device); nothing more is written to it"
	assert_eq "$(ev "$EV" 'run_end()["exit_code"]')" 5
	# the human output on stderr, which is full: the events on stdout say so
	b run "$p" --output plain --events - >out.jsonl 2>/dev/full && st=0 || st=$?
	assert_eq "$st" 5 "exit status, stderr full"
	ev_valid out.jsonl
	assert_eq "$(ev out.jsonl '[e["message"] for e in of("warning")]')" "standard error: write failed (No space left on device); nothing more is written to it"
	assert_no_leftovers
}

@test "a run that failed keeps exit 1 when its output is lost too" {
	p=$(plan failing <<'EOF'
steps:
  - run: echo some output; exit 3
EOF
)
	run --separate-stderr b run "$p" --output plain --events /dev/full
	assert_status 1
	assert_contains "$stderr" "baton: --events /dev/full: write failed"
}

@test "an --events file that cannot be opened: exit 2 before anything runs (run, run --dry-run, plan)" {
	p=$(plan marker <<<'steps: [touch ran-marker]')
	for args in "run $p" "run --dry-run $p" "plan $p"; do
		# shellcheck disable=SC2086
		run --separate-stderr b $args --events "$PWD/no/such/dir/ev.jsonl"
		assert_status 2
		assert_eq "$output" "" "stdout of baton $args"
		assert_eq "$stderr" "baton: --events $PWD/no/such/dir/ev.jsonl: No such file or directory"
		assert_file_absent ran-marker
	done
}

@test "baton plan: the preview or its events on /dev/full exit 5" {
	p=$(plan small <<<'steps: [echo hi]')
	run --separate-stderr b plan "$p" --events /dev/full
	assert_status 5
	assert_contains "$output" "plan small"
	assert_contains "$stderr" "baton: --events /dev/full: write failed (No space left on device)"
	b plan "$p" >/dev/full 2>err.txt && st=0 || st=$?
	assert_eq "$st" 5 "exit status"
	assert_eq "$(cat err.txt)" "baton: standard output: No space left on device"
}
