"""kago (籠, "cage"): a Linux container runtime and manager built from the kernel's own parts.

Data flows one way: OCI bundle (``oci``) -> Plan (``plan``, pure) -> fork choreography
(``process``) -> mechanisms (``linux``) -> kernel (``kernel``, the only ctypes user).
``runtime`` is the library API; ``cli.oci`` is the runc-compatible ``kago-oci`` command.
Nothing here imports anything heavy: ``kago-oci``'s start-up is its latency.
"""

from kago.version import OCI_VERSION, __version__  # noqa: F401 (kago.__version__)


def __getattr__(name):
    """``kago.Client`` and ``kago.Container`` (kago.client), imported on first use: ``import
    kago`` is on kago-oci's start path, which must not load the manager."""
    if name in ("Client", "Container"):
        from kago import client
        return getattr(client, name)
    raise AttributeError(f"module 'kago' has no attribute {name!r}")
