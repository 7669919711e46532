"""prepare_root / switch_root with and without a mount namespace of the container's own:
without one, nothing of the host's mount table is changed and the root switch is a chroot."""

import pytest

from kago.process import steps


class _Plan:
    def __init__(self, namespaces, no_pivot=False):
        self.namespaces = namespaces
        self.rootfs = "/b/rootfs"
        self.rootfs_propagation = 0
        self.userns = False
        self.no_pivot = no_pivot
        self.root_readonly = True

    def has_ns(self, kind):
        return any(k == kind for k, _f, _p in self.namespaces)


class _Ctx:
    def __init__(self, plan):
        self.plan = plan
        self.rootfd = None


@pytest.fixture
def calls(monkeypatch):
    seen = []
    for name in ("isolate_propagation", "bind_rootfs", "open_root", "pivot", "move_root",
                 "chroot_into", "apply_root_propagation", "make_root_readonly"):
        monkeypatch.setattr(steps.rootfs, name,
                            lambda *a, name=name: seen.append(name) or 99)
    monkeypatch.setattr(steps.os, "close", lambda fd: None)
    return seen


@pytest.mark.parametrize("no_pivot", [False, True])
def test_without_a_mount_namespace(calls, no_pivot):
    ctx = _Ctx(_Plan([("pid", 0, None)], no_pivot))
    steps.prepare_root(ctx)
    steps.switch_root(ctx)
    assert calls == ["open_root", "chroot_into"]


@pytest.mark.parametrize("ns", [("mount", 0, None), ("mount", 0, "/proc/1/ns/mnt")])
def test_with_one(calls, ns):
    ctx = _Ctx(_Plan([ns]))
    steps.prepare_root(ctx)
    steps.switch_root(ctx)
    assert calls == ["isolate_propagation", "bind_rootfs", "pivot", "apply_root_propagation",
                     "make_root_readonly"]
