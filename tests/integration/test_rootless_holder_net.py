"""A rootless holder's network namespace connected to the host (kago.network.rootless.outside)
with kago.network's own bridge, NAT and published ports inside it (Networks(slirp_runroot=)).

A throwaway user holds a new user, network and mount namespace (``unshare --user
--map-root-user --net --mount sleep``, kago.testing.holder_net.Holder). The user connects it
(slirp4netns started by a process of the user's that then exits, as a ``kago`` command
would), and kago.network runs inside it as the namespace's root (``nsenter`` as the user):
a bridge network, a container netns with python's http.server, ports published on the
host's 127.0.0.1 through slirp4netns and kago's DNAT, and removed again. The user, its
processes and its files are removed afterwards and checked gone; nothing is made in the
host's own network namespace (no nft table, no bridge, ip_forward untouched).
"""

import errno
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import IS_ROOT, throwaway_user
from kago.network.rootless import api, exitwatch, outside
from kago.testing.holder_net import CONNECT, Holder, host_ipv4, no_host_ipv4, serve_hello

pytestmark = [
    pytest.mark.skipif(not IS_ROOT, reason="creates a throwaway user: needs root"),
    pytest.mark.skipif(not os.path.exists("/usr/bin/slirp4netns"),
                       reason="slirp4netns is not installed"),
]
PORTS = range(18000, 18100)
CTR_PORT = 8080
TABLE, BRIDGE = "rn2t", "rn2br0"


def free_ports(count):
    """Ports of PORTS nothing holds on the host now (tcp, any address)."""
    from kago.testing.holder_net import free_ports as find
    return find(PORTS, count) or pytest.skip(f"no {count} free ports in "
                                             f"{PORTS.start}-{PORTS.stop - 1}")


def host_ip_forward():
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        return f.read().strip()


@pytest.fixture(scope="module")
def user():
    yield from throwaway_user(subids=True)


@pytest.fixture(scope="module")
def holder(user):
    with Holder(user) as h:
        yield h


def as_user_connect(holder, runroot, **options):
    """outside.connect run by a process of the user's that exits afterwards."""
    code = ("import json, sys\nfrom dataclasses import asdict\n"
            "from kago.network.rootless import outside\n"
            "conn = outside.connect(int(sys.argv[1]), sys.argv[2], **json.loads(sys.argv[3]))\n"
            "print(json.dumps(asdict(conn)))\n")
    proc = subprocess.run(holder.as_user([sys.executable, "-c", code, str(holder.pid),
                                          runroot, json.dumps(options)]),
                          capture_output=True, text=True, timeout=30, cwd=holder.user.home)
    assert proc.returncode == 0, proc.stderr
    return outside.Connection.from_dict(json.loads(proc.stdout))


@pytest.fixture(scope="module")
def runroot(user):
    path = os.path.join(user.runtime_dir, "kago")
    os.makedirs(path)
    user.chown(path)
    return path


@pytest.fixture(scope="module")
def settings(user, runroot):
    """The holder's Networks: netns and host-wide files in the runroot (the defaults behind
    slirp4netns), a resolver per network."""
    os.makedirs(os.path.join(user.home, "net"))
    user.chown(user.home)
    return {"state_dir": f"{user.home}/net", "nft_table": TABLE, "netns_prefix": "rn2-",
            "veth_prefix": "rn2v", "default_network": "rn2net", "default_bridge": BRIDGE,
            "default_subnet": "10.89.231.0/24", "slirp_runroot": runroot}


@pytest.fixture(scope="module")
def connected(holder, runroot, settings):
    """The holder connected by the user; its networks and the connection gone afterwards."""
    forward_before = host_ip_forward()
    conn = as_user_connect(holder, runroot)
    try:
        yield conn
    finally:
        holder.network({"op": "remove", "settings": settings})
        outside.disconnect(runroot)
        assert host_ip_forward() == forward_before
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
        assert TABLE not in tables.stdout
        assert not os.path.exists(f"/sys/class/net/{BRIDGE}")


def attach(holder, settings, cid, ports, **extra):
    return holder.network({"op": "attach", "cid": cid, "ports": ports, "settings": settings,
                           **extra})


