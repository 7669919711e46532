"""Container records: one JSON file per container, written by tmp + rename, edited under flock.

The record is the manager's memory of a container: its Definition (``definition``: what
``run``/``create`` or a definition file asked for, as kago.manager.definition's JSON), where
its rootfs and network are, and the last known state (``state``: status, pid, start/finish
times, exit code, OOM kill, restarts, and whether the rootfs mount and network attachment are
held or were released at its end). Live status never comes from the record alone:
``engine.Manager.status`` asks the runtime and /proc, so a killed supervisor cannot make
``kago ps`` lie.

Two processes edit a record: the command line (create, stop, rm) and the supervisor (start,
exit, restart). Each edit is ``update(cid, fn)``: flock the container's directory, load, apply,
write to a temp file, fsync, rename over (journal.write_atomic). A new container's record is
written before its name is taken (journal.py), and the name file names/<name> is created
complete with link(2) (journal.create_exclusive): of racing ``kago run --name x`` exactly one
wins, and a name whose owner has a record -- complete or not -- is in use.
"""

import os
import time

from kago.jsonio import std_dumps, std_loads
from kago.manager import journal, perms
from kago.manager.errors import AmbiguousContainer, BadValue, NameInUse, NoSuchContainer
from kago.runtime.store import Lock

_ADJECTIVES = ("brave", "calm", "eager", "fond", "keen", "lucid", "merry", "nimble", "proud",
               "quiet", "sharp", "tidy", "vivid", "witty", "zesty", "bold", "crisp", "gentle")
_NOUNS = ("bamboo", "crane", "lantern", "maple", "otter", "pine", "river", "sparrow", "tatami",
          "willow", "heron", "koi", "lotus", "cedar", "badger", "comet", "ember", "fern")


def new_state():
    """A new container's state. Besides docker's fields:

    ``fresh``     its rootfs and network were set up for a start that has not ended yet
                  (create, or ``Manager.prepare``); cleared when an end is recorded
    ``released``  an end released them (``Manager.release``): the next start sets them up
    ``removing``  ``rm -f`` / ``kago down`` is removing it: its end releases nothing
    """
    return {"status": "created", "pid": 0, "pid_start": None, "started_at": 0.0,
            "finished_at": 0.0, "exit_code": None, "oom_killed": False, "restart_count": 0,
            "stopped_by_user": False, "error": "", "provisioned": False, "attached": False,
            "fresh": True, "released": False, "removing": False}


def check_name(name, field="--name"):
    """docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*; it also names files here, so no "/"."""
    from kago.manager.definition.values import name as checked
    return checked(name, field)


def random_name():
    import secrets  # here: it loads hashlib and random, which reading records never needs
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}_{secrets.token_hex(2)}"


