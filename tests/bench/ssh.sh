#!/usr/bin/env bash
# SSH benchmark for baton: baton against parallel-ssh, ansible and plain
# OpenSSH, all talking to ONE throwaway sshd on loopback
# (tests/ssh/harness.sh), whose host is given N names (h1..hN) so that every
# tool sees N hosts.
#
#   (a) 50 hosts, each running `true` once, 50 at a time: baton, parallel-ssh
#       -p 50, `ansible -m raw -f 50`, and the floor: 50 `ssh ... true &`
#       started together, then `wait`.
#   (b) 20 hosts, each running 10 commands one after another: baton (one
#       connection per host, the 10 commands as channels of it), parallel-ssh
#       invoked 10 times in a row (-p 20), and an ansible playbook of 10 raw
#       tasks (-f 20; ansible's default ControlMaster/ControlPersist).
#
# Every run of every tool is checked (exit status 0 and the expected outputs);
# a tool that fails is reported as FAILED and its times are not used. The
# medians, the ratios against baton and the targets of the SSH issue are
# printed; a missed target is reported (MISS) but is not a failure.
#
# Fairness notes: ansible gets a fresh ControlPath directory for every run
# (so no run reuses a master left by an earlier one) and one ControlPath per
# inventory name (by default ansible hashes address+port+user, which would
# let all N names share one connection -- which N real hosts cannot), and
# the masters it leaves behind are closed after each run, untimed. Between
# runs, the script waits until the sshd has no connection left.
#
# Usage (from anywhere):  tests/bench/ssh.sh     (tests/bench/run.sh runs it last)
# Environment:
#   BATON              baton binary (default build/baton)
#   SSH_BENCH_RUNS     timed runs per tool (default BENCH_RUNS, else 5)
#   SSH_BENCH_TIMEOUT  time limit per command, seconds (default BENCH_TIMEOUT, else 300)
#   SSH_BENCH_SAME_KEX 1 (default): also time the OpenSSH-based tools with
#                      baton's key exchange (see above); 0: do not
#   CC                 C compiler for tests/bench/timeit.c (default cc)
#
# Exit status: 0 when the benchmark ran (whatever the targets said) or was
# skipped (not root, no sshd: "ssh bench: skipped: REASON"); 1 when the sshd
# could not be started or an installed tool failed to run correctly.
set -euo pipefail

BATON=${BATON:-build/baton}
RUNS=${SSH_BENCH_RUNS:-${BENCH_RUNS:-5}}
TIMEOUT=${SSH_BENCH_TIMEOUT:-${BENCH_TIMEOUT:-300}}
CC=${CC:-cc}

