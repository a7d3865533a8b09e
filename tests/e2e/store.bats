#!/usr/bin/env bats
# The run store and the verbs that act on recorded runs (runs.md): `run
# --detach`, `wait`, `cancel`, `resume` (what it carries over, what it runs
# again), pruning, the store's modes, a store that cannot be written, two
# runs sharing one store, and readers that never hold up the writer. The
# crash test (SIGKILL at random moments, then resume) is crash.bats.
# Every test has a state directory of its own.

load helpers
setup() {
	e2e_setup
	export BATON_STATE_DIR="$E2E_TMP/state"
	unset XDG_STATE_HOME BATON_NO_STORE BATON_KEEP_RUNS
	M="$E2E_TMP/m"
	mkdir -p "$M"
}
teardown() { e2e_teardown; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# sql QUERY [ARGS...]: the rows QUERY gives on the store, one per line, columns separated by '|'.
sql() {
	"$E2E_PY" -S -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=10)
for row in db.execute(sys.argv[2], sys.argv[3:]):
    print("|".join("" if v is None else str(v) for v in row))
' "$BATON_STATE_DIR/runs.db" "$@"
}

# newest: the newest run's id.
newest() { sql "SELECT id FROM runs ORDER BY start_ms DESC, rowid DESC LIMIT 1"; }

# tasks RUN: "id status reused" of the run's tasks (their last row), in the order they started.
tasks() {
	sql "SELECT id, status, reused FROM tasks t WHERE kind IS NULL
	     AND k >= (SELECT rowid FROM runs WHERE id = ?1) << 32 AND k < ((SELECT rowid FROM runs WHERE id = ?1) + 1) << 32
	     AND k = (SELECT max(k) FROM tasks u WHERE u.id = t.id
	              AND u.k >= (SELECT rowid FROM runs WHERE id = ?1) << 32 AND u.k < ((SELECT rowid FROM runs WHERE id = ?1) + 1) << 32)
	     ORDER BY k" "$1" | tr '|' ' '
}

# count NAME: how many times the marker NAME was written (lines of $M/NAME).
count() {
	if [ -e "$M/$1" ]; then wc -l <"$M/$1" | tr -d ' '; else echo 0; fi
}

# detached PLAN [ARGS...]: `run --detach` (must exit 0); sets RUN to the run id it printed.
detached() {
	run --separate-stderr b run "$@" --detach
	assert_status 0
	RUN=$(sed -n 's/^run \([^ ]*\) started in the background (pid [0-9]*)$/\1/p' <<<"$output")
	[ -n "$RUN" ] || fail "no run id in: $output"
}

# ---------------------------------------------------------------------------
# run --detach, wait, cancel

@test "run --detach: prints the id and exits 0 once the run is recorded; the run goes on after its terminal is gone" {
	p=$(plan slow <<EOF
steps:
  - { id: a, run: "sleep 1.$E2E_MARK; echo x >> $M/a" }
EOF
)
	start=$(now_ms)
	# in a terminal of its own (script(1)), which is gone as soon as baton returns: the run must not get its SIGHUP
	run timeout 20 script -qec "$BATON run $p --detach" /dev/null
	took=$(($(now_ms) - start))
	assert_status 0
	assert_le "$took" 900 "ms for --detach to return (the run takes over 1 s)"
	id=$(sed -n 's/^run \([^ ]*\) started in the background (pid [0-9]*)\r*$/\1/p' <<<"$output")
	[ -n "$id" ] || fail "no run id in: $output"
	assert_contains "$output" "baton wait $id"
	assert_contains "$output" "baton cancel $id"
	# recorded before it returned
	assert_eq "$(sql "SELECT state FROM runs WHERE id = ?" "$id")" running "the run's state right after --detach"
	run b wait "$id"
	assert_status 0
	assert_eq "$(count a)" 1 "the command ran, after its terminal was gone"
	assert_eq "$(sql "SELECT state, exit_code FROM runs WHERE id = ?" "$id")" "success|0"
	# in a session of its own, its output not on the terminal
	assert_not_contains "$output" "sleep"
}

