"""Attachment: serialisable both ways, and the names peers know a container by."""

from kago.network import Attachment, PortMapping


def test_round_trip_through_dict():
    att = Attachment("c1", "bridge", "kago", "kago-c1", "/run/netns/kago-c1", "eth0",
                     "10.89.0.2", None, "02:42:0a:59:00:02", "10.89.0.1", 24,
                     [PortMapping.parse("8080:80")], hostname="web", aliases=["w"])
    data = att.to_dict()
    assert data["ports"] == [{"host_port": 8080, "container_port": 80, "proto": "tcp",
                              "host_ip": ""}]
    assert Attachment.from_dict(data) == att
    assert Attachment.from_dict(data).ports == (PortMapping(8080, 80),)


def test_names():
    assert Attachment("c1", "bridge", hostname="web", aliases=("web", "w")).names == \
        ["web", "w", "c1"]
    assert Attachment("c2", "host").names == ["c2"]
