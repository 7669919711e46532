"""A rootless holder's network namespace connected to the outside: one slirp4netns per holder.

Called *outside* the holder's namespaces, by the user (or by root acting for the user), right
after the holder process exists::

    conn = outside.connect(holder_pid, runroot)   # slirp4netns for /proc/PID/ns/net
    outside.is_connected(runroot)                 # True while that slirp4netns runs
    outside.disconnect(runroot)                   # stop it by PID, remove its files

The holder's namespace gets tap0 at 10.0.2.100/24, its default route via 10.0.2.2 and DNS
at 10.0.2.3 (slirp4netns ``--configure``); the host's loopback stays out of reach
(``--disable-host-loopback``) unless ``host_loopback``. slirp4netns runs detached (its own
session, its output in ``RUNROOT/slirp4netns.log``) and watches a pidfd of the holder as its
exit fd, so it ends by itself once the holder is gone and reaped. On a kernel whose pidfds do
not hang up (before Linux 6.9) the exit fd is a pipe a watcher of the holder holds instead
(exitwatch.py), ended by ``disconnect`` with slirp4netns.

Files in ``runroot``::

    slirp4netns.sock    its API socket (published ports: kago.network.rootless.hostfwd)
    slirp4netns.json    what the namespace side needs and cannot see from inside: the host
                        uid slirp4netns binds ports as, the host's
                        net.ipv4.ip_unprivileged_port_start, the holder's pid, the
                        watcher's pid (0: none)
    slirp4netns.pid     its pid, written last: the mark of a complete connect
    slirp4netns.log     its output

A pid file whose process is gone, or is not this runroot's slirp4netns (a reused pid), is
stale: ``is_connected`` says False and ``connect`` clears it before starting anew.
"""

import os
import select
import signal
from dataclasses import asdict, dataclass

from kago import atomicfile
from kago.network import state
from kago.network.errors import NetworkError
from kago.network.rootless import command, exitwatch, hostports
from kago.network.rootless.errors import RootlessNetError, SlirpMissing
from kago.network.rootless.slirp import START_TIMEOUT, STOP_TIMEOUT, Slirp

SOCKET, FACTS, PIDFILE, LOG = ("slirp4netns.sock", "slirp4netns.json", "slirp4netns.pid",
                               "slirp4netns.log")


@dataclass(frozen=True)
class Connection:
    """A live connect: slirp4netns's ``pid``, its ``api_socket``, the ``holder_pid`` it
    serves, and the host facts published ports are checked against (``uid`` slirp4netns
    binds as, the host's ``unprivileged_port_start``); ``hardened``: it runs with
    ``--enable-sandbox --enable-seccomp``; ``host_loopback``: without
    ``--disable-host-loopback``; ``watcher``: the pid of the process whose pipe is
    slirp4netns's exit fd where a pidfd cannot be (exitwatch.py), 0 for none."""
    pid: int
    holder_pid: int
    api_socket: str
    uid: int
    unprivileged_port_start: int
    hardened: bool = False
    host_loopback: bool = False
    watcher: int = 0

    @classmethod
    def from_dict(cls, data):
        return cls(int(data["pid"]), int(data["holder_pid"]), str(data["api_socket"]),
                   int(data["uid"]), int(data["unprivileged_port_start"]),
                   bool(data.get("hardened", False)), bool(data.get("host_loopback", False)),
                   int(data.get("watcher", 0)))


def paths(runroot):
    """{name: path} of the files a connect keeps in ``runroot``."""
    runroot = os.path.abspath(runroot)
    return {name: os.path.join(runroot, name) for name in (SOCKET, FACTS, PIDFILE, LOG)}


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def is_ours(pid, api_socket):
    """Whether ``pid`` runs slirp4netns with ``api_socket``: not a pid reused since."""
    return command.runs(pid, "slirp4netns", f"--api-socket={api_socket}")


def recorded(runroot):
    """The Connection ``runroot``'s files describe, live or not (None: no complete set).
    What the holder's side reads: its processes may not see slirp4netns's pid."""
    files = paths(runroot)
    pid = _read_pid(files[PIDFILE])
    if pid is None:
        return None
    try:
        data = state.read_json(files[FACTS])
        return Connection.from_dict(dict(data, pid=pid))
    except (KeyError, TypeError, ValueError, NetworkError):
        return None


def connection(runroot):
    """The live Connection of ``runroot``, or None (nothing there, or stale files)."""
    conn = recorded(runroot)
    if conn is None or not is_ours(conn.pid, paths(runroot)[SOCKET]):
        return None
    return conn if os.path.exists(conn.api_socket) else None


def is_connected(runroot):
    return connection(runroot) is not None


def _remove_files(runroot):
    old = recorded(runroot)          # a watcher outliving its slirp4netns goes with the files
    if old is not None:
        exitwatch.stop(old.watcher, old.holder_pid)
    for path in paths(runroot).values():
        state.remove_file(path)


def _own_netns(holder_pid):
    """The holder's network namespace, checked to be another than the caller's."""
    try:
        theirs = os.readlink(f"/proc/{holder_pid}/ns/net")
    except FileNotFoundError:
        raise RootlessNetError(f"holder pid {holder_pid}: no such process") from None
    except OSError as e:
        raise RootlessNetError(f"holder pid {holder_pid}: cannot read its network namespace "
                               f"({e.strerror}): connect as the holder's user") from None
    if theirs == os.readlink("/proc/self/ns/net"):
        raise RootlessNetError(f"holder pid {holder_pid} is in the caller's network namespace, "
                               "not one of its own: nothing to connect")
    return theirs


