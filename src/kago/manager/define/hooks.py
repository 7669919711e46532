"""Where a definition's Python callables run, and how they are reached.

- before_fork / after_fork / failure-to-start, readiness checks and provisioning run in the
  ``kago up`` process, around its requests to the supervisor.
- before_root_switch / after_root_switch happen inside the runtime, across the bundle seam, so
  they are OCI hooks: ``createContainer`` (the container's mount namespace, before pivot_root)
  and ``startContainer`` (inside the new root, before the program). Each is a tiny /bin/sh
  script that writes the moment into a FIFO and waits for the answer on another; ``kago up``
  serves the FIFOs while it waits for the supervisor, runs the callable, and answers 0 (go on)
  or 1 (fail the start). The FIFO directory is bind-mounted at /.kago-hook for the
  startContainer side, which runs in the container's root (so that side needs /bin/sh in the
  image). When no ``kago up`` is listening (a restart by policy, much later), a missing
  ``live`` file makes the script exit 0 at once: the callables belong to ``kago up``.
- exit, failure (a non-zero end or an OOM kill), timers, signal handlers and pressure/OOM
  hooks need something alive after ``kago up`` returns: the definition's agent (agent.py).

Every callable gets a ``Handle`` (name, id, pid, rootfs, exec(), kill(), stop()).
"""

import os
import select
import sys
import time

INSIDE = "/.kago-hook"
_SCRIPT = ('d=$2; [ -e "$d/live" ] || exit 0; printf "%s\\n" "$1" > "$d/req" && '
           'read -r s < "$d/ack"; exit "${s:-1}"')


class Handle:
    """What a hook sees of its container."""

    def __init__(self, mgr, record):
        self._mgr = mgr
        self.id = record["id"]
        self.name = record["name"]
        self.rootfs = (record.get("rootfs") or {}).get("path")
        self.pid = (record.get("state") or {}).get("pid") or 0
        self.netns = (record.get("network") or {}).get("netns_path")

    def refresh(self):
        record = self._mgr.records.load(self.id)
        self.pid = (record.get("state") or {}).get("pid") or 0
        return self

    def exec(self, args, user=None, check=True):
        """Run ``args`` inside the container; (exit status, output). Raises on failure with
        ``check``."""
        import subprocess
        record = self._mgr.records.load(self.id)
        runtime = self._mgr.runtime(record)
        if isinstance(args, str):
            args = ["/bin/sh", "-c", args]
        argv = runtime.exec_argv(self.id, args, user=user)
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and proc.returncode:
            from kago.manager.errors import ManagerError
            raise ManagerError(f"{self.name}: {' '.join(args)} exited {proc.returncode}: "
                               f"{(proc.stderr or proc.stdout).strip()[-200:]}")
        return proc.returncode, proc.stdout

    def kill(self, signal_name="SIGTERM"):
        self._mgr.kill(self.id, signal_name)

    def stop(self, timeout=10):
        self._mgr.stop(self.id, timeout)

    def __repr__(self):
        return f"<container {self.name} {self.id[:12]} pid {self.pid}>"


def call(fn, *args):
    """Run a user's callable; an exception becomes (False, "ExcType: message at file:line")."""
    try:
        result = fn(*args)
    except Exception as e:  # noqa: BLE001 - the user's code may raise anything
        import traceback
        tb = traceback.extract_tb(e.__traceback__)
        where = f" ({tb[-1].filename}:{tb[-1].lineno})" if tb else ""
        return False, f"{type(e).__name__}: {e}{where}"
    return True, result


# --- before/after the root switch: OCI hooks that call back ------------------------------------

def oci_hooks(directory, moments):
    """(OciHooks, extra Mounts) for a container whose definition hooks these moments."""
    from kago.manager.definition import Mount
    hooks = ()
    mounts = ()
    if "before_root_switch" in moments:
        hooks += (_hook("createContainer", "before_root_switch", directory),)
    if "after_root_switch" in moments:
        hooks += (_hook("startContainer", "after_root_switch", INSIDE),)
        mounts += (Mount("bind", INSIDE, directory),)
    return hooks, mounts


