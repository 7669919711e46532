"""cgroupfs file I/O: one read, one write(2) per value (cgroupfs acts on each write), and
errors that name the file. Every cgroups module reads and writes through these."""

import os

from kago.errors import CgroupError


def _strerror(err):
    return os.strerror(err).lower() if err else "failed"


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise CgroupError(path, f"cannot read: {_strerror(e.errno)}", e.errno) from e


def write_text(path, value, what=None):
    """Write ``value`` in one write(2): cgroupfs acts on each write, so it must not be split."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(path, f"cannot open: {_strerror(e.errno)}", e.errno) from e
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise CgroupError(path, f"{what or 'write ' + value}: {_strerror(e.errno)}", e.errno) from e
    finally:
        os.close(fd)
