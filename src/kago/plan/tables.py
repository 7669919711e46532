"""The kernel's vocabulary as data: namespaces, mount options (capabilities, rlimits,
signals and the namespaced sysctls live in kago.oci.names and are re-exported here).

Pure tables and small parsers, no I/O. Numbers are the kernel's (include/uapi/linux/capability.h,
asm-generic/resource.h, asm/signal.h for x86_64 and the other generic-ABI architectures), so a
name maps straight to what a system call takes. The mount option words and their meanings follow
runc's libcontainer/specconv, because podman and containerd write specs against runc.

Plain dicts and ints, not enums: this module is on ``kago-oci``'s start-up path.
"""

from kago.kernel import consts as k

# capabilities, rlimits, signals and the namespaced sysctls are the spec's vocabulary
# (kago.oci.names): the manager and the CLI use them too, without the plan
from kago.oci.names import (  # noqa: F401,E402 - re-exported for the plan's users
    CAP_LAST_CAP, CAPABILITIES, RLIM_INFINITY, RLIMITS, SIGNAL_ALIASES, SIGNALS, SIGRTMAX,
    SIGRTMIN, SYSCTL_EXACT, SYSCTL_PREFIXES, parse_signal, sysctl_namespace)

# ---------------------------------------------------------------- namespaces

# spec type -> (clone/unshare/setns flag, name under /proc/PID/ns/)
NAMESPACES = {
    "pid": (k.CLONE_NEWPID, "pid"),
    "network": (k.CLONE_NEWNET, "net"),
    "mount": (k.CLONE_NEWNS, "mnt"),
    "ipc": (k.CLONE_NEWIPC, "ipc"),
    "uts": (k.CLONE_NEWUTS, "uts"),
    "user": (k.CLONE_NEWUSER, "user"),
    "cgroup": (k.CLONE_NEWCGROUP, "cgroup"),
    "time": (k.CLONE_NEWTIME, "time"),
}

# ---------------------------------------------------------------- mount options

# word -> (clear?, MS_* flag). "clear" words remove a flag an earlier word (or a default) set.
MOUNT_FLAGS = {
    "acl": (False, k.MS_POSIXACL),
    "async": (True, k.MS_SYNCHRONOUS),
    "atime": (True, k.MS_NOATIME),
    "bind": (False, k.MS_BIND),
    "dev": (True, k.MS_NODEV),
    "diratime": (True, k.MS_NODIRATIME),
    "dirsync": (False, k.MS_DIRSYNC),
    "exec": (True, k.MS_NOEXEC),
    "iversion": (False, k.MS_I_VERSION),
    "lazytime": (False, k.MS_LAZYTIME),
    "loud": (True, k.MS_SILENT),
    "mand": (False, k.MS_MANDLOCK),
    "noacl": (True, k.MS_POSIXACL),
    "noatime": (False, k.MS_NOATIME),
    "nodev": (False, k.MS_NODEV),
    "nodiratime": (False, k.MS_NODIRATIME),
    "noexec": (False, k.MS_NOEXEC),
    "noiversion": (True, k.MS_I_VERSION),
    "nolazytime": (True, k.MS_LAZYTIME),
    "nomand": (True, k.MS_MANDLOCK),
    "norelatime": (True, k.MS_RELATIME),
    "nostrictatime": (True, k.MS_STRICTATIME),
    "nosuid": (False, k.MS_NOSUID),
    "nosymfollow": (False, k.MS_NOSYMFOLLOW),
    "rbind": (False, k.MS_BIND | k.MS_REC),
    "relatime": (False, k.MS_RELATIME),
    "remount": (False, k.MS_REMOUNT),
    "ro": (False, k.MS_RDONLY),
    "rw": (True, k.MS_RDONLY),
    "silent": (False, k.MS_SILENT),
    "strictatime": (False, k.MS_STRICTATIME),
    "suid": (True, k.MS_NOSUID),
    "symfollow": (True, k.MS_NOSYMFOLLOW),
    "sync": (False, k.MS_SYNCHRONOUS),
}

