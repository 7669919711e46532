"""Which registries are insecure by default (docker's rule: loopback ones), and IPv6 hosts in
references."""

import pytest

from kago.storage import reference, registry


@pytest.mark.parametrize("host", ["127.0.0.1:5000", "127.3.2.1", "localhost:5000", "localhost",
                                  "[::1]:5000", "[::1]", "registry.localhost:443"])
def test_loopback_registries_are_insecure_by_default(host):
    assert registry.is_loopback(host)
    assert registry.insecure_for(host) is True
    assert registry.insecure_for(host, insecure=False) is False  # HTTPS insisted on


@pytest.mark.parametrize("host", ["registry-1.docker.io", "10.0.0.1:5000", "192.168.1.2",
                                  "[fe80::1]:5000", "localhost.example.com", "128.0.0.1"])
def test_other_registries_need_insecure_for_plain_http(host):
    assert not registry.is_loopback(host)
    assert registry.insecure_for(host) is False and registry.insecure_for(host, True) is True
    assert registry.Client(host, "x/y").scheme == "https"  # decided without a connection


def test_an_ipv6_registry_in_a_reference():
    host, repo, tag = reference.parse("[::1]:5000/team/app:1").remote()
    assert (host, repo, tag) == ("[::1]:5000", "team/app", "1")
