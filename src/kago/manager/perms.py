"""Who may read the manager's state: root alone, except where a container must pass.

A record holds the container's whole configuration, its environment too (``DB_PASSWORD=...``),
and its logs are whatever it prints: no other local user may read either. The rule, per path:

    ROOT, ROOT/containers, ROOT/containers/<id>    0711  searched, never listed, by others:
    ROOT/containers/<id>/bundle, RUNROOT,                an ID-mapped container (its root is an
    RUNROOT/hooks                                        unprivileged host ID) reaches its
                                                         bundle, /etc files, rootfs and hook
                                                         directory through them
    ROOT/containers/<id>/container.json              0600  the record
    ROOT/containers/<id>/bundle/config.json          0600  the spec (the environment again)
    ROOT/containers/<id>/logs/, ctr.log[.N]          0700, 0600
    ROOT/names, network, groups (+ their files)      0700 (0600): names, addresses, ``up -e``
    RUNROOT/fifos, supervisor.log                    0700, 0600

(ROOT/storage is kago.storage's: 0711 at its top, image layers readable as in the images;
RUNROOT/oci is the runtime's --root, with the runtime's own modes (kago-oci's: 0700);
ROOT/containers/<id>/etc holds hosts, hostname and resolv.conf: 0755/0644, they are the
container's to read.)

New state is made with these modes. A root made by an older kago (0755, records 0644) is
tightened by the next command that opens it: ``secure`` checks the two top directories'
modes (one stat each) and, only when one is looser than the rule, walks the tree below.
"""

import os
import stat

SEARCH = 0o711
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

_ROOT_PRIVATE = ("names", "network", "groups")
_RUN_PRIVATE = ("fifos",)


def secure(paths):
    """Tighten ROOT and RUNROOT if an older kago (or a hand) left them open."""
    if _loose(paths.root, SEARCH):
        _tighten_root(paths)
    if _loose(paths.runroot, SEARCH):
        _tighten_runroot(paths)


def make_container_dir(paths, cid, path=None):
    """ROOT/containers/<id> (or ``path`` beside it: a record's directory is made under another
    name and renamed into place), and ROOT, ROOT/containers if new: searchable only."""
    for parent in (paths.root, paths.containers()):
        try:
            os.mkdir(parent, SEARCH)
        except FileExistsError:
            continue
        os.chmod(parent, SEARCH)  # mkdir's mode passed through the umask
    path = path or paths.container(cid)
    os.mkdir(path, SEARCH)
    os.chmod(path, SEARCH)


def make_runroot(paths):
    """RUNROOT, searchable only (the default one's parent /run/kago too)."""
    if not os.path.isdir(paths.runroot):
        os.makedirs(paths.runroot, SEARCH, exist_ok=True)
        os.chmod(paths.runroot, SEARCH)


def private_file(path):
    """A file only its owner reads: opened for writing, truncated (use ``with``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE)
    if os.fstat(fd).st_mode & 0o077:
        os.fchmod(fd, PRIVATE_FILE)
    return os.fdopen(fd, "w")


def _loose(path, mode):
    try:
        return stat.S_IMODE(os.lstat(path).st_mode) & ~mode & 0o777 != 0
    except FileNotFoundError:
        return False


def _chmod(path, mode, only_looser=True):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return
    if stat.S_IMODE(st.st_mode) & ~mode & 0o777 if only_looser else \
            stat.S_IMODE(st.st_mode) != mode:
        os.chmod(path, stat.S_IMODE(st.st_mode) & mode if only_looser else mode)


def _tree(top, dir_mode, file_mode):
    _chmod(top, dir_mode)
    for base, dirs, files in os.walk(top):
        for d in dirs:
            _chmod(os.path.join(base, d), dir_mode)
        for f in files:
            _chmod(os.path.join(base, f), file_mode)


def _tighten_root(paths):
    _chmod(paths.root, SEARCH)
    _chmod(paths.containers(), SEARCH)
    try:
        ids = os.listdir(paths.containers())
    except (FileNotFoundError, NotADirectoryError):
        ids = []
    for cid in ids:
        _chmod(paths.container(cid), SEARCH)
        _chmod(paths.record(cid), PRIVATE_FILE)
        _chmod(paths.bundle(cid), SEARCH)
        _chmod(os.path.join(paths.bundle(cid), "config.json"), PRIVATE_FILE)
        _tree(paths.logs(cid), PRIVATE_DIR, PRIVATE_FILE)
    for sub in _ROOT_PRIVATE:
        _tree(os.path.join(paths.root, sub), PRIVATE_DIR, PRIVATE_FILE)


def _tighten_runroot(paths):
    _chmod(paths.runroot, SEARCH)
    for sub in _RUN_PRIVATE:
        _tree(os.path.join(paths.runroot, sub), PRIVATE_DIR, PRIVATE_FILE)
    _chmod(paths.supervisor_log(), PRIVATE_FILE)
