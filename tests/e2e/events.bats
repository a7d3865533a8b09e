#!/usr/bin/env bats
# The event stream and the human output: schema, fields, odd output bytes,
# secrets, plain/tty/json modes, GitHub Actions groups, summary, NO_COLOR.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

mixed_plan() {
	plan mixed <<'EOF'
name: mixed-plan
steps:
  - id: hello
    run: echo hello; echo to-stderr >&2
  - id: grp
    parallel:
      - { id: a, run: "printf 'one\\ntwo\\n'" }
      - { id: b, run: "exit 2", continue_on_error: true }
  - id: flaky
    run: '[ "$BATON_ATTEMPT" -ge 2 ]'
    retry: { attempts: 2, delay: 10ms }
  - id: skipped
    when: false
    run: "true"
EOF
}

@test "--events FILE gives one valid JSON object per line with the envelope" {
	p=$(mixed_plan)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	ev_valid "$EV"
	# seq grows by one from 1, every event names the same run
	assert_eq "$(ev "$EV" '[e["seq"] for e in E] == list(range(1, len(E) + 1))' 'len(set(e["run"] for e in E))')" $'true\n1'
}

@test "run.start and run.end carry the fields of architecture.md" {
	p=$(mixed_plan)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'E[0]["type"]' 'E[0]["plan"]' 'E[0]["name"]' 'E[0]["dry_run"]' 'E[0]["tasks"]')" \
		"run.start"$'\n'"$p"$'\nmixed-plan\nfalse\n5'
	assert_eq "$(ev "$EV" 'E[-1]["type"]' 'E[-1]["status"]' 'E[-1]["exit_code"]' 'type(E[-1]["duration_ms"]).__name__' 'E[-1]["counts"]')" \
		'run.end
success
0
int
{"cancelled": 0, "failed": 0, "skipped": 1, "success": 3, "timeout": 0, "tolerated": 1}'
}

@test "the plan's name defaults to the file name without extension" {
	p=$(plan my-plan-name <<<'steps: [echo]')
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'E[0]["name"]')" my-plan-name
}

@test "step and task events carry their fields" {
	p=$(mixed_plan)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'one("step.start", step="grp")["kind"]' 'one("step.start", step="grp.a")["kind"]')" $'parallel\nrun'
	assert_eq "$(ev "$EV" 'one("step.end", step="grp.b")["status"]' 'one("step.end", step="grp.b")["kind"]')" $'failed\nrun'
	assert_eq "$(ev "$EV" 'one("task.start", task="hello")["command"]' 'one("task.start", task="hello")["attempt"]' 'one("task.start", task="hello")["step"]')" \
		$'echo hello; echo to-stderr >&2\n1\nhello'
	assert_eq "$(ev "$EV" 'json.dumps([(e["stream"], e["line"]) for e in of("task.output", task="hello")])')" \
		'[["stdout", "hello"], ["stderr", "to-stderr"]]'
	assert_eq "$(ev "$EV" 'tend("grp.b")["exit_code"]' 'tend("grp.b")["signal"]' 'tend("grp.b")["reason"]' 'tend("hello")["exit_code"]' '"reason" in tend("hello")')" \
		$'2\nnull\nexit code 2\n0\nfalse'
	assert_eq "$(ev "$EV" 'one("task.retry", task="flaky")["attempt"]' 'one("task.retry", task="flaky")["reason"]')" \
		$'2\nexit code 1'
	# the skipped step has only a step.end
	assert_eq "$(ev "$EV" 'len(of("step.start", step="skipped"))' 'status("skipped")')" $'0\nskipped'
}

@test "--events - writes the events to stdout and the human output to stderr" {
	p=$(mixed_plan)
	run --separate-stderr b run "$p" --events - --output plain
	assert_status 0
	printf '%s\n' "$output" >stdout.jsonl
	ev_valid stdout.jsonl
	assert_contains "$stderr" "[hello] hello"
	assert_not_contains "$output" "[hello] hello"
}

