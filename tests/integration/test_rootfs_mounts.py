"""The container's root filesystem and mounts, as seen from inside (mountinfo, stat, writes).

Each test runs one busybox container and parses what ``sh -c`` prints. Host-side mounts a test
needs (a shared source, a submount under a bind source) are made by fixtures and unmounted in
their finalizers.
"""

import os
import subprocess
import tempfile
import uuid

import pytest

from conftest import KAGO_OCI, wait_for
from test_lifecycle import detached

def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def run(oci, make_bundle, script, *mutators, args=()):
    def mutate(cfg):
        for fn in mutators:
            fn(cfg)
    b = make_bundle(["sh", "-c", script], mutate=mutate)
    return oci("run", *args, "--bundle", b.path, oci.new_id())


def add_mount(destination, type_, source, *options):
    def mutate(cfg):
        cfg["mounts"].append({"destination": destination, "type": type_, "source": str(source),
                              "options": list(options)})
    return mutate


def writable_root(cfg):
    cfg["root"]["readonly"] = False


def mountinfo_line(out, point):
    """The mountinfo line (split) whose mount point is ``point``, the last one if stacked."""
    found = [line.split() for line in out.splitlines()
             if len(line.split()) > 5 and line.split()[4] == point]
    assert found, f"{point} not in mountinfo:\n{out}"
    return found[-1]


def options_of(line):
    """(per-mount options, optional fields) of a split mountinfo line."""
    return set(line[5].split(",")), line[6:line.index("-")]


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return f.read()


# --- the root ---------------------------------------------------------------------------------

