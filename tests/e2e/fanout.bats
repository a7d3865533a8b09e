#!/usr/bin/env bats
# Fan-out: for_each, batches, modes, barriers; the example plans that use
# them, also under AddressSanitizer. Order and timing come from the event
# stream (seq), not from sleeps.

bats_require_minimum_version 1.5.0
load fanout_helpers

setup() { fo_setup; }
teardown() { fo_teardown; }

# ---- for_each ----

@test "for_each over a literal list runs one task per item with item, index and BATON_ITEM" {
	fo_run foreach-literal.yaml
	fo_status 0
	fo_has "[lit#0 (alpha)] item=alpha index=0 env=alpha"
	fo_has "[lit#1 (beta)] item=beta index=1 env=beta"
	fo_has "[lit#2 (gamma)] item=gamma index=2 env=gamma"
	fo_events <<'PY'
for i, item in enumerate(["alpha", "beta", "gamma"]):
    s = one("task.start", task="lit#%d" % i)
    check(s["step"] == "lit", "task lit#%d has step %r" % (i, s["step"]))
    check(s["item"] == item, "task lit#%d has item %r" % (i, s["item"]))
    check("item=%s index=%d" % (item, i) in s["command"], "command not rendered: %r" % s["command"])
    check(status_of("lit#%d" % i) == "success", "lit#%d did not succeed" % i)
check(len(ev("task.start")) == 3, "expected 3 tasks")
check(one("step.end", step="lit")["kind"] == "for_each", "the step's kind is not for_each")
PY
}

@test "for_each over vars.list, steps.ID.stdout_lines and rendered template items" {
	fo_run foreach-expr.yaml
	fo_status 0
	fo_has "[fromvars#2 (z3)] vars 2 z3"
	fo_has "[fromlines#1 (line-two)] lines 1 line-two"
	fo_has "[rendered#0 (pre-y2)] rendered 0 pre-y2 pre-y2"
	fo_has "[rendered#1 (n3)] rendered 1 n3 n3"
	fo_events <<'PY'
check([e["item"] for e in sorted(ev("task.start", step="fromvars"), key=lambda e: e["task"])] == ["x1", "y2", "z3"],
      "fromvars items")
check(sorted(e["task"] for e in ev("task.start", step="fromlines")) == ["fromlines#0", "fromlines#1"],
      "one task per stdout line of gen")
check(one("task.start", task="fromlines#0")["item"] == "line-one", "first line item")
check(one("task.start", task="rendered#0")["item"] == "pre-y2", "a template item is rendered")
check(one("task.start", task="rendered#2")["item"] == "plain", "a plain item stays as it is")
# the expression is evaluated when the step starts, after gen ended
before(one("task.end", task="gen"), first("task.start", step="fromlines"), "gen before its lines")
PY
}

@test "for_each on a group runs the whole group per item, independently, with ids STEP.child#INDEX" {
	fo_run foreach-group.yaml
	fo_status 0
	fo_has "[grp.second#1 (fast)] second fast 1 fast"
	fo_has "[grp.second#0 (slow)] second slow 0 slow"
	fo_events <<'PY'
for i in (0, 1):
    one("step.start", step="grp#%d" % i)
    for child in ("first", "second"):
        s = one("task.start", task="grp.%s#%d" % (child, i))
        check(s["step"] == "grp." + child, "task grp.%s#%d has step %r" % (child, i, s["step"]))
        check(s["item"] == ["slow", "fast"][i], "item of grp.%s#%d" % (child, i))
# the fast item runs its second step while the slow item is still in its first
before(one("task.start", task="grp.second#1"), one("task.end", task="grp.first#0"),
       "item 1 goes on without waiting for item 0")
# within one item, the sequence holds
before(one("task.end", task="grp.first#0"), one("task.start", task="grp.second#0"), "item 0 in order")
before(one("task.end", task="grp.first#1"), one("task.start", task="grp.second#1"), "item 1 in order")
PY
}

