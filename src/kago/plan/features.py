"""The runtime-spec "features" document (``kago-oci features``): what this build really does.

The schema is the runtime spec's (features.md, specs-go/features), filled as runc and crun fill
it: ``linux.cgroup`` and ``linux.mountExtensions.idmap`` say what the runtime implements,
"unrelated to whether the host uses cgroup v1 or not" (the spec's words): both drivers of the
cgroupfs kind (v1, v2, hybrid), rdma limits, idmapped bind mounts; not the systemd driver. seccomp
is listed as runc lists it, from what this host's libseccomp and kernel really support.

What this host offers goes in kago's annotations, each probed when the document is asked for:

- ``io.github.kago.cgroup.host``: ``v1``, ``v2``, ``hybrid`` as the host mounts its cgroups, or
  ``none`` (the caller's to find: ``kago-oci features`` passes kago.linux.cgroups.detect()'s);
- ``io.github.kago.cgroup.v2.devices``: ``ebpf`` where bpf(2) loads a cgroup device program
  (the v2 device filter, docs/cgroups-v2.md), else ``none`` (no CONFIG_CGROUP_BPF, or no
  privilege): device rules then work only through a v1 devices controller;
- ``io.github.kago.mount.idmap``: ``true`` where the kernel has mount_setattr(2) with
  MOUNT_ATTR_IDMAP (Linux 5.12); each filesystem still has to support it.
"""

import errno

from kago.version import OCI_VERSION, __version__
from kago.oci.schema import HOOK_KINDS, NAMESPACE_TYPES
from kago.plan.tables import CAPABILITIES, known_mount_options


def features(cgroup_host=None):
    """The document; ``cgroup_host``: the host's cgroup layout, its annotation when given."""
    doc = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": known_mount_options(),
        "linux": {
            "namespaces": sorted(NAMESPACE_TYPES),
            "capabilities": list(CAPABILITIES),  # kernel-number order, as runc lists them
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": True},
            "seccomp": seccomp_features(),
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {"io.github.kago.version": __version__,
                        "io.github.kago.cgroup.v2.devices":
                            "ebpf" if device_filter_loads() else "none",
                        "io.github.kago.mount.idmap": "true" if idmap_mounts() else "false"},
    }
    if cgroup_host is not None:
        doc["annotations"]["io.github.kago.cgroup.host"] = cgroup_host
    return doc


def device_filter_loads():
    """Whether bpf(2) loads a BPF_PROG_TYPE_CGROUP_DEVICE program here ("allow all": two
    instructions), which is what the v2 device filter needs."""
    from kago.errors import KernelError
    from kago.kernel import bpf
    try:
        fd = bpf.prog_load(bytes((0xB4, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0)),
                           "Apache", b"kago_probe")
    except (KernelError, OSError):
        return False
    bpf._close(fd)
    return True


def idmap_mounts():
    """Whether the kernel has mount_setattr(2) (and so MOUNT_ATTR_IDMAP, which came with it):
    asked with a bad fd, a kernel that has it says EBADF, one without ENOSYS."""
    from kago.errors import KernelError
    from kago.kernel import consts as C
    from kago.kernel import libc
    try:
        libc.mount_setattr(-1, "", C.AT_EMPTY_PATH, attr_set=C.MOUNT_ATTR_IDMAP)
    except KernelError as e:
        return e.errno != errno.ENOSYS
    return True


def seccomp_features():
    """runc's seccomp block: enabled when libseccomp loads; the architectures it knows; the
    filter flags kago knows and those this kernel takes (asked as runc asks)."""
    from kago.kernel import libseccomp as S
    if not S.available():
        return {"enabled": False}
    nr = S.resolve_syscall("seccomp")
    return {
        "enabled": True,
        "actions": sorted(S.ACTIONS),
        "operators": sorted(S.OPERATORS),
        "archs": sorted(name for name, arch in S.ARCHES.items() if S.resolve_arch(arch)),
        "knownFlags": list(S.FILTER_FLAGS),
        "supportedFlags": [name for name, flag in S.FILTER_FLAGS.items()
                           if nr is not None and S.flag_supported(flag, nr)],
    }
