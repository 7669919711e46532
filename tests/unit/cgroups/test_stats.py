"""Parsers and stats builders on fixture text (most of it copied from the development host).

The v2 builders (memory.current/events, io.stat, hugetlb.*.current) run only here: the hybrid
host's cgroup2 tree has no memory, io or hugetlb controller to read them from.
"""

import pytest

from kago.errors import CgroupError
from kago.linux.cgroups import V1Manager, V2Manager
from kago.linux.cgroups.stats import (MAX_UINT64, blkio_v1, blkio_v2, collect, cpu_v2, cpuset,
                                      empty_stats, hugetlb, memory_v1, memory_v2, parse_blkio,
                                      parse_cpu_list, parse_flat, parse_io_stat, parse_nested,
                                      parse_pressure, parse_usage_all, pids, pressure_of,
                                      throttling_v1, usage_v1)

CPU_STAT_V1 = "nr_periods 12\nnr_throttled 5\nthrottled_time 409716880\nnr_bursts 0\n" \
              "burst_time 0\n"
CPU_STAT_V2 = "usage_usec 822882336\nuser_usec 504260313\nsystem_usec 318622023\n" \
              "nice_usec 0\nnr_periods 7\nnr_throttled 3\nthrottled_usec 1500\n"
USAGE_ALL = "cpu user system\n0 175666000229 133034089439\n1 328594312995 185583934092\n"
PRESSURE = "some avg10=0.21 avg60=0.35 avg300=0.17 total=1637995\n" \
           "full avg10=0.14 avg60=0.24 avg300=0.11 total=1080110\n"
BLKIO = "254:0 Read 16486400\n254:0 Write 35692544\n254:0 Sync 49201152\n" \
        "254:0 Total 84893696\nTotal 84893696\n"
IO_STAT = "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n" \
          "8:0 rbytes=90430464 wbytes=299008000 rios=8950 wios=1252 dbytes=50331648 dios=3021\n"
OOM_CONTROL = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
MEMORY_EVENTS = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n"


# --- parsers ----------------------------------------------------------------------------------

def test_parse_flat():
    assert parse_flat(CPU_STAT_V1)["throttled_time"] == 409716880
    assert parse_flat(OOM_CONTROL) == {"oom_kill_disable": 0, "under_oom": 0, "oom_kill": 3}
    assert parse_flat("a 1\nbroken\nb x\nc max\n\n") == {"a": 1, "c": MAX_UINT64}


def test_parse_nested():
    nested = parse_nested(IO_STAT)
    assert nested["8:0"]["dbytes"] == 50331648
    assert parse_nested("8:0 rbps=max wbps=10 junk\n") == {"8:0": {"rbps": MAX_UINT64,
                                                                  "wbps": 10}}


def test_parse_pressure():
    psi = parse_pressure(PRESSURE)
    assert psi["some"] == {"avg10": 0.21, "avg60": 0.35, "avg300": 0.17, "total": 1637995}
    assert psi["full"]["total"] == 1080110
    assert parse_pressure("some avg10=1.00 avg60=0.00 avg300=0.00 total=5\n") == {
        "some": {"avg10": 1.0, "avg60": 0.0, "avg300": 0.0, "total": 5}}  # cpu before 5.13


def test_parse_blkio_drops_the_total_trailer():
    entries = parse_blkio(BLKIO)
    assert entries[0] == {"major": 254, "minor": 0, "op": "Read", "value": 16486400}
    assert [e["op"] for e in entries] == ["Read", "Write", "Sync", "Total"]
    assert parse_blkio("8:0 1234\n") == [{"major": 8, "minor": 0, "op": "", "value": 1234}]


def test_parse_io_stat_maps_to_v1_names():
    nbytes, nios = parse_io_stat(IO_STAT)
    assert {"major": 8, "minor": 0, "op": "Read", "value": 90430464} in nbytes
    assert {"major": 8, "minor": 16, "op": "Write", "value": 353} in nios
    assert len(nbytes) == len(nios) == 4


