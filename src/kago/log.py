"""Logging for kago-oci, in runc's formats, without importing ``logging`` (~6 ms here).

Text lines look like logrus' (``time="..." level=error msg="..."``), JSON lines like
``{"level":"error","msg":"...","time":"..."}``: containerd's shim reads the last
``"level":"error"`` line of ``--log`` as the message it shows. The forked container processes
write to the same file descriptor; records are one ``os.write`` on an O_APPEND fd, so lines
from different processes do not interleave.

``phase(name)`` measures a setup phase; with ``--debug`` each one is logged with its duration,
so start latency can be attributed phase by phase.
"""

import os
import time

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class _Config:
    fd = 2
    json = None  # jsonio.dumps once configured for JSON
    level = 30
    owns_fd = False


_cfg = _Config()


def configure(path=None, fmt="text", debug=False):
    """Send records to ``path`` (append) or stderr; ``fmt`` is "text" or "json"."""
    if fmt not in ("text", "json"):
        from kago.errors import UsageError
        raise UsageError(f"invalid log-format: {fmt}")
    if path:
        _cfg.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        _cfg.owns_fd = True
    if fmt == "json":
        # imported now, before any fork: a container process that has switched to the
        # container's root can import nothing (and ``json`` itself costs ~9 ms)
        from kago.jsonio import dumps
        _cfg.json = dumps
    _cfg.level = 10 if debug else 30


def enabled(level):
    return _LEVELS[level] >= _cfg.level


def _timestamp():
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def _format(level, msg, fields):
    if _cfg.json:
        record = {"level": level, "msg": msg, "time": _timestamp()}
        record.update((k, _plain(v)) for k, v in fields.items())
        return _cfg.json(record) + "\n"
    extra = "".join(f" {k}={_quote(v)}" for k, v in fields.items())
    return f"time=\"{_timestamp()}\" level={level} msg={_quote(msg)}{extra}\n"


def _plain(value):
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _quote(value):
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def log(level, msg, **fields):
    if _LEVELS[level] < _cfg.level:
        return
    try:
        os.write(_cfg.fd, _format(level, msg, fields).encode())
    except OSError:
        pass  # a log that cannot be written must not change the container's fate


def debug(msg, **fields):
    log("debug", msg, **fields)


def warning(msg, **fields):
    log("warning", msg, **fields)


def error(msg, **fields):
    log("error", msg, **fields)


def fd():
    """The descriptor records go to (a forked child keeps it open across its fd cleanup)."""
    return _cfg.fd


def logs_to_stderr():
    return _cfg.fd == 2


class phase:
    """``with phase("mounts"):`` logs ``phase mounts took 1.234ms`` at debug level."""

    __slots__ = ("name", "start")

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if _cfg.level <= 10:
            took = (time.perf_counter() - self.start) * 1000
            debug(f"phase {self.name}", ms=f"{took:.3f}", pid=os.getpid())
        return False
