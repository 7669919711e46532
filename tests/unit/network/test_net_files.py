"""/etc/hosts, /etc/resolv.conf, /etc/hostname for a container, and /etc/netns/<name>/."""

import os
from pathlib import Path

from kago.network import Attachment, files


def att(**kw):
    base = dict(cid="c1", mode="bridge", network="n", ipv4="10.0.0.2", hostname="web",
                aliases=("www",))
    base.update(kw)
    return Attachment(**base)


def test_hosts_own_names_then_peers_grouped_by_address():
    peers = [("web", "10.0.0.2"), ("db", "10.0.0.3"), ("c3", "10.0.0.3"), ("db", "10.0.0.3")]
    text = files.hosts_text("web", att(), peers)
    assert text.splitlines() == ["127.0.0.1\tlocalhost",
                                 "::1\tlocalhost ip6-localhost ip6-loopback",
                                 "10.0.0.2\tweb www c1",
                                 "10.0.0.3\tdb c3"]


def test_hosts_with_ipv6_and_without_an_address():
    text = files.hosts_text("web", att(ipv6="fd00::2"))
    assert "fd00::2\tweb www c1\n" in text
    assert files.hosts_text("box").endswith("127.0.1.1\tbox\n")
    assert files.hosts_text(None).count("\n") == 2


def test_resolv_conf_drops_loopback_servers_in_a_netns(tmp_path):
    host = tmp_path / "resolv.conf"
    host.write_text("search lan\nnameserver 127.0.0.53\nnameserver 192.0.2.1\noptions edns0\n")
    text = files.resolv_text(att(), host_file=str(host), upstream_file=str(tmp_path / "none"))
    assert text == "search lan\nnameserver 192.0.2.1\noptions edns0\n"
    # host mode shares the host's loopback: kept verbatim
    assert files.resolv_text(att(mode="host"), host_file=str(host)) == host.read_text()


def test_resolv_conf_uses_resolveds_upstream_when_only_the_stub_is_there(tmp_path):
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\n")
    upstream = tmp_path / "upstream"
    upstream.write_text("nameserver 198.51.100.7\n")
    assert files.resolv_text(att(), host_file=str(host),
                             upstream_file=str(upstream)) == "nameserver 198.51.100.7\n"


def test_given_resolv_conf_wins():
    assert files.resolv_text(att(), "nameserver 192.0.2.9") == "nameserver 192.0.2.9\n"
    assert files.resolv_text(att(), "") == ""


def test_write_etc_files_rewrites_in_place(tmp_path):
    written = files.write_etc_files(str(tmp_path / "etc"), "web", att())
    assert set(written) == {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname"}
    inode = os.stat(written["/etc/hosts"]).st_ino
    files.write_etc_files(str(tmp_path / "etc"), "web", att(), [("db", "10.0.0.3")])
    assert os.stat(written["/etc/hosts"]).st_ino == inode
    assert "10.0.0.3\tdb" in Path(written["/etc/hosts"]).read_text()
    assert Path(written["/etc/hostname"]).read_text() == "web\n"


def test_netns_etc_mounts(tmp_path):
    base = tmp_path / "kago-c1"
    base.mkdir()
    (base / "resolv.conf").write_text("nameserver 192.0.2.1\n")
    (base / "hosts").write_text("")
    assert files.netns_etc_mounts("kago-c1", str(tmp_path)) == [
        (str(base / "hosts"), "/etc/hosts"), (str(base / "resolv.conf"), "/etc/resolv.conf")]
    assert files.netns_etc_mounts("kago-none", str(tmp_path)) == []


def test_resolv_conf_names_the_networks_resolver_and_keeps_search_and_options(tmp_path):
    host = tmp_path / "resolv.conf"
    host.write_text("# comment\nsearch example.com\nnameserver 127.0.0.53\n"
                    "nameserver 192.0.2.1\noptions edns0 trust-ad")
    assert files.resolv_text(att(), host_file=str(host), nameservers=["10.89.0.1"]) == \
        "# comment\nsearch example.com\noptions edns0 trust-ad\nnameserver 10.89.0.1\n"
    assert files.resolv_text(att(), "nameserver 192.0.2.9", host_file=str(host),
                             nameservers=["10.89.0.1"]) == "nameserver 192.0.2.9\n"
