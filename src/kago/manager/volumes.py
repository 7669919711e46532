"""Named volumes, docker's ``local`` driver: a directory ROOT/volumes/NAME/_data per volume.

A volume is a value (``Volume``): its name, mountpoint (the ``_data`` directory a container's
``-v NAME:/path`` binds), creation time, labels, and the containers whose configuration names
it (``users``: every record, created, running or stopped, as docker's references). Its
metadata is ROOT/volumes/NAME/volume.json (written whole, journal.write_atomic); a directory
without one (made by ``-v`` before volumes had metadata) is a volume created when its
directory was, without labels.

``-v NAME:/path`` at ``create`` makes the volume if it does not exist (``ensure``), as docker
does. ``remove`` and ``prune`` refuse or skip a volume any container's record names, with or
without force (docker's rule: force only forgives a missing volume). A lock file
(ROOT/volumes.lock) orders ``ensure``, ``remove`` and ``prune``: a container's record is
written before its volumes are ensured, so a removal that holds the lock either sees the
record or removes the volume before ``ensure`` makes it again.
"""

import dataclasses
import fcntl
import json
import os
import shutil
import time

from kago.manager import events, journal
from kago.manager.errors import BadValue, ManagerError

_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_REST = _FIRST + "_.-"
ANONYMOUS = "com.docker.volume.anonymous"  # docker's label of an unnamed volume


class NoSuchVolume(ManagerError):
    def __init__(self, name):
        self.name = name
        super().__init__(f"no such volume: {name}")


class VolumeInUse(ManagerError):
    def __init__(self, name, users):
        self.name, self.users = name, users
        super().__init__(f"remove {name}: volume is in use - [{', '.join(users)}]")


@dataclasses.dataclass(frozen=True)
class Volume:
    """One volume as it was when read."""

    name: str
    mountpoint: str
    created: str          # RFC 3339, UTC
    labels: dict
    users: tuple = ()     # IDs of the containers whose configuration names it

    @property
    def anonymous(self):
        return ANONYMOUS in self.labels

    def inspect(self):
        """docker volume inspect's document."""
        return {"CreatedAt": self.created, "Driver": "local", "Labels": dict(self.labels),
                "Mountpoint": self.mountpoint, "Name": self.name, "Options": {},
                "Scope": "local"}


def check_name(name, field="volume"):
    """docker's rule for volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]* (a file name here)."""
    if (not isinstance(name, str) or not name or len(name) > 255 or name[0] not in _FIRST
            or any(c not in _REST for c in name)):
        raise BadValue(field, f'invalid volume name "{name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] '
                              f'are allowed')
    return name


def parse_labels(items, field="--label"):
    """["K=V", "K"] -> {K: V, K: ""} (docker's --label)."""
    out = {}
    for item in items or ():
        key, _, value = str(item).partition("=")
        if not key:
            raise BadValue(field, f'invalid label "{item}": use KEY=VALUE')
        out[key] = value
    return out


def _dir(mgr):
    return os.path.join(mgr.paths.root, "volumes")


def _meta(mgr, name):
    return os.path.join(_dir(mgr), name, "volume.json")


def mountpoint(mgr, name):
    return os.path.join(_dir(mgr), name, "_data")


class _Lock:
    def __init__(self, mgr):
        self.path = os.path.join(mgr.paths.root, "volumes.lock")

    def __enter__(self):
        root = os.path.dirname(self.path)
        if not os.path.isdir(root):
            os.makedirs(root, 0o711, exist_ok=True)
            os.chmod(root, 0o711)  # searchable only (perms.py), as every root kago makes
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _make(mgr, name, labels):
    """Make the volume's directories and metadata (under the lock); False if it existed."""
    base = os.path.join(_dir(mgr), name)
    os.makedirs(_dir(mgr), 0o711, exist_ok=True)
    try:
        os.mkdir(base, 0o711)
    except FileExistsError:
        os.makedirs(os.path.join(base, "_data"), 0o755, exist_ok=True)
        return False
    os.chmod(base, 0o711)  # mkdir's mode went through the umask; ID-mapped users search it
    os.mkdir(os.path.join(base, "_data"), 0o755)
    journal.write_atomic(_meta(mgr, name), json.dumps(
        {"name": name, "created": _now(), "labels": labels}).encode())
    events.volume(mgr.paths, "create", name)
    return True


def ensure(mgr, name, uid_map=None, gid_map=None):
    """The host directory of volume ``name``, made (with its metadata) if it does not exist:
    what ``-v NAME:/path`` at create calls. A volume an ID-mapped container makes
    (``uid_map``/``gid_map``, its [[inside, host, size]] ranges) belongs to that container's
    root, so it can write to it (docker with userns-remap does the same)."""
    check_name(name, "-v")
    with _Lock(mgr):
        made = _make(mgr, name, {})
        if made and uid_map:
            from kago.storage import IdMap
            uid, gid = IdMap([tuple(r) for r in uid_map],
                             [tuple(r) for r in gid_map or uid_map]).root()
            if uid is not None and gid is not None:
                os.chown(mountpoint(mgr, name), uid, gid)
    return mountpoint(mgr, name)


def create(mgr, name=None, labels=None):
    """docker volume create: a new volume (a random 64-hex name without ``name``); an
    existing one is returned as it is (docker's)."""
    if name is None:
        import secrets
        name = secrets.token_hex(32)
    check_name(name)
    labels = dict(labels or {})
    for key, value in labels.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise BadValue("labels", f"{key!r}={value!r}: labels are non-empty strings")
    with _Lock(mgr):
        _make(mgr, name, labels)
    return get(mgr, name)


