#!/usr/bin/env bats
# Reports: `run --junit/--report/--markdown`, `baton report RUN`, and the
# GitHub job summary. JUnit XML is validated against the schema Jenkins and
# GitLab read (tests/fixtures/junit.xsd) with xmllint, and read back with
# Python to check what each testcase says.

load helpers

setup() {
	e2e_setup
	export BATON_STATE_DIR="$BATS_TEST_TMPDIR/state"
	unset GITHUB_STEP_SUMMARY
	XSD="$REPO_DIR/tests/fixtures/junit.xsd"
}
teardown() { e2e_teardown; }

# valid FILE: the JUnit file validates against the schema.
valid() {
	run xmllint --noout --schema "$XSD" "$1"
	assert_status 0
	assert_contains "$output" "validates"
}

# cases FILE: one line per testcase: "classname|name|outcome|message|time", outcome
# being the child element (failure, error, skipped) or "ok".
cases() {
	"$E2E_PY" -S -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for tc in root.iter("testcase"):
    kind, msg = "ok", ""
    for k in ("failure", "error", "skipped"):
        e = tc.find(k)
        if e is not None:
            kind, msg = k, e.get("message") or ""
    print("|".join([tc.get("classname"), tc.get("name"), kind, msg, tc.get("time")]))
' "$1"
}

# text FILE ELEMENT: the text of every ELEMENT (failure, system-out, ...) in FILE, as parsed.
text() {
	"$E2E_PY" -S -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for e in root.iter(sys.argv[2]):
    sys.stdout.write(e.text or "")
' "$1" "$2"
}

# attr FILE XPATH NAME: an attribute of the first element XPATH finds.
attr() {
	"$E2E_PY" -S -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
print(root.find(sys.argv[2]).get(sys.argv[3]))
' "$1" "$2" "$3"
}

mixed_plan() {
	plan mixed <<'EOF'
name: mixed
steps:
  - name: ok
    run: echo hello; echo warn >&2
  - name: slow
    run: sleep 5
    timeout: 300ms
    continue_on_error: true
  - name: flaky
    run: echo "try $BATON_ATTEMPT"; exit 1
    retry: { attempts: 2, delay: 10ms }
    continue_on_error: true
  - name: fan
    for_each: [a, b]
    label: "box-${{ item }}"
    run: echo item ${{ item }}
  - name: bad
    run: echo first; echo failing now; exit 3
  - name: later
    run: echo never
EOF
}

@test "run --junit: one testcase per task, validated against the JUnit schema" {
	p=$(mixed_plan)
	run b run "$p" --output quiet --junit out.xml --events ev.jsonl
	assert_status 1
	valid out.xml
	run cases out.xml
	assert_contains "$output" "ok|ok|ok||"
	assert_match "$output" '^bad\|bad\|failure\|exit code 3\|[0-9]+\.[0-9]{3}$'
	assert_contains "$output" "fan|fan#0 (box-a)|ok||"
	assert_contains "$output" "fan|fan#1 (box-b)|ok||"
	assert_contains "$output" "later|later|skipped|skipped|0.000"
	# a failure continue_on_error absorbed is shown as tolerated once task.end says so
	if grep -q '"tolerated":true' ev.jsonl; then
		assert_contains "$output" "slow|slow|skipped|tolerated timeout: timed out after 300ms|"
		assert_contains "$output" "flaky|flaky|skipped|tolerated failure: exit code 1|"
		fails=1 errors=0 skipped=3
	else
		assert_contains "$output" "slow|slow|error|timed out after 300ms|"
		assert_contains "$output" "flaky|flaky|failure|exit code 1|"
		fails=2 errors=1 skipped=1
	fi
	# one testcase per task: the retried task is one testcase, its attempts noted
	assert_eq "$(cases out.xml | wc -l)" 7 "testcases"
	assert_eq "$(attr out.xml testsuite tests)" 7
	assert_eq "$(attr out.xml testsuite failures)" $fails
	assert_eq "$(attr out.xml testsuite errors)" $errors
	assert_eq "$(attr out.xml testsuite skipped)" $skipped
	run text out.xml failure
	assert_contains "$output" "failing now"
	assert_contains "$output" '$ echo first; echo failing now; exit 3'
	run text out.xml system-out
	assert_contains "$output" "attempt 1: failed (exit code 1)"
	assert_contains "$output" "try 2"
	run text out.xml system-err
	assert_contains "$output" "warn"
	# the slow task's time is its duration in seconds
	run cases out.xml
	assert_match "$output" '^slow\|slow\|[a-z]+\|[^|]*\|0\.[3-9][0-9]{2}$'
}

