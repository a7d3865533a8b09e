#!/usr/bin/env python3
"""crash.py — the crash test of tracked runs (design/runs.md), driven by crash.bats.

A generated plan of ~200 tasks (a sequence, a parallel, a for_each in
batches, a for_each over an earlier step's output, nested groups and,
with --inventory, steps on SSH hosts) whose every task appends one line to
a marker file named by its task id, so executions can be counted, and
sleeps a random 0-150 ms, so that kills land everywhere. Then, ITERATIONS
times, each in a fresh state directory and marker directory:

  1. `baton run` in the background, SIGKILLed at a random moment over the
     run's expected duration (measured first by an uninterrupted run);
  2. what the store recorded `success` before the kill is read (sqlite3),
     the store's integrity checked (PRAGMA integrity_check), the durability
     rule checked (a task recorded success implies every task it ran after
     was), and the markers counted once what the killed run had in flight
     has ended;
  3. `baton resume` must exit 0;
  4. a task recorded success before the kill did not run again; every
     other task ran exactly once after the resume (one that ran but whose
     end was not recorded yet runs again: that is the contract);
  5. nothing of the killed run is left: no process carrying its
     BATON_RUN_ID, none of the plan's commands, and on the SSH side no
     process of the remote user running the plan's commands (after up to
     5 s: the remote watchers end a dead connection's commands);
  6. the store agrees: the resumed run is recorded success, resumed from
     the killed one, with every task of the plan succeeded, exactly those
     recorded success before the kill carried over (reused).

Every fourth iteration the first resume is SIGKILLed too, at a random
moment, and checked the same way (it ran nothing recorded succeeded, it is
recorded resuming the run); the second resume then carries over what
either recorded succeeded (the chain of resumed runs) and must end what
both left running.

Two tasks never end on their own in a killed run: `long` (local) and
`rlong` (remote, with --inventory) sleep 20 s unless a flag file exists,
which the test creates before it resumes; so ending what a killed run left
running is always put to the test, here and on the host.

CRASH_DEBUG=1 also prints how long each wait and each resume took.

One line per iteration ("leftovers": processes of the killed run found here
after the resume, or on the host 5 s after the kill, plus any of the
resumed run's on the host 5 s after it ended):
  crash 7: killed at 1.23s: 57 recorded succeeded, 3 ran again, 140 ran after resume, resume exit 0, leftovers 0
The seed is printed first; --seed replays the plan shapes and kill times.
Exit status 0 when every iteration held, 1 otherwise (saying what and where).
"""
import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

SLEEP_MAX_MS = 150
LONG_S = 20


def q(s):
    """A YAML double-quoted scalar (JSON's escapes are YAML's)."""
    return json.dumps(s)


