"""Shared fixtures: real bundles on a session tmpfs, a kago-oci runner, and a leak check.

Integration tests run the installed ``kago-oci`` (next to this interpreter) as a subprocess,
exactly as containerd or podman would, with a private ``--root`` per session. After every test
that uses ``oci``, ``leak_check`` asserts the test left no mount, cgroup, state directory or
process of its containers behind: a failed create must leave nothing, and so must a test.

Every leak check looks only at what this run made: the container IDs it handed out (``RUN_IDS``,
``note_ids``), its own ``--root`` and tmpfs, the manager's and network's per-test tags. So the
suite passes beside a user's running kago containers (another ``--root``), podman or
containerd, and beside another run of itself.
"""

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
KAGO_OCI = os.path.join(os.path.dirname(sys.executable), "kago-oci")
IS_ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root and the real kernel")


def throwaway_user(subids):
    """For a fixture: ``yield from throwaway_user(...)`` gives a ThrowawayUser and removes it
    afterwards, failures included, asserting nothing of it is left on the host."""
    from kago.testing.throwaway_user import ThrowawayUser
    u = ThrowawayUser.create(subids=subids)
    try:
        yield u
    finally:
        left = u.remove()
        assert not left, f"left on the host: {left}"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/integration/" in str(item.fspath) or "/security/" in str(item.fspath):
            item.add_marker(pytest.mark.root)
            if not IS_ROOT:
                item.add_marker(needs_root)


@pytest.fixture(scope="session")
def workdir():
    """A tmpfs for bundles and state: an ext4 without a journal made rootfs copies 50x slower."""
    path = tempfile.mkdtemp(prefix="kago-test-")
    mounted = False
    if IS_ROOT:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755,size=2g", "kago-test", path],
                       check=True)
        mounted = True
    try:
        yield path
    finally:
        if mounted:
            subprocess.run(["umount", "-l", path], check=False)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs_cache(workdir):
    from kago.testing import busybox
    return str(busybox.cached_rootfs(os.path.join(workdir, "cache")))


@pytest.fixture(scope="session")
def state_root(workdir):
    return os.path.join(workdir, "state")


class Bundle:
    """A busybox bundle: ``.path``, ``.config`` (a dict; call ``.write()`` after editing)."""

    def __init__(self, path):
        self.path = path
        with open(os.path.join(path, "config.json")) as f:
            self.config = json.load(f)

    @property
    def rootfs(self):
        return os.path.join(self.path, "rootfs")

    def write(self):
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)
        return self

    def edit(self, fn):
        fn(self.config)
        return self.write()


@pytest.fixture
def make_bundle(workdir, rootfs_cache):
    """make_bundle(args, mutate=None) -> Bundle, a fresh copy of the busybox rootfs."""
    from kago.testing import busybox
    made = []

    def factory(args=("sh", "-c", "true"), mutate=None, **overrides):
        path = os.path.join(workdir, "bundles", uuid.uuid4().hex[:12])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        busybox.build_bundle(path, args=list(args), mutate=mutate,
                             cache_dir=os.path.dirname(rootfs_cache), **overrides)
        made.append(path)
        return Bundle(path)

    yield factory
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


# Container IDs (and cgroup names) this run handed out: the session check looks at these only.
RUN_IDS = set()


def note_ids(*ids):
    """Record container IDs or cgroup names a test made some other way than ``Runner``."""
    RUN_IDS.update(ids)


class Runner:
    """Runs kago-oci with the session's --root; remembers container IDs to clean up."""

    def __init__(self, root):
        self.root = root
        self.ids = []

    def __call__(self, *args, timeout=30, check=False, input=None, env=None, root=True,
                 **kw):
        argv = [KAGO_OCI] + (["--root", self.root] if root else []) + [str(a) for a in args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              input=input, env=env, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv} exited {proc.returncode}: {proc.stderr}")
        return proc

    def new_id(self, prefix="t"):
        cid = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.ids.append(cid)
        RUN_IDS.add(cid)
        return cid

    def state(self, cid):
        proc = self(["state", cid][0], cid, check=True)
        return json.loads(proc.stdout)

    def cleanup(self):
        for cid in self.ids:
            self("delete", "--force", cid, timeout=15)