@test "for_each whose expression is not a list fails the step with a clear reason" {
	fo_run foreach-notlist.yaml
	fo_status 1
	fo_has "✗ bad: for_each:"
	fo_hasnt "never "
	fo_events <<'PY'
import re
e = one("step.end", step="bad")
check(e["status"] == "failed", "bad is %s" % e["status"])
r = e.get("reason") or ""
check(r.startswith("for_each:") and re.search(r"not (give )?a list", r), "reason %r" % r)
check("for_each: for_each:" not in r, "the reason repeats its prefix: %r" % r)
none("task.start")
check(status_of("after") == "skipped", "after should be skipped")
PY
}

@test "when is evaluated per item: only the item it rejects is skipped" {
	fo_run foreach-when.yaml
	fo_status 0
	fo_has "[w#0 (a)] ran a"
	fo_has "[w#2 (c)] ran c"
	fo_hasnt "ran b"
	fo_has "after success"
	fo_events <<'PY'
check(status_of("w#1") == "skipped", "w#1 not skipped")
check(status_of("w#0") == "success" and status_of("w#2") == "success", "a and c should run")
none("task.start", task="w#1")
check(status_of("w") == "success", "a skipped item is not a failure")
PY
}

# ---- batches ----

@test "batches: count, percentage rounded up, at least one, staged list whose last size repeats" {
	fo_run batch-sizes.yaml
	fo_status 0
	fo_has "[count] batch 1 started (2 instances)"
	fo_events <<'PY'
want = {
    "count": [[0, 1], [2, 3], [4]],                        # size 2
    "pct": [[0, 1, 2], [3, 4, 5], [6]],                    # 30% of 7 = 2.1 -> 3
    "tiny": [[0], [1], [2]],                               # 1% of 3 -> at least 1
    "staged": [[0], [1, 2, 3, 4, 5], [6, 7, 8]],           # 1, then 50% of 9 = 5, repeated
}
for step, batches in want.items():
    bs = ev("batch.start", step=step)
    be = ev("batch.end", step=step)
    check([e["batch"] for e in bs] == list(range(len(batches))), "%s: batch numbers %r" % (step, [e["batch"] for e in bs]))
    check([e["instances"] for e in bs] == batches, "%s: batches %r, want %r" % (step, [e["instances"] for e in bs], batches))
    check([e["instances"] for e in be] == batches, "%s: batch.end instances" % step)
    check(all(e["failed"] == 0 for e in be), "%s: failed should be 0" % step)
    for n in range(len(batches)):
        before(bs[n], be[n], "%s batch %d starts before it ends" % (step, n))
        for i in batches[n]:
            s = one("task.start", task="%s#%d" % (step, i))
            t = one("task.end", task="%s#%d" % (step, i))
            before(bs[n], s, "%s#%d starts inside its batch" % (step, i))
            before(t, be[n], "%s#%d ends before its batch ends" % (step, i))
        if n + 1 < len(batches):
            before(be[n], bs[n + 1], "%s: batch %d ends before batch %d starts" % (step, n, n + 1))
            last_end = max(one("task.end", task="%s#%d" % (step, i))["seq"] for i in batches[n])
            first_start = min(one("task.start", task="%s#%d" % (step, i))["seq"] for i in batches[n + 1])
            check(last_end < first_start, "%s: an instance of batch %d started (seq %d) before batch %d ended (seq %d)"
                  % (step, n + 1, first_start, n, last_end))
PY
}

@test "batch pause: the next batch starts no sooner than pause after the previous one ended" {
	fo_run batch-pause.yaml
	fo_status 0
	fo_events <<'PY'
bs, be = ev("batch.start", step="paced"), ev("batch.end", step="paced")
check(len(bs) == 3 and len(be) == 3, "3 batches of 1")
for n in range(2):
    before(be[n], bs[n + 1], "pause comes after the batch ended")
    gap = ms(bs[n + 1]) - ms(be[n])
    check(gap >= 280, "batch %d started %.0f ms after batch %d ended; pause is 300ms" % (n + 1, gap, n))
    check(gap < 5000, "pause far too long: %.0f ms" % gap)
PY
}

