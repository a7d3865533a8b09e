# Shared helpers for baton's end-to-end tests (bats).
#
# Every test file does:
#     load helpers
#     setup() { e2e_setup; }
#     teardown() { e2e_teardown; }
#
# Binaries come from $BATON, $BATON_ASAN and $MAXRSS (set by `make e2e`), else
# from build/ next to this directory. Events are parsed with python3 (no jq).

bats_require_minimum_version 1.5.0

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$E2E_DIR/../.." && pwd)"
FIXTURES="$E2E_DIR/plans"
# no run may print that it stalled (run and teardown check it)
. "$E2E_DIR/stall_guard.bash"
# runs are recorded: never in the user's own run store (run.sh sets one for the suite)
if [ -z "${BATON_STATE_DIR:-}" ]; then
	export BATON_STATE_DIR="${BATS_RUN_TMPDIR:-${TMPDIR:-/tmp}}/baton-state"
fi
: "${BATON:=$REPO_DIR/build/baton}"
: "${BATON_ASAN:=$REPO_DIR/build/baton-asan}"
: "${MAXRSS:=$REPO_DIR/build/maxrss}"
export BATON BATON_ASAN MAXRSS

# The pyenv shim costs ~100 ms per call; resolve the real interpreter once.
if [ -z "${E2E_PY:-}" ]; then
	E2E_PY="$(python3 -c 'import sys; print(sys.executable)')"
	export E2E_PY
fi

# How long any single baton invocation may take before the test gives up.
: "${E2E_TIMEOUT:=20}"

e2e_setup() {
	[ -x "$BATON" ] || {
		echo "baton binary not found at $BATON (run make all)" >&2
		return 1
	}
	cd "$BATS_TEST_TMPDIR" || return 1
	export E2E_TMP="$BATS_TEST_TMPDIR"
	# A number unique to this test, used as a sleep argument so that mark_pids can
	# find exactly the processes this test started (and nobody else's).
	E2E_MARK="7$((RANDOM % 9 + 1))$RANDOM$RANDOM"
	export E2E_MARK
	# CI runners set these; they change the human output. Tests that want them
	# set them explicitly.
	unset GITHUB_ACTIONS GITHUB_STEP_SUMMARY GITLAB_CI BUILDKITE NO_COLOR
	EV="$BATS_TEST_TMPDIR/events.jsonl"
}

e2e_teardown() {
	# Kill (by pid) anything this test left behind; the test itself asserts
	# that nothing was left where that matters. Then fail the test if a run
	# printed that it stalled (stall_guard.bash).
	local pids
	pids="$(mark_pids)"
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
	fi
	stall_guard_teardown
}

# mark_pids: the pids of live `sleep ...$E2E_MARK...` processes (this test's
# own), found through /proc without forking (no dependency on pgrep).
mark_pids() {
	local f a0 a1 pid
	for f in /proc/[0-9]*/cmdline; do
		a0='' a1=''
		{ IFS= read -r -d '' a0 && IFS= read -r -d '' a1; } 2>/dev/null <"$f" || true
		case "$a0" in *sleep) ;; *) continue ;; esac
		case "$a1" in *"$E2E_MARK"*) ;; *) continue ;; esac
		pid=${f#/proc/}
		printf '%s\n' "${pid%/cmdline}"
	done
	return 0
}

# ---------------------------------------------------------------------------
# running baton

# b ARGS...: run the normal build, bounded in time. The child's fd 3 (bats'
# own output channel) is closed so that nothing baton leaks can hang bats.
b() {
	timeout -k 5 "$E2E_TIMEOUT" "$BATON" "$@" 3>&-
}

# b_asan ARGS...: the same with the ASan/UBSan build.
b_asan() {
	ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
		timeout -k 5 60 "$BATON_ASAN" "$@" 3>&-
}

# plan NAME: write stdin to $BATS_TEST_TMPDIR/NAME.yaml and print the path.
plan() {
	local f="$BATS_TEST_TMPDIR/$1.yaml"
	cat >"$f"
	printf '%s\n' "$f"
}

# ---------------------------------------------------------------------------
# assertions (print what differed, then fail)

fail() {
	printf 'FAIL: %s\n' "$*" >&2
	return 1
}

assert_eq() { # ACTUAL EXPECTED [WHAT]
	if [ "$1" != "$2" ]; then
		printf 'FAIL: %s\n  expected: %s\n  actual:   %s\n' "${3:-values differ}" "$2" "$1" >&2
		return 1
	fi
}

