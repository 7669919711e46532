"""kago-oci as an unprivileged user, as runc runs rootless and as rootless podman drives it.

A throwaway user (kago.testing.throwaway_user) with a subuid/subgid range runs kago-oci with
specs from ``kago-oci spec --rootless`` (its own ID mapped to root) and with a newuidmap
range, and podman as that user runs its containers with ``--runtime kago-oci``. The user,
its ID lines, its /run/user directory, its processes and podman's storage in its home are
removed afterwards, failures included, and the module checks that nothing of it is left.
"""

import json
import os
import time

import pytest

from conftest import KAGO_OCI, IS_ROOT, throwaway_user

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="creates a throwaway user: needs root")
needs_uidmap = pytest.mark.skipif(not os.path.exists("/usr/bin/newuidmap"),
                                  reason="uidmap (newuidmap/newgidmap) is not installed")
PODMAN = "/usr/bin/podman"
IMAGE = "localhost/kago-rootless-busybox"


@pytest.fixture(scope="module")
def user():
    yield from throwaway_user(subids=True)


@pytest.fixture(scope="module")
def nosub_user():
    """A user with no /etc/subuid or /etc/subgid entry."""
    yield from throwaway_user(subids=False)


class Oci:
    def __init__(self, user):
        self.user = user
        self.n = 0

    def __call__(self, *args, timeout=60):
        return self.user.run([KAGO_OCI, *map(str, args)], timeout=timeout,
                             detached="create" in args)

    def new_id(self):
        self.n += 1
        return f"rl-{os.getpid()}-{self.n}"

    def bundle(self, args, mutate=None, name=None):
        """A busybox bundle in the user's home, owned by the user, with the config
        ``kago-oci spec --rootless`` wrote as that user."""
        from kago.testing import busybox
        path = os.path.join(self.user.home, name or f"b{self.n}-{len(args)}-{time.monotonic_ns()}")
        os.makedirs(path)
        self.user.chown(path)
        made = self("spec", "--rootless", "--bundle", path)
        assert made.returncode == 0, made.stderr
        with open(os.path.join(path, "config.json")) as f:
            spec = json.load(f)
        spec["process"]["args"] = list(args)
        spec["process"]["terminal"] = False
        if mutate:
            mutate(spec)
        os.unlink(os.path.join(path, "config.json"))
        busybox.build_bundle(path, config=spec,
                             cache_dir=os.path.join(self.user.home, ".cache-busybox"))
        self.user.chown(path)
        return path


@pytest.fixture(scope="module")
def oci(user):
    return Oci(user)


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def state_dir(user):
    return os.path.join(user.runtime_dir, "kago")


def test_spec_rootless_maps_the_callers_own_ids(user, oci):
    path = oci.bundle(["true"])
    with open(os.path.join(path, "config.json")) as f:
        linux = json.load(f)["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": user.gid, "size": 1}]
    assert {"type": "user"} in linux["namespaces"]
    assert {"type": "network"} not in linux["namespaces"]


def test_run_with_a_single_id_map(user, oci):
    path = oci.bundle(["sh", "-c", "id -u; cat /proc/self/uid_map; cat /proc/self/setgroups; "
                       "ls -ln /dev/null; hostname; echo $$"])
    out = ok(oci("run", "--bundle", path, oci.new_id())).split("\n")
    assert out[0] == "0"
    assert out[1].split() == ["0", str(user.uid), "1"]
    assert out[2] == "deny"  # the kernel requires it for an unprivileged gid_map
    assert out[3].startswith("crw-rw-rw-")  # the host's node, bound (no mknod rootless)
    assert out[4] == "kago"
    assert out[5] == "1"


def test_create_start_state_kill_delete_keep_state_under_xdg_runtime_dir(user, oci):
    path = oci.bundle(["sleep", "60"])
    cid = oci.new_id()
    ok(oci("create", "--bundle", path, cid))
    record = os.path.join(state_dir(user), cid, "state.json")
    assert os.stat(record).st_uid == user.uid
    assert json.loads(ok(oci("state", cid)))["status"] == "created"
    ok(oci("start", cid))
    state = json.loads(ok(oci("state", cid)))
    assert state["status"] == "running"
    with open(f"/proc/{state['pid']}/status") as f:
        uid_line = next(line for line in f if line.startswith("Uid:"))
    assert uid_line.split()[1] == str(user.uid)  # root inside is the user outside
    assert cid in ok(oci("list", "-q")).split()
    # exec joins its user namespace, where setgroups is denied (a single-ID map)
    out = ok(oci("exec", cid, "sh", "-c", "id -u; cat /proc/self/setgroups")).split()
    assert out == ["0", "deny"]
    if not _delegated(user):
        paused = oci("pause", cid)
        assert paused.returncode == 1
        assert "has no cgroup" in paused.stderr and "delegate a cgroup v2" in paused.stderr
    ok(oci("kill", cid, "KILL"))
    for _ in range(100):
        if json.loads(ok(oci("state", cid)))["status"] == "stopped":
            break
        time.sleep(0.05)
    assert json.loads(ok(oci("state", cid)))["status"] == "stopped"
    ok(oci("delete", cid))
    assert not os.path.exists(os.path.join(state_dir(user), cid))
    assert not os.path.exists(f"/run/kago/{cid}")


