"""``kago-oci update`` flags -> linux.resources, as runc update reads them.

Sizes ("512m", "1g") are binary units, as docker's RAMInBytes.
"""

from kago.errors import SpecError

from .values import UNLIMITED, _decimal, _show, _str

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text, field):
    """"512m", "1g", "1048576", "-1" -> bytes (binary units, as docker's RAMInBytes)."""
    value = _str(text, field).strip().lower()
    if value == "-1":
        return UNLIMITED
    value = value[:-2] if value.endswith("ib") else value.removesuffix("b")  # 1gib, 1gb, 100b
    number, unit = (value[:-1], value[-1]) if value[-1:].isalpha() else (value, "")
    if unit not in _UNITS or not _decimal(number.replace(".", "", 1)):
        raise SpecError(field, f"must be a size like 512m or 1g, not {_show(text)}")
    return int(float(number) * _UNITS[unit])


# flag -> (section, key, parse)
_FLAGS = {
    "cpu-share": ("cpu", "shares", int), "cpu-quota": ("cpu", "quota", int),
    "cpu-period": ("cpu", "period", int), "cpu-rt-period": ("cpu", "realtimePeriod", int),
    "cpu-rt-runtime": ("cpu", "realtimeRuntime", int), "cpuset-cpus": ("cpu", "cpus", str),
    "cpuset-mems": ("cpu", "mems", str), "memory": ("memory", "limit", parse_size),
    "memory-swap": ("memory", "swap", parse_size),
    "memory-reservation": ("memory", "reservation", parse_size),
    "kernel-memory": ("memory", "kernel", parse_size),
    "kernel-memory-tcp": ("memory", "kernelTCP", parse_size),
    "pids-limit": ("pids", "limit", int), "blkio-weight": ("blockIO", "weight", int),
}


def resources_from_flags(flags):
    """runc update's flags (``{"memory": "512m", "cpu-quota": "10000"}``) -> linux.resources."""
    resources = {}
    for flag, text in flags.items():
        if text is None:
            continue
        if flag not in _FLAGS:
            raise SpecError("--" + flag, "not an update flag")
        section, key, parse = _FLAGS[flag]
        resources.setdefault(section, {})[key] = _parse_flag(parse, text, "--" + flag)
    return resources


def _parse_flag(parse, text, field):
    if parse is parse_size:
        return parse_size(text, field)
    try:
        return parse(str(text).strip())
    except ValueError:
        raise SpecError(field, f"must be an integer, not {_show(text)}") from None
