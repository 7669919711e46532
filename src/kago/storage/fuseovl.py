"""fuse-overlayfs: the overlay driver's mount where the kernel refuses overlayfs in a user
namespace (before Linux 5.11), as podman does.

The layers are the overlay driver's (a layer holds its own changes; whiteouts are 0:0 character
devices, opaque directories carry ``user.overlay.opaque``, both of which fuse-overlayfs reads);
a container's root is ``fuse-overlayfs -o lowerdir=...,upperdir=...,workdir=... rootfs``, a
FUSE daemon that lives until the mount is unmounted (umount2 by the user namespace's root that
mounted it: the daemon then exits). What fuse-overlayfs itself writes in the upper directory
differs from overlayfs: an opaque directory carries ``user.fuseoverlayfs.opaque`` (trusted.*
is refused in a user namespace) and holds a ``.wh..wh..opq`` marker file (and a ``.wh..opq``
whiteout); diff.py reads both formats. A daemon outlives a killed holder (it keeps that mount
namespace alive): once a container's root is unmounted here, and before it is mounted again,
the daemons serving its upper are stopped.

Which mount a store uses: ``native`` (overlayfs), or ``fuse-overlayfs`` when forced by the
storage setting or learned when the kernel refused overlayfs in the manager's user namespace;
learned once, remembered in the store (file ``overlay-mount``).
"""

import errno
import os
import shutil
import signal
import subprocess
import time

from kago.host import procfs
from kago.storage.errors import StoreError

NAME = "fuse-overlayfs"
NATIVE = "native"
SETTING_FILE = "overlay-mount"  # in the store's root: "fuse-overlayfs" once chosen or learned
INSTALL = "apt-get install fuse-overlayfs"
# the errnos with which a kernel refuses overlayfs to a user namespace's root: EPERM (no
# FS_USERNS_MOUNT before 5.11), EINVAL (an option it refuses there, e.g. userxattr), ENODEV
# (no overlay filesystem at all)
REFUSED = (errno.EPERM, errno.EINVAL, errno.ENODEV)
OPAQUE_XATTR = "user.fuseoverlayfs.opaque"
OPAQUE_MARKERS = (".wh..wh..opq", ".wh..opq")  # its files in an opaque upper directory
MOUNT_TIMEOUT = 30


# --- selection (pure) -------------------------------------------------------------------------

def initial(setting, remembered, in_userns):
    """The mount a store starts with: ``fuse-overlayfs`` if the storage setting forces it or
    the store learned it, else ``native``. The setting is for a manager in a user namespace
    only (root's overlay is always native)."""
    if setting == NAME and not in_userns:
        raise StoreError("storage driver fuse-overlayfs is for the rootless manager (in a user "
                         "namespace); as root use overlay")
    return NAME if setting == NAME or (in_userns and remembered == NAME) else NATIVE


def falls_back(err_no, in_userns, shift):
    """Whether a native overlay mount that failed with ``err_no`` should be retried with
    fuse-overlayfs: only in a user namespace, only for the kernel's refusal, never for an
    idmapped mount (which fuse-overlayfs cannot stack on)."""
    return in_userns and shift != "idmapped" and err_no in REFUSED


def fallback_warning(err_no):
    return (f"kago: warning: the kernel refuses overlayfs in this user namespace "
            f"({errno.errorcode.get(err_no, err_no)}); using fuse-overlayfs (slower), "
            "remembered for this store")


def missing_message(binary_path, refused=None):
    """One line when fuse-overlayfs is needed and not installed; None when it is.
    ``refused``: the errno with which the kernel refused overlayfs, the reason it is needed."""
    if binary_path:
        return None
    if refused is not None:
        return (f"storage: the kernel refuses overlayfs in this user namespace "
                f"({errno.errorcode.get(refused, refused)}) and fuse-overlayfs, its fallback, "
                f"is not installed ({INSTALL})")
    return f"storage: fuse-overlayfs is needed here and not installed ({INSTALL})"


def remembered(root):
    try:
        with open(os.path.join(root, SETTING_FILE)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def remember(root):
    path = os.path.join(root, SETTING_FILE)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(NAME + "\n")
    os.rename(tmp, path)


# --- mount ------------------------------------------------------------------------------------

def binary(refused=None):
    path = shutil.which(NAME)
    message = missing_message(path, refused)
    if message:
        raise StoreError(message)
    return path


def mount_data(layers, upper, work):
    """fuse-overlayfs's -o value; ``layers`` bottom first. Its option parser splits on ','
    and lowerdir on ':': paths holding either are refused."""
    paths = list(layers) + [upper, work]
    for p in paths:
        if "," in p or ":" in p:
            raise StoreError(f"fuse-overlayfs cannot take a path with ',' or ':': {p}")
    lower = ":".join(reversed(layers))  # the top layer first, as overlayfs
    # allow_other: the container's users are not the mounting uid; the kernel then checks
    # their permissions itself (default_permissions)
    return f"lowerdir={lower},upperdir={upper},workdir={work},allow_other,default_permissions"


def mount(layers, upper, work, target):
    """Mount ``target``; returns once the FUSE daemon serves it (it daemonizes after the
    mount)."""
    argv = [binary(), "-o", mount_data(layers, upper, work), target]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=MOUNT_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        raise StoreError(f"fuse-overlayfs mount of {target}: no answer in "
                         f"{MOUNT_TIMEOUT}s") from None
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if "unknown argument ignored" not in ln]
        why = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        if not os.access("/dev/fuse", os.R_OK | os.W_OK):
            why += " (/dev/fuse is not usable here)"
        raise StoreError(f"fuse-overlayfs mount of {target}: {why}")


# --- daemons ----------------------------------------------------------------------------------

def _daemons(cdir):
    """PIDs of the fuse-overlayfs daemons serving the container in ``cdir``: in this mount
    namespace, or in a holder's that died (its daemon keeps that namespace alive)."""
    needle = f"upperdir={os.path.join(cdir, 'upper')},".encode()
    pids = []
    for pid, argv in procfs.processes():
        if argv and os.path.basename(argv[0]) == NAME.encode() and any(needle in a for a in argv):
            pids.append(pid)
    return pids


def stop_daemons(cdir, timeout=2.0):
    """Stop what still serves ``cdir``'s root once it is not mounted here: the daemon of an
    unmount that has not exited yet, or a dead holder's. SIGTERM, then SIGKILL after
    ``timeout``."""
    pids = _daemons(cdir)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _running(p)]
            if pids:
                time.sleep(0.01)
        if not pids:
            return


def _running(pid):
    """Alive and not a zombie (a daemon's reaper may be slow to wait for it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
