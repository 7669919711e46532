"""The rootless manager's holder: made, joined and stopped (kago.host.holder decides its maps
and paths).

``ensure(runroot, subids)`` returns the user's Holder for ``runroot`` (its PID, and the lock
this command holds), making it when its record (RUNROOT/holder.pid: PID and start time)
names no live process: a fork that unshares a user namespace, has newuidmap/newgidmap write its maps (inside 0 = the user, 1..N = the user's
subordinate IDs), then unshares a mount namespace (``/`` made a recursive slave) and a network
namespace (``lo`` up), and execs ``sleep infinity`` with its stdio on /dev/null, in a session
of its own. ``join(pid)`` setns(2)es the calling process into its user namespace, then its
mount and network namespaces: the caller is then uid 0 of that namespace with every
capability there. setns needs a single-threaded caller, so the CLI joins before anything
starts a thread. ``stop_if_unused`` ends the holder when no command holds it and no
container or supervisor needs it.

Every command holds RUNROOT/holder.lock shared (flock) from before it reads the record until
it exits; stopping takes it exclusive without waiting, so a holder is never stopped under a
command that joined it, and a command never joins a holder being stopped.
"""

import errno
import fcntl
import os
import struct
import time

from kago.errors import KagoError
from kago.host import holder as H

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_SIGKILL = 9  # not signal.SIGKILL: importing signal (enum) costs ~3 ms of every command
_PAUSE = ("/bin/sleep", "/usr/bin/sleep")


class Holder:
    """An open holder lock (kept for the caller's lifetime) and the holder's PID."""

    def __init__(self, runroot, lock_fd, pid, made=False):
        self.runroot, self.lock_fd, self.pid = runroot, lock_fd, pid
        self.made = made  # this call made it (a previous one had died)


