#!/usr/bin/env bash
# Benchmark harness for baton.  Reports against targets; it is not a test:
# exits 0 even when a target is missed, non-zero only when a command fails
# to run (or misbehaves, e.g. no successful run.end event).
#
# Usage (from the repo root):  tests/bench/run.sh
# Runs tests/bench/ssh.sh (baton over SSH against parallel-ssh, ansible and
# OpenSSH), tests/bench/copy.sh (a file to 20 hosts against pscp, ansible and
# scp) and tests/bench/fleet.sh (a fleet under a descriptor limit, then
# `fleet.sh scale`: 2,000 hosts) last; see their headers for their settings.
# Environment:
#   BATON          baton binary (default build/baton)
#   BENCH_RUNS     timed runs per contender (default 5)
#   BENCH_TIMEOUT  per-command time limit in seconds (default 300)
#   CC             C compiler for the helpers (default cc)
set -euo pipefail

BATON=${BATON:-build/baton}
RUNS=${BENCH_RUNS:-5}
TIMEOUT=${BENCH_TIMEOUT:-300}
CC=${CC:-cc}
CFLAGS=(-std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror)

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# A relative BATON path is taken relative to where we were started; then
# work from the repo root.
case $BATON in
/*) ;;
*/*) BATON=$PWD/$BATON ;;
*) BATON=$(command -v -- "$BATON") || die "baton not found: $BATON" ;;
esac
cd "$(dirname -- "${BASH_SOURCE[0]}")/../.."

if ! [[ $RUNS =~ ^[1-9][0-9]{0,2}$|^1000$ ]]; then
	die "BENCH_RUNS must be an integer in [1, 1000], got '$RUNS'"
fi
if ! [[ $TIMEOUT =~ ^[1-9][0-9]{0,4}$ ]]; then
	die "BENCH_TIMEOUT must be an integer in [1, 99999] seconds, got '$TIMEOUT'"
fi
[[ -f $BATON && -x $BATON ]] || die "baton binary not found or not executable: $BATON (build it first, or set BATON)"

B=build/bench
mkdir -p "$B"
# Runs are recorded (the run store): in a store of the benchmark's own, on
# disk, as a user's would be; section f compares it with a tmpfs and with
# recording off.
export BATON_STATE_DIR=$PWD/$B/state
rm -rf -- "$BATON_STATE_DIR"

# ---------------------------------------------------------------- helpers
for prog in floor maxrss timeit; do
	"$CC" "${CFLAGS[@]}" -o "$B/$prog" "tests/bench/$prog.c" ||
		die "failed to build tests/bench/$prog.c"
done

# gen_plan N NAME FILE: one parallel block of N `run: "true"` steps.
gen_plan() {
	awk -v n="$1" -v name="$2" 'BEGIN {
		print "name: " name
		print "steps:"
		print "  - parallel:"
		for (i = 0; i < n; i++) print "      - run: \"true\""
	}' >"$3"
}

# median NUM...: prints the median (mean of the two middle values if even).
median() {
	printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END {
		if (NR % 2) printf "%.0f\n", a[(NR + 1) / 2]
		else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2
	}'
}

# timed NAME STDIN CMD...: runs CMD once under timeit with stdin from STDIN,
# stdout discarded, stderr to $B/NAME.log.  Sets LAST_NS.  Fails loudly.
LAST_NS=
timed() {
	local name=$1 in=$2
	shift 2
	local rc=0
	"$B/timeit" "$B/time.out" "$TIMEOUT" "$@" <"$in" >/dev/null 2>"$B/$name.log" || rc=$?
	if ((rc != 0)); then
		printf 'bench: %s failed (exit %d): %s\n' "$name" "$rc" "$*" >&2
		tail -n 20 -- "$B/$name.log" >&2 || true
		exit 1
	fi
	LAST_NS=$(<"$B/time.out")
	[[ $LAST_NS =~ ^[0-9]+$ ]] || die "timeit produced no time for $name"
}

# Verify the events file of the last baton run ended in success.
check_events() {
	local f=$1
	[[ -s $f ]] || die "baton wrote no events to $f"
	if ! grep -F '"run.end"' -- "$f" | grep -Eq '"status"[[:space:]]*:[[:space:]]*"success"'; then
		printf 'bench: %s has no run.end event with "status":"success"; last lines:\n' "$f" >&2
		tail -n 5 -- "$f" >&2 || true
		exit 1
	fi
}

