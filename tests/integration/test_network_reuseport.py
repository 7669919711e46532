"""Many services on one port: processes of containers sharing one netns (``container:`` mode)
each listen with SO_REUSEPORT on the same port, and connections to the published port are
spread over all of them by the kernel."""

import os
import signal
import socket
import subprocess
import sys

from kago.network.testing import netenv_fixture, wait_port  # noqa: F401 (fixture)

LISTENER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("0.0.0.0", 8000))
s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.sendall(sys.argv[1].encode())
    c.close()
"""


def listen_in(netns_path, name):
    """A listener process inside the netns at ``netns_path`` (nsenter-like, via setns)."""
    code = (f"import os; fd = os.open({netns_path!r}, os.O_RDONLY); "
            "from kago.kernel import libc, consts; libc.setns(fd, consts.CLONE_NEWNET); "
            f"exec(compile({LISTENER!r}, 'listener', 'exec'))")
    proc = subprocess.Popen([sys.executable, "-c", code, name], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def ask(port):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        return s.recv(64).decode()


def test_reuseport_listeners_in_a_shared_netns_all_get_connections(netenv):
    nets = netenv.nets
    owner = nets.attach("svc0", ports=["18495:8000"])
    sharers = [nets.attach(f"svc{i}", mode="container:svc0") for i in (1, 2)]
    # a container sharing with a sharer lands in the owner's netns too
    chained = nets.attach("svc3", mode="container:svc1")
    assert {a.netns_path for a in (*sharers, chained)} == {owner.netns_path}
    assert chained.shares == "svc0" and chained.ipv4 == owner.ipv4
    procs = [listen_in(owner.netns_path, f"svc{i}") for i in range(4)]
    try:
        wait_port(lambda: ask(18495))
        answers = [ask(18495) for _ in range(80)]
    finally:
        for proc in procs:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
            proc.stdout.close()
    counts = {name: answers.count(name) for name in sorted(set(answers))}
    assert set(counts) == {"svc0", "svc1", "svc2", "svc3"}, counts


def test_detaching_a_sharer_keeps_the_owners_netns(netenv):
    nets = netenv.nets
    owner = nets.attach("own1")
    nets.attach("share1", mode="container:own1")
    nets.detach("share1")
    assert os.path.exists(owner.netns_path)
    assert nets.attachment("own1") == owner
    assert [p for p in nets.peers("kt") if p[0] == "share1"] == []
