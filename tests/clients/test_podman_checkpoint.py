"""podman 4.3 ``container checkpoint`` / ``container restore`` with kago-oci as its runtime.

podman runs ``kago-oci checkpoint --image-path ... --work-path ...`` itself, and conmon runs
``kago-oci restore --detach --pid-file ... --image-path ... --work-path ... --bundle ...``
with its own stdio pipes; podman asks CRIU (on its PATH: the checkout's .build/criu first)
for its version. The private store and the leak checks are test_podman.py's fixtures.
"""

import os

import pytest

from conftest import wait_for
from test_podman import name, pod, podman  # noqa: F401 - the fixtures

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRIU_DIR = os.path.join(REPO, ".build", "criu", "sbin")

pytestmark = pytest.mark.skipif(not os.access(os.path.join(CRIU_DIR, "criu"), os.X_OK),
                                reason="CRIU is not built (.build/criu): ./dev setup builds it")

COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done"


@pytest.fixture
def criu_podman(podman):  # noqa: F811 - test_podman's fixture, with CRIU on its PATH
    before = podman.env.get("PATH")
    podman.env["PATH"] = CRIU_DIR + ":" + (before or "/usr/sbin:/usr/bin:/sbin:/bin")
    yield podman
    podman.env["PATH"] = before


def count(podman, n):  # noqa: F811
    proc = podman("exec", n, "cat", "/tmp/count")
    return int(proc.stdout) if proc.returncode == 0 and proc.stdout.strip().isdigit() else None


def counter(p):
    """A podman container counting in memory (to /tmp/count); its name."""
    n = name()
    p.run("-d", "--", "sh", "-c", COUNTER, name=n, check=True)
    return n


def test_podman_checkpoint_and_restore(criu_podman):
    p = criu_podman
    n = counter(p)
    try:
        assert wait_for(lambda: (count(p, n) or 0) > 3, 5)
        done = p("container", "checkpoint", n)
        assert done.returncode == 0, done.stderr
        assert p("inspect", "--format", "{{.State.Status}}", n).stdout.strip() == "exited"
        restored = p("container", "restore", n)
        assert restored.returncode == 0, restored.stderr
        assert p("inspect", "--format", "{{.State.Status}}", n).stdout.strip() == "running"
        first = count(p, n)
        assert first is not None and first > 3  # the counter is in memory: it went on
        assert wait_for(lambda: (count(p, n) or 0) > first, 5)
        assert p("stop", "-t", "0", n).returncode == 0
    finally:
        p("rm", "-f", "-t", "0", n)


def test_podman_checkpoint_leave_running(criu_podman):
    p = criu_podman
    n = counter(p)
    try:
        assert wait_for(lambda: (count(p, n) or 0) > 2, 5)
        done = p("container", "checkpoint", "--leave-running", n)
        assert done.returncode == 0, done.stderr
        assert p("inspect", "--format", "{{.State.Status}}", n).stdout.strip() == "running"
        now = count(p, n)
        assert wait_for(lambda: (count(p, n) or 0) > now, 5)
    finally:
        p("rm", "-f", "-t", "0", n)


def test_podman_export_and_import(criu_podman, tmp_path):
    """A checkpoint exported to a tar file, the container removed, restored from the tar: the
    migration path (podman re-creates the container, conmon runs kago-oci restore)."""
    p = criu_podman
    n = counter(p)
    tar = tmp_path / "checkpoint.tar.gz"
    try:
        assert wait_for(lambda: (count(p, n) or 0) > 3, 5)
        done = p("container", "checkpoint", "--export", tar, n)
        assert done.returncode == 0, done.stderr
        assert p("rm", n).returncode == 0
        restored = p("container", "restore", "--import", tar)
        assert restored.returncode == 0, restored.stderr
        assert p("inspect", "--format", "{{.State.Status}}", n).stdout.strip() == "running"
        first = count(p, n)
        assert first is not None and first > 3
        assert wait_for(lambda: (count(p, n) or 0) > first, 5)
    finally:
        p("rm", "-f", "-t", "0", n)
