"""slirp4netns for a network namespace an unprivileged user owns (kago.network.rootless).

A throwaway user holds its own user, network and mount namespace (``unshare --user
--map-root-user --net --mount sleep``, kago.testing.holder_net.Holder); slirp4netns runs as
that user for it, publishes ports on the host's 127.0.0.1 through its API socket, and stops
leaving nothing. The user, its processes
and its /run/user directory are removed afterwards and checked gone.
"""

import errno
import os
import random
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import IS_ROOT, throwaway_user
from kago.network.rootless import (ApiRefused, PrivilegedPort, RootlessNetError, Slirp,
                                   SlirpMissing)
from kago.network.rootless.errors import PortInUse
from kago.testing.holder_net import CONNECT, Holder, host_ipv4, no_host_ipv4, serve_hello
from kago.testing.holder_net import free_ports as free

pytestmark = [
    pytest.mark.skipif(not IS_ROOT, reason="creates a throwaway user: needs root"),
    pytest.mark.skipif(not os.path.exists("/usr/bin/slirp4netns"),
                       reason="slirp4netns is not installed"),
]
GUEST_PORT = 8080


def free_ports(count):
    """Ports in 46000-46999 that nothing holds on 127.0.0.1 now (tcp)."""
    return free(random.sample(range(46000, 47000), 1000), count, "127.0.0.1") or \
        pytest.skip("no free ports in 46000-46999")


def in_netns(user, holder, argv, **popen):
    """``argv`` as the user inside its own user, network and mount namespace."""
    return subprocess.Popen(holder.inside(argv), cwd=user.home, **popen)


@pytest.fixture(scope="module")
def user():
    yield from throwaway_user(subids=False)


@pytest.fixture(scope="module")
def holder(user):
    """A process of the user's in its own user, network and mount namespace."""
    with Holder(user) as h:
        yield h


@pytest.fixture
def slirp(user, holder):
    s = Slirp.start(holder.pid, os.path.join(user.runtime_dir, "slirp.sock"),
                    user=(user.uid, user.gid))
    try:
        yield s
    finally:
        s.stop()


def http_get(port, timeout=2):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as r:
        return r.status, r.read()


@pytest.fixture
def httpd(user, holder):
    """python3's http.server inside the user's network namespace on GUEST_PORT."""
    proc = in_netns(user, holder, ["/usr/bin/python3", "-m", "http.server", "--bind",
                                   "0.0.0.0", str(GUEST_PORT)],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    yield proc
    proc.kill()
    proc.wait(10)


def test_a_published_port_reaches_a_server_in_the_users_netns_and_goes_away(slirp, httpd):
    port, = free_ports(1)
    fwd = slirp.add_forward(port, GUEST_PORT)
    assert (fwd.proto, fwd.host_addr, fwd.host_port, fwd.guest_port) == \
        ("tcp", "127.0.0.1", port, GUEST_PORT)
    assert [f.id for f in slirp.forwards()] == [fwd.id]
    status = None
    for _ in range(50):  # the server inside may still be starting
        try:
            status, body = http_get(port)
            break
        except OSError:
            time.sleep(0.1)
    assert status == 200 and b"Directory listing" in body
    slirp.remove_forward(fwd)
    assert slirp.forwards() == []
    with pytest.raises(OSError) as refused:
        http_get(port)
    assert getattr(refused.value, "reason", refused.value).errno == errno.ECONNREFUSED


def _connect_from_netns(user, holder, addr, port):
    proc = in_netns(user, holder, ["/usr/bin/python3", "-c", CONNECT, addr, str(port)],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=20)
    return out.strip() or err.strip()


def test_the_hosts_loopback_is_out_of_reach_and_its_other_addresses_are_not(user, holder,
                                                                              slirp):
    port, = free_ports(1)
    srv, _ = serve_hello("127.0.0.1", port)
    try:
        # slirp's 10.0.2.2 is the host's loopback; --disable-host-loopback refuses it
        assert _connect_from_netns(user, holder, "10.0.2.2", port).startswith("failed")
        # 127.0.0.1 inside is the namespace's own loopback
        assert _connect_from_netns(user, holder, "127.0.0.1", port).startswith("failed")
    finally:
        srv.close()
    addr = host_ipv4()
    if addr is None:
        pytest.skip(f"the host's other addresses: {no_host_ipv4()}")
    port, = free_ports(1)
    srv, _ = serve_hello(addr, port)
    try:  # outbound through slirp's NAT to a host address other than loopback works
        assert _connect_from_netns(user, holder, addr, port) == "got hello"
    finally:
        srv.close()


def test_the_namespace_gets_the_tap_slirp_documents(user, holder, slirp):
    proc = in_netns(user, holder, ["ip", "-4", "-o", "addr", "show", "tap0"],
                    stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=10)
    assert "10.0.2.100/24" in out
    proc = in_netns(user, holder, ["ip", "link", "show", "tap0"], stdout=subprocess.PIPE,
                    text=True)
    assert "mtu 65520" in proc.communicate(timeout=10)[0]


def test_stop_leaves_no_process_and_no_socket(user, holder):
    sock = os.path.join(user.runtime_dir, "stop.sock")
    s = Slirp.start(holder.pid, sock, user=(user.uid, user.gid))
    port, = free_ports(1)
    s.add_forward(port, GUEST_PORT)
    pid = s.pid
    assert os.path.exists(f"/proc/{pid}")
    assert s.stop() == 0
    assert not os.path.exists(f"/proc/{pid}")
    assert not os.path.lexists(sock)
    with socket.socket() as c:
        assert c.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED
    s.stop()  # twice is fine


def test_bad_input_is_one_line_each(user, holder, slirp):
    def one_line(exc):
        text = str(exc.value)
        assert "\n" not in text
        return text

    with pytest.raises(SlirpMissing) as e:
        Slirp.start(holder.pid, os.path.join(user.runtime_dir, "x.sock"),
                    binary="/nonexistent/slirp4netns")
    assert "apt-get install slirp4netns" in one_line(e)

    with pytest.raises(PrivilegedPort) as e:
        slirp.add_forward(80, GUEST_PORT)
    assert "net.ipv4.ip_unprivileged_port_start" in one_line(e)

    port, = free_ports(1)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        with pytest.raises(PortInUse) as e:
            slirp.add_forward(port, GUEST_PORT)
        assert f"127.0.0.1:{port}/tcp is already in use" in one_line(e)

    with pytest.raises(ApiRefused) as e:
        slirp.remove_forward(987654)
    assert "remove_hostfwd id 987654" in one_line(e)

    with pytest.raises(RootlessNetError) as e:
        Slirp.start(holder.pid, slirp.api_socket, user=(user.uid, user.gid))
    assert "already exists" in one_line(e)

    dead = subprocess.Popen(["true"])
    dead.wait()
    with pytest.raises(RootlessNetError) as e:
        Slirp.start(dead.pid, os.path.join(user.runtime_dir, "dead.sock"),
                    user=(user.uid, user.gid), timeout=5)
    assert "failed to start" in one_line(e)
    assert not os.path.lexists(os.path.join(user.runtime_dir, "dead.sock"))
