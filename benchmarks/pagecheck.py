"""Open a page in headless Chromium at given window widths and check that it fits and logs no error.

    python -m benchmarks.pagecheck PAGE.html [--width 1280 --width 800] [--screenshot OUT.png]

It speaks the DevTools protocol over a pipe (`--remote-debugging-pipe`: the browser reads commands
on fd 3 and writes answers and events on fd 4, each a JSON message ended by a NUL byte), so it needs
nothing but Debian's `chromium`. At each width it loads the page and measures, in the page itself:

- the page's scroll width against the window (a page wider than the window is cut off);
- every element's box: none may reach past the window's right or left edge;
- every box that clips (`overflow` hidden or clip): its content must fit it. A box that scrolls
  (auto or scroll) may hold more than it shows: that is reached, not cut off, and is only counted;
- every image: loaded, and drawn at its own aspect ratio (so an image scaled down is not squashed).

Console errors, uncaught exceptions and the browser's own error log entries (a failed load, say)
are problems too. With --screenshot, the page at the last width is saved as a PNG, whole height.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser")
INSTALL_HINT = "apt-get install -y --no-install-recommends chromium"
WINDOW_HEIGHT = 900
TIMEOUT_S = 60.0

# Runs in the page after its load event; returns what the checks need, nothing judged here.
MEASURE_JS = r"""
(() => {
  const doc = document.documentElement;
  const width = doc.clientWidth;  // the window less a vertical scroll bar
  const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.getAttribute('alt') ? `[alt="${el.getAttribute('alt')}"]` : '') +
    (el.tagName === 'IMG' ? '' : ` "${(el.textContent || '').trim().slice(0, 40)}"`);
  const out = {innerWidth: window.innerWidth, clientWidth: width, scrollWidth: doc.scrollWidth,
               outside: [], clipped: [], scrolling: [], images: []};
  const scrolls = el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
  const inScrollBox = el => { for (let p = el.parentElement; p && p !== document.body; p = p.parentElement)
                                if (scrolls(p)) return true;
                              return false; };
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 && box.height === 0) continue;
    // Inside a box that scrolls, content past the window is reached by scrolling that box.
    if ((box.right > width + 0.5 || box.left < -0.5) && !inScrollBox(el))
      out.outside.push({el: name(el), left: box.left, right: box.right});
    const overflow = getComputedStyle(el).overflowX;
    if (el.scrollWidth > el.clientWidth + 1 && ['hidden', 'clip'].includes(overflow))
      out.clipped.push({el: name(el), scrollWidth: el.scrollWidth, clientWidth: el.clientWidth});
    if (el.scrollWidth > el.clientWidth + 1 && scrolls(el))
      out.scrolling.push({el: name(el), scrollWidth: el.scrollWidth, clientWidth: el.clientWidth});
  }
  for (const img of document.images) {
    const box = img.getBoundingClientRect();
    out.images.push({el: name(img), complete: img.complete, naturalWidth: img.naturalWidth,
                     naturalHeight: img.naturalHeight, width: box.width, height: box.height});
  }
  return out;
})()
"""


class PageCheckError(RuntimeError):
    """The browser could not be started, answered with an error, or did not answer in time."""


def find_chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


@dataclass
class WidthCheck:
    width: int
    measured: dict[str, Any]
    console_errors: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        m, out = self.measured, []
        if m["scrollWidth"] > m["clientWidth"]:
            out.append(f"the page is {m['scrollWidth']} px wide in a {m['clientWidth']} px window")
        out += [f"{o['el']} spans {o['left']:.0f}..{o['right']:.0f} px, past the window (0..{m['clientWidth']})"
                for o in m["outside"]]
        out += [f"{c['el']} hides content: {c['scrollWidth']} px in a {c['clientWidth']} px box" for c in m["clipped"]]
        for img in m["images"]:
            if not img["complete"] or not img["naturalWidth"]:
                out.append(f"{img['el']} did not load")
            elif img["width"] and abs(img["height"] / img["width"]
                                      - img["naturalHeight"] / img["naturalWidth"]) > 0.02:
                out.append(f"{img['el']} is drawn {img['width']:.0f}x{img['height']:.0f}, not at its aspect "
                           f"{img['naturalWidth']}x{img['naturalHeight']}")
        return out + [f"console: {e}" for e in self.console_errors]


class _Browser:
    """Headless Chromium driven over --remote-debugging-pipe; every wait is bounded by TIMEOUT_S."""

    def __init__(self, binary: str, timeout_s: float = TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.profile = tempfile.TemporaryDirectory(prefix="k8sf-chromium-")
        args = [binary, "--headless", "--remote-debugging-pipe", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-dev-shm-usage",
                f"--user-data-dir={self.profile.name}", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        # The shell puts our stdin pipe on fd 3 and our stdout pipe on fd 4, where the browser
        # expects them, and gives the browser's own stdin and stdout /dev/null.
        self.proc = subprocess.Popen(
            ["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null', *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.next_id = 0
        self.buffer = b""
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise PageCheckError(f"chromium did not answer within {self.timeout_s:.0f} s")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace")[-2000:] if self.proc.stderr else ""
                raise PageCheckError(f"chromium exited (code {self.proc.poll()}): {err.strip()}")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.proc.stdin.write(json.dumps(message).encode() + b"\0")
        self.proc.stdin.flush()
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise PageCheckError(f"{method}: {reply['error'].get('message', reply['error'])}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_for(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        for i, ev in enumerate(self.events):
            if ev.get("method") == method and ev.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            ev = self._read_message(deadline)
            if ev.get("method") == method and ev.get("sessionId") == session:
                return ev
            self.events.append(ev)

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.send("Browser.close")
                self.proc.wait(timeout=10)
        except (PageCheckError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                if stream:
                    stream.close()
            self.profile.cleanup()


def _console_errors(events: list[dict[str, Any]], session: str) -> list[str]:
    errors = []
    for ev in events:
        if ev.get("sessionId") != session:
            continue
        params = ev.get("params", {})
        if ev.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
        elif ev.get("method") == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif ev.get("method") == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('source')}: {entry.get('text')}" + (f" ({entry['url']})" if entry.get("url")
                                                                            else ""))
    return errors


def check_page(page: Path, widths: Sequence[int], screenshot: Path | None = None, binary: str | None = None,
               timeout_s: float = TIMEOUT_S) -> list[WidthCheck]:
    """Load the page at each width in a fresh tab; the screenshot is of the last width, whole page."""
    binary = binary or find_chromium()
    if binary is None:
        raise PageCheckError(f"chromium is not installed: {INSTALL_HINT}")
    if not page.is_file():
        raise PageCheckError(f"{page}: no such page")
    for w in widths:
        if not 200 <= w <= 4000:
            raise PageCheckError(f"window width {w}: allowed is 200 to 4000 px")
    browser = _Browser(binary, timeout_s)
    checks = []
    try:
        for n, width in enumerate(widths):
            target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                browser.send(f"{domain}.enable", session=session)
            browser.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": WINDOW_HEIGHT,
                                                                "deviceScaleFactor": 1, "mobile": False},
                         session=session)
            browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
            browser.wait_for("Page.loadEventFired", session)
            measured = browser.send("Runtime.evaluate", {"expression": MEASURE_JS, "returnByValue": True,
                                                         "awaitPromise": True}, session=session)
            if "exceptionDetails" in measured:
                raise PageCheckError(f"the measuring script failed: {measured['exceptionDetails'].get('text')}")
            # Events that arrived with the answers above belong to this tab.
            checks.append(WidthCheck(width, measured["result"]["value"], _console_errors(browser.events, session)))
            if screenshot is not None and n == len(widths) - 1:
                size = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
                shot = browser.send("Page.captureScreenshot", {
                    "format": "png", "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}}, session=session)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            browser.send("Target.closeTarget", {"targetId": target})
            browser.events.clear()
    finally:
        browser.close()
    return checks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pagecheck", description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--width", type=int, action="append", help="window width in px (repeat; default 1280, 800)")
    parser.add_argument("--screenshot", type=Path, help="save the page at the last width here (PNG)")
    args = parser.parse_args(argv)
    try:
        checks = check_page(args.page, args.width or [1280, 800], args.screenshot)
    except PageCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bad = 0
    for c in checks:
        m = c.measured
        print(f"{c.width} px: page {m['scrollWidth']} px wide in {m['clientWidth']}, {len(m['images'])} images, "
              f"{len(m['scrolling'])} box(es) scrolling sideways, {len(c.problems)} problem(s)")
        for p in c.problems:
            print(f"  {p}")
        bad += bool(c.problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
