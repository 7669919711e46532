"""``kago demo``: kago's main job in one run, ten web containers from one definition file.

On a scratch manager root (a directory under /var/tmp with its own network, bridge, subnet, nft
table, netns and veth names, so a user's own containers are neither seen nor touched), it runs
the command line as a user would and shows what each command prints::

    kago import <rootfs of the embedded busybox> busybox
    kago up web10.py                       kago/examples/web10.py: 10 busybox httpd, one per
                                           port 8081-8090 on 127.0.0.1 (progress, then a table)
    GET http://127.0.0.1:8083/             the first line of one server's page
    kago stats --no-stream web-8081 ...    CPU, memory, pids and pressure (PSI) of the ten
    kago down -t 1 web10.py                then network rm and supervisor --stop

then checks that nothing of it is left on the host (containers, mounts, cgroups, netns, veths,
the nft table, processes) and removes the root. Ctrl-C at any point goes to the clean-up.
``run(out)`` is the same as a function (tests call it); it returns a ``Result``.
"""

import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

from kago.errors import KagoError
from kago.host import procfs

BASE = "/var/tmp"  # a disk filesystem on most hosts: idmapped layers, nothing copied
DEMO_RANGE = ipaddress.ip_network("10.231.0.0/16")  # kago's own default is 10.89.0.0/16
FIRST_PORT, COUNT, PAGE_PORT = 8081, 10, 8083
NETWORK = "kagodemo"
CHILD_GRACE = 20.0  # seconds a command interrupted by Ctrl-C gets to finish its own rollback


class DemoError(Exception):
    """A step of the demo failed; the message is one line naming it."""


@dataclass
class Scratch:
    """The names of one demo's manager root: all derived from a random 4-hex tag."""
    tag: str
    base: str = BASE
    subnet: str = ""

    @property
    def root(self):
        return os.path.join(self.base, f"kago-demo-{self.tag}")

    @property
    def table(self):
        return f"kago_demo_{self.tag}"

    @property
    def netns_prefix(self):
        return f"kago-demo-{self.tag}-"

    @property
    def veth_prefix(self):  # the bridge's name starts with it too
        return f"kd{self.tag}"

    @property
    def bridge(self):
        return f"kd{self.tag}b0"

    def settings(self):
        """ROOT/kago.json: the network settings that keep the demo apart (no outbound NAT)."""
        return {"network": {
            "nft_table": self.table, "netns_prefix": self.netns_prefix,
            "veth_prefix": self.veth_prefix, "default_network": NETWORK,
            "default_bridge": self.bridge, "default_subnet": self.subnet, "outbound": False}}


@dataclass
class Result:
    status: int = 0
    root: str = ""
    table: str = ""
    ids: list = field(default_factory=list)
    page: str = ""
    leftovers: list = field(default_factory=list)
    seconds: float = 0.0


def free_subnet(routes, within=DEMO_RANGE):
    """The first /24 of ``within`` that overlaps none of ``routes`` (ip_network objects)."""
    for candidate in within.subnets(new_prefix=24):
        if not any(candidate.overlaps(r) for r in routes):
            return candidate
    raise DemoError(f"no free /24 in {within}: the host routes all of it")


def host_routes():
    """The host's IPv4 destinations in every routing table, the default route left out."""
    text = subprocess.run(["ip", "-4", "-o", "route", "show", "table", "all"],
                          capture_output=True, text=True, check=False).stdout
    return parse_routes(text)


_ROUTE_TYPES = {"unicast", "local", "broadcast", "multicast", "anycast", "unreachable",
                "blackhole", "prohibit", "throw", "nat"}


def parse_routes(text):
    routes = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] in _ROUTE_TYPES:
            words = words[1:]
        if not words or words[0] == "default":
            continue
        try:
            routes.append(ipaddress.ip_network(words[0], strict=False))
        except ValueError:
            continue
    return routes


def kago_command():
    """How to run this kago's command line: the script beside the interpreter, else ``-m``."""
    beside = os.path.join(os.path.dirname(sys.executable), "kago")
    if os.access(beside, os.X_OK):
        return [beside]
    return [sys.executable, "-m", "kago.cli.main"]


def definition_path():
    from kago.examples import path
    return path("web10.py")