@test "--output json writes only the event stream to stdout" {
	p=$(mixed_plan)
	run --separate-stderr b run "$p" --output json
	assert_status 0
	printf '%s\n' "$output" >stdout.jsonl
	ev_valid stdout.jsonl
	assert_eq "$stderr" "" "stderr with --output json"
	assert_eq "$(ev stdout.jsonl 'lines("grp.a")')" "one two"
}

@test "--output json and --events FILE give the same stream" {
	p=$(plan same <<<'steps: [echo a, echo b]')
	run --separate-stderr b run "$p" --output json --events "$EV"
	assert_status 0
	printf '%s\n' "$output" >stdout.jsonl
	assert_eq "$(ev stdout.jsonl '[(e["seq"], e["type"]) for e in E]')" "$(ev "$EV" '[(e["seq"], e["type"]) for e in E]')"
}

@test "--output quiet prints nothing on stdout" {
	p=$(mixed_plan)
	run --separate-stderr b run "$p" --output quiet
	assert_status 0
	assert_eq "$output" "" "stdout with --output quiet"
}

@test "output without a final newline is kept" {
	p=$(plan nonl <<'EOF'
steps:
  - id: nonl
    run: printf 'first\nno-newline'
  - id: only
    run: printf 'just-this'
  - id: err
    run: printf 'err-no-newline' >&2
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'lines("nonl")' 'lines("only")' 'lines("err", "stderr")')" $'first no-newline\njust-this\nerr-no-newline'
	assert_contains "$output" "[nonl] no-newline"
	assert_contains "$output" "[err] err-no-newline"
}

@test "output that is not UTF-8 still gives valid JSON, bytes escaped as \\xFF" {
	p=$(plan bytes <<'EOF'
steps:
  - id: bytes
    run: printf '\377\376\n'; printf 'caf\303\251 ok\n'; printf 'half \303\n'; printf 'tab\there\001\n'; printf 'cr\r\n'
EOF
)
	run b run "$p" --output json
	assert_status 0
	printf '%s\n' "$output" >stdout.jsonl
	ev_valid stdout.jsonl
	run ev stdout.jsonl 'json.dumps(lines("bytes"))'
	assert_eq "$output" '["\\xFF\\xFE", "caf\u00e9 ok", "half \\xC3", "tab\there\u0001", "cr\r"]'
}