@test "wait on a detached run: 1 when it failed, 0 when it succeeded; --timeout gives 124" {
	p=$(plan fails <<EOF
steps:
  - { id: a, run: "sleep 0.3; exit 3" }
EOF
)
	detached "$p"
	run b wait "$RUN"
	assert_status 1
	p=$(plan works <<EOF
steps:
  - { id: a, run: "sleep 0.3" }
EOF
)
	detached "$p"
	run b wait
	assert_status 0
	p=$(plan long <<EOF
steps:
  - { id: a, run: "sleep 30.$E2E_MARK" }
EOF
)
	detached "$p"
	run --separate-stderr b wait "$RUN" --timeout 300ms
	assert_status 124
	assert_contains "$stderr" "run $RUN still running after 300ms"
	run b cancel "$RUN"
	assert_status 0
	run b wait "$RUN" --timeout 10s
	assert_status 130
	assert_no_leftovers
}

@test "cancel from another terminal: the running task stops, finally runs, the run exits 130 and wait says 130" {
	p=$(plan cancel <<EOF
steps:
  - { id: work, run: "echo x >> $M/work; sleep 30.$E2E_MARK" }
  - { id: next, run: "echo x >> $M/next" }
finally:
  - { id: fin, run: "echo x >> $M/fin" }
EOF
)
	"$BATON" run "$p" --output plain --events "$EV" >run.out 2>&1 3>&- &
	pid=$!
	wait_for_event "$EV" task.start
	run --separate-stderr b cancel
	assert_status 0
	id=$(ev "$EV" 'E[0]["run"]')
	assert_contains "$output" "cancelling run $id (pid $pid)"
	run b wait "$id" --timeout 15s
	assert_status 130
	wait_pid "$pid" 10
	assert_eq "$WAIT_STATUS" 130 "the run's own exit status"
	assert_eq "$(count fin)" 1 "finally ran"
	assert_eq "$(count next)" 0 "the next step did not"
	assert_eq "$(sql "SELECT state, exit_code FROM runs WHERE id = ?" "$id")" "cancelled|130"
	assert_eq "$(tasks "$id")" "work cancelled 0
finally.fin success 0"
	assert_no_leftovers
}

@test "cancel --kill: as a second Ctrl-C, what runs is killed at once" {
	p=$(plan kill <<EOF
steps:
  - { id: work, run: "trap '' INT TERM; sleep 30.$E2E_MARK", kill_grace: 20s }
EOF
)
	detached "$p"
	for i in $(seq 100); do [ -n "$(mark_pids)" ] && break; sleep 0.05; done
	start=$(now_ms)
	run b cancel --kill "$RUN"
	assert_status 0
	assert_contains "$output" "killing what runs"
	run b wait "$RUN" --timeout 10s
	assert_status 130
	assert_le "$(($(now_ms) - start))" 5000 "ms to end (the grace is 20 s)"
	assert_no_leftovers
}

@test "cancel of a run that is not running: exit 2, saying how it ended" {
	p=$(plan ok <<'EOF'
steps: ["true"]
EOF
)
	run b run "$p" --output quiet
	assert_status 0
	id=$(newest)
	run --separate-stderr b cancel "$id"
	assert_status 2
	assert_eq "$stderr" "baton cancel: run $id is not running: it ended success (exit 0)"
	p=$(plan bad <<'EOF'
steps: ["exit 4"]
EOF
)
	run b run "$p" --output quiet
	assert_status 1
	run --separate-stderr b cancel
	assert_status 2
	assert_eq "$stderr" "baton cancel: run $(newest) is not running: it ended failed (exit 1)"
}

@test "unknown and ambiguous run ids: resume, wait and cancel exit 2 saying so" {
	p=$(plan ok <<'EOF'
steps: ["true"]
EOF
)
	for verb in resume wait cancel; do
		run --separate-stderr b "$verb"
		assert_status 2
		assert_eq "$stderr" "baton $verb: no runs recorded in $BATON_STATE_DIR"
	done
	run b run "$p" --output quiet
	run b run "$p" --output quiet
	ids=$(sql "SELECT id FROM runs ORDER BY start_ms DESC, rowid DESC" | tr '\n' ' ')
	read -r id2 id1 <<<"$ids"
	# ids begin with the time: both runs begin with the same hour (a run at hh:59:59 may come out unlucky)
	prefix=${id1:0:9}
	[ "${id2:0:9}" = "$prefix" ] || skip "the two runs straddle an hour"
	for verb in resume wait cancel; do
		run --separate-stderr b "$verb" zz-no-such-run
		assert_status 2
		assert_eq "$stderr" "baton $verb: no run 'zz-no-such-run' is recorded in $BATON_STATE_DIR ('baton runs' lists them)"
		run --separate-stderr b "$verb" "$prefix"
		assert_status 2
		assert_eq "$stderr" "baton $verb: run '$prefix' is ambiguous: it begins $id2, $id1"
	done
	# a unique prefix is enough
	run b wait "${id1:0:${#id1}-1}"
	assert_status 0
}