def test_parse_usage_all_and_cpu_lists():
    assert parse_usage_all(USAGE_ALL) == ([175666000229, 328594312995],
                                          [133034089439, 185583934092])
    assert parse_cpu_list("0-3,5\n") == [0, 1, 2, 3, 5]
    assert parse_cpu_list("\n") == []


# --- builders ---------------------------------------------------------------------------------

def test_cpu_v1():
    assert throttling_v1({"cpu.stat": CPU_STAT_V1}) == {
        "periods": 12, "throttledPeriods": 5, "throttledTime": 409716880}
    usage = usage_v1({"cpuacct.usage": "851795186543\n",
                      "cpuacct.usage_percpu": "324876601948 526918584595 \n",
                      "cpuacct.usage_all": USAGE_ALL, "cpuacct.stat": "user 52197\nsystem 3\n"})
    assert usage["total"] == 851795186543
    assert usage["percpu"] == [324876601948, 526918584595]
    assert usage["percpu_user"] == [175666000229, 328594312995]
    assert usage["user"] == 52197 * 10_000_000 and usage["kernel"] == 30_000_000  # USER_HZ


def test_cpu_v2_is_in_nanoseconds():
    cpu = cpu_v2({"cpu.stat": CPU_STAT_V2})
    assert cpu["usage"]["total"] == 822882336000
    assert cpu["usage"]["kernel"] == 318622023000
    assert cpu["throttling"] == {"periods": 7, "throttledPeriods": 3, "throttledTime": 1500000}


def test_memory_v1():
    texts = {"memory.usage_in_bytes": "4096\n", "memory.max_usage_in_bytes": "8192\n",
             "memory.failcnt": "2\n", "memory.limit_in_bytes": "33554432\n",
             "memory.memsw.limit_in_bytes": "9223372036854771712\n",
             "memory.stat": "cache 100\nrss 200\n"}
    memory = memory_v1(texts)
    assert memory["usage"] == {"limit": 33554432, "usage": 4096, "max": 8192, "failcnt": 2}
    assert memory["swap"]["limit"] == 9223372036854771712
    assert memory["kernel"] == {"limit": 0, "usage": 0, "max": 0, "failcnt": 0}
    assert memory["cache"] == 100 and memory["raw"] == {"cache": 100, "rss": 200}


def test_memory_v2_reports_swap_as_memory_plus_swap_like_runc():
    texts = {"memory.current": "1000\n", "memory.max": "4000\n", "memory.peak": "3000\n",
             "memory.events": MEMORY_EVENTS, "memory.swap.current": "50\n",
             "memory.swap.max": "500\n", "memory.stat": "anon 10\nfile 20\n"}
    memory = memory_v2(texts)
    assert memory["usage"] == {"limit": 4000, "usage": 1000, "max": 3000, "failcnt": 12}
    assert memory["swap"]["usage"] == 1050 and memory["swap"]["limit"] == 4500
    assert memory["cache"] == 20
    texts["memory.swap.max"] = "max\n"
    assert memory_v2(texts)["swap"]["limit"] == MAX_UINT64


def test_pids_max_reads_as_zero_like_runc():
    assert pids({"pids.current": "3\n", "pids.max": "max\n"}) == {"current": 3, "limit": 0}
    assert pids({"pids.current": "3\n", "pids.max": "16\n"}) == {"current": 3, "limit": 16}


def test_blkio_v1_prefers_cfq_then_bfq_then_throttle():
    stats = blkio_v1({"blkio.throttle.io_service_bytes_recursive": BLKIO,
                      "blkio.bfq.io_service_bytes_recursive": "Total 0\n"})  # empty: skipped
    assert stats["ioServiceBytesRecursive"][0]["value"] == 16486400
    assert stats["ioServicedRecursive"] == []
    cfq = blkio_v1({"blkio.io_service_bytes_recursive": "8:0 Read 1\n",
                    "blkio.throttle.io_service_bytes_recursive": BLKIO})
    assert cfq["ioServiceBytesRecursive"] == [{"major": 8, "minor": 0, "op": "Read",
                                               "value": 1}]


