"""Networks made, listed and removed; what operators see with ``ip`` and ``nft``; IPv6;
/etc/hosts kept current; the host's ip_forward; a host that lost its bridge (reboot)."""

import ipaddress
import os
import subprocess
import time
from pathlib import Path

import pytest

from kago.network import NetworkBusy, NetworkExists, NetworkNotFound
from kago.network.files import write_etc_files
from kago.network.testing import links_in, netenv_fixture, run  # noqa: F401 (fixture)

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def test_create_list_remove(netenv):
    nets = netenv.nets
    made = nets.create("front", netenv.subnet(0), bridge=netenv.bridge(1))
    assert made["gateway"] == netenv.subnet(0).replace(".0/24", ".1")
    assert run(["ip", "-o", "addr", "show", netenv.bridge(1)]).stdout.count(made["gateway"]) == 1
    with pytest.raises(NetworkExists):
        nets.create("front", netenv.subnet(1), bridge=netenv.bridge(2))
    att = nets.attach("l1", network="front")
    assert [(n["name"], n["containers"]) for n in nets.list()] == [("front", ["l1"])]
    with pytest.raises(NetworkBusy, match="network 'front' has 1 container\\(s\\) attached"):
        nets.remove("front")
    nets.detach("l1")
    nets.detach("l1")                       # idempotent
    nets.detach("never-attached")
    nets.remove("front")
    assert run(["ip", "link", "show", att.bridge]).returncode != 0
    assert run(["nft", "list", "table", "inet", netenv.table]).returncode != 0
    with pytest.raises(NetworkNotFound):
        nets.remove("front")


def test_create_without_subnet_picks_free_ones(netenv):
    nets = netenv.nets
    first = nets.create("auto1", bridge=netenv.bridge(1))
    second = nets.create("auto2", bridge=netenv.bridge(2))
    a, b = (ipaddress.ip_network(n["subnet"]) for n in (first, second))
    assert a.prefixlen == b.prefixlen == 24 and not a.overlaps(b)
    assert a.subnet_of(ipaddress.ip_network("10.89.0.0/16"))
    routes = run(["ip", "-4", "-o", "route", "show"]).stdout.splitlines()
    foreign = [r.split()[0] for r in routes
               if "/" in r.split()[0] and netenv.bridge(1) not in r and netenv.bridge(2) not in r]
    assert not [r for r in foreign if ipaddress.ip_network(r).overlaps(a)]


def test_operators_see_it_with_ip_and_nft(netenv):
    nets = netenv.nets
    att = nets.attach("ops1", ports=["18496:80"])
    assert att.netns_name in run(["ip", "netns", "list"]).stdout.split()
    addrs = run(["ip", "netns", "exec", att.netns_name, "ip", "-o", "addr", "show", "eth0"])
    assert f"{att.ipv4}/{att.prefixlen}" in addrs.stdout
    route = run(["ip", "netns", "exec", att.netns_name, "ip", "route", "show", "default"])
    assert route.stdout.startswith(f"default via {att.gateway} dev eth0")
    link = run(["ip", "netns", "exec", att.netns_name, "ip", "-o", "link", "show", "eth0"])
    assert f"link/ether {att.mac}" in link.stdout
    ports = run(["ip", "-o", "link", "show", "master", att.bridge]).stdout
    assert att.host_ifname in ports
    alias = run(["ip", "-d", "link", "show", att.bridge]).stdout
    assert f"alias kago:kt:{os.path.abspath(netenv.state_dir)}" in alias
    table = run(["nft", "list", "table", "inet", netenv.table]).stdout
    assert f"tcp . 18496 : {att.ipv4} . 80" in table


def test_ipv6_addresses_and_traffic(netenv):
    nets = netenv.nets
    v6 = f"fd00:{netenv.tag}:{netenv.octet:x}::/64"
    nets.create("six", netenv.subnet(0), bridge=netenv.bridge(1), ipv6_subnet=v6)
    a = nets.attach("six1", network="six")
    b = nets.attach("six2", network="six", ipv6=v6.replace("::/64", "::99"))
    assert a.ipv6.endswith("::2") and b.ipv6.endswith("::99")
    server = subprocess.Popen(["ip", "netns", "exec", a.netns_name, "busybox", "nc", "-l", "-p",
                               "8000", "-e", "echo", "over-v6"], stdout=subprocess.DEVNULL)
    try:
        answer = ""
        for _ in range(50):                  # bounded: the listener needs a moment
            answer = run(["ip", "netns", "exec", b.netns_name, "busybox", "nc", "-w", "2",
                          a.ipv6, "8000"], input="").stdout.strip()
            if answer:
                break
            time.sleep(0.05)
        assert answer == "over-v6"
    finally:
        server.kill()
        server.wait(timeout=5)


