"""The start forker: a fork of the supervisor that holds the warmed runtime and forks each
start's worker (starts.fork_worker), so that the supervisor itself never imports the runtime's
start path (~1.2 MB of its heap for its whole life, bench/supervisor_memory).

The supervisor forks it on a start when none runs (its end of a SOCK_SEQPACKET pair kept as
``forker_channel``), or ahead of the start when a run request goes to the run server (which
creates the container first). The forker closes every other fd it inherited (the supervisor's
lock, sockets, FIFOs), imports and warms kago's runtime (what the supervisor did on its first
start before), and serves. An order is one message, JSON {"cid", "runtime", "root",
"console", "restore"}, with the worker's stdout, stderr and report pipe as SCM_RIGHTS; the
answer, one message per order in their order, is the worker's pid ("error: ..." when it could
not fork), read by the supervisor's loop. The worker reports to the supervisor on its pipe as
before, and its container's init, orphaned, comes to the supervisor: the forker is not a
subreaper (the flag is not inherited by a fork), the supervisor is. The forker ignores
SIGCHLD, so its workers are reaped by the kernel.

The supervisor closes the channel once no order came for ``FORKER_IDLE`` s, and the forker
exits when it reads the end (as when the supervisor dies); the next start forks another.
"""

import _signal as signal  # see starts.py: no signal.py (enums) in the supervisor
import _socket as socket  # see state.py: no socket.py in the supervisor
import os
import time

from kago.jsonio import std_dumps, std_loads
from kago.manager.errors import ManagerError
from kago.manager.supervisor.poll import EVENT_READ
from kago.manager.supervisor.runs import fd_bytes, received_fds
from kago.manager.supervisor.state import say

FORKER_IDLE = 5.0    # s without an order before the forker is let go (a burst keeps it)
ANSWER_WAIT = 30.0   # s an order may wait for room in the forker's queue
ORDER_FDS = 3        # the worker's stdout, stderr and report pipe
FDS_SPACE = 64       # ancillary room for them (CMSG_SPACE(3 * 4) is 32)


