"""linux.resources.blockIO: weights and throttles (v1 blkio.*, v2 io.*).

- Documentation/admin-guide/cgroup-v2.rst: io.max "MAJ:MIN rbps= wbps= riops= wiops="; io.weight
  1..10000, from blkio's 10..1000 as runc converts it (blkio_to_io_weight).
- CFQ (blkio.weight) left linux in 5.0; BFQ's blkio.bfq.weight and io.bfq.weight take blkio's
  own range.
"""

from kago.errors import SpecError

from . import UINT64, _dict, _int, _list, blkio_to_io_weight


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


def _bfq_v1(host):
    """CFQ (blkio.weight) left linux in 5.0; BFQ's blkio.bfq.weight takes the same values."""
    return not host.has("blkio.weight") and host.has("blkio.bfq.weight")


def _blkio_v1(blkio, field, host):
    weight_file = "blkio.bfq.weight" if _bfq_v1(host) else "blkio.weight"
    out = []
    if blkio.get("weight") not in (None, 0):
        out.append((weight_file, str(_weight(blkio["weight"], field + ".weight")),
                    field + ".weight"))
    if blkio.get("leafWeight") not in (None, 0):
        out.append(("blkio.leaf_weight", str(_weight(blkio["leafWeight"], field + ".leafWeight")),
                    field + ".leafWeight"))
    for i, entry in enumerate(_list(blkio.get("weightDevice"), field + ".weightDevice")):
        out += _weight_device_v1(entry, f"{field}.weightDevice[{i}]", weight_file)
    for v1_file, _key, dev, rate, where in _throttles(blkio, field):
        out.append((v1_file, f"{dev} {rate}", where))
    return out


def _weight_device_v1(entry, field, weight_file):
    entry, dev = _device(entry, field)
    out = []
    for key, filename in (("weight", weight_file + "_device"),
                          ("leafWeight", "blkio.leaf_weight_device")):
        if entry.get(key) is not None:
            out.append((filename, f"{dev} {_weight(entry[key], f'{field}.{key}')}",
                        f"{field}.{key}"))
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
