"""The 100-container scenario: ``kago up`` of examples/web100.py -- 100 busybox web servers, one
per port 10001-10100, each with its own 100-ID range at port * 100, its own PID namespace, a
30% CPU quota and its own writable layer over the one shared image, all answering HTTP on
127.0.0.1 -- then ``kago down``, leaving nothing behind.

It takes ~10 s here; the timings are printed (pytest -s shows them). bench/mass_start
measures the same with crun/runc loops for comparison and a Debian image as well.
"""

import os
import socket
import time

import pytest

from kago.manager.testing import kmt_fixture, wait_http  # noqa: F401 (fixture)

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "web100.py")
COUNT = 100


def free_range(count):
    """10001.. as in the README's scenario, unless something on this host listens there."""
    for first in (10001, 21001, 31001):
        if all(_free(port) for port in range(first, first + count)):
            return first
    pytest.skip("no free range of 100 ports on 127.0.0.1")


def _free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_one_hundred_web_containers(kmt):
    first = free_range(COUNT)
    ports = range(first, first + COUNT)
    start = time.monotonic()
    up = kmt.kago("up", "-e", f"FIRST={first}", "-e", f"COUNT={COUNT}", EXAMPLE, timeout=120)
    assert up.returncode == 0, up.stderr
    answered = {p: wait_http(p, "/hostname", timeout=10) for p in ports}
    all_answer = time.monotonic() - start
    assert answered == {p: f"web-{p}\n" for p in ports}
    rows = up.stdout.splitlines()
    assert len(rows) == COUNT + 1 and all(" Up " in r for r in rows[1:])

    mgr = kmt.manager()
    records = {r["name"]: r for r in mgr.records.all()}
    pid_namespaces = set()
    uppers = set()
    for port in ports:
        record = records[f"web-{port}"]
        pid = record["state"]["pid"]
        with open(f"/proc/{pid}/status") as f:
            uid = int(next(line for line in f if line.startswith("Uid:")).split()[1])
        assert uid == port * 100 + 33
        pid_namespaces.add(os.readlink(f"/proc/{pid}/ns/pid"))
        with open(f"/sys/fs/cgroup/cpu/kago-{record['id']}/cpu.cfs_quota_us") as f:
            assert f.read().strip() == "30000"
        assert record["uid_map"] == [[0, port * 100, 100]]
        uppers.add(record["rootfs"]["path"])
    assert len(pid_namespaces) == COUNT
    assert os.readlink("/proc/self/ns/pid") not in pid_namespaces
    assert len(uppers) == COUNT
    images = {r["image_id"] for r in records.values()}
    assert len(images) == 1  # one image under all of them

    start = time.monotonic()
    kmt.kago("down", "-t", "1", EXAMPLE, check=True, timeout=120)
    teardown = time.monotonic() - start
    assert mgr.records.all() == []
    assert not any(_answers(p) for p in (first, first + COUNT - 1))
    print(f"\n{COUNT} containers: all answering after {all_answer:.2f} s, "
          f"teardown {teardown:.2f} s")


def _answers(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
