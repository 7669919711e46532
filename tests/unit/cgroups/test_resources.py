"""plan_writes(): every linux.resources field on v1, v2 and hybrid, both translation directions.

Pure tables: no cgroupfs. The v2 controller writes can only be tested this way on the hybrid
development host (its cgroup2 tree has no controller enabled); tests/integration/
test_cgroups_limits.py checks the v1 writes and the cgroup2 core files on the real kernel.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kago.errors import CgroupError, SpecError
from kago.linux.cgroups.resources import (blkio_to_io_weight, controllers_needed, device_rule,
                                          io_to_blkio_weight, parse_size, plan_writes,
                                          resources_from_flags, shares_to_weight, swap_from_v2,
                                          swap_to_v2, weight_to_shares)

V1_ALL = {"cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "hugetlb",
          "net_cls", "net_prio", "rdma"}
V2_ALL = {"cpu", "cpuset", "memory", "pids", "io", "hugetlb", "rdma", "misc"}
V1_FILES = {"memory.memsw.limit_in_bytes", "blkio.weight"}
V1 = {"v1": V1_ALL, "files": V1_FILES}
V2 = {"unified": V2_ALL, "files": {"memory.swap.max"}}
# this development host: no hugetlb/net_cls/net_prio/rdma in v1, BFQ not CFQ, empty cgroup2
HYBRID = {"v1": {"cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer"},
          "unified": set(), "files": {"memory.memsw.limit_in_bytes", "blkio.bfq.weight"}}


def v1(resources, current=None, available=V1):
    return [tuple(w) for w in plan_writes(resources, "v1", available, current)]


def v2(resources, available=V2):
    return [tuple(w) for w in plan_writes(resources, "v2", available)]


def hybrid(resources, available=HYBRID):
    return [tuple(w) for w in plan_writes(resources, "hybrid", available)]


def error(fn, resources, *args):
    with pytest.raises(SpecError) as info:
        fn(resources, *args)
    return info.value


# --- conversions ------------------------------------------------------------------------------

# runc >= 1.3.2 (github.com/opencontainers/cgroups ConvertCPUSharesToCgroupV2Value) and crun
# >= 1.23: the default shares (1024) are the default weight (100); runc 1.1's linear formula
# gave 39. Values outside [2, 262144] clamp.
@pytest.mark.parametrize("shares, weight", [
    (1, 1), (2, 1), (3, 2), (10, 4), (256, 35), (512, 59), (1024, 100), (2048, 174),
    (4096, 303), (100000, 4340), (262143, 10000), (262144, 10000), (1 << 40, 10000)])
def test_shares_to_weight_is_current_runcs_curve(shares, weight):
    assert shares_to_weight(shares) == weight


@pytest.mark.parametrize("weight, shares", [(1, 2), (100, 1024), (10000, 262144)])
def test_weight_to_shares_inverts_it(weight, shares):
    assert weight_to_shares(weight) == shares


@given(st.integers(2, 262144))
def test_shares_round_trip_stays_in_range_and_close(shares):
    weight = shares_to_weight(shares)
    assert 1 <= weight <= 10000
    back = weight_to_shares(weight)
    assert 2 <= back <= 262144
    assert shares_to_weight(back) in (weight - 1, weight, weight + 1)


@given(st.integers(1, 10000))
def test_weight_round_trip_is_exact_where_shares_are_finer(weight):
    assert abs(shares_to_weight(weight_to_shares(weight)) - weight) <= 1


@pytest.mark.parametrize("blkio, io", [(10, 1), (500, 4950), (1000, 10000)])
def test_blkio_to_io_weight_is_runcs_formula(blkio, io):
    assert blkio_to_io_weight(blkio) == io


@given(st.integers(10, 1000))
def test_blkio_weight_round_trip_is_close(weight):
    assert abs(io_to_blkio_weight(blkio_to_io_weight(weight)) - weight) <= 1


@pytest.mark.parametrize("swap, limit, out", [
    (0, 0, None), (0, 100, None), (-1, 100, "max"), (0, -1, "max"), (300, 100, "200"),
    (100, 100, "0"), (-1, -1, "max"),
    (300, -1, "300")])  # runc: with unlimited memory the swap is taken as it is
def test_swap_to_v2_is_swap_minus_limit(swap, limit, out):
    assert swap_to_v2(swap, limit) == out


def test_swap_from_v2_adds_the_limit_back():
    assert swap_from_v2(200, 100) == 300
    assert swap_from_v2("max", 100) == -1


# --- cpu --------------------------------------------------------------------------------------

CPU_TABLE = [
    # (cpu section, v1 writes, v2 writes)
    ({"shares": 1024}, [("cpu", "cpu.shares", "1024")], [("unified", "cpu.weight", "100")]),
    ({"shares": 512}, [("cpu", "cpu.shares", "512")], [("unified", "cpu.weight", "59")]),
    ({"quota": 50000}, [("cpu", "cpu.cfs_quota_us", "50000")],
     [("unified", "cpu.max", "50000")]),
    ({"quota": -1}, [("cpu", "cpu.cfs_quota_us", "-1")], [("unified", "cpu.max", "max")]),
    ({"period": 50000}, [("cpu", "cpu.cfs_period_us", "50000")],
     [("unified", "cpu.max", "max 50000")]),
    ({"quota": 20000, "period": 100000},
     [("cpu", "cpu.cfs_period_us", "100000"), ("cpu", "cpu.cfs_quota_us", "20000"),
      ("cpu", "cpu.cfs_period_us", "100000")],
     [("unified", "cpu.max", "20000 100000")]),
    ({"quota": 20000, "burst": 5000},
     [("cpu", "cpu.cfs_burst_us", "5000"), ("cpu", "cpu.cfs_quota_us", "20000"),
      ("cpu", "cpu.cfs_burst_us", "5000")],
     [("unified", "cpu.max.burst", "5000"), ("unified", "cpu.max", "20000"),
      ("unified", "cpu.max.burst", "5000")]),
    ({"idle": 1}, [("cpu", "cpu.idle", "1")], [("unified", "cpu.idle", "1")]),
    ({"cpus": "0-3,5", "mems": "0"},
     [("cpuset", "cpuset.cpus", "0-3,5"), ("cpuset", "cpuset.mems", "0")],
     [("unified", "cpuset.cpus", "0-3,5"), ("unified", "cpuset.mems", "0")]),
    ({"cpus": "", "mems": "", "shares": 0, "quota": 0, "period": 0}, [], []),
]


@pytest.mark.parametrize("cpu, want_v1, want_v2", CPU_TABLE)
def test_cpu(cpu, want_v1, want_v2):
    assert v1({"cpu": cpu}) == want_v1
    assert v2({"cpu": cpu}) == want_v2


@pytest.mark.parametrize("idle, first", [(0, "idle"), (1, "shares")])
def test_idle_and_weight_order_follows_the_kernel(idle, first):
    # the kernel refuses cpu.shares/cpu.weight while cpu.idle is 1
    writes = plan_writes({"cpu": {"idle": idle, "shares": 512}}, "v1", V1)
    assert writes[0].field == f"linux.resources.cpu.{first}"
    assert [w.field for w in plan_writes({"cpu": {"idle": idle, "shares": 512}}, "v2", V2)] \
        == [w.field for w in writes]


def test_realtime_is_period_then_runtime_on_v1():
    assert v1({"cpu": {"realtimeRuntime": 950000, "realtimePeriod": 1000000}}) == [
        ("cpu", "cpu.rt_period_us", "1000000"), ("cpu", "cpu.rt_runtime_us", "950000")]


def test_realtime_on_v2_names_the_field():
    e = error(v2, {"cpu": {"realtimeRuntime": 1000}})
    assert e.field == "linux.resources.cpu.realtimeRuntime"
    assert "no real-time group scheduling" in str(e)


def test_cpuset_comes_before_everything_else():
    writes = v1({"pids": {"limit": 5}, "memory": {"limit": 1 << 20}, "cpu": {"cpus": "1"}})
    assert writes[0] == ("cpuset", "cpuset.cpus", "1")


@pytest.mark.parametrize("shares, weight", [(1, "1"), (262145, "10000"), ((1 << 64) - 1, "10000")])
def test_shares_outside_the_v1_range_clamp_on_v2(shares, weight):
    """v1: the kernel would clamp and runc then fails on the read-back, so the range is
    checked; v2: current runc and crun clamp the weight."""
    assert v2({"cpu": {"shares": shares}}) == [("unified", "cpu.weight", weight)]
    assert error(v1, {"cpu": {"shares": shares}}).field == "linux.resources.cpu.shares"


@pytest.mark.parametrize("cpu, field", [
    ({"shares": "1024"}, "shares"), ({"shares": -1}, "shares"),
    ({"quota": -2}, "quota"), ({"period": -1}, "period"), ({"idle": 2}, "idle"),
    ({"cpus": "0;reboot"}, "cpus"), ({"cpus": 3}, "cpus"), ({"mems": "0\n1"}, "mems"),
    ({"quota": True}, "quota"), ({"quota": 1.5}, "quota"), ({"burst": -1}, "burst"),
    ({"realtimePeriod": "x"}, "realtimePeriod")])
def test_bad_cpu_values_name_the_field(cpu, field):
    for fn in (v1, v2):
        assert error(fn, {"cpu": cpu}).field == f"linux.resources.cpu.{field}"


# --- memory -----------------------------------------------------------------------------------

M = 1 << 20


def test_memory_limit_and_swap_fresh_cgroup_limit_first():
    assert v1({"memory": {"limit": 32 * M, "swap": 64 * M}}) == [
        ("memory", "memory.limit_in_bytes", str(32 * M)),
        ("memory", "memory.memsw.limit_in_bytes", str(64 * M))]


@pytest.mark.parametrize("current, first", [
    (16 * M, "memory.memsw.limit_in_bytes"),   # raising above the current limit: memsw first
    (128 * M, "memory.limit_in_bytes"),        # lowering: the limit first
    (64 * M, "memory.limit_in_bytes")])
def test_memory_and_swap_order_follows_the_current_limit(current, first):
    writes = v1({"memory": {"limit": 32 * M, "swap": 64 * M}},
                current={"memory.limit_in_bytes": current})
    assert writes[0][1] == first
    assert len(writes) == 2


def test_unlimited_memory_makes_swap_unlimited_first():
    assert v1({"memory": {"limit": -1}}) == [
        ("memory", "memory.memsw.limit_in_bytes", "-1"),
        ("memory", "memory.limit_in_bytes", "-1")]
    assert v1({"memory": {"limit": -1}}, available={"v1": V1_ALL, "files": ()}) == [
        ("memory", "memory.limit_in_bytes", "-1")]  # no swap accounting: no memsw file


def test_memory_v2():
    assert v2({"memory": {"limit": 32 * M, "swap": 64 * M, "reservation": 16 * M}}) == [
        ("unified", "memory.swap.max", str(32 * M)), ("unified", "memory.max", str(32 * M)),
        ("unified", "memory.low", str(16 * M))]
    assert v2({"memory": {"limit": -1}}) == [("unified", "memory.swap.max", "max"),
                                              ("unified", "memory.max", "max")]
    assert v2({"memory": {"limit": 32 * M, "swap": 32 * M}})[0] == (
        "unified", "memory.swap.max", "0")
    # no swap accounting: "max" and "0" are what it is anyway (runc ignores them there)
    assert v2({"memory": {"limit": -1}}, available={"unified": V2_ALL, "files": ()}) == [
        ("unified", "memory.max", "max")]


@pytest.mark.parametrize("memory, v1_writes", [
    ({"reservation": 16 * M}, [("memory", "memory.soft_limit_in_bytes", str(16 * M))]),
    ({"swappiness": 0}, [("memory", "memory.swappiness", "0")]),
    ({"swappiness": -1}, []),
    ({"disableOOMKiller": True}, [("memory", "memory.oom_control", "1")]),
    ({"disableOOMKiller": False}, []),
    ({"useHierarchy": True}, [("memory", "memory.use_hierarchy", "1")]),
    ({"useHierarchy": False}, [("memory", "memory.use_hierarchy", "0")]),
    ({"kernel": 0}, []), ({"checkBeforeUpdate": True}, [])])
def test_memory_v1_fields(memory, v1_writes):
    assert v1({"memory": memory}) == v1_writes


@pytest.mark.parametrize("memory, field, words", [
    ({"swappiness": 10}, "swappiness", "no equivalent"),
    ({"disableOOMKiller": True}, "disableOOMKiller", "no equivalent"),
    ({"useHierarchy": False}, "useHierarchy", "always hierarchical"),
    ({"swap": 64 * M}, "swap", "without a memory limit")])
def test_memory_fields_v2_cannot_do_name_the_field(memory, field, words):
    e = error(v2, {"memory": memory})
    assert e.field == f"linux.resources.memory.{field}"
    assert words in str(e)


def test_memory_v2_silently_fine_values():
    assert v2({"memory": {"useHierarchy": True, "disableOOMKiller": False,
                          "swappiness": -1}}) == []


@pytest.mark.parametrize("memory, field", [
    ({"limit": -2}, "limit"), ({"limit": "1g"}, "limit"), ({"swap": 10, "limit": 20}, "swap"),
    ({"swappiness": 101}, "swappiness"), ({"disableOOMKiller": 1}, "disableOOMKiller"),
    ({"reservation": 1 << 63}, "reservation"), ({"kernel": "4096"}, "kernel"),
    ({"kernelTCP": -2}, "kernelTCP")])
def test_bad_memory_values_name_the_field(memory, field):
    assert error(v1, {"memory": memory}).field == f"linux.resources.memory.{field}"


@pytest.mark.parametrize("plan", [v1, v2, hybrid])
def test_kernel_memory_is_ignored_on_every_layout(plan):
    """As runc and crun: cgroup v2 has no kernel memory limit and v1's is deprecated, so
    memory.kernel is never written (the runtime warns); the rest still is."""
    for memory in ({"kernel": 8 * M}, {"kernel": -1, "kernelTCP": 0}):
        assert plan({"memory": memory}) == []
        writes = plan({"memory": dict(memory, limit=64 * M)})
        assert [w[1] for w in writes if "kmem" in w[1]] == []
        assert any(w[1] in ("memory.limit_in_bytes", "memory.max") for w in writes)


TCP = "memory.kmem.tcp.limit_in_bytes"


def test_kernel_tcp_is_written_where_v1_has_the_file():
    """crun's behaviour (runc 1.1 drops it): the kernel still enforces it on v1."""
    with_tcp = {"v1": V1_ALL, "files": V1_FILES | {TCP}}
    assert v1({"memory": {"kernelTCP": 8 * M}}, available=with_tcp) == \
        [("memory", TCP, str(8 * M))]
    assert v1({"memory": {"kernelTCP": -1}}, available=with_tcp) == [("memory", TCP, "-1")]
    assert v1({"memory": {"kernelTCP": 8 * M}}) == []  # a kernel without TCP accounting
    hybrid_tcp = dict(HYBRID, files=HYBRID["files"] | {TCP})
    assert hybrid({"memory": {"kernelTCP": 8 * M}}, available=hybrid_tcp) == \
        [("memory", TCP, str(8 * M))]
    assert v2({"memory": {"kernelTCP": 8 * M}}) == []


