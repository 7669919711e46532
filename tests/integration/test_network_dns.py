"""The network's resolver through the ``kago`` command: busybox ``nslookup`` in one container
finds another by name and alias on the same network, not on another network; unknown names
go to a fake upstream on 127.0.0.1; a killed resolver comes back with the next container; and
nothing (process, listener, state) is left once the containers are gone.
"""

import json
import os
import re
import signal
import socket

import pytest

from conftest import wait_for
from kago.manager.testing import kmt_fixture  # noqa: F401 (fixture)
from kago.network.dns import codec, control
from kago.network.dns.testing import FakeUpstream


@pytest.fixture(name="upstream")
def upstream_fixture(kmt):
    fake = FakeUpstream({"example.org": "192.0.2.77"})
    kmt.settings["network"]["dns_upstream"] = [fake.server]
    with open(os.path.join(kmt.root, "kago.json"), "w") as f:
        json.dump(kmt.settings, f)
    yield fake
    fake.close()


def state_dir(kmt):
    return os.path.join(kmt.root, "network")


def network(kmt):
    return kmt.settings["network"]["default_network"]


def nslookup(kmt, name, *net):
    return kmt.kago("run", "--rm", *net, "busybox", "nslookup", name, timeout=60)


def answered(out):
    """Addresses nslookup printed for the name (after the server's own lines)."""
    body = out.split("\n\n", 1)[1] if "\n\n" in out else ""
    return re.findall(r"Address:\s*([0-9.]+)\s*$", body, re.M)


def ip_of(kmt, name):
    return kmt.inspect(name)["NetworkSettings"]["IPAddress"]


def listening(address):
    with open("/proc/net/udp") as f:
        rows = f.read().splitlines()[1:]
    want = socket.inet_aton(address)[::-1].hex().upper() + ":0035"
    return any(row.split()[1] == want for row in rows)


def test_names_aliases_forwarding_and_isolation(kmt, upstream):
    kmt.kago("run", "-d", "--name", "kmt-db", "--network-alias", "database", "busybox",
             "sleep", "300", check=True)
    db = ip_of(kmt, "kmt-db")
    gateway = kmt.manager().nets.get(network(kmt))["gateway"]
    conf = kmt.kago("run", "--rm", "busybox", "cat", "/etc/resolv.conf", check=True).stdout
    assert f"nameserver {gateway}" in conf.splitlines()
    assert [ln for ln in conf.splitlines() if ln.startswith("nameserver")] == \
        [f"nameserver {gateway}"]

    for name in ("kmt-db", "KMT-DB", "database"):
        out = nslookup(kmt, name)
        assert answered(out.stdout) == [db], (name, out.stdout, out.stderr)
    assert upstream.asked == []

    out = nslookup(kmt, "example.org")
    assert answered(out.stdout) == ["192.0.2.77"], out.stdout
    assert "example.org" in upstream.asked
    out = nslookup(kmt, "nosuch.example")
    assert answered(out.stdout) == [] and "NXDOMAIN" in out.stdout + out.stderr

    subnet = f"10.251.{int(kmt.tag, 16) % 250}.0/24"
    kmt.kago("network", "create", "--subnet", subnet, "--bridge", f"km{kmt.tag}o",
             f"kmt{kmt.tag}o", check=True)
    other = ("--network", f"kmt{kmt.tag}o")
    kmt.kago("run", "-d", "--name", "kmt-other", *other, "busybox", "sleep", "300", check=True)
    assert answered(nslookup(kmt, "kmt-other").stdout) == []     # not on this network
    assert "kmt-other" in upstream.asked                          # so it went upstream
    assert answered(nslookup(kmt, "kmt-db", *other).stdout) == []
    assert answered(nslookup(kmt, "kmt-other", *other).stdout) == [ip_of(kmt, "kmt-other")]
    assert len(kmt.manager().nets.resolvers()) == 2

    kmt.kago("rm", "-f", "kmt-other", check=True)
    kmt.kago("network", "rm", f"kmt{kmt.tag}o", check=True)
    assert list(kmt.manager().nets.resolvers()) == [network(kmt)]


def test_a_killed_resolver_comes_back_with_the_next_container(kmt, upstream):
    kmt.kago("run", "-d", "--name", "kmt-db", "busybox", "sleep", "300", check=True)
    first = control.read_record(state_dir(kmt), network(kmt))
    assert control.alive(first)
    doc = json.loads(kmt.kago("network", "inspect", network(kmt), check=True).stdout)[0]
    assert doc["dns"]["pid"] == first["pid"] and doc["dns"]["listen"][1] == 53
    os.kill(first["pid"], signal.SIGKILL)
    assert wait_for(lambda: not control.alive(first), 5, 0.02)
    out = nslookup(kmt, "kmt-db")                                 # its attach restarts it
    assert answered(out.stdout) == [ip_of(kmt, "kmt-db")], out.stdout
    second = control.read_record(state_dir(kmt), network(kmt))
    assert control.alive(second) and second["pid"] != first["pid"]


def test_nothing_is_left_after_the_containers(kmt, upstream):
    for name in ("kmt-a", "kmt-b"):
        kmt.kago("run", "-d", "--name", name, "busybox", "sleep", "300", check=True)
    record = control.read_record(state_dir(kmt), network(kmt))
    gateway = kmt.manager().nets.get(network(kmt))["gateway"]
    assert control.alive(record) and listening(gateway)
    kmt.kago("rm", "-f", "kmt-a", check=True)
    assert control.alive(record)                                  # kmt-b still there
    kmt.kago("rm", "-f", "kmt-b", check=True)
    assert not control.alive(record) and not listening(gateway)
    assert control.processes(state_dir(kmt)) == {}
    assert os.listdir(control.dns_dir(state_dir(kmt))) == []