assert_contains() { # HAYSTACK NEEDLE [WHAT]
	if [[ "$1" != *"$2"* ]]; then
		printf 'FAIL: %s\n  expected to contain: %s\n  in:\n%s\n' "${3:-missing text}" "$2" "$1" >&2
		return 1
	fi
}

assert_not_contains() { # HAYSTACK NEEDLE [WHAT]
	if [[ "$1" == *"$2"* ]]; then
		printf 'FAIL: %s\n  expected NOT to contain: %s\n  in:\n%s\n' "${3:-unexpected text}" "$2" "$1" >&2
		return 1
	fi
}

assert_match() { # STRING ERE [WHAT]: some line of STRING matches ERE
	local line
	while IFS= read -r line; do
		[[ "$line" =~ $2 ]] && return 0
	done <<<"$1"
	printf 'FAIL: %s\n  expected a line matching: %s\n  in:\n%s\n' "${3:-no match}" "$2" "$1" >&2
	return 1
}

# assert_status N: after `run`, check $status, showing the output otherwise.
assert_status() {
	if [ "$status" != "$1" ]; then
		printf 'FAIL: exit status %s, expected %s\n--- output:\n%s\n' "$status" "$1" "$output" >&2
		if [ -n "${stderr:-}" ]; then printf -- '--- stderr:\n%s\n' "$stderr" >&2; fi
		return 1
	fi
}

assert_le() { # A B [WHAT]: integer A <= B
	if ! [ "$1" -le "$2" ]; then
		printf 'FAIL: %s: %s is not <= %s\n' "${3:-comparison}" "$1" "$2" >&2
		return 1
	fi
}

assert_ge() { # A B [WHAT]: integer A >= B
	if ! [ "$1" -ge "$2" ]; then
		printf 'FAIL: %s: %s is not >= %s\n' "${3:-comparison}" "$1" "$2" >&2
		return 1
	fi
}

assert_file_absent() {
	if [ -e "$1" ]; then
		fail "$1 exists: ${2:-something ran that should not have}"
	fi
}

# assert_no_leftovers: no process of this test (sleep ...$E2E_MARK) is alive.
# Killed processes may take a moment to disappear, so look for up to 2 s.
assert_no_leftovers() {
	local i pids
	for i in $(seq 40); do
		pids="$(mark_pids)"
		[ -n "$pids" ] || return 0
		sleep 0.05
	done
	printf 'FAIL: processes left behind:\n' >&2
	for i in $pids; do
		printf '  %s: %s\n' "$i" "$(tr '\0' ' ' </proc/"$i"/cmdline 2>/dev/null)" >&2
	done
	return 1
}

# wait_for_event FILE TYPE [SECONDS]: poll until an event of TYPE is in FILE.
wait_for_event() {
	local i n=$((${3:-10} * 20))
	for i in $(seq "$n"); do
		grep -q "\"type\":\"$2\"" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	fail "no $2 event in $1 after ${3:-10}s"
}

# wait_pid PID SECONDS: wait for a background process, SIGKILL it after
# SECONDS; sets WAIT_STATUS to its exit status (or 'hung').
wait_pid() {
	local pid=$1 i n=$((${2:-15} * 20))
	for i in $(seq "$n"); do
		if ! kill -0 "$pid" 2>/dev/null; then
			WAIT_STATUS=0
			wait "$pid" || WAIT_STATUS=$?
			return 0
		fi
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	WAIT_STATUS=hung
	return 0
}

# ---------------------------------------------------------------------------
# events (JSON lines)

# ev_valid FILE: every line is one JSON object of schema 1 with the envelope,
# fields and ordering that architecture.md and baton-events(7) promise.
ev_valid() {
	"$E2E_PY" -S -c "$_EV_VALIDATE" "$@"
}

_EV_VALIDATE='
import json, re, sys
path = sys.argv[1]
errs = []
def err(m):
    if len(errs) < 30: errs.append(m)
data = open(path, "rb").read()
if not data:
    print("events file is empty"); sys.exit(1)
if not data.endswith(b"\n"):
    err("the last line does not end with a newline")
E = []
for i, raw in enumerate(data.split(b"\n")[:-1], 1):
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError as x:
        err("line %d is not UTF-8: %s" % (i, x)); continue
    try:
        e = json.loads(s)
    except ValueError as x:
        err("line %d is not JSON (%s): %.200s" % (i, x, s)); continue
    if not isinstance(e, dict):
        err("line %d is not an object" % i); continue
    E.append(e)
