"""A running slirp4netns for one network namespace: start (synchronous and bounded),
published ports through its API socket, and stop (by PID, waited for)."""

import os
import select
import subprocess
import tempfile
import time
from dataclasses import dataclass

from kago.network.ports import PortMapping
from kago.network.rootless import api, command, hostports
from kago.network.rootless.errors import ApiRefused, RootlessNetError

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Forward:
    """One published port: ``host_addr:host_port`` on the host to ``guest_port`` in the
    namespace (slirp4netns's own ``id`` for removing it)."""
    id: int
    proto: str
    host_addr: str
    host_port: int
    guest_port: int


def _log_tail(log, limit=300):
    log.seek(0)
    lines = [line.strip() for line in log.read().decode(errors="replace").splitlines()]
    text = "; ".join(line for line in lines if line)
    return text[-limit:] if text else "no output"


def _wait_ready(fd, timeout):
    """True once slirp4netns wrote its ready byte; False if it closed the pipe (exited)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            return os.read(fd, 16).startswith(b"1")


def _exited_within(proc, timeout):
    """Whether ``proc`` ends within ``timeout`` seconds, woken by its pidfd the moment it
    does (Popen.wait's own timeout polls with sleeps of up to 50 ms)."""
    if proc.poll() is not None:
        return True
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # gone already, or a kernel without pidfds
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


class Slirp:
    def __init__(self, proc, pid, api_socket, exit_fd, log, uid, own_log=True):
        self.proc, self.target_pid, self.api_socket = proc, pid, api_socket
        self._exit_fd, self._log, self.uid = exit_fd, log, uid
        self._own_log = own_log     # a temporary log is ours to close; a caller's is not

    @property
    def pid(self):
        return self.proc.pid

    @classmethod
    def start(cls, pid, api_socket, binary=None, user=None, mtu=command.MTU,
              timeout=START_TIMEOUT, exit_fd=None, log=None, detach=False,
              host_loopback=False, sandbox=False, seccomp=False):
        """slirp4netns for the network and user namespace of ``pid``, returning once its
        tap is configured and its API socket listens (or within ``timeout`` seconds, an
        error). ``user``: (uid, gid) to run slirp4netns as, for a root caller acting for an
        unprivileged one; by default it runs as the caller.

        By default slirp4netns lives as long as this object: it exits when ``stop`` closes
        the pipe it watches. ``exit_fd``: an fd of the caller's that slirp4netns watches
        instead (a pidfd: it exits once that process is reaped); ``detach``: its own session,
        so it outlives the caller; ``log``: a file for its output (else a temporary one).
        ``host_loopback``, ``sandbox``, ``seccomp``: see ``command.argv``."""
        binary = command.find(binary)
        if os.path.lexists(api_socket):
            raise RootlessNetError(f"slirp4netns API socket {api_socket} already exists: "
                                   f"another slirp4netns may use it; remove it or pick another")
        exit_w = None
        if exit_fd is None:
            exit_fd, exit_w = os.pipe()
        ready_r, ready_w = os.pipe()
        own_log = log is None
        log = tempfile.TemporaryFile() if own_log else log
        extra = {}
        if user is not None:
            extra = {"user": user[0], "group": user[1], "extra_groups": []}
        argv = command.argv(binary, pid, api_socket, exit_fd, ready_w, mtu=mtu,
                            host_loopback=host_loopback, sandbox=sandbox, seccomp=seccomp)
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    pass_fds=(exit_fd, ready_w), start_new_session=detach,
                                    **extra)
        except OSError as e:
            for fd in (exit_w, ready_r):
                if fd is not None:
                    os.close(fd)
            if own_log:
                log.close()
            raise RootlessNetError(f"cannot start {binary}: {e.strerror or e}") from None
        finally:
            if exit_w is not None:
                os.close(exit_fd)
            os.close(ready_w)
        slirp = cls(proc, pid, api_socket, exit_w, log, os.geteuid() if user is None
                    else user[0], own_log)
        try:
            ready = _wait_ready(ready_r, timeout)
        except TimeoutError:
            slirp.stop()
            raise RootlessNetError(f"slirp4netns for pid {pid} was not ready within "
                                   f"{timeout:g}s: {_log_tail(log)}") from None
        finally:
            os.close(ready_r)
        if not ready:
            reason = _log_tail(log)
            slirp.stop()
            raise RootlessNetError(f"slirp4netns for pid {pid} failed to start: {reason}")
        return slirp

    def _call(self, message):
        if self.proc.poll() is not None:
            raise ApiRefused(api.describe(message), f"slirp4netns (pid {self.pid}) exited "
                             f"with {self.proc.returncode}: {_log_tail(self._log)}")
        return api.call(self.api_socket, message)

    def add_forward(self, host_port, guest_port, proto="tcp", host_addr="127.0.0.1"):
        """Publish ``host_addr:host_port`` (IPv4; "" or 0.0.0.0 for every address) to
        ``guest_port`` in the namespace."""
        mapping = PortMapping(host_port, guest_port, proto, host_addr)
        if mapping.family == 6:
            raise RootlessNetError(f"host address {mapping.host_ip}: slirp4netns publishes "
                                   f"IPv4 addresses only")
        addr = mapping.host_ip or "0.0.0.0"
        hostports.check_privileged(mapping.host_port, self.uid,
                                   hostports.unprivileged_port_start())
        hostports.check_free(mapping.proto, addr, mapping.host_port)
        message = api.add_hostfwd(mapping.proto, addr, mapping.host_port,
                                  mapping.container_port)
        try:
            reply = self._call(message)
        except ApiRefused:
            hostports.check_free(mapping.proto, addr, mapping.host_port)  # a race: say so
            raise
        if not isinstance(reply, dict) or not isinstance(reply.get("id"), int):
            raise ApiRefused(api.describe(message), f"reply without an id: {reply!r}")
        return Forward(reply["id"], mapping.proto, addr, mapping.host_port,
                       mapping.container_port)

    def remove_forward(self, forward):
        """Withdraw a published port (a Forward or its id)."""
        forward_id = forward.id if isinstance(forward, Forward) else forward
        self._call(api.remove_hostfwd(forward_id))

    def forwards(self):
        """The published ports slirp4netns holds now."""
        entries = self._call(api.list_hostfwd()).get("entries", [])
        return [Forward(e["id"], e["proto"], e["host_addr"], e["host_port"], e["guest_port"])
                for e in entries]

    def stop(self, timeout=STOP_TIMEOUT):
        """End slirp4netns: close its exit fd, wait; SIGKILL by PID if it lingers. Its API
        socket file goes too. Safe to call twice."""
        if self._exit_fd is not None:
            os.close(self._exit_fd)
            self._exit_fd = None
        elif self.proc.poll() is None:  # it watches an fd that is not ours: ask it to end
            self.proc.terminate()
        if not _exited_within(self.proc, timeout):
            self.proc.kill()
        self.proc.wait(timeout)
        try:
            os.unlink(self.api_socket)
        except FileNotFoundError:
            pass
        if self._own_log and not self._log.closed:
            self._log.close()
        return self.proc.returncode