@test "max_failures as a count: once exceeded no further batch starts, later items are cancelled, the step fails" {
	fo_run batch-maxfail-count.yaml
	fo_status 1
	fo_hasnt "ok e"
	fo_hasnt "ok f"
	fo_events <<'PY'
bs, be = ev("batch.start", step="mf"), ev("batch.end", step="mf")
check([e["batch"] for e in bs] == [0, 1], "batches started: %r" % [e["instances"] for e in bs])
check([e["failed"] for e in be] == [1, 1], "failed per batch: %r" % [e["failed"] for e in be])
for i in (4, 5):
    none("task.start", task="mf#%d" % i)
    check(status_of("mf#%d" % i) == "cancelled", "mf#%d should end cancelled" % i)
check(status_of("mf#1") == "failed" and status_of("mf#2") == "failed", "b and c failed")
check(status_of("mf#0") == "success", "a succeeded")
check(status_of("mf") == "failed", "the step fails")
check(status_of("after") == "skipped", "the sequence stops")
check(run_end()["exit_code"] == 1, "run exit code")
PY
}

@test "max_failures as a percentage of all items: the third failure of ten stops the rollout" {
	fo_run batch-maxfail-pct.yaml
	fo_status 1
	fo_events <<'PY'
bs = ev("batch.start", step="mf")
check([e["instances"] for e in bs] == [[0, 1], [2, 3], [4, 5]], "batches started: %r" % [e["instances"] for e in bs])
last_batch_end = last("batch.end", step="mf")
check(last_batch_end["batch"] == 2 and last_batch_end["failed"] == 1, "batch 2 ended with 1 failure")
for i in range(6, 10):
    none("task.start", task="mf#%d" % i)
    check(status_of("mf#%d" % i) == "cancelled", "mf#%d should end cancelled" % i)
check(status_of("mf") == "failed", "the step fails")
PY
}

@test "max_failures counts failures across batches: a settle rollout with one failure per batch stops at the budget" {
	fo_run batch-maxfail-settle.yaml
	fo_status 1
	fo_has "ok a"
	fo_has "ok d"
	fo_hasnt "ok e"
	fo_hasnt "ok f"
	fo_events <<'PY'
bs, be = ev("batch.start", step="mf"), ev("batch.end", step="mf")
check([e["batch"] for e in bs] == [0, 1], "batches started: %r" % [e["instances"] for e in bs])
check([e["failed"] for e in be] == [1, 1], "failed per batch: %r" % [e["failed"] for e in be])
# settle: the failure in batch 1 did not cancel d; the budget stops the rollout after the batch
check(status_of("mf#3") == "success", "d, beside the failing c, still succeeds")
for i in (4, 5):
    none("task.start", task="mf#%d" % i)
    check(status_of("mf#%d" % i) == "cancelled", "mf#%d should end cancelled" % i)
    before(be[1], one("step.end", step="mf#%d" % i), "mf#%d cancelled once batch 1 ended" % i)
end = one("step.end", step="mf")
check(end["status"] == "failed", "the step fails")
check("max_failures is 1" in (end.get("reason") or ""), "reason %r" % end.get("reason"))
check(status_of("after") == "skipped", "the sequence stops")
PY
}

@test "within max_failures the step succeeds and a tolerated failure does not cancel its batch" {
	fo_run batch-within.yaml
	fo_status 0
	fo_has "after success success"
	fo_has "[count#0 (a)] ok a"
	fo_has "[count#2 (c)] ok c"
	fo_events <<'PY'
check(len(ev("batch.start", step="pct")) == 5, "all 5 batches of pct ran")
check([e["failed"] for e in ev("batch.end", step="pct")] == [1, 1, 0, 0, 0], "pct failures per batch")
check(status_of("pct") == "success", "pct within 20% succeeds")
check([e["failed"] for e in ev("batch.end", step="count")] == [1, 0], "count failures per batch")
# b failed at once while a and c were still sleeping: they were not cancelled
before(one("task.end", task="count#1"), one("task.end", task="count#0"), "b fails first")
check(status_of("count#0") == "success" and status_of("count#2") == "success", "a and c succeed")
check(status_of("count#3") == "success", "the next batch still runs")
check(status_of("count") == "success", "count within max_failures 1 succeeds")
PY
}

