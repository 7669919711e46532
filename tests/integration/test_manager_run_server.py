"""``kago run -d``, ``create`` and ``start`` through the supervisor's warm run server
(cli/run_thin.py -> supervisor/runs.py -> cli/run_server.py): the same output and exit
statuses as the verb done in the command line's own process (``KAGO_THIN=0``), the ``run``
request's bad inputs refused with nothing made, and deaths during a request (the supervisor,
the child doing it) leave nothing that recovery does not remove.

Every test has its own manager root (kago.manager.testing.KagoEnv); the fixture removes
everything and checks nothing is left on the host.
"""

import json
import os
import re
import signal
import socket
import struct
import subprocess

import pytest

from conftest import wait_for
from kago.manager.paths import Paths
from kago.manager.testing import KAGO, kmt_fixture  # noqa: F401 (fixture)

IDS = re.compile(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b|[a-z]+_[a-z]+_[0-9a-f]{4}")


@pytest.fixture(autouse=True)
def patient_supervisor(kmt):
    """A supervisor that waits for its run server: the root's 3 s idle time is shorter than
    a run server's loading where Python is slow (an emulated host), and a supervisor that
    goes idle lets its run server go before it is ready. The fixture stops it at the end."""
    kmt.env["KAGO_SUPERVISOR_IDLE"] = "60"


def supervisor_socket(kmt):
    """Where this root's supervisor listens (its runroot: ROOT/run, or the one kago.json
    or the environment names)."""
    return Paths(kmt.root).socket()


def ping(kmt):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(supervisor_socket(kmt))
        s.sendall(b'{"op": "ping"}\n')
        return json.loads(s.makefile().readline())


def warm(kmt):
    """A supervisor with its run server ready (the first request after its start is done by
    the command line itself while the run server loads)."""
    kmt.kago("create", "--name", "kmt-warm", "--network", "none", "busybox", "true",
             check=True)
    assert wait_for(lambda: ping(kmt)["run_server"]["ready"], timeout=30), ping(kmt)
    return ping(kmt)["run_server"]["pid"]


def run_servers(kmt):
    """Pids of the run servers of this root (by their environment's KAGO_ROOT)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"kago.cli.run_server" not in f.read():
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"KAGO_ROOT={kmt.root}".encode() in env:
            found.append(int(pid))
    return found


def normal(text):
    return IDS.sub("ID", text)


def both_ways(kmt, *args):
    """(in the command line's process, through the run server): (status, stdout, stderr)."""
    out = []
    for thin in ("0", "1"):
        env = dict(kmt.env, KAGO_THIN=thin)
        p = subprocess.run([KAGO, *args], env=env, capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL, check=False)
        out.append((p.returncode, normal(p.stdout), normal(p.stderr)))
    return out


CASES = [
    ("run", "-d", "--bogus", "busybox", "true"),
    ("run", "-d", "--memory", "lots", "busybox", "true"),
    ("run", "-d", "--network", "none", "nosuchimage", "true"),
    ("run", "-d", "--network", "none", "busybox", "/nonexistent"),       # 127
    ("run", "-d", "--network", "none", "busybox", "/etc/passwd"),        # 126
    ("run", "-d", "--network", "none", "--name", "kmt-warm", "busybox", "true"),  # taken
    ("run", "-di", "--network", "none", "busybox", "sh"),
    ("run", "-d", "--network", "none", "--restart", "sometimes", "busybox", "true"),
    ("create", "--network", "none", "--cap-add", "NOPE", "busybox", "true"),
    ("start", "kmt-nosuch"),
]


def test_the_run_server_says_what_the_command_line_says(kmt):
    warm(kmt)
    for args in CASES:
        local, remote = both_ways(kmt, *args)
        assert local == remote, (args, local, remote)
        assert local[0] in (1, 125, 126, 127), (args, local)
        assert len(local[2].strip().splitlines()) == 1, (args, local)  # one line
    codes = {args[-1]: both_ways(kmt, *args)[1][0] for args in CASES[3:5]}
    assert codes == {"/nonexistent": 127, "/etc/passwd": 126}, codes


def test_run_create_start_through_the_run_server(kmt, tmp_path):
    server = warm(kmt)
    assert server in run_servers(kmt)
    cidfile = tmp_path / "cid"
    env = dict(kmt.env, KAGO_THIN="1")
    p = subprocess.run([KAGO, "run", "-d", "--network", "none", "--name", "kmt-a",
                        "--cidfile", str(cidfile), "busybox", "sleep", "60"], env=env,
                       capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    cid = p.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", cid) and cidfile.read_text() == cid
    assert kmt.inspect("kmt-a")["State"]["Running"]
    assert ping(kmt)["run_server"]["pid"] == server  # the same warm process served it
    # --rm: removed when it ends
    p = kmt.kago("run", "-d", "--rm", "--network", "none", "--name", "kmt-rm", "busybox",
                 "true", check=True)
    assert wait_for(lambda: kmt.kago("inspect", "kmt-rm").returncode != 0, timeout=15)
    # create, then start
    cid = kmt.kago("create", "--network", "none", "--name", "kmt-c", "busybox", "sleep",
                   "60", check=True).stdout.strip()
    assert kmt.inspect(cid)["State"]["Status"] == "created"
    assert kmt.kago("start", "kmt-c", check=True).stdout == "kmt-c\n"
    assert kmt.inspect("kmt-c")["State"]["Running"]
    for name in ("kmt-a", "kmt-c"):
        kmt.kago("rm", "-f", name, check=True)


def send_run(kmt, line, fds):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(supervisor_socket(kmt))
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))]
        s.sendmsg([line], anc if fds else [])
        f = s.makefile()
        reply = json.loads(f.readline())
        if fds:  # the run server's answer ends the conversation
            assert f.readline() == "", reply
        return reply


