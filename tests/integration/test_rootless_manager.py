"""kago, the manager, as an unprivileged user: every command joins the user's holder (a pause
process owning a user namespace that maps the user to 0 and its subordinate IDs to 1..N, a
mount and a network namespace) and runs as root there, with per-user paths.

A throwaway user (kago.testing.throwaway_user) with a 65536-ID subuid/subgid range imports
busybox, runs, execs, logs, stops and removes containers, commits one, brings up a definition
with ID ranges inside its allocation, and gets one line for bad input. After each test the
holder has gone (the supervisor's idle timeout is 1 s), with no process of the user left, and
no file in its directories owned by host root. The user and everything it made are removed
afterwards, failures included.
"""

import json
import os
import time

import pytest

from conftest import IS_ROOT, throwaway_user

pytestmark = [pytest.mark.skipif(not IS_ROOT, reason="creates a throwaway user: needs root"),
              pytest.mark.skipif(not os.path.exists("/usr/bin/newuidmap"),
                                 reason="uidmap (newuidmap/newgidmap) is not installed")]
import sys  # noqa: E402

KAGO = os.path.join(os.path.dirname(sys.executable), "kago")


@pytest.fixture(scope="module")
def user(rootfs_cache):
    for u in throwaway_user(subids=True):
        tarball = os.path.join(u.home, "busybox.tar")
        import subprocess
        subprocess.run(["tar", "-C", rootfs_cache, "-cf", tarball, "."], check=True)
        u.chown(tarball)
        yield u


@pytest.fixture(scope="module")
def nosub_user():
    yield from throwaway_user(subids=False)


class Kago:
    def __init__(self, user):
        self.user = user

    def __call__(self, *args, timeout=60, env=None, cgroup=None):
        return self.user.run([KAGO, *map(str, args)], timeout=timeout, cgroup=cgroup,
                             env=env or self.user.env(KAGO_SUPERVISOR_IDLE="1"))

    def ok(self, *args, **kw):
        proc = self(*args, **kw)
        assert proc.returncode == 0, f"kago {' '.join(map(str, args))}: {proc.stderr}"
        return proc.stdout

    def pid(self, name):
        return json.loads(self.ok("inspect", name))[0]["State"]["Pid"]

    @property
    def root(self):
        return os.path.join(self.user.home, ".local", "share", "kago")

    @property
    def runroot(self):
        return os.path.join(self.user.runtime_dir, "kago", "manager")

    def holder_pid(self):
        try:
            with open(os.path.join(self.runroot, "holder.pid")) as f:
                return int(f.read().split()[0])
        except FileNotFoundError:
            return None


@pytest.fixture(scope="module")
def kago(user):
    k = Kago(user)
    k.ok("import", "busybox.tar", "busybox")
    return k


@pytest.fixture
def after(kago, user):
    """After the test: the holder and every process of the user gone, nothing of host root's
    in the user's directories."""
    yield
    for cid in kago.ok("ps", "-a", "-q").split():
        kago("rm", "-f", cid)
    _gone(user)
    left = [p for top in (user.home, user.runtime_dir) for p in _owned_by_root(top)]
    assert not left, f"root-owned files in the user's directories: {left[:5]}"


def _gone(user, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # the supervisor idles out in 1 s, then the holder
        pids = [p for p in user.pids() if _state(p) not in ("Z", None)]
        if not pids:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of the user left: {[_cmdline(p) for p in pids]}")


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0]
    except OSError:
        return None


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()[:80]
    except OSError:
        return str(pid)


def _owned_by_root(top):
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            try:
                if os.lstat(path).st_uid == 0:
                    yield path
            except FileNotFoundError:
                continue