# Propagation words; each becomes its own mount(2) call, in order, after the mount itself.
PROPAGATION_FLAGS = {
    "private": k.MS_PRIVATE,
    "rprivate": k.MS_PRIVATE | k.MS_REC,
    "shared": k.MS_SHARED,
    "rshared": k.MS_SHARED | k.MS_REC,
    "slave": k.MS_SLAVE,
    "rslave": k.MS_SLAVE | k.MS_REC,
    "unbindable": k.MS_UNBINDABLE,
    "runbindable": k.MS_UNBINDABLE | k.MS_REC,
}
ROOTFS_PROPAGATION = PROPAGATION_FLAGS
# What runc does to / when the spec says nothing: host mounts reach the container, not back.
ROOTFS_PROPAGATION_DEFAULT = k.MS_SLAVE | k.MS_REC

# Recursive mount_setattr(2) words: word -> (clear?, MOUNT_ATTR_* flag).
RECURSIVE_ATTRS = {
    "rro": (False, k.MOUNT_ATTR_RDONLY),
    "rrw": (True, k.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, k.MOUNT_ATTR_NOSUID),
    "rsuid": (True, k.MOUNT_ATTR_NOSUID),
    "rnodev": (False, k.MOUNT_ATTR_NODEV),
    "rdev": (True, k.MOUNT_ATTR_NODEV),
    "rnoexec": (False, k.MOUNT_ATTR_NOEXEC),
    "rexec": (True, k.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, k.MOUNT_ATTR_NODIRATIME),
    "rdiratime": (True, k.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, k.MOUNT_ATTR_RELATIME),
    "rnorelatime": (True, k.MOUNT_ATTR_RELATIME),
    "rnoatime": (False, k.MOUNT_ATTR_NOATIME),
    "ratime": (True, k.MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, k.MOUNT_ATTR_STRICTATIME),
    "rnostrictatime": (True, k.MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, k.MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, k.MOUNT_ATTR_NOSYMFOLLOW),
}

# Words that are neither flags nor filesystem data: kago (or runc) acts on them itself.
# idmap/ridmap: an idmapped mount (the top one, or the whole tree); tmpcopyup: runc's
# "copy the image's files into this fresh tmpfs"; defaults: means "nothing", never data.
EXTENSIONS = ("defaults", "idmap", "ridmap", "tmpcopyup")

# MS_* flags that have a mount_setattr(2) twin, for the non-recursive attr_set/attr_clr.
_MS_TO_ATTR = (
    (k.MS_RDONLY, k.MOUNT_ATTR_RDONLY),
    (k.MS_NOSUID, k.MOUNT_ATTR_NOSUID),
    (k.MS_NODEV, k.MOUNT_ATTR_NODEV),
    (k.MS_NOEXEC, k.MOUNT_ATTR_NOEXEC),
    (k.MS_NODIRATIME, k.MOUNT_ATTR_NODIRATIME),
    (k.MS_NOSYMFOLLOW, k.MOUNT_ATTR_NOSYMFOLLOW),
)
_ATIME_FLAGS = k.MS_NOATIME | k.MS_RELATIME | k.MS_STRICTATIME


def known_mount_options() -> list:
    """Every option word kago understands (not filesystem data), sorted, for ``features``."""
    words = set(MOUNT_FLAGS) | set(PROPAGATION_FLAGS) | set(RECURSIVE_ATTRS) | set(EXTENSIONS)
    return sorted(words)