say() { printf 'ssh bench: %s\n' "$*"; }
skip() {
	say "skipped: $*"
	exit 0
}
die() {
	printf 'ssh bench: %s\n' "$*" >&2
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
	die "SSH_BENCH_RUNS must be an integer in [1, 1000], got '$RUNS'"
fi
if ! [[ $TIMEOUT =~ ^[1-9][0-9]{0,4}$ ]]; then
	die "SSH_BENCH_TIMEOUT must be an integer in [1, 99999] seconds, got '$TIMEOUT'"
fi

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

W=$ROOT/build/bench/ssh
rm -rf -- "$W"
mkdir -p "$W/log"

# The timing helper of tests/bench/run.sh (built there into build/bench).
TIMEIT=$ROOT/build/bench/timeit
if ! [[ -x $TIMEIT && $TIMEIT -nt tests/bench/timeit.c ]]; then
	TIMEIT=$W/timeit
	"$CC" -std=c11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$TIMEIT" tests/bench/timeit.c ||
		die "failed to build tests/bench/timeit.c"
fi

# ------------------------------------------------------------ the sshd
CPDIR= # ansible's ControlPath directory of the current run, if any

# close_masters DIR: ends the ControlPersist masters ansible left in DIR.
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
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! ssh_harness_start "$W/sshd" >"$W/log/harness.log" 2>&1; then
	sed 's/^/  /' "$W/log/harness.log" >&2
	die "could not start the test sshd (see above)"
fi

# quiesce: wait (at most 10 s) until the sshd has no connection left, so
# that one run does not pay for the teardown of the previous one.
quiesce() {
	local i=0
	while ((i < 200)) && pgrep -P "$SSH_PID" >/dev/null 2>&1; do
		sleep 0.05
		i=$((i + 1))
	done
}

# ------------------------------------------------------------ the tools
have() { command -v "$1" >/dev/null 2>&1; }
SAME_KEX_BENCH=${SSH_BENCH_SAME_KEX:-1}
[[ $SAME_KEX_BENCH == [01] ]] || die "SSH_BENCH_SAME_KEX must be 0 or 1, got '$SAME_KEX_BENCH'"
declare -A SKIP=() # tool -> why it is skipped
have parallel-ssh || SKIP[pssh]="parallel-ssh not installed (apt-get install pssh)"
have ansible || SKIP[ansible]="ansible not installed (apt-get install ansible-core)"
if ! have ansible-playbook; then
	SKIP[ansible_b]="ansible-playbook not installed (apt-get install ansible-core)"
fi

# Two variants of the OpenSSH-based tools: "d" uses OpenSSH's defaults;
# "k" pins the key exchange libssh2 (baton) negotiates, curve25519-sha256,
# instead of OpenSSH 9's default hybrid sntrup761x25519-sha512, whose
# post-quantum half costs far more client CPU per connection.
SAME_KEX=curve25519-sha256
declare -A KEXOPT=([d]="" [k]="-o KexAlgorithms=$SAME_KEX")
VARIANTS=(d)
[[ $SAME_KEX_BENCH == 1 ]] && VARIANTS+=(k)

ssh_opts() { # the ssh options of variant $1, one word each (no spaces in them)
	# shellcheck disable=SC2086 # deliberate word splitting
	printf '%s\n' -i "$SSH_KEY" -o "UserKnownHostsFile=$SSH_KNOWN_HOSTS" -o StrictHostKeyChecking=yes ${KEXOPT[$1]}
}

# ansible: no configuration file but an empty one of ours, no colours
: >"$W/ansible.cfg"
export ANSIBLE_CONFIG=$W/ansible.cfg ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0
unset ANSIBLE_HOST_KEY_CHECKING ANSIBLE_SSH_ARGS ANSIBLE_SSH_CONTROL_PATH ANSIBLE_SSH_PIPELINING ANSIBLE_SSH_COMMON_ARGS || true

# write_inputs N: the baton inventory, the pssh hosts file and the ansible
# inventories (one per variant) of N names of the one server
write_inputs() {
	local n=$1 i v
	ssh_harness_inventory "$W/inv$n.yaml" "$n" h fleet
	for ((i = 1; i <= n; i++)); do
		printf '%s@127.0.0.1:%s\n' "$SSH_USER" "$SSH_PORT"
	done >"$W/pssh$n.txt"
	for v in "${VARIANTS[@]}"; do
		{
			echo "[fleet]"
			for ((i = 1; i <= n; i++)); do
				printf 'h%d ansible_host=127.0.0.1 ansible_port=%s ansible_user=%s ansible_ssh_private_key_file=%s ansible_control_path=%%(directory)s/h%d\n' \
					"$i" "$SSH_PORT" "$SSH_USER" "$SSH_KEY" "$i"
			done
			echo
			echo "[all:vars]"
			printf "ansible_ssh_common_args='-o UserKnownHostsFile=%s%s'\n" "$SSH_KNOWN_HOSTS" "${KEXOPT[$v]:+ ${KEXOPT[$v]}}"
		} >"$W/ansible$n$v.ini"
	done
}
write_inputs 50
write_inputs 20

# (a) baton
cat >"$W/a.yaml" <<EOF
name: ssh-bench-a
inventory: $W/inv50.yaml
ssh:
  known_hosts_file: $SSH_KNOWN_HOSTS
steps:
  - id: t
    on: fleet
    run: "true"
EOF

# (b) baton
{
	echo "name: ssh-bench-b"
	echo "inventory: $W/inv20.yaml"
	echo "ssh:"
	echo "  known_hosts_file: $SSH_KNOWN_HOSTS"
	echo "steps:"
	echo "  - id: seq"
	echo "    on: fleet"
	echo "    steps:"
	for ((i = 1; i <= 10; i++)); do
		echo "      - { id: s$i, run: echo step $i }"
	done
} >"$W/b.yaml"

# (b) ansible
{
	echo "- hosts: all"
	echo "  gather_facts: false"
	echo "  tasks:"
	for ((i = 1; i <= 10; i++)); do
		echo "    - raw: echo step $i"
	done
} >"$W/b.yml"

declare -A PSSH_X=()
for v in "${VARIANTS[@]}"; do
	mapfile -t opts < <(ssh_opts "$v")
	PSSH_X[$v]="${opts[*]}"

	# (a) the OpenSSH floor: 50 ssh started together, then wait
	# shellcheck disable=SC2016 # the script's own expansions
	{
		echo 'pids=()'
		printf 'for ((i = 0; i < 50; i++)); do\n'
		printf '\tssh'
		printf ' %q' "${opts[@]}" -o BatchMode=yes -p "$SSH_PORT" "$SSH_USER@127.0.0.1" true
		printf ' </dev/null &\n\tpids+=($!)\ndone\n'
		echo 'ok=0; for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done'
		echo 'echo "ok $ok of 50"'
		echo '((ok == 50))'
	} >"$W/openssh50$v.sh"

	# (b) parallel-ssh, 10 invocations in a row, as a script would do it
	for ((i = 1; i <= 10; i++)); do
		printf 'parallel-ssh -h %q -p 20 -x %q -i %q || exit\n' "$W/pssh20.txt" "${PSSH_X[$v]}" "echo step $i"
	done >"$W/pssh10$v.sh"
done

# ------------------------------------------------------------ running
NRUN=0
LAST_NS=
WHY=

# timed NAME CMD...: runs CMD once under timeit, stdin /dev/null, stdout to
# $W/log/NAME.out, stderr to $W/log/NAME.err. Sets LAST_NS, returns CMD's status.
timed() {
	local name=$1 rc=0
	shift
	"$TIMEIT" "$W/time.out" "$TIMEOUT" "$@" </dev/null >"$W/log/$name.out" 2>"$W/log/$name.err" || rc=$?
	LAST_NS=$(<"$W/time.out")
	return "$rc"
}

# count ERE FILE: how many lines of FILE match ERE
count() { grep -cE -- "$1" "$2" || true; }

# expect NAME WHAT GOT WANT: sets WHY and fails unless GOT == WANT
expect() {
	[[ $3 == "$4" ]] && return 0
	WHY="$2: $3, expected $4 (see build/bench/ssh/log/$1.out)"
	return 1
}

# rc_why NAME RC: sets WHY from an exit status
rc_why() {
	local how="exit $2"
	((($2) == 124)) && how="timed out after $TIMEOUT s"
	(($2 > 128 && $2 != 124)) && how="exit $2, killed by SIG$(kill -l $(($2 - 128)) 2>/dev/null || echo '?')"
	local first
	first=$(grep -m1 -v '^[[:space:]]*$' "$W/log/$1.err" 2>/dev/null | cut -c1-160) || first=
	WHY="$how${first:+: $first} (see build/bench/ssh/log/$1.err and .out)"
}

# one run of TOOL for benchmark BENCH: a or b (the workload), then k for
# the variant with baton's key exchange; sets LAST_NS, or WHY and fails
run_one() {
	local bench=$1 tool=$2 name="$1-$2" rc=0 out wl=${1:0:1} v=${1:1}
	v=${v:-d}
	out=$W/log/$name.out
	NRUN=$((NRUN + 1))
	case $wl-$tool in
	a-baton) timed "$name" "$BATON" run "$W/a.yaml" --max-hosts 50 --output plain || rc=$? ;;
	a-pssh) timed "$name" parallel-ssh -h "$W/pssh50.txt" -p 50 -x "${PSSH_X[$v]}" true || rc=$? ;;
	a-ansible)
		CPDIR=$W/cp.$NRUN
		ANSIBLE_SSH_CONTROL_PATH_DIR=$CPDIR timed "$name" ansible all -i "$W/ansible50$v.ini" -m raw -a true -f 50 || rc=$?
		;;
	a-openssh) timed "$name" bash "$W/openssh50$v.sh" || rc=$? ;;
	b-baton) timed "$name" "$BATON" run "$W/b.yaml" --max-hosts 20 --output plain || rc=$? ;;
	b-pssh) timed "$name" bash "$W/pssh10$v.sh" || rc=$? ;;
	b-ansible)
		CPDIR=$W/cp.$NRUN
		ANSIBLE_SSH_CONTROL_PATH_DIR=$CPDIR timed "$name" ansible-playbook -i "$W/ansible20$v.ini" -f 20 "$W/b.yml" || rc=$?
		;;
	*) die "unknown tool $bench-$tool" ;;
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
	case $wl-$tool in
	a-baton)
		expect "$name" "hosts that succeeded" "$(grep -E '^\[t@h[0-9]+\] ✓ success' "$out" | cut -d']' -f1 | sort -u | wc -l)" 50 &&
			expect "$name" "'✓ run success' lines" "$(count '^✓ run success' "$out")" 1
		;;
	a-pssh) expect "$name" "[SUCCESS] lines" "$(count '\[SUCCESS\]' "$out")" 50 ;;
	a-ansible) expect "$name" "'| CHANGED | rc=0' lines" "$(count '^h[0-9]+ \| CHANGED \| rc=0' "$out")" 50 ;;
	a-openssh) expect "$name" "ssh that succeeded" "$(sed -n 's/^ok \([0-9]*\) of 50$/\1/p' "$out")" 50 ;;
	b-baton)
		expect "$name" "'step N' output lines" "$(count '^\[seq\.s([0-9]+)@h[0-9]+\] step \1$' "$out")" 200 &&
			expect "$name" "'✓ run success' lines" "$(count '^✓ run success' "$out")" 1
		;;
	b-pssh)
		expect "$name" "[SUCCESS] lines" "$(count '\[SUCCESS\]' "$out")" 200 &&
			expect "$name" "'step N' output lines" "$(count '^step ([1-9]|10)$' "$out")" 200
		;;
	b-ansible)
		expect "$name" "hosts with ok=10 failed=0 in the recap" \
			"$(count '^h[0-9]+ +: ok=10 +changed=[0-9]+ +unreachable=0 +failed=0 ' "$out")" 20
		;;
	esac
}

