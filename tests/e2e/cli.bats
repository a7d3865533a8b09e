#!/usr/bin/env bats
# The command line: check, plan errors, help, options, version.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

@test "check accepts a valid plan with exit 0 and says ok" {
	p=$(plan ok <<'EOF'
steps:
  - run: touch ran-marker
  - parallel: [echo a, echo b]
EOF
)
	run --separate-stderr b check "$p"
	assert_status 0
	assert_contains "$output" "ok"
	assert_eq "$stderr" "" "check of a valid plan writes nothing to stderr"
	assert_file_absent ran-marker "check ran a step"
}

@test "check reports every error as FILE:LINE:COL: error: MESSAGE and exits 2" {
	run --separate-stderr b check "$FIXTURES/invalid-many.yaml"
	assert_status 2
	f="$FIXTURES/invalid-many.yaml"
	# one line per error, each in the documented format, pointing at the line
	assert_match "$stderr" "$f:7:[0-9]+: error: .*timout"
	assert_match "$stderr" "$f:9:[0-9]+: error: .*nodisk"
	assert_match "$stderr" "$f:11:[0-9]+: error: .*5parsecs"
	assert_match "$stderr" "$f:14:[0-9]+: error: .*twin"
	assert_match "$stderr" "$f:17:[0-9]+: error: "
	n=$(grep -c ': error: ' <<<"$stderr")
	assert_eq "$n" 5 "number of reported errors"
	# every error line has the exact shape
	while IFS= read -r line; do
		[[ "$line" == *": error: "* ]] || continue
		assert_match "$line" "^$f:[0-9]+:[0-9]+: error: .+"
	done <<<"$stderr"
	assert_file_absent "$E2E_TMP/ran-marker" "a step ran although the plan is invalid"
}

@test "run of an invalid plan exits 2 and runs nothing" {
	run b run "$FIXTURES/invalid-many.yaml" --output plain
	assert_status 2
	assert_contains "$output" "timout"
	assert_file_absent "$E2E_TMP/ran-marker" "a step ran although the plan is invalid"
}

@test "plan of an invalid plan exits 2" {
	run b plan "$FIXTURES/invalid-many.yaml"
	assert_status 2
	assert_contains "$output" ": error: "
}

@test "check with several plans reports each and exits 2 if one is invalid" {
	good=$(plan good <<<'steps: [echo hi]')
	run b check "$good" "$FIXTURES/invalid-many.yaml"
	assert_status 2
	assert_contains "$output" "$good: ok"
	assert_contains "$output" "invalid-many.yaml:7:"
}

@test "a misspelt step key gets a did-you-mean hint (timout -> timeout)" {
	p=$(plan typo <<'EOF'
steps:
  - run: echo hi
    timout: 5s
EOF
)
	run b check "$p"
	assert_status 2
	assert_match "$output" "$p:3:5: error: .*'timout'.*did you mean 'timeout'"
}

@test "a misspelt top-level key gets a did-you-mean hint (concurency -> concurrency)" {
	p=$(plan typo <<'EOF'
concurency: 2
steps: [echo hi]
EOF
)
	run b check "$p"
	assert_status 2
	assert_match "$output" "$p:1:1: error: .*'concurency'.*did you mean 'concurrency'"
}

@test "a misspelt semaphore name gets a did-you-mean hint" {
	p=$(plan typo <<'EOF'
semaphores: { registry: 1 }
steps:
  - run: echo hi
    semaphore: registy
EOF
)
	run b check "$p"
	assert_status 2
	assert_match "$output" "$p:4:[0-9]+: error: .*registy.*did you mean 'registry'"
}

