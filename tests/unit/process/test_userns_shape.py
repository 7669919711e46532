"""parent.spawn's shapes: which creates clone the container process straight into a new user
namespace (no intermediate process) and which keep the intermediate."""

import os

import pytest

from kago.host.rootless import in_user_namespace
from kago.oci.defaults import default_spec
from kago.plan import build
from kago.process import parent

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or in_user_namespace(),
                                reason="the shape is host root's")

MAP = [{"containerID": 0, "hostID": 300000, "size": 1000}]


def plan_of(tmp_path, extra_namespaces=(), mounts=None):
    spec = default_spec(args=["true"], terminal=False)
    spec["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
    spec["linux"]["namespaces"] += list(extra_namespaces)
    spec["linux"]["uidMappings"] = spec["linux"]["gidMappings"] = MAP
    if mounts is not None:
        spec["mounts"] = mounts
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    return build.build(spec, str(tmp_path), "shape")


def test_only_new_namespaces_are_cloned_into_directly(tmp_path):
    assert parent.userns_clone_fits(plan_of(tmp_path), exec_mode=False)


def test_exec_and_joins_keep_the_intermediate(tmp_path):
    assert not parent.userns_clone_fits(plan_of(tmp_path), exec_mode=True)
    joined = plan_of(tmp_path, [{"type": "network", "path": "/proc/self/ns/net"}])
    assert not parent.userns_clone_fits(joined, exec_mode=False)
    timens = plan_of(tmp_path, [{"type": "time"}])
    assert not parent.userns_clone_fits(timens, exec_mode=False)


def test_a_bind_source_only_host_root_can_open_keeps_the_intermediate(tmp_path):
    closed = tmp_path / "closed"
    (closed / "data").mkdir(parents=True)
    os.chmod(closed, 0o700)
    plan = plan_of(tmp_path, mounts=[{"destination": "/data", "type": "bind",
                                      "source": str(closed / "data"), "options": ["rbind"]}])
    assert not parent.userns_clone_fits(plan, exec_mode=False)


def test_without_a_user_namespace_it_is_not_this_shape(tmp_path):
    spec = default_spec(args=["true"], terminal=False)
    (tmp_path / "rootfs").mkdir()
    plan = build.build(spec, str(tmp_path), "shape")
    assert not parent.userns_clone_fits(plan, exec_mode=False)