# ------------------------------------------------- a. 2000 x true, -j 2
N=2000
P2000=$B/p2000.yaml
EVENTS=$B/events.jsonl
SEQ=$B/seq$N.txt
gen_plan "$N" "bench-$N" "$P2000"
seq "$N" >"$SEQ"
mapfile -t NUMS <"$SEQ"

have_parallel=0
if command -v parallel >/dev/null 2>&1 &&
	parallel --will-cite --version 2>/dev/null | grep -q 'GNU parallel'; then
	have_parallel=1
fi

contenders=(baton floor xargs)
((have_parallel)) && contenders+=(parallel)

run_contender() {
	case $1 in
	baton)
		rm -f -- "$EVENTS"
		timed baton /dev/null "$BATON" run "$P2000" -j 2 --output quiet --events "$EVENTS"
		check_events "$EVENTS"
		;;
	floor) timed floor /dev/null "$B/floor" "$N" 2 true ;;
	xargs) timed xargs "$SEQ" xargs -P2 -n1 true ;;
	parallel) timed parallel /dev/null parallel --will-cite -j2 true ::: "${NUMS[@]}" ;;
	*) die "unknown contender $1" ;;
	esac
}

declare -A TIMES=()
# One untimed warm-up round (page cache, dynamic loader, and a check that
# every contender works at all), then RUNS timed rounds, contenders
# alternating within each round.
for c in "${contenders[@]}"; do run_contender "$c"; done
for ((round = 1; round <= RUNS; round++)); do
	for c in "${contenders[@]}"; do
		run_contender "$c"
		TIMES[$c]+="$LAST_NS "
	done
done

declare -A MED=()
for c in "${contenders[@]}"; do
	# shellcheck disable=SC2086 # deliberate word splitting of the time list
	MED[$c]=$(median ${TIMES[$c]})
done

row() { # row LABEL CONTENDER [SUFFIX]
	awk -v label="$1" -v ns="${MED[$2]}" -v floor="${MED[floor]}" -v suffix="${3:-}" 'BEGIN {
		printf "  %-20s %7.0f ms   %5.2fx%s\n", label, ns / 1e6, ns / floor, suffix
	}'
}

printf '%d x true, 2 in flight (median of %d runs)\n' "$N" "$RUNS"
row "floor (posix_spawn)" floor
verdict=$(awk -v b="${MED[baton]}" -v f="${MED[floor]}" 'BEGIN { print (b <= 1.10 * f) ? "PASS" : "FAIL" }')
row "baton" baton "   target <= 1.10x: $verdict"
row "xargs -P2" xargs
if ((have_parallel)); then
	row "GNU parallel -j2" parallel
else
	printf '  %-20s skipped: GNU parallel not installed\n' "GNU parallel -j2"
fi

# ------------------------------------------- b. peak RSS, 10000 steps
N2=10000
P10000=$B/p10000.yaml
gen_plan "$N2" "bench-$N2" "$P10000"

rc=0
"$B/timeit" "$B/time.out" "$TIMEOUT" "$B/maxrss" "$BATON" run "$P10000" -j 2 --output quiet --events /dev/null \
	</dev/null >/dev/null 2>"$B/rss.log" || rc=$?
if ((rc != 0)); then
	printf 'bench: baton run of %s failed (exit %d)\n' "$P10000" "$rc" >&2
	tail -n 20 -- "$B/rss.log" >&2 || true
	exit 1
fi
kib=$(sed -n 's/^maxrss_kib=\([0-9][0-9]*\)$/\1/p' "$B/rss.log" | tail -n 1)
[[ -n $kib ]] || die "maxrss reported nothing (see $B/rss.log)"
awk -v kib="$kib" 'BEGIN {
	printf "peak RSS, 10000-step plan: %.1f MiB (target < 16 MiB): %s\n",
		kib / 1024, (kib < 16 * 1024) ? "PASS" : "FAIL"
}'

# --------------------------------------- c. baton check, 10000 steps
CHECK=()
timed check /dev/null "$BATON" check "$P10000" # warm-up
for ((round = 1; round <= RUNS; round++)); do
	timed check /dev/null "$BATON" check "$P10000"
	CHECK+=("$LAST_NS")
done
awk -v ns="$(median "${CHECK[@]}")" 'BEGIN {
	printf "baton check, 10000 steps: %.1f ms (target < 100 ms): %s\n",
		ns / 1e6, (ns < 100e6) ? "PASS" : "FAIL"
}'

# the truthful preview of the same plan, as one JSON document
PREVIEW=()
timed preview /dev/null "$BATON" plan --output json "$P10000" # warm-up
for ((round = 1; round <= RUNS; round++)); do
	timed preview /dev/null "$BATON" plan --output json "$P10000"
	PREVIEW+=("$LAST_NS")
