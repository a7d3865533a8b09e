#!/usr/bin/env python3
"""Misbehaving TCP endpoints on 127.0.0.1 for baton's SSH tests.

  tcp.py silent PORTFILE [LIFETIME]
      Accepts connections and never says a word (an SSH server that hangs
      before its banner). Each accepted connection appends a line to
      PORTFILE.conns.
  tcp.py proxy PORTFILE TARGET_PORT [LIFETIME]
      Forwards every connection to 127.0.0.1:TARGET_PORT. Kill it (SIGKILL)
      to drop every connection through it at once.
  tcp.py freeport
      Prints a port that nothing listens on (bound, then closed).

The listening port is written to PORTFILE (atomically) once it accepts
connections. The process exits by itself after LIFETIME seconds (default
60), so nothing outlives a test that forgot it.
"""
import os
import signal
import socket
import sys
import threading


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


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for sock in (src, dst):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def proxy(portfile, target, life=60):
    lifetime(life)
    s = listen()
    announce(s, portfile)
    while True:
        c, _ = s.accept()
        try:
            u = socket.create_connection(("127.0.0.1", int(target)), timeout=5)
            u.settimeout(None)
        except OSError:
            c.close()
            continue
        for a, b in ((c, u), (u, c)):
            threading.Thread(target=pump, args=(a, b), daemon=True).start()


def freeport():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def main(argv):
    if len(argv) >= 2 and argv[1] == "freeport":
        freeport()
    elif len(argv) in (3, 4) and argv[1] == "silent":
        silent(argv[2], float(argv[3]) if len(argv) == 4 else 60)
    elif len(argv) in (4, 5) and argv[1] == "proxy":
        proxy(argv[2], argv[3], float(argv[4]) if len(argv) == 5 else 60)
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
