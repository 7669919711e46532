"""Device nodes and the /dev links every container expects.

Outside a user namespace the nodes are made with mknod(2); inside one mknod is not allowed, so
the host's node is bind-mounted onto an empty file instead (as runc and crun do). All paths are
resolved inside the rootfs (mounts.open_in_root).
"""

import errno
import os
import stat

from kago.errors import MountError
from kago.kernel import consts as C
from kago.kernel import libc
from kago.linux import mounts

# (path, major, minor): runc's AllowedDevices that are created in every container
DEFAULT_DEVICES = (("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
                   ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0))

DEV_LINKS = (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
             ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"))

_KIND = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def create_device(rootfd, dev, userns):
    """Create one DeviceOp inside the root."""
    if userns:
        _bind_host_device(rootfd, dev)
    else:
        _mknod(rootfd, dev)


def _parent_fd(rootfd, path):
    parent, _, name = path.rstrip("/").rpartition("/")
    return mounts.mkdirs_in_root(rootfd, parent or "/"), name


def _mknod(rootfd, dev):
    pfd, name = _parent_fd(rootfd, dev.path)
    try:
        try:
            os.unlink(name, dir_fd=pfd)  # the spec's device replaces whatever the image had
        except FileNotFoundError:
            pass
        mode = (dev.mode if dev.mode is not None else 0o666) & 0o7777
        os.mknod(name, mode | _KIND[dev.kind], os.makedev(dev.major or 0, dev.minor or 0),
                 dir_fd=pfd)
        os.chmod(name, mode, dir_fd=pfd)  # mknod(2) applies the umask
        os.chown(name, dev.uid or 0, dev.gid or 0, dir_fd=pfd, follow_symlinks=False)
    except OSError as e:
        raise MountError("mknod", e.errno, dev.path) from None
    finally:
        os.close(pfd)


def _bind_host_device(rootfd, dev):
    if not os.path.exists(dev.path):
        raise MountError("bind device", errno.ENOENT, dev.path,
                         "a user namespace cannot mknod; the host has no such device to bind")
    fd = mounts.create_file_in_root(rootfd, dev.path, 0)
    try:
        libc.mount(dev.path, mounts.fdpath(fd), None, C.MS_BIND, shown=dev.path)
    finally:
        os.close(fd)


def create_dev_links(rootfd, with_ptmx):
    """/dev/fd, /dev/std{in,out,err} and, with a devpts instance, /dev/ptmx -> pts/ptmx."""
    devfd = mounts.mkdirs_in_root(rootfd, "/dev")
    links = DEV_LINKS + ((("pts/ptmx", "ptmx"),) if with_ptmx else ())
    try:
        for target, name in links:
            if name == "ptmx":
                try:
                    os.unlink(name, dir_fd=devfd)
                except FileNotFoundError:
                    pass
            try:
                os.symlink(target, name, dir_fd=devfd)
            except FileExistsError:
                pass
            except OSError as e:
                raise MountError("symlink", e.errno, f"/dev/{name}") from None
    finally:
        os.close(devfd)