def test_readonly_root_refuses_writes_but_tmpfs_mount_is_writable(oci, make_bundle):
    out = run(oci, make_bundle, "touch /x; echo rc=$?; touch /tmp/y && echo tmp-ok",
              add_mount("/tmp", "tmpfs", "tmpfs", "nosuid", "nodev"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["rc=1", "tmp-ok"]
    assert "Read-only file system" in out.stderr


def test_writable_root_when_not_readonly(oci, make_bundle):
    b_out = ok(run(oci, make_bundle, "touch /x && echo wrote", writable_root))
    assert b_out.split() == ["wrote"]


@pytest.mark.parametrize("propagation,shared", [("rshared", True), ("shared", True),
                                                ("rslave", False), ("slave", False),
                                                ("private", False), ("rprivate", False)])
def test_rootfs_propagation(oci, make_bundle, propagation, shared):
    out = ok(run(oci, make_bundle, "cat /proc/self/mountinfo",
                 lambda c: c["linux"].update(rootfsPropagation=propagation)))
    _opts, optional = options_of(mountinfo_line(out, "/"))
    assert any(f.startswith("shared:") for f in optional) == shared, optional
    if not shared:
        assert optional == [] or all(f.startswith("master:") for f in optional), optional


def test_no_pivot_root_still_isolates(oci, make_bundle):
    out = ok(run(oci, make_bundle,
                 "ls /; echo --; stat -c %i /bin/busybox; ls /work 2>&1; echo rc=$?",
                 args=("--no-pivot",)))
    listing, rest = out.split("--\n")
    assert {"bin", "etc", "proc", "dev", "sys"} <= set(listing.split())
    assert "rc=1" in rest  # the host's tree is not reachable


def test_no_pivot_root_is_the_bundle_rootfs(oci, make_bundle):
    b = make_bundle(["sh", "-c", "stat -c %i /bin/busybox"])
    out = ok(oci("run", "--no-pivot", "--bundle", b.path, oci.new_id()))
    assert int(out) == os.stat(os.path.join(b.rootfs, "bin/busybox")).st_ino


# --- filesystem mounts ------------------------------------------------------------------------

def test_proc_is_the_containers(oci, make_bundle):
    out = ok(run(oci, make_bundle,
                 "grep ' /proc ' /proc/self/mountinfo; ls /proc | grep -c '^[0-9]'"))
    line, count = out.splitlines()
    assert line.split(" - ")[1].startswith("proc ")
    assert int(count) <= 3  # sh, grep/ls: the container's pid namespace only


def test_sysfs_is_read_only(oci, make_bundle):
    # a create, not a write to a real attribute: a broken runtime must not change the host
    out = run(oci, make_bundle, "cat /proc/self/mountinfo; touch /sys/kago-probe")
    opts, _ = options_of(mountinfo_line(out.stdout, "/sys"))
    assert {"ro", "nosuid", "nodev", "noexec"} <= opts
    assert "Read-only file system" in out.stderr


def test_devpts_newinstance_and_ptmx_link(oci, make_bundle):
    out = ok(run(oci, make_bundle,
                 "readlink /dev/ptmx; stat -c %a /dev/pts/ptmx; grep ' /dev/pts ' "
                 "/proc/self/mountinfo"))
    link, mode, line = out.splitlines()
    assert link == "pts/ptmx"
    assert mode == "666"
    super_opts = line.split(" - ")[1].split()[2].split(",")
    assert "ptmxmode=666" in super_opts and "gid=5" in super_opts
    # a new instance: not the host's devpts (different device number)
    host_dev = os.stat("/dev/pts").st_dev
    assert line.split()[2] != f"{os.major(host_dev)}:{os.minor(host_dev)}"


def test_mqueue_is_mounted(oci, make_bundle):
    out = ok(run(oci, make_bundle, "grep ' /dev/mqueue ' /proc/self/mountinfo"))
    assert out.split(" - ")[1].startswith("mqueue ")


def test_tmpfs_size_and_mode(oci, make_bundle):
    out = ok(run(oci, make_bundle, "stat -c %a /scratch; df -k /scratch | tail -1",
                 add_mount("/scratch", "tmpfs", "tmpfs", "size=1m", "mode=1777", "nosuid")))
    mode, df = out.splitlines()
    assert mode == "1777"
    assert df.split()[1] == "1024"  # 1 MiB in 1 KiB blocks


def test_cgroup_mount_shows_only_the_containers_cgroup(oci, make_bundle):
    cid = oci.new_id()
    b = make_bundle(["sh", "-c",
                     "ls /sys/fs/cgroup; echo --; cat /sys/fs/cgroup/pids/cgroup.procs; "
                     "echo --; find /sys/fs/cgroup/pids -mindepth 1 -type d | wc -l; "
                     "mkdir /sys/fs/cgroup/pids/x; echo rc=$?"])
    proc = oci("run", "--bundle", b.path, cid)
    ctrls, procs, rest = ok(proc).split("--\n")
    assert {"cpu", "memory", "pids", "devices", "freezer"} <= set(ctrls.split())
    assert "1" in procs.split()  # our own init, by its pid in the container
    subdirs, rc = rest.split()
    assert subdirs == "0"  # no other container's cgroup, no parent
    assert rc == "rc=1" and "Read-only file system" in proc.stderr


def test_cgroup_mount_options(oci, make_bundle):
    out = ok(run(oci, make_bundle, "cat /proc/self/mountinfo"))
    opts, _ = options_of(mountinfo_line(out, "/sys/fs/cgroup/pids"))
    assert {"ro", "nosuid", "nodev", "noexec"} <= opts
    opts, _ = options_of(mountinfo_line(out, "/sys/fs/cgroup"))
    assert "ro" in opts


@pytest.fixture
def host_dir(tmp_path):
    """A host directory with a file and an executable script, for bind mounts."""
    path = tmp_path / f"src-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    (path / "file").write_text("content\n")
    script = path / "run.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    os.chmod(script, 0o755)
    return path


@pytest.mark.parametrize("kind", ["bind", "rbind"])
def test_bind_read_only(oci, make_bundle, host_dir, kind):
    out = run(oci, make_bundle,
              "cat /proc/self/mountinfo; cat /b/file; touch /b/new; echo rc=$?",
              add_mount("/b", "bind", host_dir, kind, "ro"))
    opts, _ = options_of(mountinfo_line(out.stdout, "/b"))
    assert "ro" in opts
    assert "content" in out.stdout and "rc=1" in out.stdout
    assert "Read-only file system" in out.stderr
    assert not (host_dir / "new").exists()


def test_bind_read_write_reaches_host(oci, make_bundle, host_dir):
    ok(run(oci, make_bundle, "echo from-container > /b/new",
           add_mount("/b", "bind", host_dir, "rbind", "rw")))
    assert (host_dir / "new").read_text() == "from-container\n"


def test_bind_noexec_nosuid_nodev(oci, make_bundle, host_dir):
    out = run(oci, make_bundle, "cat /proc/self/mountinfo; /b/run.sh; echo rc=$?",
              add_mount("/b", "bind", host_dir, "rbind", "noexec", "nosuid", "nodev"))
    opts, _ = options_of(mountinfo_line(out.stdout, "/b"))
    assert {"noexec", "nosuid", "nodev"} <= opts
    assert "ran" not in out.stdout and "rc=126" in out.stdout
    assert "Permission denied" in out.stderr


def test_bind_exec_allowed_by_default(oci, make_bundle, host_dir):
    out = ok(run(oci, make_bundle, "/b/run.sh", add_mount("/b", "bind", host_dir, "rbind")))
    assert out.strip() == "ran"


def test_file_bind_mount(oci, make_bundle, host_dir):
    out = ok(run(oci, make_bundle, "cat /etc/motd; stat -c %F /etc/motd",
                 add_mount("/etc/motd", "bind", host_dir / "file", "bind", "ro")))
    assert out.splitlines() == ["content", "regular file"]


def test_file_bind_mount_creates_missing_parents(oci, make_bundle, host_dir):
    out = ok(run(oci, make_bundle, "cat /new/dir/f",
                 add_mount("/new/dir/f", "bind", host_dir / "file", "bind")))
    assert out == "content\n"


@pytest.mark.parametrize("atime,present,absent", [
    ("relatime", {"relatime"}, {"noatime"}),
    ("noatime", {"noatime"}, {"relatime"}),
    ("strictatime", set(), {"relatime", "noatime"}),
])
def test_atime_options(oci, make_bundle, atime, present, absent):
    out = ok(run(oci, make_bundle, "cat /proc/self/mountinfo",
                 add_mount("/scratch", "tmpfs", "tmpfs", atime)))
    opts, _ = options_of(mountinfo_line(out, "/scratch"))
    assert present <= opts and not absent & opts, opts


def test_bind_atime_option_is_applied_on_remount(oci, make_bundle, host_dir):
    out = ok(run(oci, make_bundle, "cat /proc/self/mountinfo",
                 add_mount("/b", "bind", host_dir, "rbind", "noatime")))
    opts, _ = options_of(mountinfo_line(out, "/b"))
    assert "noatime" in opts, opts


def test_bind_with_rshared_propagation(oci, make_bundle, host_dir):
    out = ok(run(oci, make_bundle, "cat /proc/self/mountinfo",
                 add_mount("/b", "bind", host_dir, "rbind", "rshared")))
    _opts, optional = options_of(mountinfo_line(out, "/b"))
    assert any(f.startswith("shared:") for f in optional), optional


@pytest.fixture
def shared_source(tmp_path):
    """A host tmpfs made shared, so its slaves in a container receive later host mounts."""
    path = tmp_path / "shared-src"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "kago-t-shared", str(path)],
                   check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(path)], check=True)
        (path / "sub").mkdir()
        yield path
    finally:
        subprocess.run(["umount", "-R", "-l", str(path)], check=False)


