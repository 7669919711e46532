"""The Manager base: one container cgroup as a directory in each hierarchy, and cgroupfs file I/O.

What is the same on v1 and v2 lives here (mkdir -p with rollback, cgroup.procs, rmdir with
retry, the kill algorithm); v1.py, v2.py and hybrid.py only say which directory answers pids(),
how to freeze, and whether ``cgroup.kill`` exists.

Kernel docs: Documentation/admin-guide/cgroup-v1/cgroups.rst (section 2: cgroup.procs, rmdir
fails with EBUSY while tasks or child cgroups remain) and Documentation/admin-guide/cgroup-v2.rst
(cgroup.procs, cgroup.kill, "Removing a cgroup is ... only if it has no children and is not
populated").
"""

import errno
import os
import time

from kago.errors import CgroupError

from . import ledger
from .files import _strerror, read_text, write_text  # noqa: F401 - v1/v2 take them here
from .mountinfo import UNIFIED

# signal.SIGKILL without importing signal, which pulls in enum (~5 ms of start-up).
SIGKILL = 9

_CLASSES = {}  # mode -> Manager subclass, filled by __init_subclass__


def read_pids(procs_file):
    """The pids listed in one cgroup.procs; [] when the cgroup has gone (a racing rmdir)."""
    try:
        text = read_text(procs_file)
    except CgroupError as e:
        if e.errno in (errno.ENOENT, errno.ENODEV):
            return []
        raise
    return [int(line) for line in text.split()]


def walk_pids(top):
    """Every pid in ``top`` and its child cgroups, deduplicated and sorted."""
    found = set(read_pids(top + "/cgroup.procs"))
    try:
        entries = list(os.scandir(top))
    except (FileNotFoundError, NotADirectoryError):
        return sorted(found)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            found.update(walk_pids(entry.path))
    return sorted(found)


def mkdir_p(path, made, timeout=2.0):
    """mkdir -p ``path``, appending each directory this call created to ``made``, parents first.

    A shared parent (``/kago``) is removed by another container's ``delete`` when it is empty;
    if that happens between our parent's mkdir and the child's, the child's mkdir fails with
    ENOENT. Then the chain is made again from where it broke: once our leaf exists, the parent
    is busy and cannot go away.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            _mkdir_chain(path, made)
            return
        except FileNotFoundError:
            if time.monotonic() > deadline:
                break
    raise CgroupError(path, "cannot create: a parent cgroup keeps being removed", errno.ENOENT)


def _mkdir_chain(path, made):
    try:
        os.mkdir(path, 0o755)  # the usual case, one system call: the parent is there
        made.append(path)
        return
    except OSError:
        pass  # the walk below tells which of the cases it is, and what to say
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            if os.path.isdir(d):
                continue  # another create() made it just now: it is not ours to remove
            raise CgroupError(d, "cannot create: a file of that name exists", errno.EEXIST)
        except FileNotFoundError:
            raise
        except OSError as e:
            raise CgroupError(d, f"cannot create: {_strerror(e.errno)}", e.errno) from e
        if d not in made:
            made.append(d)


def _depth(path):
    return path.count("/")


def _busy_error(path, err):
    """Why rmdir(``path``) still fails: remaining processes are the answer the user needs."""
    if err != errno.EBUSY:
        return CgroupError(path, f"cannot remove: {_strerror(err)}", err)
    pids = walk_pids(path)
    if pids:
        shown = " ".join(str(p) for p in pids[:8]) + (" ..." if len(pids) > 8 else "")
        return CgroupError(path, f"cannot remove: {len(pids)} processes remain ({shown})", err)
    children = _subdirs(path)
    if children:
        return CgroupError(path, f"cannot remove: child cgroups remain ({children[0]})", err)
    return CgroupError(path, f"cannot remove: {_strerror(err)}", err)


def rmdir_leaf(path, deadline):
    """rmdir a container cgroup, retrying EBUSY until ``deadline``: killed tasks leave late."""
    delay = 0.001
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise _busy_error(path, e.errno) from e
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _subdirs(path):
    try:
        return [e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except (FileNotFoundError, NotADirectoryError):
        return []


def rmdir_tree(path, deadline):
    """rmdir a container cgroup and the cgroups the container made inside it, deepest first.

    Those children (systemd in a container, a nested runtime) belong to the container, and the
    kernel refuses to remove a cgroup that still has any (as runc's RemovePath does).
    """
    try:
        os.rmdir(path)  # the usual case, one system call: no child cgroups, no tasks left
        return
    except FileNotFoundError:
        return
    except OSError as e:
        # cgroupfs says EBUSY for child cgroups or tasks not gone yet (other fs: ENOTEMPTY)
        if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
            raise _busy_error(path, e.errno) from e
    for sub in _subdirs(path):
        rmdir_tree(sub, deadline)
    rmdir_leaf(path, deadline)


def rmdir_parent(path):
    """rmdir a parent we made (``/kago``); still holding other containers' cgroups is fine."""
    try:
        os.rmdir(path)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY):
            raise CgroupError(path, f"cannot remove: {_strerror(e.errno)}", e.errno) from e


