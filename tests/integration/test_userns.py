"""User namespaces: ID maps as the container and the host see them.

The bundle's rootfs stays owned by host root: under a map of 0 -> 100000 its files show as
nobody (65534) inside, which is expected, and busybox (mode 755) still runs. Host directories
bind-mounted into the container show which host IDs the container's writes get.
"""

import os
import stat
import subprocess
import sys

import pytest

MAP_0 = [{"containerID": 0, "hostID": 100000, "size": 65536}]
TWO_RANGES = [{"containerID": 0, "hostID": 200000, "size": 1000},
              {"containerID": 1000, "hostID": 300000, "size": 1000}]


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def userns(uid_maps=MAP_0, gid_maps=None, network=True):
    """A mutate function: a new user namespace with these maps (and, by default, a netns)."""
    def mutate(cfg):
        linux = cfg["linux"]
        linux["namespaces"] = [ns for ns in linux["namespaces"]
                               if ns["type"] != "network" or network]
        linux["namespaces"].append({"type": "user"})
        linux["uidMappings"] = uid_maps
        linux["gidMappings"] = gid_maps if gid_maps is not None else uid_maps
    return mutate


def bind(cfg, source, destination, *options):
    cfg["mounts"].append({"destination": destination, "type": "bind", "source": str(source),
                          "options": ["rbind", *options]})


def run(oci, make_bundle, script, *mutators, owner=None):
    """Run ``sh -c script``; ``owner``: chown the rootfs to this host ID first (so root in
    the container may create mount points in it, as runc also needs)."""
    def mutate(cfg):
        for fn in mutators:
            fn(cfg)
    b = make_bundle(["sh", "-c", script], mutate=mutate)
    if owner is not None:
        subprocess.run(["chown", "-R", f"{owner}:{owner}", b.rootfs], check=True)
    return oci("run", "--bundle", b.path, oci.new_id())


@pytest.fixture
def shared_dir(tmp_path):
    """A host directory anyone may write to (the container's IDs are unknown to the host)."""
    path = tmp_path / "shared"
    path.mkdir()
    os.chmod(path, 0o1777)
    return path


def test_root_inside_is_mapped(oci, make_bundle):
    out = ok(run(oci, make_bundle, "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map",
                 userns()))
    lines = out.splitlines()
    assert lines[:2] == ["0", "0"]
    assert [line.split() for line in lines[2:]] == [["0", "100000", "65536"]] * 2


def test_host_root_files_show_as_nobody_and_still_run(oci, make_bundle):
    out = ok(run(oci, make_bundle, "stat -c '%u %g %a' /bin/busybox", userns()))
    assert out.split() == ["65534", "65534", "755"]


def test_file_written_to_bind_mount_is_owned_by_mapped_host_id(oci, make_bundle, shared_dir):
    out = ok(run(oci, make_bundle, "echo hi > /data/f && stat -c '%u %g' /data/f",
                 userns(), lambda c: bind(c, shared_dir, "/data", "rw"), owner=100000))
    assert out.split() == ["0", "0"]  # root inside ...
    st = os.stat(shared_dir / "f")
    assert (st.st_uid, st.st_gid) == (100000, 100000)  # ... is 100000 on the host


def test_bind_source_in_host_dir_closed_to_mapped_root(oci, make_bundle, tmp_path):
    # the mapped root (host 100000) may not search this directory; the runtime opens the
    # source with the host's credentials, as runc does
    private = tmp_path / "private"
    (private / "shared").mkdir(parents=True)
    os.chmod(private, 0o700)
    (private / "shared" / "hello").write_text("from the host\n")
    os.chmod(private / "shared" / "hello", 0o644)
    out = ok(run(oci, make_bundle, "cat /data/hello", userns(),
                 lambda c: bind(c, private / "shared", "/data", "ro"), owner=100000))
    assert out == "from the host\n"


def test_mount_point_in_rootfs_not_owned_by_mapped_root_is_refused(oci, make_bundle,
                                                                   shared_dir):
    # the rootfs belongs to host root, which is nobody in the container: like runc, the
    # missing mount point cannot be made, and the error says which one
    out = run(oci, make_bundle, "true", userns(),
              lambda c: bind(c, shared_dir, "/data", "rw"))
    assert out.returncode != 0
    assert "mkdir /data: permission denied" in out.stderr, out.stderr


