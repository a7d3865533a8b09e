#!/usr/bin/env bats
# The run store's durability rule (runs.md): a task's end is committed
# before it is shown on any output, and before anything that depends on it
# starts. Killed with SIGKILL at random moments, every end baton printed is
# in the store, and the store is whole.

load helpers

setup() { e2e_setup; export BATON_STATE_DIR="$BATS_TEST_TMPDIR/state"; }
teardown() { e2e_teardown; }

# db SQL: one query on the run store (python3's sqlite3: no sqlite3 CLI needed)
db() {
	python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for r in c.execute(sys.argv[2]): print("|".join("" if v is None else str(v) for v in r))' "$BATON_STATE_DIR/runs.db" "$1"
}

@test "SIGKILL at 8 random moments: every end printed is recorded, and the store is whole" {
	awk 'BEGIN { print "steps:"; print "  - parallel:"; for (i = 0; i < 300; i++) printf "      - run: sleep 0.0%d\n", i % 10 }' >many.yaml
	seed=${DURABILITY_SEED:-$RANDOM}
	echo "# seed $seed (DURABILITY_SEED replays it)" >&3
	RANDOM=$seed
	for k in 1 2 3 4 5 6 7 8; do
		rm -rf "$BATON_STATE_DIR"
		"$BATON" run many.yaml -j 8 --output plain >out.txt 2>&1 &
		pid=$!
		sleep "0.$((RANDOM % 9 + 1))"
		kill -9 "$pid"
		wait "$pid" 2>/dev/null || true
		grep '✓ success' out.txt | sed 's/^\[\([^]]*\)\].*/\1/' | sort >shown.txt
		db "select id from tasks where kind is null and status = 'success'" | sort >recorded.txt
		missing=$(comm -23 shown.txt recorded.txt | wc -l)
		echo "# kill $k: $(wc -l <shown.txt) shown, $(wc -l <recorded.txt) recorded, $missing shown but not recorded" >&3
		assert_eq "$missing" 0 "ends printed but not in the store (kill $k)"
		assert_eq "$(db 'pragma integrity_check')" ok "integrity after kill $k"
		# the run reads as crashed: its controller is gone
		assert_eq "$(db 'select state from runs')" running "recorded state after kill $k"
	done
}

@test "a step after a task starts only once that task's end is committed" {
	# the second step reads the first's row in the store as it starts; quiet:
	# nothing is shown, so only the rule for what depends on an end commits it
	cat >seq.yaml <<EOF
steps:
  - id: first
    run: "true"
  - id: second
    run: python3 -c 'import sqlite3; c = sqlite3.connect("$BATON_STATE_DIR/runs.db"); r = c.execute("select status from tasks where id = ?", ("first",)).fetchone(); print(r[0] if r else "missing")' >>seen.txt
EOF
	for k in 1 2 3 4 5 6; do
		run "$BATON" run seq.yaml --output quiet
		assert_eq "$status" 0 "exit status"
	done
	assert_eq "$(sort -u seen.txt)" success "what the second step saw of the first, 6 runs"
}

@test "a state directory that fills up mid-run: the run goes on, exits 0, and says it is no longer recorded" {
	[ "$(id -u)" = 0 ] || skip "needs root to mount a small tmpfs"
	mkdir small
	mount -t tmpfs -o size=512k tmpfs small || skip "cannot mount a tmpfs here"
	export BATON_STATE_DIR=$PWD/small/state
	# the first step fills the disk the store is on; the rest must still run
	cat >fill.yaml <<EOF
steps:
  - id: fill
    run: dd if=/dev/zero of=$PWD/small/filler bs=4k 2>/dev/null || true
  - parallel:
$(for i in $(seq 1 40); do printf '      - run: echo %s >> %s/ran.txt\n' "$i" "$PWD"; done)
EOF
	run "$BATON" run fill.yaml --output plain
	umount small
	echo "$output" | tail -5
	assert_eq "$status" 0 "exit status: the run itself succeeded"
	assert_eq "$(wc -l <ran.txt)" 40 "tasks that ran after the disk filled"
	assert_contains "$output" "is not recorded from here"
}

@test "a state directory that cannot be created: the run runs, exits 0, and says it is not recorded" {
	export BATON_STATE_DIR=/dev/null/state
	printf 'steps:\n  - run: echo ran > %s/ran.txt\n' "$PWD" >one.yaml
	run "$BATON" run one.yaml --output plain
	assert_eq "$status" 0 "exit status"
	assert_eq "$(cat ran.txt)" ran "the task ran"
	assert_contains "$output" "this run is not recorded: cannot create the state directory /dev/null/state"
}