class MountOptions:
    """A spec mount's ``options`` split into what each system call needs.

    flags / clear_flags   MS_* bits to set / to clear on the mount (clear: "rw", "suid"...)
    propagation           MS_* propagation values, one mount(2) call each, in given order
    data                  filesystem data, comma-joined ("mode=755,size=65536k")
    attr_set / attr_clr   the same as ``flags``/``clear_flags`` in MOUNT_ATTR_* terms, for
                          mount_setattr(2) on this mount only (the atime mode included)
    rec_attr_set / rec_attr_clr
                          MOUNT_ATTR_* bits from the r* words, for mount_setattr with AT_RECURSIVE
    extra                 the EXTENSIONS words present ("idmap", "ridmap", "tmpcopyup")
    """

    __slots__ = ("flags", "clear_flags", "propagation", "data", "attr_set", "attr_clr",
                 "rec_attr_set", "rec_attr_clr", "extra")

    def __init__(self):
        self.flags = self.clear_flags = 0
        self.attr_set = self.attr_clr = self.rec_attr_set = self.rec_attr_clr = 0
        self.propagation = []
        self.data = ""
        self.extra = []

    @property
    def idmap(self) -> bool:
        return "idmap" in self.extra or "ridmap" in self.extra

    @property
    def recursive_idmap(self) -> bool:
        return "ridmap" in self.extra

    def __repr__(self):
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"MountOptions({fields})"


def _apply_flag(m: MountOptions, clear: bool, flag: int) -> None:
    # A later word wins over an earlier one ("ro,rw" is rw), as in runc.
    if clear:
        m.flags &= ~flag
        m.clear_flags |= flag
    else:
        m.flags |= flag
        m.clear_flags &= ~flag


def _apply_rec_attr(m: MountOptions, clear: bool, attr: int) -> None:
    if clear:
        m.rec_attr_clr |= attr
        m.rec_attr_set &= ~attr
        return
    m.rec_attr_set |= attr
    m.rec_attr_clr &= ~attr
    # mount_setattr(2): an atime mode is set only if MOUNT_ATTR__ATIME is also in attr_clr.
    # (RELATIME is 0, so this test is true for it too, which is the point.)
    if attr & k.MOUNT_ATTR__ATIME == attr:
        m.rec_attr_clr |= k.MOUNT_ATTR__ATIME


def _atime_attr(flags: int) -> int | None:
    """The one atime mode mount(2) would pick from ``flags``: strictatime beats noatime."""
    if flags & k.MS_STRICTATIME:
        return k.MOUNT_ATTR_STRICTATIME
    if flags & k.MS_NOATIME:
        return k.MOUNT_ATTR_NOATIME
    if flags & k.MS_RELATIME:
        return k.MOUNT_ATTR_RELATIME
    return None


def _derive_attrs(m: MountOptions) -> None:
    """Fill attr_set/attr_clr from flags/clear_flags, for the new mount API's non-recursive path."""
    for ms, attr in _MS_TO_ATTR:
        if m.flags & ms:
            m.attr_set |= attr
        elif m.clear_flags & ms:
            m.attr_clr |= attr
    atime = _atime_attr(m.flags)
    if atime is not None:
        m.attr_set |= atime
        m.attr_clr |= k.MOUNT_ATTR__ATIME


def parse_mount_options(options) -> MountOptions:
    """Split a spec mount's ``options`` list the way runc's specconv does.

    Unknown words are filesystem data, kept in order: the kernel (or the filesystem) is the
    judge of "mode=755" or "newinstance", not us.
    """
    m = MountOptions()
    data = []
    for word in options or ():
        if word in MOUNT_FLAGS:
            _apply_flag(m, *MOUNT_FLAGS[word])
        elif word in PROPAGATION_FLAGS:
            m.propagation.append(PROPAGATION_FLAGS[word])
        elif word in RECURSIVE_ATTRS:
            _apply_rec_attr(m, *RECURSIVE_ATTRS[word])
        elif word in EXTENSIONS:
            if word != "defaults" and word not in m.extra:
                m.extra.append(word)
        else:
            data.append(word)
    m.data = ",".join(data)
    _derive_attrs(m)
    return m
