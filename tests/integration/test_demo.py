"""``kago demo`` (README's first command): ten web containers from the bundled definition file
on a scratch manager root, one page fetched over HTTP, ``kago stats`` with the pressure column,
``kago down`` -- and nothing of it left on the host, also when it is interrupted by Ctrl-C.

The demo runs as a user runs it (the ``kago`` script, its output read back); the checks of what
is left are made here from the names the demo printed, not from the demo's own verdict.
"""

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

import pytest
from leftovers import left_on_host

KAGO = os.path.join(os.path.dirname(sys.executable), "kago")
PORTS = range(8081, 8091)
PSI = re.compile(r"\d+\.\d+/\d+\.\d+/\d+\.\d+$")


@pytest.fixture(autouse=True)
def ports_free():
    busy = [p for p in PORTS if not _free(p)]
    if busy:
        pytest.skip(f"ports in use on 127.0.0.1: {busy}")


def _free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _scratch(text):
    """(root, tag) from the demo's first lines."""
    m = re.search(r"KAGO_ROOT=(/\S+/kago-demo-([0-9a-f]{4}))\s", text)
    assert m, text
    return m.group(1), m.group(2)


def _left_on_host(root, tag):
    return left_on_host(root, f"kago-demo-{tag}-", f"kd{tag}", f"kago_demo_{tag}")


def test_demo_shows_ten_web_containers_and_leaves_nothing():
    started = time.monotonic()
    proc = subprocess.run([KAGO, "demo"], capture_output=True, text=True, timeout=120,
                          check=False)
    seconds = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    root, tag = _scratch(out)
    # kago up's table: the ten, running, ready, each published on its own port
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^(web-80\d\d)\s+([0-9a-f]{12})\s+Up.*$",
                                                        out, re.M)}
    assert sorted(rows) == [f"web-{p}" for p in PORTS], out
    for p in PORTS:
        assert f"127.0.0.1:{p}->8080/tcp" in rows[f"web-{p}"]
    # one of them answered over HTTP, with the page its definition wrote
    assert re.search(r"^web-8083: busybox httpd at 10\.231\.\d+\.\d+:8080, published on "
                     r"127\.0\.0\.1:8083, worker uid 33 = host uid 808333$", out, re.M), out
    # kago stats: a row per container with the pressure (PSI) column filled
    stats = out.split("$ kago stats", 1)[1].split("$ kago down", 1)[0]
    assert "PRESSURE (CPU/MEM/IO)" in stats
    psi_rows = [ln for ln in stats.splitlines() if re.match(r"[0-9a-f]{12}\s+web-80\d\d\s", ln)]
    assert len(psi_rows) == 10 and all(PSI.search(ln) for ln in psi_rows), stats
    ids = [m.group(2) for m in re.finditer(r"^(web-80\d\d)\s+([0-9a-f]{12})\s", out, re.M)]
    # down, and nothing left: the demo says so, and the host agrees
    assert "removed 10 container(s)" in out
    assert "left on the host: nothing" in out
    assert _left_on_host(root, tag) == []
    assert not [c for c in _cgroups_prefixed(ids)], ids
    assert all(_free(p) for p in PORTS)
    print(f"kago demo: {seconds:.1f} s")


def _cgroups_prefixed(short_ids):
    """kago-<full id> cgroups whose id starts with one of ``short_ids``."""
    found = []
    for h in os.listdir("/sys/fs/cgroup"):
        path = f"/sys/fs/cgroup/{h}"
        if not os.path.isdir(path):
            continue
        found += [f"{h}/{n}" for n in os.listdir(path)
                  if n.startswith("kago-") and n[5:17] in short_ids]
    return found


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_demo_interrupted_during_up_leaves_nothing(how):
    """Ctrl-C at the terminal (SIGINT to the whole process group, ``kago up`` included) or
    SIGTERM to the demo alone, while ``kago up`` runs."""
    demo = subprocess.Popen([KAGO, "demo"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    head = b""
    deadline = time.monotonic() + 60
    try:
        while b"$ kago up" not in head and time.monotonic() < deadline:
            if select.select([demo.stdout], [], [], 1)[0]:
                chunk = os.read(demo.stdout.fileno(), 4096)
                if not chunk:
                    break
                head += chunk
        assert b"$ kago up" in head, head
        time.sleep(0.5)  # some containers made, not all ready
        if how == "ctrl-c":
            os.killpg(demo.pid, signal.SIGINT)
        else:
            os.kill(demo.pid, signal.SIGTERM)
        rest, _ = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    out = head.decode() + rest.decode()
    root, tag = _scratch(out)
    assert demo.returncode == 130, out
    assert "interrupted: removing what the demo made" in out
    assert "left on the host: nothing" in out, out
    assert _left_on_host(root, tag) == []
    assert all(_free(p) for p in PORTS)
