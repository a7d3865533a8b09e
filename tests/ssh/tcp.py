#!/usr/bin/env python3
"""Misbehaving TCP endpoints on 127.0.0.1 for baton's SSH tests.

  tcp.py silent PORTFILE [LIFETIME]
      Accepts connections and never says a word (an SSH server that hangs
      before its banner). Each accepted connection appends a line to
      PORTFILE.conns.
  tcp.py proxy PORTFILE TARGET_PORT [LIFETIME] [--schedule 'T CMD; T CMD...']
      Forwards every connection to 127.0.0.1:TARGET_PORT, and injects
      faults on command. Kill it (SIGKILL) to drop every connection at once,
      stop it (SIGSTOP) to freeze them all. Its control port is written to
      PORTFILE.ctl; `tcp.py ctl PORTFILE CMD` sends one command and waits
      for it to take effect. The commands:
        delay MS        every chunk from now on, both ways, on every
                        connection (new ones too), arrives MS later (0: none)
        stall           the connections open now stop forwarding, both
                        ways, and stay open (a network that drops them);
                        new connections flow
        resume          they forward again
        cut             the connections open now are closed, both sides
        halfclose up    on the connections open now, the client's side is
                        shut: the server reads EOF, replies still flow
        halfclose down  the server's side is shut: the client reads EOF,
                        requests still flow
        conns           prints how many connections are open
        reset N         the next N connections accepted are reset (RST)
                        at once, before a byte was forwarded either way
                        (an accept queue that overflowed); then
                        `resets` prints how many were
      With --schedule, each CMD runs T seconds after the first connection
      was accepted (T a decimal number).
  tcp.py ctl PORTFILE CMD...
      Sends CMD to the proxy that wrote PORTFILE; prints its answer; exit
      status 0 when it was done.
  tcp.py freeport
      Prints a port that nothing listens on (bound, then closed).

The listening port is written to PORTFILE (atomically) once it accepts
connections. The process exits by itself after LIFETIME seconds (default
60), so nothing outlives a test that forgot it. Every wait is bounded.
"""
import collections
import os
import signal
import socket
import struct
import sys
import threading
import time


def listen():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


def announce(s, portfile):
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(tmp, portfile)


def lifetime(seconds):
    signal.signal(signal.SIGALRM, lambda *_: os._exit(0))
    signal.alarm(int(seconds))


def silent(portfile, life=60):
    lifetime(life)
    s = listen()
    announce(s, portfile)
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)  # never read, never write, never close
        with open(portfile + ".conns", "a") as f:
            f.write("conn\n")


class Direction:
    """One way of a proxied connection: read from src, (maybe) delay, write to dst."""

    def __init__(self, conn, src, dst):
        self.conn, self.src, self.dst = conn, src, dst
        self.queue = collections.deque()  # (due time, bytes); b"" is EOF
        self.cv = threading.Condition()
        self.closed = False  # shut by a fault: read nothing more, forward nothing more

    def read_loop(self):
        try:
            while True:
                self.conn.wait_flowing()
                if self.closed:
                    return
                data = self.src.recv(65536)
                with self.cv:
                    if self.closed:
                        return
                    self.queue.append((time.monotonic() + self.conn.proxy.delay, data))
                    self.cv.notify()
                if not data:
                    return
        except OSError:
            with self.cv:
                self.queue.append((0, b""))
                self.cv.notify()

    def write_loop(self):
        try:
            while True:
                with self.cv:
                    while not self.queue and not self.closed:
                        self.cv.wait(1)
                    if self.closed:
                        return
                    due, data = self.queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(min(wait, 1))
                    continue
                self.conn.wait_flowing()
                with self.cv:
                    if self.closed or not self.queue:
                        continue
                    self.queue.popleft()
                if not data:
                    self.dst.shutdown(socket.SHUT_WR)
                    return
                self.dst.sendall(data)
        except OSError:
            pass
        finally:
            self.conn.direction_done()

    def shut(self):
        """The fault: nothing more is forwarded this way, and dst reads EOF."""
        with self.cv:
            self.closed = True
            self.queue.clear()
            self.cv.notify_all()
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class Conn:
    def __init__(self, proxy, c, u):
        self.proxy, self.c, self.u = proxy, c, u
        self.flowing = threading.Event()
        self.flowing.set()
        self.lock = threading.Lock()
        self.done = 0
        self.up = Direction(self, c, u)  # client to server
        self.down = Direction(self, u, c)  # server to client

    def start(self):
        for d in (self.up, self.down):
            for f in (d.read_loop, d.write_loop):
                threading.Thread(target=f, daemon=True).start()

    def wait_flowing(self):
        while not self.flowing.wait(1):
            pass

    def direction_done(self):
        with self.lock:
            self.done += 1
            last = self.done == 2
        if last:
            self.close()

    def close(self):
        for s in (self.c, self.u):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        self.proxy.forget(self)
        self.flowing.set()  # let waiting threads see the closed sockets and end


