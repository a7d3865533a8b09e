#!/usr/bin/env bats
# Running commands: shell strings, argv lists, sequences, when,
# continue_on_error, env/cwd/shell, BATON_* variables, retries, --only/--from.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

@test "a string command runs through the shell (pipes and &&)" {
	p=$(plan sh <<'EOF'
steps:
  - id: pipe
    run: echo hello world | tr a-z A-Z && echo second || echo not-reached
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'lines("pipe")')" "HELLO WORLD second"
}

@test "an argv list runs without a shell: spaces, \$HOME and globs stay literal" {
	p=$(plan argv <<'EOF'
steps:
  - id: argv
    run: [printf, '<%s>', 'a b  c', '$HOME', '*', '$(touch pwned)', "it's"]
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("argv")')" "<a b  c><\$HOME><*><\$(touch pwned)><it's>"
	assert_file_absent pwned
}

@test "a missing command fails with exit 127 and sh's not-found message (direct exec path)" {
	p=$(plan nf <<'EOF'
steps:
  - id: direct
    run: nonexistent-cmd-xyz
    continue_on_error: true
  - id: shell
    run: nonexistent-cmd-xyz; exit $?
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	ev_valid "$EV"
	for t in direct shell; do
		assert_eq "$(ev "$EV" "tend('$t')['exit_code']")" 127 "$t exit code"
		assert_match "$(ev "$EV" "out('$t', 'stderr')")" "nonexistent-cmd-xyz: not found" "$t message"
	done
	assert_contains "$output" "[direct] /bin/sh: 1: nonexistent-cmd-xyz: not found"
}

@test "a simple command behaves exactly as it would through /bin/sh -c" {
	# Each command runs twice: as a string (baton may exec it directly) and
	# as [/bin/sh, -c, STRING]; output streams and exit codes must agree.
	cmds=(
		'echo a # comment'
		'echo ~'
		'echo a\ b'
		'echo {a,b}'
		'echo a=b'
		'A=1 printenv A'
		'[ 1 = 1 ]'
		'test 1 = 2'
		'command -v sh'
		'type true'
		'read x'
		'cat'
		'exec echo execd'
		'printf %s\n x'
		'cd /nonexistent-dir-xyz'
		'echo a	b'
		'echo a?b /dev/nul?'
		'true'
		'false'
		'exit 3'
		'pwd'
		'umask'
		'echo x --y=--z'
		'/etc/passwd'
		'/nonexistent/xyz'
		'./nothere'
		'nonexistent-cmd-xyz arg'
		'echo é ü'
		'sh -c "exit 5"'
		'env -u PATH printf ok'
		'kill -0 0'
		'eval echo hi'
		': ignored'
	)
	{
		echo 'steps:'
		echo '  - mode: settle'
		echo '    parallel:'
		for i in "${!cmds[@]}"; do
			q=$("$E2E_PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "${cmds[$i]}")
			echo "      - { id: s$i, run: $q }"
			echo "      - { id: h$i, run: [/bin/sh, -c, $q] }"
		done
	} >cmp.yaml
	run b run cmp.yaml --output quiet --events "$EV" -j 8
	assert_status 1 # false, exit 3, ... fail (mode settle: every command runs)
	ev_valid "$EV"
	run ev "$EV" '[c for c in range('"${#cmds[@]}"')
		if (lines("parallel-1.s%d" % c), tend("parallel-1.s%d" % c)["exit_code"], tend("parallel-1.s%d" % c)["status"])
		!= (lines("parallel-1.h%d" % c), tend("parallel-1.h%d" % c)["exit_code"], tend("parallel-1.h%d" % c)["status"])]'
	assert_status 0
	if [ -n "$output" ]; then
		for i in $output; do
			echo "differs: '${cmds[$i]}': string: $(ev "$EV" "lines('parallel-1.s$i')" "tend('parallel-1.s$i')['exit_code']") / sh -c: $(ev "$EV" "lines('parallel-1.h$i')" "tend('parallel-1.h$i')['exit_code']")" >&2
		done
		fail "some simple commands behave differently from sh -c"
	fi
}

@test "a sequence stops at the first failure and skips the rest" {
	p=$(plan seq <<'EOF'
steps:
  - id: one
    run: echo one
  - id: two
    run: exit 5
  - id: three
    run: touch three-marker
  - id: grp
    steps:
      - id: inner
        run: touch inner-marker
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("one", "two", "three", "grp.inner", "grp")')" "success failed skipped skipped skipped"
	assert_eq "$(ev "$EV" 'run_end()["status"]' 'run_end()["exit_code"]')" $'failed\n1'
	assert_eq "$(ev "$EV" 'len(of("step.start", step="three"))')" 0 "a skipped step has no step.start"
	assert_file_absent three-marker
	assert_file_absent inner-marker
}

@test "continue_on_error lets the sequence go on and the run succeed" {
	p=$(plan coe <<'EOF'
steps:
  - id: lint
    run: echo warnings >&2; exit 1
    continue_on_error: true
  - id: after
    run: touch after-marker
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("lint", "after")')" "failed success"
	assert_eq "$(ev "$EV" 'run_end()["status"]')" success
	[ -e after-marker ] || fail "the step after a continue_on_error failure did not run"
	# the failure is still listed in the summary, as tolerated
	assert_match "$output" "^✗ lint \(tolerated\): exit code 1$"
}

@test "when: false skips, true runs, and steps.X.status decides" {
	p=$(plan when <<'EOF'
vars: { flag: "no", yes: true }
steps:
  - id: a
    run: exit 3
    continue_on_error: true
  - id: on-failed
    when: steps.a.status == 'failed'
    run: echo on-failed-ran
  - id: on-success
    when: steps.a.status == 'success'
    run: touch on-success-marker
  - id: var-false
    when: vars.flag == 'yes'
    run: touch var-false-marker
  - id: var-true
    when: vars.yes
    run: echo var-true-ran
  - id: literal-false
    when: false
    run: touch literal-false-marker
  - id: interpolated
    when: "${{ steps.a.exit_code == 3 }}"
    run: echo interpolated-ran
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("on-failed", "on-success", "var-false", "var-true", "literal-false", "interpolated")')" \
		"success skipped skipped success skipped success"
	assert_eq "$(ev "$EV" 'out("on-failed")')" on-failed-ran
	for m in on-success var-false literal-false; do assert_file_absent "$m-marker"; done
	assert_eq "$(ev "$EV" 'run_end()["counts"]["skipped"]')" 3
}

@test "--var overrides a when condition" {
	p=$(plan when <<'EOF'
vars: { deploy: false }
steps:
  - id: deploy
    when: vars.deploy
    run: touch deployed
EOF
)
	run b run "$p" --output quiet
	assert_status 0
	assert_file_absent deployed
	run b run "$p" --output quiet --var deploy=true
	assert_status 0
	[ -e deployed ] || fail "--var deploy=true did not make the step run"
	rm -f deployed
	sed -i 's/deploy: false/deploy: true/' "$p"
	run b run "$p" --output quiet --var deploy=false
	assert_status 0
	assert_file_absent deployed "--var deploy=false is the boolean false"
}

@test "env: plan, defaults and step levels merge and the step wins" {
	p=$(plan env <<'EOF'
env: { A: plan, B: plan, C: plan }
defaults:
  env: { B: defaults, C: defaults }
steps:
  - id: step
    env: { C: step }
    run: echo "A=$A B=$B C=$C"
  - id: grp
    env: { A: group }
    steps:
      - id: inner
        run: echo "A=$A B=$B"
  - id: argv
    env: { A: argv-env }
    run: [printenv, A]
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("step")')" "A=plan B=defaults C=step"
	assert_eq "$(ev "$EV" 'out("grp.inner")')" "A=group B=defaults"
	assert_eq "$(ev "$EV" 'out("argv")')" "argv-env"
}

@test "commands inherit baton's environment, minus BATON_ variables" {
	p=$(plan env <<'EOF'
steps:
  - id: show
    run: echo "outer=$E2E_OUTER leak=${BATON_LEAK:-unset}"
EOF
)
	E2E_OUTER=inherited BATON_LEAK=leaked run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("show")')" "outer=inherited leak=unset"
}

@test "cwd sets the working directory; a missing one fails the task with a reason" {
	mkdir -p "$BATS_TEST_TMPDIR/work dir/sub"
	p=$(plan cwd <<EOF
defaults:
  cwd: "$BATS_TEST_TMPDIR/work dir"
steps:
  - id: default
    run: pwd
  - id: step
    cwd: "$BATS_TEST_TMPDIR/work dir/sub"
    run: pwd
  - id: argv
    cwd: /
    run: [pwd]
  - id: missing
    cwd: "$BATS_TEST_TMPDIR/nope"
    run: touch cwd-marker
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'out("default")')" "$BATS_TEST_TMPDIR/work dir"
	assert_eq "$(ev "$EV" 'out("step")')" "$BATS_TEST_TMPDIR/work dir/sub"
	assert_eq "$(ev "$EV" 'out("argv")')" "/"
	assert_eq "$(ev "$EV" 'status("missing")')" failed
	assert_contains "$(ev "$EV" 'tend("missing")["reason"]')" "nope"
	assert_file_absent cwd-marker
}

@test "shell: bash runs bash syntax; the default shell is /bin/sh" {
	p=$(plan shell <<'EOF'
steps:
  - id: bash
    shell: bash
    run: 'arr=(x y z); echo "${#arr[@]} ${BASH_VERSION:+bash}"'
  - id: default
    run: 'echo "${BASH_VERSION:-not-bash}"'
  - id: defaults
    steps:
      - run: '[[ 1 == 1 ]] && echo double-brackets'
    shell: bash
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'out("bash")')" "3 bash"
	assert_eq "$(ev "$EV" 'out("default")')" "not-bash"
	assert_eq "$(ev "$EV" 'out("defaults.run-1")')" "double-brackets"
}

@test "BATON_RUN_ID, BATON_STEP and BATON_ATTEMPT are set for every command" {
	p=$(plan vars <<'EOF'
steps:
  - id: grp
    steps:
      - id: show
        run: echo "$BATON_RUN_ID|$BATON_STEP|$BATON_ATTEMPT|${{ run.id }}"
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	run_id=$(ev "$EV" 'E[0]["run"]')
	assert_match "$run_id" '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$'
	assert_eq "$(ev "$EV" 'out("grp.show")')" "$run_id|grp.show|1|$run_id"
}

@test "default ids: the slug of the name, made unique with -N, else KIND-N" {
	p=$(plan ids <<'EOF'
steps:
  - name: Build It!
    run: echo 1
  - name: build it
    run: echo 2
  - run: echo 3
  - parallel: [echo 4]
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'starts()')" "build-it build-it-2 run-3 parallel-4.run-1"
}

@test "retry: attempts, task.retry with delay_ms, BATON_ATTEMPT increments" {
	p=$(plan retry <<'EOF'
steps:
  - id: flaky
    run: echo "attempt $BATON_ATTEMPT"; [ "$BATON_ATTEMPT" -ge 3 ]
    retry: { attempts: 4, delay: 100ms, backoff: 2, jitter: 0 }
EOF
)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'lines("flaky")')" "attempt 1 attempt 2 attempt 3"
	assert_eq "$(ev "$EV" '[e["attempt"] for e in of("task.start")]')" "1 2 3"
	assert_eq "$(ev "$EV" '[e["attempt"] for e in of("task.retry")]')" "2 3"
	assert_eq "$(ev "$EV" '[e["delay_ms"] for e in of("task.retry")]')" "100 200"
	assert_eq "$(ev "$EV" '[e["status"] for e in of("task.end")]')" "failed failed success"
	# the delay really elapses between an attempt's end and the next start
	gap=$(ev "$EV" 'min(ms(of("task.start")[i+1]) - ms(of("task.end")[i]) - of("task.retry")[i]["delay_ms"] for i in range(2))')
	assert_ge "$gap" -5 "ms between task.end and the next task.start, minus delay_ms"
	assert_contains "$output" "(attempt 2)"
}

@test "retry: max_delay caps the delay, and a non-zero jitter moves each delay by at most that fraction of itself" {
	p=$(plan maxdelay <<'EOF'
steps:
  - id: capped
    run: exit 1
    retry: { attempts: 4, delay: 50ms, backoff: 4, max_delay: 120ms, jitter: 0 }
    continue_on_error: true
  - id: jittered
    run: exit 1
    retry: { attempts: 5, delay: 40ms, backoff: 2, max_delay: 1s, jitter: 0.5 }
    continue_on_error: true
  - id: jittered-capped
    run: exit 1
    retry: { attempts: 3, delay: 100ms, backoff: 10, max_delay: 150ms, jitter: 0.5 }
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	# 50, then 200 and 800 capped at 120
	assert_eq "$(ev "$EV" '[e["delay_ms"] for e in of("task.retry", task="capped")]')" "50 120 120"
	# jittered: 40, 80, 160, 320 (below max_delay), each ± 50%; jittered-capped:
	# 100 ± 50%, then 1000 capped at 150, ± 50% (no more than 150 where
	# max_delay also bounds the jittered delay)
	assert_eq "$(ev "$EV" '[e["attempt"] for e in of("task.retry", task="jittered")]')" "2 3 4 5"
	assert_eq "$(ev "$EV" '[e["attempt"] for e in of("task.retry", task="jittered-capped")]')" "2 3"
	run ev "$EV" '[(e["task"], e["attempt"], e["delay_ms"]) for e in of("task.retry") if e["task"] != "capped" and not
	               (lambda lo, hi: lo <= e["delay_ms"] <= hi)(*{("jittered", 2): (20, 60), ("jittered", 3): (40, 120),
	                 ("jittered", 4): (80, 240), ("jittered", 5): (160, 480), ("jittered-capped", 2): (50, 150),
	                 ("jittered-capped", 3): (75, 225)}[(e["task"], e["attempt"])])]'
	assert_eq "$output" "" "(task, attempt, delay_ms) outside the delay ± 50%"
	# the jitter is applied at all: the four uncapped delays all at their
	# unjittered value would be a chance of about 1 in 10^8
	assert_eq "$(ev "$EV" '[e["delay_ms"] for e in of("task.retry", task="jittered")] != [40, 80, 160, 320]')" true
	# each announced delay is the one that elapses before the next attempt
	for t in capped jittered jittered-capped; do
		gap=$(ev "$EV" "min(ms(of('task.start', task='$t')[i+1]) - ms(of('task.end', task='$t')[i]) - of('task.retry', task='$t')[i]['delay_ms'] for i in range(len(of('task.retry', task='$t'))))")
		assert_ge "$gap" -5 "$t: ms between task.end and the next task.start, minus delay_ms"
	done
}

@test "retry gives up after the last attempt and the step fails" {
	p=$(plan retry <<'EOF'
steps:
  - id: always
    run: exit 7
    retry: { attempts: 3, delay: 10ms }
  - id: next
    run: touch next-marker
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'len(of("task.start"))' 'len(of("task.retry"))' 'status("always")')" $'3\n2\nfailed'
	assert_file_absent next-marker
}

@test "retry: N as an int means N retries" {
	p=$(plan retry <<'EOF'
steps:
  - id: r
    run: exit 1
    retry: 1
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'len(of("task.start"))')" 2
}

@test "retry on_exit retries only the listed exit codes" {
	p=$(plan onexit <<'EOF'
steps:
  - id: other-code
    run: exit 9
    retry: { attempts: 3, delay: 10ms, on_exit: [75] }
    continue_on_error: true
  - id: listed-code
    run: echo "try $BATON_ATTEMPT"; [ "$BATON_ATTEMPT" -ge 2 ] || exit 75
    retry: { attempts: 3, delay: 10ms, on_exit: [75] }
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'len(of("task.start", task="other-code"))')" 1 "exit 9 is not in on_exit: no retry"
	assert_eq "$(ev "$EV" 'len(of("task.start", task="listed-code"))')" 2 "exit 75 is retried"
	assert_eq "$(ev "$EV" 'statuses("other-code", "listed-code")')" "failed success"
}

@test "--only STEP runs that step and skips the others" {
	p=$(plan sel <<'EOF'
steps:
  - { id: a, run: touch a-marker }
  - id: g
    steps:
      - { id: b, run: touch b-marker }
      - { id: c, run: echo c }
  - { id: d, run: touch d-marker }
EOF
)
	run b run "$p" --output quiet --events "$EV" --only g.c
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("a", "g.b", "g.c", "g", "d")')" "skipped skipped success success skipped"
	assert_eq "$(ev "$EV" 'E[0]["tasks"]')" 1
	for m in a b d; do assert_file_absent "$m-marker"; done
	run b run "$p" --output quiet --events "$EV" --only a --only d
	assert_status 0
	assert_eq "$(ev "$EV" 'statuses("a", "g.b", "g.c", "d")')" "success skipped skipped success"
}

@test "--from STEP skips the steps before it" {
	p=$(plan sel <<'EOF'
steps:
  - { id: a, run: touch a-marker }
  - id: g
    steps:
      - { id: b, run: touch b-marker }
      - { id: c, run: echo c }
  - { id: d, run: echo d }
EOF
)
	run b run "$p" --output quiet --events "$EV" --from g.c
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'statuses("a", "g.b", "g.c", "d")')" "skipped skipped success success"
	assert_file_absent a-marker
	assert_file_absent b-marker
}

@test "--only or --from with an unknown step id is a usage error" {
	p=$(plan sel <<<'steps: [{ id: a, run: touch a-marker }]')
	run b run "$p" --only nope
	assert_status 2
	assert_contains "$output" "nope"
	run b run "$p" --from nope
	assert_status 2
	assert_file_absent a-marker
}

@test "commands do not inherit baton's own file descriptors (the events file)" {
	p=$(plan fds <<'EOF'
steps:
  - id: fds
    run: ls -l /proc/self/fd/
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 0
	fds=$(ev "$EV" 'out("fds")')
	assert_not_contains "$fds" "events.jsonl" "the task can write to baton's events file"
}

@test "a command killed by a signal fails with exit_code null and the signal" {
	p=$(plan sig <<'EOF2'
steps:
  - id: killed
    run: kill -9 $$
    continue_on_error: true
  - id: termed
    run: kill -TERM $$
EOF2
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[tend("killed")[k] for k in ("status", "exit_code", "signal")]' '[tend("termed")[k] for k in ("status", "exit_code", "signal")]')" \
		$'failed null 9\nfailed null 15'
	assert_contains "$(ev "$EV" 'tend("killed")["reason"]')" "signal 9"
}

@test "a task ends only when its process exited and its output closed: late output is kept" {
	p=$(plan late <<'EOF2'
steps:
  - id: late
    run: (sleep 0.4; echo late) & echo early
  - id: closed
    run: exec >&- 2>&-; sleep 0.3; exit 3
EOF2
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'lines("late")' 'tend("late")["status"]')" $'early late\nsuccess'
	assert_ge "$(ev "$EV" 'tend("late")["duration_ms"]')" 390 "duration of the task with a late writer"
	assert_eq "$(ev "$EV" 'tend("closed")["exit_code"]')" 3 "exit code of a task that closed its output early"
}

@test "a when that cannot be evaluated fails the step with a reason" {
	p=$(plan whenerr <<'EOF2'
vars: { list: [a] }
steps:
  - id: guarded
    when: vars.list[3] == 'x'
    run: touch ran-marker
EOF2
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'status("guarded")' 'len(of("task.start"))')" $'failed\n0'
	assert_contains "$(ev "$EV" 'one("step.end", step="guarded")["reason"]')" "out of range"
	assert_contains "$output" "out of range"
	assert_file_absent ran-marker
}

@test "--var without = and a bad --var-file are usage errors" {
	p=$(plan ok <<<'steps: [touch ran-marker]')
	run b run "$p" --var novalue
	assert_status 2
	run b run "$p" --var-file missing.yaml
	assert_status 2
	echo '[1, 2]' >list.yaml
	run b run "$p" --var-file list.yaml
	assert_status 2
	assert_file_absent ran-marker
}

@test "the plan's PATH finds commands on both the direct and the shell path, and scripts without #! run as sh would" {
	mkdir -p bin
	printf '#!/bin/sh\necho mytool-ran "$@"\n' >bin/mytool
	printf 'echo no-shebang-ran "$@"\n' >bin/noshebang
	chmod +x bin/mytool bin/noshebang
	p=$(plan path <<EOF
env: { PATH: "$BATS_TEST_TMPDIR/bin:/usr/bin:/bin" }
steps:
  - { id: direct, run: mytool a }
  - { id: shell, run: mytool b | cat }
  - { id: argv, run: [mytool, c] }
  - { id: noshebang, run: noshebang d }
  - { id: noshebang-sh, run: [/bin/sh, -c, noshebang d] }
  - id: other-path
    env: { PATH: "/usr/bin:/bin" }
    run: mytool e
EOF
)
	run b run "$p" --output quiet --events "$EV"
	assert_status 1
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'out("direct")' 'out("shell")' 'out("argv")' 'out("noshebang")' 'out("noshebang-sh")')" \
		$'mytool-ran a\nmytool-ran b\nmytool-ran c\nno-shebang-ran d\nno-shebang-ran d'
	assert_eq "$(ev "$EV" 'tend("other-path")["exit_code"]')" 127
}

@test "a program installed mid-run earlier in PATH is the one a later step runs" {
	mkdir -p "$E2E_TMP/a" "$E2E_TMP/b"
	printf '#!/bin/sh\necho from-b\n' > "$E2E_TMP/b/baton-e2e-tool"
	chmod +x "$E2E_TMP/b/baton-e2e-tool"
	p=$(plan pathcache <<EOF
steps:
  - run: baton-e2e-tool
  - run: printf '#!/bin/sh\necho from-a\n' > "$E2E_TMP/a/baton-e2e-tool" && chmod +x "$E2E_TMP/a/baton-e2e-tool"
  - run: baton-e2e-tool
  - run: mkdir -p "$E2E_TMP/late" && printf '#!/bin/sh\necho from-late\n' > "$E2E_TMP/late/baton-e2e-tool" && chmod +x "$E2E_TMP/late/baton-e2e-tool"
  - run: baton-e2e-tool
EOF
)
	PATH="$E2E_TMP/late:$E2E_TMP/a:$E2E_TMP/b:$PATH" run b run "$p" --output plain
	assert_status 0
	assert_match "$output" "\[run-1\] from-b" "the first run finds the tool in b"
	assert_match "$output" "\[run-3\] from-a" "the tool installed in a, earlier in PATH, wins"
	assert_match "$output" "\[run-5\] from-late" "a PATH directory created mid-run is searched"
}
