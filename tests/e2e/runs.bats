#!/usr/bin/env bats
# The verbs that read the run store: `baton runs`, `baton status`, `baton
# logs` — during a run (from another process), after it, after a crash; and
# the store itself: whole after a SIGKILL, never blocking the run that writes it.

load helpers

setup() {
	e2e_setup
	# every test its own store: counts and "the newest run" must be this test's
	export BATON_STATE_DIR="$BATS_TEST_TMPDIR/state"
}
teardown() { e2e_teardown; }

# js EXPR...: evaluate Python expressions over the JSON on stdin (J), one result per line.
js() {
	"$E2E_PY" -S -c '
import json, sys
J = json.load(sys.stdin)
for x in sys.argv[1:]:
    v = eval(x)
    print(json.dumps(v, sort_keys=True) if isinstance(v, (dict, list, bool)) or v is None else v)
' "$@"
}

# newest_id: the id of the newest run.
newest_id() {
	b runs --json -n 1 | js 'J[0]["id"]'
}

ok_plan() {
	plan ok <<'EOF'
name: ok-plan
steps:
  - id: hello
    run: echo hello
EOF
}

bad_plan() {
	plan bad <<'EOF'
name: bad-plan
steps:
  - id: fine
    run: echo fine
  - id: broken
    run: echo "about to fail" >&2; exit 3
  - id: never
    run: echo never
EOF
}

# A run that prints: a group, stdout and stderr, a CRLF line, control bytes, a retry.
talk_plan() {
	plan talk <<'EOF'
name: talk
steps:
  - id: first
    run: echo "out first"; echo "err first" >&2
  - id: grp
    parallel:
      - id: a
        run: for i in 1 2 3; do echo "out a $i"; done
      - id: b
        run: printf 'out b crlf\r\n'; printf 'out b \033[31mred\033[0m\n'; echo "err b" >&2
  - id: flaky
    run: echo "out flaky $BATON_ATTEMPT"; [ "$BATON_ATTEMPT" -ge 2 ]
    retry: { attempts: 2, delay: 10ms }
  - id: last
    run: echo "out last"
EOF
}

# wait_status_shows TEXT [SECONDS]: poll `baton status` until its output holds TEXT; leaves it in $out.
wait_status_shows() {
	local i n=$((${2:-15} * 10))
	for i in $(seq "$n"); do
		out=$(b status 2>&1) && [[ "$out" == *"$1"* ]] && return 0
		sleep 0.1
	done
	fail "baton status never showed '$1'; last:"$'\n'"$out"
}

@test "runs lists the runs newest first, with their states and counts" {
	run b runs
	assert_status 0
	assert_eq "$output" "baton runs: no runs recorded in $BATON_STATE_DIR" "no store yet: nothing, said on stderr"
	ok=$(ok_plan)
	bad=$(bad_plan)
	run b run "$ok" --output quiet
	assert_status 0
	run b run "$bad" --output quiet
	assert_status 1
	run --separate-stderr b runs
	assert_status 0
	assert_eq "$(wc -l <<<"$output")" 3 "a header and two runs"
	assert_match "$(sed -n 1p <<<"$output")" '^ID +PLAN +STATE +STARTED +DURATION +TASKS$'
	assert_match "$(sed -n 2p <<<"$output")" '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}  bad-plan  failed +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} +[0-9.]+m?s  1 ok, 1 failed, 1 skipped$'
	assert_match "$(sed -n 3p <<<"$output")" '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}  ok-plan   success +.*  1 ok$'
	run b runs -n 1
	assert_eq "$(wc -l <<<"$output")" 2 "-n 1: one run"
	assert_contains "$output" bad-plan
	run b runs --plan "$ok"
	assert_status 0
	assert_contains "$output" ok-plan
	assert_not_contains "$output" bad-plan
}

