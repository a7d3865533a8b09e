# Helpers for fanout.bats and continuations.bats: run baton on the plans in
# fanout-plans/ and check its event stream (JSON lines) with python3.
# (helpers.bash is another suite's; nothing here depends on it.)

FO_E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FO_REPO="$(cd "$FO_E2E_DIR/../.." && pwd)"
FO_PLANS="$FO_E2E_DIR/fanout-plans"
# no run may print that it stalled (run and teardown check it)
. "$FO_E2E_DIR/stall_guard.bash"

# Absolute path of $1 (relative to the directory the suite was started from).
fo_abs() {
	case "$1" in
	/*) printf '%s\n' "$1" ;;
	*) printf '%s\n' "$PWD/$1" ;;
	esac
}

fo_setup() {
	BATON="$(fo_abs "${BATON:-$FO_REPO/build/baton}")"
	BATON_ASAN="$(fo_abs "${BATON_ASAN:-$FO_REPO/build/baton-asan}")"
	export BATON BATON_ASAN
	if [ ! -x "$BATON" ]; then
		echo "BATON=$BATON is not an executable: run 'make all' first" >&2
		return 1
	fi
	command -v python3 >/dev/null || {
		echo "python3 is needed to read the event stream" >&2
		return 1
	}
	export NO_COLOR=1
	unset GITHUB_ACTIONS
	# the tests' own scratch space, also seen by the plans' commands
	export FO_TMP="$BATS_TEST_TMPDIR"
	EV="$BATS_TEST_TMPDIR/events.jsonl"
	FO_PID=
	cd "$BATS_TEST_TMPDIR" || return 1
}

# Kills only what this test started: a baton left in the background, and the
# process group of a task that wrote its pid to $FO_TMP/NAME.pid (only while
# that pid is still such a task: its command line mentions FO_TMP). Then
# fails the test if a run printed that it stalled (stall_guard.bash).
fo_teardown() {
	if [ -n "${FO_PID:-}" ] && kill -0 "$FO_PID" 2>/dev/null; then
		kill -KILL "$FO_PID" 2>/dev/null
		wait "$FO_PID" 2>/dev/null
	fi
	local f p
	for f in "$BATS_TEST_TMPDIR"/*.pid; do
		[ -f "$f" ] || continue
		p="$(cat "$f")"
		case "$p" in '' | *[!0-9]*) continue ;; esac
		if { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q 'FO_TMP'; then
			kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
		fi
	done
	stall_guard_teardown
}

fo_plan() { printf '%s\n' "$FO_PLANS/$1"; }

# fo_baton ARGS...: the binary under test, bounded in time.
fo_baton() { timeout 30 "$BATON" "$@"; }
fo_baton_asan() { timeout 30 "$BATON_ASAN" "$@"; }

# fo_run PLAN [ARGS...]: `run` baton on fanout-plans/PLAN with plain output
# and the event stream in $EV; stdout and stderr both in $output. Records the
# wall time in FO_MS.
fo_run() {
	local plan="$1"
	shift
	rm -f "$EV"
	local t0
	t0=$(fo_now_ms)
	# 3>&-: a task that outlived a broken baton must not hold bats' output open
	run timeout 30 "$BATON" run "$FO_PLANS/$plan" --output plain --events "$EV" "$@" 3>&-
	FO_MS=$(($(fo_now_ms) - t0))
}

fo_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# fo_status N: the last `run` exited N (prints the output otherwise).
fo_status() {
	if [ "$status" -ne "$1" ]; then
		printf 'expected exit status %s, got %s; output:\n%s\n' "$1" "$status" "$output" >&2
		[ -z "${stderr:-}" ] || printf 'stderr (first 40 lines):\n%s\n' "$(head -n 40 <<<"$stderr")" >&2
		return 1
	fi
}

# fo_within MS: the last fo_run (or fo_wait_exit) took at most MS ms.
fo_within() {
	if [ "$FO_MS" -gt "$1" ]; then
		printf 'baton took %s ms, more than %s ms; output:\n%s\n' "$FO_MS" "$1" "$output" >&2
		return 1
	fi
}

# fo_has TEXT / fo_hasnt TEXT: the last `run`'s output has (not) a line
# containing TEXT.
fo_has() {
	if ! grep -qF -- "$1" <<<"$output"; then
		printf 'output lacks %q; output:\n%s\n' "$1" "$output" >&2
		return 1
	fi
}
fo_hasnt() {
	if grep -qF -- "$1" <<<"$output"; then
		printf 'output should not contain %q; output:\n%s\n' "$1" "$output" >&2
		return 1
	fi
}

# fo_events [FILE] <<'PY' ... PY: runs python3 on the event stream ($EV or
# FILE) with the helpers of FO_PRELUDE; a failed check prints the reason and
# the events, and fails the test.
fo_events() {
	local file="${1:-$EV}"
	[ -s "$file" ] || {
		echo "no events in $file" >&2
		return 1
	}
	python3 -c "$FO_PRELUDE
$(cat)
" "$file"
}

FO_PRELUDE='
import json, sys, datetime
E = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]

def _show(e):
    skip = ("v", "run", "ts", "seq", "type")
    return "%4d %-15s %s" % (e["seq"], e["type"], json.dumps({k: v for k, v in e.items() if k not in skip}))

def fail(msg):
    sys.stderr.write("event check failed: %s\nevents:\n" % msg)
    for e in E:
        if e["type"] not in ("progress",):
            sys.stderr.write(_show(e)[:300] + "\n")
    sys.exit(1)

def check(cond, msg):
    if not cond:
        fail(msg)

def ev(type=None, **kw):
    """every event of this type whose fields equal kw, in order"""
    return [e for e in E if (type is None or e["type"] == type)
            and all(e.get(k) == v for k, v in kw.items())]

def one(type, **kw):
    r = ev(type, **kw)
    check(len(r) == 1, "expected exactly one %s %r, found %d" % (type, kw, len(r)))
    return r[0]

def first(type, **kw):
    r = ev(type, **kw)
    check(r, "no %s %r" % (type, kw))
    return r[0]

def last(type, **kw):
    r = ev(type, **kw)
    check(r, "no %s %r" % (type, kw))
    return r[-1]

def none(type, **kw):
    r = ev(type, **kw)
    check(not r, "unexpected %s %r (seq %s)" % (type, kw, [e["seq"] for e in r]))

def before(a, b, what=""):
    """event a comes before event b in the stream"""
    check(a["seq"] < b["seq"], "%s: expected seq %d (%s) before seq %d (%s)" % (
        what, a["seq"], a["type"], b["seq"], b["type"]))

def ms(e):
    t = datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.timestamp() * 1000.0

def status_of(step):
    return one("step.end", step=step)["status"]

def starts(task):
    return ev("task.start", task=task)

def out_lines(task=None):
    return [e["line"] for e in ev("task.output") if task is None or e["task"] == task]

def run_end():
    return one("run.end")

# the seq numbers are 1, 2, 3, ... in the order written
check([e["seq"] for e in E] == list(range(1, len(E) + 1)), "seq is not 1, 2, 3, ...")
'

# ---- baton in the background, for signals ----
# (no `timeout` around it: GNU timeout forwards one SIGINT as two, to the
# child and to its process group, which is exactly what must not happen here)

# fo_start PLAN [ARGS...]: starts baton on fanout-plans/PLAN in the background.
fo_start() {
	local plan="$1"
	shift
	rm -f "$EV"
	"$BATON" run "$FO_PLANS/$plan" --output plain --events "$EV" "$@" >"$BATS_TEST_TMPDIR/out.txt" 2>&1 3>&- &
	FO_PID=$!
}

# fo_wait_for TEXT [SECONDS]: waits until the event stream has a line with TEXT.
fo_wait_for() {
	local text="$1" limit=$((${2:-10} * 20)) i
	for ((i = 0; i < limit; i++)); do
		grep -qF -- "$text" "$EV" 2>/dev/null && return 0
		kill -0 "$FO_PID" 2>/dev/null || break
		sleep 0.05
	done
	grep -qF -- "$text" "$EV" 2>/dev/null && return 0
	echo "baton never wrote an event with $text; events:" >&2
	cat "$EV" >&2 2>/dev/null
	return 1
}

# fo_wait_exit SECONDS: waits for the background baton; sets status, output
# and FO_MS (ms from this call to its exit). Kills it and fails after SECONDS.
fo_wait_exit() {
	local limit=$((${1:-10} * 50)) i t0
	t0=$(fo_now_ms)
	for ((i = 0; i < limit; i++)); do
		kill -0 "$FO_PID" 2>/dev/null || break
		sleep 0.02
	done
	FO_MS=$(($(fo_now_ms) - t0))
	if kill -0 "$FO_PID" 2>/dev/null; then
		kill -KILL "$FO_PID" 2>/dev/null
		wait "$FO_PID" 2>/dev/null
		FO_PID=
		echo "baton did not exit within ${1:-10}s; output:" >&2
		cat "$BATS_TEST_TMPDIR/out.txt" >&2
		return 1
	fi
	status=0
	wait "$FO_PID" || status=$?
	FO_PID=
	output="$(cat "$BATS_TEST_TMPDIR/out.txt")"
}

# fo_asan_clean: the last `run --separate-stderr` left no sanitizer report.
fo_asan_clean() {
	if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' <<<"${stderr:-}"; then
		printf 'sanitizer report on stderr:\n%s\n' "$stderr" >&2
		return 1
	fi
}
