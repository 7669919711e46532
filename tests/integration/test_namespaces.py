"""Namespaces as the container sees them: new ones, joined ones, and per-namespace sysctls.

Each test runs one busybox container (``kago-oci run``) and asserts what ``sh -c`` inside
prints; the ``oci`` fixture checks nothing was left behind. Joined namespaces are made by the
test (``ip netns add``, an ``unshare --uts`` holder) and removed in a finalizer.
"""

import os
import socket
import subprocess
import uuid

import pytest

from conftest import wait_for


def run_sh(oci, make_bundle, script, mutate=None):
    """Run ``sh -c script`` in a fresh container; return the finished process."""
    b = make_bundle(["sh", "-c", script], mutate=mutate)
    return oci("run", "--bundle", b.path, oci.new_id())


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def add_ns(kind, path=None):
    def mutate(cfg):
        entries = cfg["linux"]["namespaces"]
        entries[:] = [ns for ns in entries if ns["type"] != kind]
        entries.append({"type": kind, **({"path": path} if path else {})})
    return mutate


def drop_ns(kind):
    def mutate(cfg):
        entries = cfg["linux"]["namespaces"]
        entries[:] = [ns for ns in entries if ns["type"] != kind]
    return mutate


def with_caps(*names):
    """Add capabilities to every set (the default spec has only three)."""
    def mutate(cfg):
        for kind, have in cfg["process"]["capabilities"].items():
            have.extend(n for n in names if n not in have)
        for kind in ("effective", "permitted", "inheritable", "bounding"):
            cfg["process"]["capabilities"].setdefault(kind, list(names))
    return mutate


def inode(path):
    return os.stat(path).st_ino


# --- new namespaces --------------------------------------------------------------------------

def test_pid_namespace_shell_is_pid_1(oci, make_bundle):
    assert ok(run_sh(oci, make_bundle, "echo $$")).strip() == "1"


def test_pid_namespace_ps_shows_only_the_container(oci, make_bundle):
    out = ok(run_sh(oci, make_bundle, "sleep 30 & ps -o pid,args; kill $!"))
    rows = [line.split(None, 1) for line in out.splitlines()[1:]]
    # sh (1), sleep and ps: nothing of the host's hundreds of processes
    assert [int(r[0]) for r in rows] == [1, 2, 3], out
    assert rows[0][1].startswith("sh -c"), out  # (busybox shows its re-exec'd applets oddly)


def test_mount_namespace_hides_container_mounts(oci, make_bundle):
    out = ok(run_sh(oci, make_bundle,
                    "mount -t tmpfs kago-ns-probe /run && "
                    "grep -c kago-ns-probe /proc/self/mountinfo",
                    mutate=with_caps("CAP_SYS_ADMIN")))
    assert out.strip() == "1"
    with open("/proc/self/mountinfo") as f:
        assert "kago-ns-probe" not in f.read()


def host_mounts_under(path):
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == real or p.startswith(real + "/")]


def without_mount_ns(cfg):
    drop_ns("mount")(cfg)
    for key in ("maskedPaths", "readonlyPaths"):  # refused without one, as by runc
        cfg["linux"].pop(key, None)


def test_without_a_mount_namespace_the_program_is_chrooted_in_the_hosts(oci, make_bundle):
    """Was refused ("a mount namespace is required"). As runc and crun: the container shares
    the host's mount namespace, the spec's mounts are made under the rootfs and the program
    is chrooted there; unlike them, kago takes those mounts away again (here at the end of
    run's delete) and leaves the host's propagation and the read-only root alone."""
    b = make_bundle(["sh", "-c", "stat -c %i /; readlink /proc/self/ns/mnt; "
                     "ls /proc/1/cmdline /dev/null /dev/pts/ptmx /sys/kernel >/dev/null && "
                     "echo mounted; touch /written && echo writable"], mutate=without_mount_ns)
    propagation_before = subprocess.run(["findmnt", "-no", "PROPAGATION", "/"],
                                        capture_output=True, text=True).stdout
    proc = oci("run", "--bundle", b.path, oci.new_id())
    lines = ok(proc).split()
    assert int(lines[0]) == inode(b.rootfs)
    assert lines[1] == os.readlink("/proc/self/ns/mnt")
    assert lines[2:] == ["mounted", "writable"]
    assert ("root.readonly: ignored without a private mount namespace" in proc.stderr)
    assert host_mounts_under(b.rootfs) == []
    assert subprocess.run(["findmnt", "-no", "PROPAGATION", "/"], capture_output=True,
                          text=True).stdout == propagation_before


