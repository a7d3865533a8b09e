#!/usr/bin/env bats
# No ${{ }} value ever runs as shell code on a remote host (plan-format.md
# section 6), against a real sshd on loopback (tests/ssh/harness.sh): the
# generator's fixed sample of 500 cases under dash and bash, issue 8's
# scripts, a NUL byte. Locally: interp_gen.bats. Needs root (every test skips,
# saying why, otherwise).

bats_require_minimum_version 1.5.0
load helpers
load ssh_helpers
load interp_gen_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; }
teardown() { ssh_teardown; }

@test "gen.py: 500 generated cases under dash and bash on the test sshd: no canary, values byte for byte, refusals as designed" {
	gen_sample remote "$RT/gen" --inventory "$INV" --known-hosts "$SSH_KNOWN_HOSTS"
}

@test "issue 8's scripts that ran a value as code, verbatim, over SSH under dash and bash" {
	check_five dash h1 "$RT" --inventory "$INV"
	check_five bash h2 "$RT" --inventory "$INV"
}

@test "a value holding a NUL byte fails the task over SSH, and nothing of it runs" {
	check_nul dash h1 "$RT" --inventory "$INV"
	check_nul bash h2 "$RT" --inventory "$INV"
}
