"""``prctl(PR_SET_CHILD_SUBREAPER, 1)`` on ``_ctypes`` alone: the manager's supervisor's one
call into C. ``kago.kernel.libc`` and its ``ffi`` types would stay in the supervisor's heap
for its whole life (~0.14 MB more anonymous memory, bench/supervisor_memory); the runtime's
start path, which needs them, runs in the supervisor's start forker.
"""

import _ctypes

from kago.errors import KernelError
from kago.kernel.consts import PR_SET_CHILD_SUBREAPER


class _Int(_ctypes._SimpleCData):
    _type_ = "i"


class _Function(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Int


class _Program:
    """What CFuncPtr((name, library)) reads from a library: its dlopen handle."""

    _handle = _ctypes.dlopen(None, 0)


def become_subreaper():
    """Make this process the subreaper of its descendants: an orphan among them (a container
    whose start worker exited) becomes its child, so that it reaps it and learns its status."""
    if _Function(("prctl", _Program))(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == -1:
        raise KernelError("prctl", _ctypes.get_errno(), None, "PR_SET_CHILD_SUBREAPER")
