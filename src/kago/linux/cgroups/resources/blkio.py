"""linux.resources.blockIO: weights and throttles (v1 blkio.*, v2 io.*).

- Documentation/admin-guide/cgroup-v2.rst: io.max "MAJ:MIN rbps= wbps= riops= wiops="; io.weight
  1..10000, from blkio's 10..1000 as runc converts it (blkio_to_io_weight).
- CFQ (blkio.weight) left linux in 5.0; BFQ's blkio.bfq.weight and io.bfq.weight take blkio's
  own range. A v1 host whose block devices use neither scheduler (mq-deadline, none) has only
  blkio.throttle.*: a weight there is refused, as runc 1.1.5 refuses it (it probes blkio.weight,
  falls back to blkio.bfq.weight and fails on ENOENT), but naming the field and both files.
"""

from kago.errors import SpecError

from .values import UINT64, _dict, _int, _list, blkio_to_io_weight


def _weight(value, field, lo=10, hi=1000):
    return _int(value, field, lo, hi)


def _device(entry, field):
    entry = _dict(entry, field)
    major = _int(entry.get("major"), field + ".major", 0, 0xFFFFFFFF)
    minor = _int(entry.get("minor"), field + ".minor", 0, 0xFFFFFFFF)
    return entry, f"{major}:{minor}"


_THROTTLES = (("throttleReadBpsDevice", "blkio.throttle.read_bps_device", "rbps"),
              ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device", "wbps"),
              ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device", "riops"),
              ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", "wiops"))


def _throttles(blkio, field):
    """(v1 file, v2 key, "MAJ:MIN", rate, field) for every throttle entry, checked."""
    out = []
    for key, v1_file, v2_key in _THROTTLES:
        for i, entry in enumerate(_list(blkio.get(key), f"{field}.{key}")):
            where = f"{field}.{key}[{i}]"
            entry, dev = _device(entry, where)
            rate = _int(entry.get("rate"), where + ".rate", 0, UINT64[1])
            out.append((v1_file, v2_key, dev, rate, where))
    return out


def v1_weight_file(host, field):
    """blkio.weight (CFQ), else blkio.bfq.weight (BFQ); a SpecError naming ``field`` if neither.

    CFQ left linux in 5.0; BFQ's file takes the same values. An unprobed host (plain
    controller set) is assumed to have blkio.weight.
    """
    if host.has("blkio.weight"):
        return "blkio.weight"
    if host.has("blkio.bfq.weight"):
        return "blkio.bfq.weight"
    raise SpecError(field, "not supported on this host: the blkio hierarchy has neither "
                    "blkio.weight nor blkio.bfq.weight (no CFQ or BFQ I/O scheduler)")


def _blkio_v1(blkio, field, host):
    out = []
    if blkio.get("weight") not in (None, 0):
        weight_file = v1_weight_file(host, field + ".weight")
        out.append((weight_file, str(_weight(blkio["weight"], field + ".weight")),
                    field + ".weight"))
    if blkio.get("leafWeight") not in (None, 0):
        out.append(("blkio.leaf_weight", str(_weight(blkio["leafWeight"], field + ".leafWeight")),
                    field + ".leafWeight"))
    for i, entry in enumerate(_list(blkio.get("weightDevice"), field + ".weightDevice")):
        out += _weight_device_v1(entry, f"{field}.weightDevice[{i}]", host)
    for v1_file, _key, dev, rate, where in _throttles(blkio, field):
        out.append((v1_file, f"{dev} {rate}", where))
    return out


def _weight_device_v1(entry, field, host):
    entry, dev = _device(entry, field)
    out = []
    for key in ("weight", "leafWeight"):
        if entry.get(key) is not None:
            value = f"{dev} {_weight(entry[key], f'{field}.{key}')}"
            filename = (v1_weight_file(host, f"{field}.{key}") + "_device" if key == "weight"
                        else "blkio.leaf_weight_device")
            out.append((filename, value, f"{field}.{key}"))
    return out


def _blkio_v2(blkio, field, host):
    bfq = host.has("io.bfq.weight")
    out = []
    if blkio.get("weight") not in (None, 0):
        weight = _weight(blkio["weight"], field + ".weight")
        # io.bfq.weight takes blkio's own range; io.weight needs the conversion (runc)
        out.append(("io.bfq.weight", str(weight), field + ".weight") if bfq else
                   ("io.weight", str(blkio_to_io_weight(weight)), field + ".weight"))
    if blkio.get("leafWeight") not in (None, 0):
        _weight(blkio["leafWeight"], field + ".leafWeight")
        raise SpecError(field + ".leafWeight", "cgroup v2 has no leaf weight")
    for i, entry in enumerate(_list(blkio.get("weightDevice"), field + ".weightDevice")):
        out += _weight_device_v2(entry, f"{field}.weightDevice[{i}]", bfq)
    for _file, key, dev, rate, where in _throttles(blkio, field):
        out.append(("io.max", f"{dev} {key}={rate if rate else 'max'}", where))
    return out


def _weight_device_v2(entry, field, bfq):
    entry, dev = _device(entry, field)
    if entry.get("leafWeight") is not None:
        _weight(entry["leafWeight"], field + ".leafWeight")
        raise SpecError(field + ".leafWeight", "cgroup v2 has no leaf weight")
    if entry.get("weight") is None:
        return []
    weight = _weight(entry["weight"], field + ".weight")
    if bfq:
        return [("io.bfq.weight", f"{dev} {weight}", field + ".weight")]
    return [("io.weight", f"{dev} {blkio_to_io_weight(weight)}", field + ".weight")]
