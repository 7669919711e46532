"""linux.resources.unified: raw cgroup2 keys ("memory.high": "1G"), written as given.

Each key goes to the cgroup2 directory where its controller is usable (``cgroup.*`` is the
core, always there); otherwise, on v1 and hybrid hosts, unified_v1 translates it to v1 files
(loaded only then), and on v2 it is an error.
"""

from kago.errors import SpecError

from . import UNIFIED, Write, _str


def _unified_key(key, value, field):
    if type(key) is not str or "/" in key or "." not in key.strip(".") or key != key.strip():
        raise SpecError(field, "unified keys must be file names like memory.high")
    return key.split(".", 1)[0], _str(value, field)


def _unified(unified, field, host, res):
    """Each key raw to the cgroup2 directory where its controller is usable, else to v1."""
    out = []
    v1_keys = {}
    for key, value in unified.items():
        where = f"{field}.{key}"
        controller, value = _unified_key(key, value, where)
        if host.version != "v1" and (controller == "cgroup" or controller in host.v2):
            out.append(Write(UNIFIED, key, value, where))
        elif host.version == "v2":
            raise SpecError(where, f"the {controller} controller is not available on this host")
        else:
            v1_keys[key] = value
    if v1_keys:
        from .unified_v1 import unified_to_v1
        out += unified_to_v1(v1_keys, field, host, res)
    return out