def test_a_stopped_container_releases_the_resolver(kmt, upstream):
    kmt.kago("run", "-d", "--name", "kmt-a", "busybox", "sleep", "300", check=True)
    record = control.read_record(state_dir(kmt), network(kmt))
    kmt.kago("stop", "-t", "1", "kmt-a", check=True)
    assert wait_for(lambda: not control.alive(record), 10, 0.05)
    kmt.kago("start", "kmt-a", check=True)
    assert control.alive(control.read_record(state_dir(kmt), network(kmt)))


def test_prune_stops_a_resolver_no_record_names(kmt, upstream):
    kmt.kago("run", "-d", "--name", "kmt-a", "busybox", "sleep", "300", check=True)
    record = control.read_record(state_dir(kmt), network(kmt))
    os.kill(record["pid"], signal.SIGSTOP)            # it would notice and exit by itself
    try:
        os.unlink(control.proc_path(state_dir(kmt), network(kmt)))
        out = kmt.kago("system", "prune", "-f", check=True).stdout
        assert f"stray dns resolver of network {network(kmt)} (pid {record['pid']})" in out, out
        assert not control.alive(record)
    finally:
        if control.alive(record):
            os.kill(record["pid"], signal.SIGKILL)
    out = nslookup(kmt, "kmt-a")                      # the next attach starts a new one
    assert answered(out.stdout) == [ip_of(kmt, "kmt-a")], out.stdout


def test_a_host_network_container_keeps_the_hosts_resolv_conf(kmt, upstream):
    conf = kmt.kago("run", "--rm", "--network", "host", "busybox", "cat",
                    "/etc/resolv.conf", check=True).stdout
    with open("/etc/resolv.conf") as f:
        assert conf == f.read()
    assert control.processes(state_dir(kmt)) == {}


def test_a_query_straight_at_the_resolver_from_the_host_is_refused(kmt, upstream):
    kmt.kago("run", "-d", "--name", "kmt-a", "busybox", "sleep", "300", check=True)
    gateway = kmt.manager().nets.get(network(kmt))["gateway"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.bind(("127.0.0.1", 0))                      # not from the network's subnet
        s.sendto(codec.make_query("kmt-a"), (gateway, 53))
        reply = s.recv(512)
    assert reply[3] & 0xF == codec.REFUSED


def test_a_taken_port_53_fails_the_run_clearly_and_leaves_nothing(kmt, upstream):
    net = f"kmt{kmt.tag}p"
    subnet = f"10.251.{int(kmt.tag, 16) % 250}.0/24"
    kmt.kago("network", "create", "--subnet", subnet, "--bridge", f"km{kmt.tag}p", net,
             check=True)
    gateway = kmt.manager().nets.get(net)["gateway"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((gateway, 53))
        proc = kmt.kago("run", "-d", "--name", "kmt-a", "--network", net, "busybox", "sleep",
                        "300")
        assert proc.returncode != 0
        assert f"dns resolver of network {net}: listen on {gateway}:53: address already " \
            "in use" in proc.stderr, proc.stderr
    assert kmt.manager().nets.attachments() == []
    assert control.processes(state_dir(kmt)) == {}
    kmt.kago("rm", "-f", "kmt-a")
    kmt.kago("run", "-d", "--name", "kmt-a", "--network", net, "busybox", "sleep", "300",
             check=True)
    assert answered(nslookup(kmt, "kmt-a", "--network", net).stdout) == [ip_of(kmt, "kmt-a")]
    kmt.kago("rm", "-f", "kmt-a", check=True)
    kmt.kago("network", "rm", net, check=True)


def test_without_dns_the_hosts_nameservers_and_no_resolver(kmt):
    kmt.settings["network"]["dns"] = False
    with open(os.path.join(kmt.root, "kago.json"), "w") as f:
        json.dump(kmt.settings, f)
    kmt.kago("run", "-d", "--name", "kmt-a", "busybox", "sleep", "300", check=True)
    conf = kmt.kago("exec", "kmt-a", "cat", "/etc/resolv.conf", check=True).stdout
    gateway = kmt.manager().nets.get(network(kmt))["gateway"]
    assert f"nameserver {gateway}" not in conf
    assert control.processes(state_dir(kmt)) == {}
    assert not os.path.exists(control.dns_dir(state_dir(kmt))) or \
        os.listdir(control.dns_dir(state_dir(kmt))) == []


DEFINITION = """
from kago.manager.define import Container
Container("kmt-api", image="busybox", command=["sleep", "300"], stop_signal="SIGKILL")
Container("kmt-web", image="busybox", command=["sleep", "300"], stop_signal="SIGKILL")
"""


def test_up_names_the_definitions_containers_and_down_leaves_no_resolver(kmt, upstream,
                                                                        tmp_path):
    path = tmp_path / "def.py"
    path.write_text(DEFINITION)
    kmt.kago("up", str(path), check=True, timeout=120)
    out = kmt.kago("exec", "kmt-web", "nslookup", "kmt-api", check=True).stdout
    assert answered(out) == [ip_of(kmt, "kmt-api")], out
    assert control.processes(state_dir(kmt))
    kmt.kago("down", "-t", "1", str(path), check=True, timeout=120)
    assert control.processes(state_dir(kmt)) == {}
    assert os.listdir(control.dns_dir(state_dir(kmt))) == []
