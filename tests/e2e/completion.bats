#!/usr/bin/env bats
# Shell completion: `baton completion bash|zsh|fish` and what each script
# offers, exercised in the real shells (bash: the function with COMP_* set;
# fish: complete -C; zsh: the function with compadd and _files stubbed), and
# `make install`. What is offered must be what each command's --help lists.

load helpers

setup() {
	e2e_setup
	export BATON_STATE_DIR="$BATS_TEST_TMPDIR/state"
	# the scripts run the baton named on the line: this one
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	ln -sf "$BATON" "$BATS_TEST_TMPDIR/bin/baton"
	export PATH="$BATS_TEST_TMPDIR/bin:$PATH"
	DEMO="$REPO_DIR/plans/demo.yaml"
}
teardown() { e2e_teardown; }

# cb LINE: the bash candidates for LINE (cursor at its end), one a line, sorted.
cb() {
	b completion bash >"$BATS_TEST_TMPDIR/baton.bash"
	bash -c '
		source "$1"
		COMP_LINE=$2 COMP_POINT=${#2}
		read -ra COMP_WORDS <<<"$2"
		[[ $2 == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_baton
		printf "%s\n" "${COMPREPLY[@]}"' _ "$BATS_TEST_TMPDIR/baton.bash" "$1" | sed '/^$/d' | LC_ALL=C sort
}

# cf LINE: the fish candidates (without their descriptions), sorted.
cf() {
	b completion fish >"$BATS_TEST_TMPDIR/baton.fish"
	fish -c 'source $argv[1]; complete -C $argv[2]' "$BATS_TEST_TMPDIR/baton.fish" "$1" | cut -f1 | LC_ALL=C sort
}

# cz WORD...: the zsh candidates for the words (the last is completed), with
# compadd, _files and compset stubbed to print what they are asked.
cz() {
	b completion zsh >"$BATS_TEST_TMPDIR/_baton"
	zsh -f -c '
		compdef() { :; }
		compadd() { while [[ $# -gt 0 && $1 != -- ]]; do shift; done; shift; print -l -- "$@"; }
		_files() { print -r -- "_files $*"; }
		compset() { print -r -- "compset $*"; }
		source $1; shift
		words=("$@"); CURRENT=$#words
		_baton' _ "$BATS_TEST_TMPDIR/_baton" "$@" | LC_ALL=C sort
}

# The step ids baton's own preview gives (baton plan --output json), sorted.
preview_ids() {
	b plan "$1" --output json | "$E2E_PY" -c '
import json, sys
def walk(steps):
    for s in steps:
        print(s["id"])
        walk(s.get("steps") or [])
walk(json.load(sys.stdin)["steps"])' | LC_ALL=C sort
}

# help_opts CMD: the long options the option lines of 'baton CMD --help' list (resume: and run's), sorted.
help_opts() {
	{
		b "$1" --help
		[ "$1" != resume ] || b run --help
	} | grep -E '^  +-' | grep -oE -- '--[a-z][a-z0-9-]*' | LC_ALL=C sort -u
}

@test "completion prints each shell's script; an unknown shell is a usage error with a guess" {
	run b completion bash
	assert_status 0
	assert_contains "$output" "complete -F _baton baton"
	run b completion zsh
	assert_status 0
	assert_eq "${lines[0]}" "#compdef baton" "the zsh script is an autoloadable completion function"
	run b completion fish
	assert_status 0
	assert_contains "$output" "complete -c baton"
	run b completion bsh
	assert_status 2
	assert_contains "$output" "unknown shell 'bsh'; did you mean"
	run b completion powershell
	assert_status 2
	assert_contains "$output" "unknown shell 'powershell' (bash, zsh or fish)"
	run b completion
	assert_status 2
	assert_contains "$output" "which shell?"
	run b completion --shell bash
	assert_status 2
	assert_contains "$output" "unknown option '--shell'"
}

@test "bash: commands, options, option values" {
	assert_eq "$(cb 'baton r')" "$(printf 'report\nresume\nrun\nruns')" "commands"
	assert_eq "$(cb 'baton run --o')" "$(printf -- '--only\n--output')" "options of run"
	assert_eq "$(cb 'baton run --output ')" "$(printf 'auto\njson\nplain\nquiet\ntty')" "run's outputs"
	assert_eq "$(cb 'baton plan x.yaml --output ')" "$(printf 'dot\njson\ntext')" "plan's formats"
	# --output=VALUE: bash replaces what follows the '=' only
	assert_eq "$(cb 'baton run --output=j')" "json"
	assert_eq "$(cb 'baton runs --')" "$(printf -- '--all\n--help\n--json\n--keep\n--plan\n--prune\n--state-dir')"
	assert_eq "$(cb 'baton completion ')" "$(printf 'bash\nfish\nzsh')"
	assert_eq "$(cb 'baton nosuch --')" "" "an unknown command: nothing"
}

@test "bash: the step ids of the plan on the line, as 'baton plan' names them" {
	want="$(preview_ids "$DEMO")"
	[ -n "$want" ] || fail "the preview gave no ids"
	assert_eq "$(cb "baton run $DEMO --only ")" "$want" "--only offers every step id"
	assert_eq "$(cb "baton run --from ")" "" "no plan on the line: no ids"
	assert_eq "$(cb "baton run -j 2 $DEMO --from test.u")" "$(printf 'test.unit\ntest.unit.run-1\ntest.unit.run-2')"
	assert_eq "$(cb "baton plan $DEMO --only=test.i")" "$(printf 'test.integration\ntest.integration.run-1')"
	want="$(preview_ids "$REPO_DIR/plans/rolling-deploy.yaml")"
	assert_eq "$(cb "baton plan $REPO_DIR/plans/rolling-deploy.yaml --only ")" "$want" "handlers too"
	assert_not_contains "$(cb "baton check $REPO_DIR/plans/rolling-deploy.yaml --only ")" canary "check has no --only"
}

@test "step ids are read, never run; a broken plan gives none and prints nothing; fast" {
	cat >p.yaml <<EOF
steps:
  - id: touch
    run: touch $BATS_TEST_TMPDIR/ran
  - id: second
    run: "true"
EOF
	assert_eq "$(cb "baton run p.yaml --only ")" "$(printf 'second\ntouch')"
	assert_file_absent "$BATS_TEST_TMPDIR/ran"
	printf 'steps:\n  - id: a\n    run: [unclosed\n' >bad.yaml
	run b completion --complete baton run bad.yaml --only ''
	assert_status 0
	assert_eq "$output" "$(printf 'words\n\n')" "a broken plan: no ids, no error text"
	run b completion --steps bad.yaml
	assert_eq "$output" "" "--steps of a broken plan: silent"
	assert_eq "$status" 1
	run b completion --steps "$DEMO"
	assert_status 0
	assert_eq "$(printf '%s\n' "$output" | LC_ALL=C sort)" "$(preview_ids "$DEMO")"
	# meant to take well under 200 ms for a normal plan (3 ms measured; the whole round
	# through bash, 5 times); bounded loosely so that a loaded machine cannot fail it
	start=$(date +%s%N)
	for _ in 1 2 3 4 5; do cb "baton run $DEMO --only " >/dev/null; done
	ms=$((($(date +%s%N) - start) / 5000000))
	assert_le "$ms" 1000 "ms per completion"
}

@test "bash: run ids from the run store, for the verbs that take one" {
	assert_eq "$(cb 'baton status ')" "" "no run recorded: nothing"
	printf 'steps:\n  - id: a\n    run: "true"\n' >p.yaml
	b run p.yaml --output quiet
	b run p.yaml --output quiet
	want="$(b runs --json | "$E2E_PY" -c 'import json,sys; print("\n".join(r["id"] for r in json.load(sys.stdin)))' | LC_ALL=C sort)"
	assert_eq "$(printf '%s\n' "$want" | wc -l)" 2
	for verb in status logs wait cancel resume; do
		assert_eq "$(cb "baton $verb ")" "$want" "$verb"
	done
	assert_eq "$(cb 'baton wait x ')" "$want" "wait takes several"
	first="$(printf '%s\n' "$want" | head -1)"
	assert_eq "$(cb "baton status ${first:0:20}")" "$(printf '%s\n' "$want" | grep "^${first:0:20}")"
	assert_eq "$(b completion --runs | LC_ALL=C sort)" "$want"
	# --state-dir on the line is the store read
	BATON_STATE_DIR="$BATS_TEST_TMPDIR/elsewhere" run cb "baton status --state-dir $BATON_STATE_DIR "
	assert_eq "$output" "$want"
	assert_eq "$(BATON_STATE_DIR="$BATS_TEST_TMPDIR/elsewhere" cb 'baton status ')" ""
}

@test "bash: --limit offers the plan's hosts and groups, in a comma-separated list; logs offers a run's tasks" {
	cat >inv.yaml <<'EOF'
hosts:
  web1: {address: 127.0.0.1}
  web2: {address: 127.0.0.1}
  db1: {address: 127.0.0.1}
groups:
  web: [web1, web2]
EOF
	printf 'inventory: inv.yaml\nsteps:\n  - { id: up, on: web, run: uptime }\n' >p.yaml
	assert_eq "$(cb 'baton run p.yaml --limit ')" "$(printf 'all\ndb1\nweb\nweb1\nweb2')"
	assert_eq "$(cb 'baton plan p.yaml --limit db1,!w')" "$(printf 'db1,!web\ndb1,!web1\ndb1,!web2')"
	printf 'hosts:\n  other: {address: 127.0.0.1}\ngroups:\n  web: [other]\n' >inv2.yaml
	assert_eq "$(cb 'baton run --inventory inv2.yaml p.yaml --limit o')" "other" "--inventory on the line replaces the plan's"
	printf 'steps:\n  - id: build\n    for_each: [a, b]\n    run: echo ${{ item }}\n  - id: test\n    run: "true"\n' >f.yaml
	b run f.yaml --output quiet
	id="$(b completion --runs)"
	assert_eq "$(cb "baton logs $id bu")" "$(printf 'build\nbuild#0\nbuild#1')"
	assert_eq "$(cb "baton logs $id ")" "$(printf 'build\nbuild#0\nbuild#1\ntest')"
}

@test "bash: file names: plans for the plan, any file for --var-file and --events, directories for --state-dir" {
	mkdir -p d/sub
	touch d/a.yaml d/b.yml d/c.txt
	assert_eq "$(cb 'baton run d/')" "$(printf 'd/a.yaml\nd/b.yml\nd/sub')"
	assert_eq "$(cb 'baton check d/a.yaml d/')" "$(printf 'd/a.yaml\nd/b.yml\nd/sub')"
	assert_eq "$(cb 'baton run --var-file d/')" "$(printf 'd/a.yaml\nd/b.yml\nd/c.txt\nd/sub')"
	assert_eq "$(cb 'baton run --events=d/c')" "d/c.txt"
	assert_eq "$(cb 'baton runs --state-dir d/')" "d/sub"
	assert_eq "$(cb 'baton run --secret-file tok=d/c')" "d/c.txt" "NAME=PATH: the path"
}

@test "every command's --help options are what completion offers, and every command is offered" {
	cmds="$(b --help | sed -n '/^commands:/,/^$/p' | awk 'NF && $1 != "commands:" {print $1}' | LC_ALL=C sort)"
	[ "$(printf '%s\n' "$cmds" | wc -l)" -ge 10 ] || fail "too few commands in --help: $cmds"
	assert_eq "$(cb 'baton ')" "$cmds" "the commands"
	for c in $cmds; do
		[ "$c" != version ] || continue
		got="$(b completion --complete baton "$c" -- | tail -n +4 | cut -f1 | LC_ALL=C sort)"
		assert_eq "$got" "$(help_opts "$c")" "options of $c"
	done
}

@test "fish: commands, options, values, step ids, run ids, files" {
	command -v fish >/dev/null || fail "fish is not installed"
	assert_eq "$(cf 'baton r')" "$(printf 'report\nresume\nrun\nruns')"
	assert_eq "$(cf 'baton run --o')" "$(printf -- '--only\n--output')"
	assert_eq "$(cf 'baton run --output=')" "$(printf -- '--output=auto\n--output=json\n--output=plain\n--output=quiet\n--output=tty')"
	assert_eq "$(cf 'baton plan x --output ')" "$(printf 'dot\njson\ntext')"
	assert_eq "$(cf "baton run $DEMO --only ")" "$(preview_ids "$DEMO")"
	mkdir -p d/sub
	touch d/a.yaml d/c.txt
	assert_eq "$(cf 'baton run d/')" "$(printf 'd/a.yaml\nd/sub/')"
	assert_eq "$(cf 'baton run --events=d/c')" "--events=d/c.txt"
	printf 'steps:\n  - id: a\n    run: "true"\n' >p.yaml
	b run p.yaml --output quiet
	assert_eq "$(cf 'baton logs ')" "$(b completion --runs)"
}

@test "zsh: the script parses, and offers commands, options, values, step ids, run ids, files" {
	command -v zsh >/dev/null || fail "zsh is not installed"
	b completion zsh >_baton
	run zsh -n _baton
	assert_status 0
	assert_eq "$(cz baton r)" "$(printf 'report\nresume\nrun\nruns')"
	assert_eq "$(cz baton run --o)" "$(printf -- '--only\n--output')"
	assert_eq "$(cz baton run --output=j)" "--output=json"
	assert_eq "$(cz baton plan x --output '')" "$(printf 'dot\njson\ntext')"
	assert_eq "$(cz baton run "$DEMO" --only '')" "$(preview_ids "$DEMO")"
	assert_eq "$(cz baton run pl)" "_files -g *.(yaml|yml)"
	assert_eq "$(cz baton run --events=x)" "$(printf '_files \ncompset -P *=')"
	assert_eq "$(cz baton runs --state-dir '')" "_files -/"
	printf 'steps:\n  - id: a\n    run: "true"\n' >p.yaml
	b run p.yaml --output quiet
	assert_eq "$(cz baton cancel '')" "$(b completion --runs)"
}

@test "make install puts the three scripts where each shell looks, under DESTDIR" {
	command -v make >/dev/null || fail "make is not installed"
	run make -s -C "$REPO_DIR" install DESTDIR="$BATS_TEST_TMPDIR/root" PREFIX=/opt/baton
	assert_status 0
	r="$BATS_TEST_TMPDIR/root/opt/baton/share"
	assert_eq "$(cat "$r/bash-completion/completions/baton")" "$(b completion bash)"
	assert_eq "$(cat "$r/zsh/site-functions/_baton")" "$(b completion zsh)"
	assert_eq "$(cat "$r/fish/vendor_completions.d/baton.fish")" "$(b completion fish)"
	[ -x "$BATS_TEST_TMPDIR/root/opt/baton/bin/baton" ] || fail "no binary installed"
	# (the man pages name the stall message the teardown looks for)
	rm -rf "$BATS_TEST_TMPDIR/root"
}
