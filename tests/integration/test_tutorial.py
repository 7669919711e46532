"""docs/tutorial.md, replayed by scripts/tutorial as a user runs it: a Debian image made with
mmdebstrap, kago build, run -d -p, cp in and out, kago compose with a Redis server and a
worker, compose down -v. The script checks each step's outcome itself; here its exit status
is checked, and what it may have left on the host is looked for from the names it printed,
not from its own verdict. A Ctrl-C in the middle must leave nothing either.

The Debian tarballs are cached between runs (/var/tmp/kago-tutorial-cache); a first run
downloads them from Debian's mirror (~1 minute each) and skips when the mirror cannot be
reached.
"""

import os
import re
import signal
import subprocess
import time

import pytest
from leftovers import left_on_host

pytestmark = pytest.mark.root

CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(CHECKOUT, "scripts", "tutorial")
SKIPPED = 77


def _tag(text):
    m = re.search(r"root (/var/tmp/kago-tutorial-([0-9a-f]{4}))/root,", text)
    assert m, text
    return m.group(1), m.group(2)


def _left_on_host(top, tag):
    return left_on_host(top, f"kago-tut-{tag}-", f"kt{tag}", f"kago_tut_{tag}")


def test_tutorial_replays_every_step(tmp_path, record_property):
    transcript = tmp_path / "transcript.md"
    started = time.monotonic()
    proc = subprocess.run([SCRIPT, "--transcript", str(transcript)], capture_output=True,
                          text=True, timeout=900, check=False)
    seconds = time.monotonic() - started
    record_property("tutorial_seconds", round(seconds, 1))
    print(f"scripts/tutorial took {seconds:.1f} s")
    if proc.returncode == SKIPPED:
        pytest.skip(proc.stderr.strip())
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    assert "every step checked" in proc.stdout
    for step in ("## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6."):
        assert step in proc.stdout
    top, tag = _tag(proc.stdout)
    assert _left_on_host(top, tag) == []
    text = transcript.read_text()
    assert "$ kago build -t notes:1 ." in text and "$ kago compose down -v" in text


def test_ctrl_c_in_the_middle_leaves_nothing():
    """SIGINT to the script's process group (a Ctrl-C at its terminal) while the app runs."""
    child = subprocess.Popen([SCRIPT, "--until", "4"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
    seen = ""
    try:
        deadline = time.monotonic() + 600
        for line in child.stdout:
            seen += line
            if "ok: the app answers on the published port" in line:
                os.killpg(child.pid, signal.SIGINT)
                break
            assert time.monotonic() < deadline, seen
        seen += child.stdout.read()
        status = child.wait(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    if status == SKIPPED:
        pytest.skip(seen.strip().splitlines()[-1])
    assert status == 130, seen
    assert "interrupted: removing what the tutorial made" in seen
    assert "left on the host: nothing" in seen, seen
    top, tag = _tag(seen)
    assert _left_on_host(top, tag) == []


def test_no_mirror_and_no_cache_makes_nothing_and_says_why(tmp_path):
    """What the replay test skips on: a clear line, status 77, no scratch root made."""
    before = set(os.listdir("/var/tmp"))
    proc = subprocess.run([SCRIPT, "--cache", str(tmp_path)], capture_output=True, text=True,
                          timeout=60, check=False,
                          env=dict(os.environ, KAGO_TUTORIAL_MIRROR="http://127.0.0.1:9/debian"))
    assert proc.returncode == SKIPPED, proc.stdout + proc.stderr
    assert proc.stderr.startswith("scripts/tutorial: skipped: Debian's mirror cannot be "
                                  "reached (http://127.0.0.1:9/debian/dists/bookworm/Release")
    assert not {n for n in set(os.listdir("/var/tmp")) - before
                if n.startswith("kago-tutorial-")}
    assert os.listdir(tmp_path) == []