# killed PLAN [ARGS...]: starts `baton run` in the background, SIGKILLs it once every
# task of PLAN (one per 'run:' line) has its process, and sets KILLED to the run's id.
killed() {
	local ev="$E2E_TMP/killed-$RANDOM.jsonl" pid n i
	"$BATON" run "$@" --output quiet --events "$ev" 3>&- &
	pid=$!
	n=$(grep -c 'run:' "$1")
	for i in $(seq 200); do
		# shellcheck disable=SC2002 # the file may not be there yet: 0, not an error
		[ "$(cat "$ev" 2>/dev/null | grep -c '"type":"task.process"')" -ge "$n" ] && break
		sleep 0.05
	done
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null || true
	KILLED=$(ev "$ev" 'E[0]["run"]')
}

@test "a crashed run: cancel ends what it left running at once; a command that ignores SIGTERM gets SIGKILL after 2 s" {
	p=$(plan meek <<EOF
steps:
  - id: both
    parallel:
      - { id: one, run: "sleep 30.$E2E_MARK" }
      - { id: two, run: "sleep 30.$E2E_MARK; true" }
EOF
)
	killed "$p"
	assert_eq "$(mark_pids | wc -l)" 2 "commands of the killed run still running"
	run --separate-stderr b wait "$KILLED"
	assert_status 1
	assert_contains "$stderr" "baton wait: run $KILLED crashed (its controller, pid"
	start=$(now_ms)
	run --separate-stderr b cancel "$KILLED"
	took=$(($(now_ms) - start))
	assert_status 0
	assert_contains "$stderr" "baton cancel: run $KILLED had crashed: ended 2 process groups it left running here"
	assert_contains "$stderr" "'baton resume $KILLED' re-runs what did not succeed"
	assert_no_leftovers
	# they end at SIGTERM: no waiting out the grace (nor for init to reap them)
	assert_le "$took" 700 "ms to end them"
	p=$(plan stubborn <<EOF
steps:
  - { id: stubborn, run: "trap '' TERM; sleep 30.$E2E_MARK; true" }
EOF
)
	killed "$p"
	start=$(now_ms)
	run --separate-stderr b cancel "$KILLED"
	took=$(($(now_ms) - start))
	assert_status 0
	assert_contains "$stderr" "ended 1 process group it left running here"
	assert_no_leftovers
	assert_ge "$took" 1900 "ms before SIGKILL"
	assert_le "$took" 4000 "ms before SIGKILL"
}

# ---------------------------------------------------------------------------
# resume

@test "resume carries outputs: a step carried over is not run again, and a later step reads its recorded output" {
	p=$(plan carry <<EOF
steps:
  - { id: gen, run: "echo x >> $M/gen; echo value-\$\$" }
  - { id: use, run: "echo x >> $M/use; echo \"got \${{ steps.gen.stdout }}\" > $M/use.out; test -e $M/flag" }
EOF
)
	run b run "$p" --output quiet
	assert_status 1
	first=$(newest)
	printed=$(cat "$M/use.out")
	assert_match "$printed" "^got value-[0-9]+$"
	touch "$M/flag"
	run --separate-stderr b resume --output plain --events "$EV"
	assert_status 0
	assert_contains "$stderr" "baton: resuming run $first (failed)"
	assert_eq "$(count gen)" 1 "gen ran once, in the first run"
	assert_eq "$(count use)" 2 "use ran again"
	assert_eq "$(cat "$M/use.out")" "$printed" "use read what gen printed in the first run"
	ev_valid "$EV"
	assert_eq "$(ev "$EV" 'E[0]["resumed_from"]')" "$first"
	assert_eq "$(ev "$EV" 'tend("gen")["reused"]' 'tend("use")["reused"]' 'starts()')" "true
false
use"
	second=$(newest)
	assert_eq "$(tasks "$second")" "gen success 1
use success 0"
	assert_eq "$(sql "SELECT resumed_from, state FROM runs WHERE id = ?" "$second")" "$first|success"
	# a resume of the resume carries over from both: nothing runs
	run b resume --output quiet
	assert_status 0
	assert_eq "$(count gen)/$(count use)" "1/2"
}

