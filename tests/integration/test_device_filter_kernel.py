"""The v2 device filter on the real kernel: programs attached to a cgroup of this host's
cgroup2 tree decide what its processes may open and mknod.

Each test works in its own cgroup "kago-test-bpf-<random>" directly under the cgroup2 mount and
removes it afterwards (its programs go with it). The probes run in a child process moved into
that cgroup; the test process itself stays where it was.
"""

import errno
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from conftest import KAGO_OCI, wait_for

from kago.errors import CgroupError
from kago.linux.cgroups import V2Manager, devices_v2
from kago.linux.cgroups.device_filter import compile_filter

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root for bpf(2) and cgroups")]

NULL = "allow c 1:3 rwm"  # /dev/null
ZERO = "allow c 1:5 rwm"  # /dev/zero

PROBE = r"""
import errno, json, os, sys
with open(sys.argv[1] + "/cgroup.procs", "w") as f:
    f.write("0")
def attempt(fn):
    try:
        fn()
        return 0
    except OSError as e:
        return e.errno
def opened(path, flags=os.O_RDONLY):
    return lambda: os.close(os.open(path, flags))
node = sys.argv[2] + "/node"
def mknod(major, minor):
    def make():
        os.mknod(node, 0o600 | 0o020000, os.makedev(major, minor))
        os.unlink(node)
    return make
print(json.dumps({
    "null": attempt(opened("/dev/null", os.O_RDWR)), "zero": attempt(opened("/dev/zero")),
    "full": attempt(opened("/dev/full")), "mknod_null": attempt(mknod(1, 3)),
    "mknod_zero": attempt(mknod(1, 5))}))
"""


def _unified_root():
    """The cgroup2 mount: /sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on v2."""
    for path in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(path + "/cgroup.controllers"):
            return path
    return None


@pytest.fixture
def cgroup(tmp_path):
    root = _unified_root()
    if root is None:
        pytest.skip("no cgroup2 mount")
    d = f"{root}/kago-test-bpf-{uuid.uuid4().hex[:12]}"
    os.mkdir(d)
    try:
        yield d
    finally:
        for pid in open(d + "/cgroup.procs").read().split():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass
        for _ in range(200):
            try:
                os.rmdir(d)
                break
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                time.sleep(0.01)
        assert not os.path.exists(d)