done
awk -v ns="$(median "${PREVIEW[@]}")" 'BEGIN {
	printf "baton plan --output json, 10000 steps: %.1f ms (target < 300 ms): %s\n",
		ns / 1e6, (ns < 300e6) ? "PASS" : "FAIL"
}'

# ------------------------------------- f. what recording a run costs
# The 1,000-task plan, 2 in flight: the run store on disk (the default)
# against one on a tmpfs and against recording turned off (BATON_NO_STORE).
N3=1000
P1000=$B/p1000.yaml
gen_plan "$N3" "bench-$N3" "$P1000"
SHM=$(mktemp -d /dev/shm/baton-bench.XXXXXX 2>/dev/null || mktemp -d)
store_run() { # store_run MODE
	case $1 in
	disk) timed store-disk /dev/null "$BATON" run "$P1000" -j 2 --output quiet ;;
	tmpfs) timed store-tmpfs /dev/null "$BATON" run "$P1000" -j 2 --output quiet --state-dir "$SHM" ;;
	off) BATON_NO_STORE=1 timed store-off /dev/null "$BATON" run "$P1000" -j 2 --output quiet ;;
	esac
}
declare -A ST=()
for m in disk tmpfs off; do store_run $m; done
for ((round = 1; round <= RUNS * 2; round++)); do
	for m in disk tmpfs off; do
		store_run $m
		ST[$m]+="$LAST_NS "
	done
done
declare -A SMED=()
for m in disk tmpfs off; do
	# shellcheck disable=SC2086 # deliberate word splitting of the time list
	SMED[$m]=$(median ${ST[$m]})
done
printf '%d x true, 2 in flight, recording the run (median of %d runs)\n' "$N3" $((RUNS * 2))
for m in off tmpfs disk; do
	awk -v m="$m" -v ns="${SMED[$m]}" -v off="${SMED[off]}" 'BEGIN {
		label = m == "off" ? "not recorded" : m == "tmpfs" ? "store on a tmpfs" : "store on disk"
		printf "  %-20s %7.0f ms   %5.3fx%s\n", label, ns / 1e6, ns / off,
			m == "disk" ? sprintf("   target <= 1.05x: %s", ns <= 1.05 * off ? "PASS" : "FAIL") : ""
	}'
done
# The same with --events FILE: the stream shows every end as it happens, so
# the store commits every turn of the loop (the durability rule) rather
# than every 100 ms.
EVF=$B/store-events.jsonl
declare -A SE=()
for ((round = 1; round <= RUNS * 2; round++)); do
	timed store-ev-disk /dev/null "$BATON" run "$P1000" -j 2 --output quiet --events "$EVF"
	SE[disk]+="$LAST_NS "
	BATON_NO_STORE=1 timed store-ev-off /dev/null "$BATON" run "$P1000" -j 2 --output quiet --events "$EVF"
	SE[off]+="$LAST_NS "
done
# shellcheck disable=SC2086 # deliberate word splitting of the time lists
awk -v on="$(median ${SE[disk]})" -v off="$(median ${SE[off]})" 'BEGIN {
	printf "  with --events FILE: not recorded %.0f ms, store on disk %.0f ms: %.3fx\n", off / 1e6, on / 1e6, on / off
}'
rm -rf -- "$SHM"

# ------------------------------ g. reading the store: status and runs
# status of the 10,000-task run of section b (the newest run of $P10000);
# runs --all over a store of 200 runs.
RUN10K=$("$BATON" runs --all --plan "$P10000" --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
SEQ_ST=()
timed status /dev/null "$BATON" status "$RUN10K" # warm-up
for ((round = 1; round <= RUNS; round++)); do
	timed status /dev/null "$BATON" status "$RUN10K"
	SEQ_ST+=("$LAST_NS")
done
awk -v ns="$(median "${SEQ_ST[@]}")" 'BEGIN {
	printf "baton status, a finished 10000-task run: %.1f ms (target < 100 ms): %s\n",
		ns / 1e6, (ns < 100e6) ? "PASS" : "FAIL"
}'
ST200=$(mktemp -d)
printf 'steps:\n  - run: "true"\n' >"$B/one.yaml"
for ((i = 0; i < 200; i++)); do
	"$BATON" run "$B/one.yaml" --output quiet --state-dir "$ST200" || die "a run for the 200-run store failed"