@test "resume: a command changed in the plan runs again, and stderr says so; the others are carried over" {
	p=$(plan change <<EOF
steps:
  - { id: a, run: "echo x >> $M/a; echo one" }
  - { id: b, run: "echo x >> $M/b" }
  - { id: c, run: "echo x >> $M/c; test -e $M/flag" }
EOF
)
	run b run "$p" --output quiet
	assert_status 1
	first=$(newest)
	sed -i 's/echo one/echo two/' "$p"
	touch "$M/flag"
	run --separate-stderr b resume --output plain
	assert_status 0
	assert_contains "$stderr" "baton: a: its command or environment changed since run $first: it runs again"
	assert_not_contains "$stderr" "baton: b:"
	assert_contains "$output" "[a] two"
	assert_eq "$(count a)/$(count b)/$(count c)" "2/1/2"
}

@test "resume --only STEP runs only that step of what did not succeed" {
	p=$(plan only <<EOF
steps:
  - { id: x, run: "echo x >> $M/x; test -e $M/flag", continue_on_error: true }
  - { id: y, run: "echo x >> $M/y; test -e $M/flag" }
EOF
)
	run b run "$p" --output quiet
	assert_status 1
	touch "$M/flag"
	run b resume --only x --output quiet
	assert_status 0
	assert_eq "$(count x)/$(count y)" "2/1" "runs of x/y"
	second=$(newest)
	assert_eq "$(tasks "$second")" "x success 0"
	# --only given again replaces the recorded one
	run b resume --only y --output quiet
	assert_status 0
	assert_eq "$(count x)/$(count y)" "2/2" "runs of x/y"
}

@test "resume of a run whose plan file is gone: an error that says --snapshot; --snapshot runs the recorded copy" {
	mkdir sub
	cat >sub/gone.yaml <<EOF
steps:
  - { id: a, run: "echo x >> $M/a" }
  - { id: b, run: "echo x >> $M/b; test -e $M/flag" }
EOF
	run b run sub/gone.yaml --output quiet
	assert_status 1
	id=$(newest)
	rm -r sub
	touch "$M/flag"
	run --separate-stderr b resume
	assert_status 2
	assert_contains "$stderr" "baton resume: the plan of run $id, $E2E_TMP/sub/gone.yaml, cannot be read (No such file or directory)"
	assert_contains "$stderr" "'baton resume $id --snapshot' runs the copy recorded with the run"
	assert_eq "$(count b)" 1 "nothing ran"
	# from another directory too: the run is found by id, the plan is the recorded text
	cd /
	run b resume "$id" --snapshot --output quiet
	assert_status 0
	assert_eq "$(count a)/$(count b)" "1/2"
}

@test "resume from another directory: the recorded --var-file, --secret-file and --inventory are found where the run started" {
	mkdir -p here/conf
	echo "greeting: hello" >here/conf/vars.yaml
	printf 's3cret\n' >here/conf/token
	# a host no step uses: the file must still be read
	echo "hosts: { far: { address: 192.0.2.1 } }" >here/conf/inv.yaml
	cat >here/p.yaml <<EOF
vars: { greeting: hi }
secrets: [token]
steps:
  - { id: a, run: "echo \${{ vars.greeting }} \${{ vars.token }} >> $M/a; pwd >> $M/where; test -e $M/flag" }
EOF
	cd here
	run b run p.yaml --var-file conf/vars.yaml --secret-file=token=conf/token --inventory conf/inv.yaml --output quiet
	assert_status 1
	touch "$M/flag"
	cd /
	run --separate-stderr b resume --output quiet
	assert_status 0
	assert_eq "$(cat "$M/a")" "hello s3cret
hello s3cret"
	# the resumed command ran where the run was started, not in /
	assert_eq "$(sort -u "$M/where")" "$BATS_TEST_TMPDIR/here" "where the commands ran"
	run b resume --help
	assert_contains "$output" "It runs in the directory the run was started in"
}