def test_bind_rslave_receives_host_mounts(oci, make_bundle, shared_source):
    b = make_bundle(["sh", "-c", "cat /b/sub/marker; grep ' /b ' /proc/self/mountinfo"],
                    mutate=add_mount("/b", "bind", shared_source, "rbind", "rslave"))
    cid = oci.new_id()
    out_path = os.path.join(b.path, "out")
    create_detached(oci, b, cid, out_path)
    # mounted on the host after the container's mounts were made, before it runs
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "kago-t-late",
                    str(shared_source / "sub")], check=True)
    (shared_source / "sub" / "marker").write_text("late mount\n")
    ok(oci("start", cid))
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped", timeout=10)
    ok(oci("delete", cid))
    with open(out_path) as f:
        marker, line = f.read().splitlines()
    assert marker == "late mount"
    assert any(f.startswith("master:") for f in options_of(line.split())[1]), line


def create_detached(oci, bundle, cid, out_path):
    """``create`` with the container's stdio on a file: a pipe would stay open (held by the
    container) and make subprocess.run wait for the container to exit."""
    with open(out_path, "w") as out:
        proc = subprocess.run([KAGO_OCI, "--root", oci.root, "create", "--bundle", bundle.path,
                               cid], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                              timeout=30)
    assert proc.returncode == 0, open(out_path).read()


@pytest.fixture
def source_with_submount(tmp_path):
    """A host directory with a tmpfs mounted under it (for recursive bind options)."""
    path = tmp_path / "rsrc"
    (path / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "kago-t-sub", str(path / "sub")],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path / "sub")], check=False)


def test_recursive_read_only_reaches_submounts(oci, make_bundle, source_with_submount):
    out = run(oci, make_bundle,
              "cat /proc/self/mountinfo; touch /b/top; echo top=$?; touch /b/sub/x; echo sub=$?",
              add_mount("/b", "bind", source_with_submount, "rbind", "rro"))
    assert "top=1" in out.stdout and "sub=1" in out.stdout, out.stdout + out.stderr
    for point in ("/b", "/b/sub"):
        opts, _ = options_of(mountinfo_line(out.stdout, point))
        assert "ro" in opts, (point, opts)
    assert not (source_with_submount / "sub" / "x").exists()


def test_plain_ro_rbind_leaves_submounts_writable(oci, make_bundle, source_with_submount):
    # the contrast that makes ``rro`` worth having (runc behaves the same way)
    out = ok(run(oci, make_bundle, "touch /b/sub/x && echo sub-ok",
                 add_mount("/b", "bind", source_with_submount, "rbind", "ro")))
    assert out.strip() == "sub-ok"


# --- devices ----------------------------------------------------------------------------------

DEFAULT_DEVICES = {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8",
                   "urandom": "1:9", "tty": "5:0"}


def test_default_devices(oci, make_bundle):
    script = "; ".join(f"stat -c '%n %F %t:%T %a' /dev/{name}" for name in DEFAULT_DEVICES)
    out = ok(run(oci, make_bundle, script))
    for line in out.splitlines():
        path, rest = line.split(" ", 1)
        name = path.rsplit("/", 1)[1]
        kind, numbers, mode = rest.rsplit(" ", 2)
        assert kind == "character special file", line
        major, minor = (int(x, 16) for x in numbers.split(":"))
        assert f"{major}:{minor}" == DEFAULT_DEVICES[name], line
        assert mode == "666", line


def test_default_devices_work(oci, make_bundle):
    out = ok(run(oci, make_bundle,
                 "echo x > /dev/null && head -c 4 /dev/zero | od -An -tx1; "
                 "head -c 8 /dev/urandom | wc -c"))
    zeros, count = out.splitlines()
    assert zeros.split() == ["00"] * 4 and count.strip() == "8"


