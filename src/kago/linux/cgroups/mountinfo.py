"""Where the cgroup hierarchies are: from mountinfo (kago.host.mountinfo parses it) and
/proc/PID/cgroup, pure and injectable.

Kernel docs: Documentation/filesystems/proc.rst (3.5 /proc/<pid>/mountinfo),
Documentation/admin-guide/cgroup-v1/cgroups.rst (one hierarchy per mount, its controllers named
in the super options: ``rw,cpu,cpuacct``, ``rw,xattr,name=systemd``) and
Documentation/admin-guide/cgroup-v2.rst (the single ``cgroup2`` hierarchy; ``0::/path`` in
/proc/PID/cgroup).

A hierarchy is named the way /proc/PID/cgroup names it, with its controllers sorted: ``memory``,
``cpu,cpuacct``, ``name=systemd``; the cgroup2 tree is named ``unified``. The mode is ``v1``
(only v1 hierarchies), ``v2`` (only cgroup2, or cgroup2 plus named-only v1 trees) or ``hybrid``
(v1 controllers plus a cgroup2 tree, systemd's legacy layout).
"""

import errno

from kago.errors import CgroupError
from kago.host import mountinfo

from .files import read_text

UNIFIED = "unified"

# Super options a v1 cgroup mount may carry that are not controllers
# (kernel/cgroup/cgroup-v1.c, cgroup1_parse_param).
_V1_FLAGS = frozenset(("rw", "ro", "none", "all", "noprefix", "clone_children", "xattr",
                       "cpuset_v2_mode", "favordynmods"))


class Hierarchy:
    """One mounted hierarchy: ``root`` is the cgroup the mount shows at ``mountpoint``."""

    __slots__ = ("name", "mountpoint", "root", "version")

    def __init__(self, name, mountpoint, root="/", version=1):
        self.name = name
        self.mountpoint = mountpoint
        self.root = root
        self.version = version

    @property
    def controllers(self):
        if self.version == 2:
            return ()
        return tuple(c for c in self.name.split(",") if not c.startswith("name="))

    def __repr__(self):
        return f"Hierarchy({self.name!r}, {self.mountpoint!r}, root={self.root!r})"


class Layout:
    """The mounted hierarchies: ``v1`` (list of Hierarchy), ``unified`` (Hierarchy or None)."""

    __slots__ = ("mode", "v1", "unified")

    def __init__(self, v1, unified):
        self.v1 = list(v1)
        self.unified = unified
        self.mode = _mode_of(self.v1, unified)
        if self.mode == "v2":
            self.v1 = []  # named-only v1 trees on a v2 host are someone else's (old containers)

    @property
    def hierarchies(self):
        """Every hierarchy a container's cgroup spans: the v1 ones, then the cgroup2 tree."""
        return self.v1 + ([self.unified] if self.unified else [])

    def find(self, name):
        """The hierarchy called ``name``, or carrying controller ``name``; None if absent."""
        for h in self.hierarchies:
            if h.name == name or name in h.controllers:
                return h
        return None

    def resolve(self, cgroups_path, own=None):
        """name -> absolute directory of ``cgroups_path`` in every hierarchy.

        An absolute path hangs from each mount's top; a relative one from the caller's own
        cgroup, ``own`` being parse_proc_cgroup()'s result, as runc's cgroupfs drivers do: in
        each v1 hierarchy (and the cgroup2 tree of a hybrid host) from the caller's cgroup
        itself; on a pure v2 host from its parent (runc's fs2 defaultDirPath: the caller's own
        cgroup holds processes, so its children could be given no controller).
        """
        parts = split_path(cgroups_path)
        if cgroups_path.startswith("/"):
            return {h.name: _join(h.mountpoint, *parts) for h in self.hierarchies}
        if own is None:
            raise CgroupError(cgroups_path, "a relative cgroups path needs the caller's cgroups")
        return {h.name: _join(_own_dir(h, own, parent=self.mode == "v2"), *parts)
                for h in self.hierarchies}

    def own_dirs(self, own):
        """name -> the caller's own cgroup directory in every hierarchy (``own``:
        parse_proc_cgroup()'s result); hierarchies it has no visible cgroup in are left out."""
        found = {}
        for h in self.hierarchies:
            try:
                found[h.name] = _own_dir(h, own)
            except CgroupError:
                continue
        return found

    def __repr__(self):
        return f"Layout({self.mode!r}, v1={self.v1!r}, unified={self.unified!r})"


