"""linux.resources.unified: raw cgroup2 keys ("memory.high": "1G"), written as given.

Each key goes to the cgroup2 directory where its controller is usable; otherwise, on v1 and
hybrid hosts, unified_v1 translates it to v1 files (loaded only then), and on v2 it is an error.

As runc's fs2 driver (setUnified) and crun (write_unified_resources): a key is a file name
``controller.parameter``, never a path; the value is written line by line to one open file (io.max
and rdma.max take one device a write); unified keys come after every other section, so they
override it. As crun, an empty value is skipped (a zero-length write to memory.max would set it
to 0). Of the core's own files (``cgroup.*``, always there) only the resource limits are taken:
cgroup.max.depth, cgroup.max.descendants and cgroup.pressure. The others move or kill processes
or change the cgroup's type (cgroup.procs, .threads, .kill, .freeze, .type, .subtree_control),
which the runtime does itself at its own time: the key is refused, naming what to do instead.
"""

from kago.errors import SpecError

from .values import UNIFIED, Write, _show

# cgroup core files a spec may set: limits, not placement or state.
CORE_LIMITS = ("cgroup.max.depth", "cgroup.max.descendants", "cgroup.pressure")
_CORE_REFUSED = {
    "cgroup.procs": "processes join the container's cgroup as the runtime puts them there",
    "cgroup.threads": "processes join the container's cgroup as the runtime puts them there",
    "cgroup.kill": "use kago-oci kill --all",
    "cgroup.freeze": "use kago-oci pause and resume",
    "cgroup.subtree_control": "the container enables controllers for its own children: a "
                              "cgroup that hands them down cannot hold the container's init",
    "cgroup.type": "a threaded cgroup cannot hold the container's init",
}


def _unified_key(key, value, field):
    if type(key) is not str or "/" in key or "\0" in key or "." not in key.strip(".") \
            or key != key.strip() or " " in key:
        raise SpecError(field, "unified keys must be file names like memory.high "
                        "(controller.parameter)")
    if type(value) is not str or "\0" in value:
        raise SpecError(field, f"must be a string, not {_show(value)}")
    controller = key.split(".", 1)[0]
    if controller == "cgroup" and key not in CORE_LIMITS:
        why = _CORE_REFUSED.get(key, "it is not a cgroup core limit (those are "
                                + ", ".join(CORE_LIMITS) + ")")
        raise SpecError(field, f"{key} cannot be set through unified: {why}")
    return controller, value


def _unified(unified, field, host, res):
    """Each key raw to the cgroup2 directory where its controller is usable, else to v1."""
    out = []
    v1_keys = {}
    for key, value in unified.items():
        where = f"{field}.{key}"
        controller, value = _unified_key(key, value, where)
        if not value.strip():
            continue  # crun skips it; written, "" would mean 0 to memory.max
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
