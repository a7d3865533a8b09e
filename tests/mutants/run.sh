#!/usr/bin/env bash
# tests/mutants/run.sh — mutation testing (`make mutants`): each NAME.patch
# here breaks baton on purpose, and the suite must go red on every one.
#
# A mutant is a unified diff applied with `patch -p1` from the repository
# root. The lines above its first `--- ` (or `diff `) line say what it breaks;
# each `Killed-by: PATH` line there names a test file expected to kill it
# (tests/e2e/X.bats, or tests/unit/test_X.c for that file's suites), run
# first so that most mutants die in seconds. To write one: change the code in
# your tree, `git diff > tests/mutants/NAME.patch`, put the text on top, and
# undo the change (`git checkout FILE`).
#
# For each mutant, in build/mutants/NAME/:
#   1. a copy of the tracked files as they are in the working tree (taken once
#      per run, built once as the base; each mutant copies the base, build
#      included, so only what the patch touches is compiled again);
#   2. the patch, with no fuzz (lines may have moved, the context must be
#      exact); one that does not apply is reported DOES NOT APPLY and fails
#      the run: regenerate it against the code as it is now;
#   3. make build/baton build/unit-tests build/maxrss build/fault.so;
#   4. the hinted tests, then the rest of the suite: the unit tests (plain),
#      then tests/e2e/*.bats one file at a time, with the plain binary also as
#      BATON_ASAN (the ASan build is not made: a mutant is a change of
#      behaviour, and the tests that use BATON_ASAN compare it with BATON or
#      check its exit status, which the plain binary answers just as well);
#      everything stops at the first failing test, which has killed it;
#   5. the killing test is run again, alone: on the mutant, where it must
#      fail again (else FLAKY: a kill by chance is no kill), and on the base,
#      where it must pass (else BASE FAILS: it fails without the mutant too).
# Each mutant has MUTANT_TIMEOUT seconds (default 1200, well above the whole
# suite's time); one that runs past it is "killed (timeout)": its suite hung.
#
# Usage: tests/mutants/run.sh [NAME...]   (NAME or NAME.patch; default: all,
# or those in $MUTANTS). Exits 1 unless every mutant was killed (SURVIVED,
# DOES NOT APPLY, DOES NOT BUILD, FLAKY, BASE FAILS); 2 on a usage error
# or a base that does not build. MUTANTS_KEEP=1 keeps every mutant's copy
# (a survivor's is always kept).
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MDIR=$ROOT/tests/mutants
WORK=$ROOT/build/mutants
BOUND=${MUTANT_TIMEOUT:-1200}

# ---------------------------------------------------------------------------
# one mutant (run as `run.sh --one NAME`, under timeout): writes
# $WORK/NAME/result as VERDICT<TAB>FIRST FAILING TEST

# say TEXT: a line of progress on stderr.
say() { printf '  %s\n' "$*" >&2; }

# result VERDICT [TEST]
result() {
	printf '%s\t%s\n' "$1" "${2:-}" >"$D/result"
}

# hints PATCH: the Killed-by paths of a patch's header, one per line.
hints() {
	sed -n '/^--- \|^diff /q; s/^Killed-by:[[:space:]]*\([^[:space:]]*\).*/\1/p' "$1"
}

# stop_group PID: TERM to the process group PID leads, KILL after 10 s.
stop_group() {
	local i
	kill -TERM -- "-$1" 2>/dev/null || return 0
	for i in $(seq 100); do
		kill -0 -- "-$1" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "-$1" 2>/dev/null || true
}

