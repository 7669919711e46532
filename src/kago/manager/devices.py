"""The host's device nodes a container asks for (--device, --privileged), read with stat for
spec.build: type, major/minor numbers, mode and owner, as docker's daemon reads them."""

import os
import stat

from kago.manager.errors import BadValue

# what docker's --privileged leaves out of the host's /dev (oci/devices_linux.go)
_SKIP_DIRS = ("/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/.udev", "/dev/.lxc", "/dev/.lxd-mounts")
_SKIP_FILES = ("/dev/console",)


def node(host, container, permissions="rwm", field="--device"):
    """One device node: {"path", "type", "major", "minor", "fileMode", "uid", "gid",
    "permissions"}."""
    try:
        st = os.stat(host)
    except OSError as e:
        raise BadValue(field, f'error gathering device information while adding custom '
                              f'device "{host}": {os.strerror(e.errno).lower()}') from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        raise BadValue(field, f'"{host}" is not a device node (a character or block device)')
    return {"path": container, "type": kind, "major": os.major(st.st_rdev),
            "minor": os.minor(st.st_rdev), "fileMode": stat.S_IMODE(st.st_mode),
            "uid": st.st_uid, "gid": st.st_gid, "permissions": permissions}


def for_definition(d, root="/dev"):
    """The nodes of ``d.devices``, then (--privileged) every other device under the host's
    /dev, at the same paths inside."""
    out = [node(dev.host, dev.container, dev.permissions) for dev in d.devices]
    if not d.privileged:
        return out
    taken = {n["path"] for n in out}
    for path in sorted(_walk(root)):
        if path in taken:
            continue
        try:
            out.append(node(path, path, "rwm"))
        except BadValue:
            continue  # gone meanwhile, or not a device
    return out


def _walk(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [n for n in dirnames if os.path.join(dirpath, n) not in _SKIP_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            if path in _SKIP_FILES or os.path.islink(path):
                continue
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                yield path


def host_capabilities(status="/proc/self/status"):
    """The capabilities in this process's bounding set (--privileged gives the container
    those: a host's root may lack some, and asking for more fails at capset)."""
    from kago.oci.names import CAPABILITIES
    with open(status) as f:
        line = next((ln for ln in f if ln.startswith("CapBnd:")), "CapBnd: 0")
    mask = int(line.split()[1], 16)
    return tuple(sorted(name for name, bit in CAPABILITIES.items() if mask >> bit & 1))
