"""Starting, telling and stopping a network's resolver, from kago's side.

Files under ``<state dir>/dns/``::

    <network>.json        the name table (table.py), rewritten on every attach and detach
    <network>.proc.json   {"pid", "start_time", "listen", "table"}: the running resolver,
                          written by the resolver itself before it says it is ready

``sync`` is called with the network's lease lock held: it writes the table, then sends the
recorded resolver SIGHUP when it is alive (same pid and /proc start time, so a reused pid is
never signalled), starts one when it is not (a first attach, or after a crash or reboot), and
stops it when no container is left. ``strays`` finds resolver processes of this state dir
that no record names (their record lost to a crash), for ``kago system prune``.
"""

import os
import select
import signal
import subprocess
import sys
import time

from kago.host import procfs
from kago.network.dns import table as names
from kago.network.dns.proc import alive, process_record, start_time  # noqa: F401

MODULE = "kago.cli.resolver"
READY_TIMEOUT = 5.0
STOP_TIMEOUT = 2.0


class ResolverError(Exception):
    pass


def dns_dir(state_root):
    return os.path.join(state_root, "dns")


def table_path(state_root, network):
    return os.path.join(dns_dir(state_root), f"{network}.json")


def proc_path(state_root, network):
    return os.path.join(dns_dir(state_root), f"{network}.proc.json")


def read_record(state_root, network):
    try:
        return names.load(proc_path(state_root, network))
    except (FileNotFoundError, ValueError):
        return None


def sync(state_root, record, members, upstream=None, never=(), views=None):
    """Brings network ``record``'s resolver in line with ``members`` (its attachments) and
    ``views`` (table.build's): returns the resolver's pid, or None when it was stopped (no
    members)."""
    network = record["name"]
    if not members:
        stop(state_root, network)
        return None
    os.makedirs(dns_dir(state_root), mode=0o700, exist_ok=True)
    names.write(table_path(state_root, network),
                names.build(record, members, upstream, never, views))
    running = read_record(state_root, network)
    if alive(running):
        os.kill(running["pid"], signal.SIGHUP)
        return running["pid"]
    for pid, theirs in strays(state_root):  # its record lost: it would hold the port
        if theirs == network:
            kill(pid, start_time(pid))
    return start(state_root, network)


def start(state_root, network):
    """Starts the resolver for the table already written; its pid once it answers."""
    read_fd, write_fd = os.pipe()
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
    env = {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": package,
           "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", MODULE, "--table", table_path(state_root, network),
             "--proc", proc_path(state_root, network), "--ready-fd", str(write_fd)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(write_fd,), start_new_session=True, env=env, cwd="/")
    finally:
        os.close(write_fd)
    try:
        proc.wait(timeout=READY_TIMEOUT)    # the first process exits once it has forked
        said = _read_line(read_fd, READY_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        said = ""
    finally:
        os.close(read_fd)
    if said.startswith("ok "):
        return int(said.split()[1])
    why = said[len("error: "):] if said.startswith("error: ") else "it did not start in time"
    raise ResolverError(f"dns resolver of network {network}: {why}")


def _read_line(fd, timeout):
    deadline = time.monotonic() + timeout
    data = b""
    while True:                             # to EOF: the resolver closes it when ready, or
                                            # by exiting after an error
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 512)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def stop(state_root, network):
    """Stops the recorded resolver (SIGTERM, SIGKILL after STOP_TIMEOUT) and removes the
    network's dns files. Returns the pid it stopped, or None."""
    running = read_record(state_root, network)
    stopped = None
    if alive(running):
        kill(running["pid"], running["start_time"])
        stopped = running["pid"]
    for path in (proc_path(state_root, network), table_path(state_root, network)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return stopped


def kill(pid, started):
    """SIGTERM, then SIGKILL when it is still there after STOP_TIMEOUT; waits (bounded) until
    it is gone so that its port is free when this returns."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        if start_time(pid) != started:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while start_time(pid) == started and time.monotonic() < deadline:
            time.sleep(0.01)


def processes(state_root):
    """{pid: network} of every resolver process of this state dir (by its command line)."""
    prefix = dns_dir(os.path.abspath(state_root)) + os.sep
    found = {}
    for pid, words in procfs.processes():
        argv = [w.decode(errors="replace") for w in words]
        if MODULE not in argv or "--table" not in argv:
            continue
        i = argv.index("--table")
        path = argv[i + 1] if i + 1 < len(argv) else ""
        if path.startswith(prefix) and path.endswith(".json"):
            found[pid] = os.path.basename(path)[:-len(".json")]
    return found


def strays(state_root):
    """[(pid, network)] of resolver processes of this state dir that their network's record
    does not name."""
    out = []
    for pid, network in sorted(processes(state_root).items()):
        record = read_record(state_root, network)
        if not (alive(record) and record["pid"] == pid) and start_time(pid) is not None:
            out.append((pid, network))
    return out