@test "lock: and resume: a resume takes the plan's lock like any run" {
	p=$(plan locked <<EOF
lock: deploy
steps:
  - { id: a, run: "echo x >> $M/a" }
  - { id: b, run: "echo x >> $M/b; test -e $M/flag" }
EOF
)
	run b run "$p" --output quiet
	assert_status 1
	first=$(newest)
	touch "$M/flag"
	h=$(plan holder <<EOF
lock: deploy
steps:
  - { id: hold, run: "sleep 30.$E2E_MARK" }
EOF
)
	"$BATON" run "$h" --output quiet --events "$EV" 3>&- &
	pid=$!
	wait_for_event "$EV" task.start
	run --separate-stderr b resume "$first" --output quiet
	assert_status 4
	assert_contains "$stderr" "lock deploy is held by run"
	assert_eq "$(count b)" 1 "nothing ran while the lock was held"
	kill -TERM "$pid"
	wait_pid "$pid" 10
	run b resume "$first" --output quiet
	assert_status 0
	assert_eq "$(count a)/$(count b)" "1/2"
}

# ---------------------------------------------------------------------------
# the store itself

@test "the state directory is created 0700 and runs.db 0600, whatever the umask" {
	p=$(plan ok <<'EOF'
steps: ["true"]
EOF
)
	umask 000
	export BATON_STATE_DIR="$E2E_TMP/deep/er/state"
	run b run "$p" --output quiet
	assert_status 0
	assert_eq "$(stat -c %a "$BATON_STATE_DIR")" 700 "the state directory's mode"
	assert_eq "$(stat -c %a "$BATON_STATE_DIR/runs.db")" 600 "runs.db's mode"
	id=$(newest)
	assert_eq "$(stat -c %a "$BATON_STATE_DIR/runs/$id")" 700 "the run's directory's mode"
	assert_eq "$(stat -c %a "$BATON_STATE_DIR/runs/$id/events.jsonl")" 600 "events.jsonl's mode"
	for f in "$BATON_STATE_DIR"/runs.db-*; do
		[ -e "$f" ] || continue
		assert_eq "$(stat -c %a "$f")" 600 "$f's mode"
	done
}

@test "a state directory that cannot be written: the run still runs (exit 0), and stderr says it is not recorded" {
	p=$(plan ok <<EOF
steps:
  - { id: a, run: "echo x >> $M/a" }
EOF
)
	if [ "$(id -u)" = 0 ]; then
		# root writes whatever the modes say: a path through a file cannot be a directory for anyone
		export BATON_STATE_DIR=/dev/null/state
	else
		mkdir ro
		chmod 500 ro
		export BATON_STATE_DIR="$E2E_TMP/ro/state"
	fi
	run --separate-stderr b run "$p" --output plain
	assert_status 0
	assert_eq "$(count a)" 1
	assert_match "$stderr" "^baton: this run is not recorded: cannot create the state directory $BATON_STATE_DIR: "
	# --detach needs it: it says so and runs nothing
	run --separate-stderr b run "$p" --detach
	assert_status 1
	assert_contains "$stderr" "baton: the run did not start in the background: cannot create the state directory"
	assert_eq "$(count a)" 1
}

@test "BATON_NO_STORE=1: nothing is recorded, nothing said" {
	p=$(plan ok <<'EOF'
steps: ["true"]
EOF
)
	BATON_NO_STORE=1 run --separate-stderr b run "$p" --output quiet
	assert_status 0
	assert_eq "$stderr" ""
	assert_file_absent "$BATON_STATE_DIR"
}

@test "two runs at once sharing one store: both recorded, every task of each" {
	mk() {
		{
			echo "steps:"
			echo "  - id: $1"
			printf '    for_each: ['
			seq -s, 0 59 | tr -d '\n'
			echo ']'
			echo "    run: \"sleep 0.0\${{ index }}; echo $1 \${{ index }}\""
		} | plan "$1"
	}
	p1=$(mk one)
	p2=$(mk two)
	b run "$p1" -j 4 --output quiet &
	pid1=$!
	b run "$p2" -j 4 --output quiet &
	pid2=$!
	wait_pid "$pid1" 30
	assert_eq "$WAIT_STATUS" 0 "the first run's exit status"
	wait_pid "$pid2" 30
	assert_eq "$WAIT_STATUS" 0 "the second run's exit status"
	assert_eq "$(sql "SELECT state, exit_code, n_success FROM runs" | sort -u)" "success|0|60"
	assert_eq "$(sql "SELECT count(*) FROM runs")" 2
	for id in $(sql "SELECT id FROM runs"); do
		assert_eq "$(tasks "$id" | grep -c ' success 0$')" 60 "succeeded tasks of run $id"
		assert_eq "$(tasks "$id" | wc -l)" 60 "tasks of run $id"
		assert_eq "$(tasks "$id" | cut -d'#' -f1 | sort -u | wc -l)" 1 "one step's tasks in run $id"
	done
	assert_eq "$(sql "PRAGMA integrity_check")" ok
}