@test "baton plan shows which items fall in which batch" {
	run fo_baton plan "$(fo_plan batch-sizes.yaml)"
	fo_status 0
	fo_has "batch 1: #0 a, #1 b"
	fo_has "batch 2: #2 c, #3 d"
	fo_has "batch 3: #4 e"
	fo_has "batch 1: #0 a, #1 b, #2 c"
	fo_has "batch 3: #6 g"
	fo_has "batch 2: #1 b, #2 c, #3 d, #4 e, #5 f"
	fo_has "batch 3: #6 g, #7 h, #8 i"
}

# ---- modes ----

@test "mode all is fail-fast: the first failure cancels the running items at once" {
	fo_run mode-all.yaml
	fo_status 1
	fo_hasnt "[fan#2 (ok)] fine"
	# the sleepers (20 s, 3 s) are shells whose sleep is stopped with them:
	# at once, not kill_grace (5 s) later
	fo_within 3000
	fo_events <<'PY'
check(status_of("fan#0") == "failed", "fan#0 failed")
for i in (1, 2):
    t = one("task.end", task="fan#%d" % i)
    check(t["status"] == "cancelled", "fan#%d is %s, not cancelled" % (i, t["status"]))
    before(one("task.end", task="fan#0"), t, "cancelled after the failure")
    gap = ms(t) - ms(one("task.end", task="fan#0"))
    check(gap <= 1500, "fan#%d ended %d ms after the failure, not at once" % (i, gap))
check(status_of("fan") == "failed", "the step fails")
check(status_of("after") == "skipped", "after is skipped")
check(run_end()["duration_ms"] <= 2500, "the run took %d ms" % run_end()["duration_ms"])
PY
}

@test "mode settle lets every item finish, then fails when one failed" {
	fo_run mode-settle.yaml
	fo_status 1
	fo_has "[fan#1 (slow)] slow-done"
	fo_has "[fan#2 (quick)] quick-done"
	fo_events <<'PY'
check(status_of("fan#0") == "failed", "fan#0 failed")
check(status_of("fan#1") == "success", "the slow item ran to its end after the failure")
before(one("task.end", task="fan#0"), one("task.end", task="fan#1"), "slow ends after the failure")
none("task.end", status="cancelled")
check(status_of("fan") == "failed", "settle fails when one failed")
PY
}

@test "mode any: the first success wins and cancels the rest" {
	fo_run mode-any-wins.yaml
	fo_status 0
	fo_has "[fan#1 (wins)] won"
	fo_has "after success"
	fo_within 3000
	fo_events <<'PY'
check(status_of("fan#0") == "failed", "fan#0 failed")
check(status_of("fan#1") == "success", "fan#1 won")
t = one("task.end", task="fan#2")
check(t["status"] == "cancelled", "the sleeper is %s" % t["status"])
before(one("task.end", task="fan#1"), t, "cancelled after the win")
check(ms(t) - ms(one("task.end", task="fan#1")) <= 1500, "the sleeper ended %d ms after the win, not at once"
      % (ms(t) - ms(one("task.end", task="fan#1"))))
check(status_of("fan") == "success", "any succeeds at the first success")
PY
}

@test "mode any fails only when every item failed" {
	fo_run mode-any-allfail.yaml
	fo_status 1
	fo_events <<'PY'
for i in range(3):
    check(status_of("fan#%d" % i) == "failed", "fan#%d should fail, not be cancelled" % i)
e = one("step.end", step="fan")
check(e["status"] == "failed", "fan is %s" % e["status"])
before(one("task.end", task="fan#2"), e, "the step waits for the last failure")
PY
}

