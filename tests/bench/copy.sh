#!/usr/bin/env bash
# Copy benchmark for baton: a 100 MB file (random data, made once) to 20
# hosts, the names h1..h20 of ONE throwaway sshd on loopback
# (tests/ssh/harness.sh), side by side in one run:
#
#   baton        `copy:` with `on:` the 20 hosts (SFTP on each host's
#                connection), --max-hosts 20
#   pscp         parallel-scp -p 20 (the pssh package)
#   ansible      `ansible -m copy -f 20`
#   scp loop     20 `scp ... &` started together, then `wait`
#
# then "a second run with nothing changed": baton (every task.end
# changed:false) against ansible (every host "changed": false), both of which
# skip a file whose content is already there.
#
# All 20 names are one filesystem, so every tool writes 20 DISTINCT files:
# baton and ansible to DST/TOOL/hN/file (the host's name in the destination:
# ${{ host.name }}, {{ inventory_hostname }}), the scp loop likewise (each
# scp its own path), and pscp -- which gives every host the same remote path
# -- to DST/pscp/f.$$: it runs scp in its legacy protocol (-O), whose remote
# `scp -t PATH` goes through the login shell, so $$ (that shell's pid) makes
# each connection's file its own. Before each timed first run the tool's
# files are removed (untimed); after every run, every one of the 20 files
# must be there with the right size and a sample of them (3) the right
# sha256, else the tool is reported FAILED.
#
# The OpenSSH tools use OpenSSH's defaults (key exchange, cipher); ansible
# gets a fresh ControlPath directory per run and one ControlPath per name
# (as in ssh.sh), its python interpreter given (/usr/bin/python3: no
# discovery). DST is a directory in /tmp (on disk, as a deploy target is).
#
# Usage (from anywhere):  tests/bench/copy.sh    (tests/bench/run.sh runs it after ssh.sh)
# Environment:
#   BATON               baton binary (default build/baton)
#   COPY_BENCH_RUNS     timed runs per tool (default BENCH_RUNS, else 3)
#   COPY_BENCH_TIMEOUT  time limit per command, seconds (default BENCH_TIMEOUT, else 300)
#   COPY_BENCH_MB       size of the file in MiB (default 100)
#   COPY_BENCH_HOSTS    hosts (default 20)
#   CC                  C compiler for tests/bench/timeit.c (default cc)
#
# Exit status: 0 when the benchmark ran (whatever the targets said) or was
# skipped (not root, no sshd: "copy bench: skipped: REASON"); 1 when the sshd
# could not be started or an installed tool failed to copy correctly.
set -euo pipefail

BATON=${BATON:-build/baton}
RUNS=${COPY_BENCH_RUNS:-${BENCH_RUNS:-3}}
TIMEOUT=${COPY_BENCH_TIMEOUT:-${BENCH_TIMEOUT:-300}}
MB=${COPY_BENCH_MB:-100}
N=${COPY_BENCH_HOSTS:-20}
CC=${CC:-cc}

say() { printf 'copy bench: %s\n' "$*"; }
skip() {
	say "skipped: $*"
	exit 0
}
die() {
	printf 'copy bench: %s\n' "$*" >&2
	exit 1
}

case $BATON in
/*) ;;
*/*) BATON=$PWD/$BATON ;;
*) BATON=$(command -v -- "$BATON") || die "baton not found: $BATON" ;;
esac
cd "$(dirname -- "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD

if ! [[ $RUNS =~ ^[1-9][0-9]{0,2}$|^1000$ ]]; then
	die "COPY_BENCH_RUNS must be an integer in [1, 1000], got '$RUNS'"
fi
if ! [[ $TIMEOUT =~ ^[1-9][0-9]{0,4}$ ]]; then
	die "COPY_BENCH_TIMEOUT must be an integer in [1, 99999] seconds, got '$TIMEOUT'"
fi
[[ $MB =~ ^[1-9][0-9]{0,4}$ ]] || die "COPY_BENCH_MB must be an integer in [1, 99999], got '$MB'"
[[ $N =~ ^[1-9][0-9]{0,2}$ ]] || die "COPY_BENCH_HOSTS must be an integer in [1, 999], got '$N'"

