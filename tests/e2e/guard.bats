#!/usr/bin/env bats
# The suite's own guards can fail: stall_guard.bash must fail a test whose
# baton run printed "the run stalled ...", however that output was taken
# (bats' run, a file, a background run, the test's own stderr), under both
# helpers.bash and fanout_helpers.bash; and leave a clean test alone. Checked
# by running small .bats files with a fake baton that prints the message.

load helpers
setup() { e2e_setup; }
teardown() { e2e_teardown; }

# guarded_suite DIR: writes into DIR a fake baton that prints the stall
# message (as sched.c does) and exits 1, and two .bats files that run it in
# every way the suite runs baton, plus two clean tests. The message is never
# written whole into a file here (this test's own teardown would find it).
guarded_suite() {
	local d=$1
	mkdir -p "$d"
	cat >"$d/fake-baton" <<'EOF'
#!/bin/sh
echo "[x] some output"
echo "baton: internal error: the run" "stalled with work pending" >&2
exit 1
EOF
	chmod +x "$d/fake-baton"
	# (%test: bats would take a line of this file that starts with @test for one of its own)
	sed 's/^%test/@test/' >"$d/a_helpers.bats" <<EOF
load "$E2E_DIR/helpers"
setup() { e2e_setup; }
teardown() { e2e_teardown; }
%test "stalled: run b" { run b run x.yaml; [ "\$status" = 1 ]; }
%test "stalled: run --separate-stderr b" { run --separate-stderr b run x.yaml; [ "\$status" = 1 ]; }
%test "stalled: run timeout BATON" { run timeout 5 "\$BATON" run x.yaml; [ "\$status" = 1 ]; }
%test "stalled: b with stderr not redirected" { b run x.yaml >out.log || true; }
%test "stalled: b with both streams in a file" { b run x.yaml >both.log 2>&1 || true; }
%test "stalled: BATON in the background" { "\$BATON" run x.yaml >bg.log 2>&1 3>&- & wait \$! || true; }
%test "stalled: output kept in a variable, then printed" { out=\$(b run x.yaml 2>&1) || echo "\$out" >&2; }
%test "clean: run of something else" { run echo "the run went fine"; [ "\$status" = 0 ]; }
EOF
	sed 's/^%test/@test/' >"$d/b_fanout.bats" <<EOF
bats_require_minimum_version 1.5.0
load "$E2E_DIR/fanout_helpers"
setup() { fo_setup; }
teardown() { fo_teardown; }
%test "stalled: fo_run" { fo_run x.yaml; fo_status 1; }
%test "stalled: run fo_baton" { run fo_baton run x.yaml; fo_status 1; }
%test "stalled: fo_start and fo_wait_exit" { fo_start x.yaml; fo_wait_exit 5; fo_status 1; }
%test "clean: fo_events of nothing" { run true; }
EOF
}

@test "the stall guard fails every test whose run printed that it stalled, and only those" {
	d="$BATS_TEST_TMPDIR/guarded"
	guarded_suite "$d"
	# a bats of its own (none of this one's variables), its TAP output with
	# the message spelt otherwise before it lands here
	(
		for v in $(compgen -e | grep '^BATS_'); do unset "$v"; done
		BATON="$d/fake-baton" timeout 120 bats --tap "$d" 2>&1 3>&-
	) | sed 's/the run stalled/the run st_lled/g' >tap.txt || true
	assert_eq "$(grep '^ok ' tap.txt)" $'ok 8 clean: run of something else\nok 12 clean: fo_events of nothing' \
		"the clean tests passed (TAP: $(cat tap.txt))"
	assert_eq "$(grep -c '^not ok [0-9]* stalled: ' tap.txt)" 10 "tests with a stall that failed (TAP: $(cat tap.txt))"
	assert_eq "$(grep -c '^not ok ' tap.txt)" 10 "tests that failed"
	# each failed because of the guard, which shows the line
	assert_eq "$(awk '/^(not )?ok /{ t = $0 } /^# FAIL: a baton run stalled \(/{ print t }' tap.txt | sort -u | grep -c '^not ok')" 10 \
		"failed tests that say the run stalled"
	assert_eq "$(grep -c '^#   | baton: internal error: the run st_lled with work pending$' tap.txt)" \
		"$(grep -c '^# FAIL: a baton run stalled (' tap.txt)" "a shown line under each report"
}
