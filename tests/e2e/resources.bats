#!/usr/bin/env bats
# Resources: memory must not grow with a task's output; long lines are not
# lost. Peak RSS is measured with $MAXRSS (prints maxrss_kib=N on stderr).

load helpers
setup() {
	e2e_setup
	[ -x "$MAXRSS" ] || skip "maxrss helper not built (make build/maxrss)"
}
teardown() { e2e_teardown; }

# maxrss_of CMD...: run CMD under $MAXRSS; sets RSS_KIB and RSS_STATUS
maxrss_of() {
	RSS_STATUS=0
	timeout -k 5 60 "$MAXRSS" "$@" 2>rss.err 3>&- || RSS_STATUS=$?
	RSS_KIB=$(sed -n 's/.*maxrss_kib=\([0-9]*\).*/\1/p' rss.err | tail -1)
	[ -n "$RSS_KIB" ] || fail "no maxrss_kib in: $(cat rss.err)"
}

@test "a task printing 200 MB keeps baton's peak RSS under 64 MB (plain output)" {
	p=$(plan big <<'EOF'
steps:
  - id: big
    run: head -c 200000000 /dev/zero | tr '\0' a | fold -w 100
EOF
)
	maxrss_of "$BATON" run "$p" --output plain >/dev/null
	assert_eq "$RSS_STATUS" 0 "baton's exit status"
	assert_le "$RSS_KIB" 65536 "peak RSS in KiB"
}

@test "a task printing 50 MB with the event stream on keeps peak RSS under 64 MB" {
	p=$(plan big <<'EOF'
steps:
  - id: big
    run: head -c 50000000 /dev/zero | tr '\0' a | fold -w 100
EOF
)
	maxrss_of "$BATON" run "$p" --output json >/dev/null
	assert_eq "$RSS_STATUS" 0 "baton's exit status"
	assert_le "$RSS_KIB" 65536 "peak RSS in KiB"
}

@test "a 100 MB line without a newline keeps peak RSS under 64 MB" {
	p=$(plan bigline <<'EOF'
steps:
  - id: big
    run: head -c 100000000 /dev/zero | tr '\0' a
EOF
)
	maxrss_of "$BATON" run "$p" --output plain >/dev/null
	assert_eq "$RSS_STATUS" 0 "baton's exit status"
	assert_le "$RSS_KIB" 65536 "peak RSS in KiB"
}

@test "capturing a large stdout for \${{ }} is bounded to 1 MiB and keeps RSS small" {
	p=$(plan capture <<'EOF'
steps:
  - id: big
    run: head -c 50000000 /dev/zero | tr '\0' a | fold -w 100
  - id: use
    run: echo ${{ len(steps.big.stdout) }}
EOF
)
	maxrss_of "$BATON" run "$p" --output plain >out.txt
	assert_eq "$RSS_STATUS" 0 "baton's exit status"
	assert_le "$RSS_KIB" 65536 "peak RSS in KiB"
	assert_eq "$(grep '^\[use\] [0-9]' out.txt)" "[use] 1048576" "captured stdout length (1 MiB)"
}

@test "a 1 MB line without a newline is not lost: the event bytes add up" {
	p=$(plan longline <<'EOF'
steps:
  - id: long
    run: head -c 1048576 /dev/zero | tr '\0' z
  - id: long-nl
    run: head -c 300000 /dev/zero | tr '\0' y; echo; echo tail
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'len(out("long").replace(chr(10), ""))' '"".join(sorted(set(out("long").replace(chr(10), ""))))')" $'1048576\nz'
	assert_eq "$(ev "$EV" 'len("".join(lines("long-nl")))' 'lines("long-nl")[-1]')" $'300004\ntail'
	# pieces are at most 64 KiB each
	assert_le "$(ev "$EV" 'max(len(e["line"]) for e in of("task.output"))')" 65536 "longest task.output line"
}

@test "a 1 MB line reaches plain output whole" {
	p=$(plan longline <<'EOF'
steps:
  - id: long
    run: head -c 1048576 /dev/zero | tr '\0' z
EOF
)
	run b run "$p" --output plain
	assert_status 0
	n=$(grep '^\[long\] z' <<<"$output" | sed 's/^\[long\] //' | tr -d '\n' | wc -c)
	assert_eq "$n" 1048576 "bytes of the line in plain output"
}

@test "binary output with NUL bytes is not lost or truncated" {
	p=$(plan nul <<'EOF'
steps:
  - id: nul
    run: printf 'a\000b\n'
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'json.dumps(lines("nul"))')" '["a\u0000b"]'
}

@test "memory does not grow with plan size: 1500 steps stay under 64 MB" {
	{
		echo 'steps:'
		echo '  - id: many'
		echo '    parallel:'
		for i in $(seq 1500); do echo "      - { id: s$i, run: 'true' }"; done
	} >many.yaml
	maxrss_of "$BATON" run many.yaml --output quiet -j 8 --events "$EV"
	assert_eq "$RSS_STATUS" 0 "baton's exit status"
	assert_le "$RSS_KIB" 65536 "peak RSS in KiB"
	assert_eq "$(ev "$EV" 'len(of("task.end", status="success"))')" 1500
}
