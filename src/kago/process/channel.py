"""Typed messages between the runtime (parent) and the processes it forks.

A SOCK_SEQPACKET socketpair keeps message boundaries; each message is a ``marshal``-ed dict (a
builtin: no import cost, and both ends are the same interpreter). Exceptions cannot cross a
fork, so errors travel as ``error`` messages and are rebuilt as KagoError in the parent.

Protocol (P = runtime, I = intermediate child, C = container init or exec'd process). With a
user namespace P forks I, which forks C; without one P forks C directly, and the "hello" and
"pid" rows do not happen (P knows C's pid from the fork).

| from | message                      | meaning / reply                                            |
| ---- | ---------------------------- | ---------------------------------------------------------- |
| I    | {"t": "hello", "userns": b}  | I exists (after unshare(CLONE_NEWUSER) when b). P puts I in |
|      |                              | the cgroup, writes I's uid/gid maps, replies {"t": "ok"}    |
| I    | {"t": "pid", "pid": n}       | C forked; n is its pid in P's pid namespace; I then exits   |
| P    | {"t": "go"}                  | cgroup limits are in place: C, which mounted meanwhile,     |
|      |                              | goes on to its devices, hooks and the rest                  |
| C    | {"t": "hooks"}               | mounts done, before pivot_root: P runs prestart +           |
|      |                              | createRuntime hooks, replies {"t": "ok", "state": json}     |
| C    | {"t": "seccomp"} + fd        | (a profile with SCMP_ACT_NOTIFY) the filter is loaded; the |
|      |                              | fd (SCM_RIGHTS) is its listener. P sends it and the state  |
|      |                              | to listenerPath, replies {"t": "ok"}                        |
| C    | {"t": "ready"}               | set up; C now waits on the exec fifo (create) or execs (run)|
| I, C | {"t": "error", ...}          | kind, errno, msg: the step that failed; the sender exits    |
| P    | {"t": "abort"}               | give up (a hook failed); the receiver exits                 |

End of file on either side means the other process died: the survivor gives up.
"""

import _socket
import marshal
import sys

from kago import errors

_MAX = 65536


class ChannelClosed(errors.KagoError):
    pass


class Channel:
    __slots__ = ("sock",)

    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def pair(cls):
        # _socket, not socket: socket.py imports enum and selectors (~9 ms)
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        return cls(a), cls(b)

    def send(self, **msg):
        self.sock.send(marshal.dumps(msg))

    def send_fd(self, fd, **msg):
        """A message carrying one file descriptor (SCM_RIGHTS); the receiver finds it in
        ``msg["fds"]`` when it asks ``recv(with_fds=True)``."""
        self.sock.sendmsg([marshal.dumps(msg)], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                                  fd.to_bytes(4, sys.byteorder, signed=True))])

    def recv(self, expect=None, with_fds=False):
        try:
            data, fds = self._recv(with_fds)
        except ConnectionResetError:
            # The other side exited with a message of ours unread (a "go" or "clone" that
            # crossed its error): the kernel reports that once, before the messages it sent
            # us, which are still queued. Read on: its error message is the one to report.
            data, fds = self._recv(with_fds)
        if not data:
            raise ChannelClosed("the other side of the channel exited")
        msg = marshal.loads(data)
        if with_fds:
            msg["fds"] = fds
        if msg.get("t") == "error":
            raise rebuild_error(msg)
        if expect and msg.get("t") not in expect:
            raise errors.KagoError(f"unexpected message {msg.get('t')!r}, wanted {expect}")
        return msg

    def _recv(self, with_fds):
        if not with_fds:
            return self.sock.recv(_MAX), None
        data, anc, _flags, _addr = self.sock.recvmsg(_MAX, _socket.CMSG_SPACE(4 * 4))
        fds = [int.from_bytes(raw[i:i + 4], sys.byteorder, signed=True)
               for level, kind, raw in anc
               if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
               for i in range(0, len(raw) - len(raw) % 4, 4)]
        return data, fds

    def send_error(self, exc):
        try:
            self.send(t="error", kind=type(exc).__name__, errno=getattr(exc, "errno", None),
                      msg=describe(exc))
        except OSError:
            pass  # the parent is gone; nobody to tell

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()


def describe(exc):
    """The one line the user sees: a plain OSError that escaped a step (os.stat, os.open...)
    as "PATH: reason", lower case, not Python's "[Errno 13] Permission denied: 'PATH'"."""
    if isinstance(exc, OSError) and not isinstance(exc, errors.KagoError) and exc.strerror:
        reason = exc.strerror.lower()
        return f"{exc.filename}: {reason}" if exc.filename is not None else reason
    return str(exc) or type(exc).__name__


def rebuild_error(msg):
    kind = msg.get("kind")
    cls = getattr(errors, kind, None)
    text = msg.get("msg", "")
    if cls is errors.ExecError:
        return errors.ExecError(text)
    err = errors.KagoError(text)
    err.errno = msg.get("errno")
    err.kind = kind
    return err
