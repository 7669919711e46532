"""Container records under the state root (``--root``, default /run/kago).

    <root>/<id>/state.json   the record: the OCI state fields plus kago's own ("kago" key)
    <root>/<id>/exec.fifo    exists from create until start (runc's handshake)
    <root>/@seccomp/         compiled seccomp filters (linux.seccomp's cache; '@' is never in
                             an ID, so this is no container's directory)

The directory is made with mkdir(2), which is atomic: two ``create`` of one ID cannot both win.
``state.json`` is replaced by write-to-temp + rename, so a reader never sees half a record.
Commands that change a container hold an flock on its directory. The init's pid is stored with
its start time (field 22 of /proc/PID/stat), so a recycled PID is never taken for the container.
"""

import fcntl
import os

from kago import jsonio
from kago.errors import ContainerExists, ContainerNotFound, InvalidIDError, KagoError

DEFAULT_ROOT = "/run/kago"
FIFO = "exec.fifo"
STATE = "state.json"


_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-."


def validate_id(container_id):
    """IDs become directory names: no '/', no '..', no control characters (runc's rule)."""
    # ASCII letters, digits and "_+-." only: stripping those leaves nothing (one C call,
    # where a generator over the characters cost ~20 us per call, five calls per start)
    ok = (container_id and len(container_id) <= 1024 and container_id not in (".", "..")
          and container_id.isascii() and not container_id.strip(_ID_CHARS))
    if not ok:
        raise InvalidIDError(container_id)
    return container_id


class Store:
    __slots__ = ("root",)

    def __init__(self, root=DEFAULT_ROOT):
        self.root = os.path.abspath(root)

    def dir(self, container_id):
        return os.path.join(self.root, validate_id(container_id))

    def reserve(self, container_id):
        """Claim the ID by creating its directory; ContainerExists if it is taken."""
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
        except PermissionError as e:
            raise KagoError(f"state root {self.root}: cannot create {e.filename}: permission "
                            "denied (pass --root DIR, or set XDG_RUNTIME_DIR to a directory "
                            "of yours)") from None
        path = self.dir(container_id)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise ContainerExists(container_id) from None
        return path

    def load(self, container_id):
        path = os.path.join(self.dir(container_id), STATE)
        try:
            with open(path, "rb") as f:
                return jsonio.loads(f.read(), what=path)
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None

    def save(self, container_id, record):
        path = os.path.join(self.dir(container_id), STATE)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(jsonio.dumps(record))
        os.rename(tmp, path)

    def ids(self):
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return []
        return [n for n in names if os.path.isfile(os.path.join(self.root, n, STATE))]

    def remove(self, container_id):
        """Remove the container's directory: its files, and their files one level down
        (``notify/``, runtime.notify's); nothing deeper is ever made there."""
        path = self.dir(container_id)
        for name in os.listdir(path) if os.path.isdir(path) else ():
            _remove_entry(os.path.join(path, name), 1)
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass

    def seccomp_cache(self):
        return os.path.join(self.root, "@seccomp")

    def lock(self, container_id):
        return Lock(self.dir(container_id), container_id)


def _remove_entry(path, depth):
    try:
        os.unlink(path)
    except IsADirectoryError:
        if depth <= 0:
            raise
        for name in os.listdir(path):
            _remove_entry(os.path.join(path, name), depth - 1)
        os.rmdir(path)


class Lock:
    """An exclusive flock on a container's directory, as a context manager."""

    __slots__ = ("path", "id", "fd")
    not_found = ContainerNotFound  # raised with the id when the directory is gone

    def __init__(self, path, container_id):
        self.path = path
        self.id = container_id
        self.fd = None

    def __enter__(self):
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise self.not_found(self.id) from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)
        return False


from kago.host.procfs import alive, start_time  # noqa: E402,F401 - the record's clock


def mkfifo(path):
    """The exec fifo: writable by anyone (0622, whatever the umask), as runc makes it, so a
    container whose root is an unprivileged host ID (a user namespace) can open it too."""
    try:
        os.mkfifo(path, 0o622)
        os.chmod(path, 0o622)
    except OSError as e:
        raise KagoError(f"mkfifo {path}: {os.strerror(e.errno).lower()}") from None
    return path