@test "mode race ends with the first item to end: a success wins" {
	fo_run mode-race.yaml
	fo_status 0
	fo_has "[fan#0 (first)] first ends"
	fo_within 3000
	fo_events <<'PY'
check(status_of("fan#0") == "success", "first succeeded")
check(one("task.end", task="fan#1")["status"] == "cancelled", "the sleeper is cancelled")
check(ms(one("task.end", task="fan#1")) - ms(one("task.end", task="fan#0")) <= 1500, "the sleeper was not stopped at once")
check(status_of("fan") == "success", "race takes the first result")
PY
}

@test "mode race ends with the first item to end: a failure loses at once" {
	fo_run mode-race.yaml --var first_exit=1
	fo_status 1
	fo_within 3000
	fo_events <<'PY'
check(status_of("fan#0") == "failed", "first failed")
check(one("task.end", task="fan#1")["status"] == "cancelled", "the sleeper is cancelled")
check(ms(one("task.end", task="fan#1")) - ms(one("task.end", task="fan#0")) <= 1500, "the sleeper was not stopped at once")
check(status_of("fan") == "failed", "race takes the first result")
PY
}

@test "min_success as a count and as a percentage" {
	fo_run min-success.yaml
	fo_status 1
	fo_events <<'PY'
check(status_of("count-met") == "success", "3 of 4 meet min_success 3")
check(status_of("count-met#0") == "failed", "one item failed")
# min_success implies settle: the failure did not cancel the others
for i in (1, 2, 3):
    check(status_of("count-met#%d" % i) == "success", "count-met#%d should run to success" % i)
check(status_of("pct-met") == "success", "2 of 4 meet 50%")
e = one("step.end", step="pct-missed")
check(e["status"] == "failed", "2 of 4 miss 75%")
check("min_success" in (e.get("reason") or ""), "reason %r" % e.get("reason"))
check(status_of("count-missed") == "failed", "1 of 3 misses min_success 2")
check(run_end()["exit_code"] == 1, "count-missed fails the run")
PY
}

# ---- barriers ----

@test "barrier in parallel branches releases after the last live branch arrives; a branch that failed first is not awaited" {
	fo_run barrier-parallel.yaml
	fo_status 1
	fo_has "fast-go"
	fo_has "slow-go"
	fo_hasnt "dies-go"
	fo_events <<'PY'
waits = ev("barrier.wait", barrier="sync")
rel = one("barrier.release", barrier="sync")
check(rel["step"] == "par", "released on the fan-out step, got %r" % rel["step"])
check(len(waits) == 2, "two branches arrive")
check(waits[0]["arrived"] == 1 and waits[0]["expected"] == 3, "first arrival 1/3: %r" % waits[0])
check(waits[1]["arrived"] == 2 and waits[1]["expected"] == 2, "second arrival 2/2 once dies left: %r" % waits[1])
check(rel["arrived"] == 2 and rel["expected"] == 2, "release 2/2: %r" % rel)
# the order the plan's commands set from the event stream itself
before(waits[0], one("task.end", task="par.dies.prep"), "dies fails once fast waits")
before(one("step.end", step="par.dies"), waits[1], "slow arrives once dies ended")
check(waits[0]["step"] == "par.fast.barrier-2" and waits[1]["step"] == "par.slow.barrier-2",
      "fast then slow arrive: %r" % [w["step"] for w in waits])
for w in waits:
    before(w, rel, "every wait precedes the release")
before(one("task.end", task="par.slow.prep"), rel, "slow arrives before the release")
before(one("task.end", task="par.dies.prep"), rel, "dies ended before the release")
for b in ("fast", "slow"):
    before(rel, one("task.start", task="par.%s.go" % b), "%s goes after the release" % b)
check(status_of("par.dies.barrier-2") == "skipped", "dies never reached the barrier")
check(status_of("par") == "failed", "the parallel fails (settle)")
PY
}