def web_demo():
    """``kago demo``'s entry: the exit status."""
    if os.geteuid() != 0:
        print("kago: demo: run it as root (it publishes ports on the host's 127.0.0.1 and "
              "sets CPU quotas; kago itself runs as a user, see docs/rootless.md)",
              file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)  # kill PID: the same clean-up as Ctrl-C
    try:
        return run(sys.stdout).status
    except (DemoError, OSError) as e:  # no scratch root could be made: nothing to clean
        print(f"kago: demo: {e}", file=sys.stderr)
        return 1


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(out, base=BASE):
    """The whole demo, printing to ``out``; returns a Result (status 0: all of it worked and
    nothing was left)."""
    started = time.monotonic()
    scratch = _make_scratch(base)
    result = Result(root=scratch.root, table=scratch.table)
    demo = _Demo(scratch, out, result)
    try:
        demo.show()
    except (DemoError, KagoError, OSError, subprocess.SubprocessError) as e:
        demo.say(f"kago: demo: {e}")
        result.status = 1
    except KeyboardInterrupt:
        demo.say("\ninterrupted: removing what the demo made")  # Ctrl-C or SIGTERM
        result.status = 130
    finally:
        # the clean-up runs to its end: a second Ctrl-C or SIGTERM is ignored meanwhile
        previous = {n: signal.signal(n, signal.SIG_IGN) for n in (signal.SIGINT, signal.SIGTERM)}
        try:
            result.leftovers = demo.clean()
        finally:
            for n, handler in previous.items():
                signal.signal(n, handler)
    result.seconds = time.monotonic() - started
    if result.leftovers:
        demo.say("left on the host: " + "; ".join(result.leftovers))
        result.status = result.status or 1
    else:
        demo.say(f"left on the host: nothing (containers, mounts, cgroups, netns, veths, "
                 f"nft table, processes, {scratch.root}) - {result.seconds:.1f} s in all")
    return result


def _make_scratch(base):
    for _ in range(8):
        scratch = Scratch(os.urandom(2).hex(), base)
        try:
            os.makedirs(scratch.root, mode=0o755)
        except FileExistsError:
            continue
        break
    else:
        raise DemoError(f"cannot make a fresh kago-demo-* directory in {base}")
    return scratch


class _Demo:
    def __init__(self, scratch, out, result):
        self.s = scratch
        self.out = out
        self.result = result
        self.env = dict(os.environ, KAGO_ROOT=scratch.root)
        self.env.pop("KAGO_RUNROOT", None)  # the volatile state goes to ROOT/run
        self.kago = kago_command()
        self.file = definition_path()
        self.names = [f"web-{p}" for p in range(FIRST_PORT, FIRST_PORT + COUNT)]

    def say(self, text):
        try:
            print(text, file=self.out, flush=True)
        except (BrokenPipeError, ValueError):  # a reader that went away (| head): still clean
            self.out = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process

    def say_nothing(self):
        """Flush what was said before a command writes to the same output."""
        try:
            self.out.flush()
        except (BrokenPipeError, ValueError):
            self.out = open(os.devnull, "w")  # noqa: SIM115

    # ------------------------------------------------------------------ the steps

    def show(self):
        import json

        from kago.testing import busybox

        self.s.subnet = str(free_subnet(host_routes()))
        with open(os.path.join(self.s.root, "kago.json"), "w") as f:
            json.dump(self.s.settings(), f)
        self.say(f"kago demo: {COUNT} web containers from one definition file, on a scratch "
                 f"manager root\n  KAGO_ROOT={self.s.root}  network {NETWORK} "
                 f"{self.s.subnet} (bridge {self.s.bridge}, nft table {self.s.table})\n"
                 f"  each: busybox httpd with its own PID and network namespaces, its own "
                 f"100-ID range at port*100,\n  a 20% CPU quota, its own layer over one image, "
                 f"published on 127.0.0.1:PORT")
        rootfs = busybox.cached_rootfs(os.path.join(self.s.root, "cache"))
        owned_by_root(rootfs)
        self.step("import", os.fspath(rootfs), "busybox",
                  shown=["import", "<rootfs of Debian's busybox-static>", "busybox"])
        try:
            self.step("up", self.file)
        finally:  # an interrupted or failed up may still have made some
            self.result.ids = self.ids()
        self.result.page = self.fetch(PAGE_PORT)
        self.step("stats", "--no-stream", *self.names)
        self.step("down", "-t", "1", self.file)

    def step(self, *args, shown=None):
        self.say("\n$ kago " + " ".join(shown or args))
        status = self.call(args)
        if status != 0:
            raise DemoError(f"kago {args[0]} exited with {status}")

    def call(self, args, quiet=False):
        """Run ``kago ARGS`` on the scratch root, its output to ours (or discarded)."""
        self.say_nothing()
        sink = subprocess.DEVNULL if quiet else None
        child = subprocess.Popen(self.kago + list(args), env=self.env, stdout=sink,
                                 stderr=sink if quiet else None)
        try:
            return child.wait()
        except KeyboardInterrupt:
            # a Ctrl-C at the terminal reached the child too: let it end (kago up rolls back)
            _end(child, CHILD_GRACE)
            raise

    def capture(self, *args):
        proc = subprocess.run(self.kago + list(args), env=self.env, capture_output=True,
                              text=True, timeout=60, check=False)
        return proc.stdout if proc.returncode == 0 else ""

    def ids(self):
        return self.capture("ps", "-a", "-q", "--no-trunc").split()

    def fetch(self, port, timeout=5.0):
        url = f"http://127.0.0.1:{port}/"
        self.say(f"\n# GET {url}  (its first line)")
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as answer:
                    first = answer.read().decode(errors="replace").splitlines()[:1]
                    line = first[0] if first else ""
                    self.say(line)
                    return line
            except OSError as e:
                if time.monotonic() > deadline:
                    raise DemoError(f"{url} did not answer: {e}") from None
                time.sleep(0.05)

    # ------------------------------------------------------------------ the end

    def clean(self):
        """Remove everything of the scratch root; return what could not be removed."""
        if not os.path.exists(os.path.join(self.s.root, "kago.json")):
            shutil.rmtree(self.s.root, ignore_errors=True)  # nothing was made with it
            return []
        ids = set(self.result.ids) | set(self.ids())
        if self.ids():  # interrupted or failed: down, then whatever down did not know
            self.call(["down", "-t", "1", self.file], quiet=True)
            rest = self.ids()
            if rest:
                self.call(["rm", "-f", *rest], quiet=True)
        self.call(["network", "rm", NETWORK], quiet=True)
        self.call(["system", "supervisor", "--stop"], quiet=True)
        left = _wait_for_nothing(lambda: leftovers(self.s, ids))
        if not any(item.startswith("mount ") for item in left):
            shutil.rmtree(self.s.root, ignore_errors=True)  # never through a mount
            if os.path.exists(self.s.root):
                left.append(f"directory {self.s.root}")
        return left


