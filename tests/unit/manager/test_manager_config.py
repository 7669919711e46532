"""Flag parsing and docker's rules, as pure functions (no root, no kernel)."""

import pytest

from kago.manager import config as C
from kago.manager.errors import BadValue


@pytest.mark.parametrize("text,expected", [
    ("512", 512), ("512b", 512), ("64k", 64 << 10), ("64K", 64 << 10), ("512m", 512 << 20),
    ("1.5g", int(1.5 * (1 << 30))), ("2gb", 2 << 30), (4096, 4096),
])
def test_sizes(text, expected):
    assert C.parse_size(text, "--memory") == expected


@pytest.mark.parametrize("text", ["", "lots", "12x", "-5m", "m", "1.2.3m"])
def test_bad_sizes_name_the_flag(text):
    with pytest.raises(BadValue, match="--memory"):
        C.parse_size(text, "--memory")


def test_cpus_become_a_quota_over_a_100ms_period():
    assert C.parse_cpus("0.3") == (30000, 100000)
    assert C.parse_cpus("2") == (200000, 100000)
    for bad in ("0", "-1", "x", "2000"):
        with pytest.raises(BadValue):
            C.parse_cpus(bad)


def test_env_takes_bare_names_from_the_caller_and_later_values_win():
    assert C.parse_env(["A=1", "B", "C"], environ={"B": "2"}) == ["A=1", "B=2"]
    assert C.merge_env(["PATH=/bin", "A=1"], ["A=2", "Z=9"]) == ["PATH=/bin", "A=2", "Z=9"]
    with pytest.raises(BadValue):
        C.parse_env(["=x"])


def test_volumes():
    assert C.parse_volume("/src:/dst:ro") == {"type": "bind", "source": "/src",
                                              "destination": "/dst", "readonly": True,
                                              "options": []}
    assert C.parse_volume("data:/var/lib/data")["type"] == "volume"
    for bad in ("/src", "/src:rel", "./x:/y", "/a:/b:rw:extra", "/a:/b:bogus"):
        with pytest.raises(BadValue):
            C.parse_volume(bad)


def test_restart_policies():
    assert C.parse_restart("no") == ("no", 0)
    assert C.parse_restart("on-failure:3") == ("on-failure", 3)
    assert C.parse_restart("always") == ("always", 0)
    for bad in ("sometimes", "always:3", "on-failure:x", "on-failure:-1"):
        with pytest.raises(BadValue):
            C.parse_restart(bad)


def test_ports_are_checked_by_kago_network_parser():
    assert C.parse_port("8080:80") == "8080:80/tcp"
    assert C.parse_port("127.0.0.1:8080:80/udp") == "127.0.0.1:8080:80/udp"
    with pytest.raises(BadValue, match="-p"):
        C.parse_port("eighty")


def test_capabilities_follow_dockers_add_then_drop_rule():
    caps = C.capabilities([], [])
    assert caps == sorted(C.DEFAULT_CAPS)
    assert "CAP_NET_ADMIN" in C.capabilities(["net_admin"], [])
    assert "CAP_CHOWN" not in C.capabilities([], ["CHOWN"])
    assert C.capabilities(["NET_BIND_SERVICE"], ["ALL"]) == ["CAP_NET_BIND_SERVICE"]
    assert len(C.capabilities(["ALL"], [])) > len(C.DEFAULT_CAPS)
    with pytest.raises(BadValue, match="unknown capability"):
        C.capabilities(["CAP_FLY"], [])


def test_id_maps():
    assert C.parse_id_map("0:100000:65536", "--uidmap") == [[0, 100000, 65536]]
    assert C.parse_id_map((0, 5, 10), "ids") == [[0, 5, 10]]
    assert C.parse_id_map([(0, 5, 10), (10, 100, 1)], "ids") == [[0, 5, 10], [10, 100, 1]]
    for bad in ("0:1", (0, 1, 0), (0, -1, 5), (0, 1 << 32, 1)):
        with pytest.raises(BadValue):
            C.parse_id_map(bad, "ids")


def test_validate_checks_across_fields():
    with pytest.raises(BadValue, match="image"):
        C.validate(C.new_config())
    with pytest.raises(BadValue, match="published"):
        C.validate(C.new_config(image="x", network="host", ports=["1:1/tcp"]))
    with pytest.raises(BadValue, match="--rm"):
        C.validate(C.new_config(image="x", auto_remove=True, restart="always"))
    with pytest.raises(BadValue, match="namespace"):
        C.validate(C.new_config(image="x", namespaces={"bogus": "new"}))
    assert C.validate(C.new_config(image="x"))["network"] == "bridge"
