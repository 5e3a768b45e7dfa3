"""Drive headless Chromium over the DevTools protocol on a pipe (`--remote-debugging-pipe`).

No websocket client is needed: Chromium reads NUL-terminated JSON messages on fd 3 and
writes them on fd 4. Used by the HTML report test and by `bench/report_bench.py` to load a
page, collect script errors, console errors and network requests, measure elements and take
a screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--mute-audio", "--hide-scrollbars"]


def _lift(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageResult:
    """What loading one page produced."""

    errors: list[str] = field(default_factory=list)  # exceptions, console errors, log errors
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    value: Any = None  # result of the evaluated expression
    screenshot: bytes = b""
    load_seconds: float = 0.0  # navigate -> load event, wall clock
    painted_seconds: float = 0.0  # navigate -> a screenshot of the laid-out page is taken


class Chromium:
    """One headless Chromium process, used as a context manager."""

    def __init__(self, width: int = 1100, height: int = 1400, timeout: float = 60.0) -> None:
        binary = chromium_path()
        if binary is None:
            raise RuntimeError("chromium is not installed")
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="chaosrunner-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # Move the child's ends above 4, so wiring them to 3 and 4 cannot clobber either.
        to_child_r, from_child_w = _lift(to_child_r), _lift(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

        def wire_pipes() -> None:  # runs in the child: Chromium expects fds 3 and 4
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self._process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self._profile.name}",
             f"--window-size={width},{height}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipes, close_fds=True, pass_fds=(3, 4))
        os.close(to_child_r)
        os.close(from_child_w)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            if self._process.poll() is None:
                self._send("Browser.close", {})
                self._process.wait(timeout=10)
        except (OSError, RuntimeError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait(timeout=10)
        finally:
            for fd in (self._to_child, self._from_child):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._profile.cleanup()

    def _send(self, method: str, params: dict[str, Any], session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError("timed out waiting for Chromium")
            ready, _, _ = select.select([self._from_child], [], [], remaining)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(raw))

    def call(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        """Send a command and wait for its answer; events that arrive meanwhile are kept."""
        wanted = self._send(method, params or {}, session)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._events.append(message)

    def wait_event(self, method: str, session: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        for index, event in enumerate(self._events):
            if event.get("method") == method and event.get("sessionId") == session:
                return self._events.pop(index)
        while True:
            message = self._read_message(deadline)
            if message.get("method") == method and message.get("sessionId") == session:
                return message
            self._events.append(message)

    def load(self, path: Path, expression: str = "null",
             screenshot_of: str | None = None) -> PageResult:
        """Open `path` in a fresh tab, wait for load, evaluate `expression`, and take a
        screenshot of the element matching the CSS selector `screenshot_of` (default: the
        viewport)."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", {}, session)
        self._events.clear()
        started = time.monotonic()
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session)
        self.wait_event("Page.loadEventFired", session)
        result = PageResult(load_seconds=time.monotonic() - started)
        evaluated = self.call("Runtime.evaluate", {"expression": expression,
                                                   "returnByValue": True}, session)
        if "exceptionDetails" in evaluated:
            result.errors.append(f"probe expression failed: {evaluated['exceptionDetails']}")
        result.value = evaluated.get("result", {}).get("value")
        shot = self.call("Page.captureScreenshot",
                         self._screenshot_params(screenshot_of, session), session)
        result.painted_seconds = time.monotonic() - started
        result.screenshot = base64.b64decode(shot["data"])
        self._collect(result, session)
        self.call("Target.closeTarget", {"targetId": target})
        return result

    def _screenshot_params(self, selector: str | None, session: str) -> dict[str, Any]:
        params: dict[str, Any] = {"format": "png"}
        if selector is None:
            return params
        expression = (f"(() => {{const r = document.querySelector({json.dumps(selector)})"
                      ".getBoundingClientRect(); return {x: r.x + scrollX, y: r.y + scrollY, "
                      "width: r.width, height: r.height, scale: 1};})()")
        rect = self.call("Runtime.evaluate", {"expression": expression,
                                              "returnByValue": True}, session)
        params["clip"] = rect["result"]["value"]
        params["captureBeyondViewport"] = True
        return params

    def _collect(self, result: PageResult, session: str) -> None:
        for event in self._events:
            if event.get("sessionId") != session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                result.errors.append(str(params.get("exceptionDetails")))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                result.errors.append(str(params.get("args")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                result.errors.append(str(params["entry"].get("text")))
            elif method == "Network.requestWillBeSent":
                result.requests.append(str(params.get("request", {}).get("url")))
        self._events.clear()


def run_chromium_cli(args: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Chromium as a one-shot command (`--dump-dom`, `--screenshot`) with a fresh profile."""
    binary = chromium_path()
    if binary is None:
        raise RuntimeError("chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="chaosrunner-chromium-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout, check=False)