def test_without_a_mount_namespace_delete_takes_the_containers_mounts_away(oci, make_bundle):
    from test_lifecycle import detached
    def mutate(cfg):
        without_mount_ns(cfg)
        with_caps("CAP_SYS_ADMIN")(cfg)
        cfg["root"]["readonly"] = False
    b = make_bundle(["sh", "-c", "mkdir -p /mnt/own && mount -t tmpfs own /mnt/own && "
                     "sleep 30"], mutate=mutate)
    cid = oci.new_id()
    assert detached(oci, "create", "--bundle", b.path, cid).returncode == 0
    real = os.path.realpath(b.rootfs)
    made = host_mounts_under(b.rootfs)
    assert f"{real}/proc" in made and f"{real}/dev" in made  # the host's, while it lives
    assert ok(oci("start", cid)) == ""
    assert wait_for(lambda: f"{real}/mnt/own" in host_mounts_under(b.rootfs), 5)
    assert int(ok(oci("exec", cid, "stat", "-c", "%i", "/"))) == inode(b.rootfs)  # exec too
    ok(oci("delete", "--force", cid))
    assert host_mounts_under(b.rootfs) == []


def test_without_a_mount_namespace_a_failed_create_leaves_no_mount(oci, make_bundle):
    b = make_bundle(["/no/such/program"], mutate=without_mount_ns)
    proc = oci("create", "--bundle", b.path, oci.new_id())
    assert proc.returncode != 0 and "no such file or directory" in proc.stderr
    assert host_mounts_under(b.rootfs) == []


def test_uts_namespace_hostname_and_domainname(oci, make_bundle):
    host_before = socket.gethostname()

    def mutate(cfg):
        cfg["hostname"] = "box-one"
        cfg["domainname"] = "cage.example"
    out = ok(run_sh(oci, make_bundle, "hostname; cat /proc/sys/kernel/domainname",
                    mutate=mutate))
    assert out.split() == ["box-one", "cage.example"]
    assert socket.gethostname() == host_before
    with open("/proc/sys/kernel/domainname") as f:
        assert f.read().strip() != "cage.example"


def test_ipc_namespace_differs_from_host(oci, make_bundle):
    out = ok(run_sh(oci, make_bundle, "stat -L -c %i /proc/self/ns/ipc"))
    assert int(out) != inode("/proc/self/ns/ipc")


def test_network_namespace_has_only_loopback(oci, make_bundle):
    out = ok(run_sh(oci, make_bundle, "ls /sys/class/net; echo --; ifconfig -a"))
    listing, ifconfig = out.split("--\n")
    assert listing.split() == ["lo"]
    names = [line.split()[0] for line in ifconfig.splitlines()
             if line and not line[0].isspace()]
    assert names == ["lo"], ifconfig


def test_no_network_namespace_shares_the_host_links(oci, make_bundle):
    out = ok(run_sh(oci, make_bundle, "stat -L -c %i /proc/self/ns/net",
                    mutate=drop_ns("network")))
    assert int(out) == inode("/proc/self/ns/net")


def test_cgroup_namespace_shows_root_paths(oci, make_bundle):
    out = ok(run_sh(oci, make_bundle, "cat /proc/self/cgroup", mutate=add_ns("cgroup")))
    paths = [line.split(":", 2)[2] for line in out.splitlines() if line]
    assert paths and all(p == "/" for p in paths), out


def test_without_cgroup_namespace_host_paths_show(oci, make_bundle):
    cid = oci.new_id()
    b = make_bundle(["sh", "-c", "cat /proc/self/cgroup"])
    out = ok(oci("run", "--bundle", b.path, cid))
    assert cid in out, out


needs_timens = pytest.mark.skipif(not os.path.exists("/proc/self/ns/time"),
                                  reason="this kernel has no time namespaces")


@needs_timens
def test_time_namespace_shifts_uptime(oci, make_bundle):
    shift = 100000

    def mutate(cfg):
        add_ns("time")(cfg)
        cfg["linux"]["timeOffsets"] = {"boottime": {"secs": shift},
                                       "monotonic": {"secs": shift}}
    before = _uptime()
    out = ok(run_sh(oci, make_bundle, "cat /proc/uptime", mutate=mutate))
    after = _uptime()
    inside = float(out.split()[0])
    assert before + shift - 1 <= inside <= after + shift + 1, (before, inside, after)


@needs_timens
def test_time_namespace_without_offsets_is_private(oci, make_bundle):
    out = ok(run_sh(oci, make_bundle, "stat -L -c %i /proc/self/ns/time",
                    mutate=add_ns("time")))
    assert int(out) != inode("/proc/self/ns/time")


def _uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


# --- joined namespaces -----------------------------------------------------------------------

@pytest.fixture
def netns():
    """A named network namespace (``ip netns add``), deleted afterwards; yields its path."""
    name = f"kago-t-{uuid.uuid4().hex[:8]}"
    # the first ``ip netns add`` makes /run/netns a mount point of its own; undo that too
    run_netns_was_mounted = os.path.ismount("/run/netns")
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
        if not run_netns_was_mounted and not os.listdir("/run/netns"):
            subprocess.run(["umount", "/run/netns"], check=False)


@pytest.fixture
def uts_holder():
    """A process in its own UTS namespace with hostname "held"; yields its pid."""
    proc = subprocess.Popen(["unshare", "--uts", "sh", "-c",
                             "hostname held && exec sleep 60"])
    try:
        assert wait_for(lambda: _hostname_of(proc.pid) == "held"), "holder did not start"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=5)