done
SEQ_RUNS=()
timed runs /dev/null "$BATON" runs --all --state-dir "$ST200" # warm-up
for ((round = 1; round <= RUNS; round++)); do
	timed runs /dev/null "$BATON" runs --all --state-dir "$ST200"
	SEQ_RUNS+=("$LAST_NS")
done
n200=$("$BATON" runs --all --state-dir "$ST200" --json | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
[[ $n200 == 200 ]] || die "the 200-run store holds $n200 runs"
awk -v ns="$(median "${SEQ_RUNS[@]}")" 'BEGIN {
	printf "baton runs --all, 200 runs: %.1f ms (target < 50 ms): %s\n",
		ns / 1e6, (ns < 50e6) ? "PASS" : "FAIL"
}'
rm -rf -- "$ST200"

# ------------------------------------ g. reports of a 10,000-task run
# What --junit and --report add to a 10,000-task run (wall time, sizes), and
# how long the HTML timeline takes to draw in headless Chromium
# (window.batonRendered: navigation start to the end of the first render;
# target < 2 s). Skipped when chromium is not installed.
gen_plan 10000 reports "$B/reports.yaml"
SEQ_PLAIN=() SEQ_REP=()
for ((round = 1; round <= RUNS; round++)); do
	timed plain10k /dev/null "$BATON" run "$B/reports.yaml" --output quiet
	SEQ_PLAIN+=("$LAST_NS")
	timed reports10k /dev/null "$BATON" run "$B/reports.yaml" --output quiet \
		--junit "$B/r.xml" --report "$B/r.html"
	SEQ_REP+=("$LAST_NS")
done
awk -v a="$(median "${SEQ_PLAIN[@]}")" -v b="$(median "${SEQ_REP[@]}")" \
	-v j="$(stat -c %s "$B/r.xml")" -v h="$(stat -c %s "$B/r.html")" 'BEGIN {
	printf "10000 tasks: run %.0f ms, with --junit and --report %.0f ms (%.2fx); JUnit %.1f MB, HTML %.1f MB\n",
		a / 1e6, b / 1e6, b / a, j / 1048576, h / 1048576
}'
if command -v chromium >/dev/null; then
	R=()
	for ((round = 1; round <= 3; round++)); do
		R+=("$(python3 tests/e2e/browser.py check "$B/r.html" |
			python3 -c 'import json, sys; d = json.load(sys.stdin); assert not d["errors"], d["errors"]; print(int(d["rendered_ms"]))')") ||
			die "the 10,000-task report did not load cleanly in chromium"
	done
	awk -v ms="$(median "${R[@]}")" 'BEGIN {
		printf "HTML report of 10000 tasks drawn in chromium: %d ms (target < 2000 ms): %s\n",
			ms, (ms < 2000) ? "PASS" : "FAIL"
	}'
else
	echo "HTML report render time: skipped: chromium is not installed (make deps)"
fi

# ---------------------------------------------- d. over SSH: ssh.sh
# baton against parallel-ssh, ansible and plain ssh on a loopback sshd. It
# prints "ssh bench: skipped: REASON" and succeeds when it cannot run (not
# root, no sshd); it fails, as the benchmarks above do, when a tool fails.
BATON=$BATON BENCH_RUNS=$RUNS BENCH_TIMEOUT=$TIMEOUT CC=$CC bash tests/bench/ssh.sh

# ---------------------------------------------- h. copying a file: copy.sh
# A 100 MB file to 20 hosts: baton's copy against pscp, ansible's copy
# module and an scp loop, then the second run with nothing changed (baton
# against ansible). At most 3 runs each (every run moves 2 GB per tool).
cruns=$RUNS
((cruns <= 3)) || cruns=3
BATON=$BATON COPY_BENCH_RUNS=$cruns BENCH_TIMEOUT=$TIMEOUT CC=$CC bash tests/bench/copy.sh

# ---------------------------------------------- e. a fleet under a descriptor limit: fleet.sh
# 1,500 hosts at once under ulimit -n 1024: every one must succeed, in turns;
# prints wall time, peak RSS and the most descriptors baton held.
BATON=$BATON MAXRSS=${MAXRSS:-build/maxrss} bash tests/bench/fleet.sh
# 2,000 hosts x true with --max-hosts 2000 and with the default, under the
# descriptor limit run.sh was started with and under 1024; 500 hosts to
# compare; parallel-ssh -p 2000 beside it, with a time limit.
BATON=$BATON MAXRSS=${MAXRSS:-build/maxrss} bash tests/bench/fleet.sh scale

exit 0
