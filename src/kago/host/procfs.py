"""/proc readers: a process's state, start time and command line (proc(5), /proc/PID/stat and
/proc/PID/cmdline)."""

import os


def _stat(pid, proc="/proc"):
    """(state letter, start time in clock ticks) of ``pid``, or None if there is no such pid."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rfind(b")") + 2:].split()  # comm may contain spaces and ')'
    return fields[0].decode(), int(fields[19])


def start_time(pid, proc="/proc"):
    """Field 22 of /proc/PID/stat, also for a zombie (it still has one); None if gone."""
    st = _stat(pid, proc)
    return st[1] if st else None


def alive(pid, started, proc="/proc"):
    """True if ``pid`` is the process that started at ``started`` and has not exited.

    An unknown start time is never alive: a recycled pid must not pass for the container."""
    if not pid or started is None:
        return False
    st = _stat(pid, proc)
    return st is not None and st[0] not in ("Z", "X") and st[1] == started


def argv(pid, proc="/proc"):
    """The command line of ``pid`` as a list of bytes words (/proc/PID/cmdline split at its
    NULs, the terminating one dropped); None if there is no such pid or it cannot be read.
    A zombie or a kernel thread gives an empty list."""
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as f:
            data = f.read()
    except OSError:
        return None
    words = data.split(b"\0")
    if words and words[-1] == b"":
        words.pop()
    return words


def processes(proc="/proc"):
    """(pid, argv) of every process readable now; ones that end while listed are skipped."""
    for entry in os.listdir(proc):
        if entry.isdigit():
            words = argv(entry, proc)
            if words is not None:
                yield int(entry), words