@test "baton report RUN --junit writes the same file as run --junit did, for the newest run and by id prefix" {
	p=$(mixed_plan)
	run b run "$p" --output quiet --junit live.xml --markdown live.md --events ev.jsonl
	assert_status 1
	id=$("$E2E_PY" -S -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["run"])' ev.jsonl)
	run b report --junit later.xml --markdown later.md
	assert_status 0
	cmp live.xml later.xml
	cmp live.md later.md
	run b report "${id:0:20}" --junit prefix.xml
	assert_status 0
	cmp live.xml prefix.xml
	# '-' is standard output
	run b report "$id" --junit -
	assert_status 0
	assert_eq "$output" "$(cat live.xml)"
}

@test "output is escaped: script tags, ]]>, XML specials, a control character and invalid UTF-8" {
	p=$(plan esc <<'EOF'
name: esc
steps:
  - name: nasty
    run: |
      echo '</script><script>alert(1)</script>'
      echo 'cdata ]]> end'
      echo "specials <&>\"' end"
      printf 'ctl:\001:end\n'
      printf 'bad:\377\376:end\n'
      exit 4
EOF
)
	run b run "$p" --output quiet --junit esc.xml --report esc.html --markdown esc.md
	assert_status 1
	valid esc.xml
	raw=$(cat esc.xml)
	assert_not_contains "$raw" "<script>"
	assert_not_contains "$raw" "]]>"
	assert_contains "$raw" "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
	run text esc.xml system-out
	assert_contains "$output" "</script><script>alert(1)</script>"
	assert_contains "$output" "cdata ]]> end"
	assert_contains "$output" "specials <&>\"' end"
	assert_contains "$output" 'ctl:\x01:end'
	assert_contains "$output" 'bad:\xFF\xFE:end'
	# the HTML page: the text cannot end a script element
	html=$(cat esc.html)
	assert_contains "$html" "alert(1)"
	assert_not_contains "$html" "</script><script>alert"
	assert_not_contains "$html" "alert(1)</script"
	# and the report replayed from the store is the same, byte for byte
	run b report --junit again.xml
	assert_status 0
	cmp esc.xml again.xml
}

@test "markdown: status, counts, the failure with its last lines in a fence no output closes, slowest tasks" {
	p=$(plan md <<'EOF'
name: md
steps:
  - name: good
    run: sleep 0.2
  - name: broken
    run: |
      for i in $(seq 1 30); do echo "line $i"; done
      echo 'a fence ```` inside'
      exit 2
EOF
)
	run b run "$p" --output quiet --markdown out.md
	assert_status 1
	md=$(cat out.md)
	assert_contains "$md" "— failed"
	assert_contains "$md" "| 1 | 1 | 0 | 0 | 0 | 0 |"
	assert_contains "$md" "### Failures"
	assert_contains "$md" "broken"
	assert_contains "$md" "exit code 2"
	assert_contains "$md" "line 30"
	assert_not_contains "$md" "line 10"$'\n' "only the last lines are kept"
	assert_contains "$md" "(11 earlier lines not kept)"
	# the fence is longer than the longest backtick run of the output
	assert_contains "$md" '`````text'
	assert_contains "$md" "### Slowest tasks"
	# the slowest first
	assert_match "$(grep -A4 Slowest out.md)" '^\| ` good ` \| ✓ success'
}

@test "GITHUB_STEP_SUMMARY: the summary is appended, what was there is kept" {
	p=$(plan gh <<'EOF'
name: gh
steps:
  - name: fails
    run: echo "why it broke"; exit 1
EOF
)
	printf 'earlier step summary\n' >summary.md
	GITHUB_STEP_SUMMARY="$PWD/summary.md" run b run "$p" --output quiet
	assert_status 1
	s=$(cat summary.md)
	assert_eq "$(head -1 summary.md)" "earlier step summary"
	assert_contains "$s" "## ✗ baton: gh — failed"
	assert_contains "$s" "why it broke"
	# a second run appends again
	GITHUB_STEP_SUMMARY="$PWD/summary.md" run b run "$p" --output quiet
	assert_eq "$(grep -c '## ✗ baton: gh' summary.md)" 2
	# a summary file that cannot be written is said, and does not stop the run
	GITHUB_STEP_SUMMARY="$PWD/nodir/summary.md" run b run "$p" --output plain
	assert_status 1
	assert_contains "$output" "GITHUB_STEP_SUMMARY $PWD/nodir/summary.md: No such file or directory"
}