def lock(runroot):
    """RUNROOT/holder.lock opened and locked shared (the runroot made, mode 0700)."""
    try:
        os.makedirs(runroot, mode=0o700, exist_ok=True)
    except OSError as e:
        raise H.runroot_error(runroot, e) from None
    fd = os.open(os.path.join(runroot, H.LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def ensure(runroot, sub, attach=None):
    """A Holder for ``runroot``: the live one, or a new one for the SubIds ``sub`` (or a
    function returning them, called only when one is made). ``attach(pid, runroot)`` runs
    once, right after a holder is made and before any other command may join it: the CLI
    connects the holder's network namespace to the host there (slirp4netns)."""
    fd = lock(runroot)
    made = False
    try:
        pid = alive(runroot)
        if pid is None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # one maker at a time
            pid = alive(runroot)
            if pid is None:
                pid = _make(runroot, sub() if callable(sub) else sub)
                made = True
                if attach is not None:
                    attach(pid, runroot)
            fcntl.flock(fd, fcntl.LOCK_SH)
    except BaseException:
        os.close(fd)
        raise
    return Holder(runroot, fd, pid, made)


def alive(runroot):
    """The holder's PID if RUNROOT/holder.pid names a live holder, else None."""
    try:
        with open(os.path.join(runroot, H.PID_FILE)) as f:
            record = H.parse_pid_record(f.read())
    except FileNotFoundError:
        return None
    if record is None:
        return None
    pid, started = record
    return pid if _started(pid) == started else None


def _started(pid):
    """The start time of a live (not zombie) ``pid``, else None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            ticks, state = H.start_time(f.read())
    except (OSError, ValueError, IndexError):
        return None
    return None if state in ("Z", "X") else ticks


def _make(runroot, sub):
    from kago.kernel.idmap import write_maps_unprivileged
    uid_map, gid_map = H.maps(sub)
    up_r, up_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(up_r)
        os.close(go_w)
        _child(up_w, go_r)
    os.close(up_w)
    os.close(go_r)
    try:
        _expect(up_r, b"u", pid)
        write_maps_unprivileged(pid, uid_map, gid_map, sub.uid, sub.gid)
        os.write(go_w, b"g")
        _expect(up_r, b"r", pid)
        started = _started(pid)
        if started is None:
            raise KagoError(f"the holder {pid} exited as it started")
    except BaseException:
        _kill(pid)
        raise
    finally:
        os.close(up_r)
        os.close(go_w)
    path = os.path.join(runroot, H.PID_FILE)
    with open(path + ".tmp", "w") as f:
        f.write(H.pid_record(pid, started))
    os.rename(path + ".tmp", path)
    return pid


def _expect(fd, want, pid):
    got = os.read(fd, 4096)
    if got[:1] != want:
        why = got[1:].decode(errors="replace") or "it exited"
        raise KagoError(f"could not make the holder's namespaces (pid {pid}): {why}")


def _child(up_w, go_r):
    """In the forked holder: never returns."""
    try:
        from kago.kernel import consts as C
        from kago.kernel import libc
        os.setsid()
        os.chdir("/")
        libc.unshare(C.CLONE_NEWUSER)
        os.write(up_w, b"u")
        if os.read(go_r, 1) != b"g":
            os._exit(1)
        libc.unshare(C.CLONE_NEWNS | C.CLONE_NEWNET)
        libc.mount(None, "/", None, C.MS_REC | C.MS_SLAVE)
        _lo_up()
        null = os.open(os.devnull, os.O_RDWR)
        for n in (0, 1, 2):
            os.dup2(null, n)
        os.write(up_w, b"r")
        pause = next((p for p in _PAUSE if os.access(p, os.X_OK)), _PAUSE[0])
        os.execv(pause, ["kago-holder", "infinity"])
    except BaseException as e:  # noqa: BLE001 -- the parent reads why
        try:
            os.write(up_w, b"e" + str(e).encode()[:2000])
        finally:
            os._exit(1)


def _lo_up():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh14x", b"lo", 0)
        flags = struct.unpack("16sh14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags | _IFF_UP))


def join(pid):
    """setns(2) into the holder's user, mount and network namespaces (in that order); the
    working directory is kept by path."""
    from kago.kernel import consts as C
    from kago.kernel import libc
    started = _started(pid)
    fds = {}
    try:
        for ns in ("user", "mnt", "net"):
            fds[ns] = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY | os.O_CLOEXEC)
        if _started(pid) != started or started is None:
            raise KagoError(f"the holder {pid} exited while being joined: run the command again")
        try:
            cwd = os.getcwd()
        except OSError:
            cwd = "/"
        libc.setns(fds["user"], C.CLONE_NEWUSER, f"/proc/{pid}/ns/user")
        libc.setns(fds["mnt"], C.CLONE_NEWNS, f"/proc/{pid}/ns/mnt")
        libc.setns(fds["net"], C.CLONE_NEWNET, f"/proc/{pid}/ns/net")
    finally:
        for fd in fds.values():
            os.close(fd)
    try:
        os.chdir(cwd)
    except OSError:
        os.chdir("/")


def stop_if_unused(holder, in_use):
    """As the caller leaves: end the holder when no other command holds it and ``in_use()``
    (run under the exclusive lock) says no container or supervisor needs it. True if it was
    stopped. The caller's shared lock is given up whatever happens, so that two leaving at
    once never both give up: the exclusive attempt drops the shared lock first (flock(2)
    converts by unlocking, then locking), and the one whose attempt comes second finds the
    first holding nothing, and ends the holder."""
    try:
        fcntl.flock(holder.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False  # the failed conversion left no lock
        raise
    try:
        pid = alive(holder.runroot)
        if pid is None or not _ours(pid) or in_use():
            return False
        _kill(pid)
        try:
            os.unlink(os.path.join(holder.runroot, H.PID_FILE))
        except FileNotFoundError:
            pass
        return True
    finally:
        fcntl.flock(holder.lock_fd, fcntl.LOCK_UN)


def _ours(pid):
    """True if ``pid`` (the recorded holder) holds the user namespace this process is in: a
    supervisor left in the namespaces of a holder that died must not end the next one."""
    try:
        theirs, mine = os.stat(f"/proc/{pid}/ns/user"), os.stat("/proc/self/ns/user")
    except OSError:
        return False
    return (theirs.st_dev, theirs.st_ino) == (mine.st_dev, mine.st_ino)


def _kill(pid):
    """SIGKILL the holder and reap it if it is our child (bounded wait otherwise)."""
    try:
        os.kill(pid, _SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass
    for _ in range(200):  # 2 s: not our child, wait for it to be gone
        if _started(pid) is None:
            return
        time.sleep(0.01)
