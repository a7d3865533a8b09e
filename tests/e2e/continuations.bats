#!/usr/bin/env bats
# async/join, continuations (on_success, on_failure, finally) and secrets.
# Order comes from the event stream (seq), not from sleeps.

bats_require_minimum_version 1.5.0
load fanout_helpers

setup() { fo_setup; }
teardown() { fo_teardown; }

# ---- async / join ----

@test "async: the sequence goes on at once, before the async step ends" {
	fo_run async-join.yaml
	fo_status 0
	fo_events <<'PY'
bg_end = one("task.end", task="bg")
before(one("task.start", task="fg"), bg_end, "fg starts while bg runs")
before(one("task.end", task="fg"), bg_end, "fg even ends while bg runs")
before(one("task.start", task="bg2"), one("task.start", task="fg"), "bg2 started, then fg")
PY
}

@test "join of several async steps waits for all of them; async.NAME.stdout and status are read after it" {
	fo_run async-join.yaml
	fo_status 0
	fo_has "[use] joined from-slow + from-quick (success)"
	fo_events <<'PY'
j = one("step.end", step="join-4")
check(j["kind"] == "join" and j["status"] == "success", "join: %r" % j)
before(one("task.end", task="bg"), j, "join ends after the slow async step")
before(one("task.end", task="bg2"), j, "join ends after the quick async step")
before(j, one("task.start", task="use"), "the step after join starts after it")
PY
}

@test "join fails when a joined async step failed" {
	fo_run async-join-fail.yaml
	fo_status 1
	fo_hasnt "[after] after"
	fo_events <<'PY'
j = one("step.end", step="join-3")
check(j["status"] == "failed", "join is %s" % j["status"])
check("doomed" in (j.get("reason") or ""), "the reason names the async step: %r" % j.get("reason"))
before(one("step.end", step="bg"), j, "join fails once bg ended")
check(status_of("bg") == "failed", "bg failed")
check(status_of("after") == "skipped", "the sequence stops at the failed join")
PY
}

@test "an unjoined async step is awaited before the run ends" {
	fo_run async-unjoined.yaml
	fo_status 0
	fo_has "[bg] loose-done"
	fo_events <<'PY'
bg_end = one("task.end", task="bg")
before(one("step.end", step="fg"), bg_end, "fg does not wait for bg")
before(bg_end, run_end(), "the run waits for bg")
check(bg_end["status"] == "success", "bg ran to its end, not cancelled: %s" % bg_end["status"])
check(run_end()["status"] == "success", "run status")
PY
}

@test "an unjoined async step that fails fails the run (exit 1)" {
	fo_run async-unjoined.yaml --var code=5
	fo_status 1
	fo_events <<'PY'
e = one("step.end", step="bg")
check(e["status"] == "failed", "bg is %s" % e["status"])
check(status_of("fg") == "success", "fg succeeded")
before(e, run_end(), "bg ends before the run")
check(run_end()["status"] == "failed" and run_end()["exit_code"] == 1, "run.end %r" % run_end())
PY
}

@test "joining an unknown async name is a plan error at check time (exit 2)" {
	local plan
	plan="$(fo_plan async-unknown.yaml)"
	run fo_baton check "$plan"
	fo_status 2
	fo_has "$plan:6:11: error:"
	fo_has "unknown"
	fo_run async-unknown.yaml
	fo_status 2
	fo_hasnt "[bg]"
	if [ -s "$EV" ] && grep -q '"task.start"' "$EV"; then
		echo "a plan error must run nothing" >&2
		false
	fi
}

@test "two async steps with the same name are a plan error (exit 2)" {
	local plan
	plan="$(fo_plan async-duplicate.yaml)"
	run fo_baton check "$plan"
	fo_status 2
	fo_has "$plan:7:12: error:"
	fo_has "same"
	fo_run async-duplicate.yaml
	fo_status 2
	fo_hasnt "[a]"
}

# ---- on_success / on_failure / finally ----