def _hook(kind, moment, directory):
    from kago.manager.definition import OciHook
    return OciHook(kind, "/bin/sh", ("sh", "-c", _SCRIPT, "kago-hook", moment, directory),
                   timeout=60)


class RootSwitchServer:
    """The ``kago up`` side: FIFOs per container, served while the supervisor starts them."""

    def __init__(self):
        self.channels = {}  # req fd -> (directory, ack fd, callback)

    def open(self, directory, callback):
        """Make the FIFOs and the live marker; ``callback(moment) -> bool`` answers."""
        os.makedirs(directory, exist_ok=True)
        for name in ("req", "ack"):
            path = os.path.join(directory, name)
            if not os.path.exists(path):
                os.mkfifo(path, 0o600)
        req = os.open(os.path.join(directory, "req"), os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        ack = os.open(os.path.join(directory, "ack"), os.O_RDWR | os.O_CLOEXEC)
        with open(os.path.join(directory, "live"), "w"):
            pass
        self.channels[req] = (directory, ack, callback)

    def fds(self):
        return list(self.channels)

    def serve(self, fd):
        _directory, ack, callback = self.channels[fd]
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        for moment in data.decode(errors="replace").split():
            ok = callback(moment)
            os.write(ack, b"0\n" if ok else b"1\n")

    def wait(self, sock, timeout):
        """Wait up to ``timeout`` (None: no limit) for ``sock`` to be readable, serving hook
        requests meanwhile: "sock" when it is, "served" after a hook was answered, None on
        timeout."""
        ready, _, _ = select.select([sock] + self.fds(), [], [], timeout)
        if sock in ready:
            return "sock"
        for fd in ready:
            self.serve(fd)
        return "served" if ready else None

    def poll(self, seconds):
        """Serve hook requests for ``seconds`` (used while waiting for readiness)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            ready, _, _ = select.select(self.fds(), [], [], left)
            for fd in ready:
                self.serve(fd)

    def close(self):
        for fd, (directory, ack, _cb) in self.channels.items():
            try:
                os.unlink(os.path.join(directory, "live"))
            except FileNotFoundError:
                pass
            os.close(fd)
            os.close(ack)
        self.channels = {}


# --- readiness -----------------------------------------------------------------------------------

def tcp_ready(netns_path, pid, port):
    """Whether 127.0.0.1:port accepts a connection inside the container's network namespace.

    The socket is made inside that namespace (setns there, socket(), setns back: a socket
    stays in the namespace it was made in), so no process is forked for the check."""
    import socket

    from kago.kernel import consts, libc
    target = netns_path or (f"/proc/{pid}/ns/net" if pid else None)
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    theirs = None
    sock = None
    try:
        if target:
            theirs = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
            libc.setns(theirs, consts.CLONE_NEWNET, path=target)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            if theirs is not None:
                libc.setns(own, consts.CLONE_NEWNET, path="/proc/self/ns/net")
        # a port the kernel picks for this socket may be one a server is about to bind
        # (ports in the ephemeral range): with SO_REUSEADDR on both, a server's bind is not
        # refused for it (EADDRINUSE) while this check runs
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.settimeout(0.5)
        if sock.connect_ex(("127.0.0.1", port)) != 0:
            return False
        if sock.getsockname() == sock.getpeername():
            # TCP's simultaneous open: with nothing listening yet, a port in the ephemeral
            # range can be given to this very socket, which then connects to itself and
            # holds the port the server is about to bind: drop it at once (RST, no TIME_WAIT)
            linger = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # struct linger {on, 0 s}
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            return False
        return True
    except OSError:
        return False
    finally:
        if sock is not None:
            sock.close()
        for fd in (own, theirs):
            if fd is not None:
                os.close(fd)


def warn(text):
    sys.stderr.write(f"kago: {text}\n")
