"""A small client of headless Chromium over the DevTools protocol (one browser, one tab, reused),
enough to open a local HTML file, evaluate JavaScript in it and take a screenshot."""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    """The browser binary: $CHROMIUM if set (None when it is not there), else the first of the usual
    names on PATH."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


class Browser:
    """Headless Chromium with one page, driven through its DevTools websocket."""

    def __init__(self, binary: str, width_px: int = 1400, height_px: int = 650, timeout_s: float = 30.0):
        import websocket  # websocket-client, a dev dependency

        self.timeout_s = timeout_s
        self._profile = tempfile.mkdtemp(prefix="lattts-chromium-")
        self._log = Path(self._profile) / "stderr.log"  # a file, not a pipe: chromium never blocks on it
        with open(self._log, "w") as log:
            self._proc = subprocess.Popen(
                [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 "--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0",
                 "--remote-allow-origins=*", f"--user-data-dir={self._profile}", "about:blank"],
                stdout=subprocess.DEVNULL, stderr=log)
        self._ws = None
        try:
            port = self._devtools_port()
            page = next(t for t in self._targets(port) if t["type"] == "page")
            self._ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout_s,
                                                   suppress_origin=True)
            self._ids = itertools.count(1)
            self.call("Emulation.setDeviceMetricsOverride", width=width_px, height=height_px, deviceScaleFactor=1,
                      mobile=False)
        except BaseException:
            self.close()
            raise

    def _devtools_port(self) -> int:
        """The port chromium writes to its log once its DevTools server listens."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            text = self._log.read_text(errors="replace")
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", text)
            if match:
                return int(match.group(1))
            if self._proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = " | ".join(self._log.read_text(errors="replace").strip().splitlines()[-3:])
        raise RuntimeError(f"chromium did not start its DevTools server: {tail}")

    @staticmethod
    def _targets(port: int) -> list[dict]:
        import urllib.request

        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
        with direct.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:
            return json.load(resp)

    def call(self, method: str, **params):
        """Send one DevTools command and return its result (events that arrive meanwhile are dropped)."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited), as JSON."""
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"javascript error: {res['exceptionDetails'].get('exception', {}).get('description')}")
        return res["result"].get("value")

    def open(self, path: Path, ready_js: str) -> None:
        """Load a local file and wait until ``ready_js`` is true in it."""
        self.call("Page.navigate", url=Path(path).resolve().as_uri())
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            try:
                if self.evaluate(f"document.readyState === 'complete' && !!({ready_js})"):
                    return
            except RuntimeError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{path}: not ready within {self.timeout_s:.0f} s")

    def screenshot(self, out: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        out.write_bytes(base64.b64decode(data))
        return out

    def close(self) -> None:
        if self._ws is not None:
            self._ws.close()
            self._ws = None
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._profile, ignore_errors=True)