@test "on_success runs only after a success, then finally, with result.status, stdout and exit_code" {
	fo_run cont-success.yaml
	fo_status 0
	fo_has "[good.on_success.s] SUCCESS status=success out=good-out code=0"
	fo_has "[good.finally.fin] FINALLY status=success"
	fo_hasnt "FAILURE-HANDLER-RAN"
	fo_events <<'PY'
none("task.start", task="good.on_failure.f")
s = one("task.start", task="good.on_success.s")
f = one("task.start", task="good.finally.fin")
before(one("task.end", task="good"), s, "on_success after the step's task")
before(one("step.end", step="good.on_success"), f, "finally after on_success")
check(status_of("good") == "success", "good succeeded")
before(one("step.end", step="good"), one("task.start", task="next"), "the next step after good")
PY
}

@test "on_failure runs once, after the last retry, then finally" {
	fo_run cont-failure.yaml
	fo_status 1
	fo_has "[bad.on_failure.f] FAILURE status=failed code=3 out=bad-out error=exit code 3"
	fo_has "[bad.finally.fin] FINALLY status=failed"
	fo_hasnt "SUCCESS-HANDLER-RAN"
	fo_events <<'PY'
attempts = ev("task.end", task="bad")
check([e["attempt"] for e in attempts] == [1, 2, 3], "three attempts: %r" % [e["attempt"] for e in attempts])
f = one("task.start", task="bad.on_failure.f")
before(attempts[-1], f, "on_failure after the last attempt")
check(len(ev("step.start", step="bad.on_failure")) == 1, "on_failure runs once")
fin = one("task.start", task="bad.finally.fin")
before(one("step.end", step="bad.on_failure"), fin, "on_failure, then finally")
none("task.start", task="bad.on_success.s")
PY
}

@test "a succeeding on_failure handler leaves the step failed: the run fails and the sequence stops" {
	fo_run cont-failure.yaml
	fo_status 1
	fo_hasnt "[next] next"
	fo_events <<'PY'
check(status_of("bad.on_failure") == "success", "the handler succeeded")
e = one("step.end", step="bad")
check(e["status"] == "failed", "bad is %s after its handler" % e["status"])
check(status_of("next") == "skipped", "next is skipped")
check(run_end()["status"] == "failed", "run.end %r" % run_end())
PY
}

@test "a step's step.end comes after all of its handlers' events" {
	fo_run cont-failure.yaml
	fo_status 1
	fo_events <<'PY'
end = one("step.end", step="bad")
hs = [e for e in E if (e.get("step") or e.get("task") or "").startswith("bad.")]
check(len(hs) >= 8, "handler events: %d" % len(hs))
for h in hs:
    before(h, end, "handler event %s %s" % (h["type"], h.get("step") or h.get("task")))
PY
}

@test "finally runs after a step timeout, with result.status timeout and the error" {
	fo_run cont-timeout.yaml
	fo_status 1
	fo_has "[slow.on_failure.f] FAILURE status=timeout error=timed out after 200ms"
	fo_has "[slow.finally.fin] FINALLY status=timeout"
	fo_events <<'PY'
t = one("task.end", task="slow")
check(t["status"] == "timeout", "slow is %s" % t["status"])
before(t, one("task.start", task="slow.finally.fin"), "finally after the timeout")
check(status_of("slow") == "timeout", "the step keeps status timeout")
PY
}

@test "finally runs after a cancel by fail-fast" {
	fo_run cont-failfast.yaml
	fo_status 1
	fo_has "[ff.victim.finally.fin] FINALLY victim status=cancelled"
	fo_within 3000
	fo_events <<'PY'
t = one("task.end", task="ff.victim")
check(t["status"] == "cancelled", "victim is %s" % t["status"])
before(one("task.end", task="ff.boom"), t, "cancelled by boom's failure")
# the victim is a shell whose sleep goes with it: at once, not kill_grace (5 s) later
check(ms(t) - ms(one("task.end", task="ff.boom")) <= 1500,
      "the victim ended %d ms after the failure" % (ms(t) - ms(one("task.end", task="ff.boom"))))
before(t, one("task.start", task="ff.victim.finally.fin"), "finally after the cancel")
before(one("step.end", step="ff.victim.finally"), one("step.end", step="ff"), "the parallel waits for the handler")
PY
}

