# The stall guard, loaded by helpers.bash and fanout_helpers.bash: no baton
# run anywhere in the end-to-end suite may print that its loop stalled (the
# scheduler's internal error "the run stalled with work pending"). A test that
# checks only the exit status would otherwise take a stall for a failure.
#
# Two checks, so that no test has to ask:
#   - bats' `run` is wrapped: after each run, $output and $stderr must not
#     hold the message (run b ..., run fo_baton ..., run timeout "$BATON" ...,
#     run script ..., fo_run);
#   - teardown (e2e_teardown, fo_teardown) fails the test when a file under
#     its directory holds it (output redirected to a file, a background run's
#     out.txt, --separate-stderr's capture), or what the test let through to
#     its own output (a run whose stderr was not redirected; bats keeps that
#     in $BATS_OUT).
# tests/e2e/guard.bats proves that each way fails a test.

STALL_TEXT='the run stalled'

# stall_guard_text TEXT WHERE: fails, showing the lines, when TEXT holds the stall message.
# A test that provokes a stall on purpose (engine.bats, with a fault injected)
# sets STALL_EXPECTED=1 and checks the message itself.
stall_guard_text() {
	[ -z "${STALL_EXPECTED:-}" ] || return 0
	case "$1" in
	*"$STALL_TEXT"*) ;;
	*) return 0 ;;
	esac
	printf 'FAIL: a baton run stalled (%s):\n' "$2" >&2
	grep -F -m 3 -- "$STALL_TEXT" <<<"$1" | sed 's/^/  | /' >&2
	return 1
}

# bats' own `run`, kept under another name; `run` checks what it captured.
if declare -F run >/dev/null && ! declare -F _stall_guard_bats_run >/dev/null; then
	eval "_stall_guard_bats_run() $(declare -f run | sed 1d)"
	# run ARGS...: bats' run, then no stall message in $output or $stderr.
	run() {
		local _stall_guard_rc=0
		_stall_guard_bats_run "$@" || _stall_guard_rc=$?
		stall_guard_text "${output:-}"$'\n'"${stderr:-}" "output of: run $*" || return 1
		return "$_stall_guard_rc"
	}
fi

# stall_guard_teardown: fails when a file of the test, or the test's own
# output so far, holds the stall message (devices, FIFOs and sockets skipped).
stall_guard_teardown() {
	local f bad=0
	if [ -n "${BATS_TEST_TMPDIR:-}" ] && [ -d "$BATS_TEST_TMPDIR" ]; then
		while IFS= read -r f; do
			stall_guard_text "$(grep -F -m 3 -- "$STALL_TEXT" "$f")" "in $f" || bad=1
		done < <(grep -rlsF -D skip -- "$STALL_TEXT" "$BATS_TEST_TMPDIR")
	fi
	if [ -n "${BATS_OUT:-}" ] && [ -f "$BATS_OUT" ]; then
		# (less what `run` above already reported)
		stall_guard_text "$(grep -F -- "$STALL_TEXT" "$BATS_OUT" | grep -v '^  | ' | head -n 3)" \
			"on the test's own output" || bad=1
	fi
	return "$bad"
}