@test "a YAML syntax error is reported with its position and exit 2" {
	p=$(plan syntax <<'EOF'
steps:
  - run: [echo, unclosed
  - run: echo hi
EOF
)
	run b check "$p"
	assert_status 2
	assert_match "$output" "$p:[0-9]+:[0-9]+: error: "
}

@test "YAML where users trip: ': ', a quote, '@', '|' text or '\${{ }}' in brackets says to quote the value or use run: |, nothing runs" {
	fix="; quote the whole value, or write 'run: |' and the command on the lines below it, indented"
	p=$(plan colon <<'EOF'
steps:
  - run: touch ran-marker
  - run: echo key: value
EOF
)
	run --separate-stderr b check "$p"
	assert_status 2
	assert_eq "$stderr" "$p:3:18: error: invalid YAML: mapping values are not allowed in this context: the value of 'run' holds ': ', which YAML reads as a key$fix
$p: 1 error"
	run --separate-stderr b run "$p" --output plain
	assert_status 2
	assert_contains "$stderr" "$p:3:18: error: invalid YAML: mapping values are not allowed"
	p=$(plan quote <<'EOF'
steps:
  - run: touch ran-marker
  - run: "echo" hi
EOF
)
	run --separate-stderr b check "$p"
	assert_status 2
	assert_contains "$stderr" "$p:3:17: error: invalid YAML: did not find expected key while parsing a block mapping: the value of 'run' starts with a quote, so YAML reads a quoted string that ends at the closing quote, and no text may follow it$fix"
	p=$(plan flow <<'EOF'
vars: {x: hi}
steps:
  - run: touch ran-marker
  - run: [echo, ${{ vars.x }}]
EOF
)
	run --separate-stderr b plan "$p"
	assert_status 2
	assert_contains "$stderr" "$p:4:18: error: invalid YAML: did not find expected ',' or ']' while parsing a flow sequence: inside [ ] or { }, a '{' or '}' ends a plain value; quote a value that holds '\${{ }}'"
	p=$(plan at <<'EOF'
steps:
  - run: @here
EOF
)
	run --separate-stderr b check "$p"
	assert_status 2
	assert_contains "$stderr" "$p:2:10: error: invalid YAML: found character that cannot start any token while scanning for the next token: the value of 'run' starts with '@', which YAML reserves$fix"
	p=$(plan block <<'EOF'
steps:
  - run: | echo a
EOF
)
	run --separate-stderr b check "$p"
	assert_status 2
	assert_contains "$stderr" "$p:2:12: error: invalid YAML: did not find expected comment or line break while scanning a block scalar: after '|' (a block) the text of 'run' goes on the lines below it, indented"
	p=$(plan indent <<'EOF'
steps:
  - run: touch ran-marker
    env: {A: b}
  - run: echo
   env: {A: b}
EOF
)
	run --separate-stderr b check "$p"
	assert_status 2
	assert_contains "$stderr" "$p:5:4: error: invalid YAML: did not find expected '-' indicator while parsing a block collection: the keys of one map line up: 'env' is at column 4, 'run' above at column 5"
	assert_file_absent ran-marker
}

@test "a ' #' that cuts a run command inside a quoted string is an error at the '#'; a comment the shell would read alike is not" {
	p=$(plan cut <<'EOF'
steps:
  - run: touch ran-marker
  - run: git commit -m "fix #12"
  - echo 'it is #1'
EOF
)
	run --separate-stderr b check "$p"
	assert_status 2
	assert_eq "$stderr" "$p:3:29: error: '#' after a space starts a YAML comment, which cuts the 'run' command inside a \"...\" string; quote the whole value, or write 'run: |' and the command on the lines below it, indented
$p:4:17: error: '#' after a space starts a YAML comment, which cuts the step's command inside a '...' string; quote the whole command, or write 'run: |' and the command on the lines below it, indented
$p: 2 errors"
	run b run "$p" --output plain
	assert_status 2
	assert_file_absent ran-marker
	# as the shell reads it: the comment is the shell's too, and the quoted forms keep the '#'
	p=$(plan fine <<'EOF'
steps:
  - run: echo a #b
  - run: 'echo "c #d"'
  - run: |
      echo "e #f"
EOF
)
	run --separate-stderr b run "$p" --output plain
	assert_status 0
	assert_eq "$stderr" ""
	assert_contains "$output" "a"
	assert_contains "$output" "c #d"
	assert_contains "$output" "e #f"
}

@test "an alias bomb (billion laughs) is rejected quickly" {
	{
		echo 'vars:'
		echo '  a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
		for i in 1 2 3 4 5 6 7 8 9; do
			printf '  a%d: &a%d [' "$i" "$i"
			for j in 1 2 3 4 5 6 7 8 9; do printf '*a%d, ' $((i - 1)); done
			printf '*a%d]\n' $((i - 1))
		done
		echo 'steps:'
		echo '  - run: echo ${{ vars.a9 }}'
	} >bomb.yaml
	start=$(date +%s%N)
	run timeout 5 "$BATON" check bomb.yaml
	elapsed=$((($(date +%s%N) - start) / 1000000))
	assert_status 2
	assert_match "$output" "bomb.yaml:[0-9]+:[0-9]+: error: .*alias"
	assert_le "$elapsed" 2000 "milliseconds to reject the alias bomb"
}

@test "10000 nested brackets are rejected without a crash" {
	"$E2E_PY" -c 'print("steps: " + "[" * 10000 + "]" * 10000)' >deep.yaml
	"$E2E_PY" -c 'print("steps:\n  - run: " + "[" * 10000)' >deep-open.yaml
	"$E2E_PY" -c 'print("vars:\n  x: " + "{a: " * 5000 + "1" + "}" * 5000 + "\nsteps: [echo]")' >deep-map.yaml
	for f in deep.yaml deep-open.yaml deep-map.yaml; do
		run timeout 5 "$BATON" check "$f"
		assert_status 2
		assert_match "$output" "$f:[0-9]+:[0-9]+: error: "
	done
}

@test "a NUL byte or bytes that are not UTF-8 in a plan are reported at their line and column" {
	printf 'steps:\n  - run: echo hi\n  - run: "a\0b"\n' >nul.yaml
	run b check nul.yaml
	assert_status 2
	assert_contains "$output" "nul.yaml:3:12: error: invalid YAML: control characters are not allowed (byte 0x00)"
	printf 'steps:\n  - run: echo "caf\xc3\xa9 \xff"\n' >latin.yaml
	run b check latin.yaml
	assert_status 2
	assert_contains "$output" "latin.yaml:2:21: error: invalid YAML: invalid leading UTF-8 octet (byte 0xFF)"
}

@test "groups of groups nest 1,001 and 5,000 deep" {
	for n in 1001 5000; do
		"$E2E_PY" - "$n" >"deep$n.yaml" <<'PY'
import sys
n = int(sys.argv[1])
print("inventory:\n  hosts:\n    web1: { address: 192.0.2.1 }\n  groups:")
for i in range(n - 1):
    print("    g%d: [g%d]" % (i, i + 1))
print("    g%d: [web1]" % (n - 1))
print("steps:\n  - run: echo hi\n    on: g0")
PY
		run timeout 10 "$BATON" check "deep$n.yaml"
		assert_status 0
		run timeout 10 "$BATON" plan "deep$n.yaml"
		assert_status 0
		assert_contains "$output" "on g0: 1 host"
		assert_contains "$output" "web1 ("
	done
}

@test "an env name a remote shell cannot export is a check-time error at its key" {
	p=$(plan envname <<'EOF'
inventory: { hosts: { web1: { address: 192.0.2.1 } } }
steps:
  - id: local
    env: { "A-B": 1 }
    run: echo fine here
  - id: remote
    on: web1
    env: { "A-B": 1, OK: 2 }
    run: touch "$E2E_TMP/ran-marker"
EOF
)
	run b check "$p"
	assert_status 2
	assert_contains "$output" "$p:8:12: error: env 'A-B': step 'remote' runs on remote host 'web1', whose shell cannot export this name"
	assert_not_contains "$output" "$p:4:"
	run b run "$p"
	assert_status 2
	assert_file_absent "$E2E_TMP/ran-marker"
}

@test "keys of hosts over SSH pass check; a plan with them checks without contacting anything" {
	p=$(plan later <<'EOF'
inventory: { hosts: { web1: { address: 192.0.2.1 } } }
ssh: { known_hosts: strict }
steps:
  - run: echo b
    on: web1
  - run: touch "$E2E_TMP/ran-marker"
EOF
)
	run b check "$p"
	assert_status 0
	[[ "$output" != *"not supported yet"* ]]
	assert_file_absent "$E2E_TMP/ran-marker"
}

@test "duplicate sibling ids are an error naming both" {
	p=$(plan dup <<'EOF'
steps:
  - id: build
    run: echo 1
  - id: build
    run: echo 2
  - name: build
    run: echo default-ids-are-made-unique
  - id: grp
    steps:
      - { id: build, run: echo nested-is-fine }
EOF
)
	run b check "$p"
	assert_status 2
	assert_match "$output" "$p:4:[0-9]+: error: .*'build'"
	assert_eq "$(grep -c ': error: ' <<<"$output")" 1 "only the sibling duplicate is an error"
}

@test "an unknown semaphore is an error" {
	p=$(plan sem <<'EOF'
steps:
  - run: echo hi
    semaphore: gpu
EOF
)
	run b check "$p"
	assert_status 2
	assert_match "$output" "$p:3:[0-9]+: error: .*gpu"
}

@test "bad durations are errors" {
	p=$(plan dur <<'EOF'
timeout: soon
steps:
  - run: echo hi
    timeout: 5parsecs
  - sleep: -1s
  - run: echo
    kill_grace: 1m30
EOF
)
	run b check "$p"
	assert_status 2
	assert_match "$output" "$p:1:[0-9]+: error: .*soon"
	assert_match "$output" "$p:4:[0-9]+: error: .*5parsecs"
	assert_match "$output" "$p:5:[0-9]+: error: .*-1s"
	assert_match "$output" "$p:7:[0-9]+: error: .*1m30"
}

@test "wrong types, two kinds in one step, and an empty plan are errors" {
	p=$(plan types <<'EOF'
concurrency: many
steps:
  - run: echo
    parallel: [echo]
  - run: echo
    priority: high
  - parallel: [true]
    mode: sometimes
  - parallel: [true]
    min_success: "150%"
EOF
)
	run b check "$p"
	assert_status 2
	assert_match "$output" "$p:1:[0-9]+: error: .*many"
	assert_match "$output" "$p:[34]:[0-9]+: error: .*(kind|both)"
	assert_match "$output" "$p:6:[0-9]+: error: .*high"
	assert_match "$output" "$p:8:[0-9]+: error: .*sometimes"
	assert_match "$output" "$p:10:[0-9]+: error: .*150%"
	e=$(plan empty <<<'steps: []')
	run b check "$e"
	assert_status 2
	assert_match "$output" "$e:[0-9]+:[0-9]+: error: "
}

@test "an expression that does not parse, or names an unknown step, is a plan error" {
	p=$(plan expr <<'EOF'
steps:
  - run: echo ${{ vars.x
  - run: echo ${{ steps.nope.stdout }}
  - run: echo hi
    when: "vars.x =="
EOF
)
	run b check "$p"
	assert_status 2
	assert_match "$output" "$p:2:[0-9]+: error: "
	assert_match "$output" "$p:3:[0-9]+: error: .*nope"
	assert_match "$output" "$p:5:[0-9]+: error: "
}

@test "a missing plan file is a usage error (exit 2)" {
	run b check does-not-exist.yaml
	assert_status 2
	assert_contains "$output" "does-not-exist.yaml"
	run b run does-not-exist.yaml
	assert_status 2
}

@test "--help on each subcommand exits 0 and prints usage" {
	for cmd in run check plan; do
		run b "$cmd" --help
		assert_status 0
		assert_contains "$output" "usage" "baton $cmd --help"
	done
	run b version --help
	assert_status 0
	[ -n "$output" ] || fail "baton version --help printed nothing"
	run b --help
	assert_status 0
	assert_contains "$output" "run"
	assert_contains "$output" "check"
	run b run -h
	assert_status 0
	assert_contains "$output" "--dry-run"
}

@test "an unknown option exits 2 on every subcommand" {
	p=$(plan ok <<<'steps: [touch ran-marker]')
	for cmd in run check plan; do
		run b "$cmd" --no-such-option "$p"
		assert_status 2
	done
	assert_file_absent ran-marker
}

@test "an unknown subcommand, or none, exits 2" {
	run b frobnicate
	assert_status 2
	assert_contains "$output" "frobnicate"
	run b
	assert_status 2
	run b run
	assert_status 2
}

@test "a misspelt subcommand gets a did-you-mean hint; a plan given as the command is pointed at run" {
	run --separate-stderr b rnu
	assert_status 2
	assert_eq "$stderr" "baton: unknown command 'rnu'; did you mean 'run'?
Try 'baton --help'."
	run --separate-stderr b stauts
	assert_status 2
	assert_contains "$stderr" "unknown command 'stauts'; did you mean 'status'?"
	run --separate-stderr b rusn
	assert_contains "$stderr" "did you mean 'runs'?"
	p=$(plan ok <<<'steps: [touch ran-marker]')
	run --separate-stderr b "$p"
	assert_status 2
	assert_contains "$stderr" "unknown command '$p' (to run that plan: baton run $p)"
	run --separate-stderr b --dry-run run "$p"
	assert_status 2
	assert_contains "$stderr" "unknown option '--dry-run' (a command comes first: baton COMMAND [OPTIONS])"
	assert_file_absent ran-marker
}

@test "a misspelt option gets a did-you-mean hint from the subcommand's own options, and nothing runs" {
	p=$(plan ok <<<'steps: [touch ran-marker]')
	run --separate-stderr b run --dryrun "$p"
	assert_status 2
	assert_eq "$stderr" "baton run: unknown option '--dryrun'; did you mean '--dry-run'?
Try 'baton run --help'." "getopt's own message is not printed"
	run --separate-stderr b run "$p" --dry_run=yes
	assert_status 2
	assert_contains "$stderr" "baton run: unknown option '--dry_run'; did you mean '--dry-run'?"
	run --separate-stderr b plan --onyl build "$p"
	assert_status 2
	assert_contains "$stderr" "baton plan: unknown option '--onyl'; did you mean '--only'?"
	assert_contains "$stderr" "Try 'baton plan --help'."
	run --separate-stderr b check --quite "$p"
	assert_status 2
	assert_contains "$stderr" "baton check: unknown option '--quite'; did you mean '--quiet'?"
	run --separate-stderr b runs --prnue
	assert_status 2
	assert_contains "$stderr" "baton runs: unknown option '--prnue'; did you mean '--prune'?"
	run --separate-stderr b status --jsn
	assert_contains "$stderr" "baton status: unknown option '--jsn'; did you mean '--json'?"
	run --separate-stderr b logs --folow
	assert_contains "$stderr" "baton logs: unknown option '--folow'; did you mean '--follow'?"
	run --separate-stderr b wait --timout 5s
	assert_status 2
	assert_contains "$stderr" "baton wait: unknown option '--timout'; did you mean '--timeout'?"
	run --separate-stderr b cancel --kll
	assert_status 2
	assert_contains "$stderr" "baton cancel: unknown option '--kll'; did you mean '--kill'?"
	# one dash where two belong
	run --separate-stderr b run -dry-run "$p"
	assert_status 2
	assert_contains "$stderr" "unknown option '-d' (in '-dry-run'); did you mean '--dry-run'?"
	# nothing close: no guess
	run --separate-stderr b run --frobnicate "$p"
	assert_status 2
	assert_eq "$stderr" "baton run: unknown option '--frobnicate'
Try 'baton run --help'."
	# the other ways an option goes wrong
	run --separate-stderr b run --va x=1 "$p"
	assert_status 2
	assert_contains "$stderr" "baton run: option '--va' is ambiguous: --var, --var-file"
	run --separate-stderr b run "$p" --var
	assert_status 2
	assert_contains "$stderr" "baton run: option '--var' needs a value"
	run --separate-stderr b run "$p" -j
	assert_contains "$stderr" "baton run: option '-j' needs a value"
	run --separate-stderr b run --dry-run=1 "$p"
	assert_status 2
	assert_contains "$stderr" "baton run: option '--dry-run' takes no value (got '--dry-run=1')"
	run --separate-stderr b check -z "$p"
	assert_status 2
	assert_eq "$stderr" "baton check: unknown option '-z'
Try 'baton check --help'."
	assert_file_absent ran-marker
}

@test "resume names itself in an option's did-you-mean" {
	p=$(plan once <<<'steps: [echo once]')
	run b run "$p" --output quiet
	assert_status 0
	run --separate-stderr b resume --dryrun
	assert_status 2
	assert_contains "$stderr" "baton resume: unknown option '--dryrun'; did you mean '--dry-run'?
Try 'baton resume --help'."
}

@test "an --only or --from id that names no step gets the closest id, or the list of ids" {
	p=$(plan sel <<'EOF'
steps:
  - id: build
    run: touch ran-marker
  - id: deploy
    steps:
      - id: upload
        run: touch ran-marker
      - id: restart
        for_each: [a, b]
        run: touch ran-marker
EOF
)
	run --separate-stderr b run "$p" --only biuld
	assert_status 2
	assert_eq "$stderr" "$p: error: --only biuld: no step with that full id; did you mean 'build'? (see 'baton plan $p')"
	run --separate-stderr b run "$p" --from deplyo
	assert_status 2
	assert_contains "$stderr" "--from deplyo: no step with that full id; did you mean 'deploy'?"
	# a step's last id, or a typo of it: the full id, with the instance kept
	run --separate-stderr b plan "$p" --only upload
	assert_status 2
	assert_contains "$stderr" "--only upload: no step with that full id; did you mean 'deploy.upload'?"
	run --separate-stderr b run "$p" --only 'restrat#1'
	assert_status 2
	assert_contains "$stderr" "--only restrat#1: no step with the full id 'restrat'; did you mean 'deploy.restart#1'?"
	run --separate-stderr b run "$p" --dry-run --only xyzzy
	assert_status 2
	assert_contains "$stderr" "--only xyzzy: no step with that full id; full ids: build, deploy, deploy.upload, deploy.restart (see 'baton plan $p')"
	assert_file_absent ran-marker
}

@test "a bad -j value is a usage error" {
	p=$(plan ok <<<'steps: [touch ran-marker]')
	for j in 0 -3 lots; do
		run b run "$p" -j "$j"
		assert_status 2
	done
	assert_file_absent ran-marker
}

@test "--limit naming no host and --inventory naming a missing file are errors (exit 2), nothing runs" {
	p=$(plan ok <<<'steps: [touch ran-marker]')
	run b run "$p" --limit web
	assert_status 2
	assert_match "$output" "--limit: error: .*unknown host or group 'web'"
	run b run "$p" --inventory inv.yaml
	assert_status 2
	assert_match "$output" "inv.yaml: cannot open"
	assert_file_absent ran-marker
}

@test "baton version prints the version and exits 0" {
	run b version
	assert_status 0
	assert_match "$output" "^baton [0-9]+\.[0-9]+\.[0-9]+"
	run b --version
	assert_status 0
	assert_match "$output" "^baton [0-9]+\.[0-9]+\.[0-9]+"
}

@test "baton version names every library with the version it runs on, the lazily loaded ones too" {
	run --separate-stderr b version
	assert_status 0
	assert_eq "$stderr" ""
	local lib
	for lib in libyaml libuv jansson SQLite libssh2 nettle; do
		assert_match "$output" "^  $lib +[0-9]+\.[0-9]+(\.[0-9]+)?$" "the version of $lib"
	done
	# libssh2's libcrypto, as libssh2 loaded it
	assert_match "$output" "^  libcrypto +OpenSSL [0-9]+\.[0-9]+\.[0-9]+"
	# the run-time versions, not the headers': SQLite's is the loaded library's
	if command -v sqlite3 >/dev/null; then
		assert_contains "$output" "  SQLite     $(sqlite3 --version | cut -d' ' -f1)"
	fi
	assert_eq "$(grep -c . <<<"$output")" 8 "baton and seven libraries, a line each"
}

@test "a plan read from standard input with -" {
	run b run - --output plain <<<$'steps:\n  - echo from-stdin'
	assert_status 0
	assert_contains "$output" "[run-1] from-stdin"
}

@test "--events to an unwritable path is an error before anything runs" {
	p=$(plan ok <<<'steps: [touch ran-marker]')
	run b run "$p" --events "$BATS_TEST_TMPDIR/no/such/dir/events.jsonl"
	assert_status 2
	assert_file_absent ran-marker
}
