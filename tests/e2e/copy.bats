#!/usr/bin/env bats
# `copy` and `fetch` (plan-format.md section 3) on this machine: files and
# trees with links, modes, unchanged content left alone, failures that name
# the path, and nothing half-written left behind.

bats_require_minimum_version 1.5.0
load helpers

setup() { e2e_setup; }
teardown() { e2e_teardown; }

# tree DIR: a small tree with a nested directory, a symlink and an executable
tree() {
	mkdir -p "$1/sub/deeper"
	printf 'alpha\n' >"$1/a.txt"
	head -c 200000 /dev/urandom >"$1/sub/blob.bin"
	printf 'x' >"$1/sub/deeper/x"
	printf '#!/bin/sh\n' >"$1/run.sh"
	chmod 0755 "$1/run.sh"
	ln -s a.txt "$1/link"
}

# sums DIR: path, type, mode and content hash of every entry, sorted
sums() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r f; do
		if [ -L "$f" ]; then printf '%s link %s\n' "$f" "$(readlink "$f")"
		elif [ -d "$f" ]; then printf '%s dir %s\n' "$f" "$(stat -c %a "$f")"
		else printf '%s file %s %s\n' "$f" "$(stat -c %a "$f")" "$(sha256sum <"$f" | cut -d' ' -f1)"; fi
	done)
}

# inodes DIR: path, inode and mtime of every entry
inodes() { (cd "$1" && find . -mindepth 1 -printf '%p %i %T@\n' | LC_ALL=C sort); }

@test "copy: a file lands with its content and the mode asked; a second run changes nothing" {
	printf 'hello\n' >src.txt
	p=$(plan cp <<'EOF2'
vars: { m: "0640" }
steps:
  - copy: { src: src.txt, dest: "out/${{ vars.m }}.txt", mode: "${{ vars.m }}" }
EOF2
)
	mkdir out
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(cat out/0640.txt)" hello
	assert_eq "$(stat -c %a out/0640.txt)" 640 "mode"
	assert_eq "$(ev "$EV" "one('task.start')['command']")" "copy src.txt -> out/0640.txt"
	assert_eq "$(ev "$EV" "tend('copy-1')['changed']" "tend('copy-1')['bytes']" "one('step.start')['kind']")" \
		$'true\n6\ncopy'
	assert_match "$output" '^\[copy-1\] ✓ success in [0-9]+ms, 6 bytes sent$'
	assert_contains "$output" "1 succeeded, 0 failed"
	before=$(inodes out)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(ev "$EV" "tend('copy-1')['status']" "tend('copy-1')['changed']" "tend('copy-1')['bytes']")" \
		$'success\nfalse\n0'
	assert_match "$output" '^\[copy-1\] ✓ success in [0-9]+ms, unchanged$'
	assert_eq "$(inodes out)" "$before" "inode and mtime unchanged"
	# a new mode alone is a change, and rewrites nothing
	run b run "$p" --var m=0600 --output plain --events "$EV"
	assert_status 0
	assert_eq "$(stat -c %a out/0600.txt)" 600
}

@test "copy: a tree with a symlink, as a directory and as its contents (src/); a second run rewrites nothing" {
	tree files
	p=$(plan tree <<'EOF2'
steps:
  - id: whole
    copy: { src: files, dest: out }
  - id: contents
    copy: { src: files/, dest: flat }
EOF2
)
	mkdir out
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	ev_valid "$EV"
	assert_eq "$(sums out/files)" "$(sums files)" "the tree under out/files"
	assert_eq "$(sums flat)" "$(sums files)" "the contents in flat"
	assert_eq "$(readlink out/files/link)" a.txt "a link stays a link"
	assert_eq "$(ev "$EV" "tend('whole')['changed']" "tend('whole')['bytes']")" $'true\n200017'
	before=$(inodes out; inodes flat)
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" "tend('whole')['changed']" "tend('contents')['changed']" "tend('whole')['bytes']")" \
		$'false\nfalse\n0'
	assert_eq "$(inodes out; inodes flat)" "$before" "nothing rewritten"
	# a changed file is replaced, the rest left alone
	printf 'beta\n' >files/a.txt
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" "tend('whole')['changed']" "tend('whole')['bytes']")" $'true\n5'
	assert_eq "$(sums out/files)" "$(sums files)"
}