def test_several_ranges_appear_in_uid_map(oci, make_bundle):
    out = ok(run(oci, make_bundle, "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map",
                 userns(TWO_RANGES)))
    uid_map, gid_map = out.split("--\n")
    want = [["0", "200000", "1000"], ["1000", "300000", "1000"]]
    assert [line.split() for line in uid_map.splitlines()] == want
    assert [line.split() for line in gid_map.splitlines()] == want


def test_user_in_second_range_writes_as_its_host_id(oci, make_bundle, shared_dir):
    def as_user(cfg):
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    out = ok(run(oci, make_bundle, "id -u; id -g; echo x > /data/g",
                 userns(TWO_RANGES), as_user, lambda c: bind(c, shared_dir, "/data", "rw"),
                 owner=200000))
    assert out.split() == ["1000", "1000"]
    st = os.stat(shared_dir / "g")
    assert (st.st_uid, st.st_gid) == (300000, 300000)


def test_additional_gids_in_user_namespace(oci, make_bundle):
    def groups(cfg):
        cfg["process"]["user"] = {"uid": 0, "gid": 0, "additionalGids": [10, 1000]}
    out = ok(run(oci, make_bundle, "id -G; cat /proc/self/setgroups", userns(), groups))
    gids, setgroups = out.splitlines()
    assert sorted(int(g) for g in gids.split()) == [0, 10, 1000]
    assert setgroups == "allow"  # the runtime wrote the maps with CAP_SETGID on the host


def test_root_inside_cannot_read_host_root_private_file(oci, make_bundle, tmp_path):
    host = tmp_path / "hostdir"
    host.mkdir()
    os.chmod(host, 0o755)
    secret = host / "secret"
    secret.write_text("host secret\n")
    os.chmod(secret, 0o600)
    os.chown(secret, 0, 0)
    out = run(oci, make_bundle,
              "stat -c '%u %a' /h/secret; cat /h/secret; echo rc=$?; "
              "chown 0:0 /h/secret; echo rc=$?; echo pwn > /h/new; echo rc=$?",
              userns(), lambda c: bind(c, host, "/h", "rw"), owner=100000)
    assert "host secret" not in out.stdout
    lines = out.stdout.splitlines()
    assert lines[0] == "65534 600"  # host root is not in the map: it is nobody inside
    assert lines[1:] == ["rc=1"] * 3, out.stdout
    assert "Permission denied" in out.stderr
    assert not (host / "new").exists()
    assert secret.read_text() == "host secret\n"


def test_sysfs_without_own_netns_is_read_only_host_bind(oci, make_bundle):
    out = ok(run(oci, make_bundle,
                 "grep ' /sys ' /proc/self/mountinfo; echo --; ls /sys/class/net; echo --; "
                 "grep -c ' /sys/kernel/' /proc/self/mountinfo; "
                 "touch /sys/kernel/x 2>&1; echo rc=$?",
                 userns(network=False)))
    mount, links, rest = out.split("--\n")
    options = mount.split()[5].split(",")
    assert "ro" in options, mount
    # the host's links, because it is the host's /sys (the container shares its netns)
    assert sorted(links.split()) == sorted(os.listdir("/sys/class/net"))
    assert "Read-only file system" in rest and rest.strip().endswith("rc=1"), rest


def test_sysfs_submounts_of_the_host_bind_are_read_only_too(oci, make_bundle):
    out = ok(run(oci, make_bundle, "awk '$5 ~ \"^/sys/kernel\" {print $5, $6}' "
                 "/proc/self/mountinfo", userns(network=False)))
    # whatever the host has under /sys/kernel (debugfs, securityfs, tracefs...) is sealed
    for line in out.splitlines():
        point, options = line.split()
        assert "ro" in options.split(","), line


def test_sysfs_with_own_netns_is_a_real_sysfs(oci, make_bundle):
    out = ok(run(oci, make_bundle,
                 "grep ' /sys ' /proc/self/mountinfo; echo --; ls /sys/class/net",
                 userns(network=True)))
    mount, links = out.split("--\n")
    assert mount.split(" - ")[1].split()[0] == "sysfs"
    assert links.split() == ["lo"]  # the container's own network namespace


