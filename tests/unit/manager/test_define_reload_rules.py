"""``kago reload``'s decisions on Definitions (pure): which changes it applies to a running
container (limits, rlimits) and which need a new one."""

from kago.manager.define import hooks as H
from kago.manager.define.reload import _keep_live_fields, _needs_restart, _with_resets
from kago.manager.definition import Definition, Limits, Mount, Rlimit, from_json, to_json
from kago.manager.spec import resources

OLD = Definition(image="busybox", name="web", limits=Limits(memory=64 << 20, pids=10),
                 mounts=(Mount("tmpfs", "/t", "tmpfs"),))


def test_limits_alone_need_no_restart():
    new = OLD.but(limits=Limits(memory=32 << 20), rlimits=(Rlimit("nofile", 10, 20),))
    assert _needs_restart(OLD, new) == []


def test_what_needs_a_new_container_is_named():
    new = OLD.but(image="alpine", env=("A=1",), mounts=())
    assert _needs_restart(OLD, new) == ["image", "env", "mounts"]


def test_the_mount_up_adds_for_root_switch_hooks_is_not_a_change():
    _hooks, extra = H.oci_hooks("/run/kago/hooks/web", ["after_root_switch"])
    assert _needs_restart(OLD.but(mounts=OLD.mounts + extra), OLD) == []


def test_the_record_keeps_the_applied_limits_and_the_rest():
    record = {"definition": to_json(OLD)}
    new = OLD.but(image="alpine", limits=Limits(cpus=0.5), rlimits=(Rlimit("nproc", 5, 5),))
    _keep_live_fields(record, new)
    assert from_json(record["definition"]) == OLD.but(limits=new.limits, rlimits=new.rlimits)


def test_a_limit_no_longer_set_goes_back_to_no_limit():
    old, new = resources(OLD), resources(OLD.but(limits=Limits(memory=64 << 20)))
    assert _with_resets(old, new) == {"memory": {"limit": 64 << 20}, "pids": {"limit": -1}}