def _host_uid(pid):
    """The real UID of ``pid`` on the host, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def test_run_exec_logs_stop_rm_as_the_user(kago, user, after):
    kago.ok("run", "-d", "--name", "web", "busybox", "sh", "-c",
            "echo hello-from-web; exec sleep 100")
    assert kago.ok("exec", "web", "id").startswith("uid=0(root) gid=0(root)")
    # no user namespace of its own: the holder's, inside 0 the user, 1.. its subuids
    assert kago.ok("exec", "web", "cat", "/proc/self/uid_map").split() == [
        "0", str(user.uid), "1", "1", str(user.subids[0]), str(user.subids[1])]
    pid = kago.pid("web")
    assert _host_uid(pid) == user.uid  # root of the user's namespace is the user
    deadline = time.monotonic() + 5
    while "hello-from-web" not in kago.ok("logs", "web") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "hello-from-web" in kago.ok("logs", "web")
    assert "web" in kago.ok("ps")
    # the paths are the user's
    assert os.path.isdir(os.path.join(kago.root, "containers"))
    assert os.path.exists(os.path.join(kago.runroot, "supervisor.sock"))
    holder = kago.holder_pid()
    assert holder and _cmdline(holder).startswith("kago-holder")
    info = kago.ok("info")
    assert f"Kago Root Dir: {kago.root}\n" in info
    assert (f"Rootless: yes (host uid {user.uid}, 65536 subordinate UIDs, 65536 GIDs; "
            f"holder pid {holder})") in info
    cid = kago.ok("inspect", "-f", "{{.Id}}", "web").strip()
    kago.ok("run", "-d", "--name", "keep", "busybox", "sleep", "100")  # the holder stays
    kago.ok("stop", "-t", "1", "web")
    kago.ok("rm", "web")
    with open(f"/proc/{holder}/mountinfo") as f:
        points = [line.split()[4] for line in f]
    # the container's rootfs and network namespace file went with it
    assert len(cid) == 64 and [p for p in points if cid in p] == []
    assert [p for p in points if kago.ok("inspect", "-f", "{{.Id}}", "keep").strip() in p]
    kago.ok("rm", "-f", "keep")
    _gone(user)
    assert kago.holder_pid() is None


def test_userns_auto_and_commit_own_files_by_subordinate_ids(kago, user, after):
    kago.ok("run", "-d", "--name", "u", "--userns=auto:size=2000", "busybox", "sleep", "100")
    assert kago.ok("exec", "u", "cat", "/proc/self/uid_map").split() == ["0", "1", "2000"]
    start = user.subids[0]
    assert _host_uid(kago.pid("u")) == start  # inside 1 of the holder: the first subuid
    kago.ok("exec", "u", "sh", "-c", "echo made > /made && mkdir /d && chown 1234:55 /d"
            " && rm -rf /home && mkdir /home")  # an opaque directory (user.overlay.opaque)
    changes = kago.ok("diff", "u").split("\n")
    assert "A /made" in changes and "A /d" in changes and "C /home" in changes
    # the chown shift's whole copy-ups of unchanged files are no change
    assert not [line for line in changes if line.startswith("C /bin/")]
    kago.ok("commit", "u", "snap")
    out = kago.ok("run", "--rm", "--network", "none", "snap", "sh", "-c",
                  "cat /made; stat -c %u:%g /d; ls -A /home | wc -l")
    assert out.split() == ["made", "1234:55", "0"]
    kago.ok("rm", "-f", "u")
    kago.ok("rmi", "snap")


def test_up_with_id_ranges_and_names_between_containers(kago, user, after):
    path = os.path.join(user.home, "two.py")
    with open(path, "w") as f:
        f.write('from kago.manager.define import Container, id_range\n'
                'for i in range(2):\n'
                '    Container(f"rl-{i}", image="busybox", stop_signal="SIGKILL",\n'
                '              ids=id_range(2000 + i * 2000, 2000), command=["sh", "-c",\n'
                '              "mkdir /www && echo hi-$(hostname) > /www/index.html && "\n'
                '              "exec httpd -f -p 8080 -u 33:33 -h /www"])\n')
    user.chown(path)
    kago.ok("up", "two.py")
    assert kago.ok("exec", "rl-0", "wget", "-qO-", "http://rl-1:8080/").strip().startswith(
        "hi-")
    # the worker, 33 inside rl-1, is 4033 of the user's namespace: subuid start + 4032
    start = user.subids[0]
    uids = {_host_uid(int(p)) for p in os.listdir("/proc") if p.isdigit()
            and _cmdline(p).startswith("httpd -f -p 8080 -u 33:33")}
    assert {start + 2000 + 32, start + 4000 + 32} <= uids
    kago.ok("down", "two.py")


def test_range_beyond_the_allocation_is_one_line(kago, user, after):
    proc = kago("run", "--uidmap", "0:808000:100", "busybox", "true")
    assert proc.returncode == 125
    assert proc.stderr.count("\n") == 1
    assert ("uid range 808000-808099 needs 808099 subordinate IDs; user "
            f"{user.name} has 65536 in /etc/subuid: add more (usermod --add-subuids") \
        in proc.stderr
    assert kago.ok("ps", "-a", "-q").strip() == ""


def test_limits_are_skipped_with_one_warning_and_stats_says_so(kago, user, after):
    proc = kago("run", "-d", "--name", "lim", "-m", "64m", "--cpus", "0.5", "busybox",
                "sleep", "100")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("without its resource limits") == 1
    proc = kago("stats", "--no-stream")
    assert proc.returncode == 0, proc.stderr
    row = [line for line in proc.stdout.splitlines() if " lim " in line]
    assert row and " -- " in row[0]
    assert "kago: stats: lim: usage and limits unavailable" in proc.stderr
    kago.ok("rm", "-f", "lim")


def test_info_says_no_controllers_where_none_are_delegated(kago, user, after):
    lines = kago.ok("info").splitlines()
    line = next(x for x in lines if x.startswith("Cgroup Controllers:"))
    assert line.startswith("Cgroup Controllers: none (this host delegates no cgroup v2 "
                           "subtree to the user: "), line
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        assert "hybrid" in line


def _delegated_or_skip(controllers):
    from kago.testing import delegated_cgroup
    why = delegated_cgroup.unavailable(controllers)
    if why:
        pytest.skip(f"{why}: no delegated cgroup v2 subtree can be made")
    return delegated_cgroup


def _cgroup_of(kago, name, cgroup):
    path = json.loads(kago.ok("inspect", name, cgroup=cgroup))[0]["Kago"]["CgroupsPath"]
    return "/sys/fs/cgroup" + path


def test_limits_apply_in_a_delegated_v2_subtree(kago, user, after):
    """The user's commands start in a leaf of a delegated subtree: the container's cgroup is
    made beside it, its limits apply, stats reads it, rm removes it."""
    D = _delegated_or_skip(("memory", "pids", "cpu"))
    with D.delegated(user.uid, user.gid, ("memory", "pids")) as top:
        runner = f"{top}/runner"
        info = kago.ok("info", cgroup=runner).splitlines()
        line = next(x for x in info if x.startswith("Cgroup Controllers:"))
        assert line.endswith(f"(delegated at {top})"), line
        assert {"cpu", "memory", "pids"} <= set(line.split("(")[0].split()[2:]), line
        proc = kago("run", "-d", "--name", "lim", "--memory", "32m", "--pids-limit", "50",
                    "--cpus", "0.5", "busybox", "sleep", "100", cgroup=runner)
        assert proc.returncode == 0, proc.stderr
        assert "warning" not in proc.stderr, proc.stderr
        cgroup = _cgroup_of(kago, "lim", runner)
        assert os.path.dirname(cgroup) == top, cgroup  # beside the runner leaf
        with open(f"{cgroup}/cgroup.procs") as f:
            assert str(kago.pid("lim")) in f.read().split()
        for file, want in (("memory.max", str(32 << 20)), ("pids.max", "50"),
                           ("cpu.max", "50000 100000")):
            with open(f"{cgroup}/{file}") as f:
                assert f.read().strip() == want, file
        with open(f"{top}/runner/cgroup.procs") as f:  # the holder and supervisor stay there
            assert f.read().split()
        proc = kago("stats", "--no-stream", cgroup=runner)
        assert proc.returncode == 0, proc.stderr
        row = next(x for x in proc.stdout.splitlines() if " lim " in x)
        assert "/ 32MiB" in row and " -- " not in row, row
        assert "unavailable" not in proc.stderr
        kago.ok("update", "--memory", "48m", "lim", cgroup=runner)
        with open(f"{cgroup}/memory.max") as f:
            assert f.read().strip() == str(48 << 20)
        kago.ok("rm", "-f", "lim", cgroup=runner)
        assert not os.path.exists(cgroup)
        # a definition's cgroup settings, under its cgroup parent inside the subtree
        path = os.path.join(user.home, "lim.py")
        with open(path, "w") as f:
            f.write('from kago.manager.define import Container\n'
                    'Container("dlim", image="busybox", stop_signal="SIGKILL",\n'
                    '          cgroup={"pids.max": "30"}, memory="24m",\n'
                    '          cgroup_parent="/web", command=["sleep", "100"])\n')
        user.chown(path)
        kago.ok("up", "lim.py", cgroup=runner)
        cgroup = _cgroup_of(kago, "dlim", runner)
        assert os.path.dirname(cgroup) == f"{top}/web", cgroup
        for file, want in (("memory.max", str(24 << 20)), ("pids.max", "30")):
            with open(f"{cgroup}/{file}") as f:
                assert f.read().strip() == want, file
        kago.ok("down", "lim.py", cgroup=runner)
        assert not os.path.exists(cgroup)
        _gone(user)  # the supervisor idles out, then the holder
        # the subtree as made (the cgroup parent the runtime made, removed with its last child)
        assert [n for n in os.listdir(top) if os.path.isdir(f"{top}/{n}")] == ["runner"]


def test_a_limit_of_a_controller_not_handed_down_is_dropped_with_one_warning(kago, user, after):
    D = _delegated_or_skip(("memory", "pids", "cpu"))
    with D.delegated(user.uid, user.gid, ("memory", "pids"), handed=("memory", "pids")) as top:
        runner = f"{top}/runner"
        proc = kago("run", "-d", "--name", "lim", "--memory", "32m", "--cpus", "0.5",
                    "busybox", "sleep", "100", cgroup=runner)
        assert proc.returncode == 0, proc.stderr
        warnings = [x for x in proc.stderr.splitlines() if "warning" in x]
        assert len(warnings) == 1 and "no cpu controller" in warnings[0], proc.stderr
        cgroup = _cgroup_of(kago, "lim", runner)
        with open(f"{cgroup}/memory.max") as f:
            assert f.read().strip() == str(32 << 20)
        assert not os.path.exists(f"{cgroup}/cpu.max")
        kago.ok("rm", "-f", "lim", cgroup=runner)
        assert not os.path.exists(cgroup)
        _gone(user)


def test_network_none_and_host(kago, user, after):
    out = kago.ok("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    # a help flag of the container's command is the command's, not kago's
    assert kago.ok("run", "--rm", "--network", "none", "busybox", "echo", "-h") == "-h\n"
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]
    # host: the holder's network namespace (its loopback; kago0 once the default network
    # exists), not the host's
    out = kago.ok("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
    names = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
    host = {n for n in os.listdir("/sys/class/net")}
    # tap0: slirp4netns's way out of it
    assert {"lo", "tap0"} <= names and not (names - {"lo", "kago0", "tap0"}) and names != host


def _get(port, timeout=10):
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as r:
        return r.read()


def _answers(port, want, timeout=30):
    """Whether 127.0.0.1:port answers ``want`` within ``timeout`` s (httpd starting, emulation)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _get(port, timeout=5) == want:
                return True
        except OSError:
            time.sleep(0.1)
    return False


