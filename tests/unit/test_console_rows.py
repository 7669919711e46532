"""kago console's rows and samples (kago.console.rows, metrics.Ring): pure values from the
manager's records and two readings."""

from kago.console import rows as R
from kago.console.metrics import Ring


def reading(t, cpu, mem=1 << 20, limit=None, psi=(1.5, 0.0, None)):
    return {"t": t, "cpu": cpu, "mem": mem, "limit": limit or R.HOST_MEMORY, "pids": 3,
            "read": 10, "write": 20, "net": None,
            "psi": {"cpu": psi[0], "memory": psi[1], "blkio": psi[2]}}


def record(**state):
    base = {"status": "running", "pid": 42, "started_at": 1000.0}
    base.update(state)
    return {"id": "a" * 64, "name": "web", "image": "busybox", "created": 990.0,
            "state": base, "group": {"key": "k", "file": "/srv/defs/web10.py"},
            "network": {"ports": [{"host_ip": "127.0.0.1", "host_port": 8080,
                                   "container_port": 80, "proto": "tcp"}]}}


def test_cpu_pct_is_percent_of_one_core():
    assert R.cpu_pct(reading(0, 0), reading(2, 1_000_000_000)) == 50.0
    assert R.cpu_pct(None, reading(2, 1)) is None
    assert R.cpu_pct(reading(2, 5), reading(2, 9)) is None  # no time passed
    assert R.cpu_pct(reading(0, 9), reading(1, 5)) == 0.0  # a counter reset: not negative


def test_sample_has_the_history_keys():
    s = R.sample(1234.0, reading(0, 0), reading(1, 250_000_000))
    assert set(s) == {"t", *R.SERIES}
    assert (s["t"], s["cpu_pct"], s["mem_bytes"], s["pids"]) == (1234.0, 25.0, 1 << 20, 3)
    assert (s["psi_cpu_some10"], s["psi_mem_some10"], s["psi_io_some10"]) == (1.5, 0.0, None)
    empty = R.sample(5.0, None, None)
    assert empty["t"] == 5.0 and all(empty[k] is None for k in R.SERIES)


def test_mem_limit_none_without_a_limit():
    assert R.mem_limit(reading(0, 0)) is None
    assert R.mem_limit(reading(0, 0, limit=64 << 20)) == 64 << 20
    assert R.mem_limit(None) is None


def test_row_of_a_running_container():
    last = R.sample(1010.0, reading(0, 0), reading(1, 100_000_000))
    row = R.row(record(), "running", 1060.0, last, reading(1, 1, limit=32 << 20))
    assert row["uptime_s"] == 60.0 and row["status"] == "Up About a minute"
    assert row["ports"] == ["127.0.0.1:8080->80/tcp"] and row["group"] == "web10"
    assert (row["cpu_pct"], row["mem_limit"], row["pids"]) == (10.0, 32 << 20, 3)


def test_row_of_a_stopped_or_restarted_container_has_no_metrics():
    last = R.sample(1010.0, reading(0, 0), reading(1, 100_000_000))
    stopped = R.row(record(status="stopped", finished_at=1050.0, exit_code=0), "exited",
                    1060.0, last)
    assert stopped["cpu_pct"] is None and stopped["uptime_s"] is None
    assert stopped["ports"] == [] and stopped["status"].startswith("Exited (0)")
    restarted = R.row(record(started_at=1020.0), "running", 1060.0, last)
    assert restarted["cpu_pct"] is None  # the sample is of the run before


def test_ring_keeps_the_last_n():
    ring = Ring(3)
    for t in range(5):
        ring.samples.append(R.sample(float(t), None, reading(t, t)))
    h = ring.history()
    assert h["t"] == [2.0, 3.0, 4.0] and h["mem_bytes"] == [1 << 20] * 3
    assert set(h) == {"t", "mem_limit", *R.SERIES} and h["mem_limit"] is None