def listing(path):
    return os.listdir(path) if os.path.isdir(path) else []


def one_line(reply):
    assert "error" in reply, reply
    assert "\n" not in reply["error"]
    return reply["error"]


def forwards(conn):
    return api.call(conn.api_socket, api.list_hostfwd())["entries"]


def http_get(port, timeout=3):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as r:
        return r.status


def wait_http(port, tries=50):
    for _ in range(tries):  # bounded: the server inside may still be starting
        try:
            return http_get(port)
        except OSError:
            time.sleep(0.1)
    return http_get(port)


@pytest.fixture
def container(holder, settings, connected):
    """Attaches containers (detached afterwards) and serves http in their netns."""
    made, servers = [], []

    def make(cid, ports, serve=True, **extra):
        reply = attach(holder, settings, cid, ports, **extra)
        if "ok" in reply:
            made.append(cid)
            if serve:
                servers.append(subprocess.Popen(
                    holder.inside(["/usr/bin/python3", "-m", "http.server", "--bind",
                                   "0.0.0.0", str(CTR_PORT)], netns=reply["ok"]["netns_path"]),
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
        return reply

    yield make
    for proc in servers:
        proc.kill()
        proc.wait(10)
    for cid in made:
        holder.network({"op": "detach", "cid": cid, "settings": settings})


def in_holder(holder, argv, netns=None):
    return subprocess.run(holder.inside(argv, netns=netns), capture_output=True, text=True,
                          timeout=30).stdout


def test_connect_configures_the_holders_netns_from_outside(holder, runroot, connected):
    assert outside.is_connected(runroot)
    assert {"slirp4netns.json", "slirp4netns.log", "slirp4netns.pid",
            "slirp4netns.sock"} <= set(os.listdir(runroot))
    assert connected.uid == holder.user.uid and connected.holder_pid == holder.pid
    with open(f"/proc/{connected.pid}/status") as f:  # slirp4netns runs as the user
        assert f"Uid:\t{holder.user.uid}\t" in f.read()
    with open(f"/proc/{connected.pid}/cmdline", "rb") as f:
        args = f.read().split(b"\0")
    assert b"--disable-host-loopback" in args and b"--enable-sandbox" in args
    assert b"--enable-seccomp" in args and connected.hardened
    assert "10.0.2.100/24" in in_holder(holder, ["ip", "-4", "-o", "addr", "show", "tap0"])
    assert "default via 10.0.2.2 dev tap0" in in_holder(holder, ["ip", "route"])
    again = subprocess.run(
        holder.as_user([sys.executable, "-c", "import sys\nfrom kago.network.rootless import "
                        "outside\ntry:\n    outside.connect(int(sys.argv[1]), sys.argv[2])\n"
                        "except Exception as e:\n    print(e)\n", str(holder.pid), runroot]),
        capture_output=True, text=True, timeout=30)
    assert "already connected (slirp4netns pid" in again.stdout
    assert outside.connection(runroot) == connected


def test_published_ports_answer_on_the_hosts_loopback_until_detach(holder, settings,
                                                                    connected, container):
    ip_port, any_port = free_ports(2)
    reply = container("web", [f"127.0.0.1:{ip_port}:{CTR_PORT}", f"{any_port}:{CTR_PORT}"])
    assert "ok" in reply, reply
    assert wait_http(ip_port) == 200
    assert http_get(any_port) == 200
    # every address: the host's own too (the traffic stays here). Without one the holder
    # can answer (no_host_ipv4), another loopback address shows the same binds
    addr = host_ipv4() or "127.0.0.2"
    with urllib.request.urlopen(f"http://{addr}:{any_port}/", timeout=30) as r:
        assert r.status == 200
    with pytest.raises(OSError):                # 127.0.0.1 only: not on that address
        urllib.request.urlopen(f"http://{addr}:{ip_port}/", timeout=30)
    entries = forwards(connected)
    assert {(e["host_addr"], e["host_port"], e["guest_port"]) for e in entries} == {
        ("127.0.0.1", ip_port, ip_port), ("0.0.0.0", any_port, any_port)}
    with open(os.path.join(settings["state_dir"], "attachments", "web.json")) as f:
        journal = json.load(f)
    assert sorted(journal["hostfwd"]["ids"]) == sorted(e["id"] for e in entries)
    assert "hostfwd" in journal["made"]
    assert f"10.0.2.100 . tcp . {ip_port}" in in_holder(
        holder, ["nft", "list", "map", "inet", TABLE, "dnat4_ip"])
    assert in_holder(holder, ["cat", "/proc/sys/net/ipv4/ip_forward"]).strip() == "1"
    # the container's side of the veth, and so the bridge, carry tap0's MTU
    assert "mtu 65520" in in_holder(holder, ["ip", "link", "show", "eth0"],
                                    netns=reply["ok"]["netns_path"])
    assert "mtu 65520" in in_holder(holder, ["ip", "link", "show", BRIDGE])

    assert holder.network({"op": "detach", "cid": "web", "settings": settings}) == {"ok": None}
    assert forwards(connected) == []
    for port in (ip_port, any_port):
        with pytest.raises(OSError) as refused:
            http_get(port)
        assert getattr(refused.value, "reason", refused.value).errno == errno.ECONNREFUSED
    assert f"{ip_port}" not in in_holder(holder, ["nft", "list", "map", "inet", TABLE,
                                                  "dnat4_ip"])


ASK = ("import sys\nfrom kago.network.dns.testing import addresses, ask\n"
       "print(' '.join(addresses(ask((sys.argv[1], 53), sys.argv[2]))))\n")


def test_containers_find_each_other_through_the_holders_resolver(holder, settings,
                                                                 connected, container):
    """A user network is kago's, whole, inside the holder: its resolver names its
    containers, and forwards other names to slirp4netns's 10.0.2.3."""
    a = container("named-a", [], serve=False)["ok"]
    b = container("named-b", [], serve=False)["ok"]
    got = in_holder(holder, [sys.executable, "-c", ASK, b["gateway"], "named-a"],
                    netns=b["netns_path"]).split()
    assert got == [a["ipv4"]]
    with open(os.path.join(settings["state_dir"], "dns", "rn2net.proc.json")) as f:
        assert json.load(f)["listen"][0] == b["gateway"]
    with open(os.path.join(settings["state_dir"], "dns", "rn2net.json")) as f:
        assert "10.0.2.3" in f.read()


def test_a_reconnected_holder_gets_its_containers_ports_back(holder, runroot, settings,
                                                             connected, container):
    """slirp4netns ended (its forwards with it) and the holder connected anew: the
    containers still attached are forwarded again by restore_forwards."""
    port, = free_ports(1)
    assert "ok" in container("again", [f"127.0.0.1:{port}:{CTR_PORT}"])
    assert wait_http(port) == 200
    outside.disconnect(runroot)
    with pytest.raises(OSError):
        http_get(port)
    assert attach(holder, settings, "nope", [f"{port + 1}:{CTR_PORT}"])["error"].startswith(
        f"published ports: the rootless network of {runroot} is not connected")
    conn = as_user_connect(holder, runroot)
    try:
        assert holder.network({"op": "restore", "settings": settings}) == {"ok": ["again"]}
        assert wait_http(port) == 200
        (entry,) = forwards(conn)
        with open(os.path.join(settings["state_dir"], "attachments", "again.json")) as f:
            assert json.load(f)["hostfwd"]["ids"] == [entry["id"]]
        assert holder.network({"op": "restore", "settings": settings}) == {"ok": ["again"]}
        assert len(forwards(conn)) == 1                         # replaced, not doubled
    finally:
        holder.network({"op": "detach", "cid": "again", "settings": settings})
    assert forwards(conn) == []


def test_a_forward_the_journal_missed_goes_with_detach(holder, settings, connected,
                                                       container):
    """A publish interrupted between slirp's add_hostfwd and the journal's save."""
    port, = free_ports(1)
    assert "ok" in container("crashy", [f"127.0.0.1:{port}:{CTR_PORT}"], serve=False)
    (entry,) = forwards(connected)      # the journalled one, replaced by one it does not know
    api.call(connected.api_socket, api.remove_hostfwd(entry["id"]))
    unjournaled = api.call(connected.api_socket, api.add_hostfwd(
        "tcp", "127.0.0.1", port, port, "10.0.2.100"))["id"]
    assert unjournaled != entry["id"]
    assert holder.network({"op": "detach", "cid": "crashy", "settings": settings}) == \
        {"ok": None}
    assert forwards(connected) == []


UDP_ECHO = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0', 5353))\n"
            "while True:\n    data, peer = s.recvfrom(512)\n    s.sendto(b'echo ' + data, peer)\n")


def udp_exchange(holder, netns, addr, port):
    """The reply to a datagram sent to addr:port on the host, a UDP echo server running in
    ``netns`` of the holder (b"" when none came)."""
    server = subprocess.Popen(holder.inside(["/usr/bin/python3", "-c", UDP_ECHO], netns=netns),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            for _ in range(25):             # bounded: the server inside may be starting
                s.sendto(b"ping", (addr, port))
                try:
                    return s.recv(64)
                except OSError:
                    continue
        return b""
    finally:
        server.kill()
        server.wait(10)


def test_a_udp_port_is_published_and_loopback_udp_refused(holder, settings, connected,
                                                           container):
    port, = free_ports(1)
    reply = container("lo-udp", [f"127.0.0.1:{port}:5353/udp"], serve=False)
    assert reply["type"] == "RootlessNetError"
    assert "a UDP port on the host's loopback gets no replies without root" in one_line(reply)
    assert listing(os.path.join(settings["state_dir"], "attachments")) == []
    addr = host_ipv4()
    if addr is None:
        pytest.skip(f"no host address to send from: {no_host_ipv4()}")
    reply = container("udp", [f"{port}:5353/udp"], serve=False)
    assert "ok" in reply, reply
    assert udp_exchange(holder, reply["ok"]["netns_path"], addr, port) == b"echo ping"
    assert [(e["proto"], e["host_addr"], e["host_port"]) for e in forwards(connected)] == [
        ("udp", "0.0.0.0", port)]
    assert holder.network({"op": "detach", "cid": "udp", "settings": settings}) == \
        {"ok": None}
    assert forwards(connected) == []


def test_a_port_below_the_hosts_floor_is_refused_before_anything_is_made(
        holder, settings, connected, container):
    reply = container("low", [f"127.0.0.1:80:{CTR_PORT}"], serve=False)
    text = one_line(reply)
    assert reply["type"] == "PrivilegedPort"
    assert "sysctl net.ipv4.ip_unprivileged_port_start=80" in text
    assert f"publish a port >= {connected.unprivileged_port_start}" in text
    assert listing(os.path.join(settings["state_dir"], "attachments")) == []
    assert listing(os.path.join(settings["slirp_runroot"], "netns")) == []
    assert forwards(connected) == []


def test_a_port_taken_on_the_host_is_one_line_and_leaves_nothing(holder, settings,
                                                                  connected, container):
    port, = free_ports(1)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        reply = container("busy", [f"127.0.0.1:{port}:{CTR_PORT}"], serve=False)
    text = one_line(reply)
    assert reply["type"] == "PortInUse"
    assert text == (f"host port 127.0.0.1:{port}/tcp is already in use: publish another "
                    "port or stop what listens there")
    assert listing(os.path.join(settings["state_dir"], "attachments")) == []
    assert listing(os.path.join(settings["slirp_runroot"], "netns")) == []
    assert forwards(connected) == []


def test_an_ipv6_host_address_is_refused(holder, settings, connected, container):
    port, = free_ports(1)
    reply = container("six", [f"[::1]:{port}:{CTR_PORT}"], serve=False)
    assert "binds IPv4 host addresses only" in one_line(reply)


@pytest.fixture
def loopback_holder(user):
    """A second holder of the user's, connected with the host's loopback reachable at
    10.0.2.2 (a test's way to see outbound traffic without leaving the host); its networks,
    slirp4netns and files gone afterwards."""
    rr = os.path.join(user.runtime_dir, "kago-lo")
    home = os.path.join(user.home, "lo")
    for path in (rr, *(os.path.join(home, sub) for sub in ("net", "netns", "host"))):
        os.makedirs(path)
    user.chown(rr)
    user.chown(home)
    settings = {"state_dir": f"{home}/net", "nft_table": TABLE, "netns_dir": f"{home}/netns",
                "netns_prefix": "rn2-", "veth_prefix": "rn2v", "default_network": "rn2net",
                "default_bridge": BRIDGE, "default_subnet": "10.89.232.0/24",
                "host_dir": f"{home}/host", "dns": False, "slirp_runroot": rr}
    try:
        with Holder(user) as h:
            try:
                as_user_connect(h, rr, host_loopback=True)
                yield h, settings
            finally:
                for cid in ("out", "sealed"):
                    h.network({"op": "detach", "cid": cid, "settings": settings})
                h.network({"op": "remove", "settings": settings})
                outside.disconnect(rr)
    finally:
        os.rmdir(rr)
        shutil.rmtree(home)


def test_loopback_udp_answers_when_slirp_reaches_the_hosts_loopback(loopback_holder):
    holder, settings = loopback_holder
    port, = free_ports(1)
    reply = attach(holder, settings, "out", [f"127.0.0.1:{port}:5353/udp"])
    assert "ok" in reply, reply
    assert udp_exchange(holder, reply["ok"]["netns_path"], "127.0.0.1", port) == b"echo ping"


def test_outbound_from_a_container_is_masqueraded_out_of_tap0(loopback_holder):
    holder, settings = loopback_holder
    port, = free_ports(1)
    out = attach(holder, settings, "out", [])["ok"]
    reply = holder.network({"op": "create", "network": "sealed", "subnet": "10.89.233.0/24",
                            "bridge": "rn2sealed", "outbound": False, "settings": settings})
    assert "ok" in reply, reply
    sealed = attach(holder, settings, "sealed", [], network="sealed")["ok"]
    srv, seen = serve_hello("127.0.0.1", port)
    try:
        got = in_holder(holder, ["/usr/bin/python3", "-c", CONNECT, "10.0.2.2", str(port)],
                        netns=out["netns_path"]).strip()
        assert got == "got hello"
        assert seen == ["127.0.0.1"]     # slirp4netns's own connection on the host
        # without kago's masquerade the container's source is one slirp cannot answer
        got = in_holder(holder, ["/usr/bin/python3", "-c", CONNECT, "10.0.2.2", str(port)],
                        netns=sealed["netns_path"]).strip()
        assert got.startswith("failed")
    finally:
        srv.close()


def gone(pid, timeout=30.0):
    """Whether ``pid`` is gone within ``timeout`` (an ended slirp4netns is reaped by its
    parent, init or a subreaper, once the user's connecting process has exited). Bounded
    for an emulated machine; it ends as soon as the pid is gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def fresh_holder(user):
    """A holder of the user's of its own (one slirp4netns per holder: its tap0 is taken)."""
    with Holder(user) as h:
        yield h


@pytest.fixture
def fresh_runroot(user):
    """An empty runroot of the user's, disconnected and removed afterwards."""
    path = os.path.join(user.runtime_dir, "kago-fresh")
    os.makedirs(path)
    user.chown(path)
    yield path
    outside.disconnect(path)
    os.rmdir(path)


def test_disconnect_leaves_no_process_and_no_file(fresh_holder, fresh_runroot):
    conn = as_user_connect(fresh_holder, fresh_runroot)
    assert outside.is_connected(fresh_runroot)
    assert outside.disconnect(fresh_runroot) == conn.pid
    assert gone(conn.pid)
    assert conn.watcher == 0 or gone(conn.watcher)              # its watcher, where it has one
    assert os.listdir(fresh_runroot) == []
    assert not outside.is_connected(fresh_runroot)
    assert outside.disconnect(fresh_runroot) is None           # twice is fine


def test_a_stale_pid_file_is_not_a_connection_and_connect_clears_it(fresh_holder,
                                                                     fresh_runroot, user):
    dead = subprocess.Popen(["true"])
    dead.wait()
    files = outside.paths(fresh_runroot)
    with open(files[outside.PIDFILE], "w") as f:
        f.write(f"{dead.pid}\n")
    with open(files[outside.FACTS], "w") as f:
        f.write("{}")
    user.chown(fresh_runroot)
    assert not outside.is_connected(fresh_runroot)
    conn = as_user_connect(fresh_holder, fresh_runroot)
    assert outside.connection(fresh_runroot) == conn
    assert outside.disconnect(fresh_runroot) == conn.pid


def test_slirp4netns_ends_by_itself_with_its_holder(fresh_holder, fresh_runroot):
    conn = as_user_connect(fresh_holder, fresh_runroot)
    assert (conn.watcher == 0) == exitwatch.pidfd_hangs_up()
    fresh_holder.stop()                              # killed and reaped
    assert gone(conn.pid)
    assert conn.watcher == 0 or gone(conn.watcher)
    assert not outside.is_connected(fresh_runroot)


def hangs_up(fd, timeout):
    """Whether ``fd`` hangs up (POLLHUP) within ``timeout`` seconds."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(events & select.POLLHUP for _, events in poller.poll(timeout * 1000))


def test_a_watchers_pipe_hangs_up_once_its_holder_is_reaped_or_it_is_stopped():
    """The exit fd of kernels whose pidfds do not hang up (exitwatch.py), on any kernel."""
    assert exitwatch.probe() == exitwatch.pidfd_hangs_up()   # the kernel agrees with its version
    holder = subprocess.Popen(["sleep", "600"])
    read_end, proc = exitwatch.start(holder.pid)
    watcher = proc.pid
    try:
        assert not hangs_up(read_end, 0.3)
        assert exitwatch.is_watcher(watcher, holder.pid)
        holder.kill()
        holder.wait(10)
        assert hangs_up(read_end, 30)                # its 1 s poll, on an emulated machine
        assert proc.wait(30) == 0                    # the watcher ended by itself
    finally:
        for p in (holder, proc):
            p.kill()
            p.wait(10)
        os.close(read_end)
    holder = subprocess.Popen(["sleep", "600"])
    read_end, proc = exitwatch.start(holder.pid)
    watcher = proc.pid
    try:
        assert not hangs_up(read_end, 0.3)
        exitwatch.stop(watcher, holder.pid)
        assert hangs_up(read_end, 30)
        assert proc.wait(30) == -signal.SIGTERM
        assert holder.poll() is None                 # the holder is not the watcher's to end
        exitwatch.stop(watcher, holder.pid)          # a pid that is no watcher: left alone
    finally:
        for p in (holder, proc):
            p.kill()
            p.wait(10)
        os.close(read_end)


def test_where_the_sandbox_does_not_work_slirp4netns_runs_without(fresh_holder,
                                                                   fresh_runroot, user):
    """A slirp4netns refusing --enable-sandbox (as one on a kernel without what it needs
    would): connect starts it again without, and says so."""
    wrapper = os.path.join(user.home, "slirp4netns-nosandbox")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nfor a in "$@"; do [ "$a" = --enable-sandbox ] && '
                '{ echo "sandbox: operation not permitted" >&2; exit 1; }; done\n'
                'exec /usr/bin/slirp4netns "$@"\n')
    os.chmod(wrapper, 0o755)
    user.chown(wrapper)
    conn = as_user_connect(fresh_holder, fresh_runroot, binary=wrapper)
    assert not conn.hardened and outside.connection(fresh_runroot) == conn
    with open(f"/proc/{conn.pid}/cmdline", "rb") as f:
        assert b"--enable-sandbox" not in f.read().split(b"\0")
    with open(outside.paths(fresh_runroot)[outside.LOG]) as f:
        log = f.read()
    assert "kago: started again without --enable-sandbox/--enable-seccomp: slirp4netns " \
        "for pid" in log and "sandbox: operation not permitted" in log
    assert outside.disconnect(fresh_runroot) == conn.pid


def test_connect_refuses_what_it_cannot_connect(user, holder):
    from kago.network.rootless import RootlessNetError
    with pytest.raises(RootlessNetError, match="in the caller's network namespace"):
        outside.connect(os.getpid(), user.runtime_dir)
    with pytest.raises(RootlessNetError, match="no such directory"):
        outside.connect(holder.pid, os.path.join(user.runtime_dir, "missing"))
    dead = subprocess.Popen(["true"])
    dead.wait()
    with pytest.raises(RootlessNetError, match="no such process"):
        outside.connect(dead.pid, user.runtime_dir)
