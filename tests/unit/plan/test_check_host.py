"""kago.plan.build.check_host: the host checks name the path and the kernel's reason."""

import os

import pytest

from kago.errors import SpecError
from kago.oci.defaults import default_spec
from kago.plan.build import build, check_host


def plan_with_netns(tmp_path, path):
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    cfg = default_spec(args=["sh"])
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"]
                                  if ns["type"] != "network"]
    cfg["linux"]["namespaces"].append({"type": "network", "path": path})
    return build(cfg, str(tmp_path), "c1")


def test_a_namespace_path_that_is_there_passes(tmp_path):
    check_host(plan_with_netns(tmp_path, "/proc/self/ns/net"))


def test_a_missing_namespace_path(tmp_path):
    with pytest.raises(SpecError) as info:
        check_host(plan_with_netns(tmp_path, str(tmp_path / "nosuch")))
    assert info.value.field == "linux.namespaces"
    assert f"network namespace path {tmp_path / 'nosuch'} does not exist" in str(info.value)


def test_a_namespace_path_we_may_not_read_says_so(tmp_path, monkeypatch):
    # /proc/1/ns/net of an init that forbids ptrace access gives root EACCES (a VM's init
    # does): that is not "does not exist"
    real_open = os.open
    denied = str(tmp_path / "denied")

    def fake_open(path, *args, **kwargs):
        if os.fspath(path) == denied:
            raise PermissionError(13, "Permission denied", denied)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    with pytest.raises(SpecError) as info:
        check_host(plan_with_netns(tmp_path, denied))
    assert info.value.field == "linux.namespaces"
    assert f"network namespace: failed to open {denied}: permission denied" in str(info.value)