def owned_by_root(tree):
    """Give root every file of ``tree`` (this demo's own copy of the image) that another user
    owns: the embedded image's /home/user is 1000's, and a 100-ID range maps only 0-99. Where
    the kernel cannot idmap the filesystem (tmpfs before Linux 6.3: Debian 12's /run), kago
    shifts a copy of the layer instead, and an owner outside the range makes that fail."""
    for top, dirs, files in os.walk(tree):
        for name in [".", *dirs, *files]:
            path = os.path.join(top, name)
            st = os.lstat(path)
            if (st.st_uid, st.st_gid) != (0, 0):
                os.chown(path, 0, 0, follow_symlinks=False)


def _end(child, grace):
    """Wait ``grace`` seconds for ``child``, then SIGTERM it, then SIGKILL (bounded)."""
    for stop in (None, child.terminate, child.kill):
        if stop is not None:
            stop()
        try:
            child.wait(timeout=grace if stop is None else 5)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_for_nothing(check, timeout=5.0):
    """``check()`` until it finds nothing or ``timeout`` passes (a supervisor's exit, a
    cgroup's removal, happen just after the command that asked for them returned)."""
    deadline = time.monotonic() + timeout
    while True:
        left = check()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def leftovers(scratch, ids):
    """What of this demo is still on the host: containers' cgroups (``kago-ID`` in any
    hierarchy), mounts under its root, its netns, links (veths and bridge), its nft table and
    processes that name its root (the supervisor, a definition's agent)."""
    found = []
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f
                  if line.split()[4].startswith(scratch.root + "/")]
    if os.path.isdir("/run/netns"):
        found += [f"netns {n}" for n in sorted(os.listdir("/run/netns"))
                  if n.startswith(scratch.netns_prefix)]
    found += [f"link {n}" for n in sorted(os.listdir("/sys/class/net"))
              if n.startswith(scratch.veth_prefix)]
    if subprocess.run(["nft", "list", "table", "inet", scratch.table], capture_output=True,
                      check=False).returncode == 0:
        found.append(f"nft table {scratch.table}")
    hierarchies = [""] + sorted(os.listdir("/sys/fs/cgroup"))
    for cid in ids:
        found += [f"cgroup {os.path.join(h, 'kago-' + cid)}" for h in hierarchies
                  if os.path.isdir(os.path.join("/sys/fs/cgroup", h, f"kago-{cid}"))]
    found += [f"process {pid}" for pid in _processes_naming(scratch.root)]
    return found


def _processes_naming(root):
    me = os.getpid()
    pids = []
    for pid, words in procfs.processes():
        if pid == me:
            continue
        if any(w == root.encode() or w.startswith(root.encode() + b"/") for w in words):
            pids.append(pid)
    return pids