def _mode_of(v1, unified):
    has_controllers = any(h.controllers for h in v1)
    if unified is not None and not has_controllers:
        return "v2"
    if not v1:
        raise CgroupError("/proc/self/mountinfo", "no cgroup hierarchy is mounted", errno.ENOENT)
    return "hybrid" if unified is not None else "v1"


def _own_dir(h, own, parent=False):
    """The caller's cgroup in ``h`` (``parent``: its parent, never above the mount's top) as a
    directory under its mount (which may show a subtree)."""
    cgroup = own.get(h.name)
    if cgroup is None:
        raise CgroupError(h.mountpoint, f"the caller has no cgroup in hierarchy {h.name}")
    root = h.root.rstrip("/")
    if cgroup != root and not cgroup.startswith(root + "/"):
        raise CgroupError(h.mountpoint, f"cgroup {cgroup} is outside the mount's root {h.root}")
    below = cgroup[len(root):].rstrip("/")
    if parent:
        below = below.rpartition("/")[0]
    return _join(h.mountpoint, below)


def split_path(cgroups_path):
    """The components of a cgroups path; rejects ``..`` and paths that name no cgroup at all.

    "/" or "" would make the manager the root (or the caller's own) cgroup: kill_all() would
    then signal every process on the machine, so they are refused rather than "meaning" that.
    """
    if not isinstance(cgroups_path, str) or "\0" in cgroups_path:
        raise CgroupError(repr(cgroups_path), "cgroups path must be a string", errno.EINVAL)
    parts = [p for p in cgroups_path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise CgroupError(cgroups_path, "cgroups path must not contain '..' components",
                          errno.EINVAL)
    if not parts:
        raise CgroupError(cgroups_path or '""', "cgroups path names no cgroup", errno.EINVAL)
    return parts


def _join(base, *parts):
    path = base.rstrip("/")
    for part in parts:
        part = part.strip("/")
        if part:
            path += "/" + part
    return path or "/"


def _v1_name(super_options):
    """The hierarchy's name from its super options: its controllers and name=, sorted."""
    names = [o for o in super_options.split(",")
             if o.startswith("name=") or (o not in _V1_FLAGS and "=" not in o)]
    return ",".join(sorted(names))


def _keep(found, h):
    """A hierarchy may be mounted twice (bind mounts): keep the first that shows the whole tree."""
    old = found.get(h.name)
    if old is None or (old.root != "/" and h.root == "/"):
        found[h.name] = h


def parse_mountinfo(text):
    """The Layout described by mountinfo ``text``."""
    v1, unified = {}, {}
    for m in mountinfo.parse(text):
        if m.fstype == "cgroup2":
            _keep(unified, Hierarchy(UNIFIED, m.point, m.root, 2))
        elif m.fstype == "cgroup":
            _keep(v1, Hierarchy(_v1_name(m.super_options), m.point, m.root, 1))
    return Layout(v1.values(), unified.get(UNIFIED))


def detect(mountinfo_path="/proc/self/mountinfo"):
    """The Layout of this mount namespace (or of the mountinfo file given, for tests)."""
    return parse_mountinfo(read_text(mountinfo_path))


def parse_proc_cgroup(text):
    """hierarchy name -> cgroup path, from /proc/PID/cgroup text (``0::/p`` is ``unified``)."""
    own = {}
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        name = ",".join(sorted(fields[1].split(","))) if fields[1] else UNIFIED
        own[name] = fields[2].removesuffix(" (deleted)")
    return own


def read_proc_cgroup(pid=None, proc="/proc"):
    """parse_proc_cgroup() of a live process (``pid`` None: the caller)."""
    return parse_proc_cgroup(read_text(f"{proc}/{pid or 'self'}/cgroup"))
