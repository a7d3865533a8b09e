#!/usr/bin/env python3
"""Opens a page in headless Chromium and reports what a user would see.

Drives Debian's chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe: the browser reads commands on fd 3 and writes on
fd 4, each message JSON ended by a NUL byte), with the Python standard
library only. Every wait is bounded (BROWSER_TIMEOUT seconds overall,
default 30); chromium and all its processes are killed at the end and the
temporary profile is removed.

  browser.py check PAGE.html [--click SELECTOR]
      JSON: errors (console errors, uncaught exceptions, log errors),
      dialogs (alert, confirm or prompt that opened),
      bars, classes (count of each status class), rendered_ms
      (window.batonRendered), scripts, imgs, iframes, title, detail_text
      (#detail's text, after the click when --click is given: a real mouse
      click at the centre of the first element SELECTOR matches), clicked.
  browser.py eval PAGE.html EXPR...
      JSON: errors, and the value of each JavaScript expression.
  browser.py screenshot PAGE.html OUT.png [WIDTH HEIGHT] [--click SELECTOR] [--js EXPR]
      a PNG of the viewport (1400x900 unless given), after the click and
      EXPR (e.g. "scrollTo(0, 0)").
"""
import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

CHROMIUM = os.environ.get("CHROMIUM", "chromium")
TIMEOUT = float(os.environ.get("BROWSER_TIMEOUT", "30"))


class BrowserError(Exception):
    pass


