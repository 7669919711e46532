"""Bad input and failures half-way: one clear error, and nothing of the failed call is left.

"Nothing" is checked on the host (netns file and mount, veth, nft elements) and in kago's
state (attachment record, leases, published-port registry), while what was there before the
failed call (another container, somebody else's interface or netns) is untouched.
"""

import json
import os
import socket
from pathlib import Path

import pytest

from kago.network import (
    AddressInUse,
    AttachmentExists,
    NetworkError,
    ObjectExists,
    PortMapping,
)
from kago.network.testing import NetEnv, netenv_fixture, run  # noqa: F401 (fixture)


def nothing_of(env, cid):
    """What is left of ``cid`` (empty when nothing): host objects and state entries."""
    nets = env.nets
    left = []
    if os.path.lexists(os.path.join(nets.netns_dir, env.netns_name(cid))):
        left.append("netns file")
    if f"/{env.netns_name(cid)} " in Path("/proc/self/mountinfo").read_text():
        left.append("netns mount")
    if run(["ip", "link", "show", nets.veth_name(cid)]).returncode == 0:
        left.append("veth")
    if nets.attachment(cid) is not None:
        left.append("attachment record")
    for name in os.listdir(os.path.join(env.state_dir, "leases")):
        if name.endswith(".json"):
            with open(os.path.join(env.state_dir, "leases", name)) as f:
                data = json.load(f)
            if any(cid in table.values() for table in (data["ipv4"], data["mac"])):
                left.append(f"lease in {name}")
    ports = os.path.join(env.state_dir, "ports.json")
    if os.path.exists(ports) and any(e["cid"] == cid for e in json.loads(Path(ports).read_text())):
        left.append("published port")
    return left


def nft_elements(env, maps=("dnat4_any", "dnat4_ip", "dnat6_any", "dnat6_ip")):
    """The published-port maps' contents, as nft lists them ("" without the table)."""
    listed = [run(["nft", "list", "map", "inet", env.table, m]) for m in maps]
    return "".join(p.stdout for p in listed if p.returncode == 0)


def test_taken_static_ip_is_refused_and_leaves_nothing(netenv):
    first = netenv.nets.attach("a1")
    with pytest.raises(AddressInUse, match=f"ip {first.ipv4} is already used by container a1"):
        netenv.nets.attach("a2", ip=first.ipv4)
    assert nothing_of(netenv, "a2") == []
    assert netenv.nets.attachment("a1") == first


@pytest.mark.parametrize("ip, message", [
    ("10.1.2.3", "outside network 'kt'"),
    ("not-an-ip", "is not an IP address"),
])
def test_bad_static_ip_leaves_nothing(netenv, ip, message):
    with pytest.raises(NetworkError, match=message):
        netenv.nets.attach("b1", ip=ip)
    assert nothing_of(netenv, "b1") == []


def test_the_gateway_cannot_be_requested(netenv):
    gateway = netenv.nets.ensure_default()["gateway"]
    with pytest.raises(AddressInUse, match="is the gateway"):
        netenv.nets.attach("g1", ip=gateway)
    assert nothing_of(netenv, "g1") == []


def test_taken_mac_is_refused(netenv):
    first = netenv.nets.attach("m1")
    with pytest.raises(AddressInUse, match=f"mac {first.mac} is already used"):
        netenv.nets.attach("m2", mac=first.mac)
    assert nothing_of(netenv, "m2") == []
    with pytest.raises(NetworkError, match="must be a unicast address"):
        netenv.nets.attach("m3", mac="03:00:00:00:00:01")


@pytest.mark.parametrize("subnet, message", [
    ("10.254.1.1/24", "has host bits set"),
    ("300.1.1.0/24", "does not appear to be an IPv4 or IPv6 network"),
    ("10.254.1.0/31", "too small"),
    ("fd00::/64", "expected an IPv4 subnet"),
])
def test_bad_subnet_makes_no_bridge_and_no_table(netenv, subnet, message):
    with pytest.raises(NetworkError, match=message):
        netenv.nets.create("bad", subnet, bridge=netenv.bridge(5))
    assert run(["ip", "link", "show", netenv.bridge(5)]).returncode != 0
    assert netenv.nets.list() == []
    assert netenv.leftovers() == []


