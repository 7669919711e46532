"""Test helpers for kago.network (imported by tests only; needs pytest).

Every host object a test makes carries the test's tag: netns ``kagotest-<tag>-*``, interfaces
``kt<tag>*``, nft table ``kagotest_<tag>``, so ``leftovers(tag)`` can tell exactly what one
test left behind, whatever other tests (or other engineers' suites) run at the same time.
"""

import os
import subprocess
import time
import uuid

import pytest

from kago.network import Networks
from kago.testing.subnets import free_octet


def new_tag():
    """Four hex digits: short enough for IFNAMSIZ (kt + tag + 9 hash characters = 15)."""
    return uuid.uuid4().hex[:4]


class NetEnv:
    """One test's Networks (its own state dir, nft table, prefixes) and the names it uses."""

    def __init__(self, state_dir, tag=None, **kwargs):
        self.tag = tag or new_tag()
        self.state_dir = state_dir
        self.table = kwargs.get("nft_table", f"kagotest_{self.tag}")
        self.octet = free_octet("10.252")
        settings = dict(nft_table=self.table, netns_prefix=f"kagotest-{self.tag}-",
                        veth_prefix=f"kt{self.tag}", default_network="kt",
                        default_bridge=self.bridge(0), default_subnet=self.subnet(0),
                        outbound=False, dns_upstream=[])
        settings.update(kwargs)
        self.nets = Networks(state_dir, **settings)

    def bridge(self, n):
        return f"kt{self.tag}b{n}"

    def subnet(self, n):
        """10.(252+n).<octet>.0/24, the octet one that 10.252.<octet>.0/24 overlaps no route
        with when the env is made: tests running at once rarely meet (create refuses an
        overlap with a clear error if they do)."""
        return f"10.{252 + n}.{self.octet}.0/24"

    def netns_name(self, cid):
        return f"kagotest-{self.tag}-{cid}"

    def cleanup(self):
        """Detaches every container and removes every network this env made."""
        for att in self.nets.attachments():
            self.nets.detach(att.cid)
        for record in self.nets.list():
            self.nets.remove(record["name"])

    def leftovers(self):
        from kago.network.dns import control
        return leftovers(self.tag, self.table) + [
            f"dns resolver process {pid} ({net})"
            for pid, net in control.processes(self.state_dir).items()]


def run(argv, timeout=10, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          **kwargs)


def leftovers(tag, table):
    """Host objects with this tag: netns files, netns mounts, interfaces, the nft table."""
    found = []
    netns_dir = "/run/netns"
    prefix = f"kagotest-{tag}-"
    if os.path.isdir(netns_dir):
        found += [f"netns {n}" for n in os.listdir(netns_dir) if n.startswith(prefix)]
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if f"/{prefix}" in line.split()[4]]
    links = run(["ip", "-o", "link", "show"]).stdout
    found += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
              if line.split(":")[1].strip().split("@")[0].startswith(f"kt{tag}")]
    if run(["nft", "list", "table", "inet", table]).returncode == 0:
        found.append(f"nft table inet {table}")
    return found


def links_in(netns_name):
    """Interface names inside a named netns, seen with ``ip netns exec`` (iproute2)."""
    out = run(["ip", "netns", "exec", netns_name, "ip", "-o", "link", "show"]).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


@pytest.fixture(name="netenv")
def netenv_fixture(tmp_path):
    """A NetEnv in a fresh state dir; afterwards detaches/removes everything and asserts the
    host has no netns, mount, interface or nft table of this test left."""
    env = NetEnv(str(tmp_path / "netstate"))
    yield env
    env.cleanup()
    left = env.leftovers()
    assert not left, f"test left network objects behind: {left}"


def wait_port(connect, timeout=5.0):
    """Retries ``connect()`` (bounded) until it stops raising OSError; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return connect()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
