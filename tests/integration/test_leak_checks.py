"""The leak checks judge only what this run made.

A container of another kago-oci ``--root`` (a user's, or another run's) has a kago-named cgroup
in every hierarchy, mounts and processes; the per-test check (``find_leaks``) and the session
check (``host_left_as_found``: ``ours`` over ``_kago_cgroup_dirs``) must see past it, and still
report a cgroup of one of the run's own IDs.
"""

import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from conftest import (KAGO_OCI, _kago_cgroup_dirs, find_leaks, ours, pid_alive, run_ids,
                      wait_for)
from test_lifecycle import SLEEPER, detached, ok


@pytest.fixture
def foreign(make_bundle):
    """A running container of another --root, made outside this run's Runner and IDs."""
    root = tempfile.mkdtemp(prefix="kago-foreign-root-")
    cid = f"foreign-{uuid.uuid4().hex[:10]}"
    b = make_bundle(SLEEPER)
    argv = [KAGO_OCI, "--root", root]
    try:
        with tempfile.TemporaryFile() as err:  # a pipe would stay open in the container
            proc = subprocess.run(argv + ["run", "-d", "--bundle", b.path, cid],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=err, timeout=30)
            err.seek(0)
            assert proc.returncode == 0, err.read().decode()
        yield cid
    finally:
        subprocess.run(argv + ["delete", "--force", cid], capture_output=True, timeout=15)
        shutil.rmtree(root, ignore_errors=True)


def test_a_foreign_roots_container_is_not_a_leak(oci, make_bundle, state_root, foreign):
    assert foreign not in run_ids()
    present = _kago_cgroup_dirs()
    theirs = [d for d in present if os.path.basename(d) == f"kago-{foreign}"]
    assert theirs, present  # the check sees the foreign cgroups...
    assert ours(present, run_ids()) == []  # ...and does not count them
    oci.new_id("leak")  # an ID of the run's, never used: nothing of it anywhere
    assert find_leaks(oci.ids, state_root) == []

    # one of the run's own containers, still running: that one is reported
    cid = oci.new_id("leak")
    ok(detached(oci, "run", "-d", "--bundle", make_bundle(SLEEPER).path, cid))
    pid = oci.state(cid)["pid"]
    mine = ours(_kago_cgroup_dirs(), run_ids())
    assert mine and all(os.path.basename(d) == f"kago-{cid}" for d in mine), mine
    assert any(c.startswith("cgroup") for c in find_leaks([cid], state_root))
    ok(oci("delete", "--force", cid))
    assert wait_for(lambda: not pid_alive(pid))
    assert find_leaks(oci.ids, state_root) == []
    assert ours(_kago_cgroup_dirs(), run_ids()) == []  # the foreign one is still there
    assert any(os.path.basename(d) == f"kago-{foreign}" for d in _kago_cgroup_dirs())
