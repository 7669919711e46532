"""The web console in a real browser, for tests/browser and bench/console_screenshots: a
``kago console`` process on a KagoEnv's root, and Debian's chromium driven by Playwright.

Playwright's Python package drives ``/usr/bin/chromium`` (Debian's), never a browser build of
its own (``playwright install`` is never run). ``missing()`` says in one line why a browser
cannot run here, or None.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

CHROMIUM = "/usr/bin/chromium"
# what works headless as root on a machine without a GPU or a network beyond the loopback
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
KAGO = os.path.join(os.path.dirname(sys.executable), "kago")


def missing():
    """Why the browser tests cannot run here (one line), or None."""
    if not os.access(CHROMIUM, os.X_OK):
        return (f"no {CHROMIUM}: Debian's chromium package is not installed "
                "(./dev setup installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "no playwright Python package (the test extras: pip install -e .[test])"
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ConsoleProcess:
    """``kago console --listen HOST:PORT`` on ``env``'s root (KAGO_ROOT in env.env), for the
    browser tests, the API tests and the console's benches."""

    def __init__(self, env, port=None, timeout=20.0, host="127.0.0.1"):
        self.host, self.port = host, port or free_port()
        self.base = f"http://{host}:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([KAGO, "console", "--listen", f"{host}:{self.port}"],
                                     env=env.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            self._wait(timeout)
            with open(os.path.join(env.root, "console", "token")) as f:
                self.token = f.read().strip()
        except BaseException:
            self.stop()
            raise

    def _wait(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kago console exited {self.proc.returncode}: {self.output()}")
            try:
                with urllib.request.urlopen(self.base + "/api/whoami", timeout=1) as r:
                    json.load(r)
                    return
            except urllib.error.HTTPError:
                return  # it answers (off loopback, even whoami wants the token)
            except (OSError, urllib.error.URLError, ValueError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"kago console did not answer on {self.base} within "
                                       f"{timeout:.0f} s: {self.output()}") from None
                time.sleep(0.1)

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace").strip()[-2000:]

    def stop(self):
        """Ctrl-C it (SIGKILL after 10 s); returns what it printed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.log.closed:
            return ""
        self.log.seek(0)
        out = self.log.read().decode(errors="replace")
        self.log.close()
        return out


@contextlib.contextmanager
def browser(width=1400, height=900):
    """A Playwright persistent context on a fresh profile (removed afterwards)."""
    from playwright.sync_api import sync_playwright
    profile = tempfile.mkdtemp(prefix="kago-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": width, "height": height})
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def login(page, base, token):
    """Log in through the login page, as a person would; back on the container list."""
    page.goto(base + "/login")
    page.fill("#token", token)
    page.click("#submit")
    page.wait_for_url(base + "/")
