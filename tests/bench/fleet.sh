#!/usr/bin/env bash
# Fleet benchmark: baton against N inventory hosts (names of one throwaway
# sshd on loopback, tests/ssh/harness.sh) at once, under a file-descriptor
# limit lower than N connections need. Every host must succeed: commands and
# connections that do not fit wait for descriptors instead of failing. It
# prints hosts succeeded and failed, wall time, baton's peak RSS and the most
# descriptors it held, sampled every 20 ms.
#
# Usage: tests/bench/fleet.sh          (tests/bench/run.sh runs it)
#        tests/bench/fleet.sh scale    (run.sh runs it too; see below)
# Environment:
#   BATON            baton binary (default build/baton)
#   MAXRSS           peak-RSS helper (default build/maxrss)
#   FLEET_HOSTS      inventory hosts (default 1500; 2000 in scale mode)
#   FLEET_NOFILE     ulimit -n, soft and hard, for baton (default 1024);
#                    "default": the limit this script was started with
#   FLEET_MAX_HOSTS  hosts at once (ssh.max_hosts): a number (default
#                    FLEET_HOSTS, all at once), or "default": not set, baton's
#                    default (64)
#   FLEET_TIMEOUT    seconds for the whole run (default 600)
#   FLEET_PSSH       1: also run parallel-ssh -p FLEET_HOSTS (default 0; 1 in
#                    scale mode)
#   FLEET_PSSH_TIMEOUT  seconds allowed to parallel-ssh (default 300)
#
# Scale mode (issue 13, point 6): FLEET_HOSTS (2000) hosts x `true` with
# --max-hosts FLEET_HOSTS and with the default, under the limit on
# descriptors this script was started with and under ulimit -n 1024, then
# 500 hosts at the default, to compare: baton's memory and descriptors grow
# with the connections running, not with the inventory. Then parallel-ssh
# -p FLEET_HOSTS on the same hosts, with a time limit, reported as it went
# (its time, or how it failed). Every baton run has ssh.connect_timeout
# 120s: so many logins at once on two cores take the sshd far more than the
# default 10 s.
#
# Exit status: 0 when every host of every baton run succeeded or the
# benchmark was skipped (not root, no sshd: "fleet bench: skipped: REASON");
# 1 otherwise (parallel-ssh failing is reported, not a failure).
set -euo pipefail

MODE=${1:-fleet}
[[ $MODE == fleet || $MODE == scale ]] || {
	echo "usage: fleet.sh [scale]" >&2
	exit 2
}
BATON=${BATON:-build/baton}
MAXRSS=${MAXRSS:-build/maxrss}
if [[ $MODE == scale ]]; then N=${FLEET_HOSTS:-2000}; else N=${FLEET_HOSTS:-1500}; fi
NOFILE=${FLEET_NOFILE:-1024}
MAXH=${FLEET_MAX_HOSTS:-$N}
TIMEOUT=${FLEET_TIMEOUT:-600}
if [[ $MODE == scale ]]; then PSSH=${FLEET_PSSH:-1}; else PSSH=${FLEET_PSSH:-0}; fi
PSSH_TIMEOUT=${FLEET_PSSH_TIMEOUT:-300}
START_NOFILE=$(ulimit -n)
START_HARD=$(ulimit -Hn)

