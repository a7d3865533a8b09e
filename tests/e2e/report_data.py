#!/usr/bin/env python3
"""Report data documents (src/report/report.h) for the HTML report's tests.

  report_data.py big N OUT.json [flat]
      N tasks: a rolling deploy of N/5 hosts (drain, deploy, health, warm,
      undrain on each) in batches of 10%, with a barrier per batch, some
      retries, failures, timeouts and tolerated failures; each attempt keeps
      3 lines of output. With "flat": N local items of one for_each step
      (one row each), the most rows a page can have.
  report_data.py hostile BASE.json OUT.json
      BASE with markup, CDATA ends, escaped invalid UTF-8, U+2028/U+2029 and
      other non-ASCII text in every field the page shows.
"""
import json
import random
import sys

HOSTILE = '</script><script>alert(1)</script><img src=x onerror=alert(1)>]]>\\xFF\\xFE<!--'


def task(id, step, s, e, st, host=None, item=None, label=None, attempt=1, out=3):
    return {"id": id, "step": step, "host": host, "item": item, "label": label, "attempt": attempt,
            "start_ms": s, "end_ms": e, "status": st, "exit_code": 0 if st == "success" else (1 if st == "failed" else None),
            "signal": "SIGTERM" if st == "timeout" else None, "reason": None if st == "success" else st,
            "command": "deploy --host %s --step %s" % (host or item, step), "tolerated": False, "reused": False,
            "output": [["o", "line %d of %s" % (k, id)] for k in range(out - 1)] + [["e", "done %s" % id]],
            "output_dropped": 0}


def big(n, flat):
    rnd = random.Random(7)
    tasks, steps, batches, barriers = [], [], [], []
    counts = dict(success=0, failed=0, timeout=0, cancelled=0, skipped=0, tolerated=0)
    steps.append({"id": "rollout", "name": "rollout", "kind": "for_each", "depth": 0, "label": None,
                  "status": "failed", "start_ms": 0, "end_ms": None})
    t = 0
    if flat:
        for i in range(n):
            s = rnd.randint(0, 600000)
            st = "success" if i % 97 else "failed"
            tasks.append(task("rollout#%d" % i, "rollout", s, s + rnd.randint(200, 20000), st, item=str(i),
                              label="item-%05d" % i))
            counts[st] += 1
    else:
        subs = ["drain", "deploy", "health", "warm", "undrain"]
        for k in subs:
            steps.append({"id": "rollout." + k, "name": k, "kind": "run", "depth": 1, "label": None,
                          "status": "success", "start_ms": 0, "end_ms": None})
        hosts = ["web%04d.dc%d.example.net" % (i, i % 3) for i in range(n // len(subs))]
        per = max(1, len(hosts) // 10)
        for b in range(0, len(hosts), per):
            start, drained = t, []
            for h in hosts[b:b + per]:
                s = start + rnd.randint(0, 3000)
                for k in subs:
                    d = rnd.randint(500, 8000)
                    st, tid = "success", "rollout.%s@%s" % (k, h)
                    r = rnd.random()
                    attempt = 1
                    if k == "health" and r < 0.03:  # a failed attempt, retried
                        tasks.append(task(tid, "rollout." + k, s, s + d, "failed", host=h))
                        s += d + 500
                        attempt = 2
                    elif k == "deploy" and r < 0.01:
                        st = "timeout"
                    elif k == "warm" and r < 0.01:
                        st = "failed"
                    tasks.append(task(tid, "rollout." + k, s, s + d, st, host=h, attempt=attempt))
                    if st == "failed":
                        tasks[-1]["tolerated"] = True
                        counts["tolerated"] += 1
                    counts[st] += 1
                    if k == "drain":
                        drained.append(s + d)
                    s += d
                t = max(t, s)
            batch_n = len(hosts[b:b + per])
            batches.append({"step": "rollout", "batch": len(batches), "start_ms": start, "end_ms": t,
                            "instances": batch_n, "failed": 0})
            barriers.append({"barrier": "drained", "step": "rollout", "release_ms": max(drained),
                             "arrived": batch_n, "expected": batch_n})
            t += 2000
        tasks = tasks[:n]
    end = max(x["end_ms"] for x in tasks)
    steps[0]["end_ms"] = end
    return {"v": 1, "run": {"id": "20261202T120000Z-b10000", "plan": "plans/big.yaml", "name": "big rollout",
                            "status": "failed", "exit_code": 1, "start": "2026-12-02T12:00:00.000Z",
                            "duration_ms": end + 100, "dry_run": False, "counts": counts},
            "steps": steps, "tasks": tasks, "batches": batches, "barriers": barriers, "warnings": []}


def hostile(base):
    d = json.load(open(base))
    d["run"]["name"] = "deploy " + HOSTILE
    d["run"]["plan"] = "plans/" + HOSTILE + ".yaml"
    d["warnings"].append("warning " + HOSTILE)
    for s in d["steps"]:
        if s["id"] == "migrate":
            s["name"] = "migrate " + HOSTILE
    for t in d["tasks"]:
        if t["id"] == "rollout.deploy@web3":
            t["label"] = "label " + HOSTILE
            t["command"] = "echo '" + HOSTILE + "' \u2028 \u2029 caf\u00e9 \u65e5\u672c \U0001F680"
            t["reason"] = "reason " + HOSTILE
            t["output"] = [["o", "out " + HOSTILE], ["e", "err " + HOSTILE], ["o", "\u2028\u2029 caf\u00e9 \U0001F680"]]
            t["host"] = "web3" + HOSTILE
            t["id"] = "rollout.deploy@web3" + HOSTILE
    for b in d["barriers"]:
        b["barrier"] = "drained " + HOSTILE
    return d


def main(argv):
    if len(argv) >= 4 and argv[1] == "big":
        doc = big(int(argv[2]), len(argv) > 4 and argv[4] == "flat")
        out = argv[3]
    elif len(argv) == 4 and argv[1] == "hostile":
        doc = hostile(argv[2])
        out = argv[3]
    else:
        sys.stderr.write(__doc__)
        return 2
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
