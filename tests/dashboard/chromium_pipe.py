"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe: commands on
the child's fd 3, answers and events on its fd 4, each a JSON text ended by a NUL byte), with nothing
but the standard library. One page; evaluate() runs JavaScript in it and returns the value."""
import base64
import json
import os
import select
import signal
import subprocess
import tempfile
import time

CHROMIUM = os.environ.get("HPSEARCH_CHROMIUM", "/usr/bin/chromium")


class Chromium:
    def __init__(self, log_path, window="1280,1600"):
        self._profile = tempfile.TemporaryDirectory(prefix="hpsearch-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
             "--user-data-dir=" + self._profile.name, "--window-size=" + window, "--remote-debugging-pipe",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=wire,
            pass_fds=(3, 4), start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.session = None
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Runtime.enable")
        self.call("Page.enable")

    def call(self, method, params=None, timeout=60):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                text, self._buffer = self._buffer.split(b"\0", 1)
                answer = json.loads(text)
                if answer.get("id") == self._next_id:
                    if "error" in answer:
                        raise RuntimeError(f"{method}: {answer['error']}")
                    return answer.get("result", {})
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{method}: no answer from Chromium in {timeout} s")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"{method}: Chromium closed its pipe (exit {self.process.poll()})")
                self._buffer += chunk

    def navigate(self, url):
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression, what, timeout=120):
        """Polls `expression` until it is truthy (generous cap: a loaded 2-core machine is slow)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(f"!!({expression})")
            except RuntimeError as e:  # the page is between documents
                last = str(e)
            if last is True:
                return
            time.sleep(0.2)
        try:  # what the page itself said last (the dashboard's status line)
            said = self.evaluate("(document.querySelector('#status') || {}).textContent")
        except RuntimeError as e:
            said = str(e)
        raise AssertionError(f"waited {timeout} s for {what}; last value {last!r}; the page says {said!r}")

    def screenshot(self, path, clip_selector=None):
        params = {"format": "png"}
        if clip_selector:
            box = self.evaluate("(() => { const r = document.querySelector(" + json.dumps(clip_selector) +
                                ").getBoundingClientRect(); return [r.x + scrollX, r.y + scrollY, r.width, r.height]; })()")
            params["clip"] = {"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1}
            params["captureBeyondViewport"] = True
        with open(path, "wb") as out:
            out.write(base64.b64decode(self.call("Page.captureScreenshot", params)["data"]))

    def close(self):
        try:
            if self.process.poll() is None:
                try:
                    self.session = None
                    self.call("Browser.close", timeout=10)
                except Exception:
                    pass
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # its renderers and helpers too
            except ProcessLookupError:
                pass
            self.process.wait()
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._log.close()
            self._profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
