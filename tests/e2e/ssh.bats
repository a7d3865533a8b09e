#!/usr/bin/env bats
# Hosts over SSH, against a real sshd on loopback (tests/ssh/harness.sh):
# `on:`, inventories, host patterns, interpolation and environment, exit
# codes and signals, host keys, authentication, ~/.ssh/config, localhost and
# the dry run. Failures and cancellation: ssh_failures.bats; fan-out, limits,
# batches and plans/rolling-deploy.yaml: ssh_fanout.bats.
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

# ---- running on hosts ----

@test "on: a group runs the step once per host over SSH: ids STEP@HOST, plain prefixes, host in events" {
	p=$(plan greet <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: greet
    on: fleet
    run: echo "hello from \${{ host.name }} as \$(id -un)"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	for h in h1 h2 h3; do
		assert_contains "$output" "[greet@$h] hello from $h as batontest"
		assert_eq "$(ev "$EV" "one('task.start', task='greet@$h')['host']" "one('task.start', task='greet@$h')['step']")" \
			"$h"$'\n'greet "task.start host and step of greet@$h"
		assert_eq "$(ev "$EV" "tend('greet@$h')['status']" "tend('greet@$h')['exit_code']")" $'success\n0' "greet@$h"
	done
	# every output line of a host task carries its prefix
	while IFS= read -r line; do
		case "$line" in *"hello from"*) [[ "$line" == "[greet@h"[123]"] "* ]] || fail "unprefixed line: $line" ;; esac
	done <<<"$output"
	assert_eq "$(ev "$EV" 'sorted(starts())')" "greet@h1 greet@h2 greet@h3"
	assert_eq "$(ev "$EV" 'status("greet")' 'run_end()["status"]')" $'success\nsuccess'
	ssh_ev_check "$EV"
}

