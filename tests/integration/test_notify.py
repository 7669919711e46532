"""NOTIFY_SOCKET: a container's sd_notify readiness reaches the host's socket, as with runc.

The host side is a datagram socket the test binds and reads; the container sends with the
static probe (``probe notify MESSAGE``, sd_notify's wire format: one datagram to
$NOTIFY_SOCKET), since busybox's nc has no unix-socket mode. runc 1.1.5 passes on the first
READY= datagram's first line, then MAINPID=<pid>, and drops everything else.
"""

import os
import socket
import subprocess
import tempfile

import pytest

from conftest import KAGO_OCI, wait_for
from test_lifecycle import failed, ok

READY_THEN_SLEEP = ("probe notify STATUS=starting; "
                    "probe notify \"$(printf 'READY=1\\nSTATUS=serving')\"; exec sleep 100")


@pytest.fixture
def host_socket():
    """A bound datagram socket (what systemd listens on) in a short path."""
    path = tempfile.mktemp(prefix="kago-notify-", suffix=".sock", dir="/tmp")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    yield path, sock
    sock.close()
    os.unlink(path)


def received(sock, timeout=0.3):
    """Every datagram waiting on ``sock`` (the last wait ``timeout`` long)."""
    out = []
    sock.settimeout(timeout)
    try:
        while True:
            out.append(sock.recv(4096))
    except (TimeoutError, socket.timeout):
        return out


def bundle(make_bundle, script, *mutators):
    from kago.testing import probe

    def mutate(cfg):
        cfg["process"]["env"].append("PROBE_CONTAINED=1")
        for fn in mutators:
            fn(cfg)
    b = make_bundle(["sh", "-c", script], mutate=mutate)
    probe.build_probe(os.path.join(b.rootfs, "bin"))
    return b


def userns(cfg):
    """A user namespace, and /run a tmpfs as podman makes it (the image's /run is host
    root's: the container's root could not make /run/notify in it)."""
    cfg["mounts"].append({"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "nodev"]})
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def kago(oci, *args, notify, timeout=30):
    """kago-oci with NOTIFY_SOCKET set, its output in files (the container keeps them)."""
    env = dict(os.environ, NOTIFY_SOCKET=notify)
    argv = [KAGO_OCI, "--root", oci.root, *map(str, args)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                              timeout=timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, out.read().decode(),
                                           err.read().decode())


@pytest.mark.parametrize("mutators", [(), (userns,)], ids=["host-ids", "userns"])
def test_start_relays_ready_with_the_inits_pid(oci, make_bundle, host_socket, mutators):
    path, sock = host_socket
    b = bundle(make_bundle, READY_THEN_SLEEP, *mutators)
    cid = oci.new_id()
    ok(kago(oci, "create", "--bundle", b.path, cid, notify=path))
    pid = oci.state(cid)["pid"]
    assert received(sock, 0.2) == []  # nothing before start
    ok(kago(oci, "start", cid, notify=path))  # returns once READY was passed on
    assert received(sock) == [b"READY=1\n", b"MAINPID=%d\n" % pid]
    ok(oci("delete", "--force", cid))


def test_run_detached_relays_ready_with_the_inits_pid(oci, make_bundle, host_socket):
    path, sock = host_socket
    b = bundle(make_bundle, READY_THEN_SLEEP)
    cid = oci.new_id()
    ok(kago(oci, "run", "-d", "--bundle", b.path, cid, notify=path))
    pid = oci.state(cid)["pid"]
    assert received(sock) == [b"READY=1\n", b"MAINPID=%d\n" % pid]
    ok(oci("delete", "--force", cid))


def test_foreground_run_is_the_main_pid_and_the_container_sees_its_socket(
        oci, make_bundle, host_socket):
    path, sock = host_socket
    script = ("echo $NOTIFY_SOCKET; grep ' /run/notify ' /proc/self/mountinfo | cut -d' ' -f6;"
              " probe notify READY=1")
    b = bundle(make_bundle, script)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    proc = subprocess.Popen([KAGO_OCI, "--root", oci.root, "run", "--bundle", b.path,
                             oci.new_id()], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "/run/notify/notify.sock"
    assert set(lines[1].split(",")) >= {"ro", "nosuid", "nodev", "noexec"}
    assert lines[2] == "OK"
    assert received(sock) == [b"READY=1\n", b"MAINPID=%d\n" % proc.pid]


def test_start_returns_when_the_container_exits_without_ready(oci, make_bundle, host_socket):
    path, sock = host_socket
    b = bundle(make_bundle, "probe notify STATUS=never-ready; sleep 0.3")
    cid = oci.new_id()
    ok(kago(oci, "create", "--bundle", b.path, cid, notify=path))
    ok(kago(oci, "start", cid, notify=path, timeout=10))
    assert received(sock) == []
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped")
    ok(oci("delete", cid))


def test_unreachable_host_socket_fails_start(oci, make_bundle, tmp_path):
    b = bundle(make_bundle, "sleep 100")
    cid = oci.new_id()
    missing = str(tmp_path / "missing.sock")
    ok(kago(oci, "create", "--bundle", b.path, cid, notify=missing))
    failed(kago(oci, "start", cid, notify=missing), f"notify socket {missing}: no such file")
    ok(oci("delete", "--force", cid))


def test_without_notify_socket_nothing_is_added(oci, make_bundle):
    b = bundle(make_bundle, "echo \"[$NOTIFY_SOCKET]\"; ls /run")
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    out = ok(oci("run", "--bundle", b.path, oci.new_id(), env=env)).stdout
    assert out.split() == ["[]"]