@test "barrier in a for_each group: nothing after it starts before the last item arrived" {
	fo_run barrier-foreach.yaml
	fo_status 0
	fo_events <<'PY'
waits = ev("barrier.wait", barrier="drained")
rel = one("barrier.release", barrier="drained")
check(rel["step"] == "roll" and rel["expected"] == 3 and rel["arrived"] == 3, "release: %r" % rel)
check(sorted(w["step"] for w in waits) == ["roll.barrier-2#0", "roll.barrier-2#1", "roll.barrier-2#2"], "one wait per item")
check([w["arrived"] for w in waits] == [1, 2, 3], "arrived counts up: %r" % [w["arrived"] for w in waits])
check(all(w["expected"] == 3 for w in waits), "expected 3")
for i in range(3):
    before(one("task.end", task="roll.drain#%d" % i), rel, "drain#%d ends before the release" % i)
    before(rel, one("task.start", task="roll.deploy#%d" % i), "deploy#%d starts after the release" % i)
PY
}

@test "barrier in a for_each group: an item that fails before arriving is no longer awaited" {
	fo_run barrier-foreach-fail.yaml
	fo_status 1
	fo_has "deploy ok1"
	fo_has "deploy ok2"
	fo_hasnt "deploy broken"
	fo_within 3000
	fo_events <<'PY'
rel = one("barrier.release", barrier="drained")
check(rel["arrived"] == 2 and rel["expected"] == 2, "release 2/2: %r" % rel)
before(one("task.end", task="roll.drain#1"), rel, "released once the broken item ended")
check(status_of("roll#1") == "failed", "the broken item failed")
check(status_of("roll.deploy#0") == "success" and status_of("roll.deploy#2") == "success", "the others deployed")
PY
}

@test "barrier timeout fails the waiting instance with status timeout" {
	fo_run barrier-timeout.yaml
	fo_status 1
	fo_has "go late"
	fo_hasnt "go quick"
	fo_events <<'PY'
w = one("barrier.wait", step="fe.barrier-2#0")
check(w["arrived"] == 1 and w["expected"] == 2, "quick waits 1/2: %r" % w)
e = one("step.end", step="fe.barrier-2#0")
check(e["status"] == "timeout", "the waiting barrier is %s" % e["status"])
check("timed out" in (e.get("reason") or ""), "reason %r" % e.get("reason"))
check(180 <= e["duration_ms"] < 900, "waited %d ms for a 200ms timeout" % e["duration_ms"])
check(status_of("fe.go#0") == "skipped", "quick goes no further")
before(e, one("task.end", task="fe.prep#1"), "the timeout fires before the late item arrives")
check(status_of("fe") == "failed", "the step fails")
PY
}

@test "a barrier timeout takes the instance out of the barrier: a later arrival waits for itself alone (1/1)" {
	fo_run barrier-timeout-leave.yaml
	fo_status 1
	fo_has "go late"
	fo_hasnt "go quick"
	fo_events <<'PY'
w0 = one("barrier.wait", step="fe.barrier-2#0")
check(w0["arrived"] == 1 and w0["expected"] == 2, "quick waits 1/2: %r" % w0)
t = one("step.end", step="fe.barrier-2#0")
check(t["status"] == "timeout", "quick's wait is %s" % t["status"])
w1 = one("barrier.wait", step="fe.barrier-2#1")
before(t, w1, "late arrives after quick's wait timed out")
check(w1["arrived"] == 1 and w1["expected"] == 1, "late waits 1/1, quick no longer counted: %r" % w1)
rel = one("barrier.release", barrier="sync")
check(rel["arrived"] == 1 and rel["expected"] == 1, "release 1/1: %r" % rel)
before(w1, rel, "released at late's arrival")
before(rel, one("task.start", task="fe.go#1"), "late goes after the release")
none("task.start", task="fe.go#0")
check(status_of("fe#0") == "failed" and status_of("fe#1") == "success", "quick failed, late succeeded")
check(status_of("fe") == "failed", "the step fails (settle)")
PY
}

