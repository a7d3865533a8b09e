#!/usr/bin/env bats
# Structured outputs (plan-format.md section 6): $BATON_OUTPUT (KEY=VALUE and
# KEY<<DELIM blocks) read back as steps.ID.outputs.KEY, from_json(), and the
# fields that may be ${{ }}: continue_on_error and batch. Over SSH:
# ssh_outputs.bats.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

@test "KEY=VALUE lines and KEY<<EOF blocks become steps.ID.outputs.KEY, read by a later step and in when" {
	p=$(plan kv <<'EOF'
steps:
  - id: probe
    run: |
      echo 'version=1.4.2' >> "$BATON_OUTPUT"
      echo 'equals=a=b=c' >> "$BATON_OUTPUT"
      echo 'empty=' >> "$BATON_OUTPUT"
      printf 'notes<<END_NOTES\nfirst line\n\nthird = line\nEND_NOTES\n' >> "$BATON_OUTPUT"
      echo 'version=1.4.3' >> "$BATON_OUTPUT"
      echo plain stdout
  - id: use
    run: |
      echo "v=${{ steps.probe.outputs.version }} eq=${{ steps.probe.outputs.equals }} empty=[${{ steps.probe.outputs.empty }}]"
      printf '%s|' "${{ steps.probe.outputs.notes }}"; echo
      echo "stdout=${{ steps.probe.stdout }} n=${{ len(steps.probe.outputs) }}"
  - id: yes
    when: steps.probe.outputs.version == "1.4.3"
    run: echo ran
  - id: no
    when: steps.probe.outputs.version == "1.4.2"
    run: echo ran
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("use")')" $'v=1.4.3 eq=a=b=c empty=[]\nfirst line\n\nthird = line|\nstdout=plain stdout n=4'
	assert_eq "$(ev "$EV" 'status("yes")' 'status("no")')" $'success\nskipped'
	# the private directory of the files is gone with the run
	run b run "$p" --output quiet
	assert_status 0
}

@test "BATON_OUTPUT names a private file (0600, in a 0700 directory) removed after reading; a step nobody reads gets /dev/null" {
	p=$(plan priv <<'EOF'
steps:
  - id: w
    run: |
      stat -c '%a' "$BATON_OUTPUT" "$(dirname "$BATON_OUTPUT")"
      echo "path=$BATON_OUTPUT" >> "$BATON_OUTPUT"
  - id: unread
    run: echo "$BATON_OUTPUT"
  - run: echo "${{ steps.w.outputs.path }}"
EOF
)
	export TMPDIR="$BATS_TEST_TMPDIR/tmp"
	mkdir -p "$TMPDIR"
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("w")')" $'600\n700'
	assert_eq "$(ev "$EV" 'out("unread")')" /dev/null
	path=$(ev "$EV" 'out("run-3")')
	[[ "$path" == "$TMPDIR"/baton-out.* ]] || fail "path $path is not in TMPDIR"
	[ ! -e "$path" ] || fail "$path was not removed"
	assert_eq "$(ls -A "$TMPDIR")" "" "the run's directory is removed at its end"
}

@test "for_each items' outputs: steps.ID.items[N].outputs.KEY, and results entries in a handler" {
	p=$(plan items <<'EOF'
steps:
  - id: each
    for_each: [a, b, c]
    run: echo "got=${{ item }}${{ index }}" >> "$BATON_OUTPUT"
    finally:
      - run: echo "${{ results[2].outputs.got }}"
  - run: echo "${{ steps.each.items[0].outputs.got }} ${{ steps.each.items[1].outputs.got }}"
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("each.finally.run-1")' 'out("run-2")')" $'c2\na0 b1'
}

@test "from_json reads fields of JSON on stdout and in an output; bad JSON fails the task with the position" {
	p=$(plan fj <<'EOF'
steps:
  - id: probe
    run: |
      echo '{"healthy": true, "hosts": ["web1", "web2"], "n": 3}'
      echo 'doc={"ok": "yes", "list": [1, 2]}' >> "$BATON_OUTPUT"
  - run: echo "${{ from_json(steps.probe.stdout).healthy }} ${{ from_json(steps.probe.stdout).hosts[1] }} ${{ from_json(steps.probe.outputs.doc).list[1] }}"
  - id: gate
    when: from_json(steps.probe.stdout).n > 2 && from_json(steps.probe.outputs.doc).ok == "yes"
    run: echo gate-open
  - id: bad
    run: |
      echo "${{ from_json('{"a": ') }}"
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'out("run-2")' 'out("gate")')" $'true web2 2\ngate-open'
	assert_contains "$(ev "$EV" 'tend("bad")["reason"]')" "from_json(): not JSON at line 1, column"
}

@test "a malformed output file fails the task with the line: no '=', an unterminated block, a bad name" {
	p=$(plan bad <<'EOF'
steps:
  - id: par
    parallel:
      - id: noeq
        run: printf 'ok=1\njust text\n' >> "$BATON_OUTPUT"
      - id: open
        run: printf 'x<<EOF\nline\n' >> "$BATON_OUTPUT"
      - id: name
        run: printf '9lives=1\n' >> "$BATON_OUTPUT"
    mode: settle
  - run: echo "${{ steps.par.noeq.outputs }} ${{ steps.par.open.outputs }} ${{ steps.par.name.outputs }}"
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("par.noeq")["reason"]')" "\$BATON_OUTPUT line 2: expected KEY=VALUE or KEY<<DELIMITER, got 'just text'"
	assert_eq "$(ev "$EV" 'tend("par.open")["reason"]')" "\$BATON_OUTPUT line 1: the block 'x<<EOF' has no line 'EOF' to end it"
	assert_contains "$(ev "$EV" 'tend("par.name")["reason"]')" "\$BATON_OUTPUT line 1: '9lives' is not a valid output name"
	assert_eq "$(ev "$EV" 'tend("par.noeq")["exit_code"]')" 0 "the command's own exit code stays"
	assert_contains "$output" "\$BATON_OUTPUT line 2: expected KEY=VALUE or KEY<<DELIMITER"
}

@test "an output file over 1 MiB fails the task and says so; exactly 1 MiB is read" {
	p=$(plan big <<'EOF'
steps:
  - id: big
    run: head -c 1048580 /dev/zero | tr '\0' a | sed 's/^/k=/' >> "$BATON_OUTPUT"
    continue_on_error: true
  - id: fits
    run: "{ printf k=; head -c 1048573 /dev/zero | tr '\\0' b; echo; } >> \"$BATON_OUTPUT\""
  - run: echo "${{ len(steps.fits.outputs.k) }} ${{ steps.big.outputs }}"
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_contains "$(ev "$EV" 'tend("big")["reason"]')" "\$BATON_OUTPUT holds more than 1 MiB"
	assert_eq "$(ev "$EV" 'out("run-3")')" "1048573 {}"
}

@test "a secret written to an output is masked wherever it is shown" {
	p=$(plan sec <<'EOF'
secrets: [token]
steps:
  - id: w
    run: echo "tok=${{ vars.token }}" >> "$BATON_OUTPUT"
  - id: r
    run: echo "got ${{ steps.w.outputs.tok }}"
EOF
)
	BATON_SECRET_TOKEN=s3cr3t-Value run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_not_contains "$output" "s3cr3t-Value"
	assert_not_contains "$(cat "$EV")" "s3cr3t-Value"
	assert_contains "$output" "[r] got ***"
}

@test "continue_on_error as an expression is decided per item; wrong type at run time fails with the reason" {
	p=$(plan coe <<'EOF'
vars: { lenient: [b] }
steps:
  - id: each
    for_each: [a, b, c]
    continue_on_error: ${{ contains(vars.lenient, item) }}
    run: sleep 0.2; test "${{ item }}" != b
  - id: next
    run: echo next
  - id: strict
    for_each: [x, y]
    continue_on_error: ${{ item == "nope" }}
    mode: settle
    run: test "${{ item }}" != y
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	# b's failure is tolerated: a and c are not cancelled, the step and the sequence go on
	assert_eq "$(ev "$EV" 'tend("each#0")["status"]' 'tend("each#1")["status"]' 'tend("each#2")["status"]')" $'success\nfailed\nsuccess'
	assert_eq "$(ev "$EV" 'status("each")' 'status("next")' 'status("strict")')" $'success\nsuccess\nfailed'
	p=$(plan coetype <<'EOF'
vars: { v: maybe }
steps:
  - id: e
    continue_on_error: ${{ vars.v }}
    run: "false"
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'one("step.end", step="e")["reason"]')" \
		"exit code 1; 'continue_on_error': the expression gave a string, not true or false"
}

@test "batch size, pause and max_failures from vars; a wrong type fails the step with the reason" {
	p=$(plan bs <<'EOF'
vars: { size: 2, pause: 50ms, maxf: 1 }
steps:
  - id: roll
    for_each: [1, 2, 3, 4, 5]
    batch: { size: "${{ vars.size }}", pause: "${{ vars.pause }}", max_failures: "${{ vars.maxf }}" }
    run: test ${{ item }} != 2
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'json.dumps([e["instances"] for e in of("batch.start")])')" "[[0, 1], [2, 3], [4]]"
	# a list: a staged rollout, the last size repeating; max_failures 0 stops it after the failed batch
	p2=$(plan bs2 <<'EOF'
vars: { sizes: [1, "50%"] }
steps:
  - id: roll
    for_each: [1, 2, 3, 4, 5]
    batch: { size: "${{ vars.sizes }}", max_failures: "${{ 0 }}" }
    run: test ${{ item }} != 3
EOF
)
	run b run "$p2" --output quiet --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'json.dumps([e["instances"] for e in of("batch.start")])')" "[[0], [1, 2, 3]]"
	# (--var takes the default's type, so a string reaches batch.size from a var whose default is one)
	sed 's/size: 2/size: lots/' "$p" >"$BATS_TEST_TMPDIR/bs-lots.yaml"
	run b run "$BATS_TEST_TMPDIR/bs-lots.yaml" --output quiet --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'one("step.end", step="roll")["reason"]')" \
		"'batch.size': the expression gave 'lots'; expected a count of at least 1 or a percentage like \"25%\""
}

@test "continue_on_error and batch expressions may read only vars, inputs, env, item, index and host: FILE:LINE:COL errors" {
	p=$(plan refs <<'EOF'
steps:
  - id: a
    run: "true"
  - id: b
    continue_on_error: ${{ steps.a.status == "success" }}
    run: "true"
  - id: c
    continue_on_error: ${{ item }}
    run: "true"
  - id: d
    for_each: [1]
    batch: { size: "${{ item }}", pause: "x ${{ 1 }}" }
    run: "true"
EOF
)
	run b check "$p"
	assert_status 2
	assert_contains "$output" "$p:5:24: error: 'continue_on_error' may read only vars, inputs, env, item, index and host, not 'steps'"
	assert_contains "$output" "$p:8:24: error: 'continue_on_error': 'item' is defined only inside a for_each step"
	assert_contains "$output" "$p:12:20: error: 'batch.size': 'item' is defined only inside a for_each step"
	assert_contains "$output" "$p:12:42: error: 'pause' is a value or one \${{ expression }} alone, not text around one"
}

@test "steps.ID.outputs is a known field; a misspelt field is an error that lists it" {
	p=$(plan field <<'EOF'
steps:
  - id: a
    run: "true"
  - run: echo "${{ steps.a.output.x }}"
EOF
)
	run b check "$p"
	assert_status 2
	assert_contains "$output" "steps.a has no 'output'; did you mean 'outputs'?"
}

@test "resume carries a reused task's outputs over, so later steps still read them; an older store gains the column" {
	export BATON_STATE_DIR="$BATS_TEST_TMPDIR/state"
	p=$(plan resume <<EOF
steps:
  - id: a
    run: echo "stamp=\$(date +%s%N)" >> "\$BATON_OUTPUT"
  - id: b
    run: echo "got \${{ steps.a.outputs.stamp }}"; test -e "$BATS_TEST_TMPDIR/flag"
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	first=$(ev "$EV" 'out("b")')
	[[ "$first" == "got "[0-9]* ]] || fail "no stamp: $first"
	touch "$BATS_TEST_TMPDIR/flag"
	EV2="$BATS_TEST_TMPDIR/ev2.jsonl"
	run b resume --output quiet --events "$EV2"
	assert_status 0
	assert_eq "$(ev "$EV2" 'tend("a")["reused"]' 'out("b")')" $'true\n'"$first" "a is carried over with its outputs"
	# a store of schema 1 (no tasks.outputs): a reader still reads it, a writer adds the column
	"$E2E_PY" -S -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("ALTER TABLE tasks DROP COLUMN outputs")
c.execute("PRAGMA user_version = 1")
c.commit()' "$BATON_STATE_DIR/runs.db" || skip "this sqlite3 cannot drop a column"
	run b runs
	assert_status 0
	run b run "$p" --output quiet
	assert_status 0
	assert_eq "$("$E2E_PY" -S -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("PRAGMA user_version").fetchone()[0], "outputs" in [r[1] for r in c.execute("PRAGMA table_info(tasks)")])' \
		"$BATON_STATE_DIR/runs.db")" "4 True"
}

@test "the preview shows batches whose fields come from vars as the run will make them" {
	p=$(plan prev <<'EOF'
vars: { size: 2, pause: 50ms, maxf: 1 }
steps:
  - id: roll
    for_each: [1, 2, 3, 4, 5]
    batch: { size: "${{ vars.size }}", pause: "${{ vars.pause }}", max_failures: "${{ vars.maxf }}" }
    run: "true"
EOF
)
	run b plan "$p"
	assert_status 0
	assert_contains "$output" "3 batches, pause 50ms, max_failures 1:"
	assert_contains "$output" "batch 3: #4 5"
}