say() { printf 'fleet bench: %s\n' "$*"; }
[[ $N =~ ^[1-9][0-9]{0,5}$ ]] || { say "FLEET_HOSTS must be a positive integer, got '$N'" >&2; exit 2; }
[[ $NOFILE =~ ^[1-9][0-9]*$|^default$ ]] || { say "FLEET_NOFILE must be a number or 'default', got '$NOFILE'" >&2; exit 2; }
[[ $MAXH =~ ^[1-9][0-9]*$|^default$ ]] || { say "FLEET_MAX_HOSTS must be a number or 'default', got '$MAXH'" >&2; exit 2; }
for v in BATON MAXRSS; do
	case ${!v} in /*) ;; *) printf -v "$v" '%s/%s' "$PWD" "${!v}" ;; esac
done
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/ssh/harness.sh
. "$here/../ssh/harness.sh"
if ! why=$(ssh_harness_can_run); then
	say "skipped: $why"
	exit 0
fi
dir=$(mktemp -d /tmp/baton-fleet.XXXXXX)
chmod 755 "$dir"
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
	[ -n "${SSH_PID:-}" ] && ssh_harness_stop >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT
# every connection logs in at once: sshd must not shed the unauthenticated ones
SSH_HARNESS_MAX_STARTUPS=$((N * 2)) ssh_harness_start "$dir/sshd" >"$dir/harness.log" 2>&1 ||
	{ cat "$dir/harness.log"; exit 1; }

# quiesce: wait (at most 60 s) until the sshd has no connection left
quiesce() {
	local i=0
	while ((i < 1200)) && pgrep -P "$SSH_PID" >/dev/null 2>&1; do
		sleep 0.05
		i=$((i + 1))
	done
}

# fleet_run HOSTS MAXHOSTS NOFILE CMD: one baton run over HOSTS names,
# MAXHOSTS at once ("default": not set), under ulimit -n NOFILE ("default":
# as started); prints its line, sets R_RSS R_FDS, fails unless
# every host succeeded
fleet_run() {
	local n=$1 maxh=$2 nofile=$3 cmd=$4 mh_line="" lim_label
	[[ -f $dir/inv$n.yaml ]] || ssh_harness_inventory "$dir/inv$n.yaml" "$n"
	[[ $maxh == default ]] || mh_line=", max_hosts: $maxh"
	cat >"$dir/fleet.yaml" <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS", connect_timeout: 120s, keepalive: 0$mh_line }
steps:
  - id: up
    on: fleet
    run: $cmd
EOF
	[[ $nofile == default ]] && nofile=$START_NOFILE
	lim_label="ulimit -n $nofile"
	[[ $nofile == "$START_NOFILE" ]] && lim_label+=" (as started)"
	quiesce
	local peak=0 pid rc=0 ms ok bad rss b fdn start
	rm -f "$dir/ev.jsonl"
	start=$(date +%s%N)
	(
		ulimit -n "$nofile"
		HOME="$dir" exec timeout -k 5 "$TIMEOUT" "$MAXRSS" "$BATON" run "$dir/fleet.yaml" --inventory "$dir/inv$n.yaml" \
			--output quiet --events "$dir/ev.jsonl"
	) 2>"$dir/err" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		for b in $(pgrep -P "$(pgrep -P "$pid" || true)" 2>/dev/null || true) $(pgrep -P "$pid" 2>/dev/null || true); do
			[ "$(readlink "/proc/$b/exe" 2>/dev/null)" = "$BATON" ] || continue
			fdn=$(find "/proc/$b/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
			[ "$fdn" -le "$peak" ] || peak=$fdn
		done
		sleep 0.02
	done
	wait "$pid" || rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	ok=$(grep -c '"type":"task.end".*"status":"success"' "$dir/ev.jsonl" || true)
	bad=$(grep -c '"type":"task.end"' "$dir/ev.jsonl" || true)
	bad=$((bad - ok))
	rss=$(sed -n 's/.*maxrss_kib=\([0-9]*\).*/\1/p' "$dir/err" | tail -1)
	R_RSS=$((${rss:-0} / 1024)) R_FDS=$peak
	if [[ $maxh == default ]]; then maxh="the default max_hosts (64)"; else maxh="max_hosts $maxh"; fi
	say "$n hosts, $maxh, under $lim_label: $ok succeeded, $bad failed, exit $rc, ${ms} ms, peak RSS $R_RSS MiB, at most $peak descriptors"
	grep -m1 'file-descriptor limit' "$dir/err" | sed 's/^/fleet bench: baton said: /' || true
	if [ "$rc" != 0 ] || [ "$ok" != "$n" ]; then
		grep -v '^maxrss_kib=' "$dir/err" | head -n 5 | sed 's/^/fleet bench: baton stderr: /' || true
		# kept for a look: baton's stderr and events, the sshd's log
		if mkdir -p "$here/../../build/bench/fleet" &&
			cp -f "$dir/err" "$dir/ev.jsonl" "$SSH_LOG" "$here/../../build/bench/fleet/" 2>/dev/null; then
			say "baton's stderr and events, the sshd's log: kept in build/bench/fleet/"
		fi
		return 1
	fi
}

# pssh_run HOSTS: parallel-ssh -p HOSTS `true` on HOSTS names, with a time
# limit; prints what happened (never fails)
pssh_run() {
	local n=$1 rc=0 ms ok start what
	if ! command -v parallel-ssh >/dev/null 2>&1; then
		say "parallel-ssh -p $n: skipped: not installed (apt-get install pssh)"
		return 0
	fi
	for ((i = 1; i <= n; i++)); do printf '%s@127.0.0.1:%s\n' "$SSH_USER" "$SSH_PORT"; done >"$dir/pssh$n.txt"
	quiesce
	start=$(date +%s%N)
	timeout -k 5 "$PSSH_TIMEOUT" parallel-ssh -h "$dir/pssh$n.txt" -p "$n" -t 0 \
		-x "-i $SSH_KEY -o UserKnownHostsFile=$SSH_KNOWN_HOSTS -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=120" \
		true </dev/null >"$dir/pssh.out" 2>"$dir/pssh.err" || rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	ok=$(grep -c '\[SUCCESS\]' "$dir/pssh.out" || true)
	what="exit $rc"
	((rc == 124 || rc == 137)) && what="killed by the $PSSH_TIMEOUT s time limit (exit $rc)"
	say "parallel-ssh -p $n, $n hosts x true, under ulimit -n $(ulimit -n): $ok succeeded, $(($(grep -c '\[FAILURE\]' "$dir/pssh.out" || true))) failed, $what, ${ms} ms"
	if ((ok != n)); then
		{ grep -m3 '\[FAILURE\]' "$dir/pssh.out" || true; head -n 3 "$dir/pssh.err"; } | cut -c1-200 | sed 's/^/fleet bench: parallel-ssh said: /'
	fi
	return 0
}

if [[ $MODE == fleet ]]; then
	fleet_run "$N" "$MAXH" "$NOFILE" "echo \"up \${{ host.name }}\""
	[[ $PSSH != 1 ]] || pssh_run "$N"
	exit
fi

# ---------------------------------------------------------------- scale
say "scale: $N hosts x true; ulimit -n as started: $START_NOFILE (hard $START_HARD); connect_timeout 120s; $(nproc) CPUs"
fail=0
fleet_run "$N" "$N" default true || fail=1
fleet_run "$N" default default true || fail=1
big_rss=$R_RSS big_fds=$R_FDS
fleet_run "$N" "$N" 1024 true || fail=1
fleet_run "$N" default 1024 true || fail=1
small=$((N / 4))
fleet_run "$small" default default true || fail=1
say "grows with the connections, not the inventory: at the default max_hosts, $small hosts: peak RSS $R_RSS MiB, $R_FDS descriptors; $N hosts: $big_rss MiB, $big_fds descriptors"
[[ $PSSH != 1 ]] || pssh_run "$N"
exit "$fail"
