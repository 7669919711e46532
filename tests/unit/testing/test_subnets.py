"""kago.testing.subnets: a test's /24 picked clear of the host's routes."""

import random

from kago.testing import subnets

HEADER = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"


def route_file(tmp_path, *rows):
    """rows: (iface, destination hex, mask hex) as /proc/net/route writes them (little-endian)."""
    path = tmp_path / "route"
    path.write_text(HEADER + "".join(f"{i}\t{d}\t00000000\t0001\t0\t0\t0\t{m}\t0\t0\t0\n"
                                     for i, d, m in rows))
    return str(path)


def test_routes_reads_little_endian_and_leaves_out_the_default(tmp_path):
    path = route_file(tmp_path, ("eth0", "00000000", "00000000"),   # default
                      ("eth0", "000200C0", "00FFFFFF"),             # 192.0.2.0/24
                      ("kmb0", "0088FA0A", "00FFFFFF"))             # 10.250.136.0/24
    assert [str(n) for n in subnets.routes(path)] == ["192.0.2.0/24", "10.250.136.0/24"]


def test_free_octet_avoids_a_taken_24_and_a_wider_route(tmp_path):
    # 10.250.136.0/24 and 10.250.0.0/17 (0..127) are taken: only 128..249 but 136 are free
    path = route_file(tmp_path, ("kmb0", "0088FA0A", "00FFFFFF"),
                      ("big0", "0000FA0A", "0080FFFF"))
    picks = {subnets.free_octet("10.250", path=path, rng=random.Random(seed))
             for seed in range(200)}
    assert picks and all(128 <= p < 250 and p != 136 for p in picks)


def test_no_route_file_means_any_octet(tmp_path):
    assert 1 <= subnets.free_octet("10.250", path=str(tmp_path / "none")) < 250