@pytest.fixture
def own_ledger(tmp_path_factory, monkeypatch):
    """The cgroup parents a test's fake trees make are noted in a ledger of its own, not the
    host's (and not inside the fake tree, which the tests list)."""
    from kago.linux.cgroups import ledger
    root = tmp_path_factory.mktemp("ledger")
    monkeypatch.setattr(ledger, "ROOT", str(root))
    return root


@pytest.fixture
def oci(state_root):
    runner = Runner(state_root)
    yield runner
    runner.cleanup()
    leaks = find_leaks(runner.ids, state_root)
    assert not leaks, f"test left things behind: {leaks}"


def find_leaks(ids, state_root):
    """Mounts, cgroups, state dirs and processes that belong to the given container IDs."""
    leaks = []
    if not ids:
        return leaks
    mounts = open("/proc/self/mountinfo").read()
    for cid in ids:
        if os.path.exists(os.path.join(state_root, cid)):
            leaks.append(f"state dir of {cid}")
        for top in ("/sys/fs/cgroup",):
            for dirpath, dirnames, _ in os.walk(top):
                if os.path.basename(dirpath) in (cid, f"kago-{cid}"):
                    leaks.append(f"cgroup {dirpath}")
                if dirpath.count("/") > 6:
                    dirnames[:] = []
        if cid in mounts:
            leaks.append(f"mount naming {cid}")
    return leaks


def wait_for(predicate, timeout=5.0, interval=0.01):
    """Poll ``predicate`` until true (bounded); return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):  # gone, or reaped between open and read
        return False


def _kago_cgroup_dirs():
    """kago's cgroups at the top of every hierarchy: the default kago-<id>, or a kago parent."""
    top = "/sys/fs/cgroup"
    found = []
    for h in os.listdir(top):
        hierarchy = os.path.join(top, h)
        if os.path.isdir(hierarchy) and not os.path.islink(hierarchy):
            if h == "kago" or h.startswith("kago-"):  # a pure v2 host: top is the hierarchy
                found.append(hierarchy)
            found += [os.path.join(hierarchy, d) for d in os.listdir(hierarchy)
                      if d == "kago" or d.startswith("kago-")]
    found += [os.path.join(d, c) for d in found if os.path.basename(d) == "kago"
              for c in _listdir(d)]
    return sorted(d for d in found if os.path.isdir(d))


def _listdir(d):
    try:
        return os.listdir(d)
    except OSError:
        return []


def ours(dirs, ids):
    """The cgroup dirs named for one of ``ids`` (as ``ID`` or ``kago-ID``): this run's."""
    names = set(ids) | {f"kago-{i}" for i in ids}
    return sorted(d for d in dirs if os.path.basename(d) in names)


def run_ids():
    """Every ID this run made: kago-oci's (Runner, note_ids) and the manager fixture's."""
    ids = set(RUN_IDS)
    testing = sys.modules.get("kago.manager.testing")
    ids |= set(getattr(testing, "MADE_IDS", ()))
    return ids


@pytest.fixture(scope="session", autouse=True)
def host_left_as_found():
    """At the end of the run, no cgroup of the run's own containers is left in any hierarchy.

    Only what appeared during the run and is named for one of its IDs counts: a user's kago
    containers (another ``--root``), podman's and containerd's cgroups are not ours to judge.
    """
    before = set(_kago_cgroup_dirs()) if IS_ROOT else set()
    yield
    if IS_ROOT:
        left = ours(set(_kago_cgroup_dirs()) - before, run_ids())
        assert not left, f"the test run left kago cgroups behind: {left}"