# --- pids -------------------------------------------------------------------------------------

@pytest.mark.parametrize("limit, value", [(100, "100"), (0, "max"), (-1, "max")])
def test_pids(limit, value):
    assert v1({"pids": {"limit": limit}}) == [("pids", "pids.max", value)]
    assert v2({"pids": {"limit": limit}}) == [("unified", "pids.max", value)]


# --- block I/O --------------------------------------------------------------------------------

THROTTLE = {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
            "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2000}],
            "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 30}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 0}]}


def test_blkio_throttles():
    assert v1({"blockIO": THROTTLE}) == [
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1000"),
        ("blkio", "blkio.throttle.write_bps_device", "8:0 2000"),
        ("blkio", "blkio.throttle.read_iops_device", "8:16 30"),
        ("blkio", "blkio.throttle.write_iops_device", "8:16 0")]
    assert v2({"blockIO": THROTTLE}) == [
        ("unified", "io.max", "8:0 rbps=1000"), ("unified", "io.max", "8:0 wbps=2000"),
        ("unified", "io.max", "8:16 riops=30"), ("unified", "io.max", "8:16 wiops=max")]


def test_blkio_weights_cfq_bfq_and_v2():
    blkio = {"weight": 500, "leafWeight": 300,
             "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 200}]}
    assert v1({"blockIO": blkio}) == [
        ("blkio", "blkio.weight", "500"), ("blkio", "blkio.leaf_weight", "300"),
        ("blkio", "blkio.weight_device", "8:0 600"),
        ("blkio", "blkio.leaf_weight_device", "8:0 200")]
    del blkio["leafWeight"], blkio["weightDevice"][0]["leafWeight"]
    assert hybrid({"blockIO": blkio}) == [  # BFQ: same values, bfq names
        ("blkio", "blkio.bfq.weight", "500"), ("blkio", "blkio.bfq.weight_device", "8:0 600")]
    assert v2({"blockIO": blkio}) == [
        ("unified", "io.weight", "4950"), ("unified", "io.weight", "8:0 5960")]
    assert v2({"blockIO": blkio}, available={"unified": V2_ALL, "files": {"io.bfq.weight"}}) \
        == [("unified", "io.bfq.weight", "500"), ("unified", "io.bfq.weight", "8:0 600")]


def test_blkio_leaf_weight_on_v2_names_the_field():
    assert error(v2, {"blockIO": {"leafWeight": 100}}).field == \
        "linux.resources.blockIO.leafWeight"
    e = error(v2, {"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "leafWeight": 10}]}})
    assert e.field == "linux.resources.blockIO.weightDevice[0].leafWeight"


@pytest.mark.parametrize("blkio, field", [
    ({"weight": 5}, "weight"), ({"weight": 1001}, "weight"),
    ({"throttleReadBpsDevice": [{"major": 8, "rate": 1}]}, "throttleReadBpsDevice[0].minor"),
    ({"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": -1}]},
     "throttleReadBpsDevice[0].rate"),
    ({"throttleReadBpsDevice": {"major": 8}}, "throttleReadBpsDevice"),
    ({"weightDevice": ["8:0 100"]}, "weightDevice[0]")])
def test_bad_blkio_values_name_the_field(blkio, field):
    assert error(v1, {"blockIO": blkio}).field == f"linux.resources.blockIO.{field}"


# --- hugetlb, network, rdma -------------------------------------------------------------------

def test_memory_v2_swap_under_unlimited_memory_is_taken_as_it_is():
    """runc's ConvertMemorySwapToCgroupV2Value: no memory limit to subtract."""
    assert v2({"memory": {"limit": -1, "swap": 64 * M}}) == [
        ("unified", "memory.swap.max", str(64 * M)), ("unified", "memory.max", "max")]
    e = error(v2, {"memory": {"swap": 64 * M}})  # no memory limit at all: runc's error too
    assert (e.field, "without a memory limit" in str(e)) == ("linux.resources.memory.swap", True)


def test_hugepage_reservation_limits_where_the_kernel_has_them():
    """runc writes hugetlb.<size>.rsvd.max (.rsvd.limit_in_bytes on v1), same value, where it
    exists (Linux 5.7)."""
    pages = [{"pageSize": "2MB", "limit": 1 << 30}, {"pageSize": "1GB", "limit": 0}]
    v2_files = {"unified": V2_ALL, "files": {"hugetlb.2MB.rsvd.max", "hugetlb.1GB.rsvd.max"}}
    assert v2({"hugepageLimits": pages}, v2_files) == [
        ("unified", "hugetlb.2MB.max", str(1 << 30)),
        ("unified", "hugetlb.2MB.rsvd.max", str(1 << 30)),
        ("unified", "hugetlb.1GB.max", "0"), ("unified", "hugetlb.1GB.rsvd.max", "0")]
    v1_files = {"v1": V1_ALL, "files": {"hugetlb.2MB.rsvd.limit_in_bytes"}}
    assert v1({"hugepageLimits": pages[:1]}, available=v1_files) == [
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", str(1 << 30)),
        ("hugetlb", "hugetlb.2MB.rsvd.limit_in_bytes", str(1 << 30))]


def test_hugepage_limits():
    pages = [{"pageSize": "2MB", "limit": 1 << 30}, {"pageSize": "1GB", "limit": 0}]
    assert v1({"hugepageLimits": pages}) == [
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", str(1 << 30)),
        ("hugetlb", "hugetlb.1GB.limit_in_bytes", "0")]
    assert v2({"hugepageLimits": pages}) == [("unified", "hugetlb.2MB.max", str(1 << 30)),
                                             ("unified", "hugetlb.1GB.max", "0")]


def test_hugepages_on_this_hybrid_host_are_an_error():
    e = error(hybrid, {"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]})
    assert str(e) == ("linux.resources.hugepageLimits[0].limit: the hugetlb controller is not "
                      "available on this host")


def test_hybrid_uses_the_cgroup2_tree_for_a_controller_only_it_has():
    available = dict(HYBRID, unified={"hugetlb"})
    assert hybrid({"hugepageLimits": [{"pageSize": "2MB", "limit": 4096}]}, available) == [
        ("unified", "hugetlb.2MB.max", "4096")]


@pytest.mark.parametrize("size", ["2M", "MB", "2mb", "two MB", "2MB/..", 2, "\u00b2MB"])
def test_bad_page_size_names_the_field(size):
    e = error(v1, {"hugepageLimits": [{"pageSize": size, "limit": 1}]})
    assert e.field == "linux.resources.hugepageLimits[0].pageSize"


def test_network():
    net = {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500},
                                              {"name": "lo", "priority": 1}]}
    assert v1({"network": net}) == [("net_cls", "net_cls.classid", "1048577"),
                                    ("net_prio", "net_prio.ifpriomap", "eth0 500"),
                                    ("net_prio", "net_prio.ifpriomap", "lo 1")]


@pytest.mark.parametrize("network, field, words", [
    ({"classID": 1}, "classID", "the net_cls controller is not available on this host"),
    ({"priorities": [{"name": "eth0", "priority": 1}]}, "priorities[0]",
     "the net_prio controller is not available on this host")])
def test_network_on_this_host_names_the_field(network, field, words):
    e = error(hybrid, {"network": network})
    assert str(e) == f"linux.resources.network.{field}: {words}"


def test_network_on_v2_is_checked_not_applied_and_warned_about(capfd):
    """As runc 1.1: a pure v2 host has no net_cls/net_prio, the section is accepted and
    nothing is written (crun refuses it); kago-oci says so on stderr."""
    net = {"classID": 1, "priorities": [{"name": "eth0", "priority": 5}]}
    assert v2({"network": net}) == []
    err = capfd.readouterr().err
    assert "level=warning" in err
    assert "linux.resources.network.classID: cgroup v2 has no net_cls controller: not " \
        "applied" in err
    assert "linux.resources.network.priorities[0]: cgroup v2 has no net_prio controller: " \
        "not applied" in err
    e = error(v2, {"network": {"classID": -1}})  # still checked
    assert e.field == "linux.resources.network.classID"


def test_rdma():
    rdma = {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaObjects": 5},
            "empty": {}}
    want = [("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
            ("rdma.max", "mlx4_0 hca_object=5")]
    assert [w[1:] for w in v1({"rdma": rdma})] == want
    assert [w[1:] for w in v2({"rdma": rdma})] == want
    assert error(hybrid, {"rdma": rdma}).field == "linux.resources.rdma.mlx5_1"


# --- devices ----------------------------------------------------------------------------------

def test_devices_start_from_deny_all_in_spec_order():
    rules = [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
             {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "m"},
             {"allow": True, "type": "b", "major": 8, "access": "r"},
             {"allow": True}]
    assert v1({"devices": rules}) == [
        ("devices", "devices.deny", "a"), ("devices", "devices.allow", "c 1:3 rwm"),
        ("devices", "devices.deny", "c 1:3 m"), ("devices", "devices.allow", "b 8:* r"),
        ("devices", "devices.allow", "a")]


def test_devices_spec_starting_with_deny_all_is_not_doubled():
    assert v1({"devices": [{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 5, "minor": -1}]}) == [
        ("devices", "devices.deny", "a"), ("devices", "devices.allow", "c 5:* rwm")]


@pytest.mark.parametrize("rule, field", [
    ({"type": "c"}, "[0].allow"), ({"allow": "yes"}, "[0].allow"),
    ({"allow": True, "type": "x"}, "[0].type"), ({"allow": True, "access": "rwx"}, "[0].access"),
    ({"allow": True, "access": "rr"}, "[0].access"),
    ({"allow": True, "type": "c", "major": -2}, "[0].major"),
    ({"allow": True, "type": "c", "minor": "3"}, "[0].minor")])
def test_bad_device_rules_name_the_field(rule, field):
    assert error(v1, {"devices": [rule]}).field == f"linux.resources.devices{field}"


def test_device_rule_line():
    assert device_rule({"type": "c", "major": 136, "access": "rw"}, "f") == "c 136:* rw"


def test_devices_on_v2_are_one_device_filter_write():
    """The eBPF program's rule list (tests/unit/cgroups/test_device_filter.py for the rest)."""
    assert v2({"devices": [{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 1, "minor": 3}]}) == [
        ("unified", "<eBPF device filter>", "deny a\nallow c 1:3 rwm")]
    assert v2({"devices": []}) == []


# --- unified ----------------------------------------------------------------------------------

def test_unified_on_v2_is_raw_and_last():
    writes = v2({"unified": {"memory.high": "1000000", "cgroup.max.depth": "2"},
                 "pids": {"limit": 3}})
    assert writes == [("unified", "pids.max", "3"), ("unified", "memory.high", "1000000"),
                      ("unified", "cgroup.max.depth", "2")]
    assert controllers_needed(plan_writes({"unified": {"memory.high": "1"}, "pids": {"limit": 1}},
                                          "v2", V2)) == ["memory", "pids"]


def test_unified_misc_and_rdma_limits_on_v2():
    """misc.max has no runtime-spec section: unified is how a spec sets it (runc's fs2 only
    reads misc.current/events)."""
    assert v2({"unified": {"misc.max": "sev 2", "rdma.max": "mlx5_0 hca_handle=2"}}) == [
        ("unified", "misc.max", "sev 2"), ("unified", "rdma.max", "mlx5_0 hca_handle=2")]
    assert v2({"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}}}) == [
        ("unified", "rdma.max", "mlx5_0 hca_handle=3 hca_object=100")]


def test_unified_on_v2_controller_not_offered_names_the_key():
    e = error(v2, {"unified": {"misc.max": "x 1"}}, {"unified": {"memory"}})
    assert str(e) == ("linux.resources.unified.misc.max: the misc controller is not available "
                      "on this host")


def test_unified_empty_values_are_skipped_as_crun_does():
    """Written, "" would be 0 to memory.max (the kernel parses an empty number as 0)."""
    assert v2({"unified": {"memory.max": "", "memory.high": " \n", "pids.max": "5"}}) == [
        ("unified", "pids.max", "5")]


def test_unified_multi_line_value_is_one_write_of_lines():
    """The executor writes it line by line (runc's WriteFileByLine): test_limits_fake_tree."""
    assert v2({"unified": {"io.max": "8:0 rbps=1\n8:16 wbps=2"}}) == [
        ("unified", "io.max", "8:0 rbps=1\n8:16 wbps=2")]


@pytest.mark.parametrize("key", ["cgroup.max.depth", "cgroup.max.descendants",
                                 "cgroup.pressure"])
def test_unified_core_limits_are_written(key):
    assert v2({"unified": {key: "3"}}) == [("unified", key, "3")]


@pytest.mark.parametrize("key, words", [
    ("cgroup.procs", "processes join the container's cgroup as the runtime puts them there"),
    ("cgroup.threads", "processes join"), ("cgroup.kill", "use kago-oci kill --all"),
    ("cgroup.freeze", "use kago-oci pause and resume"),
    ("cgroup.subtree_control", "cannot hold the container's init"),
    ("cgroup.type", "a threaded cgroup cannot hold"),
    ("cgroup.events", "not a cgroup core limit")])
def test_unified_core_files_that_are_not_limits_are_refused(key, words):
    for fn in (v2, hybrid):
        e = error(fn, {"unified": {key: "1"}})
        assert e.field == f"linux.resources.unified.{key}"
        assert str(e).startswith(f"linux.resources.unified.{key}: {key} cannot be set "
                                 "through unified: ") and words in str(e), str(e)


@pytest.mark.parametrize("key", ["memory", ".max", "memory.", "../memory.max", "memory.max ",
                                 "a b.max", "memory.max\0"])
def test_unified_keys_must_be_controller_dot_parameter(key):
    e = error(v2, {"unified": {key: "1"}})
    assert "unified keys must be file names like memory.high" in str(e)


UNIFIED_TO_V1 = [
    ({"cpu.max": "20000 100000"}, [("cpu", "cpu.cfs_period_us", "100000"),
                                   ("cpu", "cpu.cfs_quota_us", "20000"),
                                   ("cpu", "cpu.cfs_period_us", "100000")]),
    ({"cpu.max": "max"}, [("cpu", "cpu.cfs_quota_us", "-1")]),
    ({"cpu.max": "max 50000"}, [("cpu", "cpu.cfs_period_us", "50000"),
                                ("cpu", "cpu.cfs_quota_us", "-1"),
                                ("cpu", "cpu.cfs_period_us", "50000")]),
    ({"cpu.weight": "100"}, [("cpu", "cpu.shares", "1024")]),
    ({"cpu.idle": "1"}, [("cpu", "cpu.idle", "1")]),
    ({"cpu.max.burst": "1000"}, [("cpu", "cpu.cfs_burst_us", "1000")]),
    ({"cpuset.cpus": "0-1"}, [("cpuset", "cpuset.cpus", "0-1")]),
    ({"memory.max": "33554432"}, [("memory", "memory.limit_in_bytes", "33554432")]),
    ({"memory.max": "max"}, [("memory", "memory.memsw.limit_in_bytes", "-1"),
                             ("memory", "memory.limit_in_bytes", "-1")]),
    ({"memory.max": "100", "memory.swap.max": "50"},
     [("memory", "memory.limit_in_bytes", "100"),
      ("memory", "memory.memsw.limit_in_bytes", "150")]),
    ({"memory.swap.max": "max"}, [("memory", "memory.memsw.limit_in_bytes", "-1")]),
    ({"memory.low": "4096"}, [("memory", "memory.soft_limit_in_bytes", "4096")]),
    ({"pids.max": "max"}, [("pids", "pids.max", "max")]),
    ({"pids.max": "42"}, [("pids", "pids.max", "42")]),
    ({"io.weight": "default 100"}, [("blkio", "blkio.weight", "19")]),
    ({"io.weight": "8:0 10000"}, [("blkio", "blkio.weight_device", "8:0 1000")]),
    ({"io.max": "8:0 rbps=1000 wiops=max"},
     [("blkio", "blkio.throttle.read_bps_device", "8:0 1000"),
      ("blkio", "blkio.throttle.write_iops_device", "8:0 0")]),
    ({"hugetlb.2MB.max": "4096"}, [("hugetlb", "hugetlb.2MB.limit_in_bytes", "4096")]),
    ({"rdma.max": "mlx5_1 hca_handle=2"}, [("rdma", "rdma.max", "mlx5_1 hca_handle=2")]),
]


@pytest.mark.parametrize("unified, writes", UNIFIED_TO_V1)
def test_unified_keys_translate_to_v1(unified, writes):
    assert v1({"unified": unified}) == writes


def test_unified_swap_uses_the_typed_memory_limit_on_v1():
    assert v1({"memory": {"limit": 100}, "unified": {"memory.swap.max": "20"}})[-1] == (
        "memory", "memory.memsw.limit_in_bytes", "120")


def test_unified_translation_follows_bfq_on_this_host():
    assert hybrid({"unified": {"io.weight": "100"}}) == [("blkio", "blkio.bfq.weight", "19")]


@pytest.mark.parametrize("key", ["memory.high", "memory.min", "memory.oom.group",
                                 "cgroup.max.depth", "io.latency", "misc.max"])
def test_unified_keys_without_v1_equivalent_name_the_key(key):
    e = error(v1, {"unified": {key: "1"}})
    assert str(e) == (f"linux.resources.unified.{key}: unified key {key} has no cgroup v1 "
                      "equivalent on this host")


@pytest.mark.parametrize("unified, field", [
    ({"memory.swap.max": "10"}, "memory.swap.max"), ({"cpu.max": "1 2 3"}, "cpu.max"),
    ({"cpu.weight": "0"}, "cpu.weight"), ({"cpu.weight": "max"}, "cpu.weight"),
    ({"memory.max": "1g"}, "memory.max"), ({"io.max": "sda rbps=1"}, "io.max"),
    ({"io.max": "8:0 xbps=1"}, "io.max"), ({"io.weight": "8:0"}, "io.weight"),
    ({"pids.max": 5}, "pids.max"), ({"../memory.max": "1"}, "../memory.max"),
    ({"cpu.weight": "\u00b2"}, "cpu.weight"), ({"io.max": "\u00b2:0 rbps=1"}, "io.max"),
    ({"memory": "1"}, "memory")])
def test_bad_unified_values_name_the_key(unified, field):
    assert error(v1, {"unified": unified}).field == f"linux.resources.unified.{field}"


def test_unified_translation_needs_the_v1_controller():
    e = error(hybrid, {"unified": {"hugetlb.2MB.max": "1"}})
    assert str(e) == ("linux.resources.unified.hugetlb.2MB.max: the hugetlb controller is not "
                      "available on this host")


def test_hybrid_unified_raw_where_the_cgroup2_tree_has_the_controller():
    available = dict(HYBRID, unified={"hugetlb"})
    assert hybrid({"unified": {"hugetlb.2MB.max": "4096", "cgroup.max.depth": "3",
                               "pids.max": "7"}}, available) == [
        ("unified", "hugetlb.2MB.max", "4096"), ("unified", "cgroup.max.depth", "3"),
        ("pids", "pids.max", "7")]


# --- whole resources, shapes, the hybrid host -------------------------------------------------

def test_empty_and_missing_sections_write_nothing():
    for version, available in (("v1", V1), ("v2", V2), ("hybrid", HYBRID)):
        assert plan_writes(None, version, available) == []
        assert plan_writes({"cpu": {}, "memory": None, "devices": [], "unified": {}}, version,
                           available) == []


@pytest.mark.parametrize("resources, field", [
    ([], "linux.resources"), ({"cpu": []}, "linux.resources.cpu"),
    ({"devices": {}}, "linux.resources.devices"), ({"unified": "x"}, "linux.resources.unified")])
def test_wrong_shapes_name_the_field(resources, field):
    assert error(v1, resources).field == field


def test_writes_carry_their_field():
    writes = plan_writes({"memory": {"limit": 100}, "unified": {"cpu.weight": "1"}}, "v1", V1)
    assert [w.field for w in writes] == ["linux.resources.memory.limit",
                                         "linux.resources.unified.cpu.weight"]
    assert writes[0].target == "memory" and writes[0].filename == "memory.limit_in_bytes"


def test_a_plain_set_is_the_controllers_of_the_version():
    assert plan_writes({"pids": {"limit": 1}}, "v2", {"pids"}) == [("unified", "pids.max", "1")]
    with pytest.raises(SpecError):
        plan_writes({"pids": {"limit": 1}}, "v1", {"memory"})


def test_unknown_version_is_a_programming_error():
    with pytest.raises(ValueError):
        plan_writes({}, "v3", set())


def test_typical_runtime_spec_on_this_host():
    """What podman hands over: deny-all devices, then the defaults; cpu/memory/pids limits."""
    spec = {"devices": [{"allow": False, "access": "rwm"}] + [
        {"allow": True, "type": "c", "major": 1, "minor": m, "access": "rwm"}
        for m in (3, 5, 7, 8, 9)],
        "memory": {"limit": 512 * M, "swap": 512 * M},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000}, "pids": {"limit": 2048}}
    writes = hybrid(spec)
    assert len(writes) == 6 + 2 + 4 + 1
    assert {w[0] for w in writes} == {"devices", "memory", "cpu", "pids"}


# --- update flags -----------------------------------------------------------------------------

def test_resources_from_update_flags():
    assert resources_from_flags({"memory": "512m", "memory-swap": "1g", "cpu-quota": "20000",
                                 "cpu-period": "100000", "cpu-share": "512",
                                 "cpuset-cpus": "0-1", "pids-limit": "100",
                                 "blkio-weight": "300", "memory-reservation": None}) == {
        "memory": {"limit": 512 * M, "swap": 1 << 30},
        "cpu": {"quota": 20000, "period": 100000, "shares": 512, "cpus": "0-1"},
        "pids": {"limit": 100}, "blockIO": {"weight": 300}}


@pytest.mark.parametrize("text, value", [("1048576", M), ("1k", 1024), ("1KB", 1024),
                                         ("2MiB", 2 * M), ("1.5g", 3 << 29), ("-1", -1),
                                         ("100b", 100)])
def test_parse_size(text, value):
    assert parse_size(text, "--memory") == value


@pytest.mark.parametrize("flags, field", [({"memory": "lots"}, "--memory"),
                                          ({"cpu-quota": "1.5"}, "--cpu-quota"),
                                          ({"cpus": "1"}, "--cpus")])
def test_bad_update_flags_name_the_flag(flags, field):
    with pytest.raises(SpecError) as info:
        resources_from_flags(flags)
    assert info.value.field == field


# --- anything at all --------------------------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 65), 1 << 65),
                     st.floats(allow_nan=False), st.text(max_size=12),
                     st.sampled_from(["max", "0-1", "2MB", "1", "-1", "8:0 rbps=1", "default 5"]))
_keys = st.sampled_from([
    "cpu", "memory", "pids", "blockIO", "hugepageLimits", "network", "rdma", "devices",
    "unified", "shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod", "cpus",
    "mems", "idle", "limit", "reservation", "swap", "kernel", "kernelTCP", "swappiness",
    "disableOOMKiller", "useHierarchy", "checkBeforeUpdate", "weight", "leafWeight",
    "weightDevice", "throttleReadBpsDevice", "throttleWriteIOPSDevice", "major", "minor", "rate",
    "pageSize", "classID", "priorities", "name", "priority", "allow", "type", "access",
    "hcaHandles", "hcaObjects", "cpu.max", "cpu.weight", "memory.max", "memory.swap.max",
    "memory.high", "io.weight", "io.max", "pids.max", "hugetlb.2MB.max", "cgroup.max.depth"])
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)), max_leaves=25)


