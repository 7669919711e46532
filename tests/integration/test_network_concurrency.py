"""A hundred containers attached by a hundred concurrent processes (not threads: the IPAM lock
is an flock between processes, as when a hundred ``kago run`` start at once)."""

import ipaddress
import json
import os
import signal
import time

from kago.network import Networks
from kago.network.testing import links_in, netenv_fixture  # noqa: F401 (fixture)

COUNT = 100


def in_processes(count, work, out_dir, timeout=120.0):
    """Forks ``count`` children that wait on one pipe, then run ``work(i)`` together; each
    writes its result (JSON) or its error to out_dir/<i>. Returns the list of results."""
    go_r, go_w = os.pipe()
    pids = []
    for i in range(count):
        pid = os.fork()
        if pid == 0:                      # child: wait for the start, work, report, leave
            status = 1
            try:
                os.close(go_w)
                os.read(go_r, 1)
                result = {"ok": work(i)}
                status = 0
            except BaseException as err:  # noqa: BLE001 (reported to the parent)
                result = {"error": f"{type(err).__name__}: {err}"}
            finally:
                with open(os.path.join(out_dir, str(i)), "w") as f:
                    json.dump(result, f)
                os._exit(status)
        pids.append(pid)
    os.close(go_r)
    os.close(go_w)                        # EOF: every child starts now
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        pid, _ = os.waitpid(-1, os.WNOHANG)
        pending.discard(pid) if pid else time.sleep(0.01)
    for pid in pending:                  # bounded: whatever hangs is killed by its pid
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert not pending, f"{len(pending)} children did not finish in {timeout}s"
    results = []
    for i in range(count):
        with open(os.path.join(out_dir, str(i))) as f:
            results.append(json.load(f))
    return results


def test_hundred_concurrent_attaches_get_distinct_addresses(netenv, tmp_path):
    nets = netenv.nets
    settings = dict(nft_table=nets.nft_table, netns_prefix=nets.netns_prefix,
                    veth_prefix=nets.veth_prefix, default_network="kt",
                    default_bridge=netenv.bridge(0), default_subnet=netenv.subnet(0),
                    outbound=False)
    out = tmp_path / "out"
    out.mkdir()

    def attach(i):   # each process its own Networks, as each ``kago run`` would have
        mine = Networks(netenv.state_dir, **settings)
        return mine.attach(f"c{i}", ports=[f"{19000 + i}:80"]).to_dict()

    results = in_processes(COUNT, attach, str(out))
    errors = [r["error"] for r in results if "error" in r]
    assert not errors, errors[:3]
    atts = [r["ok"] for r in results]
    ips = {a["ipv4"] for a in atts}
    macs = {a["mac"] for a in atts}
    assert len(ips) == COUNT and len(macs) == COUNT
    subnet = ipaddress.ip_network(netenv.subnet(0))
    assert all(ipaddress.ip_address(ip) in subnet for ip in ips)
    assert atts[0]["gateway"] not in ips
    # every container's netns really has its address and MAC on eth0
    for a in atts[::10]:
        assert links_in(a["netns_name"]) == ["eth0", "lo"]
    assert len(nets.attachments("kt")) == COUNT

    def detach(i):
        Networks(netenv.state_dir, **settings).detach(f"c{i}")

    results = in_processes(COUNT, detach, str(out))
    assert not [r for r in results if "error" in r]
    assert nets.attachments() == []
    with open(os.path.join(netenv.state_dir, "leases", "kt.json")) as f:
        leases = json.load(f)
    assert leases["ipv4"] == {} and leases["mac"] == {}
    left = [x for x in netenv.leftovers() if not x.startswith(("link kt", "nft table"))]
    assert not left, left
