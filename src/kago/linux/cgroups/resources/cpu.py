"""linux.resources.cpu: cpuset, weight, idle, bandwidth and real-time (v1 cpu/cpuset, v2 cpu.*).

Rules, from the kernel docs as runc applies them:

- Documentation/scheduler/sched-bwc.rst: cfs_quota_us/cfs_period_us (v1) and cpu.max
  "$MAX $PERIOD" (v2); a new period can be refused until the quota is written (EINVAL), so it is
  written again after it. sched-rt-group.rst: rt_period before rt_runtime.
- Documentation/admin-guide/cgroup-v2.rst: cpu.weight 1..10000, from the shares by
  shares_to_weight (current runc's and crun's curve: the default 1024 shares is weight 100).
"""

from kago.errors import SpecError

from .values import UINT64, _cpulist, _int, shares_to_weight


def _shares(cpu, field, lo=2, hi=262144):
    """v1: the kernel's range (it clamps silently, runc then fails on the read-back); v2: any
    uint64, clamped by shares_to_weight as current runc and crun clamp it."""
    shares = cpu.get("shares")
    if shares in (None, 0):
        return None
    return _int(shares, field + ".shares", lo, hi)


def _cpu_v1(cpu, field, host):
    out = _rt_v1(cpu, field)
    shares = _shares(cpu, field)
    out += _weight_and_idle(cpu, field, shares and ("cpu.shares", str(shares)))
    quota, period, burst = _bandwidth(cpu, field)
    return out + _bandwidth_writes(("cpu.cfs_quota_us", quota and str(quota)),
                                   ("cpu.cfs_period_us", period and str(period)),
                                   ("cpu.cfs_burst_us", burst), field)


def _cpu_v2(cpu, field, host):
    for key in ("realtimeRuntime", "realtimePeriod"):
        if cpu.get(key) not in (None, 0):
            _int(cpu[key], f"{field}.{key}")
            raise SpecError(f"{field}.{key}", "cgroup v2 has no real-time group scheduling "
                            "(cpu.rt_runtime_us); run the container without it")
    shares = _shares(cpu, field, 1, UINT64[1])
    out = _weight_and_idle(cpu, field, shares and ("cpu.weight", str(shares_to_weight(shares))))
    quota, period, burst = _bandwidth(cpu, field)
    cpu_max = None
    if quota or period:
        # as runc: a period alone is "max PERIOD" (cpu.max cannot keep the quota unchanged)
        cpu_max = (str(quota) if quota and quota > 0 else "max") + (f" {period}" if period else "")
    return out + _bandwidth_writes(("cpu.max", cpu_max), (None, None),
                                   ("cpu.max.burst", burst), field)


def _rt_v1(cpu, field):
    out = []
    for key, filename in (("realtimePeriod", "cpu.rt_period_us"),
                          ("realtimeRuntime", "cpu.rt_runtime_us")):
        value = cpu.get(key)
        if value not in (None, 0):
            out.append((filename, str(_int(value, f"{field}.{key}", -1)), f"{field}.{key}"))
    return out


def _bandwidth(cpu, field):
    """(quota, period, burst): quota -1 unlimited, 0 or None unset; as ints or None."""
    quota = cpu.get("quota")
    quota = None if quota in (None, 0) else _int(quota, field + ".quota", -1)
    period = cpu.get("period")
    period = None if period in (None, 0) else _int(period, field + ".period", 1, UINT64[1])
    burst = cpu.get("burst")
    burst = None if burst is None else str(_int(burst, field + ".burst", 0, UINT64[1]))
    return quota, period, burst


def _bandwidth_writes(quota, period, burst, field):
    """period, burst, quota, then period and burst again when the quota is written too.

    A period or burst the kernel refuses before the new quota is in place (EINVAL: the old
    quota with the new period breaks a parent's limit, or burst > old quota) is retried after
    it; the executor skips EINVAL on a write that recurs later in the plan.
    """
    (qfile, qvalue), (pfile, pvalue), (bfile, bvalue) = quota, period, burst
    out = []
    if pvalue:
        out.append((pfile, pvalue, field + ".period"))
    if bvalue is not None:
        out.append((bfile, bvalue, field + ".burst"))
    if qvalue:
        out.append((qfile, qvalue, field + ".quota"))
        out += out[:-1]  # the retries
    return out


def _weight_and_idle(cpu, field, weight):
    """cpu.shares/weight and cpu.idle: the kernel refuses a weight while the group is idle
    (EINVAL), so idle 0 is written before the weight and idle 1 after it."""
    out = [(weight[0], weight[1], field + ".shares")] if weight else []
    idle = cpu.get("idle")
    if idle is None:
        return out
    idle = [("cpu.idle", str(_int(idle, field + ".idle", 0, 1)), field + ".idle")]
    return idle + out if idle[0][1] == "0" else out + idle


def _cpuset(cpu, field, host):
    out = []
    for key, filename in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        text = None if cpu.get(key) is None else _cpulist(cpu[key], f"{field}.{key}")
        if text:
            out.append((filename, text, f"{field}.{key}"))
    return out
