"""The runtime-spec "features" document (``kago-oci features``): what this build really does.

Only what is implemented is listed (clients use it to decide what to send). seccomp is
listed as runc lists it, from what this host's libseccomp and kernel really support.
"""

import kago
from kago.oci.schema import HOOK_KINDS, NAMESPACE_TYPES
from kago.plan.tables import CAPABILITIES, known_mount_options


def features():
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": kago.OCI_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": known_mount_options(),
        "linux": {
            "namespaces": sorted(NAMESPACE_TYPES),
            "capabilities": list(CAPABILITIES),  # kernel-number order, as runc lists them
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": seccomp_features(),
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        # cgroup v2 device rules: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program, as runc's
        "annotations": {"io.github.kago.version": kago.__version__,
                        "io.github.kago.cgroup.v2.devices": "ebpf"},
    }


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
