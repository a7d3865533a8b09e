#!/usr/bin/env bats
# A run killed with SIGKILL while commands run on its hosts (runs.md): the
# remote commands end once baton's connection is gone (the watcher of
# ssh.c's wrap_command), and `baton resume` ends first what is still left
# there of the crashed run (its recorded remote process groups).

load helpers
load ssh_helpers

setup_file() { ssh_setup_file; }
teardown_file() { ssh_teardown_file; }
setup() { ssh_setup; export BATON_STATE_DIR="$BATS_TEST_TMPDIR/state"; }
teardown() { ssh_teardown; }

# remote_pids PATTERN: the test user's processes whose command line holds PATTERN
remote_pids() { pgrep -u "$SSH_HARNESS_USER" -f -- "$1" || true; }
# remote_sleeps: the remote `sleep 300.$M` processes themselves (not the shells whose scripts name them)
remote_sleeps() { pgrep -u "$SSH_HARNESS_USER" -x -f -- "sleep 300.$M" || true; }

# wait_for COND SECONDS: polls COND (a shell command) every 0.1 s
wait_for() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		eval "$1" && return 0
		sleep 0.1
	done
	return 1
}

# recorded_remote: how many tasks the store holds with a remote process group
recorded_remote() {
	python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from tasks where remote_pgid > 0 and remote_host is not null").fetchone()[0])' "$BATON_STATE_DIR/runs.db"
}

crash_plan() {
	plan crash <<EOF
ssh: { known_hosts_file: "$SSH_KNOWN_HOSTS" }
steps:
  - id: long
    on: fleet
    run: test -e $RT/flag && sleep 300.$M; echo done
EOF
}

@test "SIGKILL of baton: its remote commands end once the connection is gone" {
	p=$(crash_plan)
	touch "$RT/flag"
	# baton itself, not a wrapper: the kill must hit the controller
	"$BATON" run "$p" --inventory "$INV" --output quiet </dev/null 3>&- &
	pid=$!
	SSH_BG_PIDS="$pid"
	wait_for '[ "$(remote_sleeps | wc -l)" = 3 ]' 20 || fail "the 3 remote sleeps never started"
	# recorded: each task's remote process group, on its host, as soon as the host said it
	wait_for '[ "$(recorded_remote)" = 3 ]' 2 || fail "tasks recorded with their remote process group: $(recorded_remote)"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	wait_for '[ -z "$(remote_sleeps)" ]' 10 || fail "remote commands still running 10 s after the kill: $(remote_sleeps)"
}

@test "resume of a crashed run ends what it left on its hosts before anything runs" {
	p=$(crash_plan)
	touch "$RT/flag"
	# baton itself, not a wrapper: the kill must hit the controller
	"$BATON" run "$p" --inventory "$INV" --output quiet </dev/null 3>&- &
	pid=$!
	SSH_BG_PIDS="$pid"
	wait_for '[ "$(remote_sleeps | wc -l)" = 3 ]' 20 || fail "the 3 remote sleeps never started"
	# each remote group is committed as soon as its host said it
	wait_for '[ "$(recorded_remote)" = 3 ]' 2 || fail "remote groups recorded: $(recorded_remote)"
	# freeze the watchers (the wrapper's subshells), so that only resume can end the commands
	for w in $(remote_pids 'p=\$PPID'); do kill -STOP "$w"; done
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	sleep 3
	assert_eq "$(remote_sleeps | wc -l)" 3 "remote commands left running with their watchers frozen"
	rm -f "$RT/flag"
	run --separate-stderr sb resume --inventory "$INV" --output plain
	echo "$stderr"
	assert_status 0
	assert_contains "$stderr" "running on remote hosts"
	assert_eq "$(remote_sleeps)" "" "remote commands of the crashed run after resume"
	for h in h1 h2 h3; do assert_contains "$output" "[long@$h] done"; done
}