# ------------------------------------------------------------ can we run?
[[ $(id -u) == 0 ]] || skip "needs root (the sshd harness creates user batontest and runs sshd)"
[[ -x ${SSH_HARNESS_SSHD:-/usr/sbin/sshd} ]] || skip "${SSH_HARNESS_SSHD:-/usr/sbin/sshd} not found (apt-get install openssh-server)"
command -v ssh >/dev/null 2>&1 || skip "no ssh client (apt-get install openssh-client)"
# shellcheck source=tests/ssh/harness.sh
. tests/ssh/harness.sh
if ! why=$(ssh_harness_can_run 2>&1); then
	why=${why#ssh harness: }
	skip "${why%; skipping}"
fi
[[ -f $BATON && -x $BATON ]] || die "baton binary not found or not executable: $BATON (build it first, or set BATON)"

W=$ROOT/build/bench/copy
mkdir -p "$W"
rm -rf -- "$W/log" "$W/sshd"
mkdir -p "$W/log"

TIMEIT=$ROOT/build/bench/timeit
if ! [[ -x $TIMEIT && $TIMEIT -nt tests/bench/timeit.c ]]; then
	TIMEIT=$W/timeit
	"$CC" -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$TIMEIT" tests/bench/timeit.c ||
		die "failed to build tests/bench/timeit.c"
fi

# the file: random data, made once (kept in build/bench/copy between runs)
SRC=$W/file${MB}m.bin
BYTES=$((MB * 1024 * 1024))
if ! [[ -f $SRC && $(stat -c %s "$SRC") == "$BYTES" ]]; then
	{ head -c "$BYTES" /dev/urandom >"$SRC.tmp" && mv -f "$SRC.tmp" "$SRC"; } || die "could not write $SRC"
fi
chmod 644 "$SRC"
SUM=$(sha256sum <"$SRC" | cut -d' ' -f1)

# ------------------------------------------------------------ the sshd
CPDIR=
DST=
close_masters() {
	local s
	[[ -n $1 && -d $1 ]] || return 0
	for s in "$1"/*; do
		[[ -S $s ]] || continue
		ssh -o ControlPath="$s" -O exit 127.0.0.1 >/dev/null 2>&1 || true
	done
	rm -rf -- "$1"
}
# shellcheck disable=SC2317 # invoked by the trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	close_masters "$CPDIR" || true
	ssh_harness_stop >/dev/null 2>&1 || true
	[[ -z $DST ]] || rm -rf -- "$DST"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! ssh_harness_start "$W/sshd" >"$W/log/harness.log" 2>&1; then
	sed 's/^/  /' "$W/log/harness.log" >&2
	die "could not start the test sshd (see above)"
fi
quiesce() {
	local i=0
	while ((i < 200)) && pgrep -P "$SSH_PID" >/dev/null 2>&1; do
		sleep 0.05
		i=$((i + 1))
	done
}

# the destinations: DST/{baton,ansible,scp}/hN/ and DST/pscp/, the user's
DST=$(mktemp -d /tmp/baton-bench-copy.XXXXXX)
chmod 755 "$DST"
for t in baton ansible scp; do
	for ((i = 1; i <= N; i++)); do mkdir -p "$DST/$t/h$i"; done
done
mkdir -p "$DST/pscp"
chown -R "$SSH_USER:" "$DST"

# ------------------------------------------------------------ the tools
have() { command -v "$1" >/dev/null 2>&1; }
declare -A SKIP=()
PSCP=
if have parallel-scp; then PSCP=parallel-scp; elif have pscp.pssh; then PSCP=pscp.pssh; else
	SKIP[pscp]="parallel-scp not installed (apt-get install pssh)"
fi
have ansible || SKIP[ansible]="ansible not installed (apt-get install ansible-core)"

SSH_OPTS=(-i "$SSH_KEY" -o "UserKnownHostsFile=$SSH_KNOWN_HOSTS" -o StrictHostKeyChecking=yes -o BatchMode=yes)

ssh_harness_inventory "$W/inv.yaml" "$N" h fleet
for ((i = 1; i <= N; i++)); do printf '%s@127.0.0.1:%s\n' "$SSH_USER" "$SSH_PORT"; done >"$W/pssh.txt"
: >"$W/ansible.cfg"
export ANSIBLE_CONFIG=$W/ansible.cfg ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0
unset ANSIBLE_HOST_KEY_CHECKING ANSIBLE_SSH_ARGS ANSIBLE_SSH_CONTROL_PATH ANSIBLE_SSH_PIPELINING ANSIBLE_SSH_COMMON_ARGS || true
{
	echo "[fleet]"
	for ((i = 1; i <= N; i++)); do
		printf 'h%d ansible_host=127.0.0.1 ansible_port=%s ansible_user=%s ansible_ssh_private_key_file=%s ansible_control_path=%%(directory)s/h%d\n' \
			"$i" "$SSH_PORT" "$SSH_USER" "$SSH_KEY" "$i"
	done
	echo
	echo "[all:vars]"
	printf "ansible_ssh_common_args='-o UserKnownHostsFile=%s'\n" "$SSH_KNOWN_HOSTS"
	echo "ansible_python_interpreter=/usr/bin/python3"
} >"$W/ansible.ini"

cat >"$W/copy.yaml" <<EOF
name: copy-bench
inventory: $W/inv.yaml
ssh:
  known_hosts_file: $SSH_KNOWN_HOSTS
steps:
  - id: put
    on: fleet
    copy: { src: "$SRC", dest: "$DST/baton/\${{ host.name }}/file" }
EOF

# the scp loop: N scp started together, each to its own path, then wait
# shellcheck disable=SC2016 # the script's own expansions
{
	echo 'pids=()'
	for ((i = 1; i <= N; i++)); do
		printf 'scp -q'
		printf ' %q' "${SSH_OPTS[@]}" -P "$SSH_PORT" "$SRC" "$SSH_USER@127.0.0.1:$DST/scp/h$i/file"
		printf ' </dev/null &\npids+=($!)\n'
	done
	echo 'ok=0; for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done'
	echo "echo \"ok \$ok of $N\""
	echo "((ok == $N))"
} >"$W/scploop.sh"

# ------------------------------------------------------------ running
NRUN=0
LAST_NS=
WHY=
timed() {
	local name=$1 rc=0
	shift
	"$TIMEIT" "$W/time.out" "$TIMEOUT" "$@" </dev/null >"$W/log/$name.out" 2>"$W/log/$name.err" || rc=$?
	LAST_NS=$(<"$W/time.out")
	return "$rc"
}
count() { grep -cE -- "$1" "$2" || true; }
expect() {
	[[ $3 == "$4" ]] && return 0
	WHY="$2: $3, expected $4 (see build/bench/copy/log/$1.out)"
	return 1
}
rc_why() {
	local how="exit $2"
	(($2 == 124)) && how="timed out after $TIMEOUT s"
	local first
	first=$(grep -m1 -v '^[[:space:]]*$' "$W/log/$1.err" 2>/dev/null | cut -c1-160) || first=
	WHY="$how${first:+: $first} (see build/bench/copy/log/$1.err and .out)"
}

# the files a tool wrote, one per line
files_of() {
	if [[ $1 == pscp ]]; then
		find "$DST/pscp" -maxdepth 1 -type f -name 'f.*' | sort
	else
		for ((i = 1; i <= N; i++)); do [[ -f $DST/$1/h$i/file ]] && echo "$DST/$1/h$i/file"; done
	fi
	return 0
}
clear_files() {
	if [[ $1 == pscp ]]; then
		find "$DST/pscp" -mindepth 1 -delete
	else
		rm -f -- "$DST/$1"/h*/file "$DST/$1"/h*/.file*
	fi
}
# check_files TOOL: N files of the right size, the first, middle and last
# of them with the right sha256, nothing else left in the destinations
check_files() {
	local f n=0 bad=0 i
	local -a all=()
	mapfile -t all < <(files_of "$1")
	expect "$1" "files written" "${#all[@]}" "$N" || return 1
	for f in "${all[@]}"; do
		[[ $(stat -c %s "$f") == "$BYTES" ]] || bad=$((bad + 1))
	done
	expect "$1" "files of the wrong size" "$bad" 0 || return 1
	for i in 0 $((N / 2)) $((N - 1)); do
		n=$(sha256sum <"${all[$i]}" | cut -d' ' -f1)
		expect "$1" "sha256 of ${all[$i]}" "$n" "$SUM" || return 1
	done
	if [[ $1 == pscp ]]; then
		n=$(find "$DST/pscp" -mindepth 1 | wc -l)
	else
		n=$(find "$DST/$1" -mindepth 2 | wc -l)
	fi
	expect "$1" "entries in the destinations" "$n" "$N"
}

# run_one TOOL [again]: one run; "again" is the second run over files that
# are already there (baton and ansible only)
run_one() {
	local tool=$1 again=${2:-} name rc=0 out ev changed=true
	name=$tool${again:+-again}
	out=$W/log/$name.out
	ev=$W/log/$name.events.jsonl
	[[ -z $again ]] || changed=false
	NRUN=$((NRUN + 1))
	[[ -n $again ]] || clear_files "$tool"
	sync
	case $tool in
	baton) timed "$name" "$BATON" run "$W/copy.yaml" --max-hosts "$N" --output quiet --events "$ev" || rc=$? ;;
	pscp) timed "$name" "$PSCP" -h "$W/pssh.txt" -p "$N" -t 0 -x "-O ${SSH_OPTS[*]}" "$SRC" "$DST/pscp/f.\$\$" || rc=$? ;;
	ansible)
		CPDIR=$W/cp.$NRUN
		ANSIBLE_SSH_CONTROL_PATH_DIR=$CPDIR timed "$name" ansible all -i "$W/ansible.ini" -f "$N" -m copy \
			-a "src=$SRC dest=$DST/ansible/{{ inventory_hostname }}/file" || rc=$?
		;;
	scp) timed "$name" bash "$W/scploop.sh" || rc=$? ;;
	*) die "unknown tool $tool" ;;
	esac
	close_masters "$CPDIR"
	CPDIR=
	quiesce
	if ((rc != 0)); then
		rc_why "$name" "$rc"
		return 1
	fi
	[[ $LAST_NS =~ ^[0-9]+$ ]] || {
		WHY="timeit measured nothing"
		return 1
	}
	case $tool in
	baton)
		expect "$name" "run.end success" "$(grep -F '"run.end"' "$ev" | grep -c '"status":"success"')" 1 || return 1
		expect "$name" "successful task.end with changed:$changed" \
			"$(grep -F '"task.end"' "$ev" | grep '"status":"success"' | grep -c "\"changed\":$changed")" "$N" || return 1
		;;
	pscp) expect "$name" "[SUCCESS] lines" "$(count '\[SUCCESS\]' "$out")" "$N" || return 1 ;;
	ansible)
		if [[ -n $again ]]; then
			expect "$name" "'h | SUCCESS' lines" "$(count '^h[0-9]+ \| SUCCESS' "$out")" "$N" || return 1
			expect "$name" "'\"changed\": false' lines" "$(count '"changed": false' "$out")" "$N" || return 1
		else
			expect "$name" "'h | CHANGED' lines" "$(count '^h[0-9]+ \| CHANGED' "$out")" "$N" || return 1
		fi
		;;
	scp) expect "$name" "scp that succeeded" "$(sed -n "s/^ok \([0-9]*\) of $N\$/\1/p" "$out")" "$N" || return 1 ;;
	esac
	check_files "$tool"
}