def test_dev_fd_and_std_links(oci, make_bundle):
    out = ok(run(oci, make_bundle,
                 "for l in fd stdin stdout stderr; do readlink /dev/$l; done; "
                 "echo via-link > /dev/stdout"))
    assert out.splitlines() == ["/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1",
                                "/proc/self/fd/2", "via-link"]


def add_device(path, major, minor, mode=0o666, uid=0, gid=0, kind="c"):
    def mutate(cfg):
        cfg["linux"].setdefault("devices", []).append(
            {"path": path, "type": kind, "major": major, "minor": minor, "fileMode": mode,
             "uid": uid, "gid": gid})
    return mutate


def test_spec_device_is_created_with_mode_and_owner(oci, make_bundle):
    out = ok(run(oci, make_bundle, "stat -c '%F %t:%T %a %u:%g' /dev/kago0",
                 add_device("/dev/kago0", 1, 3, mode=0o620, uid=1000, gid=5)))
    assert out.strip() == "character special file 1:3 620 1000:5"


def test_spec_device_fuse(oci, make_bundle):
    out = ok(run(oci, make_bundle, "stat -c '%F %t:%T %a' /dev/fuse",
                 add_device("/dev/fuse", 10, 229, mode=0o600)))
    assert out.strip() == "character special file a:e5 600"


def test_spec_device_in_a_subdirectory(oci, make_bundle):
    out = ok(run(oci, make_bundle, "stat -c '%F %t:%T' /dev/net/tun",
                 add_device("/dev/net/tun", 10, 200)))
    assert out.strip() == "character special file a:c8"


def userns(cfg):
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def test_spec_device_in_user_namespace_is_bind_mounted(oci, make_bundle):
    out = ok(run(oci, make_bundle,
                 "stat -c '%F %t:%T' /dev/fuse; grep -c ' /dev/fuse ' /proc/self/mountinfo",
                 userns, add_device("/dev/fuse", 10, 229, mode=0o600)))
    kind, count = out.splitlines()
    assert kind == "character special file a:e5"
    assert count == "1"  # a bind of the host's node: mknod is not allowed in a user namespace


def test_spec_device_the_host_lacks_in_user_namespace_fails_clearly(oci, make_bundle):
    out = run(oci, make_bundle, "true", userns, add_device("/dev/kago0", 1, 3))
    assert out.returncode != 0
    assert "/dev/kago0" in out.stderr and "user namespace" in out.stderr, out.stderr


def test_devices_without_user_namespace_are_not_mounts(oci, make_bundle):
    out = ok(run(oci, make_bundle, "grep -c ' /dev/null ' /proc/self/mountinfo; true"))
    assert out.strip() == "0"


# --- masked and read-only paths ---------------------------------------------------------------

@pytest.mark.parametrize("path", ["/proc/kcore", "/proc/keys", "/proc/timer_list"])
def test_masked_proc_file_reads_empty(oci, make_bundle, path):
    if not os.path.exists(path):
        pytest.skip(f"this kernel has no {path}")
    out = ok(run(oci, make_bundle, f"wc -c < {path}; stat -c '%t:%T' {path}"))
    size, dev = out.split()
    assert size == "0" and dev == "1:3"  # /dev/null bound over it


def test_masked_directory_is_empty(oci, make_bundle):
    if not os.path.isdir("/proc/acpi"):
        pytest.skip("this kernel has no /proc/acpi")
    out = ok(run(oci, make_bundle, "ls -A /proc/acpi | wc -l; touch /proc/acpi/x; echo rc=$?"))
    assert out.split() == ["0", "rc=1"]


def test_masked_file_of_the_image(oci, make_bundle):
    out = ok(run(oci, make_bundle, "cat /etc/hostname; echo end",
                 lambda c: c["linux"]["maskedPaths"].append("/etc/hostname")))
    assert out == "end\n"


def test_masked_path_missing_is_ignored(oci, make_bundle):
    out = ok(run(oci, make_bundle, "echo fine",
                 lambda c: c["linux"]["maskedPaths"].append("/no/such/path")))
    assert out == "fine\n"


RUNC = "/usr/sbin/runc"
MASKS = "grep -E ' /(proc/keys|proc/acpi|dev|dev/null) ' /proc/self/mountinfo; " \
        "echo size=$(wc -c < /proc/keys) entries=$(ls -A /proc/acpi | wc -l); " \
        "touch /proc/acpi/x 2>/dev/null || echo acpi-ro"


def runc_run(tmp_path, bundle):
    """``runc run`` of ``bundle`` with a private state root; the container is deleted after."""
    if not os.access(RUNC, os.X_OK):
        pytest.skip(f"{RUNC} is not installed")
    root, cid = tmp_path / "runc-state", f"kago-mask-{uuid.uuid4().hex[:10]}"
    try:
        return ok(subprocess.run([RUNC, "--root", str(root), "run", "--bundle", bundle.path,
                                  cid], capture_output=True, text=True, timeout=60,
                                 stdin=subprocess.DEVNULL, check=False))
    finally:
        subprocess.run([RUNC, "--root", str(root), "delete", "-f", cid], capture_output=True,
                       timeout=30, check=False)


