#!/usr/bin/env bats
# $BATON_OUTPUT over SSH, against a real sshd on loopback (tests/ssh/harness.sh):
# the file is made on the host, read back over the same connection once the
# command has ended, and removed; the command's stdout, stderr and exit code
# stay exactly what they were. Local outputs: outputs.bats.
#
# Needs root (the harness creates user batontest and runs sshd); every test
# skips, saying why, otherwise.

bats_require_minimum_version 1.5.0
load helpers
load ssh_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; }
teardown() { ssh_teardown; }

@test "remote outputs arrive per host (KEY=VALUE and a KEY<<EOF block); stdout, stderr and exit code unchanged" {
	p=$(plan remote <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: probe
    on: [h1, h2]
    run: |
      echo "who=\${{ host.name }}" >> "\$BATON_OUTPUT"
      printf 'notes<<END\nfirst line\nsecond = line\nEND\n' >> "\$BATON_OUTPUT"
      echo "path=\$BATON_OUTPUT" >> "\$BATON_OUTPUT"
      echo to-out; echo to-err >&2
  - id: show
    run: |
      echo "h1=\${{ steps.probe.hosts.h1.outputs.who }} h2=\${{ steps.probe.hosts.h2.outputs.who }}"
      echo "notes=\${{ steps.probe.hosts.h2.outputs.notes }}"
      echo "path=\${{ steps.probe.hosts.h1.outputs.path }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[show] h1=h1 h2=h2"
	assert_contains "$output" "[show] notes=first line"
	assert_contains "$output" "[show] second = line"
	assert_eq "$(ev "$EV" 'lines("probe@h1", "stdout")' 'lines("probe@h1", "stderr")')" $'to-out\nto-err'
	assert_eq "$(ev "$EV" 'tend("probe@h1")["exit_code"]')" 0
	# the file on the host is gone once read back
	path=$(sed -n 's/^\[show\] path=//p' <<<"$output")
	[[ "$path" == /* ]] || fail "no remote path in: $output"
	[ ! -e "$path" ] || fail "$path is still there"
	ssh_ev_check "$EV"
}

@test "a failing remote command keeps its exit code and its outputs; a malformed remote file fails the task" {
	p=$(plan remotefail <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: x
    on: h1
    continue_on_error: true
    run: echo code=7 >> "\$BATON_OUTPUT"; echo before; exit 7
  - run: echo "code=\${{ steps.x.hosts.h1.outputs.code }}"
  - id: bad
    on: h2
    run: echo 'no equals sign' >> "\$BATON_OUTPUT"
  - run: echo "\${{ steps.bad.hosts.h2.outputs.x }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("x@h1")["status"]' 'tend("x@h1")["exit_code"]')" $'failed\n7'
	assert_contains "$output" "[x@h1] before"
	assert_contains "$output" "code=7"
	assert_eq "$(ev "$EV" 'tend("bad@h2")["status"]' 'tend("bad@h2")["exit_code"]')" $'failed\n0'
	assert_contains "$(reason bad@h2)" "\$BATON_OUTPUT line 1: expected KEY=VALUE or KEY<<DELIMITER, got 'no equals sign'"
}

@test "a remote output file over 1 MiB fails the task with the reason; a step nobody reads gets /dev/null" {
	p=$(plan remotebig <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: big
    on: h1
    continue_on_error: true
    run: head -c 1100000 /dev/zero | tr '\\\\0' a | sed 's/^/k=/' >> "\$BATON_OUTPUT"
  - run: echo "\${{ steps.big.status }}"
  - id: unread
    on: h1
    run: echo "unread=\$BATON_OUTPUT"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	assert_contains "$(reason big@h1)" "\$BATON_OUTPUT holds more than 1 MiB"
	assert_contains "$output" "[unread@h1] unread=/dev/null"
}

@test "continue_on_error as an expression is decided per host" {
	p=$(plan coehost <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: x
    on: [h1, h2, h3]
    continue_on_error: \${{ host.name == "h2" }}
    run: sleep 0.3; test "\${{ host.name }}" != h2
  - id: next
    run: echo next
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'tend("x@h1")["status"]' 'tend("x@h2")["status"]' 'tend("x@h3")["status"]' 'status("next")')" \
		$'success\nfailed\nsuccess\nsuccess'
}
