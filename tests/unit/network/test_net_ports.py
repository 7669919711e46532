"""PortMapping: the ``-p`` grammar, its errors, and which mappings clash."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kago.network import NetworkError, PortMapping


@pytest.mark.parametrize("text, expected", [
    ("8080:80", (8080, 80, "tcp", "")),
    ("8080:80/udp", (8080, 80, "udp", "")),
    ("8080:80/tcp", (8080, 80, "tcp", "")),
    ("127.0.0.1:8080:80", (8080, 80, "tcp", "127.0.0.1")),
    ("0.0.0.0:53:53/udp", (53, 53, "udp", "")),
    ("[::1]:8080:80", (8080, 80, "tcp", "::1")),
    ("[fd00::0001]:1:65535/udp", (1, 65535, "udp", "fd00::1")),
    (":8080:80", (8080, 80, "tcp", "")),
])
def test_parse(text, expected):
    p = PortMapping.parse(text)
    assert (p.host_port, p.container_port, p.proto, p.host_ip) == expected


@pytest.mark.parametrize("text, message", [
    ("80", "expected \\[HOSTIP:\\]HOSTPORT:CONTAINERPORT"),
    ("1:2:3:4", "expected"),
    ("[::1:80:80", "expected"),
    ("a:80", "host port 'a' is not a port"),
    ("80:0", "container port '0' is not a port"),
    ("65536:80", "host port '65536'"),
    ("8080:80/sctp", "protocol 'sctp' is not tcp or udp"),
    ("example.com:8080:80", "host ip 'example.com' is not an IP address"),
    (None, "expected"),
])
def test_parse_errors_name_the_text(text, message):
    with pytest.raises(NetworkError, match=message) as err:
        PortMapping.parse(text)
    assert repr(text) in str(err.value)


def test_constructor_checks_too():
    with pytest.raises(NetworkError, match="host port True"):
        PortMapping(True, 80)
    assert PortMapping("8080", "80").host_port == 8080


@pytest.mark.parametrize("a, b, clash", [
    ("8080:80", "8080:81", True),
    ("8080:80", "127.0.0.1:8080:80", True),           # every address includes 127.0.0.1
    ("127.0.0.1:8080:80", "127.0.0.2:8080:80", False),
    ("8080:80", "8080:80/udp", False),
    ("8080:80", "8081:80", False),
])
def test_conflicts(a, b, clash):
    pa, pb = PortMapping.parse(a), PortMapping.parse(b)
    assert pa.conflicts(pb) is clash and pb.conflicts(pa) is clash


def test_family():
    assert PortMapping.parse("8080:80").family is None
    assert PortMapping.parse("10.0.0.1:8080:80").family == 4
    assert PortMapping.parse("[::1]:8080:80").family == 6


@given(host=st.integers(1, 65535), ctr=st.integers(1, 65535), proto=st.sampled_from(["tcp", "udp"]),
       ip=st.sampled_from(["", "127.0.0.1", "::1", "fd00::5"]))
def test_str_and_dict_round_trip(host, ctr, proto, ip):
    p = PortMapping(host, ctr, proto, ip)
    assert PortMapping.parse(str(p)) == p
    assert PortMapping.from_dict(p.to_dict()) == p
    assert hash(PortMapping.from_dict(p.to_dict())) == hash(p)
