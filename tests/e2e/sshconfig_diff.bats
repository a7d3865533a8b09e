#!/usr/bin/env bats
# ~/.ssh/config read as OpenSSH reads it (plan-format.md section 7): the
# differential test tests/sshconfig_diff.py writes 200 random configs (Host
# globs and negations, Match host/originalhost/user/localuser/all, Includes
# with globs, nested and inside blocks, tokens) and compares, for 5 names
# each, `ssh -F CONFIG -G NAME` with `baton plan --output json`. No network:
# ssh -G only reads the config. A new seed each run; the seed is printed.

bats_require_minimum_version 1.5.0
load helpers

setup() {
	e2e_setup
	command -v ssh >/dev/null || skip "no ssh client (openssh-client)"
	DIFF_PY="$BATS_TEST_DIRNAME/../sshconfig_diff.py"
	SEED=${SSHCFG_SEED:-$RANDOM}
}
teardown() { e2e_teardown; }

@test "sshconfig_diff: 200 random configs × 5 names: baton resolves what ssh -G prints (hostname, user, port, identityfile, proxyjump)" {
	run timeout -k 5 300 env BATON="$BATON" python3 "$DIFF_PY" --configs 200 --seed "$SEED" --max-seconds 240
	echo "$output"
	assert_status 0
	assert_match "$output" "^sshconfig_diff: seed $SEED: 200 configs, [0-9]+ names compared, [0-9]+ configs skipped \(jump cycles\), 0 mismatches"
	n=$(sed -n 's/.* configs, \([0-9]*\) names compared.*/\1/p' <<<"$output")
	assert_ge "$n" 500 "names compared"
}

@test "sshconfig_diff can fail: with baton's ports shifted by one, every comparison mismatches" {
	run timeout -k 5 120 env BATON="$BATON" python3 "$DIFF_PY" --configs 20 --seed "$SEED" --mutate
	assert_status 1
	c=$(sed -n 's/.* configs, \([0-9]*\) names compared.*/\1/p' <<<"$output")
	m=$(sed -n 's/.* \([0-9]*\) mismatches.*/\1/p' <<<"$output")
	assert_ge "$c" 1 "names compared"
	assert_eq "$m" "$c" "mismatches"
}
