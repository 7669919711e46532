"""Container output as docker's json-file log: one JSON object per line, rotated by size.

    {"log": "hello\\n", "stream": "stdout", "time": "2025-01-02T03:04:05.123456789Z"}

``LogWriter`` is the supervisor's half: it gets raw bytes from a container's stdout/stderr
FIFOs, cuts them into lines (a line longer than 16 KiB is cut, as docker does, and a partial
line is kept until its newline or the end of the stream) and appends them to ``ctr.log``.
When the file would pass ``max_size`` it is renamed to ``ctr.log.1`` (older files shift up,
the oldest beyond ``max_files`` is dropped) and a fresh one started.

A log that cannot be written (a full disk: ENOSPC, EDQUOT; no fd left: EMFILE, ENFILE; any
other OSError) never stops the writer's caller, the supervisor of every container: the lines
are dropped and counted (``dropped``), ``warn`` is called once when the dropping starts and
once when writing works again (with the count), and every later line tries again (reopening
the file if it had to be closed), so capture resumes by itself when space or fds come back.
A line cut by a short write is ended with a newline before the next one.

``read`` / ``follow`` are the ``kago logs`` half: oldest file first, with ``--since`` and
``--tail``; ``follow`` keeps reading as the file grows and notices a rotation by its inode.
"""

import errno
import os
import time

from kago.jsonio import std_dumps, std_loads

MAX_LINE = 16 * 1024


