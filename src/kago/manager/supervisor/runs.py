"""The ``run`` request: a command line's ``kago run -d``, ``create`` or ``start`` handed to the
warm run server (kago/cli/run_server.py), which does the verb in a child forked from a
process that has the manager imported already, and answers the command line itself.

The supervisor only brokers: it spawns the run server on the first request (its child, fd 3
its end of a SOCK_SEQPACKET pair), passes each request's connection and the client's stdio
fds to it with the request line (SCM_RIGHTS), and forgets the connection. It never imports
what the run server does (argparse, kago.storage, kago.network...), so its own memory stays
as it was. The run server writes one byte per request finished: while any is in flight the
supervisor is busy (no idle exit). After the idle timeout with none, the supervisor closes
the channel and the run server exits (after its children); so does it when the supervisor
dies. A run server that dies drops the requests it held (their command lines see their
connection end) and the next request spawns another.
"""

import _socket as socket  # see state.py: no socket.py (nor selectors) in the supervisor
import os
import sys
import time

from kago.manager.supervisor.poll import EVENT_READ
from kago.manager.supervisor.state import say

MODULE = "kago.cli.run_server"
CHANNEL_FD = 3
MAX_FDS = 3             # a client passes its stdin, stdout and stderr


class Runs:
    """The Supervisor's broker half for run requests."""

    runs_pid = None         # the run server's pid
    runs_channel = None     # our end of its channel
    runs_inflight = 0       # requests handed over and not finished
    runs_last = 0.0         # when the last one finished (monotonic)
    runs_ready = False      # it said it has its modules loaded

    def _run_request(self, client, line, fds):
        """Hand ``client``'s connection, its request ``line`` and its stdio ``fds`` to the
        run server; the client is ours no more."""
        if len(fds) != MAX_FDS:
            client.send({"ok": False, "code": 125,
                         "error": f"run: the request must pass {MAX_FDS} fds, not {len(fds)}"})
            return False
        try:
            channel = self._run_server()
            if not self.runs_ready:
                # it is still importing (~0.1-0.2 s): the command line does this one itself,
                # as fast as before, and the next ones come here
                client.send({"ok": False, "fallback": True, "code": 125,
                             "error": "run: the run server is starting"})
                return False
            channel.sendmsg([line], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                      fd_bytes([client.sock.fileno(), *fds]))])
        except OSError as e:
            # the client falls back to doing it itself
            client.send({"ok": False, "fallback": True, "code": 125,
                         "error": f"run: the run server cannot take it: {e}"})
            return False
        self.runs_inflight += 1
        return True

    def _run_server(self):
        if self.runs_channel is not None:
            return self.runs_channel
        ours, theirs = socket.socketpair(socket.AF_UNIX,
                                         socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        log = os.open(self.paths.supervisor_log(),
                      os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        argv = [sys.executable, "-m", MODULE]
        try:
            pid = os.posix_spawn(sys.executable, argv, os.environ, file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1),
                (os.POSIX_SPAWN_DUP2, log, 2), (os.POSIX_SPAWN_DUP2, theirs.fileno(),
                                                CHANNEL_FD)])
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(null)
            os.close(log)
        ours.setblocking(False)
        self.runs_pid, self.runs_channel = pid, ours
        self.runs_inflight, self.runs_last, self.runs_ready = 0, time.monotonic(), False
        self.sel.register(ours, EVENT_READ, ("runs", None))
        say(f"run server {pid} spawned")
        return ours

    def _runs_readable(self):
        """Its notes: "r" once ready, "." per request finished; its end: it died or exits."""
        while True:
            try:
                data = self.runs_channel.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._runs_close()
                return
            if data == b"r":
                self.runs_ready = True
                continue
            self.runs_inflight = max(0, self.runs_inflight - data.count(b"."))
            self.runs_last = time.monotonic()

    def _runs_close(self):
        if self.runs_channel is None:
            return
        self.sel.unregister(self.runs_channel)
        self.runs_channel.close()
        self.runs_channel = None
        self.runs_inflight, self.runs_ready = 0, False

    def _runs_reaped(self, pid):
        """Whether ``pid`` was the run server (then its channel is closed too)."""
        if pid != self.runs_pid or pid is None:
            return False
        self.runs_pid = None
        self._runs_close()
        return True

    def _runs_idle_at(self):
        """When an idle run server is let go (None: none to let go)."""
        if self.runs_channel is None or self.runs_inflight:
            return None
        return self.runs_last + self.idle_after

    def _runs_timer(self):
        at = self._runs_idle_at()
        if at is not None and time.monotonic() >= at:
            self._runs_close()  # it exits when it reads the end


def fd_bytes(fds):
    """``fds`` as SCM_RIGHTS ancillary data."""
    return b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)


def received_fds(anc):
    """The fds of a recvmsg's ancillary data (SCM_RIGHTS), each close-on-exec."""
    fds = []
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(raw) - len(raw) % 4
            fds += [int.from_bytes(raw[i:i + 4], sys.byteorder, signed=True)
                    for i in range(0, usable, 4)]
    for fd in fds:
        os.set_inheritable(fd, False)
    return fds
