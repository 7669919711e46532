"""The resolver's name table: names of the containers on one network, lookups, upstreams."""

import pytest

from kago.network.dns import table

RECORD = {"name": "net", "subnet": "10.89.0.0/24", "gateway": "10.89.0.1"}
CID = "0123456789abcdef" * 4


def member(cid, ip, hostname=None, aliases=(), ipv6=None):
    return {"cid": cid, "ipv4": ip, "ipv6": ipv6, "hostname": hostname,
            "aliases": list(aliases), "network": "net"}


def test_names_hostname_aliases_short_and_full_id_lower_cased():
    assert table.member_names(member(CID, "10.89.0.2", "Web", ["DB", "db", "bad name"])) == \
        ["web", "db", CID[:12]]  # the 64-character id is longer than a DNS label


def test_lookup_is_case_insensitive_and_family_aware():
    t = table.build(RECORD, [member("c1", "10.89.0.2", "db", ipv6="fd00::2"),
                             member("c2", "10.89.0.3", "web")])
    assert table.lookup(t, "DB.", "4") == ["10.89.0.2"]
    assert table.lookup(t, "db", "6") == ["fd00::2"]
    assert table.lookup(t, "web", "6") == []           # exists, no IPv6
    assert table.lookup(t, "nothere", "4") is None
    assert t["ptr"] == {"10.89.0.2": "db", "10.89.0.3": "web"}
    assert t["listen"] == ["10.89.0.1", 53]


def test_a_shared_alias_answers_every_address():
    t = table.build(RECORD, [member("c1", "10.89.0.2", aliases=["api"]),
                             member("c2", "10.89.0.3", aliases=["api"])])
    assert table.lookup(t, "api", "4") == ["10.89.0.2", "10.89.0.3"]


@pytest.mark.parametrize("text,expected", [
    ("1.2.3.4", ("1.2.3.4", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("::1", ("::1", 53)), ("[::1]:5300", ("::1", 5300))])
def test_parse_server(text, expected):
    assert table.parse_server(text) == expected


@pytest.mark.parametrize("text", ["", "1.2.3.4:", "1.2.3.4:x", "1.2.3.4:70000"])
def test_parse_server_refuses(text):
    with pytest.raises(ValueError, match="dns upstream"):
        table.parse_server(text)


def test_upstreams_from_resolv_conf_without_ourselves(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("search example\nnameserver 10.89.0.1\nnameserver 192.0.2.53\n"
                    "nameserver 10.90.0.1\nnameserver fe80::1%eth0\n")
    t = table.build(RECORD, [], never=[("10.90.0.1", 53)])
    assert table.upstreams(t, str(conf)) == [("192.0.2.53", 53), ("fe80::1", 53)]
    given = table.build(RECORD, [], upstream=[("127.0.0.1", 5353), ("10.89.0.1", 53)])
    assert table.upstreams(given, str(conf)) == [("127.0.0.1", 5353)]


def test_write_and_load(tmp_path):
    t = table.build(RECORD, [member("c1", "10.89.0.2", "db")])
    table.write(str(tmp_path / "t.json"), t)
    assert table.load(str(tmp_path / "t.json")) == t
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]