def timestamp(ns=None):
    """RFC 3339 with nanoseconds, UTC (docker's log time)."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def parse_timestamp(text):
    """The inverse of ``timestamp`` (to the microsecond), as epoch seconds."""
    base, _, frac = text.rstrip("Z").partition(".")
    import calendar
    secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


class LogWriter:
    __slots__ = ("cut", "dropped", "dropped_before", "failing", "fd", "max_files", "max_size",
                 "partial", "path", "size", "warn")

    def __init__(self, path, max_size=10 << 20, max_files=3, warn=None):
        self.path = path
        self.max_size = max(int(max_size), 1024)
        self.max_files = max(int(max_files), 1)
        self.warn = warn            # warn(text): once when lines start to be dropped, once after
        self.dropped = 0            # lines dropped because the log could not be written
        self.dropped_before = 0     # ... before the current failure began
        self.failing = None         # the error that is making us drop lines, while it lasts
        self.cut = False            # the last write was short: the file ends mid-line
        self.fd = None
        self.size = 0
        self.partial = {"stdout": b"", "stderr": b""}
        try:
            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
            self._open()
        except OSError as e:
            self._failed(e, 0)

    def _open(self):
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                          0o600)
        st = os.fstat(self.fd)
        if st.st_mode & 0o077:
            os.fchmod(self.fd, 0o600)  # output is the container's secrets too: its owner's only
        self.size = st.st_size

    def write(self, stream, data):
        """Append ``data`` from ``stream``; only complete lines (or 16 KiB pieces) go out."""
        buf = self.partial[stream] + data
        records = []
        while True:
            nl = buf.find(b"\n")
            if nl < 0 or nl >= MAX_LINE:
                if len(buf) < MAX_LINE:
                    break
                records.append(self._record(stream, buf[:MAX_LINE]))
                buf = buf[MAX_LINE:]
                continue
            records.append(self._record(stream, buf[:nl + 1]))
            buf = buf[nl + 1:]
        self.partial[stream] = buf
        self._append(records)

    def flush(self, stream=None):
        """The end of a stream: write what is left of its last line."""
        for name in ([stream] if stream else list(self.partial)):
            if self.partial[name]:
                self._append([self._record(name, self.partial[name])])
                self.partial[name] = b""

    def _record(self, stream, line):
        text = line.decode("utf-8", errors="replace")
        return (std_dumps({"log": text, "stream": stream, "time": timestamp()},
                          ensure_ascii=False) + "\n").encode()

    def _append(self, records):
        """One write per run of records that fits; rotate before the one that would not."""
        batch = b""
        for rec in records:
            if self.size + len(batch) + len(rec) > self.max_size and self.size + len(batch):
                self._write(batch)
                batch = b""
                self._rotate()
            batch += rec
        self._write(batch)

    def _write(self, data):
        if not data:
            return
        try:
            if self.fd is None:
                self._open()
            if self.cut:
                os.write(self.fd, b"\n")  # end the line a short write cut (readers skip it)
                self.size += 1
                self.cut = False
            done = os.write(self.fd, data)
            self.size += done
            if done < len(data):  # a short write: the disk filled up mid-way
                self.cut = True
                self._failed(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
                             data.count(b"\n", done))  # the cut record and those after
                return
        except OSError as e:
            self._failed(e, data.count(b"\n"))
            return
        if self.failing is not None:
            self._say(f"{self.path}: writing again after dropping "
                      f"{self.dropped - self.dropped_before} lines ({self.failing})")
            self.failing = None

    def _failed(self, error, lines):
        if self.failing is None:
            self.dropped_before = self.dropped
            self.failing = error.strerror.lower() if error.strerror else str(error)
            self._say(f"{self.path}: {self.failing}: dropping log lines until it can be "
                      f"written again")
        self.dropped += lines

    def _say(self, text):
        if self.warn is not None:
            self.warn(text)

    def _rotate(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        self.size = 0
        self.cut = False
        try:
            if self.max_files == 1:
                os.unlink(self.path)
            else:
                # ctr.log -> .1 -> .2 ...: renaming onto the last one drops the oldest
                for n in range(self.max_files - 1, 0, -1):
                    src = self.path if n == 1 else f"{self.path}.{n - 1}"
                    if os.path.exists(src):
                        os.rename(src, f"{self.path}.{n}")
            self._open()
        except OSError as e:
            self._failed(e, 0)  # the next write tries to open it again

    def close(self):
        self.flush()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def files(path, max_files=10):
    """The log files of one container, oldest first."""
    out = [f"{path}.{n}" for n in range(max_files, 0, -1) if os.path.exists(f"{path}.{n}")]
    return out + ([path] if os.path.exists(path) else [])


def _entries(lines):
    for line in lines:
        try:
            yield std_loads(line)
        except ValueError:
            continue  # a line cut by a crash mid-write


def read(path, since=None, tail=None, max_files=10):
    """The log entries (dicts), oldest first; ``since`` epoch seconds, ``tail`` last N."""
    entries = []
    for name in files(path, max_files):
        with open(name, "rb") as f:
            entries.extend(_entries(f.read().splitlines()))
    if since is not None:
        entries = [e for e in entries if parse_timestamp(e["time"]) >= since]
    if tail is not None:
        entries = entries[-tail:] if tail > 0 else []
    return entries


def follow(path, stop, interval=0.05, offset=None):
    """Yield entries written to ``path`` from byte ``offset`` (None: its end now) until
    ``stop()`` is true; ``stop`` is checked before each read, so what was written before it
    turned true is still drained. A rotation (a new inode) restarts at the new file's start."""
    fd, ino, pos, rest = None, None, 0, b""
    while True:
        if fd is None and os.path.exists(path):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            ino = os.fstat(fd).st_ino
            pos = os.fstat(fd).st_size if offset is None else offset
            offset = 0
        finished = stop()
        if fd is not None:
            chunk = os.pread(fd, 1 << 20, pos)
            while chunk:
                pos += len(chunk)
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                yield from _entries(lines)
                chunk = os.pread(fd, 1 << 20, pos)
            try:
                rotated = os.stat(path).st_ino != ino
            except FileNotFoundError:
                rotated = True
            if rotated:
                os.close(fd)
                fd, rest = None, b""
                continue
        if finished:
            break
        time.sleep(interval)
    if fd is not None:
        os.close(fd)