@test "copy: a missing destination directory, a missing source, no permission: clear failures, nothing left" {
	printf 'data\n' >src.txt
	mkdir locked && chmod 0555 locked
	p=$(plan bad <<EOF2
steps:
  - parallel:
    - id: nodir
      copy: { src: src.txt, dest: nowhere/sub/f.txt }
    - id: nosrc
      copy: { src: missing.txt, dest: out.txt }
    - id: denied
      copy: { src: src.txt, dest: locked/f.txt }
    mode: settle
EOF2
)
	run b run "$p" --output plain --events "$EV"
	chmod 0755 locked
	assert_status 1
	ev_valid "$EV"
	assert_contains "$(ev "$EV" "tend('parallel-1.nodir')['reason']")" "destination directory $E2E_TMP/nowhere/sub does not exist"
	assert_contains "$(ev "$EV" "tend('parallel-1.nosrc')['reason']")" "cannot read $E2E_TMP/missing.txt: no such file or directory"
	if [ "$(id -u)" != 0 ]; then
		assert_contains "$(ev "$EV" "tend('parallel-1.denied')['reason']")" "permission denied"
		assert_eq "$(ls -A locked)" "" "no temporary file left"
	fi
	assert_contains "$output" "destination directory $E2E_TMP/nowhere/sub does not exist"
}