class Proxy:
    def __init__(self, target):
        self.target = int(target)
        self.delay = 0.0
        self.conns = []
        self.lock = threading.Lock()
        self.first = threading.Event()
        self.to_reset = 0
        self.resets = 0

    def forget(self, conn):
        with self.lock:
            if conn in self.conns:
                self.conns.remove(conn)

    def open_now(self):
        with self.lock:
            return list(self.conns)

    def serve(self, s):
        while True:
            c, _ = s.accept()
            with self.lock:
                reset = self.to_reset > 0
                if reset:
                    self.to_reset -= 1
                    self.resets += 1
            if reset:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            conn = Conn(self, c, u)
            with self.lock:
                self.conns.append(conn)
            self.first.set()
            conn.start()

    def command(self, words):
        """Runs one control command; returns the answer line."""
        if words[:1] == ["delay"] and len(words) == 2:
            self.delay = float(words[1]) / 1000.0
        elif words == ["stall"]:
            for c in self.open_now():
                c.flowing.clear()
        elif words == ["resume"]:
            for c in self.open_now():
                c.flowing.set()
        elif words == ["cut"]:
            for c in self.open_now():
                c.close()
        elif words[:1] == ["halfclose"] and words[1:] in (["up"], ["down"]):
            for c in self.open_now():
                (c.up if words[1] == "up" else c.down).shut()
        elif words == ["conns"]:
            return "ok %d" % len(self.open_now())
        elif words[:1] == ["reset"] and len(words) == 2 and words[1].isdigit():
            with self.lock:
                self.to_reset = int(words[1])
        elif words == ["resets"]:
            with self.lock:
                return "ok %d" % self.resets
        else:
            return "error: unknown command: %s" % " ".join(words)
        return "ok"

    def control(self, s):
        while True:
            k, _ = s.accept()
            with k:
                k.settimeout(5)
                try:
                    line = k.makefile("r").readline()
                    k.sendall((self.command(line.split()) + "\n").encode())
                except (OSError, ValueError) as e:
                    try:
                        k.sendall(("error: %s\n" % e).encode())
                    except OSError:
                        pass

    def scheduled(self, plan):
        if not self.first.wait(60):
            return
        t0 = time.monotonic()
        for at, words in plan:
            time.sleep(max(0, t0 + at - time.monotonic()))
            self.command(words)


def parse_schedule(text):
    plan = []
    for part in text.split(";"):
        words = part.split()
        if words:
            plan.append((float(words[0]), words[1:]))
    return sorted(plan, key=lambda p: p[0])


def proxy(portfile, target, life=60, schedule=""):
    lifetime(life)
    p = Proxy(target)
    s, k = listen(), listen()
    announce(k, portfile + ".ctl")
    threading.Thread(target=p.control, args=(k,), daemon=True).start()
    if schedule:
        threading.Thread(target=p.scheduled, args=(parse_schedule(schedule),), daemon=True).start()
    announce(s, portfile)
    p.serve(s)


def ctl(portfile, words):
    with open(portfile + ".ctl") as f:
        port = int(f.read())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as k:
        k.settimeout(10)
        k.sendall((" ".join(words) + "\n").encode())
        answer = k.makefile("r").readline().strip()
    print(answer)
    return 0 if answer.startswith("ok") else 1


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def main(argv):
    args = argv[1:]
    schedule = ""
    if "--schedule" in args:
        i = args.index("--schedule")
        if i + 1 >= len(args):
            sys.stderr.write(__doc__)
            return 2
        schedule = args[i + 1]
        del args[i:i + 2]
    if args[:1] == ["freeport"]:
        freeport()
    elif len(args) in (2, 3) and args[0] == "silent":
        silent(args[1], float(args[2]) if len(args) == 3 else 60)
    elif len(args) in (3, 4) and args[0] == "proxy":
        proxy(args[1], args[2], float(args[3]) if len(args) == 4 else 60, schedule)
    elif len(args) >= 3 and args[0] == "ctl":
        return ctl(args[1], args[2:])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