REQ = {
    "run.start": ["plan", "name", "dry_run", "tasks", "resumed_from"],
    "step.start": ["step", "kind"],
    "step.end": ["step", "kind", "status", "duration_ms"],
    "task.start": ["task", "step", "host", "item", "attempt", "command", "label"],
    "task.output": ["task", "stream", "line"],
    "task.retry": ["task", "attempt", "delay_ms", "reason"],
    "task.end": ["task", "status", "exit_code", "signal", "duration_ms", "attempt", "reused", "label"],
    "task.process": ["task", "host", "pgid", "remote"],
    "task.transfer": ["task", "host", "bytes", "total"],
    "progress": ["done", "failed", "tolerated", "running", "waiting", "total"],
    "run.end": ["status", "exit_code", "duration_ms", "counts"],
    "batch.start": ["step", "batch", "instances", "labels"],
    "batch.end": ["step", "batch", "instances", "labels", "failed", "pause_ms"],
    "barrier.wait": ["barrier", "step", "arrived", "expected"],
    "barrier.release": ["barrier", "step", "arrived", "expected"],
    "warning": ["message"],
    "run.cancel": ["signal", "running", "kill"],
    "approve.wait": ["step", "message"],
    "approve.end": ["step", "message", "approved", "by"],
    "plan.task": ["task", "step", "host", "item", "label", "attempt", "command", "shell", "cwd", "batch",
                  "handler", "condition"],
}
STEP_ST = {"success", "failed", "timeout", "cancelled", "skipped"}
TASK_ST = {"success", "failed", "timeout", "cancelled"}
KINDS = {"run", "steps", "parallel", "stages", "stage", "sleep", "barrier", "join", "approve", "for_each", "copy", "fetch"}
APPROVE_BY = {"tty", "--yes", "BATON_APPROVE", "timeout", "no terminal", "cancelled"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RUNID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
def isint(x): return isinstance(x, int) and not isinstance(x, bool)
run_id = E[0].get("run") if E else None
for n, e in enumerate(E, 1):
    keys = list(e.keys())
    if keys[:5] != ["v", "seq", "ts", "run", "type"]:
        err("event %d: envelope keys are %s, not v, seq, ts, run, type first" % (n, keys[:5]))
    if e.get("v") != 1 or not isint(e.get("v")): err("event %d: v is %r" % (n, e.get("v")))
    if e.get("seq") != n: err("event %d: seq is %r (must grow by one from 1)" % (n, e.get("seq")))
    if not isinstance(e.get("ts"), str) or not TS.match(e["ts"]): err("event %d: bad ts %r" % (n, e.get("ts")))
    if e.get("run") != run_id: err("event %d: run %r differs from %r" % (n, e.get("run"), run_id))
    t = e.get("type")
    if t not in REQ:
        err("event %d: unknown type %r" % (n, t)); continue
    for f in REQ[t]:
        if f not in e: err("event %d (%s): field %r missing" % (n, t, f))
    if t in ("step.start", "step.end") and e.get("kind") not in KINDS:
        err("event %d: bad kind %r" % (n, e.get("kind")))
    if t == "step.end" and e.get("status") not in STEP_ST:
        err("event %d: bad step status %r" % (n, e.get("status")))
    if t == "task.end":
        if e.get("status") not in TASK_ST: err("event %d: bad task status %r" % (n, e.get("status")))
        if (e.get("status") != "success") != ("reason" in e):
            err("event %d: task.end reason must be present exactly when status is not success" % n)
        if e.get("exit_code") is not None and not isint(e.get("exit_code")): err("event %d: exit_code %r" % (n, e.get("exit_code")))
        if e.get("signal") is not None and not isint(e.get("signal")): err("event %d: signal %r" % (n, e.get("signal")))
        # the end of a copy says whether it changed anything and how many bytes it wrote; both or neither
        if ("changed" in e) != ("bytes" in e): err("event %d: changed and bytes go together" % n)
        if "changed" in e and not isinstance(e["changed"], bool): err("event %d: changed %r" % (n, e["changed"]))
        if "bytes" in e and (not isint(e["bytes"]) or e["bytes"] < 0): err("event %d: bytes %r" % (n, e["bytes"]))
        if e.get("bytes") and e.get("changed") is not True: err("event %d: bytes written but changed false" % n)
    if t == "task.transfer":
        # a running copy: bytes so far, of its total (null: not known); only between its start and its end
        if not isint(e.get("bytes")) or e["bytes"] <= 0: err("event %d: task.transfer bytes %r" % (n, e.get("bytes")))
        tot = e.get("total")
        if tot is not None and (not isint(tot) or tot < 0 or (isint(e.get("bytes")) and e["bytes"] > tot)):
            err("event %d: task.transfer total %r" % (n, tot))
        tid = e.get("task")
        last = [x.get("type") for x in E[:n - 1] if x.get("task") == tid and x.get("type") in ("task.start", "task.end")]
        if last[-1:] != ["task.start"]:
            err("event %d: task.transfer of %r outside its task" % (n, tid))
    if t == "task.output":
        if e.get("stream") not in ("stdout", "stderr"): err("event %d: stream %r" % (n, e.get("stream")))
        if not isinstance(e.get("line"), str): err("event %d: line is not a string" % n)
    if t == "task.start":
        if not isinstance(e.get("command"), str): err("event %d: command is not a string" % n)
        if e.get("host") is not None: err("event %d: host not null for a local task" % n)
        # a task of an item carries #INDEX, and only such a task has an item
        if (e.get("item") is not None) != ("#" in (e.get("task") or "")):
            err("event %d: item %r does not match task id %r" % (n, e.get("item"), e.get("task")))
        # a task of an item is shown with a label (a non-empty string), and only such a task
        lab = e.get("label")
        if (lab is not None) != (e.get("item") is not None) or (lab is not None and not (isinstance(lab, str) and lab)):
            err("event %d: label %r does not match item %r" % (n, lab, e.get("item")))
    if t == "approve.end":
        if not isinstance(e.get("approved"), bool): err("event %d: approved is %r" % (n, e.get("approved")))
        if e.get("by") not in APPROVE_BY: err("event %d: by is %r" % (n, e.get("by")))
        if e.get("approved") != (e.get("by") in ("tty", "--yes", "BATON_APPROVE")) and e.get("by") != "tty":
            err("event %d: approved %r by %r" % (n, e.get("approved"), e.get("by")))
    if t in ("batch.start", "batch.end"):
        labs = e.get("labels")
        if not isinstance(labs, list) or len(labs) != len(e.get("instances") or []) or not all(isinstance(x, str) for x in labs):
            err("event %d: labels %r do not match instances %r" % (n, labs, e.get("instances")))
    for f in ("duration_ms", "attempt", "delay_ms"):
        if f in e and not (isint(e[f]) and e[f] >= 0): err("event %d: %s is %r" % (n, f, e[f]))
if E:
    if E[0].get("type") != "run.start": err("the first event is %r, not run.start" % E[0].get("type"))
    if E[-1].get("type") != "run.end": err("the last event is %r, not run.end" % E[-1].get("type"))
    if sum(1 for e in E if e.get("type") == "run.start") != 1: err("not exactly one run.start")
    if sum(1 for e in E if e.get("type") == "run.end") != 1: err("not exactly one run.end")
    dry = E[0].get("dry_run")
    if not isinstance(dry, bool): err("run.start dry_run is not a boolean")
    end = E[-1]
    # 5: the run succeeded but lost output (a write failed), which a warning said
    codes = {"success": (0, 5) if any(e.get("type") == "warning" for e in E) else (0,),
             "failed": (1,), "timeout": (3,), "cancelled": (130, 143)}
    if end.get("type") == "run.end":
        if end.get("exit_code") not in codes.get(end.get("status"), ()):
            err("run.end status %r with exit_code %r" % (end.get("status"), end.get("exit_code")))
        c = end.get("counts")
        if not isinstance(c, dict) or set(c) != STEP_ST | {"tolerated"} or not all(isint(v) for v in c.values()):
            err("run.end counts %r" % (c,))
        elif not dry:
            # counts are of tasks (steps of kind run, copy, fetch), a tolerated failure apart; skipped and cancelled
            # also hold the tasks of fan-outs that never made their instances, and leave out what --only leaves out
            ends = [e for e in E if e.get("type") == "step.end" and e.get("kind") in ("run", "copy", "fetch")]
            for s in ("success", "failed", "timeout"):
                k = sum(1 for e in ends if e.get("status") == s and not e.get("tolerated"))
                if c[s] != k: err("run.end counts[%s] is %r but %d task step.end events have it" % (s, c[s], k))
            k = sum(1 for e in ends if e.get("tolerated") is True)
            if c["tolerated"] != k: err("run.end counts[tolerated] is %r but %d step.end events are tolerated" % (c["tolerated"], k))
            prog = [e for e in E if e.get("type") == "progress"]
            if prog and sum(c.values()) != prog[-1].get("done"):
                err("run.end counts %d tasks, the last progress %r done" % (sum(c.values()), prog[-1].get("done")))
            if prog and prog[-1].get("done") != prog[-1].get("total"):
                err("the last progress says %r of %r done" % (prog[-1].get("done"), prog[-1].get("total")))
    last = [e for e in E if e.get("type") != "warning"]
    if not dry and len(last) >= 2 and last[-2].get("type") != "progress":
        err("the event before run.end is %r, not progress" % last[-2].get("type"))
    if dry:
        # a dry run: run.start, one plan.task per task it would run, run.end
        mid = [e.get("type") for e in E[1:-1]]
        if any(t != "plan.task" for t in mid): err("a dry run holds %s between run.start and run.end" % sorted(set(mid)))
        sure = [e for e in E if e.get("type") == "plan.task" and e.get("handler") is None and e.get("condition") is None]
        if E[0].get("tasks") is not None and E[0].get("tasks") != len(sure):
            err("run.start tasks is %r, but %d plan.task events are sure to run" % (E[0].get("tasks"), len(sure)))
        for e in E[1:-1]:
            if e.get("attempt") != 1: err("plan.task %r: attempt %r" % (e.get("task"), e.get("attempt")))
    elif any(e.get("type") == "plan.task" for e in E): err("plan.task in a run that is not a dry run")
    # the total grows only by the tasks of handlers (on_success, on_failure, finally) as they start
    total = E[0].get("tasks")
    hseg = re.compile(r"(^|\.)(on_success|on_failure|finally)(\.|#|@|$)")
    handled = len(set(e.get("task") for e in E if e.get("type") == "task.start" and hseg.search(e.get("task") or "")))
    for e in E:
        if e.get("type") == "progress" and total is not None and not (total <= e.get("total") <= total + handled):
            err("progress total %r differs from run.start tasks %r (+%d handler tasks)" % (e.get("total"), total, handled))
# per-task attempt state machine
state = {}
for n, e in enumerate(E, 1):
    t = e.get("type"); k = e.get("task")
    if t == "task.start":
        st = state.get(k)
        if st and st[0] == "running": err("event %d: %s started while running" % (n, k))
        want = st[2] if st and st[2] else (st[1] + 1 if st else 1)
        if e.get("attempt") != want: err("event %d: %s attempt %r, expected %r" % (n, k, e.get("attempt"), want))
        if not re.fullmatch(re.escape(e.get("step") or "") + r"(#\d+)*", k or ""):
            err("event %d: local task id %r is not step %r with #INDEXes" % (n, k, e.get("step")))
        state[k] = ["running", e.get("attempt"), None]
    elif t in ("task.output", "task.process"):
        if not state.get(k) or state[k][0] != "running": err("event %d: %s of %s outside an attempt" % (n, t, k))
        if t == "task.process" and (not isint(e.get("pgid")) or e["pgid"] <= 0): err("event %d: pgid %r" % (n, e.get("pgid")))
    elif t == "task.end" and e.get("reused") is True:
        if state.get(k): err("event %d: reused task %s was also run" % (n, k))
        state[k] = ["ended", e.get("attempt"), None]
    elif t == "task.end":
        st = state.get(k)
        if not st or st[0] != "running": err("event %d: task.end of %s without task.start" % (n, k))
        elif e.get("attempt") != st[1]: err("event %d: task.end attempt %r != %r" % (n, e.get("attempt"), st[1]))
        state[k] = ["ended", e.get("attempt"), None]
    elif t == "task.retry":
        st = state.get(k)
        if not st or st[0] != "ended": err("event %d: task.retry of %s not after its task.end" % (n, k))
        elif e.get("attempt") != st[1] + 1: err("event %d: retry attempt %r after attempt %r" % (n, e.get("attempt"), st[1]))
        else: state[k][2] = e.get("attempt")
step_status = {e.get("step"): e.get("status") for e in E if e.get("type") == "step.end"}
for k, st in state.items():
    if st[0] == "running": err("task %s has no task.end" % k)
    if st[2] and step_status.get(k) != "cancelled":
        err("task %s: retry announced but attempt %r never started (and the step was not cancelled)" % (k, st[2]))
# step nesting
sstart = {}; send = {}
for n, e in enumerate(E, 1):
    t = e.get("type"); s = e.get("step")
    if t == "step.start":
        if s in sstart: err("event %d: second step.start of %s" % (n, s))
        sstart[s] = n
    elif t == "step.end":
        if s in send: err("event %d: second step.end of %s" % (n, s))
        send[s] = n
        if s not in sstart and e.get("status") not in ("skipped", "cancelled"):
            err("event %d: %s never started but ended %r" % (n, s, e.get("status")))
for s in sstart:
    if s not in send: err("step %s has no step.end" % s)
def parent(s):
    # a.b#0 is either step b of item a#0, or item 0 of the for_each a.b
    m = re.match(r"^(.*?)((?:#[0-9]+)*)$", s)
    base, suf = m.group(1), m.group(2)
    cands = []
    if "." in base: cands.append(base.rsplit(".", 1)[0] + suf)
    if suf: cands.append(base + suf.rsplit("#", 1)[0])
    for c in cands:
        if c in sstart or c in send: return c
    return cands[0] if cands else None
for n, e in enumerate(E, 1):
    t = e.get("type")
    if t == "step.start" or t == "step.end":
        p = parent(e["step"])
        while p is not None and p not in sstart and p not in send: p = parent(p)
        if p is None: continue
        if t == "step.start" and not (p in sstart and sstart[p] < n):
            err("event %d: %s starts before its parent %s" % (n, e["step"], p))
        if p in send and send[p] < n:
            err("event %d: %s %s after its parent %s ended" % (n, e["step"], t, p))
    if t in ("task.start", "task.output", "task.end"):
        s = e.get("task")  # the runtime id of a run step, #INDEX included
        if s in sstart and sstart[s] > n: err("event %d: %s of %s before its step.start" % (n, t, s))
        if s in send and send[s] < n: err("event %d: %s of %s after its step.end" % (n, t, s))
        if s not in sstart: err("event %d: %s of %s, a step that never started" % (n, t, s))
if errs:
    print("%s: %d problem(s):" % (path, len(errs)))
    for m in errs: print("  " + m)
    sys.exit(1)
'

# ev FILE EXPR...: evaluate Python expressions over the events of FILE and
# print one result per line (lists space-separated, booleans as true/false).
# Available: E (all events), and the functions below.
ev() {
	"$E2E_PY" -S -c "$_EV_QUERY" "$@"
}

_EV_QUERY='
import json, sys
E = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
def of(t, **kw):
    return [e for e in E if e.get("type") == t and all(e.get(k) == v for k, v in kw.items())]
def one(t, **kw):
    r = of(t, **kw)
    if len(r) != 1: raise SystemExit("expected one %s %r, found %d" % (t, kw, len(r)))
    return r[0]
def seq(t, **kw):
    return one(t, **kw)["seq"]
def status(step):
    return one("step.end", step=step)["status"]
def statuses(*steps):
    return [status(s) for s in steps]
def tend(task, attempt=None):
    r = [e for e in of("task.end", task=task) if attempt is None or e["attempt"] == attempt]
    if not r: raise SystemExit("no task.end for %s" % task)
    return r[-1]
def starts():
    return [e["task"] for e in of("task.start")]
def lines(task, stream=None):
    return [e["line"] for e in of("task.output", task=task) if stream is None or e["stream"] == stream]
def out(task, stream=None):
    return "\n".join(lines(task, stream))
def inflight(prefix=""):
    cur = mx = 0
    for e in E:
        k = e.get("task") or ""
        if not k.startswith(prefix): continue
        if e["type"] == "task.start": cur += 1; mx = max(mx, cur)
        elif e["type"] == "task.end": cur -= 1
    return mx
def ms(e):
    import datetime
    t = datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(t.timestamp() * 1000 + 0.5)
def run_end():
    return one("run.end")
def fmt(x):
    if isinstance(x, bool): return "true" if x else "false"
    if x is None: return "null"
    if isinstance(x, (list, tuple)): return " ".join(fmt(y) for y in x)
    if isinstance(x, dict): return json.dumps(x, sort_keys=True)
    return str(x)
for expr in sys.argv[2:]:
    print(fmt(eval(expr)))
'