def test_a_published_port_answers_on_the_hosts_loopback_until_rm(kago, user, after):
    from kago.testing.holder_net import free_ports
    port, = free_ports(range(18000, 18100), 1) or pytest.skip("no free port in 18000-18099")
    kago.ok("run", "-d", "--name", "pub", "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c",
            "mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www")
    assert _answers(port, b"published\n")
    slirp = os.path.join(kago.runroot, "slirp4netns.pid")
    with open(slirp) as f:
        assert "slirp4netns --configure" in _cmdline(int(f.read()))
    # slirp4netns killed: the next command connects the holder again and forwards the port anew
    with open(slirp) as f:
        os.kill(int(f.read()), 9)
    assert "pub" in kago.ok("ps")
    assert _answers(port, b"published\n")
    kago.ok("rm", "-f", "pub")
    with pytest.raises(OSError):
        _get(port, timeout=2)
    _gone(user)  # the holder, and its slirp4netns with it: its files removed
    assert not os.path.exists(slirp)


def test_the_console_of_a_user_answers_on_the_hosts_loopback(kago, user, after):
    """kago console as the user: bound in the host's network namespace before the command
    joins its holder's, it serves the user's containers to a browser of the host."""
    import signal
    import subprocess
    import urllib.request
    from kago.testing.holder_net import free_ports
    port, = free_ports(range(18100, 18200), 1) or pytest.skip("no free port in 18100-18199")
    kago.ok("run", "-d", "--name", "seen", "--network", "none", "busybox", "sleep", "60")
    env = user.env(KAGO_SUPERVISOR_IDLE="1")
    console = subprocess.Popen(
        ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups",
         "--reset-env", "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
         KAGO, "console", "--listen", f"127.0.0.1:{port}"],
        cwd=user.home, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        rows, deadline = None, time.monotonic() + 30
        while rows is None and time.monotonic() < deadline and console.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/containers",
                                            timeout=5) as r:
                    rows = json.loads(r.read())
            except OSError:
                time.sleep(0.1)
        assert rows is not None, f"no answer: {console.poll()} {console.stderr.read()}"
        assert [r["name"] for r in rows] == ["seen"] and rows[0]["state"] == "running"
    finally:
        console.send_signal(signal.SIGINT)  # Ctrl-C: it ends with 0
        out, err = console.communicate(timeout=20)
    assert console.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out
    # a port taken on the host is one line, before the holder is joined
    import socket
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        taken = kago("console", "--listen", f"127.0.0.1:{port}", timeout=30)
    assert taken.returncode == 125, taken
    assert taken.stderr.strip().splitlines() == [
        f"kago: listen 127.0.0.1:{port}: Address already in use"], taken.stderr
    kago.ok("rm", "-f", "seen")


