"""containerd 1.6's checkpoint and restore (``ctr containers checkpoint --task`` /
``ctr containers restore --live``) through the runc.v2 shim, with kago-oci as its runc.

The shim runs ``kago-oci checkpoint --image-path ... --work-path ...`` and ``kago-oci restore
--detach --pid-file ... --bundle ...`` and finds CRIU on its PATH: this module's private
containerd is started with the checkout's .build/criu/sbin first on PATH.
"""

import json
import os

import pytest

from conftest import wait_for
from test_containerd import new_id, private_daemon, pytestmark as containerd_marks

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRIU_DIR = os.path.join(REPO, ".build", "criu", "sbin")

pytestmark = containerd_marks + [
    pytest.mark.skipif(not os.access(os.path.join(CRIU_DIR, "criu"), os.X_OK),
                       reason="CRIU is not built (.build/criu): ./dev setup builds it")]

FIFO_DEFAULT = "/run/containerd/fifo"
COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; mv /tmp/n /tmp/count; sleep 0.1; done"


@pytest.fixture(scope="module")
def daemon():
    path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    os.environ["PATH"] = CRIU_DIR + ":" + path  # the daemon's, hence its shims'
    try:
        yield from private_daemon()
    finally:
        os.environ["PATH"] = path


@pytest.fixture
def cctr(daemon):
    """ctr's restore takes no --fifo-dir: it makes /run/containerd/fifo, removed after the
    test if it was not there (before the daemon's own leak check)."""
    had = {d: os.path.isdir(d) for d in (FIFO_DEFAULT, os.path.dirname(FIFO_DEFAULT))}
    yield daemon
    for d, was in had.items():  # the fifo dir first, then its parent
        if not was and os.path.isdir(d) and not os.listdir(d):
            os.rmdir(d)


def count(ctr, cid, exec_id):
    proc = ctr.exec(cid, exec_id, "cat", "/tmp/count")
    text = proc.stdout.strip()
    return int(text) if proc.returncode == 0 and text.isdigit() else None


def test_containerd_checkpoint_and_restore(cctr):
    ctr = cctr
    cid = new_id()
    ref = f"localhost/kago-checkpoint:{cid}"
    assert ctr.run(cid, "sh", "-c", COUNTER, flags=["-d"]).returncode == 0
    try:
        assert wait_for(lambda: (count(ctr, cid, "e0") or 0) > 3, timeout=10)
        done = ctr("containers", "checkpoint", "--task", cid, ref)
        assert done.returncode == 0, done.stderr
        at_dump = count(ctr, cid, "e1")
        ctr.remove(cid)
        back = ctr("containers", "restore", "--live", cid, ref)
        assert back.returncode == 0, back.stderr + ctr.daemon.log()[-2000:]
        assert wait_for(lambda: ctr.task_status(cid) == "RUNNING", timeout=10), \
            ctr("tasks", "ls").stdout
        # kago-oci restored it: the shim's state for the task is kago-oci's record
        with open(os.path.join(ctr.daemon.runc_root, ctr.ns, cid, "state.json")) as f:
            record = json.load(f)
        assert "kago" in record and record["kago"].get("restored_from"), record.get("kago")
        resumed = count(ctr, cid, "e2")
        assert resumed is not None and resumed >= at_dump - 20  # from memory, not from 1
        assert wait_for(lambda: (count(ctr, cid, "e3") or 0) > resumed, timeout=10)
    finally:
        ctr.remove(cid)
        ctr("images", "rm", ref)
    # containerd's checkpoint directory went to the daemon's own TMPDIR, not the host's /tmp
    assert any(n.startswith("ctrd-checkpoint") for n in os.listdir(ctr.daemon.tmp_dir))