@test "runs --json: an array of runs with their fields" {
	run b run "$(bad_plan)" --output quiet --events "$EV"
	assert_status 1
	id=$(ev "$EV" 'E[0]["run"]')
	run --separate-stderr b runs --json
	assert_status 0
	assert_eq "$(js 'len(J)' 'sorted(J[0])' <<<"$output")" '1
["counts", "cwd", "duration_ms", "end", "exit_code", "id", "name", "pid", "plan", "plan_abs", "resumed_from", "running", "start", "state", "tasks", "user"]'
	assert_eq "$(js 'J[0]["id"]' 'J[0]["name"]' 'J[0]["plan"]' 'J[0]["state"]' 'J[0]["exit_code"]' 'J[0]["tasks"]' \
		'J[0]["counts"]' 'J[0]["running"]' 'J[0]["resumed_from"]' 'J[0]["cwd"]' <<<"$output")" "$id
bad-plan
$E2E_TMP/bad.yaml
failed
1
3
{\"cancelled\": 0, \"failed\": 1, \"skipped\": 1, \"success\": 1, \"timeout\": 0, \"tolerated\": 0}
0
null
$E2E_TMP"
	# ISO 8601 UTC times, and a duration that is theirs
	run js 'all(__import__("re").fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", J[0][k]) for k in ("start", "end"))' \
		'isinstance(J[0]["duration_ms"], int) and J[0]["duration_ms"] >= 0' <<<"$output"
	assert_eq "$output" $'true\ntrue'
}

@test "a run id prefix names a run; an ambiguous one and an unknown one are errors (exit 2)" {
	p=$(ok_plan)
	b run "$p" --output quiet --events "$E2E_TMP/1.jsonl"
	b run "$p" --output quiet --events "$E2E_TMP/2.jsonl"
	id1=$(ev "$E2E_TMP/1.jsonl" 'E[0]["run"]')
	id2=$(ev "$E2E_TMP/2.jsonl" 'E[0]["run"]')
	# the longest prefix both share, and one character more of each
	common=$("$E2E_PY" -S -c 'import os, sys; print(os.path.commonprefix(sys.argv[1:]))' "$id1" "$id2")
	n=${#common}
	run b status "${id1:0:$((n + 1))}"
	assert_status 0
	assert_contains "$output" "run       $id1"
	run b logs "${id2:0:$((n + 1))}"
	assert_status 0
	assert_eq "$output" "[hello] hello"
	run b status "$common"
	assert_status 2
	assert_contains "$output" "baton status: run '$common' is ambiguous: it begins $id2, $id1"
	run b logs "$common"
	assert_status 2
	assert_contains "$output" "is ambiguous"
	run b status 1999
	assert_status 2
	assert_eq "$output" "baton status: no run '1999' is recorded in $BATON_STATE_DIR ('baton runs' lists them)"
	run b logs 1999
	assert_status 2
	assert_contains "$output" "baton logs: no run '1999'"
	# no RUN: the newest
	run b status
	assert_contains "$output" "run       $id2"
}

@test "status and logs with no run recorded: exit 2; a usage error: exit 2" {
	run b status
	assert_status 2
	assert_eq "$output" "baton status: no runs recorded in $BATON_STATE_DIR"
	run b logs
	assert_status 2
	assert_eq "$output" "baton logs: no runs recorded in $BATON_STATE_DIR"
	run b runs --state-dir "$E2E_TMP/elsewhere" --json
	assert_status 0
	run b runs -n 0
	assert_status 2
	assert_contains "$output" "baton runs: -n takes a number from 1"
	run b runs --keep 3
	assert_status 2
	assert_contains "$output" "baton runs: --keep goes with --prune"
	run b status a b
	assert_status 2
	assert_contains "$output" "baton status: one run at a time"
	run b status --json --watch
	assert_status 2
	run b logs --bogus
	assert_status 2
	for v in runs status logs; do
		run b "$v" --help
		assert_status 0
		assert_contains "$output" "usage: baton $v"
		assert_contains "$output" "Exit status: 0"
	done
	run b --help
	assert_match "$output" '^  runs +list the recorded runs'
	assert_match "$output" '^  status +show a run'
	assert_match "$output" '^  logs +print a run'
}

@test "--state-dir names the store for every verb" {
	run b run "$(ok_plan)" --output quiet --state-dir "$E2E_TMP/other"
	assert_status 0
	run b runs
	assert_status 0
	assert_eq "$output" "baton runs: no runs recorded in $BATON_STATE_DIR"
	run b runs --state-dir "$E2E_TMP/other"
	assert_contains "$output" ok-plan
	run b status --state-dir "$E2E_TMP/other"
	assert_status 0
	assert_contains "$output" "✓ success    hello"
	run b logs --state-dir "$E2E_TMP/other"
	assert_eq "$output" "[hello] hello"
}

@test "status from another process while the run goes on, then after it ends" {
	p=$(plan live <<EOF
name: live
steps:
  - id: first
    run: echo one
  - id: grp
    parallel:
      - id: wait
        run: sleep 2.$E2E_MARK
      - id: quick
        run: echo quick
  - id: after
    run: echo two
EOF
)
	b run "$p" --output plain >"$E2E_TMP/run.out" 2>&1 &
	pid=$!
	wait_status_shows "grp.wait"
	assert_match "$out" '^state     running \(pid [0-9]+, user .+\)$'
	assert_match "$out" '^duration  .* so far$'
	# the tree: the open group (no row until it ends) before its children, the running task with its time
	assert_match "$out" '^  ✓ success    first +[0-9.]+m?s$'
	assert_match "$out" '^  ▸ running    grp +[0-9.]+m?s$'
	assert_match "$out" '^  ▸ running      grp.wait +[0-9.]+m?s$'
	assert_match "$out" '^  ✓ success      grp.quick +[0-9.]+m?s$'
	assert_contains "$out" "▸ running for "
	assert_contains "$out" ": 2 succeeded, 0 failed, 0 timed out, 0 cancelled, 0 skipped, 1 running"
	assert_match "$out" '^  2/4 tasks done · ETA [0-9.]+m?s$'
	assert_match "$out" '^  ▸ grp.wait +[0-9.]+m?s$' "the running tasks"
	assert_contains "$out" $'slowest:\n'
	# the ASan build shows the same, open groups and all, leaking nothing
	run --separate-stderr b_asan status
	assert_status 0
	assert_eq "$stderr" ""
	assert_match "$output" '^  ▸ running      grp.wait +[0-9.]+m?s$'
	run b runs
	assert_match "$output" ' live  running .* 2 ok, 1 running$'
	run b runs --json
	assert_eq "$(js 'J[0]["state"]' 'J[0]["end"]' 'J[0]["running"]' 'J[0]["counts"]["success"]' <<<"$output")" $'running\nnull\n1\n2'
	wait_pid "$pid" 20
	assert_eq "$WAIT_STATUS" 0
	run b status
	assert_status 0
	assert_contains "$output" "state     success (exit 0)"
	assert_match "$output" '^  ✓ success    grp +[0-9.]+s$'
	assert_not_contains "$output" "running"
	final=$(grep ' run success in ' "$E2E_TMP/run.out")
	mine=$(grep ' run success in ' <<<"$output")
	assert_eq "${mine#*: }" "${final#*: }" "the counts of the run's own final line"
	assert_eq "${mine#*: }" "4 succeeded, 0 failed, 0 timed out, 0 cancelled, 0 skipped" "tasks only: the group is not one"
	for args in "status --json" "runs --json" "runs" "runs --prune --keep 5"; do
		# shellcheck disable=SC2086
		run --separate-stderr b_asan $args
		assert_status 0
		assert_eq "$stderr" "" "baton-asan $args"
	done
}

@test "status of a failed run: its tree, the failure's reason, the counts" {
	run b run "$(bad_plan)" --output plain
	assert_status 1
	final=$(grep ' run failed in ' <<<"$output")
	run b status
	assert_status 0
	assert_contains "$output" "state     failed (exit 1)"
	assert_contains "$output" "  ✓ success    fine"
	assert_match "$output" '^  ✗ failed     broken +[0-9.]+m?s$'
	assert_match "$output" '^  - skipped    never +$'
	assert_contains "$output" $'\n✗ broken: exit code 3\n'
	assert_eq "$(grep ' run failed in ' <<<"$output" | sed 's/.*: //')" "${final#*: }"
}

@test "status: fan-outs and retries as the live view's summary shows them" {
	p=$(plan fan <<'EOF'
name: fan
steps:
  - id: deploy
    for_each: [a, b]
    steps:
      - id: push
        run: echo push
      - id: inner
        for_each: [x, y]
        run: echo inner
  - id: par
    parallel:
      - id: slow
        steps:
          - run: sleep 0.3
      - id: fast
        steps:
          - run: "true"
  - id: flaky
    run: '[ "$BATON_ATTEMPT" -ge 2 ]'
    retry: { attempts: 2, delay: 10ms }
EOF
)
	run b run "$p" --output plain
	assert_status 0
	summary=$(sed -n '/^summary$/,/^$/p' <<<"$output" | sed '1d;$d' | sed -E 's/ +[0-9.]+m?s( |$)/ D\1/')
	run b status
	assert_status 0
	tree=$(sed -n '/^$/,/^$/p' <<<"$output" | sed '1d;$d' | sed -E 's/ +[0-9.]+m?s( |$)/ D\1/')
	# the same rows in the same order; a retried task once, with its last attempt
	assert_eq "$tree" "${summary/flaky D/flaky D  (attempt 2)}"
	assert_contains "$tree" "  ✓ success          deploy.inner#1#1"
	# a group in the order it started, not ended (its row is written at its end)
	assert_contains "$tree" $'par D\n  ✓ success      par.slow D\n  ✓ success        par.slow.run-1 D\n  ✓ success      par.fast D'
}

@test "status --json: the run and every task row" {
	p=$(plan j <<'EOF'
name: j
steps:
  - id: grp
    parallel:
      - id: ok
        run: echo ok
      - id: no
        run: exit 4
        continue_on_error: true
  - id: flaky
    run: '[ "$BATON_ATTEMPT" -ge 2 ]'
    retry: { attempts: 2, delay: 10ms }
EOF
)
	run b run "$p" --output quiet
	assert_status 0
	run --separate-stderr b status --json
	assert_status 0
	assert_eq "$(js 'sorted(J)' 'J["run"]["state"]' 'J["run"]["name"]' 'sorted(J["tasks"][0])' <<<"$output")" '["run", "tasks"]
success
j
["attempt", "command", "duration_ms", "end", "exit_code", "host", "id", "item", "kind", "label", "reason", "reused", "signal", "start", "status", "step"]'
	assert_eq "$(js '[(t["id"], t["kind"], t["status"], t["attempt"], t["exit_code"], t["reason"]) for t in J["tasks"]]' <<<"$output")" \
		'[["grp.ok", null, "success", 1, 0, null], ["grp.no", null, "failed", 1, 4, "exit code 4"], ["grp", "parallel", "success", null, null, null], ["flaky", null, "failed", 1, 1, "exit code 1"], ["flaky", null, "success", 2, 0, null]]'
	run js 'J["tasks"][0]["command"]' 'J["tasks"][0]["step"]' 'J["tasks"][0]["host"]' 'J["tasks"][0]["reused"]' \
		'all(isinstance(t["duration_ms"], int) and t["start"].endswith("Z") and t["end"].endswith("Z") for t in J["tasks"])' <<<"$output"
	assert_eq "$output" $'echo ok\ngrp.ok\nnull\nfalse\ntrue'
}

@test "logs prints every output line exactly once, as --output plain does" {
	run --separate-stderr b run "$(talk_plan)" --output plain
	assert_status 0
	expected=$(grep -aE '^\[[^]]+\] (out|err) ' <<<"$output")
	assert_eq "$(grep -c . <<<"$expected")" 11 "the plan's lines"
	assert_contains "$expected" '[grp.b] out b ^[[31mred^[[0m'
	run --separate-stderr b logs
	assert_status 0
	assert_eq "$output" "$expected"
	# the ASan build reads them the same, leaking nothing
	run --separate-stderr b_asan logs
	assert_status 0
	assert_eq "$output" "$expected"
}

@test "logs TASK: a task, or a step and what is under it; --events the raw lines" {
	run b run "$(talk_plan)" --output quiet
	assert_status 0
	id=$(newest_id)
	run b logs "$id" grp.a
	assert_status 0
	assert_eq "$output" $'[grp.a] out a 1\n[grp.a] out a 2\n[grp.a] out a 3'
	run b logs grp
	assert_eq "$(cut -d' ' -f1 <<<"$output" | sort -u | tr '\n' ' ')" "[grp.a] [grp.b] "
	run b logs "$id" first last
	assert_eq "$output" $'[first] out first\n[first] err first\n[last] out last'
	run b logs flaky
	assert_eq "$output" $'[flaky] out flaky 1\n[flaky] out flaky 2' "both attempts"
	run b logs "$id" gr
	assert_status 2
	assert_eq "$output" "baton logs: no task or step 'gr' in run $id ('baton status $id' lists them)"
	run --separate-stderr b logs --events grp.b
	assert_status 0
	"$E2E_PY" -S -c '
import json, sys
E = [json.loads(l) for l in sys.stdin]
assert E and all((e.get("task") or e.get("step")) == "grp.b" for e in E), E
assert [e["type"] for e in E][:2] == ["step.start", "task.start"], E
' <<<"$output"
	run --separate-stderr b logs --events
	assert_eq "$output" "$(cat "$BATON_STATE_DIR/runs/$id/events.jsonl")"
}

@test "logs -f follows a running run: every line exactly once, and ends with it" {
	p=$(plan many <<'EOF'
name: many
steps:
  - id: count
    run: for i in $(seq 200); do echo "line $i"; sleep 0.01; done
  - id: end
    run: echo the end
EOF
)
	b run "$p" --output quiet &
	pid=$!
	# start following mid-run: once some lines are out
	for i in $(seq 100); do
		n=$(b logs 2>/dev/null | wc -l) || true
		[ "${n:-0}" -ge 5 ] && break
		sleep 0.05
	done
	assert_ge "$n" 5 "lines before following"
	run b status
	assert_contains "$output" "state     running"
	b logs -f >"$E2E_TMP/f.out" 2>"$E2E_TMP/f.err" &
	fpid=$!
	wait_pid "$pid" 20
	assert_eq "$WAIT_STATUS" 0
	wait_pid "$fpid" 5
	assert_eq "$WAIT_STATUS" 0 "logs -f ended with the run"
	expected=$(for i in $(seq 200); do echo "[count] line $i"; done; echo "[end] the end")
	assert_eq "$(cat "$E2E_TMP/f.out")" "$expected"
	assert_eq "$(cat "$E2E_TMP/f.err")" ""
	# -f on a run that has ended: what it printed, at once
	run b logs -f count
	assert_status 0
	assert_eq "$(wc -l <<<"$output")" 200
}

@test "logs without -f on a running run prints what there is and exits 0" {
	p=$(plan slow <<EOF
name: slow
steps:
  - id: a
    run: echo before
  - id: b
    run: sleep 2.$E2E_MARK
EOF
)
	b run "$p" --output quiet &
	pid=$!
	wait_status_shows "▸ running    b"
	run b logs
	assert_status 0
	assert_eq "$output" "[a] before"
	wait_pid "$pid" 20
	assert_eq "$WAIT_STATUS" 0
}

@test "status --watch not on a terminal prints the status once, when the run has ended" {
	p=$(plan w <<EOF
name: w
steps:
  - id: nap
    run: sleep 1.$E2E_MARK
EOF
)
	b run "$p" --output quiet &
	pid=$!
	wait_status_shows "▸ running    nap"
	run b status --watch
	assert_status 0
	assert_eq "$(grep -c '^run  ' <<<"$output")" 1 "printed once"
	assert_contains "$output" "state     success (exit 0)"
	wait_pid "$pid" 20
	assert_eq "$WAIT_STATUS" 0
}

@test "status --watch on a terminal redraws until the run ends" {
	command -v script >/dev/null || skip "no script(1) to give it a terminal"
	p=$(plan w <<EOF
name: w
steps:
  - id: nap
    run: sleep 1.5$E2E_MARK
EOF
)
	b run "$p" --output quiet &
	pid=$!
	wait_status_shows "▸ running    nap"
	TERM=xterm NO_COLOR=1 timeout -k 5 20 script -qec "$BATON status --watch" /dev/null >"$E2E_TMP/tty.out" </dev/null
	assert_eq "$?" 0
	# a clear and a whole status per redraw: at least two while it ran, the last one its end
	draws=$(grep -ao $'\033\[H\033\[2J' "$E2E_TMP/tty.out" | wc -l)
	assert_ge "$draws" 2 "redraws"
	last=$(awk 'BEGIN { RS = "\033\\[H\033\\[2J" } { r = $0 } END { print r }' "$E2E_TMP/tty.out")
	assert_contains "$last" "state     success (exit 0)"
	assert_contains "$(cat "$E2E_TMP/tty.out")" "state     running"
	wait_pid "$pid" 20
	assert_eq "$WAIT_STATUS" 0
}

@test "a run whose controller was killed (SIGKILL) shows as crashed; logs -f on it exits 1" {
	p=$(plan crash <<EOF
name: crash
steps:
  - id: first
    run: echo one
  - id: hang
    run: echo started; sleep 30.$E2E_MARK
EOF
)
	b run "$p" --output quiet &
	wait_status_shows "▸ running    hang"
	ctl=$(b runs --json | js 'J[0]["pid"]')
	kill -KILL "$ctl"
	id=$(newest_id)
	run b runs
	assert_match "$output" ' crash  crashed .* -  1 ok, 1 unfinished$'
	run b status
	assert_status 0
	assert_contains "$output" "state     crashed (its controller, pid $ctl, is gone; 'baton resume' re-runs what did not succeed)"
	assert_match "$output" '^  \? unfinished hang'
	assert_contains "$output" "✗ run crashed: 1 succeeded, 0 failed, 0 timed out, 0 cancelled, 0 skipped, 1 unfinished"
	run b runs --json
	assert_eq "$(js 'J[0]["state"]' 'J[0]["duration_ms"]' <<<"$output")" $'crashed\nnull'
	run --separate-stderr b logs -f
	assert_status 1
	assert_eq "$output" $'[first] one\n[hang] started'
	assert_eq "$stderr" "baton logs: run $id crashed: its controller (pid $ctl) is gone and the run did not end; 'baton resume' re-runs what did not succeed"
	run --separate-stderr b logs
	assert_status 0
	assert_contains "$stderr" "crashed"
	run --separate-stderr b_asan logs -f
	assert_status 1
	assert_eq "$output" $'[first] one\n[hang] started'
	run --separate-stderr b_asan status
	assert_status 0
	assert_contains "$output" "? unfinished hang"
}

@test "runs --prune keeps the newest N finished runs, and never a live one" {
	p=$(ok_plan)
	for i in 1 2 3 4; do b run "$p" --output quiet; done
	keep=$(b runs --json -n 2 | js '" ".join(r["id"] for r in J)')
	run b runs --prune --keep 2
	assert_status 0
	assert_eq "$output" "pruned 2 runs (kept the newest 2, and any still running)"
	assert_eq "$(b runs --json --all | js '" ".join(r["id"] for r in J)')" "$keep"
	assert_eq "$(ls "$BATON_STATE_DIR/runs" | tr '\n' ' ')" "$(tr ' ' '\n' <<<"$keep" | sort | tr '\n' ' ')"
	# BATON_KEEP_RUNS is the default; a live run stays whatever the count
	s=$(plan slow <<EOF
name: slow
steps:
  - id: nap
    run: sleep 2.$E2E_MARK
EOF
)
	b run "$s" --output quiet &
	pid=$!
	wait_status_shows "▸ running    nap"
	run b runs --prune --keep 0
	assert_eq "$output" "pruned 2 runs (kept the newest 0, and any still running)"
	run b runs
	assert_eq "$(wc -l <<<"$output")" 2
	assert_contains "$output" "running"
	wait_pid "$pid" 20
	b run "$p" --output quiet
	BATON_KEEP_RUNS=1 run b runs --prune
	assert_eq "$output" "pruned 1 run (kept the newest 1, and any still running)"
	assert_eq "$(b runs --json --all | js 'len(J)' 'J[0]["name"]')" $'1\nok-plan'
}

# integrity DB: PRAGMA integrity_check, with the sqlite3 CLI or python3's module.
integrity() {
	if command -v sqlite3 >/dev/null; then
		sqlite3 "$1" 'PRAGMA integrity_check'
	else
		"$E2E_PY" -S -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check").fetchone()[0])' "$1"
	fi
}

@test "a SIGKILL of the controller mid-run leaves the store whole" {
	p=$(plan quick <<EOF
name: quick
steps:
  - id: all
    for_each: [$(seq -s, 2000)]
    run: echo "\${{ item }}"
EOF
)
	for delay in 0.05 0.3 0.6; do
		"$BATON" run "$p" -j 4 --output quiet &
		pid=$!
		sleep "$delay"
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" || true
		assert_eq "$(integrity "$BATON_STATE_DIR/runs.db")" ok "after a SIGKILL at ${delay}s"
		run b status
		assert_status 0
	done
	run b runs --json --all
	assert_eq "$(js 'len(J)' 'J[-1]["state"]' <<<"$output")" $'3\ncrashed' "killed mid-run at 0.05s"
}

@test "a reader (status in a loop) never blocks the run that writes" {
	p=$(plan five <<EOF
name: five
steps:
  - id: all
    for_each: [$(seq -s, 500)]
    run: "true"
EOF
)
	t0=$(date +%s%N)
	run b run "$p" -j 8 --output quiet
	assert_status 0
	alone=$((($(date +%s%N) - t0) / 1000000))
	: >"$E2E_TMP/errs"
	(
		for i in $(seq 3000); do
			[ -e "$E2E_TMP/stop" ] && break
			b status >/dev/null 2>>"$E2E_TMP/errs" || echo "status failed" >>"$E2E_TMP/errs"
		done
	) &
	loop=$!
	t0=$(date +%s%N)
	run b run "$p" -j 8 --output quiet
	assert_status 0
	busy=$((($(date +%s%N) - t0) / 1000000))
	touch "$E2E_TMP/stop"
	wait_pid "$loop" 20
	assert_eq "$(cat "$E2E_TMP/errs")" "" "no reader failed"
	# a reader shares two cores with the run: similar, not equal
	assert_le "$busy" $((alone * 3 + 2000)) "the run with readers (${busy} ms) against alone (${alone} ms)"
	assert_eq "$(integrity "$BATON_STATE_DIR/runs.db")" ok
}

@test "a run records the sha256 of its plan; resume says the plan changed only when its text did" {
	p=$(plan p <<'EOF2'
name: p
steps:
  - id: a
    run: "false"
EOF2
)
	run b run "$p" --output quiet
	assert_status 1
	id=$(newest_id)
	# what the run store holds is the file's sha256, as sha256sum gives it
	got=$("$E2E_PY" -S -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("SELECT plan_sha256 FROM runs WHERE id = ?", (sys.argv[2],)).fetchone()[0])
print(c.execute("SELECT sha256 FROM files WHERE run = ? AND idx = 0", (sys.argv[2],)).fetchone()[0])' \
		"$BATON_STATE_DIR/runs.db" "$id")
	sum=$(sha256sum "$p" | cut -d' ' -f1)
	assert_eq "$got" "$sum"$'\n'"$sum" "the plan's sha256 in runs and in files"
	run --separate-stderr b resume "$id" --output quiet
	assert_status 1
	assert_not_contains "$stderr" "changed since run" "the same text: no word of a change"
	sed -i 's/"false"/"true"/' "$p"
	run --separate-stderr b resume "$id" --output quiet
	assert_status 0
	assert_contains "$stderr" "baton resume: $p changed since run $id"
}