# run_bats DIR FILE [FILTER]: one bats file (its tests matching FILTER) in
# tree DIR with DIR's binaries, stopped at its first failing test. Sets
# FAILED ("FILE: test name") and returns 1 on a failure; the TAP output goes
# to $D/tests.log.
run_bats() {
	local dir=$1 file=$2 filter=${3:-} fifo=$D/tap.fifo line first='' pid rc=0
	printf '# bats %s %s\n' "$file" "$filter" >>"$LOG"
	rm -f "$fifo"
	mkfifo "$fifo" || return 2
	# a session of its own, so the first failure stops bats and all it started
	(cd "$dir" && BATON=$dir/build/baton BATON_ASAN=$dir/build/baton MAXRSS=$dir/build/maxrss FAULT_SO=$dir/build/fault.so \
		exec setsid bats --tap ${filter:+-f "$filter"} "$file") >"$fifo" 2>&1 &
	pid=$!
	printf '%s\n' "$pid" >"$D/bats.pid"
	while IFS= read -r line; do
		printf '%s\n' "$line" >>"$LOG"
		case $line in
		'not ok '*)
			first=${line#not ok }
			first=${first#* }
			# its diagnostics follow at once; keep them, then stop
			while IFS= read -r -t 3 line && [[ $line == '#'* ]]; do
				printf '%s\n' "$line" >>"$LOG"
			done
			break
			;;
		esac
	done <"$fifo"
	if [ -n "$first" ]; then
		stop_group "$pid"
		wait "$pid" 2>/dev/null
		rm -f "$D/bats.pid"
		FAILED="${file#tests/e2e/}: $first"
		return 1
	fi
	wait "$pid" || rc=$?
	rm -f "$D/bats.pid"
	if [ "$rc" != 0 ]; then
		FAILED="${file#tests/e2e/}: bats exited $rc without a failing test (see tests.log)"
		return 1
	fi
	return 0
}

# unit_filter FILE: a Criterion filter for the suites of one unit test file.
unit_filter() {
	local s
	s=$(sed -n 's/^\(Test\|ParameterizedTest\)(\([A-Za-z0-9_]*\),.*/\2/p' "$1" | sort -u | paste -sd '|')
	printf '@(%s)/*\n' "$s"
}

# run_unit DIR [FILTER]: the unit tests of tree DIR, stopped at the first
# failure. Sets FAILED ("unit: suite::test") and returns 1 on a failure.
run_unit() {
	local dir=$1 filter=${2:-} rc=0 tap=$D/unit.tap first
	printf '# unit tests %s\n' "${filter:-(all)}" >>"$LOG"
	rm -f "$tap"
	(cd "$dir" && ./build/unit-tests --jobs 2 --fail-fast --tap="$tap" ${filter:+--filter "$filter"}) \
		>>"$LOG" 2>&1 || rc=$?
	[ "$rc" = 0 ] && return 0
	first=$(grep -m1 '^not ok' "$tap" 2>/dev/null | sed 's/^not ok[ -]*//; s/  *(.*$//; s/  *#.*$//')
	FAILED="unit: ${first:-unit-tests exited $rc (see tests.log)}"
	return 1
}

# one NAME: builds and tests one mutant in $WORK/NAME.
one() {
	local name=$1 patch=$MDIR/$1.patch h f
	D=$WORK/$name
	local T=$D/tree
	LOG=$D/tests.log
	: >"$LOG"
	say "copy"
	cp -a "$WORK/base" "$T" || { result ERROR "cannot copy the base"; return; }
	if ! patch -d "$T" -p1 -F0 --batch --forward --no-backup-if-mismatch --dry-run -i "$patch" >"$D/patch.log" 2>&1 ||
		! patch -d "$T" -p1 -F0 --batch --forward --no-backup-if-mismatch -i "$patch" >>"$D/patch.log" 2>&1; then
		h=$(grep -m1 -i 'fail\|error\|malformed\|only garbage' "$D/patch.log")
		f=$(grep -m1 -o '\(checking\|patching\) file .*' "$D/patch.log" | sed 's/^[a-z]* file //')
		result "DOES NOT APPLY" "${f:+$f: }$h"
		return
	fi
	say "build"
	if ! make -C "$T" -j2 build/baton build/unit-tests build/maxrss build/fault.so >"$D/build.log" 2>&1; then
		result "DOES NOT BUILD" "see $D/build.log"
		return
	fi
	local hinted=' ' unit_done=
	for h in $(hints "$patch"); do
		case $h in
		tests/unit/*.c)
			say "hint $h"
			run_unit "$T" "$(unit_filter "$T/$h")" || { result killed "$FAILED"; return; }
			;;
		tests/e2e/*.bats)
			say "hint $h"
			run_bats "$T" "$h" || { result killed "$FAILED"; return; }
			hinted="$hinted$h "
			;;
		*) say "hint $h: not a test file, ignored" ;;
		esac
	done
	say "unit tests"
	run_unit "$T" || { result killed "$FAILED"; return; }
	for f in $(cd "$T" && ls tests/e2e/*.bats); do
		[[ $hinted == *" $f "* ]] && continue
		say "$f"
		run_bats "$T" "$f" || { result killed "$FAILED"; return; }
	done
	result SURVIVED ""
}

if [ "${1:-}" = --one ]; then
	D=$WORK/$2
	trap '[ -f "$D/bats.pid" ] && stop_group "$(cat "$D/bats.pid")"; exit 124' TERM
	one "$2"
	exit 0
fi

# ---------------------------------------------------------------------------
# the run

# rerun DIR TEST LOG: runs one test again, in tree DIR; 0 if it passes,
# 1 if it fails (its output in LOG).
rerun() {
	local dir=$1 test=$2 file re
	LOG=$3
	: >"$LOG"
	case $test in
	unit:\ *)
		test=${test#unit: }
		run_unit "$dir" "${test/::/\/}" || return 1
		grep -qF "ok - $test " "$D/unit.tap" || { echo "no test ran" >>"$LOG"; return 1; }
		;;
	*.bats:\ *)
		file=tests/e2e/${test%%: *}
		test=${test#*: }
		[[ $test == 'bats exited'* ]] && return 1
		# bats matches -f against the name as written in the file, where a
		# character of the name as shown may be escaped (\$, \\, \"): every
		# character, quoted for the regular expression, may follow a backslash
		re=$(printf '%s' "$test" | sed 's/[][\\.*^$(){}?+|]/\\&/g; s/\\\{0,1\}./\\\\?&/g')
		run_bats "$dir" "$file" "^$re\$" || return 1
		[ "$(grep -c '^ok ' "$LOG")" = 1 ] || { echo "not exactly one test ran" >>"$LOG"; return 1; }
		;;
	*) return 1 ;;
	esac
}

if ! command -v patch >/dev/null || ! command -v bats >/dev/null; then
	echo "mutants: needs patch and bats (make deps)" >&2
	exit 2
fi
names=()
for a in "${@:-}" ${MUTANTS:-}; do
	[ -n "$a" ] || continue
	a=${a%.patch}
	[ -f "$MDIR/$a.patch" ] || { echo "mutants: no $MDIR/$a.patch" >&2; exit 2; }
	names+=("$a")
done
if [ ${#names[@]} = 0 ]; then
	for f in "$MDIR"/*.patch; do
		f=${f##*/}
		names+=("${f%.patch}")
	done
fi

t0=$(date +%s)
rm -rf "$WORK"
mkdir -p "$WORK/base"
echo "mutants: base: copying the tracked files and building ($WORK/base)"
(cd "$ROOT" && git ls-files -z | while IFS= read -r -d '' f; do
	[ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf -) | tar -xf - -C "$WORK/base" || exit 2
if ! make -C "$WORK/base" -j2 build/baton build/unit-tests build/maxrss build/fault.so >"$WORK/base.log" 2>&1; then
	echo "mutants: the base does not build (see $WORK/base.log)" >&2
	exit 2
fi

declare -A verdict test secs
for name in "${names[@]}"; do
	echo "mutants: $name"
	mkdir -p "$WORK/$name"
	s=$(date +%s)
	rc=0
	timeout -k 20 "$BOUND" bash "$MDIR/run.sh" --one "$name" || rc=$?
	D=$WORK/$name
	if [ -f "$D/bats.pid" ]; then
		stop_group "$(cat "$D/bats.pid")"
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		v="killed (timeout)"
		t="suite still running after ${BOUND}s; last: $(grep -E '^(not )?ok ' "$D/tests.log" | tail -1)"
	elif [ -f "$D/result" ]; then
		IFS=$'\t' read -r v t <"$D/result"
	else
		v=ERROR
		t="run.sh --one exited $rc with no result"
	fi
	secs[$name]=$(($(date +%s) - s))
	# a kill counts if the test fails again on the mutant and passes without it
	if [ "$v" = killed ]; then
		if rerun "$D/tree" "$t" "$D/recheck.log"; then
			v=FLAKY
			t="$t (passed when run again on the mutant: see $D/recheck.log)"
		elif ! rerun "$WORK/base" "$t" "$D/base-check.log"; then
			v="BASE FAILS"
			t="$t (fails without the mutant too: see $D/base-check.log)"
		fi
	fi
	verdict[$name]=$v
	test[$name]=$t
	echo "  -> $v${t:+: $t} (${secs[$name]} s)"
	case $v in
	killed*) [ "${MUTANTS_KEEP:-0}" = 1 ] || rm -rf "$D/tree" ;;
	esac
done

# the table
w1=6 w2=7 w3=18
for name in "${names[@]}"; do
	((${#name} > w1)) && w1=${#name}
	((${#verdict[$name]} > w2)) && w2=${#verdict[$name]}
	((${#test[$name]} > w3)) && w3=${#test[$name]}
done
echo
printf "%-${w1}s  %-${w2}s  %-${w3}s  %s\n" mutant verdict "first failing test" seconds
bad=0
for name in "${names[@]}"; do
	printf "%-${w1}s  %-${w2}s  %-${w3}s  %7s\n" "$name" "${verdict[$name]}" "${test[$name]:--}" "${secs[$name]}"
	case ${verdict[$name]} in
	killed*) ;;
	*) bad=$((bad + 1)) ;;
	esac
done
echo
echo "mutants: ${#names[@]} run, $((${#names[@]} - bad)) killed, $bad not, in $(($(date +%s) - t0)) s (logs in $WORK)"
if [ "$bad" != 0 ]; then
	echo "mutants: FAILED: a mutant that SURVIVED needs a test that kills it; one that DOES NOT APPLY must be" \
		"regenerated against the current code (see the top of tests/mutants/run.sh)" >&2
	exit 1
fi
exit 0
