"""kago demo's pure parts: its subnet, its names, its copy of the image."""

import ipaddress
import os

import pytest

from kago.cli.demo_web import DemoError, Scratch, free_subnet, owned_by_root, parse_routes

ROUTES = """\
default via 192.0.2.1 dev eth0
10.231.0.0/24 dev kago0 proto kernel scope link src 10.231.0.1
10.231.1.7 dev tun0 scope link
local 10.231.2.1 dev lo table local proto kernel scope host src 10.231.2.1
broadcast 127.255.255.255 dev lo table local proto kernel scope link src 127.0.0.1
"""


def test_routes_are_read_with_their_type_words_and_without_the_default():
    assert parse_routes(ROUTES) == [ipaddress.ip_network(n) for n in (
        "10.231.0.0/24", "10.231.1.7/32", "10.231.2.1/32", "127.255.255.255/32")]


def test_the_first_24_no_route_overlaps():
    assert str(free_subnet(parse_routes(ROUTES))) == "10.231.3.0/24"


def test_a_wider_route_covering_the_range_is_an_error_naming_it():
    with pytest.raises(DemoError, match=r"no free /24 in 10.231.0.0/16"):
        free_subnet([ipaddress.ip_network("10.0.0.0/8")])


def test_every_name_derives_from_the_tag_and_fits_the_kernel():
    s = Scratch("ab12", "/run", "10.231.3.0/24")
    net = s.settings()["network"]
    assert s.root == "/run/kago-demo-ab12"
    assert net == {"nft_table": "kago_demo_ab12", "netns_prefix": "kago-demo-ab12-",
                   "veth_prefix": "kdab12", "default_network": "kagodemo",
                   "default_bridge": "kdab12b0", "default_subnet": "10.231.3.0/24",
                   "outbound": False}
    assert len(net["veth_prefix"]) <= 7 and net["default_bridge"].startswith(net["veth_prefix"])


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_the_demo_image_copy_is_given_to_root(tmp_path):
    """A 100-ID range maps 0-99 only: the image's /home/user (1000) must not stay 1000's."""
    home = tmp_path / "home" / "user"
    home.mkdir(parents=True)
    (home / "f").write_text("x")
    os.symlink("f", home / "link")
    for p in (home, home / "f"):
        os.chown(p, 1000, 1000)
    os.chown(home / "link", 1000, 1000, follow_symlinks=False)
    owned_by_root(tmp_path)
    assert {(os.lstat(p).st_uid, os.lstat(p).st_gid)
            for p in (tmp_path, home, home / "f", home / "link")} == {(0, 0)}