def masks_seen(out):
    """What a container showed of its masks: each mount as (device, root, point, per-mount
    options, fstype, source, superblock options), and the other lines (reads, writes)."""
    seen, rest = {}, []
    for line in out.splitlines():
        f = line.split()
        if not f[0].isdigit():
            rest.append(line)
            continue
        seen[f[4]] = (f[2], f[3], f[4], f[5], *f[f.index("-") + 1:])
    return seen, " ".join(rest)


@pytest.mark.parametrize("with_userns", [False, True], ids=["plain", "userns"])
def test_masks_are_the_containers_own_null_and_tmpfs_as_in_runc(oci, make_bundle, tmp_path,
                                                                 with_userns):
    """runc binds the container's own /dev/null (its /dev tmpfs, or in a user namespace the
    host node bound there) over a masked file; so does kago-oci: the same mountinfo line, not
    the host's devtmpfs. A masked directory is an empty read-only tmpfs under both."""
    if not os.path.isdir("/proc/acpi"):
        pytest.skip("this kernel has no /proc/acpi")
    bundle = make_bundle(["sh", "-c", MASKS], mutate=userns if with_userns else None)
    runc, runc_use = masks_seen(runc_run(tmp_path, bundle))
    kago, kago_use = masks_seen(ok(oci("run", "--bundle", bundle.path, oci.new_id())))
    assert kago_use == runc_use == "size=0 entries=0 acpi-ro"
    null_of = "/dev/null" if with_userns else "/dev"  # the mount holding the container's null
    for seen in (runc, kago):
        device, root, _point, _opts, *fs = seen["/proc/keys"]
        assert (device, root) == (seen[null_of][0], "/null"), seen
        assert fs == list(seen[null_of][4:]), seen
        assert seen["/proc/acpi"][4] == "tmpfs" and "ro" in seen["/proc/acpi"][3].split(",")
    if not with_userns:
        assert kago["/proc/keys"][4:] == ("tmpfs", "tmpfs", kago["/dev"][6])  # not devtmpfs
    same = lambda seen, point: seen[point][1:]  # the device number is each container's own
    assert same(kago, "/proc/keys") == same(runc, "/proc/keys")
    assert same(kago, "/proc/acpi") == same(runc, "/proc/acpi")


def dev_bind(host_dir):
    def mutate(cfg):
        cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
        cfg["mounts"].append({"destination": "/dev", "type": "bind", "source": str(host_dir),
                              "options": ["rbind"]})
    return mutate


def test_masking_with_a_dev_that_has_no_null_fails_clearly(oci, make_bundle, tmp_path):
    """A bind of a host directory over /dev, without a null device: create fails, as in runc
    (whose init needs /dev/null too), rather than binding the host's."""
    (tmp_path / "dev").mkdir()
    out = run(oci, make_bundle, "cat /proc/keys", dev_bind(tmp_path / "dev"))
    assert out.returncode != 0 and out.stdout == ""
    assert "mask paths: open /dev/null (" in out.stderr, out.stderr
    assert "no such file or directory" in out.stderr


def test_masking_with_a_dev_whose_null_is_a_symlink_is_refused(oci, make_bundle, tmp_path):
    """/dev/null a symlink (resolved in the rootfs) to an image file: never bound as a mask."""
    (tmp_path / "dev").mkdir()
    os.symlink("/etc/hostname", tmp_path / "dev" / "null")
    out = run(oci, make_bundle, "cat /proc/keys", dev_bind(tmp_path / "dev"))
    assert out.returncode != 0 and out.stdout == ""
    assert ("mask paths: the container's /dev/null must be the null device (c 1:3), not a "
            "regular file" in out.stderr), out.stderr


def test_masks_through_a_bind_of_the_hosts_dev_are_its_null(oci, make_bundle):
    out = ok(run(oci, make_bundle, MASKS, dev_bind("/dev")))
    seen, use = masks_seen(out)
    assert use == "size=0 entries=0 acpi-ro"
    assert seen["/proc/keys"][0] == seen["/dev"][0] and seen["/proc/keys"][4] == "devtmpfs"


def test_readonly_proc_sys(oci, make_bundle):
    out = run(oci, make_bundle, "echo other > /proc/sys/kernel/hostname; echo rc=$?; hostname")
    assert out.stdout.split() == ["rc=1", "kago"]
    assert "Read-only file system" in out.stderr


def test_readonly_path_of_the_image(oci, make_bundle):
    out = run(oci, make_bundle, "touch /home/x; echo home=$?; touch /x && echo root-ok",
              writable_root, lambda c: c["linux"]["readonlyPaths"].append("/home"))
    assert out.stdout.split() == ["home=1", "root-ok"]
    assert "Read-only file system" in out.stderr