@test "an unwritable report path fails before anything runs: exit 2, the path and the reason" {
	p=$(plan marker <<EOF
name: marker
steps:
  - name: touch
    run: touch "$BATS_TEST_TMPDIR/ran"
EOF
)
	run b run "$p" --junit "$BATS_TEST_TMPDIR/missing/dir/out.xml"
	assert_status 2
	assert_contains "$output" "--junit $BATS_TEST_TMPDIR/missing/dir/out.xml: No such file or directory"
	assert_file_absent "$BATS_TEST_TMPDIR/ran"
	mkdir adir
	run b run "$p" --report adir
	assert_status 2
	assert_contains "$output" "--report adir: Is a directory"
	assert_file_absent "$BATS_TEST_TMPDIR/ran"
	# one good path and one bad: nothing runs, and the good one is not left half made
	run b run "$p" --markdown good.md --junit "$BATS_TEST_TMPDIR/missing/x.xml"
	assert_status 2
	assert_file_absent "$BATS_TEST_TMPDIR/ran"
	assert_file_absent good.md
	assert_eq "$(ls -A | grep -c '^\.good' || true)" 0 "no temporary file left"
	# reports need a run
	run b run "$p" --dry-run --junit x.xml
	assert_status 2
	assert_contains "$output" "--junit needs a run"
	run b run "$p" --junit -
	assert_status 2
	assert_file_absent "$BATS_TEST_TMPDIR/ran"
}

@test "baton report: an unknown run, no store, no report asked for: clear errors, exit 2" {
	run b report --junit x.xml
	assert_status 2
	assert_contains "$output" "baton report: no runs recorded in $BATON_STATE_DIR"
	p=$(plan one <<'EOF'
name: one
steps:
  - name: a
    run: "true"
EOF
)
	run b run "$p" --output quiet
	assert_status 0
	run b report nosuchrun --junit x.xml
	assert_status 2
	assert_contains "$output" "baton report: no run 'nosuchrun'"
	assert_file_absent x.xml
	run b report
	assert_status 2
	assert_contains "$output" "--junit FILE, --html FILE or --markdown FILE"
	run b report --junit a.xml --markdown -  --html -
	assert_status 2
	assert_contains "$output" "only one report may go to standard output"
	run b report --help
	assert_status 0
	assert_contains "$output" "usage: baton report [RUN]"
}

@test "secrets are masked in every report" {
	p=$(plan sec <<'EOF'
name: sec
secrets: [token]
steps:
  - name: leak
    run: echo "the token is ${{ vars.token }}"; exit 1
EOF
)
	BATON_SECRET_TOKEN=hunter2-s3cr3t run b run "$p" --output quiet --junit s.xml --report s.html --markdown s.md
	assert_status 1
	for f in s.xml s.html s.md; do
		assert_not_contains "$(cat $f)" "hunter2-s3cr3t" "$f"
		assert_contains "$(cat $f)" "the token is ***" "$f"
	done
	run b report --junit r.xml
	assert_not_contains "$(cat r.xml)" "hunter2-s3cr3t"
}

@test "an interrupted run still writes its reports: the running task cancelled, the rest skipped" {
	p=$(plan sig <<EOF
name: sig
steps:
  - name: first
    run: echo started; sleep 30.$E2E_MARK
  - name: second
    run: echo never
EOF
)
	"$BATON" run "$p" --output quiet --junit sig.xml --events ev.jsonl 3>&- &
	pid=$!
	wait_for_event ev.jsonl task.output
	kill -INT "$pid"
	wait_pid "$pid" 10
	assert_eq "$WAIT_STATUS" 130
	valid sig.xml
	run cases sig.xml
	assert_contains "$output" "first|first|skipped|cancelled|"
	assert_contains "$output" "second|second|skipped|cancelled|"
	run text sig.xml system-out
	assert_contains "$output" "started"
	assert_eq "$(ls -A | grep -c '^\.sig' || true)" 0 "no temporary file left"
	assert_no_leftovers
}

@test "the report of a run still going covers what it did so far" {
	p=$(plan going <<EOF
name: going
steps:
  - name: done
    run: echo finished
  - name: busy
    run: echo working; sleep 30.$E2E_MARK
EOF
)
	"$BATON" run "$p" --output quiet --events ev.jsonl 3>&- &
	pid=$!
	wait_for_event ev.jsonl task.output
	sleep 0.2
	run b report --junit now.xml --markdown now.md
	assert_status 0
	valid now.xml
	run cases now.xml
	assert_contains "$output" "done|done|ok||"
	assert_contains "$output" "busy|busy|skipped|still running|"
	assert_contains "$(cat now.md)" "still running"
	kill -TERM "$pid"
	wait_pid "$pid" 10
	assert_no_leftovers
}

@test "reports under ASan: no leak, no error, live and replayed" {
	[ -x "$BATON_ASAN" ] || fail "no ASan build at $BATON_ASAN (make build/baton-asan)"
	p=$(mixed_plan)
	run b_asan run "$p" --output plain --junit a.xml --report a.html --markdown a.md
	assert_status 1
	assert_not_contains "$output" "ERROR: "
	assert_not_contains "$output" "runtime error"
	run b_asan report --junit b.xml --html b.html --markdown -
	assert_status 0
	assert_not_contains "$output" "ERROR: "
	assert_contains "$output" "### Failures"
	cmp a.xml b.xml
	cmp a.html b.html
}
