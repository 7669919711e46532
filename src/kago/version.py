"""kago's version and the OCI runtime-spec version it implements: a leaf module, so the
runtime's modules name them without importing the ``kago`` package (whose ``kago.Client``
belongs to the manager's half)."""

__version__ = "0.1.0"
OCI_VERSION = "1.2.0"