def test_without_readonly_paths_proc_sys_is_writable(oci, make_bundle):
    out = ok(run(oci, make_bundle, "echo other > /proc/sys/kernel/hostname; hostname",
                 lambda c: c["linux"].update(readonlyPaths=[])))
    assert out.strip() == "other"  # the container's own UTS namespace: the host's is unchanged
    assert os.uname().nodename != "other"


# --- destinations that try to leave the rootfs ------------------------------------------------

@pytest.fixture
def canary(tmp_path):
    """A host directory that a symlink in an image will point at; must stay untouched."""
    path = tmp_path / f"canary-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    (path / "keep").write_text("host\n")
    return path


def _assert_untouched(canary):
    assert sorted(os.listdir(canary)) == ["keep"]
    assert (canary / "keep").read_text() == "host\n"
    assert str(canary) not in host_mounts()


def test_destination_symlink_to_absolute_host_path_stays_inside(oci, make_bundle, canary):
    b = make_bundle(["sh", "-c", f"ls -A {canary}; grep -c ' {canary} ' /proc/self/mountinfo"],
                    mutate=add_mount("/link", "tmpfs", "tmpfs", "size=1m"))
    os.symlink(str(canary), os.path.join(b.rootfs, "link"))
    out = ok(oci("run", "--bundle", b.path, oci.new_id()))
    # the tmpfs landed at <rootfs><canary>, which is empty and was created inside
    assert out.split() == ["1"]
    assert os.path.isdir(os.path.join(b.rootfs, str(canary).lstrip("/")))
    _assert_untouched(canary)


def test_destination_symlink_to_etc_lands_on_the_images_etc(oci, make_bundle):
    before = sorted(os.listdir("/etc"))
    b = make_bundle(["sh", "-c", "ls -A /etc | wc -l; grep -c ' /etc ' /proc/self/mountinfo"],
                    mutate=add_mount("/conf", "tmpfs", "tmpfs", "size=1m"))
    os.symlink("/etc", os.path.join(b.rootfs, "conf"))
    out = ok(oci("run", "--bundle", b.path, oci.new_id()))
    assert out.split() == ["0", "1"]  # the image's /etc is covered, inside the container
    assert sorted(os.listdir("/etc")) == before
    assert " /etc " not in "".join(line for line in host_mounts().splitlines(True)
                                  if "tmpfs" in line and " /etc " in line)


def test_destination_relative_symlink_escape_stays_inside(oci, make_bundle, canary):
    rel = "../../../../../../../../.." + str(canary) + "/x"
    b = make_bundle(["sh", "-c", f"grep -c ' {canary}/x ' /proc/self/mountinfo"],
                    mutate=add_mount("/rel", "tmpfs", "tmpfs", "size=1m"))
    os.symlink(rel, os.path.join(b.rootfs, "rel"))
    out = ok(oci("run", "--bundle", b.path, oci.new_id()))
    assert out.strip() == "1"
    assert os.path.isdir(os.path.join(b.rootfs, str(canary).lstrip("/"), "x"))
    _assert_untouched(canary)


def test_destination_with_dotdot_stays_inside(oci, make_bundle):
    b = make_bundle(["sh", "-c", "grep -c ' /b ' /proc/self/mountinfo; ls -d /a 2>&1; true"],
                    mutate=add_mount("/a/../../../b", "tmpfs", "tmpfs", "size=1m"))
    out = ok(oci("run", "--bundle", b.path, oci.new_id()))
    count, ls = out.splitlines()
    assert count == "1"
    assert "No such file" in ls  # resolved lexically, like runc: /a is never created
    assert not os.path.exists("/b")


def test_dangling_symlink_file_destination_is_created_inside(oci, make_bundle, host_dir):
    # images with systemd-resolved ship /etc/resolv.conf -> ../run/systemd/resolve/stub...
    b = make_bundle(["sh", "-c", "cat /etc/resolv.conf; ls /run/systemd/resolve"],
                    mutate=add_mount("/etc/resolv.conf", "bind", host_dir / "file", "bind",
                                     "ro"))
    conf = os.path.join(b.rootfs, "etc/resolv.conf")
    os.unlink(conf)
    os.symlink("../run/systemd/resolve/stub-resolv.conf", conf)
    out = ok(oci("run", "--bundle", b.path, oci.new_id()))
    assert out.splitlines() == ["content", "stub-resolv.conf"]


def test_symlink_loop_destination_fails_cleanly(oci, make_bundle):
    b = make_bundle(["sh", "-c", "true"], mutate=add_mount("/loop", "tmpfs", "tmpfs"))
    os.symlink("loop2", os.path.join(b.rootfs, "loop"))
    os.symlink("loop", os.path.join(b.rootfs, "loop2"))
    out = oci("run", "--bundle", b.path, oci.new_id())
    assert out.returncode != 0
    assert "/loop" in out.stderr and "too many levels of symbolic links" in out.stderr, \
        out.stderr


# --- tmpcopyup ----------------------------------------------------------------------------------