@test "the plan's timeout cancels the run (exit 3) and finally handlers still run; run.status is timeout" {
	fo_run cont-plan-timeout.yaml
	fo_status 3
	fo_has "[long.finally.fin] FINALLY long status=cancelled"
	fo_has "[finally.planfin] PLAN-FINALLY run.status=timeout"
	fo_within 3000 # plan timeout 500ms, then the handlers
	fo_events <<'PY'
check(one("task.end", task="long")["status"] == "cancelled", "long is cancelled")
r = run_end()
check(r["status"] == "timeout" and r["exit_code"] == 3, "run.end %r" % r)
before(one("task.end", task="long.finally.fin"), one("task.start", task="finally.planfin"), "step finally, then plan finally")
PY
}

@test "the first SIGINT cancels the running task, runs the finally handlers and exits 130" {
	fo_start cont-sigint.yaml
	fo_wait_for '"type":"task.start","task":"long"'
	kill -INT "$FO_PID"
	fo_wait_exit 10
	fo_status 130
	fo_within 2500 # the cancel, then two quick handlers
	fo_has "[long.finally.fin] FINALLY long status=cancelled"
	fo_has "[finally.planfin] PLAN-FINALLY run.status=cancelled"
	fo_hasnt "NEVER-RAN"
	fo_events <<'PY'
check(one("task.end", task="long")["status"] == "cancelled", "long is cancelled")
check(one("task.end", task="long.finally.fin")["status"] == "success", "its finally ran")
check(one("task.end", task="finally.planfin")["status"] == "success", "the plan's finally ran")
none("task.start", task="never")
r = run_end()
check(r["status"] == "cancelled" and r["exit_code"] == 130, "run.end %r" % r)
PY
}

# Starts cont-sigint-twice, interrupts it once, waits until the finally
# handler runs (and wrote its pid), interrupts it again.
fo_interrupt_twice() {
	fo_start cont-sigint-twice.yaml
	fo_wait_for '"type":"task.start","task":"long"'
	kill -INT "$FO_PID"
	fo_wait_for '"type":"task.start","task":"long.finally.cleanup"'
	local i
	for ((i = 0; i < 200; i++)); do
		[ -s "$BATS_TEST_TMPDIR/cleanup.pid" ] && break
		sleep 0.02
	done
	[ -s "$BATS_TEST_TMPDIR/cleanup.pid" ] || {
		echo "the finally handler never started" >&2
		return 1
	}
	kill -INT "$FO_PID"
	fo_wait_exit 10
}

@test "a second SIGINT stops the finally handlers: exit 130 at once, no handler process left" {
	fo_interrupt_twice
	fo_status 130
	fo_within 2000 # at once
	fo_hasnt "[long.finally.cleanup] CLEANUP-END"
	local pid
	pid="$(cat "$BATS_TEST_TMPDIR/cleanup.pid")"
	if kill -0 "$pid" 2>/dev/null; then
		echo "the finally handler's process $pid outlived baton" >&2
		false
	fi
	fo_events <<'PY'
r = run_end()
check(r["exit_code"] == 130, "run.end %r" % r)
check(one("task.end", task="long.finally.cleanup")["duration_ms"] < 5000, "the handler was stopped")
PY
}

@test "a finally handler stopped by the second SIGINT is reported cancelled, not failed" {
	fo_interrupt_twice
	fo_status 130
	fo_events <<'PY'
t = one("task.end", task="long.finally.cleanup")
check(t["status"] == "cancelled", "the handler stopped by Ctrl-C is %s (reason %r)" % (t["status"], t.get("reason")))
check(status_of("long") == "cancelled", "long, cancelled by the first Ctrl-C, ends %s" % status_of("long"))
check(run_end()["counts"]["failed"] == 0, "nothing failed, it was interrupted: %r" % run_end()["counts"])
PY
}

@test "results: len(results) and results[N].status and exit_code for a for_each and a parallel" {
	fo_run cont-results.yaml
	fo_status 0
	fo_has "[fan.finally.fin] FAN n=3 s0=success s1=failed c1=1"
	fo_has "[par.on_failure.f] PAR n=2 s0=success s1=failed c1=2 error=1 of 2 failed: par.one"
}

@test "results[N].stdout holds each instance's output, for a for_each and a parallel" {
	fo_run cont-results.yaml
	fo_status 0
	fo_has "FAN n=3 s0=success s1=failed c1=1 o2=out-c"
	fo_has "[par.finally.fin] PAR-OUT o0=out-zero o1=out-one"
}

