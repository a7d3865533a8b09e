#!/bin/sh
# Runs baton under valgrind on the example plans and a few hostile inputs;
# fails on any error or leak valgrind finds. Part of `make check`.
set -eu
BATON=${BATON:-build/baton}
# runs are recorded: in a throwaway run store
BATON_STATE_DIR=$(mktemp -d)
export BATON_STATE_DIR
trap 'rm -rf "$BATON_STATE_DIR"' EXIT
VG="valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --track-fds=no"
fail=0
run() {
	expect=$1
	shift
	set +e
	$VG "$BATON" "$@" >/dev/null 2>/tmp/baton-vg.$$
	rc=$?
	set -e
	# (a run whose loop stalled says so on stderr: a scheduler bug, whatever its status)
	if [ "$rc" = 99 ] || [ "$rc" != "$expect" ] || grep -q 'the run stalled' /tmp/baton-vg.$$; then
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
run 5 run plans/demo.yaml --output plain --events /dev/full
# an approve gate, approved by --yes (never asking whoever runs this in a terminal)
run 0 run plans/approve-gate.yaml --yes --output plain --events /dev/null
run 2 check tests/fuzz/corpus/errors.yaml
run 2 check tests/fuzz/corpus/aliases.yaml
run 0 run tests/fixtures/valgrind.yaml --output json
printf 'from-a-file\n' >/tmp/baton-vg-secret.$$
run 0 run tests/fixtures/valgrind.yaml --output plain --secret-file token=/tmp/baton-vg-secret.$$
run 2 check tests/fixtures/valgrind.yaml --var token=x --secret-file nope=/tmp/baton-vg-secret.$$
rm -f /tmp/baton-vg-secret.$$
# inputs and typed --var: every kind of error at once, then a clean run
run 2 run tests/fuzz/corpus/inputs.yaml --var replicas=x --var 'hosts=[a' --var verison=1 --var region=eu
run 0 run tests/e2e/plans/inputs.yaml --output plain --var region=us-east-1 --var 'hosts=[w1, w2]' --var 'opts={a: 1}'
run 1 run plans/rolling-batches.yaml --var fail_on=web4 --output plain
run 0 run plans/fallback.yaml --output json
run 0 plan plans/rolling-batches.yaml
run 0 plan plans/rolling-deploy.yaml
run 0 plan plans/rolling-batches.yaml --output json
run 0 plan plans/rolling-deploy.yaml --output dot
run 0 run --dry-run plans/rolling-batches.yaml --output json --events /dev/null
# the run store's verbs, on the runs above: the newest fails (web4), then resume it, wait, cancel (it is
# not running: 2), status, logs, prune
run 1 run plans/rolling-batches.yaml --var fail_on=web4 --output quiet
run 0 runs --all
run 0 runs --json
run 0 status
run 0 status --json
run 0 logs
run 0 logs --events
run 1 wait
run 2 cancel
run 0 resume --var fail_on=none --output plain
run 2 status nosuchrun
run 0 runs --prune --keep 3
# over SSH, against the loopback sshd of the tests (needs root: skipped otherwise)
. tests/ssh/harness.sh
if why=$(ssh_harness_can_run); then
	vgdir=$(mktemp -d)
	if ssh_harness_start "$vgdir/sshd" >/dev/null 2>&1; then
		ssh_harness_inventory "$vgdir/inv.yaml" 4 web web
		cat > "$vgdir/ssh.yaml" <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
vars: { release_dir: "$vgdir/rel" }
inputs: { version: { default: "1.0" }, fail_health: { default: none } }
EOF
		sed -n '/^env:/,$p' plans/rolling-deploy.yaml >> "$vgdir/ssh.yaml"
		chmod 755 "$vgdir"
		run 0 run "$vgdir/ssh.yaml" --inventory "$vgdir/inv.yaml" --output plain
		run 1 run "$vgdir/ssh.yaml" --inventory "$vgdir/inv.yaml" --var 'fail_health=web*' --output json
		ssh_harness_stop >/dev/null 2>&1 || true
	else
		echo "valgrind: the ssh harness did not start; SSH runs not checked"
		fail=$((fail + 1))
	fi
	rm -rf "$vgdir"
else
	echo "valgrind: SSH runs skipped: $why"
fi
rm -f /tmp/baton-vg.$$
echo "valgrind: $pass passed, $fail failed"
[ "$fail" = 0 ]
