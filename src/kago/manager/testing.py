"""Test helpers for the manager (imported by tests and benchmarks; the fixture needs pytest).

``KagoEnv`` is one isolated manager: its own ROOT on the session tmpfs, its own settings
(nft table ``kmt_<tag>``, netns ``kmt-<tag>-*``, veths ``km<tag>*``, network ``kmt<tag>`` on
a random 10.250.x.0/24, no outbound NAT), a short supervisor idle time, and ``kago(...)`` to
run the command line against it. ``cleanup()`` removes every container and network and stops
the supervisor; ``leftovers()`` lists what is still on the host (mounts under ROOT, netns,
links, nft table, cgroups of its containers, live processes of its supervisor), so a test
can assert that a failure left nothing behind; ``held(cid)`` what one container still holds
(an ended one: nothing).

Container names in tests start with ``kmt-``.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

from kago.testing.subnets import free_octet

KAGO = os.path.join(os.path.dirname(sys.executable), "kago")
# IDs of the containers the KagoEnvs of this process made (a test run's session-end leak check
# looks at these, not at every kago cgroup on the host)
MADE_IDS = set()


class KagoEnv:
    def __init__(self, base, tag=None, runtime=None, image=True, rootfs_cache=None):
        self.tag = tag or uuid.uuid4().hex[:4]
        self.root = os.path.join(base, f"kmt-{self.tag}")
        os.makedirs(self.root)
        self.table = f"kmt_{self.tag}"
        self.settings = {"network": {
            "nft_table": self.table, "netns_prefix": f"kmt-{self.tag}-",
            "veth_prefix": f"km{self.tag}", "default_network": f"kmt{self.tag}",
            "default_bridge": f"km{self.tag}b0",
            "default_subnet": f"10.250.{free_octet('10.250')}.0/24", "outbound": False,
            "dns_upstream": []}}  # unknown names: SERVFAIL, never the host's resolvers
        if runtime:
            self.settings["runtime"] = runtime
        with open(os.path.join(self.root, "kago.json"), "w") as f:
            json.dump(self.settings, f)
        self.env = dict(os.environ, KAGO_ROOT=self.root, KAGO_SUPERVISOR_IDLE="3")
        self.env.pop("KAGO_RUNROOT", None)
        self.rootfs = rootfs_cache
        self.pids_seen = set()
        if image and rootfs_cache:
            self.kago("import", rootfs_cache, "busybox", check=True)

    # --- running the command line
    def kago(self, *args, check=False, timeout=60, input=None):
        proc = subprocess.run([KAGO] + [str(a) for a in args], capture_output=True, text=True,
                              env=self.env, timeout=timeout, input=input, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kago {' '.join(map(str, args))} exited {proc.returncode}:"
                                 f"\n{proc.stdout}\n{proc.stderr}")
        self._note_supervisor()
        return proc

    def manager(self):
        from kago.manager.engine import Manager
        return Manager(self.root)

    def inspect(self, ref):
        return json.loads(self.kago("inspect", ref, check=True).stdout)[0]

    def supervisor_pid(self):
        from kago.manager.paths import Paths
        from kago.manager.supervisor import running_pid
        return running_pid(Paths(self.root))

    def _note_supervisor(self):
        pid = self.supervisor_pid()
        if pid:
            self.pids_seen.add(pid)

    # --- the end of a test
    def cleanup(self):
        """Remove every container and network of this root; stop its supervisor."""
        mgr = self.manager()
        for record in mgr.records.all():
            try:
                mgr.remove(record["id"], force=True)
            except Exception as e:  # noqa: BLE001 - go on; leftovers() will say what stayed
                sys.stderr.write(f"cleanup: {record['name']}: {e}\n")
        if os.path.isdir(mgr.paths.network()):
            for net in mgr.nets.list():
                mgr.nets.remove(net["name"])
        self.stop_supervisor()
        if os.path.isdir(mgr.paths.storage()):
            mgr.store.close()

    def stop_supervisor(self):
        from kago.manager import supervisor
        from kago.manager.paths import Paths
        conn = supervisor.connect(Paths(self.root), spawn=False)
        if conn is not None:
            try:
                conn.request("quit", timeout=5)
            except (OSError, ValueError) as e:  # it may be on its way out already
                sys.stderr.write(f"stop_supervisor: {e}\n")
            conn.close()
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in self.pids_seen) and time.monotonic() < deadline:
            time.sleep(0.02)
        for pid in self.pids_seen:
            if _alive(pid):
                os.kill(pid, 9)

    def leftovers(self, ids=()):
        found = []
        with open("/proc/self/mountinfo") as f:
            found += [f"mount {line.split()[4]}" for line in f
                      if line.split()[4].startswith(self.root + "/")
                      and "/storage/containers/" in line.split()[4]]
        if os.path.isdir("/run/netns"):
            found += [f"netns {n}" for n in os.listdir("/run/netns")
                      if n.startswith(f"kmt-{self.tag}-")]
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True,
                               text=True, check=False).stdout
        found += [f"link {ln.split(':')[1].strip()}" for ln in links.splitlines()
                  if ln.split(":")[1].strip().startswith(f"km{self.tag}")]
        if subprocess.run(["nft", "list", "table", "inet", self.table],
                          capture_output=True, check=False).returncode == 0:
            found.append(f"nft table {self.table}")
        for cid in ids:
            if os.path.isdir(f"/sys/fs/cgroup/kago-{cid}"):  # a pure cgroup v2 host's
                found.append(f"cgroup kago-{cid}")
            for h in os.listdir("/sys/fs/cgroup"):
                if os.path.isdir(f"/sys/fs/cgroup/{h}/kago-{cid}"):
                    found.append(f"cgroup {h}/kago-{cid}")
        found += [f"supervisor process {p}" for p in self.pids_seen if _alive(p)]
        from kago.network.dns import control as dns_control
        state_dir = os.path.join(self.root, "network")
        found += [f"dns resolver process {pid} ({net})"
                  for pid, net in dns_control.processes(state_dir).items()]
        if os.path.isdir(dns_control.dns_dir(state_dir)):
            found += [f"dns file {n}" for n in os.listdir(dns_control.dns_dir(state_dir))]
        return found

    def held(self, cid):
        """What container ``cid`` still holds on the host: its veth, netns, attachment
        record, IP leases, published ports and mounts (an ended container holds none)."""
        from kago.network import ipam, state
        mgr = self.manager()
        nets = mgr.nets
        found = []
        veth = nets.veth_name(cid)
        if os.path.exists(f"/sys/class/net/{veth}"):
            found.append(f"link {veth}")
        netns = os.path.join(nets.netns_dir, f"{nets.netns_prefix}{cid}")
        if os.path.exists(netns):
            found.append(f"netns {netns}")
        if nets.attachment(cid) is not None:
            found.append("attachment record")
        found += [f"attachment on {a.network}" for a in nets.extras(cid)]  # network connect
        names = nets.state.network_names() if os.path.isdir(
            os.path.join(mgr.paths.network(), "networks")) else []
        for name in names:
            record = nets.get(name)
            if any(h == cid or h.startswith(cid + "+")
                   for h in ipam.Leases(nets.state, record).holders()):
                found.append(f"lease on {name}")
        if any(e.get("cid") == cid for e in state.read_json(nets.state.ports(), [])):
            found.append("published ports")
        with open("/proc/self/mountinfo") as f:
            found += [f"mount {line.split()[4]}" for line in f if cid in line.split()[4]]
        return found

    def destroy(self):
        ids = [r["id"] for r in self.manager().records.all()]
        MADE_IDS.update(ids)
        self.cleanup()
        left = self.leftovers(ids)
        shutil.rmtree(self.root, ignore_errors=True)
        return left


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_http(port, path="/", timeout=5.0, host="127.0.0.1"):
    """GET http://host:port/path until it answers (bounded); the body, or None."""
    import urllib.request
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=1) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)


try:
    import pytest
except ImportError:  # benchmarks import KagoEnv without pytest installed
    pytest = None

if pytest is not None:
    @pytest.fixture(name="kmt")
    def kmt_fixture(workdir, rootfs_cache):
        """A KagoEnv with busybox imported; afterwards everything removed and checked."""
        env = KagoEnv(workdir, rootfs_cache=rootfs_cache)
        yield env
        left = env.destroy()
        assert not left, f"test left things behind: {left}"