declare -A TIMES=() FAILED=() MED=()
# bench KEY_SUFFIX TOOL...: a warm-up round (untimed, checks each tool),
# then RUNS rounds, the tools alternating
bench() {
	local again=$1 t round k
	shift
	local tools=()
	for t in "$@"; do [[ -n ${SKIP[$t]:-} ]] || tools+=("$t"); done
	for ((round = 0; round <= RUNS; round++)); do
		for t in "${tools[@]}"; do
			k=$t${again:+-again}
			[[ -z ${FAILED[$k]:-} ]] || continue
			if run_one "$t" ${again:+"$again"}; then
				((round == 0)) || TIMES[$k]+="$LAST_NS "
			else
				if ((round == 0)); then FAILED[$k]="warm-up run: $WHY"; else FAILED[$k]="run $round: $WHY"; fi
				unset 'TIMES[$k]'
			fi
		done
	done
	for t in "${tools[@]}"; do
		k=$t${again:+-again}
		[[ -z ${FAILED[$k]:-} ]] || continue
		# shellcheck disable=SC2086 # deliberate word splitting of the time list
		MED[$k]=$(printf '%s\n' ${TIMES[$k]} | sort -n | awk '{ a[NR] = $1 } END {
			if (NR % 2) printf "%.0f\n", a[(NR + 1) / 2]
			else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
		printf '%s %s\n' "$k" "${TIMES[$k]}" >>"$W/log/times.txt"
	done
}

secs() { awk -v ns="$1" 'BEGIN { s = ns / 1e9; printf (s < 10 ? "%.2fs" : "%.1fs"), s }'; }
# part KEY LABEL: "LABEL 1.23s (baton/LABEL 0.45x)" or why there is none
part() {
	local k=$1 label=$2 t=${1%-again}
	if [[ -n ${SKIP[$t]:-} ]]; then
		printf '%s skipped (%s)' "$label" "${SKIP[$t]}"
	elif [[ -n ${FAILED[$k]:-} ]]; then
		printf '%s FAILED (%s)' "$label" "${FAILED[$k]}"
	elif [[ $t == baton || -z ${MED[baton${k#"$t"}]:-} ]]; then
		printf '%s %s' "$label" "$(secs "${MED[$k]}")"
	else
		printf '%s %s (baton/%s %s)' "$label" "$(secs "${MED[$k]}")" "$t" \
			"$(awk -v b="${MED[baton${k#"$t"}]}" -v o="${MED[$k]}" 'BEGIN { printf "%.2fx", b / o }')"
	fi
}
# target LABEL KEY FACTOR: PASS when KEY's median >= FACTOR x baton's
target() {
	local label=$1 k=$2 f=$3 b=baton${2#"${2%-again}"}
	if [[ -z ${MED[$b]:-} ]]; then
		printf '  %-46s n/a (no baton figure)\n' "$label:"
	elif [[ -z ${MED[$k]:-} ]]; then
		printf '  %-46s n/a (no %s figure)\n' "$label:" "$k"
	else
		awk -v label="$label:" -v t="${MED[$k]}" -v b="${MED[$b]}" -v f="$f" -v tool="${k%-again}" 'BEGIN {
			printf "  %-46s %s (%s/baton = %.2fx, target > %gx)\n", label,
				(f == 1 ? t > b : t >= f * b) ? "PASS" : "FAIL", tool, t / b, f }'
	fi
}

say "$(nproc) CPUs; one sshd on 127.0.0.1:$SSH_PORT; a $MB MiB file to $N hosts; median of $RUNS runs after a warm-up; logs in build/bench/copy/log"
bench "" baton pscp ansible scp
printf 'copy bench: %d MiB to %d hosts: %s · %s · %s · %s\n' "$MB" "$N" "$(part baton baton)" \
	"$(part pscp "pscp -p $N")" "$(part ansible "ansible copy -f $N")" "$(part scp 'scp loop')"
# the files of the last round are in place: the second run changes nothing
bench again baton ansible
printf 'copy bench: again, nothing changed: %s · %s\n' "$(part baton-again baton)" "$(part ansible-again "ansible copy -f $N")"

say "targets:"
target "baton faster than pscp" pscp 1
target "baton faster than ansible copy" ansible 1
target "baton faster than the scp loop" scp 1
target "unchanged: baton >= 5x faster than ansible" ansible-again 5

if ((${#FAILED[@]})); then
	for k in "${!FAILED[@]}"; do
		printf 'copy bench: %s failed: %s\n' "$k" "${FAILED[$k]}" >&2
	done
	exit 1
fi
exit 0
