"""The kernel calls of the root switch and of joining namespaces, in order, without root
(kago.testing.syscalls.Recorder: the recording fake of kago.kernel.libc and os)."""

import errno

import pytest

from kago.errors import KernelError
from kago.kernel import consts as C
from kago.linux import namespaces, rootfs
from kago.testing.syscalls import Recorder


@pytest.mark.parametrize("given, flags", [
    (0, C.MS_SLAVE | C.MS_REC),                         # runc's default: rslave
    (C.MS_PRIVATE, C.MS_PRIVATE | C.MS_REC),            # a plain one is made recursive
    (C.MS_SHARED | C.MS_REC, C.MS_SHARED | C.MS_REC),
])
def test_isolate_propagation_is_always_recursive(given, flags):
    with Recorder(["mount"]) as sys:
        rootfs.isolate_propagation(given)
    assert sys.calls == [("mount", None, "/", None, flags)]


def _pivot_recorder():
    sys = Recorder(["pivot_root", "mount", "umount2"], os_calls=["open", "fchdir", "close", "chdir"])
    return sys.returns("open", 10, 11)  # the old root, then the new one


def test_pivot_stacks_the_old_root_and_detaches_it_without_propagating():
    with _pivot_recorder() as sys:
        rootfs.pivot("/b/rootfs")
    assert [c for c in sys.calls if c.name != "open"] == [
        ("fchdir", 11), ("pivot_root", ".", "."), ("fchdir", 10),
        ("mount", None, ".", None, C.MS_SLAVE | C.MS_REC), ("umount2", ".", C.MNT_DETACH),
        ("close", 10), ("close", 11), ("chdir", "/")]


def test_a_failed_pivot_closes_both_directories():
    with _pivot_recorder() as sys:
        sys.fail("pivot_root", errno.EINVAL)
        with pytest.raises(KernelError):
            rootfs.pivot("/b/rootfs")
    assert sys.of("close") == [(10,), (11,)]
    assert "umount2" not in sys.names()


def test_bind_rootfs_refused_in_a_user_namespace_names_the_cause(tmp_path):
    rootfs_dir = tmp_path / "rootfs"
    rootfs_dir.mkdir()
    with Recorder(["mount"]) as sys:
        sys.fail("mount", errno.EACCES, when=lambda src, *a: src == str(rootfs_dir))
        with pytest.raises(KernelError, match="searchable by others"):
            rootfs.bind_rootfs(str(rootfs_dir), userns=True)
    assert sys.of("mount")[1] == (str(rootfs_dir), str(rootfs_dir), None, C.MS_BIND | C.MS_REC)
    with Recorder(["mount"]) as sys:
        sys.fail("mount", errno.EACCES, when=lambda src, *a: src == str(rootfs_dir))
        with pytest.raises(KernelError) as e:
            rootfs.bind_rootfs(str(rootfs_dir), userns=False)
    assert "searchable" not in str(e.value)


NET = ("network", C.CLONE_NEWNET, 7, "/run/netns/a")
USER = ("user", C.CLONE_NEWUSER, 8, "/proc/9/ns/user")
IPC = ("ipc", C.CLONE_NEWIPC, 6, "/proc/9/ns/ipc")


def test_join_enters_the_others_before_the_user_namespace():
    with Recorder(["setns"]) as sys:
        namespaces.join([USER, NET, IPC])
    assert [a[1] for a in sys.of("setns")] == [C.CLONE_NEWNET, C.CLONE_NEWIPC, C.CLONE_NEWUSER]


def test_join_retries_after_the_user_namespace_what_needed_its_capabilities():
    with Recorder(["setns"]) as sys:
        sys.fail("setns", errno.EPERM, when=lambda fd, flag, **k: flag == C.CLONE_NEWIPC, times=1)
        namespaces.join([USER, NET, IPC])
    assert [a[1] for a in sys.of("setns")] == [
        C.CLONE_NEWNET, C.CLONE_NEWIPC, C.CLONE_NEWUSER, C.CLONE_NEWIPC]


@pytest.mark.parametrize("opened, err", [([NET], errno.EPERM), ([USER, NET], errno.EINVAL)])
def test_join_fails_when_no_user_namespace_can_help(opened, err):
    with Recorder(["setns"]) as sys:
        sys.fail("setns", err, when=lambda fd, flag, **k: flag == C.CLONE_NEWNET)
        with pytest.raises(KernelError) as e:
            namespaces.join(opened)
    assert e.value.errno == err
    assert C.CLONE_NEWUSER not in [a[1] for a in sys.of("setns")]


def test_for_children_enters_a_pid_namespace_by_path_and_goes_home():
    sys = Recorder(["setns", "unshare"], os_calls=["open", "close"])
    with sys:
        sys.returns("open", 5)
        fc = namespaces.ForChildren()
        fc.enter([("pid", C.CLONE_NEWPID, "/proc/9/ns/pid"), ("network", C.CLONE_NEWNET, None)], {})
        fc.restore()
    assert sys.names() == ["open", "open", "setns", "close", "setns", "close"]
    assert sys.of("open")[0][0] == "/proc/self/ns/pid_for_children"
    assert "unshare" not in sys.names()


def test_for_children_unshares_a_new_pid_namespace():
    with Recorder(["setns", "unshare"], os_calls=["open", "close"]) as sys:
        sys.returns("open", 5)
        namespaces.ForChildren().enter([("pid", C.CLONE_NEWPID, None)], {})
    assert sys.of("unshare") == [(C.CLONE_NEWPID,)]