@needs_uidmap
def test_run_with_a_newuidmap_range(user, oci):
    start, count = user.subids

    def ranges(spec):
        for key, own in (("uidMappings", user.uid), ("gidMappings", user.gid)):
            spec["linux"][key] = [{"containerID": 0, "hostID": own, "size": 1},
                                  {"containerID": 1, "hostID": start, "size": count}]
        for caps in spec["process"]["capabilities"].values():
            caps.append("CAP_CHOWN")  # root of the namespace gives a file to ID 1000
    path = oci.bundle(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map "
                       "/proc/self/setgroups; touch /tmp/f; chown 1000:1000 /tmp/f; "
                       "ls -ln /tmp/f"], mutate=ranges)
    with open(os.path.join(path, "config.json")) as f:
        spec = json.load(f)
    spec["root"]["readonly"] = False
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(spec, f)
    lines = ok(oci("run", "--bundle", path, oci.new_id())).splitlines()
    assert [line.split() for line in lines[:4]] == [
        ["0", str(user.uid), "1"], ["1", str(start), str(count)],
        ["0", str(user.gid), "1"], ["1", str(start), str(count)]]
    assert lines[4] == "allow"  # newgidmap keeps setgroups allowed
    assert lines[5].split()[2:4] == ["1000", "1000"]
    # on the host, ID 1000 inside is subuid start + 999
    assert os.stat(os.path.join(path, "rootfs/tmp/f")).st_uid == start + 999


def test_limits_are_skipped_with_one_warning_where_cgroups_are_not_delegated(user, oci):
    def limits(spec):
        spec["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}
    path = oci.bundle(["sh", "-c", "echo ran"], mutate=limits)
    proc = oci("run", "--bundle", path, oci.new_id())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ran\n"
    if _delegated(user):
        pytest.skip("this host delegates a cgroup v2 subtree to the user: limits apply")
    warnings = [line for line in proc.stderr.splitlines() if "level=warning" in line]
    assert len(warnings) == 1, proc.stderr
    assert "rootless" in warnings[0] and "not applied" in warnings[0]
    assert "Delegate=yes" in warnings[0]


@pytest.fixture
def delegated(user):
    """A cgroup v2 subtree delegated to the user (kago.testing.delegated_cgroup: memory and
    pids enabled for its children), with a ``runner`` leaf for the user's commands; removed
    afterwards. Only on a pure v2 host whose root enables both."""
    from kago.testing import delegated_cgroup
    why = delegated_cgroup.unavailable(("memory", "pids"))
    if why:
        pytest.skip(why)
    with delegated_cgroup.delegated(user.uid, user.gid) as top:
        yield top


def test_limits_apply_in_a_delegated_v2_subtree(user, oci, delegated):
    def limits(spec):
        spec["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}}
    path = oci.bundle(["sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max "
                       "/sys/fs/cgroup/pids.max"], mutate=limits)
    cid = oci.new_id()
    proc = user.run([KAGO_OCI, "run", "--bundle", path, cid], cgroup=f"{delegated}/runner")
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    # no cgroupsPath: runc's rootless default, beside the caller's cgroup (under its parent)
    assert proc.stdout.splitlines() == ["0::/", str(64 << 20), "50"]
    assert sorted(os.listdir(delegated)) == sorted(
        n for n in os.listdir(delegated) if not n.startswith("kago-")), "cgroup left"


def _delegated(user):
    """Whether the user may create cgroups where kago-oci would put the container's."""
    top = "/sys/fs/cgroup"
    return os.access(top, os.W_OK) and os.stat(top).st_uid == user.uid


def test_explicit_rootless_false_fails_on_cgroups_the_user_cannot_write(user, oci):
    path = oci.bundle(["true"])
    proc = oci("--rootless", "false", "run", "--bundle", path, oci.new_id())
    if proc.returncode == 0:
        pytest.skip("the user may write this host's cgroups")
    assert "permission denied" in proc.stderr and "cgroup" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# --- bad input: one line naming the fix ---------------------------------------------------

def test_no_user_namespace_is_refused_with_the_fix(oci):
    def host_userns(spec):
        spec["linux"]["namespaces"] = [ns for ns in spec["linux"]["namespaces"]
                                       if ns["type"] != "user"]
        del spec["linux"]["uidMappings"], spec["linux"]["gidMappings"]
    path = oci.bundle(["true"], mutate=host_userns)
    proc = oci("run", "--bundle", path, oci.new_id())
    assert proc.returncode == 1
    assert "needs a user namespace" in proc.stderr and "spec --rootless" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_range_outside_the_users_subuids_is_refused(user, oci):
    start, count = user.subids

    def outside(spec):
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": start + count,
                                         "size": 10}]
    path = oci.bundle(["true"], mutate=outside)
    proc = oci("run", "--bundle", path, oci.new_id())
    assert proc.returncode == 1
    assert "outside user" in proc.stderr and "/etc/subuid" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_user_without_subuid_entry_is_told_to_add_one(nosub_user):
    oci = Oci(nosub_user)

    def ranges(spec):
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 100}]
    path = oci.bundle(["true"], mutate=ranges)
    proc = oci("run", "--bundle", path, oci.new_id())
    assert proc.returncode == 1
    assert "usermod --add-subuids 300000-300099" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # its own single ID needs no entry
    ok(Oci(nosub_user)("run", "--bundle", Oci(nosub_user).bundle(["true"]), "own-id"))


