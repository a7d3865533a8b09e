#!/usr/bin/env bats
# known_hosts as ssh(1) reads it: every line (unreadable ones skipped and
# reported with FILE:LINE), @revoked, hashed names, any other key known for a
# host is a changed key, a file that cannot be read refuses every host, and
# the key type on file is the one negotiated. Against a real sshd on loopback
# (tests/ssh/harness.sh); needs root.

bats_require_minimum_version 1.5.0
load helpers
load ssh_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; }
teardown() { ssh_teardown; }

# this server's key, as a known_hosts line for NAME (default its [127.0.0.1]:PORT)
server_line() { printf '%s %s\n' "${1:-[127.0.0.1]:$SSH_PORT}" "$(cut -d' ' -f1,2 "$SSH_DIR/host_ed25519.pub")"; }
wrong_line() { printf '%s %s\n' "${1:-[127.0.0.1]:$SSH_PORT}" "$(cut -d' ' -f1,2 "$SSH_DIR/wrong_host_ed25519.pub")"; }

# kh_plan NAME MODE FILE [ON]: a plan whose step s touches $RT/ran-HOST on ON (default h1)
kh_plan() {
	plan "$1" <<EOF
ssh: { known_hosts: $2, known_hosts_file: "$3" }
steps:
  - id: s
    on: ${4:-h1}
    mode: settle
    run: touch "$RT/ran-\${{ host.name }}"
EOF
}

@test "known_hosts: unreadable lines are skipped and reported once each (FILE:LINE); a changed key after them is refused by accept-new, nothing appended" {
	kh="$BATS_TEST_TMPDIR/kh"
	{
		echo "justahost"
		printf 'x%.0s' $(seq 5000)
		echo
		echo "@bogus [127.0.0.1]:$SSH_PORT ssh-ed25519 AAAA"
		wrong_line
	} >"$kh"
	cp "$kh" "$kh.before"
	p=$(kh_plan garbage accept-new "$kh" fleet)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	[ -z "$(ls -A "$RT")" ] || fail "ran on a host whose key changed: $(ls "$RT")"
	cmp -s "$kh" "$kh.before" || fail "accept-new wrote to the file: $(diff "$kh.before" "$kh")"
	for h in h1 h2 h3; do
		r=$(reason "s@$h")
		assert_contains "$r" "host key changed" "s@$h"
		assert_contains "$r" "$kh:4 " "s@$h: the line with the other key"
		assert_contains "$r" "$kh:1 and 2 other lines could not be read" "s@$h: the skipped lines"
	done
	# one warning per skipped line, for the whole run (three hosts)
	for n in 1 2 3; do
		assert_eq "$(grep -c "warning: $kh:$n: " <<<"$stderr")" 1 "warnings for line $n in: $stderr"
	done
	assert_eq "$(grep -c "warning: $kh:" <<<"$stderr")" 3 "warnings in: $stderr"
	assert_line_has "$stderr" "$kh:1: " 'host name alone' "why line 1 was skipped"
	assert_line_has "$stderr" "$kh:3: " 'marker' "why line 3 was skipped"
}

@test "known_hosts: the right key after unreadable lines is found (strict)" {
	kh="$BATS_TEST_TMPDIR/kh"
	{
		echo "justahost"
		printf 'y%.0s' $(seq 5000)
		echo " ssh-ed25519"
		server_line
	} >"$kh"
	p=$(kh_plan good-after-garbage strict "$kh")
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	[ -e "$RT/ran-h1" ] || fail "strict did not find the key on line 3"
	assert_eq "$(grep -c "warning: $kh:" <<<"$stderr")" 2 "warnings in: $stderr"
}

@test "known_hosts: an @revoked key refuses the host under strict and accept-new, even when also listed; nothing appended" {
	kh="$BATS_TEST_TMPDIR/kh"
	{
		echo "@revoked * $(cut -d' ' -f1,2 "$SSH_DIR/host_ed25519.pub")"
		server_line
	} >"$kh"
	for mode in strict accept-new; do
		p=$(kh_plan "revoked-$mode" "$mode" "$kh")
		run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
		assert_status 1
		assert_file_absent "$RT/ran-h1" "$mode ran the command on a host whose key is revoked"
		assert_line_has "$(reason s@h1)" 'h1' "host key revoked.*@revoked in $kh:1" "$mode: the reason"
	done
	# revoked alone, accept-new: not a new key to add
	sed -i 2d "$kh"
	cp "$kh" "$kh.before"
	p=$(kh_plan revoked-only accept-new "$kh")
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_file_absent "$RT/ran-h1"
	cmp -s "$kh" "$kh.before" || fail "accept-new appended a revoked key"
}

@test "known_hosts: hashed names written by ssh-keygen -H match (strict), a hashed other key is a changed key" {
	kh="$BATS_TEST_TMPDIR/kh"
	server_line >"$kh"
	ssh-keygen -H -f "$kh" >/dev/null 2>&1
	rm -f "$kh.old"
	grep -q '^|1|' "$kh" || fail "ssh-keygen -H did not hash: $(cat "$kh")"
	p=$(kh_plan hashed strict "$kh")
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	[ -e "$RT/ran-h1" ] || fail "a hashed [127.0.0.1]:$SSH_PORT entry was not found"
	wrong_line >"$kh"
	ssh-keygen -H -f "$kh" >/dev/null 2>&1
	p=$(kh_plan hashed-wrong accept-new "$kh")
	rm -f "$RT/ran-h1"
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_file_absent "$RT/ran-h1"
	assert_contains "$(reason s@h1)" "host key changed"
}

