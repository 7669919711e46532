"""IPAM: network settings checked, addresses picked after a cursor, static requests, MACs, and
the lease file (flock; the concurrent-process case is in test_network_concurrency.py)."""

import ipaddress
import json
import os
from pathlib import Path

import pytest

from kago.network import AddressExhausted, AddressInUse, NetworkError, ipam
from kago.network.state import StateDir


def record(**kw):
    args = dict(name="n", subnet="10.9.0.0/24", bridge="br-n")
    args.update(kw)
    return ipam.network_record(**args)


def test_network_record_defaults():
    r = record()
    assert r == {"name": "n", "bridge": "br-n", "subnet": "10.9.0.0/24", "gateway": "10.9.0.1",
                 "prefixlen": 24, "ipv6_subnet": None, "ipv6_gateway": None,
                 "ipv6_prefixlen": None, "outbound": True}
    r6 = record(ipv6_subnet="fd00:9::/64", gateway="10.9.0.254")
    assert (r6["gateway"], r6["ipv6_gateway"], r6["ipv6_prefixlen"]) == ("10.9.0.254",
                                                                         "fd00:9::1", 64)


@pytest.mark.parametrize("kw, message", [
    ({"name": "-x"}, "network name '-x'"),
    ({"name": "a/b"}, "network name 'a/b'"),
    ({"bridge": "a-very-long-bridge"}, "bridge name 'a-very-long-bridge'"),
    ({"bridge": "br:0"}, "bridge name"),
    ({"subnet": "10.9.0.1/24"}, "has host bits set"),
    ({"subnet": "10.9.0.0/30", "gateway": "10.9.0.3"}, "not a usable address"),
    ({"gateway": "10.9.0.255"}, "not a usable address of 10.9.0.0/24"),
    ({"gateway": "10.8.0.1"}, "not a usable address"),
    ({"gateway": "x"}, "gateway 'x' is not an IP address"),
    ({"ipv6_subnet": "10.1.0.0/24"}, "expected an IPv6 subnet"),
    ({"ipv6_gateway": "fd00::1"}, "give an ipv6 subnet too"),
])
def test_network_record_errors(kw, message):
    with pytest.raises(NetworkError, match=message):
        record(**kw)


def test_overlapping():
    a = record(name="a", subnet="10.9.0.0/16")
    b = record(name="b", subnet="10.9.3.0/24", bridge="br-b")
    c = record(name="c", subnet="10.10.0.0/24", bridge="br-c", ipv6_subnet="fd00:1::/64")
    assert ipam.overlapping(b, [a]) is a
    assert ipam.overlapping(c, [a, b]) is None
    d = record(name="d", subnet="10.11.0.0/24", bridge="br-d", ipv6_subnet="fd00:1:0:0:1::/80")
    assert ipam.overlapping(d, [a, c]) is c


def test_pick_address_walks_after_the_cursor_and_wraps():
    net = ipaddress.ip_network("10.0.0.0/29")     # hosts .1-.6, .1 the gateway
    assert ipam.pick_address(net, {"10.0.0.1"}, {}) == "10.0.0.2"
    assert ipam.pick_address(net, {"10.0.0.1"}, {"10.0.0.2": "a"}, "10.0.0.2") == "10.0.0.3"
    assert ipam.pick_address(net, {"10.0.0.1"}, {}, "10.0.0.6") == "10.0.0.2"   # wrapped
    full = {f"10.0.0.{i}": "x" for i in range(2, 7)}
    assert ipam.pick_address(net, {"10.0.0.1"}, full, "10.0.0.4") is None


def test_pick_address_ipv6_uses_the_last_address_too():
    net = ipaddress.ip_network("fd00::/126")       # ::1 gateway, ::2, ::3
    assert ipam.pick_address(net, {"fd00::1"}, {"fd00::2": "a"}, "fd00::2") == "fd00::3"


def test_check_static():
    net = ipaddress.ip_network("10.0.0.0/24")
    assert ipam.check_static("10.0.0.7", net, {"10.0.0.1"}, {}, "n") == "10.0.0.7"
    with pytest.raises(NetworkError, match="outside network 'n'"):
        ipam.check_static("10.0.0.255", net, {"10.0.0.1"}, {}, "n")
    with pytest.raises(AddressInUse, match="gateway"):
        ipam.check_static("10.0.0.1", net, {"10.0.0.1"}, {}, "n")
    with pytest.raises(AddressInUse, match="used by container c9"):
        ipam.check_static("10.0.0.9", net, set(), {"10.0.0.9": "c9"}, "n")


def test_macs():
    assert ipam.mac_for("10.89.0.2") == "02:42:0a:59:00:02"
    assert ipam.check_mac("02:AA:bb:00:00:01") == "02:aa:bb:00:00:01"
    for bad in ("02:aa", "zz:00:00:00:00:00", "01:00:00:00:00:00", "00:00:00:00:00:00",
                "2:aa:bb:00:00:01", 5):
        with pytest.raises(NetworkError):
            ipam.check_mac(bad)


def test_leases_take_and_release(tmp_path):
    r = record(subnet="10.9.0.0/29", ipv6_subnet="fd00:9::/64")
    leases = ipam.Leases(StateDir(str(tmp_path)), r)
    assert leases.take("a") == ("10.9.0.2", "fd00:9::2", "02:42:0a:09:00:02")
    assert leases.take("b", ipv4="10.9.0.6", mac="02:00:00:00:00:0b")[0] == "10.9.0.6"
    assert leases.take("c")[0] == "10.9.0.3"      # static picks do not move the cursor
    assert leases.holders() == {"a", "b", "c"}
    leases.release("a")
    leases.release("a")
    assert leases.holders() == {"b", "c"}
    assert leases.take("d")[0] == "10.9.0.4"      # .2 is reused last, not next
    assert leases.take("e")[0] == "10.9.0.5"
    assert leases.take("f")[0] == "10.9.0.2"
    with pytest.raises(AddressExhausted, match="no free address left in 10.9.0.0/29"):
        leases.take("g")
    data = json.loads(Path(os.path.join(tmp_path, "leases", "n.json")).read_text())
    assert "g" not in data["ipv4"].values() and "g" not in data["mac"].values()


def test_refused_take_writes_nothing(tmp_path):
    r = record()
    leases = ipam.Leases(StateDir(str(tmp_path)), r)
    leases.take("a")
    before = Path(os.path.join(tmp_path, "leases", "n.json")).read_text()
    with pytest.raises(NetworkError, match="has no ipv6 subnet"):
        leases.take("b", ipv6="fd00::5")
    with pytest.raises(AddressInUse):
        leases.take("b", mac="02:42:0a:09:00:02")
    assert Path(os.path.join(tmp_path, "leases", "n.json")).read_text() == before


def test_free_subnet_skips_what_is_used():
    used = [ipaddress.ip_network(n) for n in ("10.89.0.0/24", "10.89.1.128/25", "10.0.0.0/8",
                                               "fd00::/8")]
    assert ipam.free_subnet(used[:2]) == "10.89.2.0/24"
    assert ipam.free_subnet([]) == "10.89.0.0/24"
    with pytest.raises(NetworkError, match="no free /24 subnet left in 10.89.0.0/16"):
        ipam.free_subnet(used)