@test "with batches, a barrier releases the current batch without waiting for the next batch's items" {
	fo_run barrier-batches.yaml
	fo_status 0
	fo_events <<'PY'
rels = ev("barrier.release", barrier="drained")
check(len(rels) == 2, "one release per batch, got %d" % len(rels))
check(all(r["expected"] == 2 and r["arrived"] == 2 for r in rels), "each release is 2/2: %r" % rels)
b0_end = one("batch.end", step="roll", batch=0)
before(rels[0], b0_end, "batch 0's barrier released inside batch 0")
for i in (2, 3):
    before(rels[0], first("task.start", task="roll.drain#%d" % i), "batch 1 had not started at the first release")
    before(b0_end, first("task.start", task="roll.drain#%d" % i), "batch 1 after batch 0")
for i in (0, 1):
    before(rels[0], one("task.start", task="roll.deploy#%d" % i), "deploy#%d after release 0" % i)
for i in (2, 3):
    before(rels[1], one("task.start", task="roll.deploy#%d" % i), "deploy#%d after release 1" % i)
PY
}

@test "a barrier meets the nearest enclosing fan-out: per item of an outer for_each" {
	fo_run barrier-nested.yaml
	fo_status 0
	fo_events <<'PY'
rels = ev("barrier.release", barrier="inner")
check(sorted(r["step"] for r in rels) == ["fe.par#0", "fe.par#1"], "one release per item's parallel: %r" % rels)
check(all(r["expected"] == 2 for r in rels), "two branches each")
r0 = one("barrier.release", step="fe.par#0")
# item x releases while item y's slow branch is still preparing
before(r0, one("task.end", task="fe.par.right.run-1#1"), "x does not wait for y")
before(r0, one("task.start", task="fe.par.left.after#0"), "x's left goes after its release")
r1 = one("barrier.release", step="fe.par#1")
before(one("task.end", task="fe.par.right.run-1#1"), r1, "y releases after its slow branch")
before(r1, one("task.start", task="fe.par.left.after#1"), "y's left waits for y's release")
PY
}

@test "a barrier outside any fan-out is a plan error at FILE:LINE:COL (exit 2)" {
	local plan
	plan="$(fo_plan barrier-outside.yaml)"
	run fo_baton check "$plan"
	fo_status 2
	fo_has "$plan:7:9: error: barrier 'lonely'"
	fo_has "outside any fan-out"
	fo_run barrier-outside.yaml
	fo_status 2
	fo_has "$plan:7:9: error:"
	if [ -s "$EV" ] && grep -q '"task.start"' "$EV"; then
		echo "a plan error must run nothing" >&2
		false
	fi
}

@test "a barrier directly as a parallel branch is a plan error at FILE:LINE:COL (exit 2)" {
	local plan
	plan="$(fo_plan barrier-branch.yaml)"
	run fo_baton check "$plan"
	fo_status 2
	fo_has "$plan:6:9: error: barrier 'direct'"
	fo_run barrier-branch.yaml
	fo_status 2
	fo_has "$plan:6:9: error:"
	if [ -s "$EV" ] && grep -q '"task.start"' "$EV"; then
		echo "a plan error must run nothing" >&2
		false
	fi
}

# ---- the example plans ----

@test "plans/rolling-batches.yaml rolls out in batches 1, 2, 3 behind a barrier and succeeds" {
	rm -f "$EV"
	run fo_baton run "$FO_REPO/plans/rolling-batches.yaml" --output plain --events "$EV"
	fo_status 0
	fo_has "deployed 2.0.0 to web6"
	fo_hasnt "rolling back"
	fo_events <<'PY'
bs = ev("batch.start", step="rollout")
check([e["instances"] for e in bs] == [[0], [1, 2], [3, 4, 5]], "batches %r" % [e["instances"] for e in bs])
rels = ev("barrier.release", barrier="drained")
check([r["expected"] for r in rels] == [1, 2, 3], "one release per batch: %r" % rels)
check(status_of("rollout") == "success" and status_of("verify") == "success", "rollout and verify")
check(out_lines("verify")[-1].strip() == "6", "verify counts 6 deployed servers: %r" % out_lines("verify"))
PY
}

