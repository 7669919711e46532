"""The part of ctypes kago uses, built directly on its C engine ``_ctypes``.

``import ctypes`` costs 1.6-2.6 ms here (its __init__ defines some forty types and pulls in
``struct`` and ``ctypes._endian``); ``_ctypes`` alone costs ~0.5 ms, and kago-oci's start-up
is its latency. The classes below are what ctypes/__init__.py defines for the same names (a
C type is a ``_SimpleCData`` subclass with a ``_type_`` code; a foreign function is a
``CFuncPtr`` subclass with flags), so Structure fields, arrays (``T * n``), ``byref`` and
errno capture behave exactly as with ``ctypes``. Only ``kago.kernel`` imports this module.
"""

import _ctypes
from _ctypes import Structure, addressof, byref, get_errno, sizeof  # noqa: F401 - re-exported

_SimpleCData = _ctypes._SimpleCData


class c_int(_SimpleCData):
    _type_ = "i"


class c_uint(_SimpleCData):
    _type_ = "I"


class c_long(_SimpleCData):
    _type_ = "l"


class c_ulong(_SimpleCData):
    _type_ = "L"


class c_uint32(_SimpleCData):
    _type_ = "I"


class c_uint64(_SimpleCData):
    _type_ = "Q"


class c_char_p(_SimpleCData):
    _type_ = "z"


class c_ushort(_SimpleCData):
    _type_ = "H"


class c_void_p(_SimpleCData):
    _type_ = "P"


class c_char(_SimpleCData):
    _type_ = "c"


c_size_t = c_ulong  # LP64


class _Function(_ctypes.CFuncPtr):
    """A libc function returning int, with errno saved for get_errno() (use_errno=True)."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _Program:
    """What CFuncPtr((name, library)) reads from a library: its dlopen handle."""

    _handle = _ctypes.dlopen(None, 0)  # the running program: libc is already mapped


def function(name, restype=c_int):
    """The libc function ``name`` (a symbol of the running process)."""
    fn = _Function((name, _Program))
    fn.restype = restype
    return fn


class _Library:
    """What CFuncPtr((name, library)) reads from a library: its dlopen handle."""

    __slots__ = ("_handle", "path")

    def __init__(self, path):
        self.path = path
        self._handle = _ctypes.dlopen(path, _ctypes.RTLD_LOCAL)  # _ctypes adds RTLD_NOW


def library(path):
    """dlopen the shared library ``path`` (a soname such as "libseccomp.so.2" is looked up
    the dynamic linker's way). Raises OSError when it cannot be loaded."""
    return _Library(path)


def library_function(lib, name, restype=c_int):
    """The function ``name`` of a ``library()``; errno is saved for get_errno() as for libc's."""
    fn = _Function((name, lib))
    fn.restype = restype
    return fn
