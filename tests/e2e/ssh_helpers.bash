# shellcheck disable=SC2034 # INV, RT, M, TCP_PORT, ... are for the tests

# Helpers for the SSH end-to-end tests (ssh.bats, ssh_failures.bats,
# ssh_fanout.bats): one throwaway sshd on loopback per test file
# (tests/ssh/harness.sh), and a few misbehaving TCP endpoints
# (tests/ssh/tcp.py). Load after helpers:
#
#     load helpers
#     load ssh_helpers
#     setup_file() { ssh_setup_file; }
#     teardown_file() { ssh_teardown_file; }
#     setup() { ssh_setup; }
#     teardown() { ssh_teardown; }
#
# Every test then has:
#   INV   an inventory: h1..h3 → the harness's sshd, in group fleet
#   RT    a scratch directory the remote user (batontest) can write
#   HOME  an empty home (no ~/.ssh/config, no keys): baton sees only what a test puts there
#   M     a number unique to the test, for remote `sleep 300.$M` processes
# and no SSH_AUTH_SOCK (a test that wants an agent starts one).

SSH_TESTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../ssh" && pwd)"
# shellcheck source=tests/ssh/harness.sh
. "$SSH_TESTS_DIR/harness.sh"

ssh_setup_file() {
	local why
	export SSH_SKIP=
	if ! why="$(ssh_harness_can_run)"; then
		# bats 1.8 cannot skip from setup_file: every test skips in ssh_setup
		export SSH_SKIP="$why"
		return 0
	fi
	if ! ssh_harness_start "$BATS_FILE_TMPDIR/sshd" >"$BATS_FILE_TMPDIR/harness.log" 2>&1; then
		echo "ssh harness failed to start:" >&2
		cat "$BATS_FILE_TMPDIR/harness.log" >&2
		return 1
	fi
}

ssh_teardown_file() {
	[ -z "${SSH_SKIP:-}" ] || return 0
	ssh_harness_stop >/dev/null 2>&1 || true
}

ssh_setup() {
	if [ -n "${SSH_SKIP:-}" ]; then
		skip "$SSH_SKIP"
	fi
	[ -n "${SSH_PORT:-}" ] || {
		echo "no sshd: ssh_setup_file did not run or failed" >&2
		return 1
	}
	e2e_setup || return 1
	export NO_COLOR=1
	unset SSH_AUTH_SOCK SSH_AGENT_PID
	export HOME="$BATS_TEST_TMPDIR/home"
	mkdir -p "$HOME/.ssh" && chmod 700 "$HOME" "$HOME/.ssh"
	M=$E2E_MARK
	RT="$(mktemp -d /tmp/baton-ssh-e2e.XXXXXX)" || return 1
	chmod 1777 "$RT"
	INV="$BATS_TEST_TMPDIR/inventory.yaml"
	ssh_harness_inventory "$INV" 3 || return 1
	SSH_BG_PIDS=""
}

ssh_teardown() {
	local p
	for p in ${SSH_BG_PIDS:-}; do
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [ -n "${M:-}" ] && id "$SSH_HARNESS_USER" >/dev/null 2>&1; then
		pkill -KILL -u "$SSH_HARNESS_USER" -f -- "$M" 2>/dev/null || true
	fi
	if [ -n "${RT:-}" ] && [ -d "$RT" ]; then
		rm -rf "$RT"
	fi
	e2e_teardown
}

# sb ARGS...: run baton (bounded in time), as `b` does.
sb() { b "$@"; }

# bg CMD...: start CMD in the background (fd 3 closed, so bats never waits
# for it); its pid is in BG_PID and teardown kills it.
bg() {
	"$@" </dev/null 3>&- &
	BG_PID=$!
	SSH_BG_PIDS="$SSH_BG_PIDS $BG_PID"
}

# wait_file FILE [SECONDS]: poll until FILE exists and is not empty.
wait_file() {
	local i n=$((${2:-5} * 20))
	for ((i = 0; i < n; i++)); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	fail "$1 did not appear in ${2:-5} s"
}

# free_port: a port on 127.0.0.1 that nothing listens on.
free_port() { "$E2E_PY" "$SSH_TESTS_DIR/tcp.py" freeport; }

# tcp_silent: a listener that accepts and never speaks; sets TCP_PORT.
# Accepted connections are counted, one line each, in $BATS_TEST_TMPDIR/silent.port.conns.
tcp_silent() {
	local pf="$BATS_TEST_TMPDIR/silent.port"
	bg "$E2E_PY" "$SSH_TESTS_DIR/tcp.py" silent "$pf" 60
	wait_file "$pf" 5 || return 1
	TCP_PORT="$(cat "$pf")"
}

# tcp_proxy TARGET_PORT [--schedule 'T CMD; ...']: a TCP forwarder to
# 127.0.0.1:TARGET_PORT that injects faults (tcp_ctl); sets TCP_PORT and
# PROXY_PID (kill -KILL it to drop every connection).
tcp_proxy() {
	PROXY_PF="$BATS_TEST_TMPDIR/proxy.port"
	bg "$E2E_PY" "$SSH_TESTS_DIR/tcp.py" proxy "$PROXY_PF" "$1" 60 "${@:2}"
	PROXY_PID=$BG_PID
	wait_file "$PROXY_PF" 5 || return 1
	TCP_PORT="$(cat "$PROXY_PF")"
}

# tcp_ctl CMD...: a fault for the proxy's connections (delay MS, stall,
# resume, cut, halfclose up|down; see tests/ssh/tcp.py), in effect on return.
tcp_ctl() {
	timeout 10 "$E2E_PY" "$SSH_TESTS_DIR/tcp.py" ctl "$PROXY_PF" "$@" >/dev/null ||
		fail "the proxy did not take: $*"
}