def test_a_state_root_the_user_cannot_create_names_the_fix(user, oci):
    path = oci.bundle(["true"])
    proc = user.run([KAGO_OCI, "run", "--bundle", path, oci.new_id()],
                    env=user.env(XDG_RUNTIME_DIR="/run/kago-nobody-has-this/x"))
    assert proc.returncode == 1
    assert "cannot create /run/kago-nobody-has-this" in proc.stderr
    assert "pass --root DIR, or set XDG_RUNTIME_DIR" in proc.stderr
    assert not os.path.exists("/run/kago-nobody-has-this")


def test_bad_rootless_flag(oci):
    proc = oci("--rootless", "maybe", "state", "x")
    assert proc.returncode == 1
    assert "invalid --rootless value 'maybe'" in proc.stderr


# --- podman as the user, with --runtime kago-oci -------------------------------------------

@pytest.fixture(scope="module")
def podman(user):
    if not os.path.exists(PODMAN):
        pytest.skip("podman is not installed")
    if not os.path.exists("/usr/bin/newuidmap"):
        pytest.skip("rootless podman needs newuidmap (uidmap is not installed)")
    from kago.testing import busybox
    rootfs = busybox.cached_rootfs(os.path.join(user.home, ".cache-busybox"))
    user.chown(os.path.join(user.home, ".cache-busybox"))
    base = [PODMAN, "--events-backend", "file", "--cgroup-manager", "cgroupfs"]
    imported = user.run(["sh", "-c", f"tar -C {rootfs} -cf - . | "
                         f"{' '.join(base)} import - {IMAGE}"], timeout=120)
    assert imported.returncode == 0, imported.stderr

    def podman(*args, timeout=60):
        return user.run([*base, "--runtime", KAGO_OCI, *map(str, args)], timeout=timeout)
    yield podman
    podman("rm", "-af", "-t", "0")


def test_podman_run_rm_id(podman, user):
    out = ok(podman("run", "--rm", "--network", "none", IMAGE, "sh", "-c",
                    "id -u; cat /proc/self/uid_map; echo $$"))
    lines = out.splitlines()
    assert lines[0] == "0"
    assert lines[1].split()[:2] == ["0", str(user.uid)]  # podman's map: root is the user
    assert lines[-1] == "1"
    assert os.listdir(state_dir(user)) in ([], ["@seccomp"])


def test_podman_run_d_exec_stop_rm(podman, user):
    name = "rl-web"
    cid = ok(podman("run", "-d", "--name", name, "--network", "none", IMAGE,
                    "sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done")).strip()
    try:
        assert os.path.isdir(os.path.join(state_dir(user), cid))
        out = ok(podman("exec", name, "sh", "-c", "echo $$; ps -o pid,comm"))
        assert "sleep" in out or "sh" in out
        ok(podman("stop", "-t", "5", name))
        inspect = json.loads(ok(podman("inspect", name)))
        assert inspect[0]["State"]["ExitCode"] == 3
    finally:
        podman("rm", "-f", "-t", "0", name)
    assert not os.path.exists(os.path.join(state_dir(user), cid))
    assert name not in ok(podman("ps", "-a", "--format", "{{.Names}}"))


def test_spec_rootless_is_runcs_field_by_field(user, oci):
    """As the user, ``kago-oci spec --rootless`` and ``runc spec --rootless`` write the same
    document but for kago's ociVersion and hostname."""
    runc = "/usr/sbin/runc" if os.path.exists("/usr/sbin/runc") else "/usr/bin/runc"
    if not os.path.exists(runc):
        pytest.skip("runc is not installed")
    specs = {}
    for tool, argv in (("kago", [KAGO_OCI, "spec", "--rootless"]),
                       ("runc", [runc, "spec", "--rootless"])):
        d = os.path.join(user.home, f"spec-{tool}")
        os.makedirs(d)
        user.chown(d)
        ok(user.run(argv, cwd=d))
        with open(os.path.join(d, "config.json")) as f:
            specs[tool] = json.load(f)
    for spec in specs.values():
        spec.pop("ociVersion")
        spec.pop("hostname")
    assert specs["kago"] == specs["runc"]
    assert specs["kago"]["linux"]["uidMappings"][0]["hostID"] == user.uid
