"""The runtime-spec "features" document (``kago-oci features``): what this build really does.

Only what is implemented is listed: idmapped mounts and seccomp come with later issues, and the
document says so until they exist (clients use it to decide what to send).
"""

import kago
from kago.oci.schema import HOOK_KINDS, NAMESPACE_TYPES
from kago.plan.tables import CAPABILITIES, known_mount_options

NOT_YET = ("idmap", "ridmap", "tmpcopyup")


def features():
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": kago.OCI_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": [o for o in known_mount_options() if o not in NOT_YET],
        "linux": {
            "namespaces": sorted(NAMESPACE_TYPES),
            "capabilities": list(CAPABILITIES),  # kernel-number order, as runc lists them
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {"io.github.kago.version": kago.__version__},
    }
