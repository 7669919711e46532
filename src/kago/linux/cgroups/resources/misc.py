"""The small sections: pids, hugepageLimits, network (v1 net_cls and net_prio) and rdma.

- Documentation/admin-guide/cgroup-v2.rst: pids.max "max".
- hugetlb.<size>.limit_in_bytes (v1), hugetlb.<size>.max (v2): <size> as the kernel names it;
  the .rsvd. twin of each gets the same value where it exists (runc).
- cgroup v2 has no net_cls/net_prio: the plan checks the section with the v1 planner, writes
  nothing and warns (runc 1.1 accepts the section there; crun refuses it).
"""

from kago.errors import SpecError

from .values import UINT64, _decimal, _dict, _int, _list, _show, _str


def _pids(pids, field, host):
    limit = pids.get("limit")
    if limit is None:
        return []
    limit = _int(limit, field + ".limit")
    # 0 and negative mean unlimited (runtime-spec: "-1 for unlimited"; runc treats 0 alike)
    return [("pids.max", str(limit) if limit > 0 else "max", field + ".limit")]


def _page_size(value, field):
    """"2MB", "1GB", "64KB": the name the kernel gives hugetlb.<size>.* files."""
    value = _str(value, field)
    if len(value) < 3 or value[-2:] not in ("KB", "MB", "GB") or not _decimal(value[:-2]):
        raise SpecError(field, f"must be a page size like 2MB or 1GB, not {_show(value)}")
    return value


def _hugepages(limits, field, host, suffix):
    """hugetlb.<size>.<suffix>, then the reservation limit hugetlb.<size>.rsvd.<suffix> with
    the same value where the kernel has it (5.7), as runc: a limit on faulted pages alone
    lets a task reserve more (mmap MAP_NORESERVE aside) than it may fault in."""
    out = []
    for i, entry in enumerate(_list(limits, field)):
        where = f"{field}[{i}]"
        entry = _dict(entry, where)
        size = _page_size(entry.get("pageSize"), where + ".pageSize")
        limit = _int(entry.get("limit"), where + ".limit", 0, UINT64[1])
        out.append((f"hugetlb.{size}.{suffix}", str(limit), where + ".limit"))
        if host.has(f"hugetlb.{size}.rsvd.{suffix}"):
            out.append((f"hugetlb.{size}.rsvd.{suffix}", str(limit), where + ".limit"))
    return out


def _hugepages_v1(limits, field, host):
    return _hugepages(limits, field, host, "limit_in_bytes")


def _hugepages_v2(limits, field, host):
    return _hugepages(limits, field, host, "max")


def _classid(network, field, host):
    classid = network.get("classID")
    if classid is None:
        return []
    return [("net_cls.classid", str(_int(classid, field + ".classID", 0, 0xFFFFFFFF)),
             field + ".classID")]


def _priorities(network, field, host):
    out = []
    for i, entry in enumerate(_list(network.get("priorities"), field + ".priorities")):
        where = f"{field}.priorities[{i}]"
        entry = _dict(entry, where)
        name = _str(entry.get("name"), where + ".name")
        if not name or " " in name or "/" in name:
            raise SpecError(where + ".name", f"must be an interface name, not {_show(name)}")
        prio = _int(entry.get("priority"), where + ".priority", 0, 0xFFFFFFFF)
        out.append(("net_prio.ifpriomap", f"{name} {prio}", where))
    return out


def _rdma(rdma, field, host):
    out = []
    for device, limits in rdma.items():
        where = f"{field}.{device}"
        if type(device) is not str or not device or device.strip("\0\n ") != device \
                or " " in device:
            raise SpecError(where, "must be an RDMA device name")
        limits = _dict(limits, where)
        parts = [f"{name}={_int(limits[key], f'{where}.{key}', 0, 0xFFFFFFFF)}"
                 for key, name in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object"))
                 if limits.get(key) is not None]
        if parts:
            out.append(("rdma.max", " ".join([device] + parts), where))
    return out
