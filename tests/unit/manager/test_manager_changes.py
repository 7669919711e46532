"""``kago port``'s lines from a record: the attachment's ports (what was published), else the
definition's; every local address shows as docker shows it ([::] only where the container has
an IPv6 address to forward to)."""

from kago.manager.changes import ports
from kago.manager.definition import Definition, Port, to_json


def test_ports_from_the_attachment():
    record = {"network": {"ipv6": "fd00::2", "ports": [
        {"host_port": 32768, "container_port": 80, "proto": "tcp", "host_ip": ""},
        {"host_port": 5353, "container_port": 53, "proto": "udp", "host_ip": "127.0.0.1"},
        {"host_port": 8443, "container_port": 443, "proto": "tcp", "host_ip": "::1"}]}}
    assert ports(record) == [("53/udp", "127.0.0.1:5353"), ("80/tcp", "0.0.0.0:32768"),
                             ("80/tcp", "[::]:32768"), ("443/tcp", "[::1]:8443")]


def test_ports_of_a_released_container_come_from_its_definition():
    d = Definition(image="x", ports=(Port(8080, 80),))
    assert ports({"network": None, "definition": to_json(d)}) == [("80/tcp", "0.0.0.0:8080")]
    assert ports({"definition": to_json(Definition(image="x"))}) == []