def test_hosts_files_follow_peers_in_place(netenv, tmp_path):
    nets = netenv.nets
    a = nets.attach("h1", hostname="alpha", etc_dir=str(tmp_path / "a"))
    hosts = tmp_path / "a" / "hosts"
    inode = os.stat(hosts).st_ino
    assert f"{a.ipv4}\talpha h1" in hosts.read_text()
    b = nets.attach("h2", hostname="beta", aliases=("b",), etc_dir=str(tmp_path / "b"))
    assert f"{b.ipv4}\tbeta b h2" in hosts.read_text()
    assert f"{a.ipv4}\talpha h1" in (tmp_path / "b" / "hosts").read_text()
    assert os.stat(hosts).st_ino == inode          # rewritten in place: bind mounts stay live
    nets.detach("h2")
    assert "beta" not in hosts.read_text()
    assert not (tmp_path / "b" / "hosts").exists()
    assert (tmp_path / "a" / "hostname").read_text() == "alpha\n"


def test_write_etc_files_for_each_mode(netenv, tmp_path):
    nets = netenv.nets
    host = nets.attach("e1", mode="host")
    assert host.netns_path is None
    files = write_etc_files(str(tmp_path / "host"), "hostbox", host)
    assert Path(files["/etc/hosts"]).read_text() == Path("/etc/hosts").read_text()
    assert Path(files["/etc/resolv.conf"]).read_text() == Path("/etc/resolv.conf").read_text()
    none = nets.attach("e2", mode="none")
    assert links_in(none.netns_name) == ["lo"]
    files = write_etc_files(str(tmp_path / "none"), "alone", none,
                            resolv_conf="nameserver 192.0.2.53")
    assert "127.0.1.1\talone e2" in Path(files["/etc/hosts"]).read_text()
    assert Path(files["/etc/resolv.conf"]).read_text() == "nameserver 192.0.2.53\n"
    assert Path(files["/etc/hostname"]).read_text() == "alone\n"


def test_bridge_and_table_come_back_after_a_reboot(netenv):
    """Records survive a reboot, the bridge and the nft table do not: the next attach on the
    network remakes both."""
    nets = netenv.nets
    nets.ensure_default()
    run(["ip", "link", "del", netenv.bridge(0)])
    run(["nft", "delete", "table", "inet", netenv.table])
    att = nets.attach("boot1", ports=["18497:80"])
    assert run(["ip", "link", "show", netenv.bridge(0)]).returncode == 0
    table = run(["nft", "list", "table", "inet", netenv.table]).stdout
    assert f"tcp . 18497 : {att.ipv4} . 80" in table
    assert f'"{netenv.bridge(0)}"' in table


def test_outbound_turns_ip_forward_on_and_back_off(netenv, tmp_path):
    """On while an outbound network of any state dir on the host needs it (the host-wide
    registry), then back to the value it had before the first one."""
    from kago.network.hostwide import HostState
    from kago.network.testing import NetEnv
    before = Path(IP_FORWARD).read_text().strip()
    env = NetEnv(str(tmp_path / "fwd"), tag=netenv.tag, outbound=True,
                 nft_table=f"{netenv.table}f", default_bridge=netenv.bridge(4))
    try:
        env.nets.ensure_default()
        assert Path(IP_FORWARD).read_text().strip() == "1"
        table = run(["nft", "list", "set", "inet", env.table, "outbound4"]).stdout
        assert env.subnet(0) in table
    finally:
        env.cleanup()
    after = Path(IP_FORWARD).read_text().strip()
    others = HostState().forwarding_users()     # another run's network may need it still
    assert after == ("1" if others else before), others
    assert run(["nft", "list", "table", "inet", env.table]).returncode != 0