def test_subnet_over_the_hosts_own_route_is_refused(netenv):
    routes = run(["ip", "-4", "-o", "route", "show", "scope", "link"]).stdout.split("\n")
    lan = next((r.split()[0] for r in routes if r and "/" in r.split()[0]
                and "dev kt" not in r), None)
    if lan is None:
        pytest.skip("this host has no link-scope IPv4 route to collide with")
    with pytest.raises(NetworkError, match="overlaps the host's route"):
        netenv.nets.create("lan", lan, bridge=netenv.bridge(6))
    assert netenv.leftovers() == []


def test_overlapping_networks_and_shared_bridges_are_refused(netenv):
    nets = netenv.nets
    nets.create("one", netenv.subnet(0), bridge=netenv.bridge(1))
    with pytest.raises(NetworkError, match="overlaps network 'one'"):
        nets.create("two", netenv.subnet(0), bridge=netenv.bridge(2))
    with pytest.raises(NetworkError, match=f"bridge {netenv.bridge(1)}: already used"):
        nets.create("three", netenv.subnet(1), bridge=netenv.bridge(1))
    assert [n["name"] for n in nets.list()] == ["one"]


def test_bridge_name_of_a_foreign_interface_is_refused_and_left_alone(netenv):
    name = netenv.bridge(7)
    assert run(["ip", "link", "add", name, "type", "bridge"]).returncode == 0
    try:
        with pytest.raises(NetworkError, match=f"interface {name} exists and is not kago's"):
            netenv.nets.create("foreign", netenv.subnet(0), bridge=name)
        assert run(["ip", "link", "show", name]).returncode == 0
        assert netenv.nets.list() == []
    finally:
        run(["ip", "link", "del", name])


def test_veth_name_clash_undoes_leases_and_netns_but_not_the_clashing_link(netenv):
    clash = netenv.nets.veth_name("v1")
    netenv.nets.ensure_default()
    peer = f"kt{netenv.tag}peer"
    assert run(["ip", "link", "add", clash, "type", "veth", "peer", "name", peer]).returncode == 0
    try:
        with pytest.raises(ObjectExists, match=f"veth {clash}: file exists"):
            netenv.nets.attach("v1")
        assert run(["ip", "link", "show", clash]).returncode == 0    # not ours: still there
        run(["ip", "link", "del", clash])
        assert nothing_of(netenv, "v1") == []
    finally:
        run(["ip", "link", "del", clash])


def test_netns_name_taken_is_refused_and_left_alone(netenv):
    name = netenv.netns_name("n1")
    assert run(["ip", "netns", "add", name]).returncode == 0
    try:
        with pytest.raises(ObjectExists, match="already exists"):
            netenv.nets.attach("n1")
        assert name in run(["ip", "netns", "list"]).stdout
        run(["ip", "netns", "delete", name])
        assert nothing_of(netenv, "n1") == []
    finally:
        run(["ip", "netns", "delete", name])


def test_port_published_twice_is_refused(netenv):
    netenv.nets.attach("p1", ports=["18491:80"])
    before = nft_elements(netenv)
    for spec in ("18491:8080", "127.0.0.1:18491:80"):
        with pytest.raises(AddressInUse, match="already published by container p1"):
            netenv.nets.attach("p2", ports=[spec])
        assert nothing_of(netenv, "p2") == []
    assert nft_elements(netenv) == before
    netenv.nets.attach("p3", ports=["18491:80/udp"])    # another protocol is another port


def test_port_a_host_process_listens_on_is_refused(netenv):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(AddressInUse, match="a process on the host already uses it"):
            netenv.nets.attach("h1", ports=[PortMapping(port, 80)])
    assert nothing_of(netenv, "h1") == []