def image_tmp(make_bundle, script, *mutators, base=0):
    """A bundle whose image /tmp has a file (1000:1000, 0604), a subdirectory and a symlink,
    owned as seen inside a container whose IDs start at host ID ``base``."""
    def mutate(cfg):
        for fn in mutators:
            fn(cfg)
    b = make_bundle(["sh", "-c", script], mutate=mutate)
    tmp = os.path.join(b.rootfs, "tmp")
    hello, sub = os.path.join(tmp, "hello"), os.path.join(tmp, "sub")
    with open(hello, "w") as f:
        f.write("from the image\n")
    os.chmod(hello, 0o604)
    os.makedirs(sub)
    with open(os.path.join(sub, "deep"), "w") as f:
        f.write("deep\n")
    os.symlink("/etc/hostname", os.path.join(tmp, "abs"))  # copied as a link, not followed
    for path, owner in ((hello, base + 1000), (sub, base), (os.path.join(sub, "deep"), base),
                        (os.path.join(tmp, "abs"), base)):
        os.chown(path, owner, owner, follow_symlinks=False)
    return b


COPYUP_SCRIPT = ("cat /tmp/hello /tmp/sub/deep; stat -c '%a %u %g' /tmp/hello; "
                 "stat -c '%a' /tmp; readlink /tmp/abs; "
                 "grep ' /tmp ' /proc/self/mountinfo | cut -d' ' -f9; "
                 "touch /tmp/new && echo writable; touch /x 2>/dev/null || echo root-ro")


@pytest.mark.parametrize("with_userns", [False, True], ids=["host-ids", "userns"])
def test_tmpcopyup_fills_the_tmpfs_with_the_images_files(oci, make_bundle, with_userns):
    mutators = [add_mount("/tmp", "tmpfs", "tmpfs", "rw", "nosuid", "nodev", "tmpcopyup")]
    if with_userns:
        mutators.append(userns)
    b = image_tmp(make_bundle, COPYUP_SCRIPT, *mutators, base=100000 if with_userns else 0)
    assert b.config["root"]["readonly"]
    out = ok(oci("run", "--bundle", b.path, oci.new_id()))
    assert out.splitlines() == ["from the image", "deep", "604 1000 1000", "1777",
                                "/etc/hostname", "tmpfs", "writable", "root-ro"]
    assert not os.path.exists(os.path.join(b.rootfs, "tmp", "new"))  # the image is untouched


def test_tmpcopyup_read_only_tmpfs_is_filled_then_read_only(oci, make_bundle):
    b = image_tmp(make_bundle, "cat /tmp/hello; touch /tmp/new 2>/dev/null || echo ro; "
                  "grep ' /tmp ' /proc/self/mountinfo",
                  add_mount("/tmp", "tmpfs", "tmpfs", "ro", "tmpcopyup"))
    out = ok(oci("run", "--bundle", b.path, oci.new_id()))
    lines = out.splitlines()
    assert lines[:2] == ["from the image", "ro"]
    opts, _ = options_of(lines[2].split())
    assert "ro" in opts


def test_tmpcopyup_of_a_missing_directory_is_an_empty_tmpfs(oci, make_bundle):
    out = ok(run(oci, make_bundle, "ls -A /fresh | wc -l; touch /fresh/x && echo writable",
                 add_mount("/fresh", "tmpfs", "tmpfs", "tmpcopyup")))
    assert out.split() == ["0", "writable"]


# --- idmapped bind mounts (idmap / ridmap, mounts[].uidMappings) ---------------------------------

@pytest.fixture
def owned_dir(tmp_path):
    """A host directory owned by root with a root file and a file of host user 1000."""
    path = tmp_path / f"idm-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    os.chmod(tmp_path, 0o755)
    (path / "root-file").write_text("root\n")
    (path / "user-file").write_text("user\n")
    os.chown(path / "user-file", 1000, 1000)
    return path


# at /home, a directory the image has: the container's root in a user namespace could not
# make one in the image (owned by the host's root)
STAT_OWNERS = "stat -c '%n %u:%g' /home /home/root-file /home/user-file"


def test_idmap_bind_shows_host_owners_as_the_containers(oci, make_bundle, owned_dir):
    """idmap without maps of its own takes the container's: host root is the container's root
    (and 1000 its 1000), where a plain bind shows them unmapped (nobody, 65534)."""
    out = ok(run(oci, make_bundle, STAT_OWNERS + "; echo new > /home/made; echo wrote",
                 userns, writable_root, add_mount("/home", "bind", owned_dir, "rbind", "idmap")))
    assert out.splitlines() == ["/home 0:0", "/home/root-file 0:0", "/home/user-file 1000:1000",
                                "wrote"]
    st = os.stat(owned_dir / "made")  # the container's root writes as the host's root
    assert (st.st_uid, st.st_gid) == (0, 0)
    out = ok(run(oci, make_bundle, STAT_OWNERS, userns,
                 add_mount("/home", "bind", owned_dir, "rbind")))
    assert out.splitlines() == ["/home 65534:65534", "/home/root-file 65534:65534",
                                "/home/user-file 65534:65534"]