# proxy_known_hosts: a known_hosts file with the test sshd's key under its own port and under the
# proxy's (tcp_proxy first); prints its path
proxy_known_hosts() {
	local kh="$BATS_TEST_TMPDIR/known_hosts"
	{ cat "$SSH_KNOWN_HOSTS"; sed "s/^\[127.0.0.1\]:$SSH_PORT /[127.0.0.1]:$TCP_PORT /" "$SSH_KNOWN_HOSTS"; } >"$kh"
	printf '%s\n' "$kh"
}

# host_line NAME [EXTRA]: one inventory host line, this sshd, the harness key.
host_line() {
	printf '    %s: { address: 127.0.0.1, port: %s, user: %s, identity: "%s"%s }\n' \
		"$1" "$SSH_PORT" "$SSH_USER" "$SSH_KEY" "${2:+, $2}"
}

# reason TASK: the reason of TASK's last task.end in $EV ('' when none).
reason() {
	ev "$EV" "((of('task.end', task='$1') or [{}])[-1].get('reason') or '')" 2>/dev/null
}

# all_text: what baton printed ($output and $stderr after `run`) and every
# task.end reason in $EV: where a failure's explanation can be.
all_text() {
	printf '%s\n%s\n' "${output:-}" "${stderr:-}"
	[ -s "$EV" ] && ev "$EV" '"\n".join(e.get("reason") or "" for e in of("task.end"))' 2>/dev/null
	[ -s "$EV" ] && ev "$EV" '"\n".join(e.get("error") or "" for e in of("step.end"))' 2>/dev/null
	return 0
}

# assert_imatch TEXT ERE [WHAT]: some line of TEXT matches ERE, ignoring case.
assert_imatch() {
	local line
	shopt -s nocasematch
	while IFS= read -r line; do
		if [[ "$line" =~ $2 ]]; then
			shopt -u nocasematch
			return 0
		fi
	done <<<"$1"
	shopt -u nocasematch
	printf 'FAIL: %s\n  expected a line matching (any case): %s\n  in:\n%s\n' "${3:-no match}" "$2" "$1" >&2
	return 1
}

# assert_line_has TEXT ERE1 ERE2 [WHAT]: one line of TEXT matches both (any case).
assert_line_has() {
	local line
	shopt -s nocasematch
	while IFS= read -r line; do
		if [[ "$line" =~ $2 ]] && [[ "$line" =~ $3 ]]; then
			shopt -u nocasematch
			return 0
		fi
	done <<<"$1"
	shopt -u nocasematch
	printf 'FAIL: %s\n  expected one line matching both /%s/ and /%s/ (any case) in:\n%s\n' \
		"${4:-no match}" "$2" "$3" "$1" >&2
	return 1
}

# ssh_ev_check FILE: the event stream of a run with hosts is well formed:
# JSON lines, seq from 1, run.start first and run.end last, every task.start
# of a remote task (id STEP@HOST[#I]) has host HOST and a matching task.end.
ssh_ev_check() {
	"$E2E_PY" -S -c '
import json, re, sys
E = []
for i, l in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    try: E.append(json.loads(l))
    except ValueError as x: print("line %d is not JSON: %s" % (i, x)); sys.exit(1)
errs = []
if not E or E[0].get("type") != "run.start": errs.append("first event is not run.start")
if not E or E[-1].get("type") != "run.end": errs.append("last event is not run.end")
for n, e in enumerate(E, 1):
    if e.get("seq") != n: errs.append("event %d has seq %r" % (n, e.get("seq")))
running = {}
for e in E:
    t, k = e.get("type"), e.get("task")
    if t == "task.start":
        m = re.fullmatch(r"[^@]+@([^@#]+)((?:#\d+)*)", k or "")
        if m and e.get("host") != m.group(1):
            errs.append("task.start %s has host %r" % (k, e.get("host")))
        if not m and e.get("host") is not None and e.get("host") != "localhost":
            errs.append("task.start %s has host %r but no @HOST in its id" % (k, e.get("host")))
        running[k] = running.get(k, 0) + 1
    elif t == "task.end":
        if not running.get(k): errs.append("task.end of %s without task.start" % k)
        else: running[k] -= 1
for k, v in running.items():
    if v: errs.append("task %s has no task.end" % k)
if errs:
    print("%s: %d problem(s)" % (sys.argv[1], len(errs)))
    for x in errs[:20]: print("  " + x)
    sys.exit(1)
' "$1"
}

# accepted_logins: how many logins the harness's sshd has accepted so far.
accepted_logins() { grep -c 'Accepted publickey for' "$SSH_LOG" || true; }
# connections_seen: how many TCP connections it has seen so far.
connections_seen() { grep -c 'Connection from' "$SSH_LOG" || true; }

# now_ms: milliseconds since the epoch.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_remote PATTERN COUNT [SECONDS]: poll until at least COUNT processes of
# the remote user match PATTERN.
# assert_remote_gone PATTERN WHAT: no remote process matches PATTERN, allowing
# one that was sent its signal a moment to exit (at most 2 s: a leftover
# `sleep 300` still fails).
assert_remote_gone() {
	local i
	for ((i = 0; i < 40; i++)); do
		[ "$(ssh_harness_count "$1")" -eq 0 ] && return 0
		sleep 0.05
	done
	fail "$2: $(ssh_harness_list "$1")"
}

wait_remote() {
	local i n=$((${3:-10} * 20))
	for ((i = 0; i < n; i++)); do
		[ "$(ssh_harness_count "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	fail "fewer than $2 remote processes matching '$1' after ${3:-10} s (have $(ssh_harness_count "$1"))"
}