class Browser:
    def __init__(self, width=1400, height=900):
        self.deadline = time.monotonic() + TIMEOUT
        self.profile = tempfile.mkdtemp(prefix="baton-chromium-")
        self.proc = None
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.errors = []
        self.dialogs = []
        self.session = None
        self.width, self.height = width, height
        # the pipes, moved above fd 10 so that placing them at 3 and 4 in
        # the child cannot overwrite one with the other
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        fds = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_r, to_w, from_r, from_w)]
        for fd in (to_r, to_w, from_r, from_w):
            os.close(fd)
        self.child_in, self.w, self.r, self.child_out = fds

        def place():
            os.dup2(self.child_in, 3)
            os.dup2(self.child_out, 4)

        log = open(os.path.join(self.profile, "chromium.log"), "wb")
        try:
            self.proc = subprocess.Popen(
                [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                 "--user-data-dir=" + self.profile, "--no-first-run", "--no-default-browser-check",
                 "--disable-extensions", "--disable-background-networking", "--disable-sync",
                 "--disable-component-update", "--mute-audio", "--hide-scrollbars",
                 "--window-size=%d,%d" % (width, height), "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(3, 4),
                preexec_fn=place, start_new_session=True)
        finally:
            log.close()
            os.close(self.child_in)
            os.close(self.child_out)
        os.set_blocking(self.r, False)

    # ---- the protocol ----
    def left(self):
        t = self.deadline - time.monotonic()
        if t <= 0:
            raise BrowserError("timed out after %gs (BROWSER_TIMEOUT)" % TIMEOUT)
        return t

    def send(self, method, params=None, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            _, w, _ = select.select([], [self.w], [], self.left())
            if w:
                data = data[os.write(self.w, data):]
        return self.next_id

    def pump(self, timeout):
        """Reads what the browser sent within timeout seconds; returns the messages."""
        r, _, _ = select.select([self.r], [], [], max(0, min(timeout, self.left())))
        if not r:
            return []
        chunk = os.read(self.r, 1 << 20)
        if not chunk:
            raise BrowserError("chromium closed the pipe (see its log)")
        self.buf += chunk
        out = []
        while b"\0" in self.buf:
            raw, self.buf = self.buf.split(b"\0", 1)
            msg = json.loads(raw)
            if "method" in msg:
                self.event(msg)
            out.append(msg)
        return out

    def event(self, msg):
        self.events.append(msg)
        m, p = msg["method"], msg.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console.%s: %s" % (p.get("type"), " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", []))))
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append("exception: %s %s" % (d.get("text", ""), d.get("exception", {}).get("description", "")))
        elif m == "Page.javascriptDialogOpening":
            # an alert() ran: note it and dismiss it, or the page would hang
            self.dialogs.append("%s: %s" % (p.get("type"), p.get("message")))
            self.send("Page.handleJavaScriptDialog", {"accept": False})
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            self.errors.append("log: %s %s" % (e.get("text", ""), e.get("url", "")))

    def call(self, method, params=None, session=True):
        want = self.send(method, params, session)
        while True:
            for msg in self.pump(self.left()):
                if msg.get("id") == want:
                    if "error" in msg:
                        raise BrowserError("%s: %s" % (method, msg["error"].get("message")))
                    return msg.get("result", {})

    def wait_event(self, method):
        seen = len(self.events)
        while True:
            for msg in self.events[seen:]:
                if msg["method"] == method:
                    return msg
            seen = len(self.events)
            self.pump(self.left())

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise BrowserError("evaluating %s: %s" % (expr, r["exceptionDetails"].get("exception", {}).get(
                "description", r["exceptionDetails"].get("text"))))
        return r.get("result", {}).get("value")

    # ---- what the tests do ----
    def open(self, path):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for m in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(m)
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        self.call("Page.navigate", {"url": "file://" + os.path.abspath(path)})
        self.wait_event("Page.loadEventFired")
        # the page says when it has drawn (window.batonRendered); other pages are done at load
        while self.evaluate("document.getElementById('baton-data') !== null && "
                            "window.batonRendered === undefined && !document.getElementById('err').textContent"):
            self.pump(0.05)

    def click(self, selector):
        pos = self.evaluate(
            "(() => { const e = document.querySelector(%s); if (!e) return null;"
            " e.scrollIntoView({block: 'center', inline: 'center'});"
            " const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()"
            % json.dumps(selector))
        if pos is None:
            raise BrowserError("nothing matches %s" % selector)
        x, y = pos
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for t in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": t, "x": x, "y": y, "button": "left", "clickCount": 1})
        self.pump(0.1)
        return self.evaluate("(() => { const e = document.elementFromPoint(%f, %f); const b = e && e.closest('.bar');"
                             " return b ? b.dataset.task + ' attempt ' + b.dataset.attempt : (e ? e.tagName : null); })()"
                             % (x, y))

    def screenshot(self, out):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(out, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        if self.proc:
            try:
                if self.proc.poll() is None:
                    self.deadline = time.monotonic() + 2
                    self.send("Browser.close", session=False)
                    self.proc.wait(timeout=2)
            except Exception:
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


CHECK = """(() => {
  const bars = document.querySelectorAll('.bar'), classes = {};
  for (const b of bars) for (const c of b.classList) if (c !== 'bar') classes[c] = (classes[c] || 0) + 1;
  const d = document.getElementById('detail');
  return {bars: bars.length, classes, rendered_ms: window.batonRendered === undefined ? null : window.batonRendered,
          scripts: document.scripts.length, imgs: document.images.length,
          iframes: document.querySelectorAll('iframe, object, embed').length,
          title: document.title, detail_text: d ? d.textContent : null};
})()"""


def main(argv):
    def stop(signum, frame):
        raise SystemExit("browser.py: signal %d" % signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGALRM, stop)
    signal.alarm(int(TIMEOUT) + 15)  # a last bound, should a wait above ever not be

    if len(argv) < 3 or argv[1] not in ("check", "eval", "screenshot"):
        sys.stderr.write(__doc__)
        return 2
    cmd, page, rest = argv[1], argv[2], argv[3:]
    opts = {}
    for o in ("--click", "--js"):
        if o in rest:
            i = rest.index(o)
            if i + 1 >= len(rest):
                sys.stderr.write(__doc__)
                return 2
            opts[o] = rest[i + 1]
            rest = rest[:i] + rest[i + 2:]
    click = opts.get("--click")
    size = (1400, 900)
    if cmd == "screenshot" and len(rest) >= 3:
        size = (int(rest[1]), int(rest[2]))
    b = Browser(*size)
    try:
        b.open(page)
        clicked = b.click(click) if click else None
        if "--js" in opts:
            b.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": 0, "y": 0})
            b.evaluate(opts["--js"])
        b.pump(0.05)
        if cmd == "check":
            out = b.evaluate(CHECK)
            out["clicked"] = clicked
        elif cmd == "eval":
            out = {"values": [b.evaluate(e) for e in rest]}
        else:
            b.screenshot(rest[0])
            out = {"screenshot": rest[0]}
        out["errors"] = b.errors
        out["dialogs"] = b.dialogs
        print(json.dumps(out, indent=1))
        return 0
    except BrowserError as e:
        sys.stderr.write("browser.py: %s\n" % e)
        return 1
    finally:
        b.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