@test "secrets are masked as *** in task.start, task.output, reasons and plain output" {
	p=$(plan secrets <<'EOF'
vars: { token: "hunter2-s3cr3t", user: bob }
secrets: [token]
steps:
  - id: env
    env: { TOKEN: "${{ vars.token }}" }
    run: echo "token is $TOKEN for ${{ vars.user }}"
  - id: argv
    run: [echo, "${{ vars.token }}"]
  - id: inline
    run: echo "${{ vars.token }}" >&2; exit 3
    continue_on_error: true
  - id: twice
    env: { TOKEN: "${{ vars.token }}" }
    run: echo "$TOKEN$TOKEN-$TOKEN"
  - id: cwd-reason
    cwd: "/nonexistent/${{ vars.token }}"
    run: "true"
    continue_on_error: true
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_not_contains "$(cat "$EV")" "hunter2" "the secret appears in the events"
	assert_not_contains "$output" "hunter2" "the secret appears in the plain output"
	assert_eq "$(ev "$EV" 'out("env")' 'out("argv")' 'out("inline", "stderr")' 'out("twice")')" \
		$'token is *** for bob\n***\n***\n******-***'
	assert_eq "$(ev "$EV" 'one("task.start", task="argv")["command"]')" "echo ***"
	assert_contains "$output" "[inline] ***"
}

@test "a secret is masked even where a long line is split into 64 KiB pieces" {
	p=$(plan secret-split <<'EOF'
vars: { token: "hunter2-s3cr3t" }
secrets: [token]
steps:
  - id: long
    env: { T: "${{ vars.token }}" }
    run: |
      head -c 65530 /dev/zero | tr '\0' a; printf '%s\n' "$T"
      head -c 131070 /dev/zero | tr '\0' b; printf '%s\n' "$T"
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	run grep -c -e hunter -e s3cr3t "$EV"
	assert_eq "$output" 0 "events lines holding part of the secret"
	run b run "$p" --output plain
	assert_status 0
	assert_not_contains "$output" "hunter" "plain output holds part of the secret"
	assert_not_contains "$output" "s3cr3t" "plain output holds part of the secret"
}

@test "a multi-line secret is masked line by line" {
	p=$(plan secret-lines <<'EOF'
vars:
  key: "-----BEGIN FAKE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nAoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R\n-----END FAKE KEY-----"
secrets: [key]
steps:
  - id: show
    env: { KEY: "${{ vars.key }}" }
    run: printf '%s\n' "$KEY"
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_not_contains "$(cat "$EV")" "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" "a line of the secret in the events"
	assert_not_contains "$output" "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" "a line of the secret in the plain output"
	assert_not_contains "$output" "AoIBAQC7VJTUt9Us8cKjMzEfYyjiWA4R" "a line of the secret in the plain output"
}

@test "a secret given with --secret-file is masked" {
	p=$(plan secret-var <<'EOF'
vars: { token: placeholder }
secrets: [token]
steps:
  - id: show
    run: echo ${{ vars.token }}
EOF
)
	printf 'from-the-cli-777\n' >token.txt
	run b run "$p" --output plain --events "$EV" --secret-file token=token.txt
	assert_status 0
	assert_not_contains "$(cat "$EV")" "from-the-cli-777"
	assert_not_contains "$output" "from-the-cli-777"
	assert_eq "$(ev "$EV" 'out("show")')" "***"
}

@test "the lines of one stream of one task keep their order" {
	p=$(plan order <<'EOF'
steps:
  - id: count
    run: seq 1 20000
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'lines("count") == [str(i) for i in range(1, 20001)]')" true
}

@test "--output plain prefixes every line with [TASK_ID]" {
	p=$(plan plain <<'EOF'
steps:
  - id: grp
    parallel:
      - { id: a, run: "printf 'a1\\na2\\n'; echo a-err >&2" }
      - { id: b, run: "printf 'b1\\nb2'" }
EOF
)
	run b run "$p" --output plain
	assert_status 0
	# every line before the summary belongs to a task
	body=$(sed '/^$/,$d' <<<"$output")
	[ -n "$body" ] || fail "no output before the summary"
	while IFS= read -r line; do
		assert_match "$line" '^\[grp\.(a|b)\] ' "unprefixed line"
	done <<<"$body"
	for l in "[grp.a] a1" "[grp.a] a2" "[grp.a] a-err" "[grp.b] b1" "[grp.b] b2"; do
		assert_contains "$output" "$l"
	done
	assert_contains "$output" '[grp.a] $ printf'
}

@test "plain output shows an escape character as ^[ and never colours" {
	p=$(plan esc <<'EOF'
steps:
  - id: esc
    run: printf 'x\033[31mred\033[0m\n'; exit 1
EOF
)
	run b run "$p" --output plain
	assert_status 1
	assert_contains "$output" '[esc] x^[[31mred^[[0m'
	assert_not_contains "$output" $'\e' "an ESC byte in plain output"
}

@test "NO_COLOR: plain output and the dry run contain no ESC characters" {
	p=$(mixed_plan)
	NO_COLOR=1 run b run "$p" --output plain
	assert_status 0
	assert_not_contains "$output" $'\e'
	NO_COLOR=1 run b plan "$p"
	assert_status 0
	assert_not_contains "$output" $'\e'
}

@test "GITHUB_ACTIONS=true folds each top-level step in ::group:: / ::endgroup::" {
	p=$(mixed_plan)
	GITHUB_ACTIONS=true run b run "$p" --output plain
	assert_status 0
	groups=$(grep -c '^::group::' <<<"$output")
	ends=$(grep -c '^::endgroup::$' <<<"$output")
	assert_ge "$groups" 3 "::group:: lines (one per top-level step that ran)"
	assert_eq "$ends" "$groups" "::endgroup:: lines"
	for s in hello grp flaky; do assert_match "$output" "^::group::$s" "the group of $s"; done
	assert_not_contains "$output" "::group::grp." "a group for a nested step"
	# groups do not nest and every task line sits inside one
	open=0
	while IFS= read -r line; do
		case "$line" in
		::group::*) [ "$open" = 0 ] || fail "nested ::group::"; open=1 ;;
		::endgroup::) [ "$open" = 1 ] || fail "::endgroup:: without ::group::"; open=0 ;;
		\[*) [ "$open" = 1 ] || [[ "$line" != \[*\]\ * ]] || fail "task line outside a group: $line" ;;
		esac
	done < <(sed '/^summary$/,$d' <<<"$output")
	assert_match "$output" '^::group::grp'
	run b run "$p" --output plain
	assert_status 0
	assert_not_contains "$output" "::group::" "groups without GITHUB_ACTIONS"
}

@test "the summary lists each step with its status, and a failure with its reason and last lines" {
	p=$(plan summary <<'EOF'
steps:
  - id: good
    run: echo fine
  - id: bad
    run: for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "line $i"; done; exit 3
  - id: later
    run: "true"
EOF
)
	run b run "$p" --output plain
	assert_status 1
	summary=$(sed -n '/^summary$/,$p' <<<"$output")
	[ -n "$summary" ] || fail "no summary"
	assert_match "$summary" 'success +good'
	assert_match "$summary" 'failed +bad'
	assert_match "$summary" 'skipped +later'
	assert_match "$summary" 'bad: exit code 3'
	assert_contains "$summary" "line 12"
	assert_contains "$summary" "line 3"
	assert_not_contains "$summary" "line 2"$'\n' "more than the last 10 lines"
	assert_match "$summary" 'failed.*exit 1.*1 succeeded, 1 failed, 0 timed out, 0 cancelled, 1 skipped'
}

@test "the tty output shows a progress bar with done/total" {
	command -v script >/dev/null || skip "script(1) is not installed"
	p=$(plan tty <<'EOF'
steps:
  - parallel: ["sleep 0.4; echo a", "sleep 0.6", "sleep 0.5"]
  - run: echo done-line; printf 'mid\rdle\n'
EOF
)
	TERM=xterm COLUMNS=100 run timeout 20 script -qfec "$BATON run '$p' --output tty" /dev/null
	assert_status 0
	# every bar drawn: "] DONE/TOTAL · N running"; done starts at 0, never
	# goes back, and the last bar says 4/4 with nothing running
	bars=$(grep -oE '\] [0-9]+/[0-9]+ · [0-9]+ running' <<<"$output" | sed -E 's/^\] ([0-9]+)\/([0-9]+) · ([0-9]+) running$/\1 \2 \3/')
	[ -n "$bars" ] || fail "no progress bar in: $output"
	assert_eq "$(cut -d' ' -f2 <<<"$bars" | sort -u)" 4 "the total of every bar"
	assert_eq "$(head -n 1 <<<"$bars" | cut -d' ' -f1)" 0 "done in the first bar"
	assert_eq "$(tail -n 1 <<<"$bars")" "4 4 0" "done, total and running in the last bar"
	assert_eq "$(cut -d' ' -f1 <<<"$bars" | sort -n -c 2>&1 && echo sorted)" sorted "done never goes back"
	assert_contains "$output" "done-line"
	assert_contains "$output" $'\e[' "the tty output has no escape sequences at all"
	# control characters in a command's output are shown as ^X
	assert_contains "$output" 'mid^Mdle' "a carriage return in the tty output"
}

@test "a NUL byte in output is \\u0000 in events and ^@ in plain, tty and failure blocks: the line goes on" {
	p=$(plan nul <<'EOF'
steps:
  - id: x
    run: printf 'be\0fore\0after\n'; exit 2
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'json.dumps(lines("x"))')" '["be\u0000fore\u0000after"]'
	assert_contains "$output" "[x] be^@fore^@after" "the plain line"
	assert_contains "$output" "│ be^@fore^@after" "the failure block's last lines"
	b run "$p" --output plain >plain.out && st=0 || st=$?
	assert_eq "$st" 1 "exit status of the run with plain output to a file"
	assert_eq "$(tr -d '\000' <plain.out | wc -c)" "$(wc -c <plain.out)" "bytes of plain output once NULs are removed"
	command -v script >/dev/null || skip "script(1) is not installed"
	TERM=xterm COLUMNS=100 run timeout 20 script -qfec "$BATON run '$p' --output tty" /dev/null
	assert_status 1
	assert_contains "$output" "be^@fore^@after" "the tty line"
}

@test "--output auto is plain when stdout is not a terminal" {
	p=$(plan auto <<<'steps: [{id: x, run: echo hi}]')
	run b run "$p"
	assert_status 0
	assert_contains "$output" "[x] hi"
	assert_not_contains "$output" $'\e'
}

@test "an unknown --output mode is a usage error" {
	p=$(plan auto <<<'steps: [touch ran-marker]')
	run b run "$p" --output fancy
	assert_status 2
	assert_file_absent ran-marker
}

@test "progress events count done, failed, running and total" {
	p=$(plan prog <<'EOF'
steps:
  - parallel: ["sleep 1.2", "exit 1", "true"]
    mode: settle
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_ge "$(ev "$EV" 'len(of("progress"))')" 2 "progress events (every second and at the end)"
	assert_eq "$(ev "$EV" '[of("progress")[-1][k] for k in ("done", "failed", "running", "waiting", "total")]')" "3 1 0 0 3"
}

# A plan whose names, commands, reasons and output hold terminal controls:
# ESC, a CSI, an OSC that would set the window title (ESC ] 0 ; … BEL), the
# C1 CSI as a raw byte (0x9b) and in UTF-8 (U+009B), CR and backspace.
hostile_plan() {
	plan hostile <<'EOF'
name: "plan \e]0;plan-title\a"
steps:
  - id: cmd
    name: "shown \e[31mred"
    run: "printf 'out \\033]0;out-title\\007 \\233m\\n'; true '\e]0;cmd-title\a' '\e[2J' '\x9b1m' 'a\rb' 'c\bd' \u009b"
  - id: badcwd
    cwd: "/nonexistent/\e]0;cwd-title\a/\x9b/\r/\b"
    run: "true"
    continue_on_error: true
  - id: argv
    run: ["\e]0;argv-title\anope"]
    continue_on_error: true
  - id: items
    for_each: ["\e]0;item-title\a"]
    run: echo ${{ item }}
EOF
}

# controls FILE [tty]: the control bytes in FILE that baton did not write
# itself, one per line (none: empty). With tty, baton's own colour and cursor
# codes (ESC [ digits m/A/J) and CR are baton's.
controls() {
	"$E2E_PY" -S -c '
import re, sys
data = open(sys.argv[1], "rb").read()
if len(sys.argv) > 2:
    data = re.sub(rb"\x1b\[[0-9;]*[mAJ]|\r", b"", data)
for m in re.finditer(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]", data):
    print(repr(data[max(0, m.start() - 20):m.end() + 20]))
text = data.decode("utf-8", "replace")
for m in re.finditer("\ufffd", text):
    print("a byte that is not UTF-8 (raw C1?):", repr(text[max(0, m.start() - 20):m.end() + 20]))
' "$@"
}

@test "plain output: names, commands, reasons, items and output show terminal controls as ^X / M-^X" {
	p=$(hostile_plan)
	GITHUB_ACTIONS=true b run "$p" --output plain >out.txt
	assert_eq "$(controls out.txt)" "" "control bytes from the plan or its commands in plain output"
	out=$(cat out.txt)
	assert_contains "$out" "[cmd] \$ printf 'out \\033]0;out-title\\007 \\233m\\n'; true '^[]0;cmd-title^G' '^[[2J' 'M-^[1m' 'a^Mb' 'c^Hd' M-^["
	assert_contains "$out" "[cmd] out ^[]0;out-title^G M-^[m"
	assert_contains "$out" "cannot change to directory /nonexistent/^[]0;cwd-title^G/M-^[/^M/^H: No such file or directory"
	assert_contains "$out" "[argv] \$ '^[]0;argv-title^Gnope'"
	assert_contains "$out" "cannot run ^[]0;argv-title^Gnope"
	assert_contains "$out" "::group::cmd — shown ^[[31mred"
	assert_match "$out" "cmd +[0-9.]+m?s  shown \\^\\[\\[31mred"
	assert_contains "$out" "^[]0;item-title^G"
	# the event stream keeps every byte, escaped as JSON does
	b run "$p" --output json >ev.jsonl
	assert_eq "$(ev ev.jsonl 'one("run.start")["name"]' 'lines("cmd")[0]')" $'plan \e]0;plan-title\a\nout \e]0;out-title\a \\x9Bm'
}

@test "tty output: names, commands, reasons and output show terminal controls as ^X / M-^X" {
	command -v script >/dev/null || skip "script(1) is not installed"
	p=$(hostile_plan)
	TERM=xterm COLUMNS=200 timeout 20 script -qfec "$BATON run '$p' --output tty" /dev/null >out.txt
	assert_eq "$(controls out.txt tty)" "" "control bytes from the plan or its commands in tty output"
	out=$(cat out.txt)
	assert_contains "$out" "true '^[]0;cmd-title^G' '^[[2J' 'M-^[1m' 'a^Mb' 'c^Hd' M-^["
	assert_contains "$out" "out ^[]0;out-title^G M-^[m"
	assert_contains "$out" "cannot change to directory /nonexistent/^[]0;cwd-title^G/M-^[/^M/^H"
	assert_contains "$out" "cannot run ^[]0;argv-title^Gnope"
	assert_contains "$out" "shown ^[[31mred"
}

# many_failures N: a plan of N steps that fail at once, side by side.
many_failures() {
	{
		echo "steps:"
		echo "  - id: all"
		echo "    mode: settle"
		echo "    parallel:"
		for i in $(seq "$1"); do echo "      - { id: f$i, run: 'echo failing $i; exit 1' }"; done
	} | plan "many$1"
}

@test "the summary details 20 failures and counts the others once: 25 failures, 5 more" {
	p=$(many_failures 25)
	run b run "$p" --output plain -j 30
	assert_status 1
	summary=$(sed -n '/^summary$/,$p' <<<"$output")
	assert_eq "$(grep -c '^✗ all\.f[0-9]*: exit code 1$' <<<"$summary")" 20 "failures detailed"
	assert_contains "$summary" "… and 5 more failures (see --events for all)"
}

@test "the summary does not count a failure that a retry fixed" {
	{
		echo "steps:"
		echo "  - id: all"
		echo "    mode: settle"
		echo "    parallel:"
		for i in $(seq 21); do echo "      - { id: f$i, run: 'exit 1' }"; done
		# fails once, once the event stream holds the 21 others' failures (at
		# most 5 s), and passes on its retry
		echo "      - id: flaky"
		echo "        retry: { attempts: 2, delay: 10ms }"
		echo "        run: |"
		echo "          [ \$BATON_ATTEMPT -ge 2 ] && exit 0"
		echo "          i=0; while [ \"\$(grep -c '\"type\":\"task.end\".*\"status\":\"failed\"' \"\$E2E_TMP/flaky.jsonl\")\" -lt 21 ] && [ \$i -lt 250 ]; do sleep 0.02; i=\$((i + 1)); done"
		echo "          exit 1"
	} | plan flaky >/dev/null
	run b run "$BATS_TEST_TMPDIR/flaky.yaml" --output plain -j 30 --events "$E2E_TMP/flaky.jsonl"
	assert_status 1
	assert_eq "$(ev "$E2E_TMP/flaky.jsonl" 'tend("all.flaky", 1)["seq"] > max(tend("all.f%d" % i)["seq"] for i in range(1, 22))')" true \
		"the flaky step's failure came after the 21 others"
	summary=$(sed -n '/^summary$/,$p' <<<"$output")
	assert_contains "$output" "[all.flaky] ↻ retrying"
	assert_match "$summary" 'success +all\.flaky'
	assert_not_contains "$summary" "✗ all.flaky"
	assert_eq "$(grep -c '^✗ all\.f[0-9]*: exit code 1$' <<<"$summary")" 20 "failures detailed"
	assert_contains "$summary" "… and 1 more failure (see --events for all)"
	# fewer than 20 failures: all detailed, no line of more
	p=$(many_failures 3)
	run b run "$p" --output plain
	assert_status 1
	assert_not_contains "$output" "more failure"
	assert_eq "$(grep -c '^✗ all\.f[0-9]*: exit code 1$' <<<"$output")" 3 "failures detailed"
}

@test "the tty view is redrawn for the new width when the terminal is resized (SIGWINCH)" {
	command -v tmux >/dev/null || skip "tmux is not installed"
	p=$(plan wide <<EOF
steps:
  - parallel:
      - { id: a-task-with-a-rather-long-name-one, run: sleep 3.$E2E_MARK }
      - { id: a-task-with-a-rather-long-name-two, run: sleep 3.$E2E_MARK }
EOF
)
	sock="$BATS_TEST_TMPDIR/tmux.sock"
	# scroll-on-clear off: tmux would otherwise keep a copy of a screen cleared from its top
	tmux -S "$sock" -f /dev/null new-session -d -x 100 -y 20 \
		"NO_COLOR=1 timeout --foreground 20 $BATON run '$p' --output tty; sleep 20"
	tmux -S "$sock" set -g scroll-on-clear off
	for i in $(seq 100); do
		tmux -S "$sock" capture-pane -p | grep -q '2 running' && break
		sleep 0.05
	done
	wide=$(tmux -S "$sock" capture-pane -p -J)
	tmux -S "$sock" resize-window -x 50 -y 20
	sleep 0.6 # a few redraws
	narrow=$(tmux -S "$sock" capture-pane -p -J)
	tmux -S "$sock" kill-server
	assert_match "$wide" '^  ▸ parallel-1\.a-task-with-a-rather-long-name-one {20,}[0-9.]+m?s$' "a live row at 100 columns"
	live=$(grep -E '▸|running ·' <<<"$narrow")
	assert_eq "$(grep -c '▸' <<<"$live")" 2 "live rows of running tasks after the resize:
$narrow"
	assert_eq "$(grep -c 'running ·' <<<"$live")" 1 "progress bars on the screen after the resize (no leftover of the old one):
$narrow"
	while IFS= read -r line; do
		[ "${#line}" -le 49 ] || fail "a live row wider than the 50-column terminal (${#line}): '$line'"
	done <<<"$live"
	assert_match "$live" '^  ▸ parallel-1\.a-task-with.*….*name-one +[0-9.]+m?s$' "a task row cut in the middle to the new width, its end and time kept"
	assert_match "$live" '^  ▸ parallel-1\.a-task-with.*….*name-two +[0-9.]+m?s$' "the other row told apart from it"
}

@test "a new --events file is created with mode 0600: commands' output may be private" {
	p=$(plan m <<'EOF'
steps:
  - run: echo hi
EOF
)
	run bash -c 'umask 022 && exec "$@"' _ "$BATON" run "$p" --output quiet --events "$BATS_TEST_TMPDIR/ev.jsonl"
	assert_status 0
	assert_eq "$(stat -c %a "$BATS_TEST_TMPDIR/ev.jsonl")" 600
}