def probe(d, tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, d, str(tmp_path)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_a_filter_allows_its_devices_and_denies_the_rest(cgroup, tmp_path):
    assert probe(cgroup, tmp_path) == {"null": 0, "zero": 0, "full": 0, "mknod_null": 0,
                                       "mknod_zero": 0}  # no filter yet
    assert devices_v2.set_filter(cgroup, "deny a\n" + NULL)
    assert probe(cgroup, tmp_path) == {"null": 0, "zero": errno.EPERM, "full": errno.EPERM,
                                       "mknod_null": 0, "mknod_zero": errno.EPERM}
    assert len(devices_v2.attached(cgroup)) == 1


def test_access_subsets_and_wildcards(cgroup, tmp_path):
    devices_v2.set_filter(cgroup, "deny a\nallow c *:* m\nallow c 1:3 r\nallow c 1:5 rw")
    assert probe(cgroup, tmp_path) == {"null": errno.EPERM,  # opened O_RDWR: w not allowed
                                       "zero": 0, "full": errno.EPERM, "mknod_null": 0,
                                       "mknod_zero": 0}


def test_allow_all_and_deny_exceptions(cgroup, tmp_path):
    devices_v2.set_filter(cgroup, "allow a\ndeny c 1:5 rwm")
    assert probe(cgroup, tmp_path) == {"null": 0, "zero": errno.EPERM, "full": 0,
                                       "mknod_null": 0, "mknod_zero": errno.EPERM}


def test_replacing_swaps_the_rules_and_leaves_one_program(cgroup, tmp_path):
    devices_v2.set_filter(cgroup, "deny a\n" + NULL)
    [old] = devices_v2.attached(cgroup)
    devices_v2.set_filter(cgroup, "deny a\n" + ZERO)
    [new] = devices_v2.attached(cgroup)
    assert new != old
    got = probe(cgroup, tmp_path)
    assert (got["null"], got["zero"]) == (errno.EPERM, 0)


@pytest.mark.parametrize("replace", [True, False], ids=["BPF_F_REPLACE", "attach-then-detach"])
def test_the_cgroup_is_never_without_a_filter_while_rules_are_swapped(cgroup, tmp_path,
                                                                      monkeypatch, replace):
    """A child keeps opening /dev/full, which both rule sets deny, while the filter is replaced
    100 times: an open that succeeds would be a moment with no filter at all."""
    from kago.kernel import bpf
    monkeypatch.setattr(bpf, "replace_supported", lambda: replace)
    devices_v2.set_filter(cgroup, "deny a\n" + NULL)
    loop = subprocess.Popen([sys.executable, "-c", r"""
import os, sys
with open(sys.argv[1] + "/cgroup.procs", "w") as f:
    f.write("0")
print("in", flush=True)
opened = tries = 0
while sys.stdin.readline().strip() == "go":
    for _ in range(200):
        tries += 1
        try:
            os.close(os.open("/dev/full", os.O_RDONLY))
            opened += 1
        except PermissionError:
            pass
    print("ok", flush=True)
print(opened, tries, flush=True)
""", cgroup], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert loop.stdout.readline() == "in\n"
        for i in range(100):
            loop.stdin.write("go\n")
            loop.stdin.flush()
            devices_v2.set_filter(cgroup, "deny a\n" + (ZERO if i % 2 == 0 else NULL))
            assert loop.stdout.readline() == "ok\n"
            assert len(devices_v2.attached(cgroup)) == 1
        loop.stdin.write("stop\n")
        loop.stdin.flush()
        opened, tries = map(int, loop.stdout.readline().split())
        assert (opened, tries) == (0, 20000)
    finally:
        loop.kill()
        loop.wait(timeout=10)


def test_several_old_programs_are_all_replaced(cgroup, tmp_path):
    from kago.kernel import bpf
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for text in ("allow a", "deny a\n" + ZERO):  # two filters from someone else
            prog = bpf.prog_load(compile_filter(text), "Apache")
            bpf.prog_attach(fd, prog)
            os.close(prog)
    finally:
        os.close(fd)
    assert len(devices_v2.attached(cgroup)) == 2
    devices_v2.set_filter(cgroup, "deny a\n" + NULL)
    assert len(devices_v2.attached(cgroup)) == 1
    got = probe(cgroup, tmp_path)
    assert (got["null"], got["zero"]) == (0, errno.EPERM)


def test_detach_leaves_no_program(cgroup, tmp_path):
    devices_v2.set_filter(cgroup, "deny a\n" + NULL)
    devices_v2.detach_all(cgroup)
    assert devices_v2.attached(cgroup) == []
    assert probe(cgroup, tmp_path)["zero"] == 0


def test_manager_apply_on_a_v2_directory_attaches_the_filter(cgroup, tmp_path):
    """The v2 code path of Manager.apply (plan, check, write) with the real kernel: the rules
    of a podman-like spec; update leaves them as they are, as runc update does."""
    sub = cgroup + "/ctr"
    m = V2Manager("/" + os.path.relpath(sub, os.path.dirname(cgroup)), {"unified": sub})
    m.create()
    try:
        writes = m.apply({"devices": [{"allow": False, "access": "rwm"},
                                      {"allow": True, "type": "c", "major": 1, "minor": 3,
                                       "access": "rwm"},
                                      {"allow": True, "type": "c", "access": "m"}]})
        assert [w[1] for w in writes] == ["<eBPF device filter>"]
        [prog] = devices_v2.attached(sub)
        m.update({"devices": [{"allow": True, "access": "rwm"}]})
        assert devices_v2.attached(sub) == [prog]
        got = probe(sub, tmp_path)
        assert (got["null"], got["zero"], got["mknod_zero"]) == (0, errno.EPERM, 0)
    finally:
        m.destroy()


def test_a_program_the_verifier_refuses_is_reported_on_one_line():
    from kago.errors import KernelError
    from kago.kernel import bpf
    from kago.linux.cgroups import bpf_asm as A
    reads_past_the_context = A.assemble([A.load_word(2, 1, 64), A.mov_imm32(0, 0), A.exit_()])
    with pytest.raises(KernelError) as info:
        bpf.prog_load(reads_past_the_context, "Apache")
    message = str(info.value)
    assert message.startswith("bpf(BPF_PROG_LOAD) (3 instructions; verifier: ")
    assert "invalid bpf_context access off=64" in message
    assert "\n" not in message and "processed" not in message
    assert info.value.errno == errno.EACCES


def test_a_missing_cgroup_is_a_cgroup_error_naming_it(cgroup):
    root = os.path.dirname(cgroup)
    d = f"{root}/kago-test-bpf-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(CgroupError, match=f"cgroup {d}: cannot open: no such file"):
        devices_v2.set_filter(d, "deny a")


# --- through kago-oci, with the host seen as pure cgroup v2 -----------------------------------

# kago-oci with its cgroup layout narrowed to this host's cgroup2 tree: what a pure v2 host
# looks like to it (no v1 hierarchy to put the device rules in, so they become the filter).
V2_LAUNCHER = r"""
import sys
from kago.linux import cgroups
from kago.runtime import container
container.LAYOUT = cgroups.Layout([], cgroups.detect().unified)
from kago.cli.oci import main
sys.exit(main())
"""

IN_CONTAINER = ("head -c1 /dev/zero >/dev/null && echo zero-ok; "
                "mknod /tmp/mem c 1 1 && echo mknod-ok; "
                "head -c1 /tmp/mem >/dev/null 2>/tmp/err; echo rc=$?; cat /tmp/err")


def test_kago_oci_on_v2_runs_a_spec_with_device_rules(oci, make_bundle, tmp_path):
    """The default spec's deny-all plus runc's implied rules, as an eBPF filter on the
    container's cgroup2 directory: /dev/zero opens, mknod is allowed for any node, but the
    /dev/mem made with it cannot be opened. Then delete removes the cgroup with its filter.
    On a hybrid host kago-oci's layout is narrowed to the cgroup2 tree (V2_LAUNCHER)."""
    root = _unified_root()
    if root is None:
        pytest.skip("no cgroup2 mount")

    def mutate(spec):
        assert spec["linux"]["resources"]["devices"] == [{"allow": False, "access": "rwm"}]
        for kind in ("bounding", "effective", "permitted"):
            spec["process"]["capabilities"][kind].append("CAP_MKNOD")
        spec["root"]["readonly"] = False

    bundle = make_bundle(["sh", "-c", IN_CONTAINER], mutate=mutate)
    if root == "/sys/fs/cgroup":  # pure v2: kago-oci as it is
        kago_oci = [KAGO_OCI, "--root", oci.root]
    else:
        launcher = tmp_path / "kago-oci-v2.py"
        launcher.write_text(V2_LAUNCHER)
        kago_oci = [sys.executable, str(launcher), "--root", oci.root]
    cid = oci.new_id("bpf")
    d = f"{root}/kago-{cid}"
    out = tmp_path / "out"
    with open(out, "w") as f:  # the container's stdout and stderr
        proc = subprocess.run(kago_oci + ["create", "--bundle", str(bundle.path), cid],
                              stdout=f, stderr=f, timeout=60)
    assert proc.returncode == 0, out.read_text()
    # v2 only: no v1 devices cgroup; the filter on the cgroup2 directory decides alone
    assert not os.path.exists(f"/sys/fs/cgroup/devices/kago-{cid}")
    assert len(devices_v2.attached(d)) == 1
    proc = subprocess.run(kago_oci + ["start", cid], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped", timeout=15)
    lines = out.read_text().splitlines()
    assert lines[:3] == ["zero-ok", "mknod-ok", "rc=1"], lines
    assert "Operation not permitted" in lines[3]
    assert oci("delete", cid).returncode == 0
    assert not os.path.exists(d)
