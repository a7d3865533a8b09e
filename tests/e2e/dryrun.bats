#!/usr/bin/env bats
# The dry run: `baton plan PLAN` and `baton run --dry-run PLAN` print the tree
# with kinds, modifiers and resolved commands, and run nothing.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

dry_plan() {
	plan dry <<'EOF'
vars: { version: "1.4.2", token: "tok-SECRET-123" }
secrets: [token]
semaphores: { disk: 1 }
concurrency: 3
timeout: 1h
steps:
  - id: build
    run: touch build-marker; echo building ${{ vars.version }}
    timeout: 5m
    retry: { attempts: 3, delay: 1s }
  - id: grp
    parallel:
      - { id: a, run: "touch a-marker", priority: 7 }
      - { id: b, run: [touch, b-marker], semaphore: disk, when: "vars.version == '1.4.2'" }
    max_concurrency: 2
    mode: settle
  - id: secret
    run: echo ${{ vars.token }} > secret-marker
  - id: later
    run: echo "${{ steps.build.stdout }}" > later-marker
  - id: st
    stages:
      - { name: s1, steps: [touch stage-marker] }
    mode: any
  - sleep: 10s
EOF
}

assert_nothing_ran() {
	for m in build a b secret later stage; do
		assert_file_absent "$m-marker" "the dry run ran a step"
	done
}

check_tree() { # OUTPUT
	local o=$1
	# ids and kinds
	assert_match "$o" 'build +\[run'
	assert_match "$o" 'grp +\[parallel'
	assert_match "$o" 'grp\.a +\[run'
	assert_match "$o" 'st +\[stages'
	assert_match "$o" 'st\.s1 +\[stage'
	assert_match "$o" 'sleep-6 +\[sleep 10'
	# modifiers
	assert_match "$o" 'build .*timeout 5m'
	assert_match "$o" 'build .*retry 3 attempts'
	assert_match "$o" 'grp .*max_concurrency 2'
	assert_match "$o" 'grp .*mode settle'
	assert_match "$o" 'st .*mode any'
	assert_match "$o" 'grp\.a .*priority 7'
	assert_match "$o" 'grp\.b .*semaphore disk'
	assert_match "$o" "grp\\.b .*when: vars\\.version == '1\\.4\\.2'"
	# header
	assert_match "$o" '^  6 tasks, '
	assert_match "$o" 'plan timeout 1h'
	assert_match "$o" 'semaphore disk: 1'
	assert_match "$o" 'concurrency 3'
	# commands: vars resolved, secrets masked, runtime values as written
	assert_match "$o" '\$ touch build-marker; echo building 1\.4\.2'
	assert_match "$o" '\$ touch b-marker'
	assert_match "$o" '\$ echo \*\*\* > secret-marker'
	assert_contains "$o" 'steps.build.stdout'
	assert_not_contains "$o" "tok-SECRET-123" "the secret in the dry run"
}

@test "baton plan prints the tree with kinds, modifiers and commands, and runs nothing" {
	p=$(dry_plan)
	run b plan "$p"
	assert_status 0
	check_tree "$output"
	assert_nothing_ran
}

@test "baton run --dry-run prints the same tree and runs nothing" {
	p=$(dry_plan)
	run b run --dry-run "$p"
	assert_status 0
	check_tree "$output"
	assert_nothing_ran
	dry=$output
	run b plan "$p"
	assert_status 0
	assert_eq "$dry" "$output" "run --dry-run and plan differ"
}

@test "the dry run resolves --var and shows -j" {
	p=$(dry_plan)
	run b plan "$p" --var version=9.9.9 -j 7
	assert_status 0
	assert_contains "$output" 'echo building 9.9.9'
	assert_contains "$output" 'concurrency 7'
	assert_nothing_ran
}

@test "the dry run marks steps left out by --only as skipped" {
	p=$(dry_plan)
	run b plan "$p" --only grp.a
	assert_status 0
	assert_match "$output" 'build .*skipped'
	assert_match "$output" 'grp\.b .*skipped'
	assert_match "$output" 'grp\.a +\[run, priority 7\]$'
	assert_match "$output" '^  1 task, '
	assert_nothing_ran
}

@test "the dry run's event stream is a run.start, a plan.task per task, and a run.end" {
	p=$(dry_plan)
	run b run --dry-run "$p" --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" '[e["type"] for e in E]' 'E[0]["dry_run"]' 'E[0]["tasks"]' 'E[-1]["status"]' 'E[-1]["exit_code"]')" \
		$'run.start plan.task plan.task plan.task plan.task plan.task plan.task run.end\ntrue\n6\nsuccess\n0'
	assert_eq "$(ev "$EV" '[e["task"] for e in E[1:-1]]')" "build grp.a grp.b secret later st.s1.run-1"
	assert_eq "$(ev "$EV" 'E[3]["command"]' 'E[3]["shell"]' 'E[4]["command"]' 'E[1]["shell"]')" \
		$'touch b-marker\nnull\necho *** > secret-marker\n/bin/sh -c'
	assert_not_contains "$(cat "$EV")" "tok-SECRET-123" "the secret in the events"
	assert_nothing_ran
}

@test "the dry run of a plan with a timeout or failing step still runs nothing and exits 0" {
	run b plan "$FIXTURES/failing.yaml"
	assert_status 0
	assert_contains "$output" "broken"
	assert_file_absent "$E2E_TMP/never-marker"
	run b run --dry-run "$FIXTURES/timeout.yaml"
	assert_status 0
	assert_match "$output" 'stubborn .*kill_grace'
}

@test "baton plan - shows a plan read from standard input as <stdin>" {
	run b plan - <<<$'steps:\n  - echo from-stdin'
	assert_status 0
	assert_eq "$(head -n 1 <<<"$output")" "plan <stdin>"
	run b plan - <<<$'name: named\nsteps:\n  - echo from-stdin'
	assert_status 0
	assert_eq "$(head -n 1 <<<"$output")" "plan named  (<stdin>)"
}

@test "the preview shows terminal controls in names, commands and items as ^X / M-^X" {
	p=$(plan hostile <<'EOF'
name: "plan \e]0;title\a"
description: "about \e[2J"
steps:
  - id: cmd
    name: "shown \e[31mred"
    when: "${{ vars.x != '\e[1m' }}"
    run: "true '\e]0;cmd-title\a' '\x9b1m' 'a\rb' 'c\bd'"
  - id: items
    for_each: ["\e]0;item\a"]
    run: echo ${{ item }}
vars: { x: "y" }
EOF
)
	run b plan "$p"
	assert_status 0
	assert_not_contains "$output" $'\e' "an ESC byte in the preview"
	assert_not_contains "$output" $'\a' "a BEL byte in the preview"
	assert_not_contains "$output" $'\r' "a CR in the preview"
	assert_not_contains "$output" $'\b' "a backspace in the preview"
	assert_not_contains "$output" $'\xc2\x9b' "a C1 CSI in the preview"
	assert_contains "$output" "plan plan ^[]0;title^G  ($p)"
	assert_contains "$output" "about ^[[2J"
	assert_contains "$output" "shown ^[[31mred"
	assert_contains "$output" "when:  vars.x != '^[[1m' ]"
	assert_contains "$output" "\$ true '^[]0;cmd-title^G' 'M-^[1m' 'a^Mb' 'c^Hd'"
	assert_contains "$output" "for_each: 1 item: ^[]0;item^G"
}