def test_bad_run_requests_are_refused_and_make_nothing(kmt):
    warm(kmt)
    before = sorted(r["id"] for r in kmt.manager().records.all())
    good = {"op": "run", "verb": "run", "glob": {"root": None, "runroot": None,
                                                 "runtime": None},
            "cwd": "/", "env": {"KAGO_ROOT": kmt.root},
            "argv": ["-d", "--network", "none", "busybox", "true"]}
    null = os.open(os.devnull, os.O_RDWR)
    try:
        reply = send_run(kmt, (json.dumps(good) + "\n").encode(), [])  # no stdio passed
        assert reply["ok"] is False and "3 fds" in reply["error"], reply
        for bad in ({"verb": "rm"}, {"argv": "-d busybox true"}, {"env": ["A=1"]},
                    {"cwd": None}):
            reply = send_run(kmt, (json.dumps(dict(good, **bad)) + "\n").encode(),
                             [null, null, null])
            assert reply["ok"] is False and reply["code"] == 125, (bad, reply)
            assert reply["error"].startswith("run: "), reply
        with socket.socket(socket.AF_UNIX) as s:  # not JSON: refused, fds dropped
            s.settimeout(10)
            s.connect(supervisor_socket(kmt))
            s.sendmsg([b"not json\n"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                          struct.pack("3i", null, null, null))])
            assert json.loads(s.makefile().readline()) == {
                "ok": False, "error": "bad request", "code": 125}
    finally:
        os.close(null)
    assert sorted(r["id"] for r in kmt.manager().records.all()) == before
    assert ping(kmt)["ok"] and ping(kmt)["run_server"]["ready"]  # both still serve


def test_a_child_killed_during_a_run_is_recovered(kmt):
    warm(kmt)
    env = dict(kmt.env, KAGO_THIN="1", KAGO_FAULT_STEP="create.network")
    p = subprocess.run([KAGO, "run", "-d", "--name", "kmt-f", "busybox", "sleep", "60"],
                       env=env, capture_output=True, text=True, timeout=60, check=False)
    # the child doing it died of SIGKILL: so does the command line, as it would have
    assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr)
    ids = [r["id"] for r in kmt.manager().records.all() if r["name"] == "kmt-f"]
    assert len(ids) == 1
    ps = kmt.kago("ps", "-a", "--format", "{{.Names}}|{{.Status}}", check=True).stdout
    assert "kmt-f|Created (incomplete)" in ps, ps
    assert ids[0] in kmt.kago("system", "prune", "-f", check=True).stdout
    assert not kmt.manager().records.all()[1:], "only kmt-warm is left"
    assert not [line for line in open("/proc/self/mountinfo") if ids[0] in line]
    assert ping(kmt)["run_server"]["ready"]  # the run server itself lives on


def test_a_supervisor_killed_during_a_run_leaves_nothing(kmt):
    kmt.stop_supervisor()
    fault = dict(kmt.env, KAGO_FAULT_STEP="supervisor.forked")

    def kago(*args):
        return subprocess.run([KAGO, *args], env=fault, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL, check=False)
    # a supervisor that dies when it forks a start worker, with its run server ready
    assert kago("create", "--name", "kmt-warm", "--network", "none", "busybox",
                "true").returncode == 0
    kmt._note_supervisor()
    assert wait_for(lambda: ping(kmt)["run_server"]["ready"], timeout=30)
    servers = run_servers(kmt)
    p = kago("run", "-d", "--network", "none", "--name", "kmt-f", "busybox", "sleep", "60")
    kmt._note_supervisor()
    # the start went on: the next supervisor adopted it and said so
    assert p.returncode == 0, p.stderr
    assert kmt.inspect("kmt-f")["State"]["Running"]
    kmt.stop_supervisor()  # the successor has the fault step too
    # the dead supervisor's run server ended with it
    assert servers and wait_for(lambda: not set(servers) & set(run_servers(kmt)),
                                timeout=10), run_servers(kmt)
    kmt.kago("rm", "-f", "kmt-f", check=True)
    kmt.stop_supervisor()
    assert wait_for(lambda: run_servers(kmt) == [], timeout=10), run_servers(kmt)
    # and the fixture checks that nothing of the root is left on the host
