"""A container that joins another's user namespace (``linux.namespaces`` user with a path).

runc's nsexec stage 2 makes the init root of whatever user namespace it is in (setuid(0),
setgid(0), setgroups): in a joined one too, so what it creates has mapped owners.
"""

from test_lifecycle import detached

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def userns(cfg):
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = MAP
    cfg["linux"]["gidMappings"] = MAP


def test_joined_user_namespace_is_entered_as_its_root(oci, make_bundle):
    first = make_bundle(["sleep", "100"], mutate=userns)
    cid = oci.new_id()
    proc = detached(oci, "create", "--bundle", first.path, cid)  # the init keeps its stdio
    assert proc.returncode == 0, proc.stderr
    pid = oci.state(cid)["pid"]

    def join(cfg):
        cfg["linux"]["namespaces"].append({"type": "user", "path": f"/proc/{pid}/ns/user"})
    second = make_bundle(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map"], mutate=join)
    out = oci("run", "--bundle", second.path, oci.new_id())
    assert out.returncode == 0, out.stderr
    uid, gid, uid_map = out.stdout.splitlines()
    assert (uid, gid, uid_map.split()) == ("0", "0", ["0", "100000", "65536"])
    assert oci("delete", "--force", cid).returncode == 0