@test "copy: a bad mode is a plan error; a mode from an expression is checked when the task starts" {
	printf 'x' >f
	p=$(plan mode <<'EOF2'
steps:
  - copy: { src: f, dest: g, mode: "0999" }
  - copy: { src: f, dest: g, modee: "0644" }
  - fetch: { src: f }
EOF2
)
	run b check "$p"
	assert_status 2
	assert_contains "$output" "mode.yaml:2:"
	assert_contains "$output" "'mode' must be octal permission bits such as \"0644\" or \"0755\", not '0999'"
	assert_contains "$output" "unknown key 'modee'"
	assert_contains "$output" "'fetch' needs a 'dest'"
	p=$(plan mode2 <<'EOF2'
vars: { m: rw }
steps:
  - copy: { src: f, dest: g, mode: "${{ vars.m }}" }
EOF2
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	assert_contains "$(ev "$EV" "tend('copy-1')['reason']")" "mode 'rw' is not octal permission bits"
	assert_file_absent g
}

@test "copy: a timeout stops a large copy and leaves no partial file; the temporary name is gone" {
	[ -x "$MAXRSS" ] || skip "maxrss helper not built (make build/maxrss)"
	head -c 200000000 /dev/zero >big
	p=$(plan slow <<'EOF2'
steps:
  - copy: { src: big, dest: out/big }
    timeout: 50ms
EOF2
)
	mkdir out
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" "tend('copy-1')['status']")" timeout
	assert_eq "$(ls -A out)" "" "neither the file nor its temporary name"
}

@test "copy: a 100 MB file streams in bounded memory" {
	[ -x "$MAXRSS" ] || skip "maxrss helper not built (make build/maxrss)"
	head -c 100000000 /dev/urandom >big
	p=$(plan big <<'EOF2'
steps:
  - copy: { src: big, dest: big.copy }
EOF2
)
	run --separate-stderr timeout 60 "$MAXRSS" "$BATON" run "$p" --output quiet
	assert_status 0
	assert_eq "$(sha256sum <big.copy)" "$(sha256sum <big)"
	rss=$(sed -n 's/.*maxrss_kib=\([0-9]*\).*/\1/p' <<<"$stderr")
	assert_le "$rss" 30000 "peak RSS (KiB)"
}

@test "fetch without a host: a plain copy into DEST/ (basename kept); a missing file fails clearly" {
	printf 'log\n' >app.log
	p=$(plan fetch <<'EOF2'
steps:
  - fetch: { src: app.log, dest: got }
  - fetch: { src: nothere.log, dest: got }
EOF2
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(cat got/app.log)" log
	assert_eq "$(ev "$EV" "one('task.start', task='fetch-1')['command']")" "fetch app.log -> got/"
	assert_contains "$(ev "$EV" "tend('fetch-2')['reason']")" "cannot read $E2E_TMP/nothere.log: no such file or directory"
}

@test "copy in the preview: the command as it will run, with the host" {
	p=$(plan pv <<'EOF2'
inventory: { hosts: { web1: { address: 127.0.0.1 } } }
steps:
  - copy: { src: app.tar, dest: /srv/app.tar, mode: "0644" }
    on: web1
  - fetch: { src: /var/log/app.log, dest: logs }
    on: web1
EOF2
)
	run b plan "$p"
	assert_status 0
	assert_contains "$output" "copy-1@web1  \$ copy app.tar -> web1:/srv/app.tar (mode 0644)"
	assert_contains "$output" "fetch-2@web1  \$ fetch web1:/var/log/app.log -> logs/web1/"
	assert_not_contains "$output" "shell: none"
	run b plan "$p" --output json
	assert_status 0
	assert_contains "$output" '"kind":"copy"'
	assert_contains "$output" '"copy":{"src":"app.tar","dest":"/srv/app.tar","mode":"0644"}'
	assert_contains "$output" '"fetch":{"src":"/var/log/app.log","dest":"logs","mode":null}'
}

@test "fetch into a destination that does not exist names it" {
	printf 'log\n' >app.log
	p=$(plan fetchnodir <<'EOF2'
steps:
  - fetch: { src: app.log, dest: nowhere/logs }
EOF2
)
	run b run "$p" --output plain --events "$EV"
	assert_status 1
	assert_contains "$(ev "$EV" "tend('fetch-1')['reason']")" "destination directory $E2E_TMP/nowhere does not exist"
}

@test "copy: temporaries a killed baton left are removed by the next copy there; others' and live ones are kept" {
	boot=$(tr -dc 0-9a-f </proc/sys/kernel/random/boot_id | head -c 8)
	sleep 60 &
	live=$!
	sh -c 'exit 0' &
	dead=$!
	wait "$dead"
	mkdir -p out/tree
	printf 'new\n' >app.cfg
	mkdir src && printf 'x\n' >src/f
	# beside the file: a dead pid of this boot (removed), a live pid (kept), another boot's recent (kept)
	# and old (removed), one that is not baton's (kept), and another file's (kept: not this copy's)
	: >"out/.app.cfg.baton-$boot-$dead-0"
	: >"out/.app.cfg.baton-$boot-$live-0"
	: >"out/.app.cfg.baton-0badf00d-123-0"
	: >"out/.app.cfg.baton-0badf00d-124-0" && touch -d '2 hours ago' "out/.app.cfg.baton-0badf00d-124-0"
	: >"out/.app.cfg.baton-notours"
	: >"out/.other.baton-$boot-$dead-0"
	# in a tree: any of a dead baton's
	: >"out/tree/.f.baton-$boot-$dead-3"
	ln -s nowhere "out/tree/.g.baton-$boot-$dead-l"
	p=$(plan sweep <<'EOF2'
steps:
  - copy: { src: app.cfg, dest: out/app.cfg }
  - copy: { src: src/, dest: out/tree }
EOF2
)
	run b run "$p" --output plain --events "$EV"
	kill "$live" 2>/dev/null || true
	assert_status 0
	assert_eq "$(cat out/app.cfg)" new
	assert_eq "$(cd out && ls -A | LC_ALL=C sort)" \
		"$(printf '%s\n' ".app.cfg.baton-$boot-$live-0" .app.cfg.baton-0badf00d-123-0 .app.cfg.baton-notours \
			".other.baton-$boot-$dead-0" app.cfg tree | LC_ALL=C sort)"
	assert_eq "$(ls -A out/tree)" "f"
}

@test "copy: baton killed halfway leaves the destination untouched; the next copy completes it and leaves no temporary" {
	head -c 400000000 /dev/zero >big
	mkdir out
	printf 'old\n' >out/big
	p=$(plan killed <<'EOF2'
steps:
  - copy: { src: big, dest: out/big }
EOF2
)
	"$BATON" run "$p" --output quiet </dev/null 3>&- &
	pid=$!
	for _ in $(seq 1 400); do
		compgen -G 'out/.big.baton-*' >/dev/null && break
		sleep 0.01
	done
	kill -KILL "$pid"
	wait "$pid" || true
	compgen -G 'out/.big.baton-*' >/dev/null || skip "the copy ended before it could be killed (too fast a disk)"
	assert_eq "$(cat out/big)" old "the destination as it was"
	run b run "$p" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(stat -c %s out/big)" 400000000
	assert_eq "$(ls -A out)" big "no temporary left"
}