def connect(holder_pid, runroot, binary=None, user=None, host_loopback=False, sandbox=True,
            seccomp=True, timeout=START_TIMEOUT):
    """Starts slirp4netns for the network namespace of ``holder_pid`` with its files in
    ``runroot`` and returns the Connection once tap0 is configured (bounded by ``timeout``).
    ``user``: (uid, gid) slirp4netns runs as, for a root caller acting for a user.
    ``sandbox``/``seccomp`` are used where they work: a slirp4netns that does not start with
    them is started once more without (its log says why; ``Connection.hardened`` is False).
    RootlessNetError, one line, when already connected or slirp4netns does not start; a
    failed start leaves no process and no file."""
    if not isinstance(holder_pid, int) or isinstance(holder_pid, bool) or holder_pid <= 0:
        raise RootlessNetError(f"holder pid {holder_pid!r} is not a process id")
    _own_netns(holder_pid)
    if not os.path.isdir(runroot):
        raise RootlessNetError(f"runroot {runroot}: no such directory (the holder's runroot "
                               "is made before connect)")
    files = paths(runroot)
    live = connection(runroot)
    if live is not None:
        raise RootlessNetError(f"{runroot}: already connected (slirp4netns pid {live.pid} "
                               f"for holder pid {live.holder_pid}): disconnect first")
    _remove_files(runroot)                  # a stale connect's leftovers
    try:
        pidfd = os.pidfd_open(holder_pid)
    except OSError as e:
        raise RootlessNetError(f"holder pid {holder_pid}: {e.strerror}") from None
    exit_fd, watcher = pidfd, None
    try:
        if not exitwatch.pidfd_hangs_up():
            exit_fd, watcher = exitwatch.start(holder_pid, user)
        log = open(files[LOG], "a+b")  # noqa: SIM115 (slirp4netns keeps writing to it)
        if user is not None:
            os.chown(files[LOG], user[0], user[1])
        with log:
            def start(hardened):
                return Slirp.start(holder_pid, files[SOCKET], binary=binary, user=user,
                                   timeout=timeout, exit_fd=exit_fd, log=log, detach=True,
                                   host_loopback=host_loopback, sandbox=sandbox and hardened,
                                   seccomp=seccomp and hardened)
            hardened = bool(sandbox or seccomp)
            try:
                slirp = start(hardened)
            except SlirpMissing:
                raise
            except RootlessNetError as err:
                if not hardened or not os.path.exists(f"/proc/{holder_pid}"):
                    raise
                log.write(f"kago: started again without --enable-sandbox/--enable-seccomp: "
                          f"{err}\n".encode())
                log.flush()
                hardened = False
                slirp = start(hardened)
    except BaseException:
        _end(watcher)
        _remove_files(runroot)
        raise
    finally:
        for fd in {pidfd, exit_fd}:
            os.close(fd)
    conn = Connection(slirp.pid, holder_pid, files[SOCKET], slirp.uid,
                      hostports.unprivileged_port_start(), hardened, bool(host_loopback),
                      0 if watcher is None else watcher.pid)
    try:
        facts = asdict(conn)
        del facts["pid"]
        state.write_json(files[FACTS], facts)
        _write_pid(files[PIDFILE], conn.pid)
        if user is not None:
            for name in (FACTS, PIDFILE):
                os.chown(files[name], user[0], user[1])
    except BaseException:
        slirp.stop()
        _end(watcher)
        _remove_files(runroot)
        raise
    return conn


def _end(watcher):
    """Ends the watcher connect started (a Popen, or None), what it was for having failed."""
    if watcher is not None:
        watcher.kill()
        watcher.wait()


def _write_pid(path, pid):
    atomicfile.replace(path, f"{pid}\n".encode(), mode=0o644)


def disconnect(runroot, timeout=STOP_TIMEOUT):
    """Stops ``runroot``'s slirp4netns by PID (SIGTERM, SIGKILL after ``timeout`` seconds)
    and removes its files (and ends its watcher, if it has one); stale or missing files are
    just removed. Returns the pid stopped, or None. Its published ports go with it."""
    files = paths(runroot)
    pid = _read_pid(files[PIDFILE])
    stopped = None
    if pid is not None and is_ours(pid, files[SOCKET]):
        _stop_pid(pid, timeout)
        stopped = pid
    _remove_files(runroot)
    return stopped


def _reap(pidfd):
    """Reaps the ended process if it is the caller's child (connect and disconnect in one
    process); a detached slirp4netns is its new parent's to reap."""
    try:
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
    except ChildProcessError:
        pass


def _stop_pid(pid, timeout):
    """SIGTERM ``pid`` (not our child: slirp4netns outlives its starter) and wait on its
    pidfd for it to end; SIGKILL if it lingers past ``timeout``."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
            try:
                signal.pidfd_send_signal(pidfd, sig)
            except ProcessLookupError:
                return
            if select.select([pidfd], [], [], wait)[0]:
                _reap(pidfd)
                return
        raise RootlessNetError(f"slirp4netns pid {pid} did not end within {2 * timeout:g}s "
                               "of SIGTERM and SIGKILL")
    finally:
        os.close(pidfd)