@test "plans/rolling-batches.yaml with fail_on=web4 fails, rolls back, starts no batch after the failing one" {
	rm -f "$EV"
	run fo_baton run "$FO_REPO/plans/rolling-batches.yaml" --output plain --events "$EV" --var fail_on=web4
	fo_status 1
	fo_has "rolling back:"
	fo_has "deploy of 2.0.0 to web4 failed"
	fo_events <<'PY'
check(status_of("rollout") == "failed", "rollout fails")
bad = [e for e in ev("batch.end", step="rollout") if e["failed"] > 0]
check(len(bad) == 1 and 3 in bad[0]["instances"], "web4's batch is the failing one: %r" % bad)
check(not [e for e in ev("batch.start", step="rollout") if e["seq"] > bad[0]["seq"]], "a batch started after the failing one")
rb = one("task.start", task="rollout.on_failure.rollback")
before(bad[0], rb, "the rollback runs after the failing batch")
check(any("rolling back" in l for l in out_lines("rollout.on_failure.rollback")), "rollback output")
check(status_of("verify") == "skipped", "verify is skipped")
check(run_end()["exit_code"] == 1, "exit code 1")
PY
}

@test "plans/fallback.yaml succeeds from the secondary mirror and cancels the tertiary branch" {
	rm -f "$EV"
	run fo_baton run "$FO_REPO/plans/fallback.yaml" --output plain --events "$EV"
	fo_status 0
	fo_has "got the artifact from the secondary mirror"
	fo_hasnt "[fetch.tertiary] got it"
	fo_has "using success fetch and success region lookup"
	fo_events <<'PY'
t = one("task.end", task="fetch.tertiary")
check(t["status"] == "cancelled", "tertiary is %s" % t["status"])
check(status_of("fetch.tertiary") == "cancelled", "tertiary step cancelled")
check(status_of("fetch") == "success", "fetch succeeds")
check(status_of("regions#2") == "cancelled", "the slow region is cancelled")
check(run_end()["duration_ms"] < 3000, "the run waited for a cancelled branch: %d ms" % run_end()["duration_ms"])
PY
}

# ---- the same under AddressSanitizer ----

fo_need_asan() {
	[ -x "$BATON_ASAN" ] || skip "no ASan build at $BATON_ASAN (make build/baton-asan)"
}

@test "ASan: plans/rolling-batches.yaml exits 0 with no sanitizer report" {
	fo_need_asan
	run --separate-stderr fo_baton_asan run "$FO_REPO/plans/rolling-batches.yaml" --output plain
	fo_status 0
	fo_asan_clean
}

@test "ASan: plans/rolling-batches.yaml with fail_on=web4 exits 1 with no sanitizer report" {
	fo_need_asan
	run --separate-stderr fo_baton_asan run "$FO_REPO/plans/rolling-batches.yaml" --output plain --var fail_on=web4
	fo_status 1
	fo_has "rolling back:"
	fo_asan_clean
}

@test "ASan: plans/fallback.yaml exits 0 with no sanitizer report" {
	fo_need_asan
	run --separate-stderr fo_baton_asan run "$FO_REPO/plans/fallback.yaml" --output plain
	fo_status 0
	fo_asan_clean
}

@test "ASan: plain output of a one-line block-scalar command (text ending in a newline) is clean" {
	fo_need_asan
	run --separate-stderr fo_baton_asan run "$(fo_plan oneline-block.yaml)" --output plain
	fo_status 0
	fo_has "[fe#1 (b)] block b"
	fo_asan_clean
}

@test "plans/rolling-batches.yaml: two runs at once keep their state apart" {
	local sa=0 sb=0 a b
	# one rolls back (removing its deployed files) while the other deploys all six
	fo_baton run "$FO_REPO/plans/rolling-batches.yaml" --output quiet --events "$EV.a" --var fail_on=web4 &
	a=$!
	fo_baton run "$FO_REPO/plans/rolling-batches.yaml" --output plain --events "$EV.b" >"$EV.b.out" &
	b=$!
	wait "$a" || sa=$?
	wait "$b" || sb=$?
	[ "$sa" = 1 ] && [ "$sb" = 0 ] || fail "exit statuses $sa and $sb, expected 1 and 0"
	grep -q '^\[verify\] *6$' "$EV.b.out" || fail "the other run's verify did not count its 6 servers: $(grep verify "$EV.b.out")"
}
