"""blockIO weights on a v1 blkio hierarchy with neither CFQ nor BFQ: only blkio.throttle.*.

Block devices on mq-deadline or none (virtio disks, NVMe) give the blkio controller no weight
file at all. runc 1.1.5 probes blkio.weight, falls back to blkio.bfq.weight and fails the create
on its ENOENT; kago refuses it too, before any write, with one line naming the field and both
files. Throttles still work there. A fake cgroupfs in tmp_path stands in for that host.
"""

import pytest

from kago.errors import SpecError
from kago.linux.cgroups import V1Manager
from kago.linux.cgroups.resources import plan_writes

THROTTLE_ONLY = ["blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device",
                 "blkio.throttle.read_iops_device", "blkio.throttle.write_iops_device"]
NEITHER = "has neither blkio.weight nor blkio.bfq.weight (no CFQ or BFQ I/O scheduler)"


def _manager(tmp_path, blkio_files):
    dirs = {}
    for controller, files in (("blkio", blkio_files), ("pids", ["pids.max"])):
        d = tmp_path / controller / "c1"
        d.mkdir(parents=True)
        for name in files:
            (d / name).write_text("")
        dirs[controller] = str(d)
    return V1Manager("/c1", dirs)


def _read(m, controller, name):
    with open(f"{m.path_in(controller)}/{name}") as f:
        return f.read()


def _plan(resources, files):
    return [tuple(w) for w in plan_writes(resources, "v1", {"v1": {"blkio"}, "files": files})]


@pytest.mark.parametrize("files, expected", [
    ({"blkio.weight"}, "blkio.weight"),
    ({"blkio.bfq.weight"}, "blkio.bfq.weight"),
    ({"blkio.weight", "blkio.bfq.weight"}, "blkio.weight"),  # runc: plain first when both
])
def test_the_weight_file_is_the_one_the_host_has(files, expected):
    blkio = {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 400}]}
    assert _plan({"blockIO": blkio}, files) == [
        ("blkio", expected, "300"), ("blkio", expected + "_device", "8:0 400")]


@pytest.mark.parametrize("blkio, field", [
    ({"weight": 300}, "linux.resources.blockIO.weight"),
    ({"weightDevice": [{"major": 8, "minor": 0, "weight": 400}]},
     "linux.resources.blockIO.weightDevice[0].weight"),
])
def test_a_weight_without_cfq_or_bfq_is_refused_naming_the_field(blkio, field):
    with pytest.raises(SpecError) as info:
        _plan({"blockIO": blkio}, set())
    assert info.value.field == field
    assert NEITHER in str(info.value) and "\n" not in str(info.value)


def test_io_weight_in_unified_is_refused_the_same_way():
    with pytest.raises(SpecError) as info:
        _plan({"unified": {"io.weight": "100"}}, set())
    assert info.value.field == "linux.resources.unified.io.weight"
    assert NEITHER in str(info.value)


def test_throttles_and_no_weight_need_no_weight_file():
    blkio = {"weight": 0, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1024}]}
    assert _plan({"blockIO": blkio}, set()) == [
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1024")]


def test_fake_throttle_only_tree_refuses_a_weight_before_any_write(tmp_path):
    m = _manager(tmp_path, THROTTLE_ONLY)
    assert not {"blkio.weight", "blkio.bfq.weight"} & set(m.available()["files"])
    with pytest.raises(SpecError) as info:
        m.apply({"pids": {"limit": 7}, "blockIO": {"weight": 300}})
    assert info.value.field == "linux.resources.blockIO.weight"
    assert NEITHER in str(info.value)
    assert _read(m, "pids", "pids.max") == ""  # nothing written: the plan failed first


def test_fake_throttle_only_tree_takes_throttles(tmp_path):
    m = _manager(tmp_path, THROTTLE_ONLY)
    m.apply({"blockIO": {"throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}]}})
    assert _read(m, "blkio", "blkio.throttle.write_iops_device") == "254:0 100"


@pytest.mark.parametrize("present", ["blkio.weight", "blkio.bfq.weight"])
def test_fake_tree_with_a_scheduler_gets_its_weight(tmp_path, present):
    m = _manager(tmp_path, THROTTLE_ONLY + [present])
    m.apply({"blockIO": {"weight": 300}})
    assert _read(m, "blkio", present) == "300"
