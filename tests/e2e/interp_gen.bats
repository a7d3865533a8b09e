#!/usr/bin/env bats
# No ${{ }} value ever runs as shell code (plan-format.md section 6), locally:
# the generator tests/interp/gen.py on a fixed sample of 500 cases under dash
# and bash, its own checks, the scripts of issue 8 that ran values as code,
# and a value holding a NUL byte. Over SSH: ssh_interp_gen.bats. `make
# fuzz-interp` runs 10,000 cases with a new seed.

bats_require_minimum_version 1.5.0
load helpers
load interp_gen_helpers

setup() { e2e_setup; }
teardown() { e2e_teardown; }

@test "gen.py: every script it generates is valid shell (each oracle runs, with a plain value, under dash and bash)" {
	run "$E2E_PY" "$GEN" --selfcheck --seed "$GEN_SEED" --cases "$GEN_CASES"
	assert_status 0
	assert_match "$output" "^selfcheck: [0-9]+ oracle scripts, 0 invalid$"
}

@test "gen.py: 500 generated cases under dash and bash, locally: no canary, values byte for byte, refusals as designed" {
	gen_sample local "$BATS_TEST_TMPDIR/gen"
}

@test "gen.py can fail: with values spliced raw (raw(vars.v)) it finds canaries and mismatches" {
	run timeout -k 5 600 "$E2E_PY" "$GEN" --baton "$BATON" --seed "$GEN_SEED" --cases 120 --side local \
		--slot 'raw(vars.v)' --work "$BATS_TEST_TMPDIR/gen" --report-dir "$BATS_TEST_TMPDIR/report" --show 0 --minimize 0
	assert_status 1
	local n
	n=$(sed -n 's/.*; canaries \([0-9]*\); .*/\1/p' <<<"$output")
	assert_ge "${n:-0}" 10 "canaries created by raw values"
	assert_match "$output" "FAIL x[0-9]+ canary: "
	assert_match "$output" "FAIL x[0-9]+ mismatch: "
	# each failure is a plan file ready to paste
	ls "$BATS_TEST_TMPDIR"/report/fail-"$GEN_SEED"-c*-*-local.yaml >/dev/null || fail "no plan file written"
}

@test "issue 8's scripts that ran a value as code, verbatim, locally under dash and bash" {
	check_five dash "" "$BATS_TEST_TMPDIR"
	check_five bash "" "$BATS_TEST_TMPDIR"
}

@test "a value holding a NUL byte fails the task, locally, and nothing of it runs" {
	check_nul dash "" "$BATS_TEST_TMPDIR"
	check_nul bash "" "$BATS_TEST_TMPDIR"
}
