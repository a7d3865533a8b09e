#!/usr/bin/env bash
# Fleet benchmark: baton against N inventory hosts (names of one throwaway
# sshd on loopback, tests/ssh/harness.sh) at once, under a file-descriptor
# limit lower than N connections need. Every host must succeed: commands and
# connections that do not fit wait for descriptors instead of failing. It
# prints hosts succeeded and failed, wall time, baton's peak RSS and the most
# descriptors it held, sampled every 20 ms.
#
# Usage: tests/bench/fleet.sh       (tests/bench/run.sh runs it)
# Environment:
#   BATON          baton binary (default build/baton)
#   MAXRSS         peak-RSS helper (default build/maxrss)
#   FLEET_HOSTS    inventory hosts (default 1500)
#   FLEET_NOFILE   ulimit -n, soft and hard, for baton (default 1024)
#   FLEET_TIMEOUT  seconds for the whole run (default 600)
#
# Exit status: 0 when every host succeeded or the benchmark was skipped (not
# root, no sshd: "fleet bench: skipped: REASON"); 1 otherwise.
set -euo pipefail

BATON=${BATON:-build/baton}
MAXRSS=${MAXRSS:-build/maxrss}
N=${FLEET_HOSTS:-1500}
NOFILE=${FLEET_NOFILE:-1024}
TIMEOUT=${FLEET_TIMEOUT:-600}

say() { printf 'fleet bench: %s\n' "$*"; }
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
cleanup() {
	[ -n "${SSH_PID:-}" ] && ssh_harness_stop >/dev/null 2>&1
	rm -rf "$dir"
}
trap cleanup EXIT
# every connection logs in at once: sshd must not shed the unauthenticated ones
SSH_HARNESS_MAX_STARTUPS=$((N * 2)) ssh_harness_start "$dir/sshd" >"$dir/harness.log" 2>&1 ||
	{ cat "$dir/harness.log"; exit 1; }
ssh_harness_inventory "$dir/inv.yaml" "$N"
cat >"$dir/fleet.yaml" <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS", connect_timeout: 120s, keepalive: 0, max_hosts: $N }
steps:
  - id: up
    on: fleet
    run: echo "up \${{ host.name }}"
EOF

peak=0
start=$(date +%s%N)
(
	ulimit -n "$NOFILE"
	HOME="$dir" exec timeout -k 5 "$TIMEOUT" "$MAXRSS" "$BATON" run "$dir/fleet.yaml" --inventory "$dir/inv.yaml" \
		--output quiet --events "$dir/ev.jsonl"
) 2>"$dir/err" &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
	for b in $(pgrep -P "$(pgrep -P "$pid" || true)" 2>/dev/null || true) $(pgrep -P "$pid" 2>/dev/null || true); do
		[ "$(readlink "/proc/$b/exe" 2>/dev/null)" = "$BATON" ] || continue
		n=$(find "/proc/$b/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
		[ "$n" -le "$peak" ] || peak=$n
	done
	sleep 0.02
done
rc=0
wait "$pid" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
ok=$(grep -c '"type":"task.end".*"status":"success"' "$dir/ev.jsonl" || true)
bad=$(grep -c '"type":"task.end"' "$dir/ev.jsonl" || true)
bad=$((bad - ok))
rss=$(sed -n 's/.*maxrss_kib=\([0-9]*\).*/\1/p' "$dir/err" | tail -1)
say "$N hosts under ulimit -n $NOFILE: $ok succeeded, $bad failed, exit $rc, ${ms} ms, peak RSS $((${rss:-0} / 1024)) MiB, at most $peak descriptors"
grep -m1 'file-descriptor limit' "$dir/err" | sed 's/^/fleet bench: baton said: /' || true
[ "$rc" = 0 ] && [ "$ok" = "$N" ]
