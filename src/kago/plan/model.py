"""The Plan: everything the container's processes will do, computed before any fork.

``plan.build`` turns a validated spec into these objects (pure); ``process`` and ``linux`` only
execute them. Plain classes with ``__slots__`` rather than dataclasses: this is on kago-oci's
start-up path, and dataclasses + typing cost ~25 ms of imports on this kind of host.
"""


class _Record:
    __slots__ = ()

    def __init__(self, **kw):
        for name in self.__slots__:
            setattr(self, name, kw.pop(name, None))
        if kw:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(kw)}")

    def __repr__(self):
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)


class MountOp(_Record):
    """One mount of ``source`` at ``destination`` (a path inside the rootfs, resolved there).

    flags: mount(2) flags for the first mount (MS_BIND|MS_REC for binds); remount_flags: for a bind
    whose ro/nosuid/... flags need a second MS_REMOUNT|MS_BIND call (the kernel ignores them on the
    first); propagation: MS_* propagation flags applied afterwards, in order; attr_set/attr_clr:
    mount_setattr(AT_RECURSIVE) attributes for the r* options (rro, rnosuid, ...).
    copy_up: a tmpfs ``tmpcopyup`` fills with the image's files at the destination (mounted
    read-write, made read-only by remount_flags after the copy).
    idmap: an idmapped bind (spec ``idmap``/``ridmap``, or mount ID maps), as
    (uid maps, gid maps, user namespace path or None, recursive); userns_fd: the user
    namespace with those maps, opened by the runtime before the fork (like SeccompPlan's
    program) and closed by the container process once the mount is made.
    """

    __slots__ = ("destination", "source", "fstype", "flags", "data", "remount_flags",
                 "propagation", "attr_set", "attr_clr", "is_bind", "field", "copy_up",
                 "idmap", "userns_fd")


class DeviceOp(_Record):
    """A device node to create at ``path``: mknod, or a bind of the host node in a user ns."""

    __slots__ = ("path", "kind", "major", "minor", "mode", "uid", "gid")


class Hook(_Record):
    __slots__ = ("path", "args", "env", "timeout")


class ProcessPlan(_Record):
    """The user's program and the credentials it runs with (capabilities as 64-bit masks).

    setgroups_denied: set in the container process when its user namespace says "deny" in
    /proc/self/setgroups (a rootless single-ID map): supplementary groups cannot be set."""

    __slots__ = ("args", "env", "cwd", "uid", "gid", "additional_gids", "umask",
                 "bounding", "effective", "inheritable", "permitted", "ambient",
                 "rlimits", "no_new_privileges", "terminal", "console_size",
                 "oom_score_adj", "apparmor_profile", "selinux_label", "seccomp",
                 "setgroups_denied")


class SeccompPlan(_Record):
    """``linux.seccomp`` in libseccomp's numbers, before any syscall name is resolved.

    default_action: the libseccomp action (errno included); arches: [(field, libseccomp arch
    name)]; flags: seccomp(2) filter flags; rules: [(field, syscall name, action, conditions)],
    conditions a tuple of (arg index, operator, value, value two), all of a rule's conditions
    ANDed (runc's expansion of a syscalls entry is done: an entry testing one argument twice
    became one rule per condition); notify: some rule's action is SCMP_ACT_NOTIFY (the filter
    is then loaded with a listener, sent to listener_path). ``program`` is the compiled
    ``kernel.libseccomp.Program`` (``linux.seccomp.compile`` fills it in before the fork),
    ``skipped`` the names this architecture has no system call for.
    """

    __slots__ = ("default_action", "arches", "flags", "rules", "notify", "listener_path",
                 "listener_metadata", "program", "skipped")


class Plan(_Record):
    """A container, as a sequence of kernel operations.

    namespaces: list of (spec type, CLONE_* flag, path or None) for every namespace the spec names;
    uid_maps/gid_maps: lists of (container id, host id, size).
    """

    __slots__ = ("id", "bundle", "rootfs", "root_readonly", "rootfs_propagation", "no_pivot",
                 "namespaces", "uid_maps", "gid_maps", "time_offsets",
                 "mounts", "devices", "default_devices", "masked_paths", "readonly_paths",
                 "hostname", "domainname", "sysctl", "process", "hooks", "cgroups_path",
                 "resources", "annotations", "warnings")

    def ns_path(self, ns_type):
        for kind, _flag, path in self.namespaces:
            if kind == ns_type:
                return path
        return None

    def has_ns(self, ns_type):
        return any(kind == ns_type for kind, _f, _p in self.namespaces)

    def new_ns(self, ns_type):
        """True if the container gets a fresh namespace of this type (not joined, not shared)."""
        return any(kind == ns_type and path is None for kind, _f, path in self.namespaces)

    @property
    def userns(self):
        return self.has_ns("user")