def _hostname_of(pid):
    try:
        ns_ino = inode(f"/proc/{pid}/ns/uts")
        if ns_ino == inode("/proc/self/ns/uts"):
            return None
        out = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"],
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip()
    except OSError:
        return None


def test_join_network_namespace_by_path(oci, make_bundle, netns):
    # mark the namespace: a sysctl only this netns has (the host's stays 0)
    subprocess.run(["ip", "netns", "exec", os.path.basename(netns), "sysctl", "-qw",
                    "net.ipv4.ip_forward=1"], check=True)
    out = ok(run_sh(oci, make_bundle,
                    "stat -L -c %i /proc/self/ns/net; cat /proc/sys/net/ipv4/ip_forward",
                    mutate=add_ns("network", netns)))
    ino, forward = out.split()
    assert int(ino) == inode(netns)
    assert forward == "1"


def test_join_uts_namespace_by_path(oci, make_bundle, uts_holder):
    def mutate(cfg):
        add_ns("uts", f"/proc/{uts_holder}/ns/uts")(cfg)
        cfg.pop("hostname", None)
    out = ok(run_sh(oci, make_bundle, "stat -L -c %i /proc/self/ns/uts; hostname",
                    mutate=mutate))
    ino, name = out.split()
    assert int(ino) == inode(f"/proc/{uts_holder}/ns/uts")
    assert name == "held"


def test_join_missing_namespace_path_fails_cleanly(oci, make_bundle):
    out = run_sh(oci, make_bundle, "true",
                 mutate=add_ns("network", "/run/netns/kago-t-does-not-exist"))
    assert out.returncode != 0
    assert "/run/netns/kago-t-does-not-exist" in out.stderr
    assert "network" in out.stderr


def test_join_path_the_runtime_may_not_open_says_permission_denied(oci, make_bundle, tmp_path,
                                                                   uts_holder):
    """EACCES is not "does not exist" (was): a namespace path under a directory closed to
    the runtime, which here runs as root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH."""
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    os.chown(closed, 65534, 65534)
    link = closed / "uts"
    os.symlink(f"/proc/{uts_holder}/ns/uts", link)

    def mutate(cfg):
        add_ns("uts", str(link))(cfg)
        cfg.pop("hostname", None)
    b = make_bundle(["true"], mutate=mutate)
    from conftest import KAGO_OCI
    proc = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                           "--inh-caps=-dac_override,-dac_read_search", KAGO_OCI, "--root",
                           oci.root, "run", "--bundle", b.path, oci.new_id()],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert (f"linux.namespaces: uts namespace: failed to open {link}: permission denied"
            in proc.stderr), proc.stderr
    assert "does not exist" not in proc.stderr


def test_join_path_that_is_not_a_namespace_fails_cleanly(oci, make_bundle, tmp_path):
    bogus = tmp_path / "not-a-ns"
    bogus.write_text("")
    out = run_sh(oci, make_bundle, "true", mutate=add_ns("network", str(bogus)))
    assert out.returncode != 0
    assert "setns network namespace" in out.stderr and str(bogus) in out.stderr, out.stderr


# --- sysctls ---------------------------------------------------------------------------------

def test_namespaced_sysctl_is_set_inside_only(oci, make_bundle):
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host_before = f.read()

    def mutate(cfg):
        cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    out = ok(run_sh(oci, make_bundle, "cat /proc/sys/net/ipv4/ip_forward", mutate=mutate))
    assert out.strip() == "1"
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == host_before


def test_ipc_sysctl_is_set_inside_only(oci, make_bundle):
    with open("/proc/sys/kernel/msgmax") as f:
        host_before = f.read()

    def mutate(cfg):
        cfg["linux"]["sysctl"] = {"kernel.msgmax": "12345"}
    out = ok(run_sh(oci, make_bundle, "cat /proc/sys/kernel/msgmax", mutate=mutate))
    assert out.strip() == "12345"
    with open("/proc/sys/kernel/msgmax") as f:
        assert f.read() == host_before


def test_non_namespaced_sysctl_is_refused(oci, make_bundle):
    with open("/proc/sys/vm/swappiness") as f:
        host_before = f.read()

    def mutate(cfg):
        cfg["linux"]["sysctl"] = {"vm.swappiness": "7"}
    out = run_sh(oci, make_bundle, "true", mutate=mutate)
    assert out.returncode != 0
    assert "vm.swappiness" in out.stderr and "not namespaced" in out.stderr, out.stderr
    with open("/proc/sys/vm/swappiness") as f:
        assert f.read() == host_before


def test_net_sysctl_without_network_namespace_is_refused(oci, make_bundle):
    def mutate(cfg):
        drop_ns("network")(cfg)
        cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    out = run_sh(oci, make_bundle, "true", mutate=mutate)
    assert out.returncode != 0
    assert "net.ipv4.ip_forward" in out.stderr and "network" in out.stderr, out.stderr