@settings(max_examples=600, deadline=None)
@given(resources=st.dictionaries(_keys, _json, max_size=6),
       version=st.sampled_from(["v1", "v2", "hybrid"]),
       current=st.one_of(st.none(), st.builds(lambda n: {"memory.limit_in_bytes": n},
                                               st.integers(0, 1 << 63))))
def test_any_resources_give_writes_or_a_named_error(resources, version, current):
    available = {"v1": V1, "v2": V2, "hybrid": dict(HYBRID, unified={"hugetlb"})}[version]
    try:
        writes = plan_writes(resources, version, available, current)
    except (SpecError, CgroupError) as e:
        assert str(e)
        if isinstance(e, SpecError):
            assert e.field.startswith("linux.resources")
        return
    for w in writes:
        assert len(w) == 3 and all(type(x) is str for x in w)
        assert w.field.startswith("linux.resources")
        assert "\n" not in w[2] or w[1] in ("io.max", "io.weight")
        assert "/" not in w[1] and w[1] not in ("cgroup.procs", "tasks")


# well-formed values, so that the write path itself is what runs
_valid_resources = st.fixed_dictionaries({}, optional={
    "cpu": st.fixed_dictionaries({}, optional={
        "shares": st.integers(2, 262144), "quota": st.integers(-1, 1 << 40),
        "period": st.integers(1000, 1000000), "burst": st.integers(0, 1 << 30),
        "cpus": st.sampled_from(["0", "0-1", "1,3-5", ""]), "idle": st.integers(0, 1)}),
    "memory": st.fixed_dictionaries({}, optional={
        "limit": st.one_of(st.just(-1), st.integers(0, 1 << 40)),
        "reservation": st.integers(-1, 1 << 40), "useHierarchy": st.just(True),
        "disableOOMKiller": st.just(False)}),
    "pids": st.fixed_dictionaries({"limit": st.integers(-1, 1 << 20)}),
    "blockIO": st.fixed_dictionaries({}, optional={
        "weight": st.integers(10, 1000),
        "throttleReadBpsDevice": st.lists(st.fixed_dictionaries(
            {"major": st.integers(0, 255), "minor": st.integers(0, 255),
             "rate": st.integers(0, 1 << 40)}), max_size=2)}),
    "unified": st.dictionaries(st.sampled_from(["cpu.max", "cpu.weight", "pids.max",
                                                "memory.low"]),
                               st.sampled_from(["max", "1", "100", "5000 100000"]), max_size=2),
})


@settings(max_examples=300, deadline=None)
@given(resources=_valid_resources, version=st.sampled_from(["v1", "v2", "hybrid"]))
def test_well_formed_resources_plan_in_every_vocabulary(resources, version):
    available = {"v1": V1, "v2": V2, "hybrid": HYBRID}[version]
    try:
        writes = plan_writes(resources, version, available)
    except SpecError as e:  # only the unified values may be out of range for their key
        assert e.field.startswith("linux.resources.unified."), e
        return
    targets = {w.target for w in writes}
    assert targets <= ({"unified"} if version == "v2" else V1_ALL)
    swap = [w for w in writes if "memsw" in w.filename]
    limit = [w for w in writes if w.filename == "memory.limit_in_bytes"]
    if swap and limit and swap[0].value == "-1":
        assert writes.index(swap[0]) < writes.index(limit[0])  # unlimited: memsw first