@test "known_hosts: a host known with a key of another type is a changed key, as ssh(1) says (accept-new refuses it)" {
	ssh-keygen -q -t ecdsa -N '' -C '' -f "$BATS_TEST_TMPDIR/other_ecdsa" </dev/null >/dev/null
	kh="$BATS_TEST_TMPDIR/kh"
	printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$BATS_TEST_TMPDIR/other_ecdsa.pub")" >"$kh"
	cp "$kh" "$kh.before"
	# OpenSSH first: the same file, the same mode, refused
	run ssh -F /dev/null -i "$SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new \
		-o HostKeyAlgorithms=ssh-ed25519 -o UserKnownHostsFile="$kh" -o GlobalKnownHostsFile=/dev/null \
		-p "$SSH_PORT" batontest@127.0.0.1 true
	[ "$status" -ne 0 ] || fail "ssh(1) accepted a host known with another key"
	cmp -s "$kh" "$kh.before" || fail "ssh(1) wrote to the file"
	p=$(kh_plan othertype accept-new "$kh")
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_file_absent "$RT/ran-h1"
	assert_line_has "$(reason s@h1)" 'host key changed' "$kh:1 has another key for \\[127.0.0.1\\]:$SSH_PORT \\(ecdsa-sha2-nistp256\\)"
	cmp -s "$kh" "$kh.before" || fail "accept-new wrote to the file"
}

@test "known_hosts: a file that cannot be read refuses every host, naming the file and the error, under strict and accept-new" {
	kh="$BATS_TEST_TMPDIR/khdir"
	mkdir "$kh"
	for mode in strict accept-new; do
		p=$(kh_plan "unreadable-$mode" "$mode" "$kh" fleet)
		run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
		assert_status 1
		[ -z "$(ls -A "$RT")" ] || fail "$mode ran without a readable known_hosts: $(ls "$RT")"
		for h in h1 h2 h3; do
			r=$(reason "s@$h")
			assert_contains "$r" "cannot read the known hosts file $kh: Is a directory; refusing every host" "$mode s@$h"
			assert_not_contains "$r" "unknown" "$mode s@$h: a file that cannot be read says nothing about the key"
		done
	done
	[ -z "$(ls -A "$kh")" ] || fail "something was written into the directory"
	# a path through a file
	: >"$BATS_TEST_TMPDIR/plainfile"
	p=$(kh_plan notdir accept-new "$BATS_TEST_TMPDIR/plainfile/known_hosts")
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_file_absent "$RT/ran-h1"
	assert_contains "$(reason s@h1)" "Not a directory; refusing every host"
}

@test "known_hosts: a file that does not exist is empty: strict refuses the host as unknown, accept-new creates it (0600) with the key" {
	kh="$BATS_TEST_TMPDIR/absent_known_hosts"
	p=$(kh_plan absent-strict strict "$kh")
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_contains "$(reason s@h1)" "host key unknown"
	assert_file_absent "$kh" "strict created the file"
	p=$(kh_plan absent-new accept-new "$kh" fleet)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ls "$RT" | sort | paste -sd' ' -)" "ran-h1 ran-h2 ran-h3"
	assert_eq "$(stat -c %a "$kh")" 600 "mode of the file accept-new created"
	assert_eq "$(cat "$kh")" "$(server_line)" "one line for the three names of one address"
}

# second_sshd: another sshd with two host keys, ECDSA and ED25519 (libssh2's own
# preference is ECDSA); sets PORT2
second_sshd() {
	local d="$BATS_TEST_TMPDIR/sshd2" i
	mkdir -p "$d"
	ssh-keygen -q -t ecdsa -N '' -C '' -f "$d/host_ecdsa" </dev/null >/dev/null
	PORT2=$(free_port)
	sed -e "s/^Port .*/Port $PORT2/" -e "s|^PidFile .*|PidFile $d/sshd.pid|" \
		-e "s|^HostKey .*|HostKey $d/host_ecdsa\nHostKey $SSH_DIR/host_ed25519|" "$SSH_DIR/sshd_config" >"$d/sshd_config"
	bg /usr/sbin/sshd -D -f "$d/sshd_config" -E "$d/sshd.log"
	for ((i = 0; i < 100; i++)); do
		grep -q "Server listening on 127.0.0.1 port $PORT2" "$d/sshd.log" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "the second sshd did not start: $(cat "$d/sshd.log")"
}

@test "known_hosts: with several host keys, the type on file is the one negotiated (ED25519 known: no 'changed' for the ECDSA key)" {
	second_sshd
	cat >"$BATS_TEST_TMPDIR/inv2.yaml" <<EOF
hosts:
  two: { address: 127.0.0.1, port: $PORT2, user: batontest, identity: "$SSH_KEY" }
EOF
	kh="$BATS_TEST_TMPDIR/kh"
	server_line "[127.0.0.1]:$PORT2" >"$kh"
	p=$(kh_plan twokeys-ed strict "$kh" two)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv2.yaml" --output plain --events "$EV"
	assert_status 0
	[ -e "$RT/ran-two" ] || fail "strict refused a host whose ED25519 key is on file: $(reason s@two)"
	# and with only its ECDSA key on file, that one
	printf '[127.0.0.1]:%s %s\n' "$PORT2" "$(cut -d' ' -f1,2 "$BATS_TEST_TMPDIR/sshd2/host_ecdsa.pub")" >"$kh"
	rm -f "$RT/ran-two"
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv2.yaml" --output plain --events "$EV"
	assert_status 0
	[ -e "$RT/ran-two" ] || fail "strict refused a host whose ECDSA key is on file: $(reason s@two)"
}