class Plan:
    """The generated plan: its text and every task id it has."""

    def __init__(self, rng, mdir, mark, remote):
        self.rng, self.mdir, self.mark, self.remote = rng, mdir, mark, remote
        self.ids = []  # every task id, as the store and the markers name it
        self.deps = []  # (a, b): b starts only after a has ended
        self.lines = []
        self.build()
        self.text = "\n".join(self.lines) + "\n"

    def nap(self):
        # the mark's digits go after the sleep's own: unchanged in effect, found by cmdline
        return "sleep 0.%03d%s" % (self.rng.randrange(SLEEP_MAX_MS + 1), self.mark)

    def cmd(self, marker, extra="", d=None):
        d = d or self.mdir
        return '%secho x >> "%s/%s"; %s' % (extra, d, marker, self.nap())

    def task(self, ind, tid, full, marker=None):
        self.lines.append("%s- { id: %s, run: %s }" % (ind, tid, q(self.cmd(marker or full))))
        self.ids.append(full)

    def build(self):
        L, R = self.lines.append, self.remote
        if R:
            L("ssh: { known_hosts_file: %s }" % q(R["known_hosts"]))
        L("steps:")
        L("  - id: all")
        L("    parallel:")
        # never ends by itself in a killed run: what resume must end
        L("      - id: long")
        L("        run: %s" % q('echo x >> "%s/all.long"; [ -e "%s/resumed" ] || sleep %d.%s'
                                % (self.mdir, self.mdir, LONG_S, self.mark)))
        self.ids.append("all.long")
        if R:
            L("      - id: rlong")
            L("        on: h1")
            L("        run: %s" % q(': %s; echo x >> "%s/all.rlong@h1"; [ -e "%s/resumed" ] || sleep %d.%s'
                                    % (R["token"], R["rt"], R["rt"], LONG_S, self.mark)))
            self.ids.append("all.rlong@h1")
        L("      - id: body")
        L("        steps:")
        # its output is random: a resume that lost it would give the items other commands
        n_gen = 40
        L("          - id: gen")
        L("            run: %s" % q('echo x >> "%s/all.body.gen"; i=0; while [ $i -lt %d ]; do echo "g$$-$i"; '
                                    'i=$((i+1)); done; %s' % (self.mdir, n_gen, self.nap())))
        self.ids.append("all.body.gen")
        L("          - id: main")
        L("            parallel:")
        base = "all.body.main"
        first_main = len(self.ids)
        L("              - id: seq")
        L("                steps:")
        for i in range(12):
            self.task("                  ", "s%d" % i, "%s.seq.s%d" % (base, i))
            if i:
                self.deps.append(("%s.seq.s%d" % (base, i - 1), "%s.seq.s%d" % (base, i)))
        L("              - id: par")
        L("                parallel:")
        for i in range(36):
            self.task("                  ", "p%d" % i, "%s.par.p%d" % (base, i))
        n_items = 30
        L("              - id: batched")
        L("                for_each: [%s]" % ", ".join("i%d" % i for i in range(n_items)))
        L("                batch: { size: 3 }")
        L("                steps:")
        for s in ("a", "b"):
            L("                  - { id: %s, run: %s }"
              % (s, q(self.cmd("%s.batched.%s#${{ index }}" % (base, s), 'test "${{ item }}" = i${{ index }}; '))))
            self.ids += ["%s.batched.%s#%d" % (base, s, i) for i in range(n_items)]
        for i in range(n_items):
            self.deps.append(("%s.batched.a#%d" % (base, i), "%s.batched.b#%d" % (base, i)))
            # a batch starts once the one before has ended
            for j in range(3 * (i // 3 + 1), min(3 * (i // 3 + 2), n_items)):
                self.deps.append(("%s.batched.b#%d" % (base, i), "%s.batched.a#%d" % (base, j)))
        L("              - id: fe")
        L("                for_each: ${{ steps.gen.stdout_lines }}")
        L("                run: %s" % q(self.cmd("%s.fe#${{ index }}" % base, ': "${{ item }}"; ')))
        self.ids += ["%s.fe#%d" % (base, i) for i in range(n_gen)]
        L("              - id: nest")
        L("                parallel:")
        for g in range(4):
            L("                  - id: g%d" % g)
            L("                    steps:")
            for i in range(5):
                self.task("                      ", "t%d" % i, "%s.nest.g%d.t%d" % (base, g, i))
                if i:
                    self.deps.append(("%s.nest.g%d.t%d" % (base, g, i - 1), "%s.nest.g%d.t%d" % (base, g, i)))
        if R:
            L("              - id: rfe")
            L("                on: fleet")
            L("                for_each: [0, 1, 2, 3]")
            L("                run: %s" % q(self.cmd("%s.rfe@${{ host.name }}#${{ index }}" % base,
                                                      ": %s; " % R["token"], R["rt"])))
            self.ids += ["%s.rfe@h%d#%d" % (base, h, i) for h in (1, 2, 3) for i in range(4)]
        main = self.ids[first_main:]
        self.deps += [("all.body.gen", k) for k in main]
        L("          - id: tail")
        L("            steps:")
        for i in range(5):
            self.task("              ", "z%d" % i, "all.body.tail.z%d" % i)
            self.deps += [(k, "all.body.tail.z0") for k in main] if not i else \
                [("all.body.tail.z%d" % (i - 1), "all.body.tail.z%d" % i)]


def counts(dirs):
    """How many lines each marker file holds, over the marker directories."""
    c = {}
    for d in dirs:
        for f in os.listdir(d):
            if f == "resumed":
                continue
            with open(os.path.join(d, f), "rb") as h:
                c[f] = c.get(f, 0) + h.read().count(b"\n")
    return c


def store_tasks(state, run=None):
    """{task id: (status, reused)} of the run (the newest when None), the last row of each id being its state."""
    db = sqlite3.connect("file:%s/runs.db" % state, uri=True, timeout=10)
    try:
        if run is None:
            run = db.execute("SELECT id FROM runs ORDER BY start_ms DESC, rowid DESC LIMIT 1").fetchone()[0]
        rowid = db.execute("SELECT rowid FROM runs WHERE id = ?", (run,)).fetchone()[0]
        rows = db.execute("SELECT id, status, reused FROM tasks WHERE kind IS NULL AND k >= ? AND k < ?"
                          " ORDER BY k", (rowid << 32, (rowid + 1) << 32)).fetchall()
        info = db.execute("SELECT state, exit_code, resumed_from FROM runs WHERE id = ?", (run,)).fetchone()
    finally:
        db.close()
    t = {}
    for i, s, r in rows:
        t[i] = (s, bool(r))
    return run, t, info


def recorded_run(state):
    """True when a run is recorded in state (a kill may come before)."""
    if not os.path.exists(os.path.join(state, "runs.db")):
        return False
    db = sqlite3.connect("file:%s/runs.db" % state, uri=True, timeout=10)
    try:
        return db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'runs'").fetchone()[0] and \
            db.execute("SELECT count(*) FROM runs").fetchone()[0] > 0
    finally:
        db.close()


def integrity(state):
    db = sqlite3.connect("file:%s/runs.db" % state, uri=True, timeout=10)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def procs():
    """(pid, ppid, argv, environ bytes) of every process that can be read (zombies have no argv)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % p, "rb") as h:
                cmd = h.read()
            with open("/proc/%s/environ" % p, "rb") as h:
                env = h.read()
            with open("/proc/%s/stat" % p, "rb") as h:
                ppid = int(h.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if cmd:
            out.append((int(p), ppid, cmd.split(b"\0"), env))
    return out


def local_of(run_ids, mark, quiet_long=False):
    """
    Processes of the runs run_ids (their BATON_RUN_ID) or running the plan's
    commands (the mark in their argv), as (pid, argv). quiet_long: not those
    of `long` once it sleeps (its marker written: its shell waits for the sleep).
    """
    want = {b"BATON_RUN_ID=" + r.encode() for r in run_ids}
    m, lm = mark.encode(), b"%d.%s" % (LONG_S, mark.encode())
    ps = [(pid, ppid, argv) for pid, ppid, argv, env in procs()
          if want & set(env.split(b"\0")) or any(m in a for a in argv)]
    if quiet_long:
        sleeping = {pid for pid, _, argv in ps if argv[0].endswith(b"sleep") and any(lm in a for a in argv)}
        parents = {ppid for pid, ppid, _ in ps if pid in sleeping}
        ps = [x for x in ps if x[0] not in sleeping and x[0] not in parents]
    return [(pid, argv) for pid, _, argv in ps]


def remote_of(user, token):
    """Pids of the remote user's processes running the plan's commands (pgrep -f)."""
    r = subprocess.run(["pgrep", "-u", user, "-f", "--", token], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, timeout=10)
    return [int(x) for x in r.stdout.split()]


def settle(run_ids, mark, remote, limit=5.0):
    """
    Waits (up to limit s) until what the killed runs had in flight has ended,
    so that no marker is written after they are counted: locally only `long`
    may still run (once it sleeps); remotely nothing (the watchers end the
    commands of a connection that is gone). Returns what is still there at
    the limit: local (pid, argv), remote pids.
    """
    end = time.monotonic() + limit
    while True:
        loc = local_of(run_ids, mark, quiet_long=True)
        rem = remote_of(remote["user"], remote["token"]) if remote else []
        if (not loc and not rem) or time.monotonic() > end:
            return loc, rem
        time.sleep(0.05)


def baton(args, a, timeout, **kw):
    return subprocess.run([args.baton] + a, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, **kw)


def fresh(path):
    os.makedirs(path)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baton", required=True)
    ap.add_argument("--work", required=True, help="a scratch directory")
    ap.add_argument("--mark", required=True, help="digits found in every command line of the plan")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--inventory", help="with --rt, --user: also steps on these SSH hosts (h1..h3, group fleet)")
    ap.add_argument("--rt", help="a directory the remote user writes, seen here")
    ap.add_argument("--user", help="the remote user")
    ap.add_argument("--known-hosts", help="the known hosts file for them")
    ap.add_argument("--log", help="also append the outcome lines to this file")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**9)
    print("crash: seed %d (CRASH_SEED=%d replays it)%s" % (seed, seed, ", with SSH hosts" if args.inventory else ""),
          flush=True)
    env = dict(os.environ)
    env.pop("BATON_NO_STORE", None)
    env.pop("BATON_STATE_DIR", None)
    log = open(args.log, "a") if args.log else None
    failures = []

    def say(line):
        print(line, flush=True)
        if log:
            log.write(line + "\n")
            log.flush()

    def setup(it, rng):
        # a mark of its own: what is left of one iteration is told from the next one's
        name = "%02d" % it
        mark = args.mark + name
        d = fresh(os.path.join(args.work, name))
        m = fresh(os.path.join(d, "m"))
        remote = None
        if args.inventory:
            rt = fresh(os.path.join(args.rt, name))
            os.chmod(rt, 0o1777)
            remote = {"rt": rt, "user": args.user, "token": "crash-%s" % mark,
                      "known_hosts": args.known_hosts}
        p = Plan(rng, m, mark, remote)
        path = os.path.join(d, "plan.yaml")
        with open(path, "w") as f:
            f.write(p.text)
        cmd = ["run", path, "-j", "8", "--output", "quiet", "--state-dir", os.path.join(d, "state")]
        if args.inventory:
            cmd += ["--inventory", args.inventory]
        return d, m, remote, p, cmd

    def flags(m, remote):
        for x in [m] + ([remote["rt"]] if remote else []):
            open(os.path.join(x, "resumed"), "w").close()

    # the run's expected duration, and the plan's tasks checked against what the store and the markers say
    d, m, remote, p, cmd = setup(0, random.Random(seed))
    flags(m, remote)
    t0 = time.monotonic()
    r = baton(args, cmd, 120, env=env)
    dur = time.monotonic() - t0
    if r.returncode != 0:
        print("crash: the uninterrupted run exited %d:\n%s" % (r.returncode, r.stderr.decode(errors="replace")))
        db = sqlite3.connect(os.path.join(d, "state", "runs.db"))
        for row in db.execute("SELECT id, status, reason FROM tasks WHERE status != 'success' LIMIT 10"):
            print("  %s %s: %s" % row)
        return 1
    _, tasks, _ = store_tasks(os.path.join(d, "state"))
    c = counts([m] + ([remote["rt"]] if remote else []))
    if sorted(tasks) != sorted(p.ids) or sorted(c) != sorted(p.ids) or set(c.values()) != {1} or \
            {s for s, _ in tasks.values()} != {"success"}:
        print("crash: the uninterrupted run does not match the plan's %d tasks:" % len(p.ids))
        print("  not in the store: %s" % sorted(set(p.ids) - set(tasks))[:10])
        print("  in the store, not the plan: %s" % sorted(set(tasks) - set(p.ids))[:10])
        print("  markers not once: %s" % sorted(k for k in set(c) | set(p.ids) if c.get(k) != 1)[:10])
        return 1
    print("crash: %d tasks, an uninterrupted run takes %.2fs" % (len(p.ids), dur), flush=True)

    for it in range(1, args.iterations + 1):
        rng = random.Random(seed * 1000 + it)
        d, m, remote, p, cmd = setup(it, rng)
        state = os.path.join(d, "state")
        dirs = [m] + ([remote["rt"]] if remote else [])
        at = rng.uniform(0.0, dur * 1.05)
        where = "crash %d (seed %d)" % (it, seed)
        bad = []
        proc = subprocess.Popen([args.baton] + cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=env)
        time.sleep(at)
        proc.kill()
        proc.wait()
        t_kill = time.monotonic()
        err = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        if proc.returncode != -signal.SIGKILL:
            say("%s: the run ended (exit %s) before the kill at %.2fs: %s" % (where, proc.returncode, at, err))
            failures.append(it)
            continue
        if not recorded_run(state):
            # killed before the run was recorded: nothing of it may have run, and there is nothing to resume
            c = counts(dirs)
            say("crash %d: killed at %.2fs: before the run was recorded, %d tasks ran" % (it, at, sum(c.values())))
            if c:
                failures.append(it)
            continue
        ok = integrity(state)
        if ok != "ok":
            bad.append("integrity_check after the kill: %s" % ok)
        run_id, tasks, info = store_tasks(state)
        recorded = {k for k, (s, _) in tasks.items() if s == "success"}
        if info[0] != "running":
            bad.append("the killed run is recorded %r, not running" % (info[0],))
        # the durability rule: what ran after a task ended was recorded after that end was
        for a, b in p.deps:
            if b in recorded and a not in recorded:
                bad.append("%s recorded success, but %s, which it ran after, was not" % (b, a))
        loc, rem = settle([run_id], p.mark, remote)
        if loc:
            bad.append("the killed run's commands still running 5 s after the kill: %s" % loc[:5])
        if rem:
            bad.append("remote commands of the killed run still running 5 s after the kill: pids %s" % rem[:10])
        before = counts(dirs)
        killed = [run_id]
        resume_at = None
        if it % 4 == 0:
            # every fourth time the resume is killed too: the next one carries over from both runs
            resume_at = rng.uniform(0.0, dur)
            proc = subprocess.Popen([args.baton, "resume", "--state-dir", state, "--output", "quiet"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    env=env)
            time.sleep(resume_at)
            proc.kill()
            proc.wait()
            err = proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
            if proc.returncode != -signal.SIGKILL:
                bad.append("the first resume ended (exit %s) before its kill at %.2fs: %s"
                           % (proc.returncode, resume_at, err))
            ok = integrity(state)
            if ok != "ok":
                bad.append("integrity_check after the resume's kill: %s" % ok)
            id2, tasks2, info2 = store_tasks(state)
            if id2 != run_id:
                killed.append(id2)
                rec2 = {k for k, (s, _) in tasks2.items() if s == "success"}
                reused2 = {k for k, (s, u) in tasks2.items() if u}
                if info2[2] != run_id:
                    bad.append("the first resume %s is recorded resuming %r, not %s" % (id2, info2[2], run_id))
                if not reused2 <= recorded:
                    bad.append("the first resume carried over what was not recorded success: %s"
                               % sorted(reused2 - recorded)[:5])
                for a, b in p.deps:
                    if b in rec2 and a not in rec2:
                        bad.append("%s recorded success by the first resume, but %s, which it ran after, was not"
                                   % (b, a))
                loc, rem2 = settle(killed, p.mark, remote)
                rem += rem2
                if loc:
                    bad.append("the killed resume's commands still running 5 s after its kill: %s" % loc[:5])
                if rem2:
                    bad.append("remote commands of the killed resume still running 5 s after its kill: pids %s"
                               % rem2[:10])
                mid = counts(dirs)
                for k in recorded:
                    if mid.get(k, 0) != before.get(k, 0):
                        bad.append("%s: recorded success before the kill, ran again in the first resume" % k)
                # what the next resume carries: the first resume's record, else the run's
                recorded |= rec2
                before = mid
        flags(m, remote)
        t1 = time.monotonic()
        r = baton(args, ["resume", "--state-dir", state, "--output", "quiet"], 120, env=env)
        if os.environ.get("CRASH_DEBUG"):
            print("  settle %.2fs, resume %.2fs" % (t1 - t_kill, time.monotonic() - t1))
        rerr = r.stderr.decode(errors="replace")
        if r.returncode != 0:
            bad.append("resume exited %d:\n%s" % (r.returncode, rerr))
        # right after resume: nothing of the killed run here; on the host, after up to 5 s
        left = local_of(killed, p.mark)
        rleft = []
        if remote:
            end = time.monotonic() + 5
            while True:
                rleft = remote_of(remote["user"], remote["token"])
                if not rleft or time.monotonic() > end:
                    break
                time.sleep(0.1)
        after = counts(dirs)
        again = ran = 0
        for k in p.ids:
            b, a = before.get(k, 0), after.get(k, 0)
            if k in recorded:
                if b < 1:
                    bad.append("%s: recorded success, but its command never ran" % k)
                if a != b:
                    bad.append("%s: recorded success before the kill, ran again after the resume (%d -> %d)"
                               % (k, b, a))
            else:
                if a - b != 1:
                    bad.append("%s: not recorded success, ran %d times after the resume (%d -> %d)"
                               % (k, a - b, b, a))
                ran += a - b == 1
                again += a - b == 1 and b > 0
        extra = set(after) - set(p.ids)
        if extra:
            bad.append("markers of no task of the plan: %s" % sorted(extra)[:5])
        if r.returncode == 0:
            new_id, new, info = store_tasks(state)
            if info != ("success", 0, killed[-1]):
                bad.append("the resumed run %s is recorded %r, not ('success', 0, %r)" % (new_id, info, killed[-1]))
            reused = {k for k, (s, u) in new.items() if u}
            if reused != recorded:
                bad.append("carried over %d tasks, but %d were recorded success: %s" % (
                    len(reused), len(recorded), sorted(reused ^ recorded)[:5]))
            if {s for s, _ in new.values()} != {"success"} or sorted(new) != sorted(p.ids):
                bad.append("the resumed run's tasks are not every task of the plan, all succeeded")
        ok = integrity(state)
        if ok != "ok":
            bad.append("integrity_check after the resume: %s" % ok)
        leftovers = len(left) + len(rem) + len(rleft)
        if left:
            bad.append("left running after the resume: %s" % [(pid, b" ".join(a)[:120]) for pid, a in left[:5]])
        if rleft:
            bad.append("left running on the host 5 s after the resume: pids %s" % rleft[:10])
        say("crash %d: killed at %.2fs%s: %d recorded succeeded, %d ran again, %d ran after resume, resume exit %d, "
            "leftovers %d" % (it, at, ", its resume killed at %.2fs" % resume_at if resume_at is not None else "",
                              len(recorded), again, ran, r.returncode, leftovers))
        if bad:
            failures.append(it)
            print("%s: FAILED (plan %s/plan.yaml, state %s):" % (where, d, state))
            for x in bad[:20]:
                print("  " + x)
            if len(bad) > 20:
                print("  ... and %d more" % (len(bad) - 20))
            sys.stdout.flush()
            if len(failures) >= 3:
                print("crash: stopping after 3 failed iterations")
                break
    if log:
        log.close()
    if failures:
        print("crash: %d of %d iterations failed (%s); CRASH_SEED=%d replays them" % (
            len(failures), args.iterations, ", ".join(map(str, failures)), seed))
        return 1
    print("crash: %d iterations, all held" % args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
