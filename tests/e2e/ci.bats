#!/usr/bin/env bats
# What CI systems read in plain output (src/event/ci.c): GitHub Actions
# annotations, GitLab CI sections, Buildkite groups.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

ci_plan() {
	plan ci <<'EOF2'
name: ci
steps:
  - id: build
    run: echo building; echo "::error::from the task"
  - id: flaky
    retry: {attempts: 2, delay: 10ms}
    run: test -e flag || { touch flag; exit 1; }
  - id: tests
    mode: settle
    parallel:
      - id: unit
        run: echo unit ok
      - id: lint
        run: |
          echo "lint, 50%: bad"; exit 3
      - id: slow
        timeout: 100ms
        run: sleep 5
      - id: fan
        mode: settle
        for_each: [a, "b,c"]
        run: test "${{ item }}" = a
  - id: never
    run: echo not reached
EOF2
}

@test "GitHub Actions: each task that failed for good gets one ::error at its step's line and column" {
	p=$(ci_plan)
	GITHUB_ACTIONS=true run b run "$p" --output plain
	assert_status 1
	errors=$(grep '^::error ' <<<"$output" || true)
	# lint (line 13 col 9: its `id`), the timeout, the fan-out's second item; not flaky (a retry passed)
	assert_contains "$errors" "::error file=$p,line=13,col=9,title=tests.lint::exit code 3"
	assert_match "$errors" "^::error file=$p,line=16,col=9,title=tests.slow::.*timed out"
	# a title's ',' and ':' are escaped as GitHub unescapes them
	assert_contains "$errors" "line=19,col=9,title=tests.fan#1 (b%2Cc)::exit code 1"
	assert_not_contains "$errors" "flaky"
	assert_eq "$(grep -c '^::error ' <<<"$output")" 3 "one annotation per failed task"
	# a task's own workflow command stays behind its prefix: GitHub reads commands at a line's start only
	assert_match "$output" '^\[build\] ::error::from the task$'
	! grep -q '^::error::from the task' <<<"$output" || fail "a task's own ::error reached the start of a line"
}

@test "GitHub Actions: % , : in a title are escaped, control characters made visible; no annotation off GitHub or in JSON" {
	p=$(plan pct <<'EOF2'
steps:
  - id: pct
    mode: settle
    for_each: ["50%", "x:y", "a\nb"]
    label: ${{ item }}
    run: exit 1
EOF2
)
	GITHUB_ACTIONS=true run b run "$p" --output plain
	assert_status 1
	assert_contains "$output" "::error file=$p,line=2,col=5,title=pct#0 (50%25)::exit code 1"
	assert_contains "$output" "::error file=$p,line=2,col=5,title=pct#1 (x%3Ay)::exit code 1"
	assert_eq "$(grep -c '^::error ' <<<"$output")" 3 "annotations, each on one line"
	assert_contains "$output" 'title=pct#2 (a^Jb)::exit code 1'
	run b run "$p" --output plain
	assert_not_contains "$output" "::error"
	GITHUB_ACTIONS=true run b run "$p" --output json
	assert_not_contains "$output" "::error" "the JSON stream stays JSON"
}

@test "GitLab CI: each top-level step is a collapsed section, opened and closed once" {
	p=$(ci_plan)
	GITLAB_CI=true run b run "$p" --output plain
	assert_status 1
	starts=$(grep -c $'^\e\\[0Ksection_start:[0-9]*:baton_[0-9]*_[A-Za-z0-9_.-]*\\[collapsed=true\\]\r\e\\[0K' <<<"$output")
	ends=$(grep -c $'^\e\\[0Ksection_end:[0-9]*:baton_[0-9]*_[A-Za-z0-9_.-]*\r\e\\[0K$' <<<"$output")
	assert_eq "$starts" 3 "section starts (one per top-level step that ran)"
	assert_eq "$ends" 3 "section ends"
	# sections pair up in order and every task line sits inside one
	python3 - "$output" <<'PY'
import re, sys
open_ = None
for line in sys.argv[1].split("\n"):
    if line.startswith("summary"):
        break
    m = re.match(r"\x1b\[0Ksection_(start|end):\d+:([A-Za-z0-9_.-]+)", line)
    if m and m.group(1) == "start":
        assert open_ is None, "nested section " + line
        open_ = m.group(2)
    elif m:
        assert open_ == m.group(2), "section_end of %r while %r is open" % (m.group(2), open_)
        open_ = None
    elif line.startswith("["):
        assert open_, "task line outside a section: " + line
assert open_ is None
PY
	run b run "$p" --output plain
	assert_not_contains "$output" "section_start"
}

@test "Buildkite: a --- group per top-level step, expanded with ^^^ +++ when it failed" {
	p=$(ci_plan)
	BUILDKITE=true run b run "$p" --output plain
	assert_status 1
	assert_eq "$(grep -c '^--- ' <<<"$output")" 3 "groups"
	# the failed step (tests) is expanded right after its lines, the others are not
	assert_eq "$(grep -c '^^^^ +++$' <<<"$output")" 1 "expanded groups"
	assert_eq "$(grep -B1 '^^^^ +++$' <<<"$output" | head -1 | cut -c1-7)" "[tests." "expanded after the failed step's lines"
	run b run "$p" --output plain
	assert_not_contains "$output" "^^^"
}