def test_blkio_v2():
    stats = blkio_v2({"io.stat": IO_STAT})
    assert len(stats["ioServiceBytesRecursive"]) == 4
    assert stats["sectorsRecursive"] == []


def test_cpuset_and_hugetlb():
    assert cpuset({"cpuset.cpus": "0-1\n", "cpuset.mems": "0\n",
                   "cpuset.sched_relax_domain_level": "-1\n"}) == {
        "cpus": [0, 1], "mems": [0], "sched_relax_domain_level": -1}
    assert hugetlb({"hugetlb.2MB.usage_in_bytes": "0\n", "hugetlb.2MB.max_usage_in_bytes": "4\n",
                    "hugetlb.2MB.failcnt": "1\n", "hugetlb.2MB.limit_in_bytes": "9\n"}, 1) == {
        "2MB": {"usage": 0, "max": 4, "failcnt": 1}}
    assert hugetlb({"hugetlb.1GB.current": "0\n", "hugetlb.1GB.events": "max 3\n",
                    "hugetlb.1GB.max": "max\n"}, 2) == {
        "1GB": {"usage": 0, "max": 0, "failcnt": 3}}


def test_empty_stats_is_runcs_shape():
    stats = empty_stats()
    assert set(stats) == {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                          "network_interfaces"}
    assert set(stats["cpu"]["throttling"]) == {"periods", "throttledPeriods", "throttledTime"}
    assert set(stats["memory"]) == {"cache", "usage", "swap", "kernel", "kernelTCP", "raw"}


# --- collecting from fake trees ---------------------------------------------------------------

def _files(d, files):
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return str(d)


def test_collect_from_a_fake_hybrid_like_v1_tree(tmp_path):
    dirs = {"cpu": _files(tmp_path / "cpu/c", {"cpu.stat": CPU_STAT_V1}),
            "cpuacct": _files(tmp_path / "cpuacct/c", {"cpuacct.usage": "7\n"}),
            "memory": _files(tmp_path / "memory/c", {"memory.usage_in_bytes": "5\n"}),
            "pids": _files(tmp_path / "pids/c", {"pids.current": "1\n", "pids.max": "9\n"})}
    stats = collect(V1Manager("/c", dirs))
    assert stats["cpu"]["throttling"]["throttledPeriods"] == 5
    assert stats["cpu"]["usage"]["total"] == 7
    assert stats["memory"]["usage"]["usage"] == 5
    assert stats["pids"] == {"current": 1, "limit": 9}
    assert "psi" not in stats["cpu"]


def test_collect_and_pressure_from_a_fake_v2_tree(tmp_path):
    d = _files(tmp_path / "c", {"cpu.stat": CPU_STAT_V2, "cpu.pressure": PRESSURE,
                                "memory.pressure": PRESSURE, "memory.current": "10\n",
                                "memory.max": "max\n", "io.stat": IO_STAT,
                                "pids.current": "2\n", "pids.max": "max\n"})
    m = V2Manager("/c", {"unified": d})
    stats = collect(m)
    assert stats["cpu"]["usage"]["total"] == 822882336000
    assert stats["memory"]["usage"]["limit"] == MAX_UINT64
    assert stats["pids"] == {"current": 2, "limit": 0}
    assert len(stats["blkio"]["ioServicedRecursive"]) == 4
    assert stats["cpu"]["psi"]["full"]["avg10"] == 0.14
    assert "psi" not in stats["blkio"]  # no io.pressure in this fake
    assert m.pressure() == pressure_of(d) == {"cpu": parse_pressure(PRESSURE),
                                              "memory": parse_pressure(PRESSURE)}


def test_pressure_without_a_cgroup2_directory_is_an_error(tmp_path):
    m = V1Manager("/c", {"memory": str(tmp_path)})
    with pytest.raises(CgroupError, match="PSI is per cgroup only on cgroup2"):
        m.pressure()