declare -A TIMES=() FAILED=() MED=()

# bench B TOOL...: one untimed warm-up round (which also checks that every
# tool works), then RUNS timed rounds, the tools alternating in each round.
bench() {
	local b=$1 t round
	shift
	local tools=()
	for t in "$@"; do
		if [[ -n ${SKIP[$t]:-} ]]; then continue; fi
		if [[ $b == b* && $t == ansible && -n ${SKIP[ansible_b]:-} ]]; then
			SKIP[$b-$t]=${SKIP[ansible_b]}
			continue
		fi
		tools+=("$t")
	done
	for ((round = 0; round <= RUNS; round++)); do
		for t in "${tools[@]}"; do
			[[ -z ${FAILED[$b-$t]:-} ]] || continue
			if run_one "$b" "$t"; then
				((round == 0)) || TIMES[$b-$t]+="$LAST_NS "
			else
				if ((round == 0)); then FAILED[$b-$t]="warm-up run: $WHY"; else FAILED[$b-$t]="run $round: $WHY"; fi
				unset 'TIMES[$b-$t]'
			fi
		done
	done
	for t in "${tools[@]}"; do
		[[ -z ${FAILED[$b-$t]:-} ]] || continue
		# shellcheck disable=SC2086 # deliberate word splitting of the time list
		MED[$b-$t]=$(printf '%s\n' ${TIMES[$b-$t]} | sort -n | awk '{ a[NR] = $1 } END {
			if (NR % 2) printf "%.0f\n", a[(NR + 1) / 2]
			else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
		printf '%s %s\n' "$b-$t" "${TIMES[$b-$t]}" >>"$W/times.txt"
	done
}

# ------------------------------------------------------------ reporting
secs() { awk -v ns="$1" 'BEGIN { s = ns / 1e9; printf (s < 10 ? "%.2fs" : "%.1fs"), s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; printf (r < 10 ? "%.2fx" : "%.1fx"), r }'; }

# part B TOOL LABEL [BASE]: "LABEL 0.62s (1.51x)" -- the ratio against
# baton's median in benchmark BASE (default B) -- or why there is no figure
part() {
	local k=$1-$2 label=$3 base=${4:-$1}-baton
	if [[ -n ${SKIP[$2]:-} || -n ${SKIP[$k]:-} ]]; then
		printf '%s skipped (%s)' "$label" "${SKIP[$k]:-${SKIP[$2]}}"
	elif [[ -n ${FAILED[$k]:-} ]]; then
		printf '%s FAILED (%s)' "$label" "${FAILED[$k]}"
	elif [[ $2 == baton || -z ${MED[$base]:-} ]]; then
		printf '%s %s' "$label" "$(secs "${MED[$k]}")"
	elif [[ $2 == openssh ]]; then
		printf '%s %s (floor, baton %s of it)' "$label" "$(secs "${MED[$k]}")" "$(ratio "${MED[$base]}" "${MED[$k]}")"
	else
		printf '%s %s (%s)' "$label" "$(secs "${MED[$k]}")" "$(ratio "${MED[$k]}" "${MED[$base]}")"
	fi
}

# target LABEL B TOOL FACTOR: PASS when TOOL's median >= FACTOR x baton's
target() {
	local label=$1 k=$2-$3 f=$4
	if [[ -z ${MED[$2-baton]:-} ]]; then
		printf '  %-46s n/a (no baton figure)\n' "$label:"
	elif [[ -z ${MED[$k]:-} ]]; then
		printf '  %-46s n/a (no %s figure)\n' "$label:" "$3"
	else
		awk -v label="$label:" -v t="${MED[$k]}" -v b="${MED[$2-baton]}" -v f="$f" -v tool="$3" 'BEGIN {
			printf "  %-46s %s (%s/baton = %.2fx, target >= %gx)\n", label,
				(t >= f * b) ? "PASS" : "MISS", tool, t / b, f }'
	fi
}

