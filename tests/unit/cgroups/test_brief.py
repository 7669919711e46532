"""linux/cgroups/brief.py on fake trees: collect_brief gives collect's values for the fields
docker stats shows, and BriefReader keeps its files open, rereads them, and closes them."""

import os

from kago.linux.cgroups import V1Manager, V2Manager
from kago.linux.cgroups.brief import BriefReader, collect_brief
from kago.linux.cgroups.stats import collect

PRESSURE = "some avg10=1.50 avg60=0.00 avg300=0.00 total=1\n" \
           "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"


def _files(d, files):
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return str(d)


def _v1(tmp_path):
    dirs = {"cpu": _files(tmp_path / "cpu/c", {"cpu.stat": "nr_periods 1\n"}),
            "cpuacct": _files(tmp_path / "cpuacct/c", {"cpuacct.usage": "7\n"}),
            "memory": _files(tmp_path / "memory/c", {
                "memory.usage_in_bytes": "5000\n", "memory.limit_in_bytes": "9000\n",
                "memory.stat": "cache 10\ntotal_inactive_file 100\n"}),
            "pids": _files(tmp_path / "pids/c", {"pids.current": "3\n", "pids.max": "9\n"}),
            "blkio": _files(tmp_path / "blkio/c", {
                "blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 512\n"
                                                             "Total 4608\n"}),
            "unified": _files(tmp_path / "unified/c", {"cpu.pressure": PRESSURE,
                                                       "memory.pressure": PRESSURE,
                                                       "io.pressure": PRESSURE})}
    return V1Manager("/c", dirs)


def test_brief_agrees_with_collect_on_docker_stats_fields(tmp_path):
    m = _v1(tmp_path)
    full, brief = collect(m), collect_brief(m)
    assert brief["cpu"]["usage"]["total"] == full["cpu"]["usage"]["total"] == 7
    for key in ("usage", "limit"):
        assert brief["memory"]["usage"][key] == full["memory"]["usage"][key]
    assert brief["memory"]["raw"] == full["memory"]["raw"]
    assert brief["pids"]["current"] == 3
    assert brief["blkio"]["ioServiceBytesRecursive"] == full["blkio"]["ioServiceBytesRecursive"]
    for key in ("cpu", "memory", "blkio"):
        assert brief[key]["psi"] == full[key]["psi"]


def test_reader_rereads_open_files_and_closes_them(tmp_path):
    m = _v1(tmp_path)
    reader = BriefReader(m)
    assert reader()["pids"]["current"] == 3
    held = [fd for fd in reader.fds.values() if fd is not None]
    assert len(held) >= 8
    with open(os.path.join(m.dirs["pids"], "pids.current"), "r+") as f:
        f.write("4\n")  # the same inode, written in place
    assert reader()["pids"]["current"] == 4
    assert [fd for fd in reader.fds.values() if fd is not None] == held  # no new opens
    reader.close()
    for fd in held:
        try:
            os.fstat(fd)
        except OSError:
            continue
        raise AssertionError(f"fd {fd} still open")


def test_reader_of_a_v2_tree_and_missing_files(tmp_path):
    d = _files(tmp_path / "c", {"cpu.stat": "usage_usec 2\n", "memory.current": "10\n",
                                "memory.max": "max\n", "pids.current": "1\n"})
    reader = BriefReader(V2Manager("/c", {"unified": d}))
    stats = reader()
    assert stats["cpu"]["usage"]["total"] == 2000 and stats["memory"]["usage"]["usage"] == 10
    assert "psi" not in stats["cpu"] and stats["blkio"]["ioServiceBytesRecursive"] == []
    reader.close()