def test_new_user_namespace_without_mappings_is_refused(oci, make_bundle):
    def no_maps(cfg):
        userns()(cfg)
        del cfg["linux"]["uidMappings"]
    out = run(oci, make_bundle, "true", no_maps)
    assert out.returncode != 0
    assert "linux.uidMappings" in out.stderr and "user namespace" in out.stderr, out.stderr


def test_mapping_without_user_namespace_is_refused(oci, make_bundle):
    def maps_only(cfg):
        cfg["linux"]["uidMappings"] = MAP_0
        cfg["linux"]["gidMappings"] = MAP_0
    out = run(oci, make_bundle, "true", maps_only)
    assert out.returncode != 0
    assert "no user namespace" in out.stderr, out.stderr


def test_device_in_user_namespace_is_a_bind_of_the_host_node(oci, make_bundle):
    out = ok(run(oci, make_bundle,
                 "stat -c '%F %t:%T' /dev/null; grep ' /dev/null ' /proc/self/mountinfo",
                 userns()))
    first, mount = out.splitlines()
    assert first == "character special file 1:3"
    assert mount  # mknod is not allowed in a user namespace: the node is bind-mounted


def test_owner_of_devices_in_user_namespace(oci, make_bundle):
    out = ok(run(oci, make_bundle, "stat -c '%u' /dev/null; echo x > /dev/null; echo rc=$?",
                 userns()))
    uid, rc = out.split()
    assert uid == "65534"  # the host's node, owned by host root
    assert rc == "rc=0"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


# --- a host-made network namespace, joined by a user-namespaced container -------------------

@pytest.fixture
def host_netns():
    """A named network namespace made on the host (owned by the host's user namespace), as
    kago.network or `ip netns add` makes them."""
    name = f"kagotest-uns-{os.urandom(3).hex()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def oci_path():
    return os.path.join(os.path.dirname(sys.executable), "kago-oci")


def join_netns(path):
    def mutate(cfg):
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = path
    return mutate


def test_exec_joins_a_host_owned_netns_and_the_user_namespace(oci, make_bundle, host_netns):
    """create + start + exec of a user-namespaced container on a host-made netns.

    Two bugs found here: the exec fifo was 0600 (mkfifo's mode minus the umask), so the
    container's root, an unprivileged host ID, could not open it and the init died at start;
    and exec joined the user namespace first, after which the host-owned network namespace
    can no longer be entered (EPERM)."""
    def mutate(cfg):
        userns()(cfg)
        join_netns(host_netns)(cfg)
    b = make_bundle(["sleep", "30"], mutate=mutate)
    cid = oci.new_id()
    # the container keeps its stdio: not pipes, or create's caller would wait for their end
    created = subprocess.run(
        [oci_path(), "--root", oci.root, "create", "--bundle", b.path, cid],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        timeout=30)
    assert created.returncode == 0
    try:
        ok(oci("start", cid))
        inode = os.stat(host_netns).st_ino
        out = ok(oci("exec", cid, "sh", "-c",
                     "readlink /proc/self/ns/net; id -u; cat /proc/self/uid_map"))
        net, uid, uid_map = out.split("\n", 2)
        assert net == f"net:[{inode}]"
        assert uid == "0" and uid_map.split()[:3] == ["0", "100000", "65536"]
    finally:
        oci("delete", "-f", cid)


def test_rootfs_under_a_directory_closed_to_others_is_a_clear_error(oci, make_bundle):
    # root in the user namespace is an unprivileged host ID: it cannot pass a 0700 bundle
    b = make_bundle(["true"], mutate=userns())
    os.chmod(b.path, 0o700)
    try:
        out = oci("run", "--bundle", b.path, oci.new_id())
    finally:
        os.chmod(b.path, 0o755)
    assert out.returncode == 1
    line, = out.stderr.strip().splitlines()
    assert b.path in line and "permission denied" in line, line
    assert "searchable by others" in line and "[Errno" not in line, line
