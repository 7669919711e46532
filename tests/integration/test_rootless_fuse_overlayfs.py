"""The rootless manager's storage on fuse-overlayfs: the fallback for kernels that refuse
overlayfs in a user namespace (before 5.11), forced here through the storage setting
(``kago.json`` ``{"storage": {"driver": "fuse-overlayfs"}}``) because this kernel allows it.

A throwaway user imports busybox and runs a container whose root is a fuse-overlayfs mount in
its holder; the container writes a file, deletes one of the image (a whiteout) and replaces a
directory (opaque); ``diff`` and ``commit`` see exactly that; ``rm`` unmounts it and leaves no
fuse-overlayfs process and no mount in the holder. An ID-mapped container is re-owned through
it (chown) with a diff of its own changes only; a killed holder's daemon is stopped with its
container.
"""

import json
import os
import shutil
import time

import pytest

from conftest import IS_ROOT
from test_rootless_manager import Kago, _cmdline, _gone, _owned_by_root
from test_rootless_manager import user  # noqa: F401 (a fixture: this module's own user)

pytestmark = [pytest.mark.skipif(not IS_ROOT, reason="creates a throwaway user: needs root"),
              pytest.mark.skipif(not os.path.exists("/usr/bin/newuidmap"),
                                 reason="uidmap (newuidmap/newgidmap) is not installed"),
              pytest.mark.skipif(not shutil.which("fuse-overlayfs"),
                                 reason="fuse-overlayfs is not installed"),
              pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")]


@pytest.fixture(scope="module")
def kago(user):
    k = Kago(user)
    settings = json.dumps({"storage": {"driver": "fuse-overlayfs"}})
    proc = user.run(["sh", "-c", f"mkdir -p {k.root} && printf '%s' '{settings}' > "
                     f"{k.root}/kago.json"], timeout=10)
    assert proc.returncode == 0, proc.stderr
    k.ok("import", "busybox.tar", "busybox")
    return k


def _fuse_pids(user):
    return [p for p in user.pids()
            if os.path.basename(_cmdline(p).split(" ")[0]) == "fuse-overlayfs"]


def _holder_mounts(kago):
    """(mount point, type) in the holder's mount namespace; none once the holder is gone."""
    holder = kago.holder_pid()
    try:
        with open(f"/proc/{holder}/mountinfo") as f:
            return [(line.split()[4], line.split(" - ")[1].split()[0]) for line in f]
    except (OSError, TypeError):
        return []


def test_a_container_on_fuse_overlayfs_writes_deletes_commits_and_rm_unmounts(kago, user):
    try:
        kago.ok("run", "-d", "--name", "f", "--network", "none", "busybox", "sleep", "100")
        cid = kago.ok("inspect", "-f", "{{.Id}}", "f").strip()
        # (and the runtime's bind of it onto itself)
        kinds = {t for p, t in _holder_mounts(kago) if p.endswith(f"/containers/{cid}/rootfs")}
        assert kinds == {"fuse.fuse-overlayfs"}
        assert len(_fuse_pids(user)) == 1
        assert "Storage Driver: overlay (mounted by fuse-overlayfs)\n" in kago.ok("info")
        with open(os.path.join(kago.root, "storage", "overlay-mount")) as f:
            assert f.read() == "fuse-overlayfs\n"  # the store keeps it
        kago.ok("exec", "f", "sh", "-c", "echo made > /made && rm /bin/true"
                " && rm -rf /home && mkdir /home && echo n > /home/new")
        assert kago.ok("exec", "f", "sh", "-c", "ls -A /home; test -e /bin/true || echo gone"
                       ).split() == ["new", "gone"]
        changes = kago.ok("diff", "f").split("\n")
        assert "A /made" in changes and "D /bin/true" in changes and "C /home" in changes
        assert "A /home/new" in changes
        # fuse-overlayfs's marker files of an opaque directory are no change
        assert not [c for c in changes if ".wh." in c]
        assert not [c for c in changes if c.startswith("C /bin/") or c == "D /home/user"]
        kago.ok("commit", "f", "snap")
        out = kago.ok("run", "--rm", "--network", "none", "snap", "sh", "-c",
                      "cat /made; test -e /bin/true || echo gone; ls -A /home")
        assert out.split() == ["made", "gone", "new"]
        kago.ok("rm", "-f", "f")
        assert [p for p, _t in _holder_mounts(kago) if cid in p] == []
        deadline = time.monotonic() + 10  # the daemon exits once its mount is gone
        while _fuse_pids(user) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _fuse_pids(user) == []
        kago.ok("rmi", "snap")
    finally:
        for c in kago.ok("ps", "-a", "-q").split():
            kago("rm", "-f", c)
    _gone(user)
    left = [p for top in (user.home, user.runtime_dir) for p in _owned_by_root(top)]
    assert not left, f"root-owned files in the user's directories: {left[:5]}"


def test_an_id_mapped_container_on_fuse_overlayfs_is_reowned_and_its_diff_its_own(kago,
                                                                                  user):
    try:
        kago.ok("run", "-d", "--name", "u", "--network", "none", "--userns=auto:size=2000",
                "busybox", "sleep", "100")
        assert kago.ok("exec", "u", "cat", "/proc/self/uid_map").split() == ["0", "1", "2000"]
        assert kago.ok("exec", "u", "stat", "-c", "%u:%g", "/bin/sh", "/home/user").split() \
            == ["0:0", "1000:1000"]  # the image's owners, as the container sees them
        kago.ok("exec", "u", "sh", "-c", "echo made > /made && chown 33:44 /made")
        changes = kago.ok("diff", "u").split("\n")
        assert "A /made" in changes
        # the chown shift's whole copy-ups (through fuse-overlayfs) are no change
        assert not [c for c in changes if c.startswith("C /bin/")]
        kago.ok("rm", "-f", "u")
    finally:
        for c in kago.ok("ps", "-a", "-q").split():
            kago("rm", "-f", c)
    _gone(user)
    assert _fuse_pids(user) == []



def test_a_killed_holders_daemon_is_stopped_with_its_container(kago, user):
    """A holder killed with a container's root mounted: its fuse-overlayfs daemon keeps the
    dead holder's mount namespace alive; the container's stop in the new holder stops it, its
    start mounts the same upper again (one daemon), and rm leaves none."""
    try:
        kago.ok("run", "-d", "--name", "k", "--network", "none", "busybox", "sh", "-c",
                "echo kept > /kept; exec sleep 100")
        old = _fuse_pids(user)
        assert len(old) == 1
        os.kill(kago.holder_pid(), 9)
        kago.ok("stop", "-t", "1", "k")  # in a new holder, where the root is not mounted
        assert _fuse_pids(user) == []
        kago.ok("start", "k")  # mounted again
        assert kago.ok("exec", "k", "cat", "/kept").strip() == "kept"
        new = _fuse_pids(user)
        assert len(new) == 1 and new != old
        kago.ok("rm", "-f", "k")
        assert _fuse_pids(user) == []
    finally:
        for c in kago.ok("ps", "-a", "-q").split():
            kago("rm", "-f", c)
    _gone(user)