def _below(unified, path):
    """The directory of cgroup2 ``path`` (as /proc/PID/cgroup says it) if it is ``unified``
    or inside it; None otherwise. The mount point is what ``unified`` has before a tail that
    ``path`` starts with, so the result is always ``unified`` or below it."""
    if ".." in path.split("/"):
        return None
    cut = unified.rfind("/")
    while cut > 0:
        mount, rel = unified[:cut], unified[cut:]
        if path == rel or path.startswith(rel + "/"):
            return mount + path if os.path.isdir(mount + path) else None
        cut = unified.rfind("/", 0, cut)
    return None


def _check_record_dir(path):
    if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/"):
        raise ValueError(f"{path!r} is not an absolute path free of '..'")
    return path


class Manager:
    """One container's cgroup: ``dirs`` maps hierarchy name -> its absolute directory.

    ``path`` is the cgroups path it was opened with; ``created`` the directories this manager
    (or the one whose record it was rebuilt from) made, which are the only ones destroy() removes.
    """

    __slots__ = ("path", "dirs", "created")
    mode = None

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _CLASSES[cls.mode] = cls

    def __init__(self, path, dirs, created=()):
        self.path = path
        self.dirs = dict(dirs)
        self.created = list(created)

    def __repr__(self):
        return f"{type(self).__name__}({self.path!r})"

    # --- where ---------------------------------------------------------------------------------

    def paths(self):
        """hierarchy name -> absolute directory of the container cgroup."""
        return dict(self.dirs)

    def path_in(self, hierarchy):
        """The directory in ``hierarchy`` (a name like ``cpu,cpuacct`` or one controller)."""
        d = self._find(hierarchy)
        if d is None:
            raise CgroupError(self.path, f"no {hierarchy} hierarchy is mounted", errno.ENOENT)
        return d

    def _find(self, hierarchy):
        for name, d in self.dirs.items():
            if name == hierarchy or hierarchy in name.split(","):
                return d
        return None

    def exists(self):
        """True while any of its directories exists (a half-removed set still needs destroy())."""
        return any(os.path.isdir(d) for d in self.dirs.values())

    # --- lifecycle -----------------------------------------------------------------------------

    def create(self):
        """mkdir -p in every hierarchy; on failure remove what this call made, then raise.

        A container directory that was already there (an empty cgroup another tool left at
        the path: check it with check_reusable() first) is the container's from now on, as
        with runc: destroy() removes it. Parents that were there are never removed.
        """
        made = []
        try:
            for name, d in self.dirs.items():
                mkdir_p(d, made)
                self._prepare(name, d)
        except BaseException as e:
            self._rollback(made, e)
            raise
        adopted = [d for d in self.dirs.values() if d not in made]
        self.created += [d for d in made + adopted if d not in self.created]
        leaves = set(self.dirs.values())
        for d in made:
            if d not in leaves:
                ledger.note(d)  # whichever container leaves it empty removes it

    def check_reusable(self):
        """Whether a cgroup found at this path may become the container's (runc's checks):
        one with processes in it (in any hierarchy, child cgroups included) is refused, as
        runc 1.2 does (1.1 warned and went on), and so is a frozen one."""
        found = set()
        for d in self.dirs.values():
            found.update(walk_pids(d))
        if found:
            raise CgroupError(self.path, f"container's cgroup is not empty: {len(found)} "
                              "process(es) found", errno.EBUSY)
        try:
            frozen = self.can_freeze() and self.frozen()
        except CgroupError as e:
            if e.errno not in (errno.ENOENT, errno.ENODEV):
                raise
            frozen = False  # no directory in the freezer's hierarchy yet: nothing frozen
        if frozen:
            raise CgroupError(self.path, "container's cgroup unexpectedly frozen", errno.EBUSY)

    def _prepare(self, name, d):
        """Make a new directory joinable (v1 cpuset); nothing to do by default."""

    def _rollback(self, made, cause):
        for d in sorted(made, key=_depth, reverse=True):
            try:
                os.rmdir(d)
            except OSError as e:
                if e.errno != errno.ENOENT:
                    cause.add_note(f"cleanup: cannot remove {d}: {_strerror(e.errno)}")

    def add(self, pid):
        """Move process ``pid`` (all its threads) into the container cgroup in every hierarchy.

        Not atomic across v1 hierarchies: a child forked between two writes stays in the
        parent's cgroups for the rest. Add a process before it can fork (init waits for us).
        """
        for d in self.dirs.values():
            write_text(d + "/cgroup.procs", str(pid), f"cannot add pid {pid}")

    def enter_self(self):
        """Move the calling process into every v1 hierarchy (the cgroup2 tree is not touched).

        The caller must be single-threaded: writing "0" to a v1 ``tasks`` file moves just the
        calling thread and skips the kernel's global cgroup_threadgroup_rwsem, whose first
        writer waits a whole RCU grace period (8-17 ms here, see docs/latency.md). The cgroup2
        tree has no such path: the process is created there with clone3(CLONE_INTO_CGROUP)
        (``unified_fd``), or moves with ``enter_unified_self``.
        """
        for name, d in self.dirs.items():
            if name != UNIFIED:
                write_text(d + "/tasks", "0", "cannot join")

    def unified_fd(self):
        """An O_RDONLY fd of the cgroup2 directory for clone3(CLONE_INTO_CGROUP), or None."""
        unified = self.dirs.get(UNIFIED)
        if unified is None:
            return None
        try:
            return os.open(unified, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise CgroupError(unified, f"cannot open: {_strerror(e.errno)}", e.errno) from e

    def for_exec(self, init_pid):
        """The manager an exec'd process joins: this one, unless the container's cgroup2
        directory hands controllers to child cgroups (a systemd or a nested runtime inside
        moved the init into one): no process may join such a cgroup (EBUSY, "no internal
        processes"), so, as runc does, the exec joins the init's own cgroup below it."""
        unified = self.dirs.get(UNIFIED)
        if unified is None:
            return self
        try:
            if not read_text(unified + "/cgroup.subtree_control").split():
                return self
            own = read_text(f"/proc/{init_pid}/cgroup")
        except CgroupError:
            return self  # gone or unreadable: the join itself will say what is wrong
        path = next((line[3:] for line in own.splitlines() if line.startswith("0::")), None)
        target = _below(unified, path) if path else None
        if target is None:
            return self
        dirs = dict(self.dirs)
        dirs[UNIFIED] = target
        return type(self)(self.path, dirs, self.created)

    def enter_unified_self(self):
        """Fallback where clone3(CLONE_INTO_CGROUP) is missing: move ourselves (slow path)."""
        unified = self.dirs.get(UNIFIED)
        if unified is not None:
            write_text(unified + "/cgroup.procs", "0", "cannot join")

    def destroy(self, timeout=2.0):
        """rmdir what create() made, deepest first, in every hierarchy; see rmdir_tree()."""
        deadline = time.monotonic() + timeout
        leaves = set(self.dirs.values())
        levels = self.path.strip("/").count("/")
        # parents another container made, noted host-wide: the last one out removes them
        shared = {a for d in leaves & set(self.created)
                  for a in ledger.ancestors(d, levels) if ledger.made(a)} if levels else set()
        errors = []
        left = set()
        for d in sorted(set(self.created) | shared, key=_depth, reverse=True):
            try:
                if d in leaves:
                    rmdir_tree(d, deadline)
                else:
                    rmdir_parent(d)
                    if os.path.isdir(d):
                        left.add(d)  # still holds other containers' cgroups
                    else:
                        ledger.forget(d)
            except CgroupError as e:
                errors.append(e)
                left.add(d)
        self.created = [d for d in self.created if d in left]
        if errors:
            for e in errors[1:]:
                errors[0].add_note(str(e))
            raise errors[0]

    # --- processes -----------------------------------------------------------------------------

    def pids(self):
        """Every process in the container cgroup and its child cgroups, sorted."""
        return walk_pids(self._pids_dir())

    def _pids_dir(self):
        raise NotImplementedError

    def kill_all(self, sig=SIGKILL):
        """Signal every process; SIGKILL via cgroup.kill if the kernel has it, else by pid."""
        sig = int(sig)
        if sig != SIGKILL:
            self._signal_each(sig)  # a paused container gets it on resume, as with runc
            return
        kill_file = self._kill_file()
        if kill_file and os.path.exists(kill_file):
            self._kill_by_file(kill_file)
        else:
            self._kill_frozen(sig)

    def _kill_by_file(self, kill_file):
        # cgroup.kill reaches tasks the v2 freezer holds, but not those in a v1 freezer's
        # refrigerator (hybrid): a paused container is thawed so the SIGKILLs land.
        paused = self.can_freeze() and self.frozen()
        write_text(kill_file, "1", "cannot kill")
        if paused:
            self.thaw()

    def _kill_frozen(self, sig):
        """Freeze, SIGKILL each pid, thaw: a frozen cgroup cannot fork new pids behind our list."""
        freezing = self.can_freeze()
        if freezing:
            try:
                self.freeze()
            except CgroupError:
                pass  # as runc: a cgroup that will not freeze is still killed, only less surely
        try:
            self._signal_each(sig)
        finally:
            if freezing:
                self.thaw()  # the SIGKILLs queued on frozen tasks are delivered now

    def _signal_each(self, sig):
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass  # exited since pids() read it

    def _kill_file(self):
        return None

    # --- freezer -------------------------------------------------------------------------------

    def can_freeze(self):
        raise NotImplementedError

    def freeze(self, timeout=2.0):
        raise NotImplementedError

    def thaw(self):
        raise NotImplementedError

    def frozen(self):
        raise NotImplementedError

    # --- limits, stats, OOM (limits.py, stats.py, oom.py; imported when first used) -----------

    def apply(self, resources):
        """Write a spec's ``linux.resources``: every write checked first, then made in order.

        Call it after create() and before the first add(): cpuset and real-time bandwidth must
        be in place before tasks join. A refused write is a CgroupError naming the directory,
        file, value and errno (``.field`` names the spec field); something this host cannot do
        is a SpecError naming the field. Returns the writes made.
        """
        from . import limits
        return limits.apply(self, resources)

    def update(self, resources):
        """apply() for a running container, as ``runc update``: devices are left as they are,
        and ``memory.checkBeforeUpdate`` refuses a limit below the current usage."""
        from . import limits
        return limits.apply(self, resources, updating=True)

    def available(self):
        """What plan_writes() needs to know about this host: controllers and optional files."""
        from . import limits
        return limits.available(self)

    def stats(self):
        """The ``data`` of runc's ``events --stats`` (cpu, memory, pids, blkio, ...; PSI in
        cpu/memory/blkio ``psi`` where there is a cgroup2 directory)."""
        from . import stats
        return stats.collect(self)

    def brief_reader(self):
        """A BriefReader of this cgroup: docker stats' fields, its files kept open."""
        from .brief import BriefReader
        return BriefReader(self)

    def pressure(self):
        """PSI of the container: {"cpu"|"memory"|"io": {"some"|"full": {"avg10", "avg60",
        "avg300", "total"}}}, from its cgroup2 directory (on hybrid: the unified tree)."""
        unified = self.dirs.get(UNIFIED)
        if unified is None:
            raise CgroupError(self.path, "no cgroup2 directory: PSI is per cgroup only on "
                              "cgroup2", errno.ENOENT)
        from . import stats
        return stats.pressure_of(unified)

    def oom_count(self):
        """How many of the container's processes the OOM killer has killed."""
        from . import oom
        return oom.oom_count(self)

    def oom_watch(self):
        """An oom.OomWatch: ``wait(timeout)`` -> OOM kills since the last call; close() it."""
        from . import oom
        return oom.OomWatch(self)

    # --- records -------------------------------------------------------------------------------

    def to_record(self):
        """Plain str/list values, so a later command can rebuild this manager (JSON-safe)."""
        return {"mode": self.mode, "path": self.path, "hierarchies": list(self.dirs),
                "dirs": list(self.dirs.values()), "created": list(self.created)}

    @classmethod
    def from_record(cls, record):
        """The manager to_record() described, of the class its mode names."""
        try:
            kind = _CLASSES[record["mode"]]
            dirs = dict(zip(record["hierarchies"], map(_check_record_dir, record["dirs"]),
                            strict=True))
            created = [_check_record_dir(d) for d in record["created"]]
            path = record["path"]
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            where = record.get("path") if isinstance(record, dict) else None
            raise CgroupError(str(where), f"bad cgroup record: {e}", errno.EINVAL) from e
        _check_created(path, dirs, created)
        return kind(path, dirs, created)


def _check_created(path, dirs, created):
    """destroy() removes ``created``: each must be one of ``dirs`` or an ancestor of one."""
    for c in created:
        if not any(d == c or d.startswith(c + "/") for d in dirs.values()):
            raise CgroupError(path, f"bad cgroup record: {c} is not on a cgroup path",
                              errno.EINVAL)
