#!/bin/sh
# Runs baton under valgrind on the example plans and a few hostile inputs;
# fails on any error or leak valgrind finds. Part of `make check`.
set -eu
BATON=${BATON:-build/baton}
VG="valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --track-fds=no"
fail=0
run() {
	expect=$1
	shift
	set +e
	$VG "$BATON" "$@" >/dev/null 2>/tmp/baton-vg.$$
	rc=$?
	set -e
	if [ "$rc" = 99 ] || [ "$rc" != "$expect" ]; then
		echo "valgrind: baton $* exited $rc (expected $expect)"
		cat /tmp/baton-vg.$$
		fail=$((fail + 1))
	else
		pass=$((pass + 1))
	fi
}
pass=0
run 0 check plans/demo.yaml
run 0 plan plans/demo.yaml
run 0 run plans/demo.yaml --output plain --events /dev/null
run 2 check tests/fuzz/corpus/errors.yaml
run 2 check tests/fuzz/corpus/aliases.yaml
run 0 run tests/fixtures/valgrind.yaml --output json
run 1 run plans/rolling-batches.yaml --var fail_on=web4 --output plain
run 0 run plans/fallback.yaml --output json
run 0 plan plans/rolling-batches.yaml
rm -f /tmp/baton-vg.$$
echo "valgrind: $pass passed, $fail failed"
[ "$fail" = 0 ]
