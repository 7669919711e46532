"""A container's own /etc lines: --add-host in /etc/hosts (kept when peers rewrite it), and
--dns/--dns-search/--dns-option replacing resolv.conf's lines of their kind."""

from kago.network import Attachment, files


def att(**kw):
    base = dict(cid="c1", mode="bridge", network="n", ipv4="10.0.0.2", gateway="10.0.0.1",
                hostname="web", extra_hosts=[("db", "10.9.9.9"), ("gw", "host-gateway")])
    base.update(kw)
    return Attachment(**base)


def test_extra_hosts_follow_the_peers_and_host_gateway_is_the_gateway():
    text = files.hosts_text("web", att(), [("other", "10.0.0.3")])
    assert text.splitlines()[-3:] == ["10.0.0.3\tother", "10.9.9.9\tdb", "10.0.0.1\tgw"]
    assert files.hosts_text("web", att(gateway=None)).endswith("127.0.0.1\tgw\n")


def test_the_attachment_keeps_its_lines():
    a = att(dns={"servers": ["1.1.1.1"], "search": [], "options": []})
    again = Attachment.from_dict(a.to_dict())
    assert again.extra_hosts == (("db", "10.9.9.9"), ("gw", "host-gateway"))
    assert again.dns == {"servers": ["1.1.1.1"], "search": [], "options": []}


def test_dns_lines_replace_their_kind_only():
    host = "nameserver 10.0.0.1\nsearch lan\noptions edns0\n"
    assert files.with_dns(host, None) == host
    assert files.with_dns(host, {"servers": ["9.9.9.9", "1.1.1.1"]}) == (
        "search lan\noptions edns0\nnameserver 9.9.9.9\nnameserver 1.1.1.1\n")
    assert files.with_dns(host, {"search": ["a.example", "b.example"],
                                 "options": ["ndots:2"]}) == (
        "nameserver 10.0.0.1\nsearch a.example b.example\noptions ndots:2\n")


def test_dns_servers_take_the_place_of_the_networks_resolver(tmp_path):
    a = att(dns={"servers": ["9.9.9.9"], "search": [], "options": []})
    files.write_etc_files(str(tmp_path), "web", a, nameservers=["10.0.0.1"])
    text = (tmp_path / "resolv.conf").read_text()
    assert "nameserver 9.9.9.9\n" in text and "10.0.0.1" not in text
    files.write_etc_files(str(tmp_path), "web", att(dns={"search": ["x.example"]}),
                          nameservers=["10.0.0.1"])
    text = (tmp_path / "resolv.conf").read_text()
    assert "nameserver 10.0.0.1\n" in text and "search x.example\n" in text