def test_a_privileged_port_is_one_line_and_nothing_made(kago, user, after):
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        floor = int(f.read())
    if floor == 0:
        pytest.skip("this host lets every user bind every port")
    proc = kago("run", "-d", "--name", "low", "-p", f"127.0.0.1:{floor - 1}:80", "busybox",
                "sleep", "100")
    assert proc.returncode == 125 and proc.stderr.count("\n") == 1, proc.stderr
    assert "ip_unprivileged_port_start" in proc.stderr
    assert kago.ok("ps", "-a", "-q") == ""


def test_a_user_without_subordinate_ids_gets_one_line_and_nothing_made(nosub_user):
    proc = nosub_user.run([KAGO, "ps"])
    assert proc.returncode == 125
    assert proc.stderr == (
        f"kago: user {nosub_user.name} has no range in /etc/subuid or /etc/subgid: kago as a "
        "user needs subordinate IDs (usermod --add-subuids 100000-165535 --add-subgids "
        f"100000-165535 {nosub_user.name})\n")
    assert os.listdir(nosub_user.runtime_dir) == []
    assert not os.path.exists(os.path.join(nosub_user.home, ".local"))


def test_a_runroot_the_user_cannot_make_is_one_line(kago, user):
    proc = kago("ps", env=user.env(XDG_RUNTIME_DIR="/proc/kago-nowhere"))
    assert proc.returncode == 125
    assert proc.stderr.startswith("kago: runroot /proc/kago-nowhere/kago/manager: cannot "
                                  "create it")
    assert "--runroot DIR" in proc.stderr and proc.stderr.count("\n") == 1