def users(mgr):
    """{volume name: [container IDs whose definition names it]} over every record."""
    from kago.manager import definition as D
    out = {}
    for record in mgr.records.all():
        for m in D.of(record).mounts:
            if m.kind == "volume":
                ids = out.setdefault(m.source, [])
                if record["id"] not in ids:
                    ids.append(record["id"])
    return out


def _read(mgr, name, used):
    base = os.path.join(_dir(mgr), name)
    if not os.path.isdir(os.path.join(base, "_data")):
        raise NoSuchVolume(name)
    try:
        with open(_meta(mgr, name)) as f:
            meta = json.load(f)
    except (FileNotFoundError, ValueError):
        try:
            made = os.stat(base).st_mtime
        except FileNotFoundError:
            raise NoSuchVolume(name) from None  # removed meanwhile
        meta = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(made)),
                "labels": {}}
    return Volume(name, mountpoint(mgr, name), meta.get("created", ""),
                  dict(meta.get("labels") or {}), tuple(used.get(name, ())))


def names(mgr):
    try:
        return sorted(n for n in os.listdir(_dir(mgr))
                      if n[:1] in _FIRST and os.path.isdir(mountpoint(mgr, n)))
    except FileNotFoundError:
        return []


def _named(name):
    """A name a volume could have (else there is no such volume: ``.removing-*`` is not)."""
    try:
        return check_name(name)
    except BadValue:
        raise NoSuchVolume(name) from None


def get(mgr, name):
    """The volume named ``name``: NoSuchVolume if there is none."""
    _named(name)
    return _read(mgr, name, users(mgr))


def list_volumes(mgr, filters=()):
    """Every volume, by name; ``filters`` docker's: dangling=true|false, label=K[=V],
    name=SUBSTRING, driver=local (a list of "key=value")."""
    used = users(mgr)
    out = []
    for name in names(mgr):
        try:
            out.append(_read(mgr, name, used))
        except NoSuchVolume:
            continue  # removed meanwhile
    for f in parse_filters(filters):
        out = [v for v in out if matches(v, f)]
    return out


def parse_filters(filters, allowed=("dangling", "label", "label!", "name", "driver")):
    """["key=value"] -> [(key, value)], every key checked."""
    out = []
    for text in filters or ():
        key, eq, value = str(text).partition("=")
        if not eq or key not in allowed:
            raise BadValue("--filter", f'invalid filter "{text}": use '
                           + ", ".join(f"{k}=..." for k in allowed))
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise BadValue("--filter", f'invalid filter "{text}": dangling is true or false')
        out.append((key, value))
    return out


def matches(volume, f):
    key, value = f
    if key == "dangling":
        return (not volume.users) == (value.lower() in ("true", "1"))
    if key in ("label", "label!"):
        k, eq, v = value.partition("=")
        has = k in volume.labels and (not eq or volume.labels[k] == v)
        return has if key == "label" else not has
    if key == "name":
        return value in volume.name
    if key == "driver":
        return value == "local"
    return False


def remove(mgr, name, force=False):
    """docker volume rm: refused while any container's record names it (even with
    ``force``, as docker); ``force`` makes a missing volume no error."""
    try:
        _named(name)
    except NoSuchVolume:
        if force:
            return
        raise
    if not os.path.isdir(mountpoint(mgr, name)):  # nothing to remove: no lock (nor root) made
        if force:
            return
        raise NoSuchVolume(name)
    with _Lock(mgr):
        if not os.path.isdir(mountpoint(mgr, name)):
            if force:
                return
            raise NoSuchVolume(name)
        used = users(mgr).get(name)
        if used:
            raise VolumeInUse(name, used)
        _delete(mgr, name)


def _delete(mgr, name):
    base = os.path.join(_dir(mgr), name)
    trash = os.path.join(_dir(mgr), f".removing-{name}-{os.getpid()}")
    os.rename(base, trash)  # gone at once for readers; the tree is removed after
    shutil.rmtree(trash)
    events.volume(mgr.paths, "destroy", name)


def prune(mgr, all=False, filters=()):  # noqa: A002 (docker's flag)
    """docker volume prune: every volume no container's record names that is anonymous (or
    any, with ``all``), matching ``filters`` (label=K[=V], label!=K[=V]). Returns
    ([names removed], bytes reclaimed)."""
    wanted = parse_filters(filters, allowed=("label", "label!", "all"))
    if any(k == "all" and v.lower() in ("true", "1") for k, v in wanted):
        all = True
    wanted = [f for f in wanted if f[0] != "all"]
    removed, size = [], 0
    with _Lock(mgr):
        used = users(mgr)
        for name in names(mgr):
            try:
                volume = _read(mgr, name, used)
            except NoSuchVolume:
                continue
            if volume.users or not (all or volume.anonymous):
                continue
            if not _all_match(volume, wanted):
                continue
            size += _du(volume.mountpoint)
            _delete(mgr, name)
            removed.append(name)
    return removed, size


def _all_match(volume, wanted):
    return all(matches(volume, f) for f in wanted)


def _du(path):
    total = 0
    for top, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                total += os.lstat(os.path.join(top, name)).st_blocks * 512
            except OSError:
                pass
    return total