def test_ipv6_port_without_ipv6_is_refused_before_anything_is_made(netenv):
    with pytest.raises(NetworkError, match="the container has no IPv6 address"):
        netenv.nets.attach("l1", ports=["[::1]:18492:80"])
    assert nothing_of(netenv, "l1") == []


def test_failure_at_the_last_step_undoes_every_step_before_it(netenv, tmp_path):
    """Two state dirs sharing one nft table but not the host-wide port registry (the second
    has a host dir of its own): its registries do not know the first's port, so the clash
    shows only at the nft step, after leases, port registry, netns and veth were made for the
    second container."""
    netenv.nets.attach("l2", ports=["18492:80"])
    other = NetEnv(str(tmp_path / "other"), tag=netenv.tag, nft_table=netenv.table,
                   default_bridge=netenv.bridge(3), default_subnet=netenv.subnet(1),
                   host_dir=str(tmp_path / "other-host"))
    before = nft_elements(netenv)
    try:
        with pytest.raises(NetworkError, match="nft: could not process rule: file exists"):
            other.nets.attach("l3", ports=["18492:80"])
        assert nothing_of(other, "l3") == []
        assert nft_elements(netenv) == before
    finally:
        other.cleanup()


def test_a_crashed_attach_is_undone_by_detach(netenv):
    """The attaching process dies (SIGKILL-like os._exit) after its veth was made: the journal
    in attachments/<cid>.json still lets detach remove all of it."""
    nets = netenv.nets
    nets.ensure_default()
    pid = os.fork()
    if pid == 0:
        from kago.network import links
        links.configure = lambda ipr, att: os._exit(7)
        try:
            nets.attach("crash1", ports=["18493:80"])
        finally:
            os._exit(1)
    assert os.waitpid(pid, 0)[1] >> 8 == 7
    assert nets.attachment("crash1") is not None
    assert run(["ip", "link", "show", nets.veth_name("crash1")]).returncode == 0
    nets.detach("crash1")
    assert nothing_of(netenv, "crash1") == []


@pytest.mark.parametrize("kwargs, message", [
    ({"cid": "../x"}, "container id '../x'"),
    ({"cid": "ok", "mode": "macvlan"}, "network mode 'macvlan'"),
    ({"cid": "ok", "mode": "none", "ports": ["80:80"]}, "published ports need bridge mode"),
    ({"cid": "ok", "mode": "host", "ports": ["80:80"]}, "published ports need bridge mode"),
    ({"cid": "ok", "mode": "container:ok"}, "cannot join itself"),
    ({"cid": "ok", "mode": "container:nobody"}, "that container has no network"),
    ({"cid": "ok", "ports": ["80"]}, "expected \\[HOSTIP:\\]HOSTPORT:CONTAINERPORT"),
    ({"cid": "ok", "network": "missing"}, "network 'missing' does not exist"),
    ({"cid": "ok", "netns_name": "a/b"}, "netns name 'a/b'"),
])
def test_bad_attach_arguments(netenv, kwargs, message):
    with pytest.raises(NetworkError, match=message):
        netenv.nets.attach(**kwargs)
    assert netenv.nets.attachments() == []


def test_attaching_twice_keeps_the_first(netenv):
    first = netenv.nets.attach("t1")
    with pytest.raises(AttachmentExists, match="already attached"):
        netenv.nets.attach("t1")
    assert netenv.nets.attachment("t1") == first
    assert run(["ip", "link", "show", first.host_ifname]).returncode == 0


def test_racing_attaches_of_one_id_make_one_attachment(netenv, tmp_path):
    from test_network_concurrency import in_processes
    netenv.nets.ensure_default()
    results = in_processes(6, lambda i: netenv.nets.attach("race1").ipv4, str(tmp_path))
    won = [r["ok"] for r in results if "ok" in r]
    lost = [r["error"] for r in results if "error" in r]
    assert len(won) == 1, results
    assert all(e.startswith("AttachmentExists: container race1 is already attached") for e in lost)
    assert netenv.nets.attachment("race1").ipv4 == won[0]
    assert [a.cid for a in netenv.nets.attachments()] == ["race1"]