def test_a_killed_holder_is_made_again_and_the_stale_supervisor_retired(kago, user, after):
    kago.ok("run", "-d", "--name", "old", "busybox", "sleep", "100")
    holder = kago.holder_pid()
    with open(os.path.join(kago.runroot, "supervisor.pid")) as f:
        stale = int(f.read())
    os.kill(holder, 9)
    # the old container can still be removed; a new one runs in the new holder's namespaces
    kago.ok("rm", "-f", "old")
    assert kago.ok("run", "--rm", "busybox", "echo", "fresh").strip() == "fresh"
    assert kago.holder_pid() not in (None, holder)
    deadline = time.monotonic() + 5
    while _state(stale) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _state(stale) in (None, "Z")  # the supervisor of the dead holder quit
    kago.ok("run", "-d", "--name", "new", "busybox", "sleep", "100")
    assert kago.ok("exec", "new", "echo", "joined").strip() == "joined"
    kago.ok("rm", "-f", "new")


def test_a_definition_beyond_the_allocation_and_an_image_file_beyond_it(kago, user, after):
    path = os.path.join(user.home, "big.py")
    with open(path, "w") as f:
        f.write('from kago.manager.define import Container, id_range\n'
                'Container("far", image="busybox", command=["true"],\n'
                '          ids=id_range(808000, 100))\n')
    user.chown(path)
    proc = kago("up", "big.py")
    assert proc.returncode == 125
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "uid range 808000-808099 needs 808099 subordinate IDs" in proc.stderr
    assert kago.ok("ps", "-a", "-q").strip() == ""
    # an image file owned by an ID the user's namespace does not map: one line, no image
    import tarfile
    tar_path = os.path.join(user.home, "far.tar")
    with tarfile.open(tar_path, "w") as tar:
        info = tarfile.TarInfo("far")
        info.uid = info.gid = 70000
        tar.addfile(info)
    user.chown(tar_path)
    proc = kago("import", "far.tar", "far")
    assert proc.returncode == 125
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "entry 'far' is owned by 70000:70000, beyond the IDs of this user namespace" \
        in proc.stderr
    assert "far" not in kago.ok("images")
