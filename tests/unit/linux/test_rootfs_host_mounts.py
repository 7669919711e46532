"""Without a mount namespace the container's mounts are the host's: which ones delete takes
away (every mount under the rootfs not there before create, deepest first), recorded."""

import errno

import pytest

from kago.errors import KernelError
from kago.kernel import consts as C
from kago.linux import rootfs

MOUNTINFO = """\
22 1 0:21 / /sys rw shared:7 - sysfs sysfs rw
60 1 0:50 / /b/rootfs rw - overlay overlay rw
61 60 0:51 / /b/rootfs/proc rw - proc proc rw
62 60 0:52 / /b/rootfs/dev rw - tmpfs tmpfs rw
63 62 0:53 / /b/rootfs/dev/pts rw - devpts devpts rw
64 1 0:54 / /b/rootfs2 rw - tmpfs tmpfs rw
65 60 0:55 / /b/rootfs/with\\040space rw - tmpfs tmpfs rw
"""


@pytest.fixture
def info(tmp_path):
    path = tmp_path / "mountinfo"
    path.write_text(MOUNTINFO)
    return str(path)


def test_mounts_under_a_path_not_its_neighbours(info, monkeypatch):
    monkeypatch.setattr(rootfs.os.path, "realpath", lambda p: p)
    assert rootfs.mounts_under("/b/rootfs", info) == [
        (60, "/b/rootfs"), (61, "/b/rootfs/proc"), (62, "/b/rootfs/dev"),
        (63, "/b/rootfs/dev/pts"), (65, "/b/rootfs/with space")]


def test_unmount_new_takes_what_was_not_there_deepest_first(info, monkeypatch):
    monkeypatch.setattr(rootfs.os.path, "realpath", lambda p: p)
    calls = []
    monkeypatch.setattr(rootfs.libc, "umount2", lambda t, f=0: calls.append((t, f)))
    done = rootfs.unmount_new("/b/rootfs", before=[60], mountinfo=info)
    assert calls == [(p, C.MNT_DETACH) for p in ("/b/rootfs/with space", "/b/rootfs/dev/pts",
                                                  "/b/rootfs/dev", "/b/rootfs/proc")]
    assert done == [p for p, _f in calls]  # the rootfs mount itself (podman's) is kept


def test_a_mount_gone_already_is_fine_other_errors_are_not(info, monkeypatch):
    monkeypatch.setattr(rootfs.os.path, "realpath", lambda p: p)

    def gone(target, flags=0):
        raise KernelError("umount", errno.EINVAL, target)
    monkeypatch.setattr(rootfs.libc, "umount2", gone)
    assert len(rootfs.unmount_new("/b/rootfs", [60], info)) == 4

    def busy(target, flags=0):
        raise KernelError("umount", errno.EPERM, target)
    monkeypatch.setattr(rootfs.libc, "umount2", busy)
    with pytest.raises(KernelError):
        rootfs.unmount_new("/b/rootfs", [60], info)
