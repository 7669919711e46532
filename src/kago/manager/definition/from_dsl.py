"""A definition file's ``Container(...)`` -> a Definition; errors name the file and line.

    definition = from_container(container, source_dir)

``container`` is define/dsl.py's Container: its fields are what the file wrote (a keyword of
the call, or an attribute set later: ``web.memory = "64m"``). Each field is parsed by the same
parsers as ``kago run``'s flags (values.py); a bad one becomes a DefinitionError naming the
file and the line that set it (the ``Container(...)`` call for its keywords). Relative paths
(``rootfs=``, ``bind()`` sources) are relative to the file's directory.
"""

import contextlib
from dataclasses import replace

from kago.manager.definition import docker_values as DV
from kago.manager.definition import values as V
from kago.manager.definition.model import Definition, check
from kago.manager.definition.parts import Capabilities, IdMapping, Limits, Mount
from kago.manager.definition.resources import cgroup, rlimits
from kago.manager.errors import BadValue, DefinitionError

NAMES = {"image": "image", "ports": "ports", "network": "network", "restart": "restart",
         "auto_remove": "restart", "userns": "ids", "gid_map": "gid_map"}
"""Definition fields -> the Container field a rule across fields blames."""


def from_container(c, source_dir):
    """The Definition of Container ``c`` of a file in ``source_dir``."""
    at = _Blame(c)
    fields = {}
    for field, parse in _PARSERS.items():
        with at(field):
            fields[field] = parse(getattr(c, field), field, source_dir)
    with at("name"):
        name = V.name(c.name, "name")
    with at("rootfs"):
        if bool(c.image) == bool(c.rootfs):
            raise BadValue("image", "give exactly one of image= and rootfs=")
        rootfs = V.absolute(c.rootfs, "rootfs", base=source_dir) if c.rootfs else ""
    with at("network"):
        network = V.network(c.network, "network", c.ip, getattr(c, "aliases", ()))
    limits = {}
    for field, parse in _LIMITS.items():
        with at(field):
            value = getattr(c, field)
            if value is not None:
                limits[_LIMIT_NAMES.get(field, field)] = parse(value, field)
    with at("cgroup"):
        limits["cgroup"] = cgroup(c.cgroup, "cgroup")
    d = Definition(name=name, image=str(c.image or ""), rootfs=rootfs,
                   hostname=str(c.hostname or c.name), network=network, ids=_ids(c, at),
                   limits=Limits(**limits), capabilities=_capabilities(c, at), **fields)
    with at(None):
        return check(d, NAMES)


class _Blame:
    """``with at(field):`` turns a BadValue into a DefinitionError at ``field``'s line
    (``at(None)``: at the line of the field the error names)."""

    def __init__(self, c):
        self.c = c

    @contextlib.contextmanager
    def __call__(self, field):
        try:
            yield
        except BadValue as e:
            c = self.c
            line = c.line_of(field or e.field) if hasattr(c, "line_of") else c.line
            raise DefinitionError(c.file, line, f"container {c.name}: {e}") from None


def _ids(c, at):
    with at("ids"):
        if c.ids is None:
            ids = IdMapping()
        elif isinstance(c.ids, str) and c.ids.startswith("auto"):
            ids = V.userns(c.ids, "ids")
        else:
            ids = IdMapping(uid_map=V.id_map(c.ids, "ids"))
    with at("uid_map"):
        if c.uid_map is not None:
            ids = replace(ids, uid_map=V.id_map(c.uid_map, "uid_map"))
    with at("gid_map"):
        if c.gid_map is not None:
            ids = replace(ids, gid_map=V.id_map(c.gid_map, "gid_map"))
    return ids


def _capabilities(c, at):
    """cap_add/cap_drop as docker's flags, or ``capabilities``: exactly this set."""
    if c.capabilities is not None:
        with at("capabilities"):
            return Capabilities(tuple(V.cap_name(x, "capabilities") for x in c.capabilities),
                                ("ALL",))
    with at("cap_add"):
        add = tuple(V.cap_name(x, "cap_add") for x in c.cap_add or ())
    with at("cap_drop"):
        drop = tuple(V.cap_name(x, "cap_drop") for x in c.cap_drop or ())
    return Capabilities(add, drop)


def _mount(m, field, source_dir):
    if isinstance(m, dict):
        if m.get("type") not in ("tmpfs", "bind", "volume"):
            raise BadValue(field, "use tmpfs(...) or bind(...)")
        m = Mount(m["type"], str(m.get("destination", "")), str(m.get("source", "")),
                  bool(m.get("readonly")), tuple(m.get("options") or ()))
    if not isinstance(m, Mount):
        raise BadValue(field, "use tmpfs(...) or bind(...)")
    dest = V.destination(m.destination, field)
    if m.kind == "bind":
        return replace(m, destination=dest, source=V.absolute(m.source, field, base=source_dir))
    if m.kind == "volume":
        return replace(m, destination=dest, source=V.name(m.source, field))
    return replace(m, destination=dest)


def _env(value, field):
    if isinstance(value, dict):
        value = [f"{k}={v}" for k, v in value.items()]
    return V.env(value, field, environ={})


def _each(parse):
    return lambda items, field, base: tuple(parse(x, f"{field}[{i}]", base)
                                            for i, x in enumerate(items or ()))


def _plain(parse):
    return lambda value, field, _base: parse(value, field)


def _maybe(parse, empty=""):
    return lambda value, field, _base: empty if value in (None, "") else parse(value, field)


_PARSERS = {
    "command": _plain(V.argv),
    "entrypoint": _plain(V.argv),
    "env": _plain(_env),
    "workdir": _maybe(lambda v, f: str(v)),
    "user": _maybe(lambda v, f: str(v)),
    "read_only": _plain(lambda v, f: bool(v)),
    "mounts": _each(_mount),
    "ports": _each(lambda p, f, _base: V.port(p, f)),
    "network_etc": _plain(lambda v, f: V.choice(v, f, ("own", "host"))),
    "namespaces": _plain(V.namespaces),
    "independent": _plain(V.independent),
    "rlimits": _plain(rlimits),
    "no_new_privileges": _plain(lambda v, f: bool(v)),
    "seccomp": _plain(lambda v, f: V.choice(v, f, ("default", "unconfined"))),
    "sysctls": _plain(lambda v, f: V.pairs(v)),
    "restart": _plain(V.restart),
    "stop_signal": _maybe(V.stop_signal),
    "stop_timeout": _maybe(V.count, None),
    "labels": _plain(lambda v, f: V.pairs(v)),
    "log": _plain(V.log),
    "cgroup_parent": _maybe(DV.cgroup_parent),
    "cgroup_layout": _plain(lambda v, f: V.choice(v, f, ("id", "name"))),
}
_PARSERS["healthcheck"] = _plain(lambda v, f: _health().healthcheck(v, f))
_PARSERS["init"] = _plain(lambda v, f: bool(v))


def _health():
    from kago.manager.definition import health
    return health

_LIMITS = {"memory": V.size, "memory_swap": V.swap, "cpus": V.cpus,
           "cpu_shares": V.count, "cpuset_cpus": lambda v, f: str(v),
           "pids_limit": lambda v, f: V.count(v, f, minimum=-1)}
_LIMIT_NAMES = {"pids_limit": "pids"}
