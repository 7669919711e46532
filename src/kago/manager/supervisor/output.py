"""A container's output: its stdout and stderr are named FIFOs under RUNROOT/fifos/<id>, which
the container holds open read-write (so its writes never fail with EPIPE while no supervisor
reads; they block once the 64 KiB pipe is full), read here without blocking and copied into
its rotated json-file log (logs.LogWriter: on a full disk or quota, ENOSPC/EDQUOT, lines are
dropped and counted, not raised). A FIFO that cannot be opened (no fd left, EMFILE) is not
read: the event's error is logged by the loop and the container goes on.
"""

import os

from kago.manager import logs
from kago.manager.supervisor.settings import of
from kago.manager.supervisor.poll import EVENT_READ
from kago.manager.supervisor.state import say

STREAMS = ("stdout", "stderr")


class Output:
    """The Supervisor's output half (needs ``self.paths`` and ``self.sel``)."""

    def _open_output(self, w, record, create):
        fifo_dir = self.paths.fifos(w.cid)
        opts = of(record).log
        w.log = logs.LogWriter(self.paths.log(w.cid), opts.max_size, opts.max_files,
                               warn=lambda text, cid=w.cid: say(f"{cid[:12]}: {text}"))
        for stream in STREAMS:
            path = os.path.join(fifo_dir, stream)
            if create and not os.path.exists(path):
                os.mkfifo(path, 0o600)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            w.readers[stream] = fd
            self.sel.register(fd, EVENT_READ, ("fifo", (w, stream)))

    def _output(self, w, stream, fd):
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            w.log.write(stream, data)
        else:  # every writer is gone: the container (and all it forked) exited
            self._close_reader(w, stream)

    def _close_reader(self, w, stream):
        fd = w.readers.pop(stream, None)
        if fd is not None:
            self.sel.unregister(fd)
            os.close(fd)
            w.log.flush(stream)

    def _drain(self, w):
        for stream, fd in list(w.readers.items()):
            for _ in range(1024):  # bounded: a process left in the host pid ns may still write
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                w.log.write(stream, data)

    def _close_output(self, w):
        self._drain(w)
        for stream in list(w.readers):
            self._close_reader(w, stream)
        if w.log is not None:
            w.log.close()
            w.log = None