def idmapped_mount(source, uid_maps, gid_maps, *options):
    def mutate(cfg):
        cfg["mounts"].append({"destination": "/home", "type": "bind", "source": str(source),
                              "options": ["rbind", *options], "uidMappings": uid_maps,
                              "gidMappings": gid_maps})
    return mutate


def test_mount_maps_of_its_own_without_a_user_namespace(oci, make_bundle, owned_dir):
    """mounts[].uidMappings: containerID is the ID on disk, hostID what the mount shows."""
    maps = [{"containerID": 0, "hostID": 5000, "size": 1001}]
    out = ok(run(oci, make_bundle, STAT_OWNERS, idmapped_mount(owned_dir, maps, maps, "idmap")))
    assert out.splitlines() == ["/home 5000:5000", "/home/root-file 5000:5000",
                                "/home/user-file 6000:6000"]


def test_ridmap_reaches_submounts_and_idmap_does_not(oci, make_bundle, owned_dir):
    sub = owned_dir / "sub"
    sub.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "kago-idmap-sub", str(sub)],
                   check=True)
    try:
        maps = [{"containerID": 0, "hostID": 7000, "size": 10}]
        for option, owner in (("ridmap", "7000:7000"), ("idmap", "0:0")):
            out = ok(run(oci, make_bundle, "stat -c '%u:%g' /home /home/sub",
                         idmapped_mount(owned_dir, maps, maps, option)))
            assert out.split() == ["7000:7000", owner], option
    finally:
        subprocess.run(["umount", str(sub)], check=True)


def test_idmap_on_a_tmpfs_is_refused(oci, make_bundle):
    out = run(oci, make_bundle, "true", userns, add_mount("/home", "tmpfs", "tmpfs", "idmap"))
    assert out.returncode == 1
    assert "mounts[" in out.stderr and "only supported for bind mounts" in out.stderr


@pytest.mark.parametrize("with_userns", [False, True], ids=["host-ids", "userns"])
def test_idmapped_mounts_user_namespace_fds_do_not_reach_the_container(
        oci, make_bundle, owned_dir, with_userns):
    """The runtime opens a user namespace fd per idmapped mount for the container process;
    each is closed once its mount is made: a created init holds 0-2 and the exec fifo."""
    maps = [{"containerID": 0, "hostID": 5000, "size": 1001}]
    mutators = [idmapped_mount(owned_dir, maps, maps, "idmap")]
    if with_userns:
        mutators.append(userns)
    def mutate(cfg):
        for fn in mutators:
            fn(cfg)
    b = make_bundle(["sleep", "100"], mutate=mutate)
    cid = oci.new_id()
    argv = [KAGO_OCI, "--root", oci.root, "create", "--bundle", b.path, cid]
    with tempfile.TemporaryFile() as err:  # the init keeps its stderr: not a pipe to wait on
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=err, timeout=30)
        err.seek(0)
        assert proc.returncode == 0, err.read()
    pid = oci.state(cid)["pid"]
    targets = [os.readlink(f"/proc/{pid}/fd/{n}")
               for n in sorted(os.listdir(f"/proc/{pid}/fd"), key=int)]
    assert len(targets) == 4 and targets[3].endswith("/exec.fifo"), targets
    assert not any(t.startswith("user:") for t in targets), targets
    ok(oci("delete", "--force", cid))


def test_idmap_in_a_joined_user_namespace_uses_that_namespace(oci, make_bundle, owned_dir):
    """A container joining another's user namespace (a path, no maps): an idmap mount
    without maps of its own is idmapped through the joined namespace itself (runc 1.2)."""
    first = make_bundle(["sleep", "100"], mutate=userns)
    cid = oci.new_id()
    ok(detached(oci, "create", "--bundle", first.path, cid))  # the init keeps its stdio
    pid = oci.state(cid)["pid"]

    def join(cfg):
        cfg["linux"]["namespaces"].append({"type": "user", "path": f"/proc/{pid}/ns/user"})
    out = ok(run(oci, make_bundle, STAT_OWNERS, join,
                 add_mount("/home", "bind", owned_dir, "rbind", "idmap")))
    assert out.splitlines() == ["/home 0:0", "/home/root-file 0:0", "/home/user-file 1000:1000"]
    ok(oci("delete", "--force", cid))


def test_idmap_read_only_and_file_binds(oci, make_bundle, owned_dir):
    """Flags are applied to the idmapped mount as to any bind (a remount); a file can be
    idmapped too."""
    maps = [{"containerID": 0, "hostID": 5000, "size": 1001}]

    def file_bind(cfg):
        cfg["mounts"].append({"destination": "/etc/idmapped", "type": "bind",
                              "source": str(owned_dir / "user-file"), "options": ["bind", "idmap"],
                              "uidMappings": maps, "gidMappings": maps})
    out = run(oci, make_bundle, "stat -c '%u:%g' /home /etc/idmapped; cat /etc/idmapped; "
              "touch /home/x 2>/dev/null || echo read-only",
              idmapped_mount(owned_dir, maps, maps, "idmap", "ro"), file_bind)
    assert ok(out).split() == ["5000:5000", "6000:6000", "user", "read-only"]
    assert not (owned_dir / "x").exists()
