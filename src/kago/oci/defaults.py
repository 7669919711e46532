"""What ``kago-oci spec`` prints (``features`` is in ``kago.plan.features``).

``default_spec`` is ``runc spec``'s document (and ``runc spec --rootless``'s), with kago's
ociVersion and hostname, so bundles made for runc and for kago look alike. It is built from
literals on each call, so a caller may change the result freely.
"""

import os

from kago.version import OCI_VERSION

HOOK_KINDS = ["prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop"]
_DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def _process(args, terminal: bool) -> dict:
    caps = {name: list(_DEFAULT_CAPS) for name in ("bounding", "effective", "permitted", "ambient")}
    return {
        "terminal": terminal,
        "user": {"uid": 0, "gid": 0},
        "args": list(args) if args is not None else ["sh"],
        "env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm",
        ],
        "cwd": "/",
        "capabilities": caps,
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    }


def _mounts(rootless: bool) -> list:
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        devpts.append("gid=5")  # an unprivileged user cannot map the tty group, so no gid=5
    # sysfs cannot be mounted by a user namespace that does not own the netns: bind the host's.
    sysfs = ({"destination": "/sys", "type": "none", "source": "/sys",
              "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]} if rootless else
             {"destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"]})
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        sysfs,
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]


_MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
]
_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def _linux(rootless: bool, cgroup_ns: bool) -> dict:
    cgroup = ("cgroup",) if cgroup_ns else ()
    if not rootless:
        return {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")
                           + cgroup],
            "maskedPaths": list(_MASKED_PATHS),
            "readonlyPaths": list(_READONLY_PATHS),
        }
    # Rootless, as runc: map the caller's own IDs to root, keep the host network (no way to
    # plumb one without privileges), and leave devices to the user namespace's own limits.
    return {
        "uidMappings": [{"containerID": 0, "hostID": os.geteuid(), "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": os.getegid(), "size": 1}],
        "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount") + cgroup + ("user",)],
        "maskedPaths": list(_MASKED_PATHS),
        "readonlyPaths": list(_READONLY_PATHS),
    }


def default_spec(args=None, rootless: bool = False, terminal: bool = True,
                 seccomp: bool = False, cgroup_ns: bool = False) -> dict:
    """A fresh copy of the default config.json; ``args`` replaces ``["sh"]``.

    ``cgroup_ns``: add a cgroup namespace, as ``runc spec`` does on a pure cgroup v2 host
    (``kago-oci spec`` passes it there; the library default leaves it out).

    ``seccomp``: add kago's default seccomp profile (docker's, see ``oci.seccomp_profile``)
    for the spec's bounding capabilities. ``kago-oci spec`` leaves it out, as ``runc spec``
    does (its output stays runc's); ``kago-oci spec --seccomp`` and the manager put it in.
    """
    spec = {
        "ociVersion": OCI_VERSION,
        "process": _process(args, terminal),
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "kago",
        "mounts": _mounts(rootless),
        "linux": _linux(rootless, cgroup_ns),
    }
    if seccomp:
        bounding = spec["process"]["capabilities"]["bounding"]
        spec["linux"]["seccomp"] = default_seccomp_profile(bounding)
    return spec


def default_seccomp_profile(capabilities=None) -> dict:
    """kago's default ``linux.seccomp``: docker's default profile for a container with these
    (bounding) capabilities; None means docker's default capability set."""
    from kago.oci.seccomp_profile import default_profile
    return default_profile(capabilities)
