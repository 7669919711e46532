"""A detached container's terminal (``run -dit``): the supervisor holds the pty master, as
conmon does for podman.

The start gives the runtime a console socket (``Paths.console``, listened on here before the
worker forks); the runtime's connection brings the master in an SCM_RIGHTS message (runc's
protocol). What the container writes to its terminal goes into its log as stdout (docker's)
and to every attached client. ``attach`` requests get a dup of the master with their reply
(SCM_RIGHTS): the client writes its keyboard to it and sets its size itself; after that reply
the connection carries only the container's output, raw, until the container ends (the
supervisor closes it) or the client leaves (detach keys). A client that does not keep up
(its socket buffer full) is dropped rather than blocking the loop.

A supervisor that dies takes the master with it: the container's terminal hangs up (as with
conmon); a supervisor that adopts a running tty container has no terminal to attach to.
"""

import _socket as socket  # see state.py: no socket.py here
import os
import sys

from kago.manager.supervisor.poll import EVENT_READ
from kago.manager.supervisor.state import accept, listen_unix, say


def wants_console(record):
    from kago.manager.supervisor.settings import of
    return of(record).tty


class Console:
    """The Supervisor's terminal half (needs ``self.paths``, ``self.sel``, ``self.watched``)."""

    def _listen_console(self, w):
        """The console socket for one start of ``w``; returns its path."""
        path = self.paths.console(w.cid)
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        if len(path.encode()) > 107:
            from kago.manager.errors import ManagerError
            raise ManagerError(f"console socket path {path}: longer than a unix socket's "
                               f"107 bytes: use a shorter --runroot")
        sock = listen_unix(path, 1)
        sock.setblocking(False)
        w.console = sock
        self.sel.register(sock, EVENT_READ, ("console", w))
        return path

    def _console_event(self, w, sock):
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):  # the runtime connects
            try:
                conn = accept(sock)
            except BlockingIOError:
                return
            self._unlisten(w)
            conn.setblocking(False)
            w.console = conn
            self.sel.register(conn, EVENT_READ, ("console", w))
            return
        try:  # the master comes, or the runtime gave up
            _msg, anc, _flags, _addr = sock.recvmsg(1024, socket.CMSG_SPACE(4 * 4))
        except BlockingIOError:
            return
        fds = []
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += [int.from_bytes(data[at:at + 4], sys.byteorder, signed=True)
                        for at in range(0, len(data) - len(data) % 4, 4)]
        self._unlisten(w)
        if not fds:
            return
        for extra in fds[1:]:
            os.close(extra)
        w.master = fds[0]
        os.set_blocking(w.master, False)
        self.sel.register(w.master, EVENT_READ, ("pty", w))
        for client in self.attaching.pop(w.cid, []):
            self._attach(client, w)

    def _unlisten(self, w):
        sock, w.console = w.console, None
        if sock is None:
            return
        try:
            self.sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
        try:
            os.unlink(self.paths.console(w.cid))
        except FileNotFoundError:
            pass

    def _pty_output(self, w):
        """Copy what the container wrote to its terminal; False when nothing was there."""
        try:
            data = os.read(w.master, 65536)
        except BlockingIOError:
            return False
        except OSError:  # EIO: the container's last holder of its terminal closed it
            data = b""
        if not data:
            self._close_master(w)
            return False
        if w.log is not None:
            w.log.write("stdout", data)
        for client in list(w.attachers):
            try:
                sent = client.sock.send(data, socket.MSG_DONTWAIT)
            except OSError:
                sent = -1
            if sent != len(data):
                say(f"{w.cid[:12]}: an attached client does not keep up: dropped")
                self._drop(client)
        return True

    def _close_master(self, w):
        fd, w.master = w.master, None
        if fd is not None:
            self.sel.unregister(fd)
            os.close(fd)
        for client in list(w.attachers):
            self._drop(client)  # the attached command line sees the end of the output

    def _close_console(self, w):
        self._unlisten(w)
        for _ in range(1024):  # what it wrote before it ended (bounded: a child it left writes on)
            if w.master is None or not self._pty_output(w):
                break
        self._close_master(w)
        for client in self.attaching.pop(w.cid, []):
            client.send({"ok": False, "id": w.cid, "code": 125,
                         "error": f"container {w.cid[:12]} ended before its terminal came"})

    def _close_output(self, w):
        self._close_console(w)
        super()._close_output(w)

    # --- clients
    def _attach_request(self, client, cid, before_start=False):
        """``before_start`` (``start -ai``): the client's start request follows; its reply
        comes when the terminal does (or an error if the start fails)."""
        w = self.watched.get(cid)
        if w is None:
            w = next((entry[0] for entry in self.starting.values() if entry[0].cid == cid),
                     None)
        if w is None and before_start:
            self.attaching.setdefault(cid, []).append(client)
            return
        if w is None:
            client.send({"ok": False, "id": cid, "code": 125,
                         "error": f"container {cid[:12]} is not running"})
        elif w.master is not None:
            self._attach(client, w)
        elif w.console is not None:  # starting: the terminal is on its way
            self.attaching.setdefault(cid, []).append(client)
        else:
            client.send({"ok": False, "id": cid, "code": 125,
                         "error": f"container {cid[:12]} has no terminal this supervisor "
                                  f"holds (not started with -t, or started by another one)"})

    def _attach(self, client, w):
        line = (b'{"ok": true, "id": "' + w.cid.encode() + b'"}\n')
        try:
            client.sock.sendmsg([line], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                          w.master.to_bytes(4, sys.byteorder))])
        except OSError:
            self._drop(client)
            return
        client.attached = w
        w.attachers.append(client)

    def _detach(self, client):
        """A dropped client is no longer attached, nor waiting to be."""
        w = client.attached
        if w is not None and client in w.attachers:
            w.attachers.remove(client)
        client.attached = None
        for cid, waiting in list(self.attaching.items()):
            while client in waiting:
                waiting.remove(client)
            if not waiting:
                del self.attaching[cid]
