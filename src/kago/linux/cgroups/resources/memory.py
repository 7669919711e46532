"""linux.resources.memory: limit, swap, reservation, kernel, OOM killer, swappiness.

Rules, from the kernel docs as runc applies them:

- Documentation/admin-guide/cgroup-v1/memory.rst: memsw.limit_in_bytes >= limit_in_bytes at every
  moment, so raising writes memsw first and lowering writes the limit first; -1 is unlimited.
- Documentation/admin-guide/cgroup-v2.rst: memory.max/low/swap.max "max"; v2 swap.max = swap -
  limit (the spec's swap is memory+swap, as v1 memsw: swap_to_v2), swap as it is under an
  unlimited (-1) memory limit, an error without any memory limit (runc).
- kernel (memory.kmem.limit_in_bytes) is checked and never written, on any layout: cgroup v2
  has no kernel memory limit, v1's is deprecated (linux 6.x accepts the file and ignores it)
  and the runtime spec deprecates it. runc and crun ignore it too, with runc's warning, which is
  the caller's (``plan.validate.check_resources``, ``runtime.resources``).
- kernelTCP is written to memory.kmem.tcp.limit_in_bytes on a v1 host that has the file, as
  crun does (the kernel still enforces it there; runc 1.1 drops it); elsewhere (v2, or a v1
  kernel without TCP accounting) it is checked and not written, as by both.
"""

from kago.errors import SpecError

from .values import UINT64, UNLIMITED, _bool, _int, _limit, _v1_limit, _v2_limit, swap_to_v2


def _limit_and_swap(memory, field):
    # null is unset, as a Go *int64 reads it
    limit = _limit(0 if memory.get("limit") is None else memory["limit"], field + ".limit")
    swap = _limit(0 if memory.get("swap") is None else memory["swap"], field + ".swap")
    if limit > 0 and swap > 0 and swap < limit:
        raise SpecError(field + ".swap", f"memory+swap limit {swap} must not be below the "
                        f"memory limit {limit}")
    return limit, swap


def _memory_v1(memory, field, host):
    limit, swap = _limit_and_swap(memory, field)
    out = memsw_order(limit, swap, host, field + ".limit", field + ".swap")
    out += _simple(memory, field, _MEMORY_V1)
    tcp = memory.get("kernelTCP")
    if tcp is not None and _limit(tcp, field + ".kernelTCP") \
            and host.has("memory.kmem.tcp.limit_in_bytes"):
        out.append(("memory.kmem.tcp.limit_in_bytes", _v1_limit(tcp), field + ".kernelTCP"))
    return out


def memsw_order(limit, swap, host, limit_field, swap_field):
    """v1 memory.limit_in_bytes and memory.memsw.limit_in_bytes, in an order the kernel takes.

    memsw must stay >= limit after each write: memsw first when it is unlimited or above the
    current limit (raising), else the limit first (lowering). As runc, unlimited memory with swap
    unset makes swap unlimited too, where swap accounting exists.
    """
    if limit == UNLIMITED and swap == 0 and host.has("memory.memsw.limit_in_bytes"):
        swap = UNLIMITED
    lw = [("memory.limit_in_bytes", _v1_limit(limit), limit_field)] if limit else []
    sw = [("memory.memsw.limit_in_bytes", _v1_limit(swap), swap_field)] if swap else []
    current = host.current.get("memory.limit_in_bytes")
    if swap == UNLIMITED or (current is not None and 0 <= current < swap):
        return sw + lw
    return lw + sw


def _memory_v2(memory, field, host):
    limit, swap = _limit_and_swap(memory, field)
    base = limit
    if swap > 0 and limit == 0:
        # an update of the swap alone: the limit is the one the cgroup has (runc's update
        # merges the new values into the container's config the same way)
        base = host.current.get("memory.max", 0)
        if base == 0:  # runc: "unable to set swap limit without memory limit"
            raise SpecError(field + ".swap", "cgroup v2 cannot set a swap limit without a "
                            "memory limit (memory.swap.max is swap alone, the spec's swap is "
                            "memory+swap)")
        if 0 < swap < base:
            raise SpecError(field + ".swap", f"memory+swap limit {swap} must not be below the "
                            f"memory limit {base} (memory.max now)")
    out = []
    swap_max = swap_to_v2(swap, base)
    if swap_max is not None and (host.has("memory.swap.max") or swap_max not in ("max", "0")):
        out.append(("memory.swap.max", swap_max, field + ".swap"))
    if limit:
        out.append(("memory.max", _v2_limit(limit), field + ".limit"))
    return out + _simple(memory, field, _MEMORY_V2)


def _swappiness(value, field):
    # uint64 in the spec, but -1 ("leave it") is what clients send for unset
    value = _int(value, field, -1, UINT64[1])
    if value > 100:
        raise SpecError(field, f"must be from 0 to 100, not {value}")
    return None if value == -1 else str(value)


def _ignored(value, field):
    """kernel (and kernelTCP where it has no file): a value of the right type, then nothing."""
    _limit(value, field)
    return None


def _no_v2(key, what):
    """A converter for a field cgroup v2 has no file for: an error only when it is set."""
    def refuse(value, field):
        if _V1_CONVERTERS[key](value, field) is not None:  # checks the value too
            raise SpecError(field, f"cgroup v2 has no equivalent of {what}")
    return refuse


# (spec key, file, converter(value, field) -> str or None for no write)
_MEMORY_V1 = (
    ("reservation", "memory.soft_limit_in_bytes",
     lambda v, f: _v1_limit(v) if _limit(v, f) else None),
    ("kernel", None, _ignored),
    ("kernelTCP", None, _ignored),
    ("disableOOMKiller", "memory.oom_control", lambda v, f: "1" if _bool(v, f) else None),
    ("swappiness", "memory.swappiness", _swappiness),
    ("useHierarchy", "memory.use_hierarchy", lambda v, f: "1" if _bool(v, f) else "0"),
)

_MEMORY_V2 = (
    # runc maps the reservation (a soft limit) to memory.low (best-effort protection)
    ("reservation", "memory.low", lambda v, f: _v2_limit(v) if _limit(v, f) else None),
    ("kernel", None, _ignored),
    ("kernelTCP", None, _ignored),
    ("disableOOMKiller", None, _no_v2("disableOOMKiller", "memory.oom_control")),
    ("swappiness", None, _no_v2("swappiness", "memory.swappiness")),
    # cgroup v2 is always hierarchical: true is what it does anyway
    ("useHierarchy", None, lambda v, f: None if _bool(v, f) else _refuse_flat(f)),
)

_V1_CONVERTERS = {row[0]: row[2] for row in _MEMORY_V1}


def _refuse_flat(field):
    raise SpecError(field, "cgroup v2 is always hierarchical")


def _simple(section, field, table):
    out = []
    for key, filename, convert in table:
        value = section.get(key)
        if value is None:
            continue
        text = convert(value, f"{field}.{key}")  # raises where v2 has no such file
        if text is not None and filename is not None:
            out.append((filename, text, f"{field}.{key}"))
    return out
