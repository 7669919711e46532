"""nft text: the base ruleset is idempotent, elements per family, deletes that cannot fail on
an absent element, and nft's errors turned into one line."""

import pytest

from kago.network import NetworkError, PortMapping, nft


def test_base_ruleset_replaces_rules_in_one_transaction():
    text = nft.base_ruleset("kago")
    lines = text.splitlines()
    assert lines[0] == "add table inet kago"
    for chain, rules in nft.RULES.items():
        flush = lines.index(f"flush chain inet kago {chain}")
        assert lines[flush + 1:flush + 1 + len(rules)] == [f"add rule inet kago {chain} {r}"
                                                           for r in rules]
    assert not [line for line in lines if line.startswith(("delete", "insert"))]
    assert "add map inet kago dnat4_any { type inet_proto . inet_service : ipv4_addr" in text


def test_port_elements_per_family():
    ports = [PortMapping.parse(p) for p in ("8080:80", "127.0.0.1:53:53/udp", "[fd00::1]:9:9")]
    assert nft.port_elements(ports, "10.0.0.2", "fd00::2") == [
        ("dnat4_any", "tcp . 8080 : 10.0.0.2 . 80"),
        ("dnat6_any", "tcp . 8080 : fd00::2 . 80"),
        ("dnat4_ip", "127.0.0.1 . udp . 53 : 10.0.0.2 . 53"),
        ("dnat6_ip", "fd00::1 . tcp . 9 : fd00::2 . 9"),
    ]
    assert nft.port_elements(ports[:2], "10.0.0.2") == [
        ("dnat4_any", "tcp . 8080 : 10.0.0.2 . 80"),
        ("dnat4_ip", "127.0.0.1 . udp . 53 : 10.0.0.2 . 53"),
    ]
    with pytest.raises(NetworkError, match="port \\[fd00::1\\]:9:9/tcp: the container has no "
                                           "IPv6 address"):
        nft.port_elements(ports, "10.0.0.2")


def test_network_elements():
    record = {"bridge": "kago0", "subnet": "10.89.0.0/24", "ipv6_subnet": "fd00::/64",
              "outbound": False}
    assert nft.network_elements(record) == [("bridges", '"kago0"'),
                                            ("subnets4", "10.89.0.0/24"),
                                            ("subnets6", "fd00::/64")]
    record["outbound"] = True
    assert ("outbound4", "10.89.0.0/24") in nft.network_elements(record)
    assert ("outbound6", "fd00::/64") in nft.network_elements(record)


def test_delete_adds_first_so_an_absent_element_is_no_error():
    text = nft.delete_elements("t", [("dnat4_any", "tcp . 1 : 10.0.0.2 . 1")])
    assert text.splitlines() == ["add element inet t dnat4_any { tcp . 1 : 10.0.0.2 . 1 }",
                                 "delete element inet t dnat4_any { tcp . 1 : 10.0.0.2 . 1 }"]
    assert nft.delete_table("t") == "add table inet t\ndelete table inet t\n"
    assert nft.create_elements("t", [("bridges", '"b"')]) == \
        'create element inet t bridges { "b" }\n'


@pytest.mark.parametrize("name", ["kago", "kagotest_ab12", "K9"])
def test_table_names(name):
    assert nft.check_table(name) == name


@pytest.mark.parametrize("name", ["", "9kago", "ka go", "kago;flush ruleset", "x" * 33, None])
def test_bad_table_names(name):
    with pytest.raises(NetworkError, match="nft table"):
        nft.check_table(name)


def test_first_error_is_one_line():
    stderr = ("/dev/stdin:3:45-54: Error: Could not process rule: File exists\n"
              "add element inet kago dnat4_any { tcp . 8080 : 10.1.2.4 . 80 }\n"
              "                                            ^^^^^^^^^^\n")
    assert nft._first_error(stderr) == ("could not process rule: file exists: add element inet "
                                        "kago dnat4_any { tcp . 8080 : 10.1.2.4 . 80 }")
    assert nft._first_error("") == "failed"


def test_apply_nothing_runs_nothing(monkeypatch):
    monkeypatch.setattr(nft, "NFT", "/nonexistent/nft")
    nft.apply("")
    with pytest.raises(NetworkError, match="nft not found: apt-get install nftables"):
        nft.apply("add table inet x\n")
