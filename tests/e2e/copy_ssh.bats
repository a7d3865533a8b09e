#!/usr/bin/env bats
# `copy` and `fetch` on hosts, against the real sshd on loopback
# (tests/ssh/harness.sh): SFTP on each host's own connection, unchanged
# content detected by sha256sum on the host, per-host failures that name
# the path, batches, and memory that stays bounded on a large file.
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

# remote_sums DIR: path, type, mode and hash of every entry of DIR (as root: the same files)
sums() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r f; do
		if [ -L "$f" ]; then printf '%s link %s\n' "$f" "$(readlink "$f")"
		elif [ -d "$f" ]; then printf '%s dir\n' "$f"
		else printf '%s file %s %s\n' "$f" "$(stat -c %a "$f")" "$(sha256sum <"$f" | cut -d' ' -f1)"; fi
	done)
}

inodes() { (cd "$1" && find . -mindepth 1 -printf '%p %i %T@\n' | LC_ALL=C sort); }

@test "copy on 3 hosts: a file lands on each, mode applied; a second run is changed:false for all" {
	head -c 5000000 /dev/urandom >app.bin
	p=$(plan cp <<EOF2
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: put
    on: fleet
    copy: { src: app.bin, dest: "$RT/\${{ host.name }}.bin", mode: "0640" }
EOF2
)
	run b run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	ssh_ev_check "$EV"
	for h in h1 h2 h3; do
		assert_eq "$(sha256sum <"$RT/$h.bin")" "$(sha256sum <app.bin)" "content on $h"
		assert_eq "$(stat -c '%a %U' "$RT/$h.bin")" "640 $SSH_HARNESS_USER" "mode and owner on $h"
		assert_eq "$(ev "$EV" "tend('put@$h')['changed']" "tend('put@$h')['bytes']")" $'true\n5000000'
		assert_eq "$(ev "$EV" "one('task.start', task='put@$h')['command']")" "copy app.bin -> $h:$RT/$h.bin"
	done
	assert_eq "$(ls -A "$RT" | grep -c baton)" 0 "no temporary file left"
	before=$(inodes "$RT")
	run b run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	for h in h1 h2 h3; do
		assert_eq "$(ev "$EV" "tend('put@$h')['changed']" "tend('put@$h')['bytes']")" $'false\n0' "second run on $h"
	done
	assert_eq "$(inodes "$RT")" "$before" "nothing rewritten"
}