@test "an inline inventory, inventory: FILE, and --inventory FILE replacing the plan's" {
	p=$(plan inline <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
inventory:
  hosts:
$(host_line alpha)
$(host_line beta)
  groups:
    pair: [alpha, beta]
steps:
  - id: s
    on: pair
    run: echo "inline \${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[s@alpha] inline alpha"
	assert_contains "$output" "[s@beta] inline beta"

	p=$(plan fromfile <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
inventory: "$INV"
steps:
  - id: s
    on: h2
    run: echo "file \${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[s@h2] file h2"
	assert_eq "$(ev "$EV" 'starts()')" "s@h2"

	# --inventory replaces the inline one: its hosts h1..h3 exist, alpha does not
	p=$(plan replaced <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
inventory:
  hosts:
    h1: { address: 127.0.0.1, port: 1, user: nobody }
steps:
  - id: s
    on: h1
    run: echo "replaced \${{ host.port }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[s@h1] replaced $SSH_PORT"
}

@test "host.name, host.address, host.port, host.user and host.vars are interpolated (one shell word each)" {
	cat >"$BATS_TEST_TMPDIR/inv-vars.yaml" <<EOF
hosts:
$(host_line h1 'vars: { weight: 2, role: "web; touch pwned-h1" }')
$(host_line h2 'vars: { weight: 5, role: db }')
groups:
  fleet: [h1, h2]
EOF
	p=$(plan vars <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: v
    on: fleet
    run: echo "name=\${{ host.name }} addr=\${{ host.address }} port=\${{ host.port }} user=\${{ host.user }} weight=\${{ host.vars.weight }} role=" \${{ host.vars.role }}
EOF
)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv-vars.yaml" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[v@h1] name=h1 addr=127.0.0.1 port=$SSH_PORT user=batontest weight=2 role= web; touch pwned-h1"
	assert_contains "$output" "[v@h2] name=h2 addr=127.0.0.1 port=$SSH_PORT user=batontest weight=5 role= db"
	[ ! -e /home/batontest/pwned-h1 ] || fail "a host var's value was run as shell code"
}

@test "env, BATON_HOST, BATON_STEP, BATON_RUN_ID and BATON_ATTEMPT reach the remote command intact" {
	p=$(plan env <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
env:
  PLAIN: hello
  TRICKY: "it's \$HOME; \"quoted\" \`x\` \\\\ end"
steps:
  - id: e
    on: h2
    env: { STEPVAR: from-step }
    run: |
      printf 'PLAIN=%s\n' "\$PLAIN"
      printf 'TRICKY=%s\n' "\$TRICKY"
      printf 'STEPVAR=%s\n' "\$STEPVAR"
      printf 'HOST=%s STEP=%s ATTEMPT=%s\n' "\$BATON_HOST" "\$BATON_STEP" "\$BATON_ATTEMPT"
      printf 'RUN_ID=%s\n' "\$BATON_RUN_ID"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[e@h2] PLAIN=hello"
	assert_contains "$output" "[e@h2] TRICKY=it's \$HOME; \"quoted\" \`x\` \\ end"
	assert_contains "$output" "[e@h2] STEPVAR=from-step"
	assert_contains "$output" "[e@h2] HOST=h2 STEP=e ATTEMPT=1"
	run_id=$(ev "$EV" 'E[0]["run"]')
	assert_contains "$output" "[e@h2] RUN_ID=$run_id"
}

@test "stdout and stderr of a remote command stay separate streams" {
	p=$(plan streams <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: h1
    run: echo to-out; echo to-err >&2; echo out-again
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'lines("s@h1", "stdout")')" "to-out out-again"
	assert_eq "$(ev "$EV" 'lines("s@h1", "stderr")')" "to-err"
	# the same through --output json (the event stream on stdout)
	run --separate-stderr sb run "$p" --inventory "$INV" --output json
	assert_status 0
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/stdout.jsonl"
	EV="$BATS_TEST_TMPDIR/stdout.jsonl"
	assert_eq "$(ev "$EV" 'one("task.start", task="s@h1")["host"]' 'lines("s@h1", "stderr")')" $'h1\nto-err'
	ssh_ev_check "$EV"
}

@test "remote output is live: a line arrives while the command still runs" {
	p=$(plan live <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: h1
    run: echo early; echo early-err >&2; sleep 4; echo late
EOF
)
	sb run "$p" --inventory "$INV" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	SSH_BG_PIDS="$SSH_BG_PIDS $pid"
	wait_for_event "$EV" task.start 10
	for _ in $(seq 60); do
		grep -q '"line":"early"' "$EV" && break
		sleep 0.05
	done
	# the first line is out while the command is still sleeping
	grep -q '"line":"early"' "$EV" || fail "stdout line not streamed live"
	kill -0 "$pid" 2>/dev/null || fail "baton ended before its output was checked"
	wait_pid "$pid" 15
	assert_eq "$WAIT_STATUS" 0
	assert_eq "$(ev "$EV" 'lines("s@h1", "stdout")' 'lines("s@h1", "stderr")')" $'early late\nearly-err'
}

@test "a remote exit code is reported and fails the step (exit 1)" {
	p=$(plan exitcode <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: x
    on: h1
    run: echo before; exit 3
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("x@h1")["status"]' 'tend("x@h1")["exit_code"]' 'tend("x@h1")["signal"]')" \
		$'failed\n3\nnull' "task.end of x@h1"
	assert_contains "$output" "[x@h1] before"
	assert_eq "$(ev "$EV" 'status("x")')" failed
}

@test "a remote command killed by a signal reports the signal" {
	p=$(plan signal <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: k
    on: h1
    run: kill -TERM \$\$
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_eq "$(ev "$EV" 'tend("k@h1")["status"]' 'tend("k@h1")["signal"]')" $'failed\n15' "task.end of k@h1"
	# (not all_text: the plain output shows the command, kill -TERM, itself)
	assert_imatch "$(reason k@h1)" 'signal 15|SIGTERM' "the failure's reason names the signal"
}

@test "host patterns: glob, exclusion, list, all; --limit narrows every on:" {
	p=$(plan patterns <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - { id: glob, on: "h*", run: "true" }
  - { id: excl, on: [fleet, "!h2"], run: "true" }
  - { id: list, on: [h3, h1], run: "true" }
  - { id: every, on: all, run: "true" }
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'sorted(e["task"] for e in of("task.start", step="glob"))')" "glob@h1 glob@h2 glob@h3"
	assert_eq "$(ev "$EV" 'sorted(e["task"] for e in of("task.start", step="excl"))')" "excl@h1 excl@h3"
	assert_eq "$(ev "$EV" 'sorted(e["task"] for e in of("task.start", step="list"))')" "list@h1 list@h3"
	assert_eq "$(ev "$EV" 'sorted(e["task"] for e in of("task.start", step="every"))')" "every@h1 every@h2 every@h3"

	run --separate-stderr sb run "$p" --inventory "$INV" --limit h2 --output quiet --events "$EV"
	assert_status 0
	# excl and list match no host once narrowed to h2: they run nothing
	assert_eq "$(ev "$EV" 'sorted(starts())')" "every@h2 glob@h2" "--limit h2: only h2's tasks"

	run --separate-stderr sb run "$p" --inventory "$INV" --limit '!h1' --output quiet --events "$EV"
	assert_status 0
	assert_eq "$(ev "$EV" 'sorted(e["task"] for e in of("task.start", step="every"))')" "every@h2 every@h3" "--limit !h1"
}

@test "an on: pattern that matches no host is a plan error (exit 2), nothing connects" {
	before=$(connections_seen)
	p=$(plan nosuch <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - { id: ok, on: h1, run: "true" }
  - { id: bad, on: nosuchhost, run: "true" }
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain
	assert_status 2
	assert_contains "$output$stderr" "nosuchhost"
	assert_match "$output$stderr" ':[0-9]+:[0-9]+: error: ' "a FILE:LINE:COL: error: diagnostic"
	assert_eq "$(connections_seen)" "$before" "connections to sshd"
}

# ---- host keys ----

@test "known_hosts strict: an unknown host key refuses the host, nothing runs there, the message says why" {
	: >"$BATS_TEST_TMPDIR/empty_known_hosts"
	p=$(plan strict-unknown <<EOF
ssh: { known_hosts: strict, known_hosts_file: "$BATS_TEST_TMPDIR/empty_known_hosts" }
steps:
  - id: s
    on: h1
    run: touch "$RT/ran-on-\${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_file_absent "$RT/ran-on-h1" "the command ran on a host whose key is unknown"
	assert_eq "$(ev "$EV" 'tend("s@h1")["status"]')" failed
	text=$(all_text)
	assert_line_has "$text" 'h1' 'unknown|not known|not (found )?in|no (host )?key' "the error names h1 and says the key is unknown"
	assert_contains "$text" "$BATS_TEST_TMPDIR/empty_known_hosts" "the error names the known_hosts file"
	[ ! -s "$BATS_TEST_TMPDIR/empty_known_hosts" ] || fail "strict mode wrote to the known_hosts file"
}

@test "known_hosts strict: a changed host key refuses the host; the message gives the known_hosts file and line" {
	kh="$BATS_TEST_TMPDIR/changed_known_hosts"
	{
		echo "# earlier entries"
		echo "[127.0.0.1]:1 $(cut -d' ' -f1,2 "$SSH_DIR/host_ed25519.pub")"
		cat "$SSH_WRONG_KNOWN_HOSTS" # line 3: this server's name, another key
	} >"$kh"
	p=$(plan strict-changed <<EOF
ssh: { known_hosts_file: "$kh" }
steps:
  - id: s
    on: h1
    run: touch "$RT/ran-on-\${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_file_absent "$RT/ran-on-h1" "the command ran on a host whose key changed"
	text=$(all_text)
	assert_line_has "$text" 'h1' 'changed|mismatch|does not match|differs' "the error names h1 and says the key changed"
	assert_imatch "$text" "$kh(:| line |, line |:line )3([^0-9]|$)|line 3" "the error gives the file and line 3"
	assert_contains "$text" "$kh"
	# the whole advice survives into the events: what to run if the change is expected
	assert_contains "$(ev "$EV" 'tend("s@h1")["reason"]')" "ssh-keygen -R"
}

@test "known_hosts accept-new: an unknown key is accepted and appended in OpenSSH format; a changed key is still refused" {
	kh="$BATS_TEST_TMPDIR/new_known_hosts"
	: >"$kh"
	p=$(plan accept-new <<EOF
ssh: { known_hosts: accept-new, known_hosts_file: "$kh" }
steps:
  - id: s
    on: h1
    run: touch "$RT/ran-on-\${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	[ -e "$RT/ran-on-h1" ] || fail "accept-new did not run the command"
	assert_eq "$(grep -c . "$kh")" 1 "lines in the known_hosts file after accept-new"
	assert_contains "$(cat "$kh")" "$(cut -d' ' -f2 "$SSH_DIR/host_ed25519.pub")" "the server's key in the file"
	# OpenSSH accepts what baton wrote, strictly
	run ssh -i "$SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
		-o UserKnownHostsFile="$kh" -o GlobalKnownHostsFile=/dev/null -p "$SSH_PORT" batontest@127.0.0.1 echo ok
	assert_status 0
	# and so does baton in strict mode
	sed -i 's/accept-new/strict/' "$p"
	rm -f "$RT/ran-on-h1"
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	[ -e "$RT/ran-on-h1" ] || fail "strict mode did not accept the key accept-new wrote"

	# a changed key is not "new"
	cp "$SSH_WRONG_KNOWN_HOSTS" "$kh"
	sed -i 's/known_hosts: strict/known_hosts: accept-new/' "$p"
	rm -f "$RT/ran-on-h1"
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 1
	assert_file_absent "$RT/ran-on-h1" "accept-new ran the command on a host whose key changed"
	assert_eq "$(cat "$kh")" "$(cat "$SSH_WRONG_KNOWN_HOSTS")" "accept-new rewrote a changed key"
}

@test "known_hosts off: runs without checking the host key" {
	: >"$BATS_TEST_TMPDIR/empty_known_hosts"
	p=$(plan off <<EOF
ssh: { known_hosts: "off", known_hosts_file: "$BATS_TEST_TMPDIR/empty_known_hosts" }
steps:
  - id: s
    on: h1
    run: touch "$RT/ran-on-\${{ host.name }}"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	[ -e "$RT/ran-on-h1" ] || fail "known_hosts off did not run the command"
	# also with a known_hosts that has another key for this host
	rm -f "$RT/ran-on-h1"
	sed -i "s|$BATS_TEST_TMPDIR/empty_known_hosts|$SSH_WRONG_KNOWN_HOSTS|" "$p"
	run --separate-stderr sb run "$p" --inventory "$INV" --output plain --events "$EV"
	assert_status 0
	[ -e "$RT/ran-on-h1" ] || fail "known_hosts off refused a changed key"
}

# ---- authentication ----

# an inventory of h1 with no identity
noid_inventory() {
	cat >"$BATS_TEST_TMPDIR/inv-noid.yaml" <<EOF
hosts:
  h1: { address: 127.0.0.1, port: $SSH_PORT, user: batontest }
EOF
}

@test "ssh-agent authenticates when no identity is configured" {
	noid_inventory
	sock="$BATS_TEST_TMPDIR/agent.sock"
	ssh-agent -a "$sock" -s >"$BATS_TEST_TMPDIR/agent.env" 3>&- </dev/null
	agent_pid=$(sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p' "$BATS_TEST_TMPDIR/agent.env")
	SSH_BG_PIDS="$SSH_BG_PIDS $agent_pid"
	SSH_AUTH_SOCK="$sock" ssh-add -q "$SSH_KEY" </dev/null
	p=$(plan agent <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: h1
    run: echo "agent ok on \${{ host.name }}"
EOF
)
	SSH_AUTH_SOCK="$sock" run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv-noid.yaml" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[s@h1] agent ok on h1"
}

@test "ssh.identity is used for a host without its own identity" {
	noid_inventory
	p=$(plan identity <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS", identity: "$SSH_KEY" }
steps:
  - id: s
    on: h1
    run: echo "identity ok"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv-noid.yaml" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[s@h1] identity ok"
}

@test "a wrong identity and no agent fail that host with an authentication error naming it" {
	cat >"$BATS_TEST_TMPDIR/inv-wrong.yaml" <<EOF
hosts:
  locked: { address: 127.0.0.1, port: $SSH_PORT, user: batontest, identity: "$SSH_DIR/other_ed25519" }
EOF
	p=$(plan wrongkey <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: locked
    run: touch "$RT/ran"
EOF
)
	run --separate-stderr sb run "$p" --inventory "$BATS_TEST_TMPDIR/inv-wrong.yaml" --output plain --events "$EV"
	assert_status 1
	assert_file_absent "$RT/ran"
	assert_eq "$(ev "$EV" 'tend("s@locked")["status"]')" failed
	assert_line_has "$(all_text)" 'locked' 'authenticat' "the error names the host and says authentication failed"
}

# ---- ~/.ssh/config ----

write_ssh_config() {
	cat >"$HOME/.ssh/config" <<EOF
Host myalias
    HostName 127.0.0.1
    Port $SSH_PORT
    User batontest
    IdentityFile $SSH_KEY

Host behind
    HostName 127.0.0.1
    Port $SSH_PORT
    User batontest
    IdentityFile $SSH_KEY
    ProxyJump myalias
EOF
	chmod 600 "$HOME/.ssh/config"
}

@test "~/.ssh/config: a name not in the inventory is resolved through Host, HostName, Port, User, IdentityFile" {
	write_ssh_config
	p=$(plan alias <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: myalias
    run: echo "via alias \${{ host.name }} \${{ host.address }} \${{ host.port }} \$(id -un)"
EOF
)
	run --separate-stderr sb run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[s@myalias] via alias myalias 127.0.0.1 $SSH_PORT batontest"
}

@test "~/.ssh/config: ProxyJump reaches a host through a jump host (a direct-tcpip channel)" {
	write_ssh_config
	before=$(accepted_logins)
	p=$(plan jump <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: behind
    run: echo "behind the jump \${{ host.name }}"
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 0
	assert_contains "$output" "[s@behind] behind the jump behind"
	# two logins: the jump host, then the target through the tunnel
	assert_eq "$(($(accepted_logins) - before))" 2 "logins for one command through a jump host"
	# the jump host's connection must not hold the run until its next keepalive (15 s)
	assert_prompt_end "$elapsed" 5000
}

@test "inventory proxy_jump: a host reached through a jump given by the inventory, and through a chain of two (no ~/.ssh/config)" {
	rm -f "$HOME/.ssh/config"
	before=$(accepted_logins)
	p=$(plan invjump <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
inventory:
  defaults: { user: batontest, identity: "$SSH_KEY" }
  hosts:
    gate: { address: 127.0.0.1, port: $SSH_PORT }
    gate2: { address: 127.0.0.1, port: $SSH_PORT }
    inner: { address: 127.0.0.1, port: $SSH_PORT, proxy_jump: gate }
    deeper: { address: 127.0.0.1, port: $SSH_PORT, proxy_jump: "gate,batontest@127.0.0.1:$SSH_PORT" }
steps:
  - id: s
    on: [inner, deeper]
    run: echo "reached \${{ host.name }}"
EOF
)
	run --separate-stderr sb plan "$p" --output json
	assert_status 0
	assert_eq "$(jq -r '.steps[0].on.hosts[] | "\(.name) \(.via)"' <<<"$output")" \
		"inner gate"$'\n'"deeper gate,batontest@127.0.0.1:$SSH_PORT"
	run --separate-stderr sb run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[s@inner] reached inner"
	assert_contains "$output" "[s@deeper] reached deeper"
	# gate once (it carries both), inner through it, the chain's last hop through gate, deeper through that hop
	assert_eq "$(($(accepted_logins) - before))" 4 "logins through the inventory's jumps"
}

@test "~/.ssh/config: Match host applies its User (known defect 5), Include is read" {
	mkdir -p "$HOME/.ssh/conf.d"
	cat >"$HOME/.ssh/config" <<EOF
Host matched
    HostName 127.0.0.1
Include conf.d/*.conf
Match host 127.0.0.1 user *,!nobody
    User batontest
Host *
    User wronguser
EOF
	printf 'Host matched\n    Port %s\n    IdentityFile %s\n' "$SSH_PORT" "$SSH_KEY" >"$HOME/.ssh/conf.d/10-port.conf"
	chmod 600 "$HOME/.ssh/config" "$HOME/.ssh/conf.d/10-port.conf"
	p=$(plan matchhost <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: matched
    run: echo "as \$(id -un) on port \${{ host.port }}"
EOF
)
	run --separate-stderr sb run "$p" --output plain --events "$EV"
	assert_status 0
	assert_contains "$output" "[s@matched] as batontest on port $SSH_PORT"
}

# assert_prompt_end ELAPSED_MS MAX_MS: the run (in $EV) took at most MAX_MS
# by the wall clock, and its run.end came within 2.5 s of its last task.end:
# no connection held the loop once the work was done (a jump host's
# keepalive interval is 15 s).
assert_prompt_end() {
	local lag
	lag=$(ev "$EV" 'ms(run_end()) - max(ms(e) for e in of("task.end"))')
	assert_le "$lag" 2500 "ms from the last task.end to run.end"
	assert_le "$1" "$2" "ms for the whole run"
}

# jump_config JUMP_PORT N [KEY]: ~/.ssh/config with host jump (this sshd, or
# a proxy in front of it, on JUMP_PORT) and b1..bN (this sshd, logging in
# with KEY, default the accepted one) reached through it; $KH a known_hosts
# with the server's key under JUMP_PORT too.
jump_config() {
	local i
	{
		printf 'Host jump\n    HostName 127.0.0.1\n    Port %s\n    User batontest\n    IdentityFile %s\n' "$1" "$SSH_KEY"
		for ((i = 1; i <= $2; i++)); do
			printf 'Host b%s\n    HostName 127.0.0.1\n    Port %s\n    User batontest\n    IdentityFile %s\n    ProxyJump jump\n' \
				"$i" "$SSH_PORT" "${3:-$SSH_KEY}"
		done
	} >"$HOME/.ssh/config"
	chmod 600 "$HOME/.ssh/config"
	KH="$BATS_TEST_TMPDIR/known_hosts"
	{ cat "$SSH_KNOWN_HOSTS"; sed "s/^\[127.0.0.1\]:$SSH_PORT /[127.0.0.1]:$1 /" "$SSH_KNOWN_HOSTS"; } >"$KH"
}

@test "ProxyJump: three hosts behind one jump host, ending at different times; the run ends with the last of them" {
	jump_config "$SSH_PORT" 3
	before=$(accepted_logins)
	p=$(plan jump3 <<EOF
ssh: { known_hosts_file: "$KH" }
steps:
  - id: s
    on: [b1, b2, b3]
    run: case \${{ host.name }} in b1) d=0.1 ;; b2) d=0.4 ;; *) d=0.8 ;; esac; sleep \$d; echo "done on \${{ host.name }}"
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 0
	for h in b1 b2 b3; do
		assert_contains "$output" "[s@$h] done on $h"
	done
	# one jump connection carries the three
	assert_eq "$(($(accepted_logins) - before))" 4 "logins: the jump host once, then each target"
	assert_prompt_end "$elapsed" 6000
}

@test "ProxyJump: commands timing out on three hosts behind one jump host are killed there, and the run ends promptly" {
	jump_config "$SSH_PORT" 3
	p=$(plan jumptimeout <<EOF
ssh: { known_hosts_file: "$KH" }
steps:
  - id: s
    on: [b1, b2, b3]
    mode: settle
    timeout: 1s
    run: echo started; sleep 300.$M
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 1
	assert_eq "$(ev "$EV" '[tend("s@" + h)["status"] for h in ("b1", "b2", "b3")]')" "timeout timeout timeout"
	# a task ends only once its group is gone there
	assert_remote_gone "^sleep 300\\.$M" "remote sleeps left when the run ended"
	assert_prompt_end "$elapsed" 7000
}

@test "ProxyJump: a host behind a chain of two jump hosts runs its command, and the run ends promptly" {
	jump_config "$SSH_PORT" 1
	# b1 -> j2 -> jump
	sed -i 's/^    ProxyJump jump$/    ProxyJump j2/' "$HOME/.ssh/config"
	printf 'Host j2\n    HostName 127.0.0.1\n    Port %s\n    User batontest\n    IdentityFile %s\n    ProxyJump jump\n' \
		"$SSH_PORT" "$SSH_KEY" >>"$HOME/.ssh/config"
	before=$(accepted_logins)
	p=$(plan jumpchain <<EOF
ssh: { known_hosts_file: "$KH" }
steps:
  - id: s
    on: b1
    run: echo "at the end of the chain"
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 0
	assert_contains "$output" "[s@b1] at the end of the chain"
	assert_eq "$(($(accepted_logins) - before))" 3 "logins: jump, j2 through it, b1 through j2"
	# neither jump host holds the run: the one two hops away neither
	assert_prompt_end "$elapsed" 5000
}

@test "ProxyJump: a host behind the jump host that refuses the key fails, and the run ends promptly" {
	jump_config "$SSH_PORT" 1 "$SSH_DIR/other_ed25519"
	p=$(plan jumpauth <<EOF
ssh: { known_hosts_file: "$KH" }
steps:
  - id: s
    on: b1
    run: touch "$RT/ran"
EOF
)
	t0=$(now_ms)
	run --separate-stderr sb run "$p" --output plain --events "$EV"
	elapsed=$(($(now_ms) - t0))
	assert_status 1
	assert_file_absent "$RT/ran"
	assert_line_has "$(reason s@b1)" 'b1' 'authenticat' "the reason names the host and says authentication failed"
	# the jump host's connection, healthy, carries nothing any more: it does not hold the run
	assert_prompt_end "$elapsed" 5000
}

# jump_broken_run [SSH_SETTING]: starts, in the background (pid in $pid), a run of
# `sleep 300.$M` on b1 and b2, reached through host jump, itself reached
# through a TCP proxy in front of sshd (PROXY_PID, tcp_ctl); returns once
# both sleeps run there.
jump_broken_run() {
	tcp_proxy "$SSH_PORT"
	jump_config "$TCP_PORT" 2
	p=$(plan jumpbroken <<EOF
ssh: { known_hosts_file: "$KH"${1:+, $1} }
steps:
  - id: s
    on: [b1, b2]
    mode: settle
    run: echo started; sleep 300.$M
EOF
)
	sb run "$p" --output plain --events "$EV" >out.txt 2>&1 3>&- &
	pid=$!
	SSH_BG_PIDS="$SSH_BG_PIDS $pid"
	wait_remote "^sleep 300\\.$M" 2 10
	# and baton knows both process groups (task.process): a group whose number was
	# still on its way when the link broke cannot be ended through a new connection
	local i
	for ((i = 0; i < 200; i++)); do
		[ "$(grep -c '"type":"task.process"' "$EV" 2>/dev/null)" -ge 2 ] && return 0
		sleep 0.05
	done
	fail "baton did not learn both remote process groups within 10 s"
}

@test "ProxyJump: the jump host's connection cut mid-run fails the tasks behind it at once; a new one ends their processes" {
	jump_broken_run
	tcp_ctl cut
	t0=$(now_ms)
	wait_pid "$pid" 15
	elapsed=$(($(now_ms) - t0))
	assert_eq "$WAIT_STATUS" 1 "exit status after the jump host's connection was cut"
	assert_eq "$(ev "$EV" '[tend("s@" + h)["status"] for h in ("b1", "b2")]')" "failed failed"
	# ended through a fresh connection to the jump host, before the run ended
	assert_remote_gone "^sleep 300\\.$M" "remote sleeps left when the run ended"
	assert_line_has "$(reason s@b1)" 'the jump host jump is gone' 'connection lost' "the reason blames the jump host, not the tunnel"
	assert_prompt_end "$elapsed" 6000
}

@test "ProxyJump: a jump host gone for good mid-run fails the tasks behind it, and the run ends promptly" {
	jump_broken_run
	kill -KILL "$PROXY_PID"
	wait "$PROXY_PID" 2>/dev/null || true
	t0=$(now_ms)
	wait_pid "$pid" 15
	elapsed=$(($(now_ms) - t0))
	assert_eq "$WAIT_STATUS" 1 "exit status after the jump host went away"
	assert_eq "$(ev "$EV" '[tend("s@" + h)["status"] for h in ("b1", "b2")]')" "failed failed"
	assert_line_has "$(reason s@b2)" 'the jump host jump is gone' 'connection lost' "the reason blames the jump host, not the tunnel"
	# (what runs behind it cannot be reached any more: teardown kills it)
	assert_prompt_end "$elapsed" 6000
}

@test "ProxyJump: a jump host gone silent mid-run (keepalive 1s) is declared lost; a new connection ends what ran behind it" {
	jump_broken_run "keepalive: 1s"
	# its connection stops forwarding, open both ways (a partition); new connections flow
	tcp_ctl stall
	t0=$(now_ms)
	wait_pid "$pid" 20
	elapsed=$(($(now_ms) - t0))
	assert_eq "$WAIT_STATUS" 1 "exit status after the jump host went silent"
	assert_eq "$(ev "$EV" '[tend("s@" + h)["status"] for h in ("b1", "b2")]')" "failed failed"
	# not through the silent connection: through a new one
	assert_remote_gone "^sleep 300\\.$M" "remote sleeps left when the run ended"
	assert_line_has "$(reason s@b1)" 'the jump host jump is gone' 'keepalive' "the reason blames the silent jump host"
	# 3 missed intervals, one for a last keepalive, at most one more for the jump host's own verdict
	assert_prompt_end "$elapsed" 9000
}

# ---- local and dry run ----

@test "localhost without an inventory entry runs locally, no SSH needed" {
	before=$(connections_seen)
	p=$(plan local <<EOF
steps:
  - id: l
    on: localhost
    run: touch "$BATS_TEST_TMPDIR/local-marker"; echo "local as \$(id -un)"
EOF
)
	run --separate-stderr sb run "$p" --output plain --events "$EV"
	assert_status 0
	[ -e "$BATS_TEST_TMPDIR/local-marker" ] || fail "the command did not run on this machine"
	assert_contains "$output" "local as $(id -un)"
	assert_eq "$(connections_seen)" "$before" "connections to sshd"
}

@test "baton plan and run --dry-run show the hosts of an on: step and connect to nothing" {
	before=$(connections_seen)
	p=$(plan dry <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: deploy
    on: fleet
    batch: { size: 2 }
    run: touch "$RT/ran-\${{ host.name }}"
EOF
)
	run --separate-stderr sb plan "$p" --inventory "$INV"
	assert_status 0
	for h in h1 h2 h3; do assert_contains "$output" "$h"; done
	assert_contains "$output" "deploy"
	run --separate-stderr sb run "$p" --inventory "$INV" --dry-run --output plain
	assert_status 0
	for h in h1 h2 h3; do assert_contains "$output" "$h"; done
	sleep 0.2 # sshd logs a connection as it accepts it
	assert_eq "$(connections_seen)" "$before" "connections to sshd during the dry runs"
	[ -z "$(ls -A "$RT")" ] || fail "a dry run ran something: $(ls "$RT")"
}

# ---- sanitizers ----

@test "ASan: hosts that succeed, fail, and are refused, with no sanitizer report" {
	[ -x "$BATON_ASAN" ] || skip "no ASan build at $BATON_ASAN"
	dead=$(free_port)
	cat >"$BATS_TEST_TMPDIR/inv-mixed.yaml" <<EOF
hosts:
$(host_line h1)
$(host_line h2)
    dead: { address: 127.0.0.1, port: $dead, user: batontest, identity: "$SSH_KEY" }
    locked: { address: 127.0.0.1, port: $SSH_PORT, user: batontest, identity: "$SSH_DIR/other_ed25519" }
EOF
	p=$(plan asan <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: s
    on: all
    mode: settle
    run: echo "out \${{ host.name }}"; echo err >&2; test \${{ host.name }} != h2
EOF
)
	run --separate-stderr b_asan run "$p" --inventory "$BATS_TEST_TMPDIR/inv-mixed.yaml" --output plain --events "$EV"
	assert_status 1
	assert_not_contains "$stderr" "ERROR: AddressSanitizer"
	assert_not_contains "$stderr" "ERROR: LeakSanitizer"
	assert_not_contains "$stderr" "runtime error:"
	assert_eq "$(ev "$EV" '[tend("s@" + h)["status"] for h in ("h1", "h2", "dead", "locked")]')" \
		"success failed failed failed"
}