class Forker:
    """The Supervisor's side of the start forker."""

    forker_pid = None      # the forker's pid
    forker_channel = None  # our end of its channel
    forker_last = 0.0      # when the last order went (monotonic)
    forker_pending = ()    # (report fd, cid) of the orders not answered yet, in order

    def fork_start(self, record, writers, console, restore):
        """Order the worker of ``record``'s start from the forker: the read end of its
        report pipe. The forker's answer (the worker's pid, for a stuck worker's kill) comes
        later on the channel (``_forker_readable``): a burst of starts never waits for it.
        One retry with a new forker if this one is gone."""
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        order = std_dumps({"cid": record["id"], "runtime": record.get("runtime"),
                           "root": record["runtime_root"], "console": console,
                           "restore": restore}).encode()
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd_bytes([*writers, report_w]))]
        try:
            for attempt in (1, 2):
                try:
                    self._forker().sendmsg([order], ancillary)
                    break
                except OSError as e:
                    self._forker_close()
                    if attempt == 2:
                        raise ManagerError(f"start {record['id'][:12]}: the start forker: "
                                           f"{os.strerror(e.errno) if e.errno else e}") from None
        except BaseException:
            os.close(report_r)
            raise
        finally:
            os.close(report_w)
        self.forker_last = time.monotonic()
        self.forker_pending.append((report_r, record["id"]))
        os.set_blocking(report_r, False)
        return report_r

    def _forker(self):
        if self.forker_channel is not None:
            return self.forker_channel
        ours, theirs = socket.socketpair(socket.AF_UNIX,
                                         socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        import gc
        gc.freeze()  # our objects out of the young collections (gc.freeze's documented use
        #              before a fork): a collection here would write to, and so copy, the
        #              pages the forker shares with us
        pid = os.fork()
        if pid == 0:
            try:
                ours.close()
                serve(theirs, self.paths)
            finally:
                os._exit(0)
        # back into the oldest generation, which only a full collection walks: frozen for
        # good, a cycle that became garbage since would stay in a long-lived supervisor
        gc.unfreeze()
        theirs.close()
        # a send waits while the forker's queue is full (the first orders, while it imports)
        ours.settimeout(ANSWER_WAIT)
        self.forker_pid, self.forker_channel, self.forker_pending = pid, ours, []
        self.sel.register(ours, EVENT_READ, ("forker", None))
        return ours

    def _forker_readable(self):
        """One answer (the selector comes back for the next): a worker's pid, or why the
        forker could not fork it (that start fails with it). Its end: it died."""
        try:
            answer = self.forker_channel.recv(4096, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            answer = b""
        if not answer or not self.forker_pending:
            # the forker died: the pipes of the orders it held end without a report
            self._forker_close()
            return
        fd, cid = self.forker_pending.pop(0)
        if fd not in self.starting or self.starting[fd][0].cid != cid:
            return  # its report came first (the fd may serve another start by now)
        text = answer.decode(errors="replace")
        if text.startswith("error: "):
            self._report(fd, std_dumps({"error": text[7:], "code": 125}).encode())
        elif fd in self.workers:
            self.workers[fd] = (int(text), self.workers[fd][1])

    def forker_ahead(self):
        """A start is on its way (a run request went to the run server, which creates the
        container first): have the forker ready, importing while the create runs."""
        try:
            self._forker()
        except OSError as e:
            say(f"start forker: {e}")  # the start forks one, or says why it cannot
            return
        self.forker_last = time.monotonic()

    def _forker_close(self):
        """Let the forker go: it exits when it reads the end of its channel."""
        if self.forker_channel is not None:
            self.sel.unregister(self.forker_channel)
            self.forker_channel.close()
            self.forker_channel, self.forker_pending = None, ()

    def _forker_reaped(self, pid):
        """Whether ``pid`` was the forker (then its channel is closed too)."""
        if pid is None or pid != self.forker_pid:
            return False
        self.forker_pid = None
        self._forker_close()
        return True

    def _forker_idle_at(self):
        if self.forker_channel is None or self.forker_pending:
            return None
        return self.forker_last + FORKER_IDLE

    def _forker_timer(self):
        at = self._forker_idle_at()
        if at is not None and time.monotonic() >= at:
            self._forker_close()


def serve(channel, paths):
    """The forker's life (in the fork; never returns)."""
    import gc
    gc.freeze()  # the supervisor's objects (sockets among them) are never collected here:
    #              their fds are closed below, and their numbers reused by orders' fds
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # workers reaped by the kernel
    keep = channel.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 0x7FFFFFFF)  # close_range(2): no limit to look up (child.py)
    try:  # kago's own runtime, the default: imported before the first order comes
        from kago.runtime import container
        container.warm()
    except Exception as e:  # noqa: BLE001 - the orders import it again, and say why not
        say(f"start forker: warming the runtime: {type(e).__name__}: {e}")
    runtimes = {}
    while True:
        try:
            data, anc, _flags, _addr = channel.recvmsg(65536, FDS_SPACE)
        except OSError:
            data, anc = b"", []
        fds = received_fds(anc)
        if not data:
            os._exit(0)  # the supervisor let us go, or died
        try:
            channel.send(_answer(data, fds, runtimes, paths, (keep,)).encode())
        except OSError:
            os._exit(0)
        finally:
            for fd in fds:
                os.close(fd)


def _answer(data, fds, runtimes, paths, inherited):
    from kago.manager.supervisor.starts import fork_worker
    try:
        order = std_loads(data)
        if len(fds) != ORDER_FDS:
            return f"error: the order passed {len(fds)} fds, not {ORDER_FDS}"
        runtime = _warmed(runtimes, (order["runtime"], order["root"]))
        return str(fork_worker(runtime, order["cid"], paths, fds[:2], fds[2],
                               order["console"], order["restore"], inherited))
    except Exception as e:  # noqa: BLE001 - answered, the forker serves on
        say(f"start forker: {type(e).__name__}: {e}")
        return f"error: {type(e).__name__}: {e}"


def _warmed(runtimes, key):
    if key not in runtimes:
        from kago.manager.runtimes import open_runtime
        runtimes[key] = open_runtime(*key)
        runtimes[key].warm()
        import gc
        gc.freeze()  # what is loaded now stays out of collections: fewer copied pages
        #              in each forked worker (gc.freeze's documented use before fork)
    return runtimes[key]