kex=$(ssh -G -p "$SSH_PORT" 127.0.0.1 2>/dev/null | sed -n 's/^kexalgorithms \([^,]*\).*/\1/p')
say "$(nproc) CPUs; one sshd on 127.0.0.1:$SSH_PORT; median of $RUNS runs after a warm-up; logs in build/bench/ssh/log"
say "key exchange: OpenSSH's default ${kex:-?}; baton (libssh2) $SAME_KEX"

bench a baton pssh ansible openssh
printf 'ssh bench (a) 50 hosts x true: %s · %s · %s · %s\n' "$(part a baton baton)" "$(part a pssh pssh)" \
	"$(part a ansible ansible)" "$(part a openssh 'openssh loop')"

bench b baton pssh ansible
printf 'ssh bench (b) 20 hosts x 10 commands: %s · %s · %s\n' "$(part b baton baton)" "$(part b pssh 'pssh x10')" \
	"$(part b ansible 'ansible playbook')"

if [[ $SAME_KEX_BENCH == 1 ]]; then
	bench ak pssh ansible openssh
	bench bk pssh ansible
	printf 'ssh bench (a) same key exchange (OpenSSH tools with -o KexAlgorithms=%s), against baton above: %s · %s · %s\n' \
		"$SAME_KEX" "$(part ak pssh pssh a)" "$(part ak ansible ansible a)" "$(part ak openssh 'openssh loop' a)"
	printf 'ssh bench (b) same key exchange, against baton above: %s · %s\n' \
		"$(part bk pssh 'pssh x10' b)" "$(part bk ansible 'ansible playbook' b)"
fi

say "targets:"
target "(a) baton no slower than pssh" a pssh 1
target "(b) baton >= 5x faster than ansible" b ansible 5
target "(b) baton >= 3x faster than pssh" b pssh 3

if ((${#FAILED[@]})); then
	for k in "${!FAILED[@]}"; do
		printf 'ssh bench: %s failed: %s\n' "$k" "${FAILED[$k]}" >&2
	done
	exit 1
fi
exit 0