class Records:
    __slots__ = ("paths",)

    def __init__(self, paths):
        self.paths = paths

    # --- ids and names
    @staticmethod
    def new_id():
        import secrets
        return secrets.token_hex(32)

    def reserve_name(self, name, cid):
        """Claim ``name`` for ``cid`` atomically; NameInUse names the current owner.

        The name file is linked into place complete. One whose owner has no record (removed
        by an older kago between its steps) is stale: it is taken over under names/.lock, so
        two takers cannot both succeed."""
        os.makedirs(self.paths.names(), 0o700, exist_ok=True)
        path = os.path.join(self.paths.names(), name)
        for _ in range(3):
            try:
                journal.create_exclusive(path, cid.encode())
                return
            except FileExistsError:
                pass
            with _NamesLock(self.paths.names()):
                owner = self._name_owner(name)
                if owner == cid:
                    return
                if owner and os.path.exists(self.paths.record(owner)):
                    raise NameInUse(name, owner) from None
                try:
                    os.unlink(path)  # stale: its owner is gone
                except FileNotFoundError:
                    pass
        raise NameInUse(name, self._name_owner(name) or "?")

    def release_name(self, name, cid):
        if self._name_owner(name) == cid:
            try:
                os.unlink(os.path.join(self.paths.names(), name))
            except FileNotFoundError:
                pass

    def _name_owner(self, name):
        try:
            with open(os.path.join(self.paths.names(), name)) as f:
                return f.read().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None

    # --- records
    def create(self, record):
        """A new container's directory with its record in it, appearing whole: made as
        containers/.new-<id>-<pid> and renamed into place (system prune removes one whose
        maker died before the rename)."""
        final = self.paths.container(record["id"])
        tmp = os.path.join(self.paths.containers(), f".new-{record['id']}-{os.getpid()}")
        perms.make_container_dir(self.paths, record["id"], tmp)
        try:
            _write_atomic(os.path.join(tmp, "container.json"), std_dumps(record).encode())
            os.rename(tmp, final)
        except BaseException:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def save(self, record, existing=False):
        """Write ``record``; with ``existing``, only into its directory as it is (NoSuchContainer
        if ``rm -f`` removed it meanwhile: a create under way must not bring it back)."""
        path = self.paths.record(record["id"])
        if existing:
            if not os.path.isdir(os.path.dirname(path)):
                raise NoSuchContainer(record["id"])
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        # no indent: json's C encoder (with indent it falls back to Python, ~8x slower)
        try:
            _write_atomic(path, std_dumps(record).encode())
        except FileNotFoundError:
            raise NoSuchContainer(record["id"]) from None

    def load(self, cid):
        try:
            with open(self.paths.record(cid), "rb") as f:
                return _current(std_loads(f.read()))
        except (FileNotFoundError, NotADirectoryError):
            raise NoSuchContainer(cid) from None
        except ValueError:
            raise NoSuchContainer(cid) from None  # half-written by a crash: treat as gone

    def ids(self):
        try:
            return sorted(n for n in os.listdir(self.paths.containers())
                          if not n.startswith("."))
        except FileNotFoundError:
            return []

    def all(self):
        """Every readable record, oldest first (docker's ps lists newest first: reverse it)."""
        out = []
        for cid in self.ids():
            try:
                out.append(self.load(cid))
            except NoSuchContainer:
                continue
        out.sort(key=lambda r: r.get("created", 0))
        return out

    def resolve(self, ref):
        """A record by full ID, name, or unique ID prefix (docker's lookup order)."""
        if not ref or "/" in ref or ref in (".", ".."):
            raise NoSuchContainer(ref)
        if len(ref) == 64 and os.path.exists(self.paths.record(ref)):
            return self.load(ref)
        owner = self._name_owner(ref)
        if owner and os.path.exists(self.paths.record(owner)):
            return self.load(owner)
        matches = [cid for cid in self.ids() if cid.startswith(ref.lower())]
        if len(matches) == 1:
            return self.load(matches[0])
        if len(matches) > 1:
            raise AmbiguousContainer(ref, matches)
        raise NoSuchContainer(ref)

    def update(self, cid, fn):
        """Load, ``fn(record)``, save: under the container's lock. Returns the record."""
        with self.lock(cid):
            record = self.load(cid)
            fn(record)
            self.save(record)
            return record

    def lock(self, cid):
        return _Lock(self.paths.container(cid), cid)

    def remove(self, cid):
        """The record, its name and its directory. Under the record's lock: an edit in
        progress (the supervisor's, a release's) ends first, and cannot write the record
        back into a directory removed under it."""
        import shutil
        try:
            with self.lock(cid):
                record = None
                try:
                    record = self.load(cid)
                except NoSuchContainer:
                    pass
                if record is not None:
                    self.release_name(record.get("name", ""), cid)
                shutil.rmtree(self.paths.container(cid), ignore_errors=True)
        except NoSuchContainer:
            return  # no directory: removed already


def _current(record):
    """A record in the current format. One written before the Definition holds a ``config``
    dict: it gets its Definition (converted by definition.from_config) instead, which the
    record's next write stores. One that does not convert keeps its dict, and a reader of its
    definition gets the conversion's error."""
    if "config" in record and "definition" not in record:
        from kago.manager.definition import from_config, to_json
        try:
            record["definition"] = to_json(from_config(record["config"]))
        except BadValue:
            return record
        del record["config"]
    return record


class _Lock(Lock):
    """The runtime's container-directory flock, saying "no such container" as the manager does."""

    __slots__ = ()
    not_found = NoSuchContainer


def _write_atomic(path, data):
    journal.write_atomic(path, data)


class _NamesLock:
    """flock on names/.lock: only the slow path (a stale name file) takes it."""

    def __init__(self, names_dir):
        self.path = os.path.join(names_dir, ".lock")
        self.fd = None

    def __enter__(self):
        import fcntl
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def now():
    return time.time()
