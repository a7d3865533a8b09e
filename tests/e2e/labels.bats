#!/usr/bin/env bats
# Labels (plan-format.md section 3, `label`): a for_each instance is shown as
# ID (LABEL) in prefixes, the summary, failure reasons, ${{ error }},
# `baton status` and `baton logs`; events carry label and labels; results
# entries say which instance they are; secrets stay masked.

load helpers
setup() {
	e2e_setup
	export BATON_STATE_DIR="$BATS_TEST_TMPDIR/state"
	unset BATON_SECRET_TOKEN
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

# servers_plan: map items named by `label:`, rolled out in batches of 2; app02 fails.
servers_plan() {
	plan servers <<'EOF'
name: servers
vars:
  servers:
    - {name: app01, region: eu}
    - {name: app02, region: us}
    - {name: app03, region: us}
steps:
  - id: rollout
    for_each: ${{ vars.servers }}
    label: "${{ item.name }}/${{ item.region }}"
    batch: {size: 2}
    steps:
      - id: deploy
        run: echo "deploying ${{ item.name }}"
      - id: check
        run: test "${{ item.name }}" != app02
    on_failure:
      - id: tell
        run: echo "ERROR=${{ error }}"
EOF
}

@test "default label: a short string or number item is shown beside the id; a long item, by its index alone" {
	p=$(plan dflt <<'EOF'
steps:
  - id: x
    for_each: [app01, 42, "an item that is much longer than forty characters, surely"]
    run: echo "hi ${{ index }}"
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[x#0 (app01)] hi 0"
	assert_contains "$output" "[x#1 (42)] hi 1"
	assert_contains "$output" "[x#2] hi 2"
	assert_not_contains "$output" "[x#2 (" "a long item is not a label"
	assert_contains "$output" "[x#0 (app01)] ✓ success in"
	# the summary shows the same form
	assert_match "$output" '^  ✓ success      x#0 \(app01\) +[0-9.]+m?s$'
	assert_match "$output" '^  ✓ success      x#2 +[0-9.]+m?s$'
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[e["label"] for e in of("task.start")]' | tr ' ' '\n' | sort | tr '\n' ' ')" "2 42 app01 "
	assert_eq "$(ev "$EV" 'tend("x#0")["label"]' 'tend("x#2")["label"]' 'one("step.end", step="x#1")["label"]')" $'app01\n2\n42'
	# the for_each step itself is no instance: no label
	assert_eq "$(ev "$EV" '"label" in one("step.end", step="x")')" false
}

@test "a task outside any for_each has a null label; a step outside one has none" {
	p=$(plan none <<'EOF'
steps:
  - id: a
    run: echo plain
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[a] plain"
	assert_eq "$(ev "$EV" 'one("task.start")["label"] is None' 'tend("a")["label"] is None' '"label" in one("step.end", step="a")')" \
		$'true\ntrue\nfalse'
}

@test "label: rendered per item in prefixes, summary, failure lines, batch lines and \${{ error }}" {
	p=$(servers_plan)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	assert_contains "$output" "[rollout] batch 1 started (2 instances): app01/eu, app02/us"
	assert_contains "$output" "[rollout.deploy#1 (app02/us)] deploying app02"
	assert_contains "$output" "[rollout.check#1 (app02/us)] ✗ failed in"
	# mode all: the first failure names its instance, label and all
	assert_contains "$output" "[rollout.on_failure.tell] ERROR=rollout#1 (app02/us) failed"
	assert_match "$output" '^  ✗ failed       rollout#1 \(app02/us\) +[0-9.]+m?s$'
	assert_match "$output" '^  ○ cancelled    rollout#2 \(app03/us\) *$'
	assert_contains "$output" "✗ rollout.check#1 (app02/us): exit code 1"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'json.dumps(one("batch.start", batch=0)["labels"])' 'json.dumps(one("batch.start", batch=0)["instances"])' \
		'json.dumps(one("batch.end", batch=0)["labels"])')" \
		$'["app01/eu", "app02/us"]\n[0, 1]\n["app01/eu", "app02/us"]'
	assert_eq "$(ev "$EV" 'one("step.end", step="rollout")["reason"]')" "rollout#1 (app02/us) failed"
	assert_eq "$(ev "$EV" 'one("task.start", task="rollout.deploy#0")["label"]' 'tend("rollout.check#1")["label"]')" \
		$'app01/eu\napp02/us'
}

@test "mode settle: the reason and \${{ error }} name the first failed instances by label" {
	p=$(plan settle <<'EOF'
steps:
  - id: fan
    for_each: [a, b, c, d, e]
    mode: settle
    run: test "${{ item }}" = a
    on_failure:
      - run: echo "ERROR=${{ error }}"
EOF
)
	run b run "$p" --output plain
	assert_status 1
	assert_contains "$output" "ERROR=4 of 5 failed: fan#1 (b), fan#2 (c), fan#3 (d), …"
}

@test "results entries carry id, item, label, host, status and reason" {
	p=$(plan results <<'EOF'
vars:
  servers: [{name: app01}, {name: app02}]
steps:
  - id: rollout
    for_each: ${{ vars.servers }}
    label: ${{ item.name }}
    mode: settle
    run: test "${{ item.name }}" = app01
    on_failure:
      - id: dump
        run: printf '%s\n' '${{ json(results) }}' > "$E2E_TMP/results.json"
EOF
)
	run b run "$p" --output plain
	assert_status 1
	run "$E2E_PY" -c '
import json, sys
r = json.load(open(sys.argv[1]))
for e in r:
    print(e["id"], json.dumps(e["item"]), e["label"], e["host"], e["status"], e["exit_code"], e["reason"])
' "$E2E_TMP/results.json"
	assert_eq "$output" $'rollout#0 {"name": "app01"} app01 None success 0 None\nrollout#1 {"name": "app02"} app02 None failed 1 exit code 1'
}

@test "a label that cannot be rendered shows the default and warns once for the step" {
	p=$(plan broken <<'EOF'
vars:
  servers: [{name: app01}, {host: app02}, {host: app03}]
steps:
  - id: x
    for_each: ${{ vars.servers }}
    label: ${{ item.name }}
    run: echo ok
EOF
)
	run --separate-stderr b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[x#0 (app01)] ok"
	assert_contains "$output" "[x#1] ok"
	assert_contains "$output" "[x#2] ok"
	assert_eq "$(ev "$EV" 'len(of("warning"))')" 1 "one warning for the step"
	assert_contains "$(ev "$EV" 'one("warning")["message"]')" "its label could not be rendered"
	assert_contains "$stderr" "its label could not be rendered (item: no key 'name')"
	assert_contains "$output" "⚠ warning:" "the summary lists it"
	assert_eq "$(ev "$EV" 'tend("x#1")["label"]')" 1
}

@test "an empty label is no label: the default is shown, without a warning" {
	p=$(plan empty <<'EOF'
steps:
  - id: x
    for_each: [one, two]
    label: "${{ '' }}"
    run: echo ok
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[x#1 (two)] ok"
	assert_eq "$(ev "$EV" 'len(of("warning"))')" 0
}

@test "a secret in a label is masked in prefixes, events and \${{ results }}" {
	p=$(plan secret <<'EOF'
secrets: [token]
steps:
  - id: x
    for_each: [a, b]
    label: "${{ item }}-${{ vars.token }}"
    mode: settle
    run: test "${{ item }}" = a
    on_failure:
      - run: echo 'R=${{ json(results) }}'
EOF
)
	export BATON_SECRET_TOKEN=hunter2-s3cret
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	assert_contains "$output" "[x#0 (a-***)] ✓ success"
	assert_eq "$(ev "$EV" 'one("step.end", step="x")["reason"]')" "1 of 2 failed: x#1 (b-***)"
	assert_not_contains "$output" "hunter2-s3cret"
	assert_not_contains "$(cat "$EV")" "hunter2-s3cret"
	assert_eq "$(ev "$EV" 'tend("x#1")["label"]')" "b-***"
	run b status --json
	assert_not_contains "$output" "hunter2-s3cret"
}

@test "a secret item is masked in its default label" {
	p=$(plan secretitem <<'EOF'
secrets: [token]
steps:
  - id: x
    for_each: ["${{ vars.token }}"]
    batch: {size: 1}
    run: echo hi
EOF
)
	export BATON_SECRET_TOKEN=hunter2-s3cret
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[x#0 (***)] hi"
	assert_not_contains "$(cat "$EV")" "hunter2-s3cret"
	assert_eq "$(ev "$EV" 'json.dumps(one("batch.start")["labels"])')" '["***"]'
}

@test "a retried task keeps its label on every attempt and on the retry line" {
	p=$(plan retry <<'EOF'
steps:
  - id: x
    for_each: [web]
    retry: {attempts: 2, delay: 10ms}
    run: '[ "$BATON_ATTEMPT" -ge 2 ]'
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[x#0 (web)] ↻ retrying in"
	assert_contains "$output" "[x#0 (web)] $ [ \"\$BATON_ATTEMPT\" -ge 2 ]  (attempt 2)"
	assert_eq "$(ev "$EV" '[e["label"] for e in of("task.start")]' 'one("task.retry")["label"]')" $'web web\nweb'
}

@test "baton status and baton logs show the labels the run showed" {
	p=$(servers_plan)
	run b run "$p" --output plain
	assert_status 1
	summary=$(sed -n '/^summary$/,/^$/p' <<<"$output" | sed '1d;$d' | sed -E 's/ +[0-9.]+m?s( |$)/ D\1/')
	plain=$(grep -aE '^\[[^]]+\] deploying ' <<<"$output")
	run b status
	assert_status 0
	tree=$(sed -n '/^$/,/^$/p' <<<"$output" | sed '1d;$d' | sed -E 's/ +[0-9.]+m?s( |$)/ D\1/')
	# (an instance cancelled before it started is placed apart by each: compared without those)
	assert_eq "$(grep -v cancelled <<<"$tree")" "$(grep -v cancelled <<<"$summary")"
	assert_contains "$tree" "○ cancelled    rollout#2 (app03/us)"
	assert_contains "$output" "✗ rollout.check#1 (app02/us): exit code 1"
	run b status --json
	assert_eq "$(js '[t["label"] for t in J["tasks"] if t["id"] in ("rollout.deploy#0", "rollout#1", "rollout")]' <<<"$output")" \
		'["app01/eu", "app02/us", null]'
	run b logs
	assert_status 0
	assert_eq "$(grep -aE ' deploying ' <<<"$output")" "$plain"
	assert_contains "$output" "[rollout.deploy#1 (app02/us)] deploying app02"
	# ids stay ids: logs takes an instance's id without its label
	run b logs rollout.deploy#1
	assert_eq "$output" "[rollout.deploy#1 (app02/us)] deploying app02"
}

@test "a store written before labels gets its label column from the next run, and older rows read as none" {
	p=$(servers_plan)
	run b run "$p" --output quiet
	# make the store as an older baton left it: schema 2, no label column
	"$E2E_PY" -S -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("ALTER TABLE tasks DROP COLUMN label")
c.execute("PRAGMA user_version = 2")
c.commit()' "$BATON_STATE_DIR/runs.db" || skip "this sqlite3 cannot drop a column"
	run b status
	assert_status 0
	assert_contains "$output" "rollout.check#1: exit code 1" "a row without a label"
	run b run "$p" --output quiet
	run b status
	assert_contains "$output" "rollout.check#1 (app02/us): exit code 1"
}

@test "the tty view shows labels in its rows and summary" {
	command -v script >/dev/null || skip "script(1) is not installed"
	p=$(plan tty <<'EOF'
steps:
  - id: x
    for_each: [app01, app02]
    run: sleep 0.3; echo "on ${{ item }}"
EOF
)
	TERM=xterm COLUMNS=100 run timeout 20 script -qfec "$BATON run '$p' --output tty" /dev/null
	assert_status 0
	assert_contains "$output" "x#1 (app02)"
	assert_match "$output" '▸.*x#0 \(app01\)' "a live row"
	assert_match "$output" 'x#1 \(app02\).*on app02'
}

@test "ASan: labels, batch labels, a failing label and results run clean" {
	[ -x "$BATON_ASAN" ] || skip "no ASan build"
	p=$(servers_plan)
	run --separate-stderr b_asan run "$p" --output plain --events "$EV"
	assert_status 1
	assert_not_contains "$stderr" "ERROR: AddressSanitizer"
	assert_not_contains "$stderr" "runtime error"
	assert_contains "$output" "ERROR=rollout#1 (app02/us) failed"
	run --separate-stderr b_asan status
	assert_status 0
	assert_not_contains "$stderr" "ERROR: AddressSanitizer"
	run --separate-stderr b_asan logs
	assert_status 0
	assert_not_contains "$stderr" "ERROR: LeakSanitizer"
}

@test "an instance waiting at a barrier is shown, and its barrier.wait event carries, its label" {
	p=$(plan bar <<'EOF2'
steps:
  - id: roll
    for_each: [web1, web2]
    steps:
      - run: "true"
      - barrier: ready
      - run: "true"
EOF2
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[roll.barrier-2#0 (web1)] ⏸ waiting at barrier ready"
	assert_contains "$output" "[roll.barrier-2#1 (web2)] ⏸ waiting at barrier ready"
	assert_eq "$(ev "$EV" 'sorted(e["label"] for e in of("barrier.wait"))' '"label" in one("barrier.release")')" \
		$'web1 web2\nfalse'
}
