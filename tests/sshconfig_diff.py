#!/usr/bin/env python3
"""Differential test: baton's reading of ~/.ssh/config against OpenSSH's.

Writes random but valid configs (Host blocks with globs and negations, Match
host/originalhost/user/localuser/all blocks, Includes of files with globs,
relative, ~/ and absolute, nested, inside blocks; tokens) into a temporary
HOME, then for several names compares what `ssh -F CONFIG -G NAME` prints for
hostname, user, port, identityfile and proxyjump with what
`baton plan --output json` resolves for the same names (an inventory listing
them without an address, so that each is resolved through the config).

ssh -G prints IdentityFile as written; its tokens (%d %h %n %p %r %u %%, ~)
are expanded here as ssh expands them when it loads the key.

Usage: sshconfig_diff.py [--configs N] [--seed S] [--keep] [--mutate]   (BATON: the binary)
Exit status 0 when every comparison matched; prints the counts.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

NAMES = ["web1", "web2", "web10", "db1", "db-a.internal", "app.example.org", "Mixed1", "gw"]
USERS = ["alice", "bob", "deploy"]
PATTERNS = ["web*", "web?", "*.internal", "d?1", "*", "db*", "*.example.org", "gw", "Mixed*", "mixed1", "x*"]
HOSTNAME_VALUES = ["%h.example.com", "10.1.2.3", "Real-%h.LAN", "fixed.example.net", "%h", "pct%%.example"]
IDENTITY_VALUES = ["~/.ssh/id_%h", "~/.ssh/id_%r@%h:%p", "%d/.ssh/k_%u", "/keys/%n_%%", "~/.ssh/plain", "~/.ssh/id_%h"]
JUMPS = ["jumpa", "bob@jumpb:2200", "jumpa,jumpb", "none", "alice@jumpc", "jumpb:2022,deploy@jumpa"]


def local_user():
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


def rand_pattern(r):
    p = r.choice(PATTERNS + NAMES)
    return ("!" + p) if r.random() < 0.2 else p


def rand_list(r, pool):
    items = [r.choice(pool) for _ in range(r.randint(1, 3))]
    items = [("!" + i) if r.random() < 0.2 else i for i in items]
    return ",".join(items)


def rand_match(r, me):
    if r.random() < 0.15:
        return kw(r, "Match") + " all"
    crits = []
    for _ in range(r.randint(1, 3)):
        kind = r.choice(["host", "originalhost", "user", "localuser"])
        if kind in ("host", "originalhost"):
            pool = PATTERNS + NAMES + ["*.example.com", "10.1.*", "real-*"]
        else:
            pool = USERS + [me, "*", "a*", "r??t"]
        neg = "!" if r.random() < 0.2 else ""
        crits.append(f"{neg}{kind}{r.choice([' ', '='])}{rand_list(r, pool)}")
    return kw(r, "Match") + " " + " ".join(crits)


def rand_option(r):
    k = r.choice(["HostName", "User", "Port", "IdentityFile", "IdentityFile", "ProxyJump"])
    v = {
        "HostName": lambda: r.choice(HOSTNAME_VALUES),
        "User": lambda: r.choice(USERS),
        "Port": lambda: str(r.choice([22, 2200, 2222, 8022])),
        "IdentityFile": lambda: r.choice(IDENTITY_VALUES),
        "ProxyJump": lambda: r.choice(JUMPS),
    }[k]()
    kw = r.choice([k, k.lower(), k.upper()])
    sep = r.choice([" ", "=", " = ", "\t"])
    if k != "ProxyJump" and r.random() < 0.1:
        v = f'"{v}"'  # ssh takes ProxyJump's quotes as part of the value
    if k != "ProxyJump" and r.random() < 0.1:
        # (ssh 9.2 reads `ProxyJump none # comment` as a jump through a host named "none")
        v += " # a trailing comment"
    return f"{kw}{sep}{v}"


def kw(r, k):
    return r.choice([k, k.lower(), k.upper()])


class Gen:
    def __init__(self, r, home, me):
        self.r, self.home, self.me = r, home, me
        self.n_files = 0

    def include_line(self, depth):
        """An Include of one or more new files, named to exercise relative, ~/, absolute and glob paths."""
        r = self.r
        self.n_files += 1
        stem = f"f{self.n_files}"
        d = os.path.join(self.home, ".ssh", "inc")
        os.makedirs(d, exist_ok=True)
        files = [f"{stem}a.conf"] + ([f"{stem}b.conf"] if r.random() < 0.5 else [])
        for f in files:
            with open(os.path.join(d, f), "w") as fh:
                fh.write(self.body(depth + 1, r.randint(0, 3)))
            os.chmod(os.path.join(d, f), 0o600)
        how = r.choice(["rel", "tilde", "abs"])
        glob = f"{stem}*.conf"
        base = {"rel": "inc/", "tilde": "~/.ssh/inc/", "abs": d + "/"}[how]
        extra = " inc/nothing-*.conf" if r.random() < 0.2 else ""
        return f"{kw(self.r, 'Include')} {base}{glob}{extra}"

    def body(self, depth, n_blocks):
        r = self.r
        out = []
        for _ in range(r.randint(0, 2)):
            out.append(rand_option(r))
        for _ in range(n_blocks):
            if r.random() < 0.55:
                out.append(kw(r, "Host") + " " + " ".join(rand_pattern(r) for _ in range(r.randint(1, 3))))
            else:
                out.append(rand_match(r, self.me))
            for _ in range(r.randint(0, 3)):
                out.append("  " + rand_option(r))
            if depth < 3 and r.random() < 0.25:
                out.append("  " + self.include_line(depth))
            if r.random() < 0.1:
                out.append("# a comment")
        return "\n".join(out) + "\n"


def ssh_g(cfg, home, name):
    env = dict(os.environ, HOME=home)
    p = subprocess.run(["ssh", "-F", cfg, "-G", name], env=env, capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL)
    if p.returncode:
        raise RuntimeError(f"ssh -G {name}: {p.stderr.strip()}")
    got = {"identityfile": []}
    for line in p.stdout.splitlines():
        k, _, v = line.partition(" ")
        if k == "identityfile":
            got[k].append(v)
        elif k in ("hostname", "user", "port", "proxyjump"):
            got[k] = v
    return got


def expand_identity(s, home, me, host, user, port, name):
    if s.startswith("~/") or s == "~":
        s = home + s[1:]
    tok = {"%": "%", "d": home, "u": me, "h": host, "r": user, "p": str(port), "n": name}
    out, i = [], 0
    while i < len(s):
        if s[i] == "%" and i + 1 < len(s) and s[i + 1] in tok:
            out.append(tok[s[i + 1]])
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def baton_resolve(baton, home, names, me):
    plan = os.path.join(home, "plan.yaml")
    with open(plan, "w") as fh:
        fh.write("inventory:\n  hosts:\n")
        for n in names:
            fh.write(f"    {n}: {{}}\n")
        fh.write("steps: [{ id: a, run: 'true', on: all }]\n")
    env = dict(os.environ, HOME=home, USER=me)
    p = subprocess.run([baton, "plan", plan, "--output", "json"], env=env, capture_output=True, text=True,
                       timeout=20, stdin=subprocess.DEVNULL)
    if p.returncode:
        return None, (p.stdout + p.stderr).strip()
    d = json.loads(p.stdout)
    return {h["name"]: h for h in d["steps"][0]["on"]["hosts"]}, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep", action="store_true", help="keep the HOME of the first mismatch")
    ap.add_argument("--max-seconds", type=float, default=120)
    ap.add_argument("--mutate", action="store_true",
                    help="self-check: take baton's port + 1 as its answer; every comparison must then mismatch")
    a = ap.parse_args()
    baton = os.environ.get("BATON", "build/baton")
    me = local_user()
    r = random.Random(a.seed)
    compared = mismatches = skipped = configs = 0
    start = time.time()
    for c in range(a.configs):
        if time.time() - start > a.max_seconds:
            break
        home = tempfile.mkdtemp(prefix="sshcfg-diff.")
        try:
            os.makedirs(os.path.join(home, ".ssh"))
            g = Gen(r, home, me)
            text = g.body(0, r.randint(1, 8))
            if r.random() < 0.5:
                text = g.include_line(0) + "\n" + text
            if r.random() < 0.7:
                # jump hosts jump nowhere, mostly: a cycle makes baton refuse the whole config
                text = "Host jump*\n  ProxyJump none\n" + text
            # a last IdentityFile for every name, so that ssh -G never lists its defaults
            text += "Host *\n  IdentityFile ~/.ssh/last\n"
            cfg = os.path.join(home, ".ssh", "config")
            with open(cfg, "w") as fh:
                fh.write(text)
            os.chmod(cfg, 0o600)
            names = r.sample(NAMES, 5)
            got, err = baton_resolve(baton, home, names, me)
            configs += 1
            if got is None:
                if "ProxyJump cycle" in err or "ProxyJump chain longer" in err:
                    skipped += 1  # ssh -G does not follow jumps; a real ssh would loop forever
                    continue
                print(f"config {c} (seed {a.seed}): baton failed: {err}\n{text}", file=sys.stderr)
                mismatches += 1
                continue
            for n in names:
                want = ssh_g(cfg, home, n)
                h = got[n]
                port = int(want["port"])
                want_ids = [expand_identity(i, home, me, want["hostname"], want["user"], port, n)
                            for i in want["identityfile"]]
                mine = {"hostname": h["address"], "user": h["user"], "port": str(h["port"] + a.mutate),
                        "identityfile": h["identities"], "proxyjump": h["via"]}
                theirs = {"hostname": want["hostname"], "user": want["user"], "port": want["port"],
                          "identityfile": want_ids, "proxyjump": want.get("proxyjump")}
                compared += 1
                if mine != theirs:
                    mismatches += 1
                    if a.mutate:
                        continue
                    print(f"MISMATCH config {c} (seed {a.seed}) name {n}:\n  baton {mine}\n  ssh   {theirs}",
                          file=sys.stderr)
                    for root, _, files in os.walk(os.path.join(home, ".ssh")):
                        for f in sorted(files):
                            p = os.path.join(root, f)
                            print(f"--- {p}\n{open(p).read()}", file=sys.stderr)
                    if a.keep:
                        print(f"kept {home}", file=sys.stderr)
                        home = None
                        break
        finally:
            if home:
                shutil.rmtree(home, ignore_errors=True)
        if mismatches and a.keep:
            break
    print(f"sshconfig_diff: seed {a.seed}: {configs} configs, {compared} names compared, "
          f"{skipped} configs skipped (jump cycles), {mismatches} mismatches, {time.time() - start:.1f}s")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