@test "BATON_KEEP_RUNS=3: older runs are pruned, with their runs/ID directories" {
	p=$(plan ok <<'EOF'
steps: ["true"]
EOF
)
	for i in 1 2 3 4 5; do
		BATON_KEEP_RUNS=3 run b run "$p" --output quiet
		assert_status 0
	done
	assert_eq "$(sql "SELECT count(*) FROM runs")" 3 "runs kept"
	kept=$(sql "SELECT id FROM runs ORDER BY id" | tr '\n' ' ')
	dirs=$(ls "$BATON_STATE_DIR/runs" | sort | tr '\n' ' ')
	assert_eq "$dirs" "$kept" "the runs/ directories are those of the runs kept"
	assert_eq "$(sql "SELECT count(*) FROM tasks WHERE k >> 32 NOT IN (SELECT rowid FROM runs)")" 0 "rows of pruned runs"
	assert_eq "$(sql "SELECT count(*) FROM files WHERE run NOT IN (SELECT id FROM runs)")" 0 "files of pruned runs"
	# without it, 200: nothing more goes
	run b run "$p" --output quiet
	assert_eq "$(sql "SELECT count(*) FROM runs")" 4
}

@test "WAL: a reader in a tight loop never holds up the writer" {
	{
		echo "steps:"
		echo "  - id: many"
		printf '    for_each: ['
		seq -s, 0 499 | tr -d '\n'
		echo ']'
		echo '    run: "sleep 0.01"'
	} >big.yaml
	start=$(now_ms)
	run b run big.yaml -j 8 --output plain
	alone=$(($(now_ms) - start))
	assert_status 0
	# plain output: every end is shown, so committed, as it happens (quiet commits every 100 ms)
	# the reader: as fast as it can, until the run has ended
	"$E2E_PY" -S -c '
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10)
n = errors = 0
seen = set()
end = time.monotonic() + 60
while not os.path.exists(sys.argv[2]) and time.monotonic() < end:
    try:
        seen.add(db.execute("SELECT count(*) FROM tasks").fetchone()[0])
        n += 1
    except sqlite3.Error as e:
        errors += 1
print(n, errors, len(seen))
' "$BATON_STATE_DIR/runs.db" "$E2E_TMP/stop" >reader.out 3>&- &
	reader=$!
	start=$(now_ms)
	run b run big.yaml -j 8 --output plain
	read_too=$(($(now_ms) - start))
	touch "$E2E_TMP/stop"
	wait "$reader"
	assert_status 0
	read -r n errors seen <reader.out
	echo "# alone ${alone} ms, with a reader ${read_too} ms; the reader read $n times, saw $seen counts, $errors errors" >&3
	assert_eq "$errors" 0 "the reader's errors"
	assert_ge "$n" 100 "reads while the run ran"
	assert_ge "$seen" 10 "distinct task counts the reader saw (it read while the run wrote)"
	# two cores shared with the reader: loosely bound
	assert_le "$read_too" $((alone * 3 + 2000)) "ms with a reader (alone: $alone ms)"
	assert_eq "$(sql "SELECT count(*) FROM tasks WHERE kind IS NULL AND status = 'success'")" 1000
}

@test "resume: a task whose environment from the plan changed runs again; baton's own environment does not count" {
	p=$(plan envs <<EOF
vars: { region: eu }
steps:
  - { id: same, run: "echo x >> $M/same" }
  - id: region
    env: { REGION: "\${{ vars.region }}" }
    run: echo x >> $M/region
  - { id: last, run: "echo x >> $M/last; test -e $M/flag" }
EOF
)
	run b run "$p" --output quiet
	assert_status 1
	touch "$M/flag"
	# another terminal: a different PATH and HOME must not make anything run again
	run --separate-stderr env PATH="/usr/local/bin:$PATH" HOME=/nonexistent "$BATON" resume --var region=us --output quiet
	assert_status 0
	assert_eq "$(wc -l <"$M/same")" 1 "runs of 'same' (carried over)"
	assert_eq "$(wc -l <"$M/region")" 2 "runs of 'region' (its REGION changed)"
	assert_eq "$(wc -l <"$M/last")" 2 "runs of 'last' (it had failed)"
	assert_contains "$stderr" "region: its command or environment changed"
}