@test "a failing on_success handler fails the step" {
	fo_run cont-handler-fails.yaml
	fo_status 1
	fo_has "[okstep.finally.fin] FINALLY status=failed"
	fo_hasnt "[next] next"
	fo_events <<'PY'
check(one("task.end", task="okstep")["status"] == "success", "the command itself succeeded")
check(one("task.end", task="okstep.on_success.s")["exit_code"] == 9, "the handler failed")
e = one("step.end", step="okstep")
check(e["status"] == "failed", "okstep is %s" % e["status"])
check("on_success" in (e.get("reason") or ""), "the reason names the handler: %r" % e.get("reason"))
check(status_of("next") == "skipped", "next is skipped")
PY
}

@test "plan-level on_success and finally see run.status success" {
	fo_run cont-run-status.yaml
	fo_status 0
	fo_has "[on_success.ps] PLAN-ON-SUCCESS run.status=success"
	fo_has "[finally.pfin] PLAN-FINALLY run.status=success"
	fo_hasnt "PLAN-ON-FAILURE run"
}

@test "plan-level on_failure and finally see run.status failed" {
	fo_run cont-run-status.yaml --var code=3
	fo_status 1
	fo_has "[on_failure.pf] PLAN-ON-FAILURE run.status=failed error="
	fo_has "[finally.pfin] PLAN-FINALLY run.status=failed"
	fo_hasnt "PLAN-ON-SUCCESS run"
	fo_events <<'PY'
before(one("step.end", step="on_failure"), one("task.start", task="finally.pfin"), "on_failure, then finally")
check(run_end()["exit_code"] == 1, "the handlers do not change the exit code")
PY
}

# ---- secrets ----

@test "a secret is masked in commands, output lines, reasons, plain output and the summary" {
	fo_run secrets.yaml
	fo_status 1
	fo_hasnt "Sup3rS3cretV4lue"
	fo_has "[show] \$ echo \"token is ***\""
	fo_has "[show] token is ***"
	fo_has "[show] stderr has ***"
	fo_has "[viaenv] env has ***"
	fo_has "cannot run /nonexistent/dir/***"
	fo_has "│ failing with ***"
	if grep -q "Sup3rS3cretV4lue" "$EV"; then
		echo "the secret is in the event stream:" >&2
		grep "Sup3rS3cretV4lue" "$EV" >&2
		false
	fi
	fo_events <<'PY'
check("***" in one("task.start", task="show")["command"], "command masked")
check("stderr has ***" in out_lines("show"), "stderr line masked: %r" % out_lines("show"))
check(out_lines("viaenv") == ["env has ***"], "output from env masked: %r" % out_lines("viaenv"))
check("***" in one("task.end", task="exe")["reason"], "task.end reason masked")
check("***" in one("step.end", step="exe")["reason"], "step.end reason masked")
PY
}

@test "a secret given only through BATON_SECRET_PASSWORD is masked" {
	export BATON_SECRET_PASSWORD=Hunter2Hunter2
	fo_run secrets-cli.yaml
	fo_status 0
	fo_hasnt "Hunter2Hunter2"
	fo_has "[use] password=***"
	if grep -q "Hunter2Hunter2" "$EV"; then
		grep "Hunter2Hunter2" "$EV" >&2
		false
	fi
}

@test "baton plan masks secrets, from the plan and from --secret-file" {
	run fo_baton plan "$(fo_plan secrets.yaml)"
	fo_status 0
	fo_hasnt "Sup3rS3cretV4lue"
	fo_has 'echo "token is ***"'
	printf 'Hunter2Hunter2\n' >pw.txt
	run fo_baton plan "$(fo_plan secrets-cli.yaml)" --secret-file password=pw.txt
	fo_status 0
	fo_hasnt "Hunter2Hunter2"
	fo_has 'password=***'
}

@test "a secret used as a for_each item is masked everywhere, the item field of task.start included" {
	fo_run secrets-item.yaml
	fo_status 0
	fo_hasnt "Sup3rS3cretV4lue"
	fo_has "[fe#0 (***)] item *** env ***"
	if grep -q "Sup3rS3cretV4lue" "$EV"; then
		echo "the secret is in the event stream:" >&2
		grep "Sup3rS3cretV4lue" "$EV" >&2
		false
	fi
}
