#!/bin/sh
# make fuzz-interp: tests/interp/gen.py with a new random seed (or FUZZ_SEED)
# and FUZZ_CASES generated cases (default 10000), under dash and bash, locally
# and, when it can run (root, sshd), on a throwaway sshd (tests/ssh/harness.sh).
# With the probes of gen.py's EXPLORE list too, unless FUZZ_EXPLORE=0.
# Failing cases are printed as plan files and written to build/interp-fuzz/.
set -u

# All in one function, read whole before it runs: editing this file while a
# long run goes on must not change what that run does.
main() {
	BATON=${BATON:-build/baton}
	cases=${FUZZ_CASES:-10000}
	seed=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
	report=${FUZZ_REPORT:-build/interp-fuzz}
	here=$(cd "$(dirname "$0")" && pwd)
	py=$(command -v python3) || { echo "fuzz-interp: python3 not found"; exit 2; }

	# shellcheck source=tests/ssh/harness.sh
	. "$here/../ssh/harness.sh"
	dir=$(mktemp -d /tmp/baton-fuzz-interp.XXXXXX) || exit 2
	chmod 755 "$dir"
	stop() {
		[ -n "${SSH_PID:-}" ] && ssh_harness_stop >/dev/null 2>&1
		rm -rf "$dir"
	}
	trap stop EXIT
	trap 'exit 130' INT TERM

	set -- --side local
	if why=$(ssh_harness_can_run); then
		if ! ssh_harness_start "$dir/sshd" >"$dir/harness.log" 2>&1; then
			echo "fuzz-interp: the ssh harness did not start:"
			cat "$dir/harness.log"
			exit 2
		fi
		ssh_harness_inventory "$dir/inventory.yaml" 3 || exit 2
		set -- --side both --inventory "$dir/inventory.yaml" --known-hosts "$SSH_KNOWN_HOSTS"
	else
		echo "fuzz-interp: $why"
		echo "fuzz-interp: the remote half is skipped; running the local half only"
	fi
	[ "${FUZZ_EXPLORE:-1}" = 0 ] || set -- "$@" --explore
	"$py" "$here/gen.py" --baton "$BATON" --seed "$seed" --cases "$cases" --report-dir "$report" \
		--work "$dir/work" "$@"
}
main "$@"
exit $?
