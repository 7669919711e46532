"""A rootless manager's cgroups: the cgroup v2 subtree the host delegates to the user, where
its containers' cgroups go, and which controllers they may use.

Delegated means (systemd's ``Delegate=yes`` makes it so): a pure cgroup v2 host, and the
*parent* of the command's own cgroup writable by the user (the directory, to make cgroups in
it, and its cgroup.procs, to move a container's init from the command's cgroup into one). The
command, and the holder and supervisor that commands fork, stay in their leaf; each
container's cgroup is made beside it, ``<parent>/kago-<id>`` (a definition's cgroup parent
below ``<parent>`` too), runc's rootless cgroupfs default: ``<parent>`` then holds no process
of its own and may hand controllers down (cgroup v2's no-internal-processes rule).

A container may use the controllers ``<parent>`` is handed (its cgroup.controllers; the
runtime enables them in ``<parent>``'s subtree_control as a limit needs one). A limit that
needs another is dropped from the spec with one warning naming the controllers.
"""

import os
from typing import NamedTuple

V2 = "/sys/fs/cgroup"
_FIX = "run kago inside a delegated subtree (systemd Delegate=yes: systemd-run --user --scope)"


class Delegation(NamedTuple):
    """Where a rootless manager's containers get cgroups: ``path`` (from the cgroup2 root,
    "/user.slice/...") and ``dir`` (under the mount), with ``controllers``; or ``why`` not."""

    path: str | None
    dir: str | None
    controllers: tuple
    why: str = ""


def find(root=V2, proc="/proc/self/cgroup"):
    """The Delegation of the calling process's cgroup (see the module docstring)."""
    if not os.path.exists(os.path.join(root, "cgroup.controllers")):
        return _none("cgroup v2 is not the host's only hierarchy (hybrid or v1 cgroups), and "
                     "a user can be delegated cgroup v2 controllers only on a pure v2 host")
    try:
        with open(proc) as f:
            own = next((line[3:].strip() for line in f if line.startswith("0::")), None)
    except OSError as e:
        return _none(f"{proc}: {e.strerror}")
    if own is None:
        return _none(f"{proc} names no cgroup v2 cgroup")
    parent = os.path.dirname(own.rstrip("/")) or "/"
    where = os.path.join(root, parent.lstrip("/")).rstrip("/")
    if parent == "/" or not (os.access(where, os.W_OK)
                             and os.access(os.path.join(where, "cgroup.procs"), os.W_OK)):
        return _none(f"kago's cgroup {own} is not in a subtree the user may write ({parent} "
                     f"is not): {_FIX}")
    try:
        with open(os.path.join(where, "cgroup.controllers")) as f:
            controllers = tuple(sorted(f.read().split()))
    except OSError as e:
        return _none(f"{where}/cgroup.controllers: {e.strerror}")
    return Delegation(parent, where, controllers)


def _none(why):
    return Delegation(None, None, (), f"this host delegates no cgroup v2 subtree to the user: "
                                      f"{why}")


def place(delegation, cgroups_path):
    """The container's cgroups path (absolute, "/parent/..." from the cgroup2 root) inside the
    delegated subtree; unchanged where none is delegated."""
    if delegation.path is None:
        return cgroups_path
    return delegation.path.rstrip("/") + "/" + cgroups_path.lstrip("/")


# linux.resources fields -> the cgroup v2 controller each needs (devices: the user namespace's
# own device rules apply instead; network: no v2 controller)
_CPU = {"shares", "quota", "period", "realtimeRuntime", "realtimePeriod", "idle", "burst"}
_CPUSET = {"cpus", "mems"}
_FIELDS = {"memory": "memory", "pids": "pids", "blockIO": "io", "hugepageLimits": "hugetlb",
           "rdma": "rdma"}


def needs(resources):
    """{controller: [what of ``resources`` needs it]} for the limits a spec asks for."""
    found = {}
    for key, value in (resources or {}).items():
        if value in (None, {}, []):
            continue
        if key in _FIELDS:
            found.setdefault(_FIELDS[key], []).append(key)
        elif key == "cpu":
            for field, v in value.items():
                if v not in (None, ""):
                    name = "cpuset" if field in _CPUSET else "cpu" if field in _CPU else None
                    if name:
                        found.setdefault(name, []).append(f"cpu.{field}")
        elif key == "unified":
            for file in value:
                name = file.split(".", 1)[0]
                if name not in ("cgroup", "devices"):
                    found.setdefault(name, []).append(file)
    return found


def drop_unavailable(resources, controllers):
    """``resources`` without what needs a controller not in ``controllers``; (kept, the
    sorted names of the missing controllers)."""
    wanted = needs(resources)
    missing = sorted(set(wanted) - set(controllers))
    if not missing:
        return resources, []
    kept = {k: (dict(v) if isinstance(v, dict) else v) for k, v in resources.items()}
    for name in missing:
        for item in wanted[name]:
            top, _, field = item.partition(".")
            if top == "cpu" and field:
                kept["cpu"].pop(field, None)
            elif top in kept and top != "unified" and not field:
                kept.pop(top)
            else:
                kept.get("unified", {}).pop(item, None)
    return {k: v for k, v in kept.items() if v not in ({}, [])}, missing


def describe(delegation):
    """``kago info``'s "Cgroup Controllers" value."""
    if delegation.path is None:
        return f"none ({delegation.why})"
    names = " ".join(delegation.controllers) or "none"
    return f"{names} (delegated at {delegation.dir})"