RUNTIME_DEFAULT_ROOT = "/run/kago"
# what the run leaves in kago-oci's default state root when a client (podman passes no --root)
# or a network test (the host-wide registry of ports and ip_forward) used it: caches and locks,
# no container's state
_CACHE_ONLY = {"@seccomp", "host"}


@pytest.fixture(scope="session", autouse=True)
def runtime_default_root_left_as_found():
    """kago-oci's default state root (/run/kago), made by this run, goes with it when it holds
    only the seccomp cache and the host-wide registries (their locks and empty tables): a
    container's state left there is a leak, and stays to be seen."""
    existed = os.path.exists(RUNTIME_DEFAULT_ROOT)
    yield
    if existed or not IS_ROOT or not os.path.isdir(RUNTIME_DEFAULT_ROOT):
        return
    if set(os.listdir(RUNTIME_DEFAULT_ROOT)) <= _CACHE_ONLY:
        shutil.rmtree(RUNTIME_DEFAULT_ROOT, ignore_errors=True)


# what the clients the tests drive make outside their private roots, by fixed paths of their
# own: podman's netavark run directory (hard-coded for root, made even for --network none) and
# CRIU's kernel-facts cache (root's is in /run for a CRIU built as Debian's is; its temporary
# file stays where /run is not a tmpfs, or when a criu is killed between creating and renaming
# it, and then blocks every later cache write; the CRIU ./dev builds keeps it in .build/criu/run)
_CLIENT_FILES = ["/run/criu.kdat", "/run/criu.kdat.tmp"]
_CLIENT_DIRS = ["/run/containers/networks", "/run/containers"]  # removed only when empty


@pytest.fixture(scope="session", autouse=True)
def client_paths_left_as_found():
    """podman's and CRIU's fixed paths, made by this run, go with it (nothing a user's own
    podman or criu made before the run is touched; a directory only while empty)."""
    existed = {p for p in _CLIENT_FILES + _CLIENT_DIRS if os.path.lexists(p)}
    yield
    if not IS_ROOT:
        return
    for path in _CLIENT_FILES:
        if path not in existed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    for path in _CLIENT_DIRS:
        if path not in existed:
            with contextlib.suppress(FileNotFoundError, OSError):
                os.rmdir(path)


def pytest_terminal_summary(terminalreporter):
    """The OCI runtime-tools totals at the end of the run (tests/conformance/runtime_tools.py
    keeps them), when its tests ran. Here, not in a tests/conformance/conftest.py: a second
    module named conftest would shadow this one for ``from conftest import ...``."""
    runtime_tools = sys.modules.get("runtime_tools")
    totals = getattr(runtime_tools, "TOTALS", None)
    if not totals or not totals["programs"]:
        return
    write = terminalreporter.write_line
    write("")
    subset = f" of {totals['of']}" if totals["programs"] < totals["of"] else ""
    if totals["selected"]:
        subset += f" (KAGO_RUNTIME_TOOLS_PROGRAMS={totals['selected']})"
    write(f"OCI runtime-tools, {totals['programs']}{subset} validation programs, "
          f"{totals['seconds']:.0f} s of runs:")
    for runtime, c in totals["runtimes"].items():
        write(f"  {runtime:9} passed {c['pass'] + c['skip']:5} (ok lines, {c['skip']} of them "
              f"skips)  failed {c['fail']:3} (not ok)  programs that did not run to their "
              f"plan: {c['incomplete']}  ({c['seconds']:.0f} s)")
    write(f"  assertions runc passes and kago-oci does not: {totals['regressions']}")
    if totals["second_run"]:
        write(f"  passed under kago-oci only on a second run: {', '.join(totals['second_run'])}")
    if totals["unstable"]:
        write("  not held against kago-oci, as runc or crun did not pass them again: "
              + "; ".join(totals["unstable"]))
    if "crun" in totals["runtimes"]:
        write(f"  assertions crun passes and kago-oci does not: {totals['behind_crun']} "
              "(each a failure)")
    write(f"  per-assertion results: {totals['records']} (regressions.txt beside it)")
