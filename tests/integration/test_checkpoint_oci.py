"""``kago-oci checkpoint`` / ``restore`` with CRIU 4.2 on the real kernel, next to runc.

The container is a busybox shell counting in memory (each count written to a file on a bind
mount, so a fresh start would count from 1 again) with busybox httpd listening on loopback,
either in the host's network namespace (127.0.0.1:190xx) or in a network namespace the test
makes (joined by path: CRIU must treat it as external). Its stdio are pipes the test holds
(CRIU restores stdio pipes, not host files: the last test shows the line a host file gives).

CRIU is the checkout's own build (``./dev setup`` puts it in .build/criu); the tests skip with
that reason when it is not there.
"""

import json
import os
import socket
import subprocess
import time
import urllib.request
import shutil
import uuid
from pathlib import Path

import pytest

from conftest import KAGO_OCI, note_ids, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRIU_DIR = os.path.join(REPO, ".build", "criu", "sbin")
CRIU = os.path.join(CRIU_DIR, "criu")
RUNC = "/usr/sbin/runc"

pytestmark = pytest.mark.skipif(not os.access(CRIU, os.X_OK),
                                reason=f"CRIU is not built ({CRIU}): ./dev setup builds it "
                                       "from ../shared/third_party/criu-v4.2.tar.gz")

# the counter: in memory, so only a restore (not a fresh start) goes on from where it was
# (each count by rename: a dump between a truncate and its write would leave the file empty)
PROGRAM = ("i=0; httpd -p 127.0.0.1:{port} -h /etc; while :; do i=$((i+1)); "
           "echo $i > /data/n; mv /data/n /data/count; sleep 0.1; done")


def env():
    return dict(os.environ, PATH=CRIU_DIR + ":" + os.environ.get("PATH", "/usr/bin:/bin"))


def free_port():
    """A free 127.0.0.1 port in 19010-19099 (the host's; a namespace's are all free)."""
    for port in range(19010, 19100):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in 127.0.0.1:19010-19099")


class Stdio:
    """Pipes the container's stdin and stdout/stderr are (the test holds the other ends);
    the runtime's own output goes there too, read with ``output()``."""

    def __init__(self):
        self.in_r, self.in_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        os.set_blocking(self.out_r, False)
        self.text = ""

    def run(self, argv, timeout=60):
        proc = subprocess.run(argv, stdin=self.in_r, stdout=self.out_w, stderr=self.out_w,
                              timeout=timeout, env=env())
        return proc.returncode

    def output(self):
        out = b""
        while True:
            try:
                data = os.read(self.out_r, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            out += data
        return out.decode(errors="replace")

    def seen(self):
        """Everything written to the pipe so far (output() consumes; this accumulates)."""
        self.text += self.output()
        return self.text

    def close(self):
        for fd in (self.in_r, self.in_w, self.out_r, self.out_w):
            os.close(fd)


@pytest.fixture
def stdio():
    made = []

    def factory():
        made.append(Stdio())
        return made[-1]
    factory.last = lambda: made[-1]
    yield factory
    for s in made:
        s.close()


class Runtime:
    """kago-oci or runc with its own state root and the checkout's CRIU."""

    def __init__(self, name, root):
        self.name = name
        self.root = root
        self.ids = []
        self.argv0 = ([KAGO_OCI, "--root", root] if name == "kago-oci"
                      else [RUNC, "--root", root, "--criu", CRIU])

    def new_id(self):
        cid = f"ck-{uuid.uuid4().hex[:10]}"
        self.ids.append(cid)
        note_ids(cid)
        return cid

    def __call__(self, *args, timeout=60):
        return subprocess.run(self.argv0 + [str(a) for a in args], capture_output=True,
                              text=True, timeout=timeout, env=env(), stdin=subprocess.DEVNULL)

    def state(self, cid):
        proc = self("state", cid)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def cleanup(self):
        for cid in self.ids:
            self("delete", "--force", cid)


@pytest.fixture
def runtime(request, oci):
    """``oci``'s state root (its leak check covers these IDs), or runc's under it."""
    name = getattr(request, "param", "kago-oci")
    if name == "runc" and not os.access(RUNC, os.X_OK):
        pytest.skip("runc is not installed")
    rt = Runtime(name, oci.root if name == "kago-oci" else oci.root + "-runc")
    yield rt
    rt.cleanup()
    oci.ids.extend(rt.ids)  # the leak check: state dirs, cgroups, mounts naming them


@pytest.fixture
def netns():
    name = f"ckpt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def counter_bundle(make_bundle, data, port, netns=None):
    def mutate(cfg):
        cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                              "options": ["rbind", "rw"]})
        spaces = [n for n in cfg["linux"]["namespaces"] if n["type"] != "network"]
        if netns:
            spaces.append({"type": "network", "path": f"/run/netns/{netns}"})
        cfg["linux"]["namespaces"] = spaces
    return make_bundle(["sh", "-c", PROGRAM.format(port=port)], mutate=mutate)


def count(data):
    """The counter's last value (the file is rewritten ten times a second)."""
    def read():
        try:
            text = (data / "count").read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None
    value = wait_for(read, timeout=5)
    assert value is not None, "the counter wrote nothing"
    return value


def counting(data, above, timeout=5.0):
    """The counter passed ``above`` (it runs)."""
    return wait_for(lambda: count(data) > above, timeout=timeout)


def answer(port, netns=None):
    url = f"http://127.0.0.1:{port}/hostname"
    if netns:
        # (no -T: busybox 1.35's wget -T crashes on a refused connection)
        # a dumped namespace stays locked by CRIU (its packets dropped) until the restore:
        # no answer there is a timeout, not a refusal
        try:
            proc = subprocess.run(["ip", "netns", "exec", netns, "/bin/busybox", "wget", "-qO-",
                                   url], capture_output=True, text=True, timeout=3)
        except subprocess.TimeoutExpired:
            return None
        return proc.stdout if proc.returncode == 0 else None
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.read().decode()
    except OSError:
        return None


def start(runtime, stdio, bundle):
    cid = runtime.new_id()
    io = stdio()
    code = io.run(runtime.argv0 + ["run", "-d", "--bundle", bundle.path, cid])
    assert code == 0, io.output()
    return cid


class Counter:
    """A counting, listening container started with pipes: ``.cid``, ``.bundle``, ``.data``
    (its bind-mounted directory), ``.port``."""

    def __init__(self, runtime, stdio, make_bundle, tmp_path, netns=None, above=2):
        self.port = free_port() if netns is None else 19001
        self.data = tmp_path / "data"
        self.data.mkdir()
        self.bundle = counter_bundle(make_bundle, self.data, self.port, netns)
        self.cid = start(runtime, stdio, self.bundle)
        assert counting(self.data, above)


def run_with(runtime, bundle, stdin, out):
    """``run -d`` with the given stdio (what the container inherits); a new ID."""
    cid = runtime.new_id()
    proc = subprocess.run(runtime.argv0 + ["run", "-d", "--bundle", bundle.path, cid],
                          stdin=stdin, stdout=out, stderr=out, env=env(), timeout=30)
    assert proc.returncode == 0
    return cid


def restore(runtime, stdio, bundle, cid, images, *flags):
    io = stdio()
    code = io.run(runtime.argv0 + ["restore", "-d", "--bundle", bundle.path,
                                   "--image-path", images, *flags, cid])
    return code, io.output()


# --- checkpoint -> restore ------------------------------------------------------------------

@pytest.mark.parametrize("runtime", ["kago-oci", "runc"], indirect=True)
@pytest.mark.parametrize("network", ["host", "netns"])
def test_restore_goes_on_counting_and_answering(runtime, stdio, make_bundle, tmp_path,
                                                network, request):
    ns = request.getfixturevalue("netns") if network == "netns" else None
    c = Counter(runtime, stdio, make_bundle, tmp_path, ns, above=5)
    cid, bundle, data, port = c.cid, c.bundle, c.data, c.port
    assert wait_for(lambda: answer(port, ns), timeout=5) == "kago\n"
    first_pid = runtime.state(cid)["pid"]

    images = tmp_path / "images"
    done = runtime("checkpoint", "--image-path", images, cid)
    assert done.returncode == 0, done.stderr
    at_dump = count(data)
    time.sleep(0.4)
    assert count(data) == at_dump, "the container kept running after checkpoint"
    assert answer(port, ns) is None
    if runtime.name == "kago-oci":
        assert runtime.state(cid)["status"] == "stopped"  # runc: the container is gone

    pid_file = tmp_path / "restored.pid"
    code, out = restore(runtime, stdio, bundle, cid, images, "--pid-file", pid_file)
    assert code == 0, out
    state = runtime.state(cid)
    assert state["status"] == "running"
    assert state["pid"] == int(pid_file.read_text()) != first_pid
    # it goes on from where it was, not from 1
    resumed = count(data)
    assert at_dump <= resumed < at_dump + 30, (at_dump, resumed)
    assert counting(data, resumed)
    assert wait_for(lambda: answer(port, ns), timeout=5) == "kago\n"
    exec_ = runtime("exec", cid, "cat", "/data/count")
    assert exec_.returncode == 0 and int(exec_.stdout) >= resumed, exec_.stderr
    assert runtime("pause", cid).returncode == 0
    assert runtime.state(cid)["status"] == "paused"
    assert runtime("resume", cid).returncode == 0
    assert runtime.state(cid)["status"] == "running"

    assert runtime("kill", cid, "KILL").returncode == 0
    assert wait_for(lambda: runtime.state(cid)["status"] == "stopped", timeout=5)
    deleted = runtime("delete", cid)
    assert deleted.returncode == 0, deleted.stderr
    assert runtime("state", cid).returncode != 0


def test_leave_running_then_restore(runtime, stdio, make_bundle, tmp_path):
    c = Counter(runtime, stdio, make_bundle, tmp_path)
    cid, bundle, data, port = c.cid, c.bundle, c.data, c.port
    images = tmp_path / "images"
    done = runtime("checkpoint", "--leave-running", "--image-path", images, cid)
    assert done.returncode == 0, done.stderr
    at_dump = count(data)
    assert runtime.state(cid)["status"] == "running"
    assert counting(data, at_dump), "the container stopped counting after --leave-running"
    assert answer(port) == "kago\n"

    # the image restores once the original (holding the port) is gone
    assert runtime("delete", "--force", cid).returncode == 0
    code, out = restore(runtime, stdio, bundle, cid, images)
    assert code == 0, out
    assert runtime.state(cid)["status"] == "running"
    resumed = count(data)
    assert resumed >= at_dump
    assert counting(data, resumed)
    assert wait_for(lambda: answer(port), timeout=5) == "kago\n"


def test_restore_under_another_id_gets_its_own_cgroup(runtime, stdio, make_bundle, tmp_path):
    c = Counter(runtime, stdio, make_bundle, tmp_path)
    cid, bundle, data = c.cid, c.bundle, c.data
    images = tmp_path / "images"
    assert runtime("checkpoint", "--image-path", images, cid).returncode == 0
    other = runtime.new_id()
    code, out = restore(runtime, stdio, bundle, other, images)
    assert code == 0, out
    pid = runtime.state(other)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    assert lines and all(line.endswith(f"/kago-{other}") for line in lines), lines
    assert runtime.state(cid)["status"] == "stopped"
    assert counting(data, count(data))


# --- refused, and failures ------------------------------------------------------------------

def last_line(text):
    """The last line of output; a logfmt error line (runc's form) gives its message."""
    from test_lifecycle import error_message
    return error_message(text)


def test_stdin_from_the_hosts_dev_null_checkpoints(runtime, make_bundle, tmp_path):
    """A client's /dev/null (podman's conmon gives one) is a file of the host's mount namespace,
    which CRIU cannot dump: the init takes the container's own /dev/null instead (as runc)."""
    data = tmp_path / "data"
    data.mkdir()
    bundle = counter_bundle(make_bundle, data, free_port())
    r, w = os.pipe()
    try:
        cid = run_with(runtime, bundle, subprocess.DEVNULL, w)
        pid = runtime.state(cid)["pid"]
        null = os.stat(f"/proc/{pid}/fd/0")
        assert (os.major(null.st_rdev), os.minor(null.st_rdev)) == (1, 3)
        assert null.st_dev != os.stat("/dev/null").st_dev  # the container's /dev, a tmpfs
        assert counting(data, 2)
        done = runtime("checkpoint", "--image-path", tmp_path / "images", cid)
        assert done.returncode == 0, done.stderr
    finally:
        os.close(r)
        os.close(w)


def test_a_failed_dump_names_criu_and_its_log_and_leaves_the_container_running(
        runtime, make_bundle, tmp_path):
    """stdout a host file (outside the container's mounts): CRIU cannot dump it."""
    data = tmp_path / "data"
    data.mkdir()
    bundle = counter_bundle(make_bundle, data, free_port())
    with open(tmp_path / "out", "w") as out:
        cid = run_with(runtime, bundle, subprocess.DEVNULL, out)
    assert counting(data, 2)
    pid = runtime.state(cid)["pid"]
    images = tmp_path / "images"
    done = runtime("checkpoint", "--image-path", images, cid)
    assert done.returncode == 1
    line = last_line(done.stderr)
    log = images / "dump.log"
    assert "criu dump failed: Can't lookup mount" in line and f"(log: {log})" in line, line
    assert log.exists()
    # with --work-path, the log is there
    work = tmp_path / "work"
    done = runtime("checkpoint", "--image-path", images, "--work-path", work, cid)
    assert done.returncode == 1
    assert f"(log: {work}/dump.log)" in last_line(done.stderr)
    assert (work / "dump.log").exists()
    assert runtime.state(cid)["status"] == "running"
    assert runtime.state(cid)["pid"] == pid
    assert counting(data, count(data)), "the container stopped after a failed dump"


def test_a_terminal_needs_shell_job(runtime, make_bundle, tmp_path):
    from test_terminal import ConsoleServer
    console = ConsoleServer(tmp_path / "console.sock")
    try:
        def mutate(cfg):
            cfg["process"]["terminal"] = True
        bundle = make_bundle(["sleep", "100"], mutate=mutate)
        cid = runtime.new_id()
        made = runtime("run", "-d", "--console-socket", console.path, "--bundle", bundle.path,
                       cid)
        assert made.returncode == 0, made.stderr
        console.take()
        images = tmp_path / "images"
        done = runtime("checkpoint", "--image-path", images, cid)
        assert done.returncode == 1
        assert "pass --shell-job" in last_line(done.stderr)
        assert runtime.state(cid)["status"] == "running"
        # with --shell-job the dump works; its restore is refused (no pty to hand back)
        done = runtime("checkpoint", "--shell-job", "--image-path", images, cid)
        assert done.returncode == 0, done.stderr
        back = runtime("restore", "-d", "--shell-job", "--bundle", bundle.path,
                       "--image-path", images, cid)
        assert back.returncode == 1
        assert "cannot restore a container with a terminal" in last_line(back.stderr)
        assert runtime.state(cid)["status"] == "stopped"
    finally:
        console.close()


def test_bad_input_gets_one_line(runtime, stdio, make_bundle, tmp_path):
    c = Counter(runtime, stdio, make_bundle, tmp_path)
    cid, bundle = c.cid, c.bundle
    images = tmp_path / "images"

    missing = runtime("checkpoint", "--image-path", images, "ck-no-such-container")
    assert missing.returncode == 1 and "container does not exist" in last_line(missing.stderr)

    no_criu = runtime.argv0[:1] + ["--criu", "/nonexistent/criu"] + runtime.argv0[1:]
    proc = subprocess.run(no_criu + ["checkpoint", "--image-path", images, cid],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "criu not found: /nonexistent/criu" in last_line(proc.stderr), proc.stderr
    proc = subprocess.run(runtime.argv0 + ["checkpoint", "--image-path", images, cid],
                          capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, PATH="/nonexistent"))
    assert proc.returncode == 1 and "criu not found on PATH" in last_line(proc.stderr)

    for flags, fragment in ((["--lazy-pages"], "--lazy-pages is not supported"),
                            (["--manage-cgroups-mode", "bogus"], "invalid --manage-cgroups-mode"),
                            (["--empty-ns", "ipc"], '"ipc" is not supported by --empty-ns'),
                            (["--page-server", "127.0.0.1:19099"], "--page-server is not "
                                                                   "supported")):
        proc = runtime("checkpoint", "--image-path", images, *flags, cid)
        assert proc.returncode == 1 and fragment in last_line(proc.stderr), (flags, proc.stderr)

    soft_dirty = subprocess.run([CRIU, "check", "--feature", "mem_dirty_track"],
                                capture_output=True).returncode == 0
    pre = runtime("checkpoint", "--pre-dump", "--image-path", images, cid)
    if soft_dirty:
        assert pre.returncode == 0, pre.stderr
    else:
        assert pre.returncode == 1
        assert "soft-dirty" in last_line(pre.stderr), pre.stderr
    assert runtime.state(cid)["status"] == "running"

    nothing = tmp_path / "empty"
    nothing.mkdir()
    other = runtime.new_id()
    code, out = restore(runtime, stdio, bundle, other, nothing)
    assert code == 1
    assert f"image path {nothing}: no checkpoint there" in last_line(out), out
    assert runtime("state", other).returncode == 1


def test_a_failed_restore_leaves_nothing(runtime, stdio, make_bundle, tmp_path):
    """The original, left running, still holds the port: CRIU cannot bind it again."""
    c = Counter(runtime, stdio, make_bundle, tmp_path)
    cid, bundle, port = c.cid, c.bundle, c.port
    images = tmp_path / "images"
    assert runtime("checkpoint", "--leave-running", "--image-path", images, cid).returncode == 0
    other = runtime.new_id()
    code, out = restore(runtime, stdio, bundle, other, images)
    assert code == 1
    line = last_line(out)
    assert "criu restore failed: " in line and f"(log: {images}/restore.log)" in line, line
    assert runtime("state", other).returncode == 1
    assert not os.path.exists(os.path.join(runtime.root, other))
    assert runtime.state(cid)["status"] == "running"
    assert answer(port) == "kago\n"


# --- what the restored container keeps ------------------------------------------------------

CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"]
MAPS = [{"containerID": 0, "hostID": 200000, "size": 65536}]


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f.read().splitlines())
    keep = ("Seccomp", "NoNewPrivs", "CapEff", "CapPrm", "CapBnd", "CapInh", "Uid", "Gid")
    out = {k: fields[k].strip() for k in keep}
    out["NSpid"] = fields["NSpid"].split()[-1]
    return out


def ns_maps(pid):
    with open(f"/proc/{pid}/uid_map") as f, open(f"/proc/{pid}/gid_map") as g:
        return f.read().split(), g.read().split()


@pytest.mark.parametrize("userns", [False, True], ids=["rootful", "userns"])
def test_restored_keeps_seccomp_caps_names_ids_and_limits(runtime, stdio, make_bundle,
                                                          tmp_path, workdir, userns):
    from kago.oci.defaults import default_spec
    port = free_port()
    # CRIU opens bind sources as the container's root (a host ID in a user namespace): a
    # directory it can reach (the session's tmpfs is 0755; pytest's tmp_path is under 0700)
    data = Path(workdir) / f"data-{uuid.uuid4().hex[:8]}"
    data.mkdir()
    data.chmod(0o777)
    profile = default_spec(seccomp=True)["linux"]["seccomp"]

    def mutate(cfg):
        cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                              "options": ["rbind", "rw"]})
        if not userns:  # (a user namespace in the host's network is refused: its own test)
            cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                          if n["type"] != "network"]
        cfg["linux"]["seccomp"] = profile
        cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 99}}
        cfg["hostname"] = "ckpt-box"
        for kind in ("bounding", "effective", "permitted"):
            cfg["process"]["capabilities"][kind] = CAPS
        if userns:
            cfg["linux"]["namespaces"].append({"type": "user"})
            cfg["linux"]["uidMappings"] = MAPS
            cfg["linux"]["gidMappings"] = MAPS
    bundle = make_bundle(["sh", "-c", PROGRAM.format(port=port)], mutate=mutate)
    os.mkdir(os.path.join(bundle.rootfs, "data"))  # mapped root cannot make it in a host dir
    cid = start(runtime, stdio, bundle)
    assert counting(data, 2)
    before = status_fields(runtime.state(cid)["pid"])
    maps_before = ns_maps(runtime.state(cid)["pid"])
    assert before["Seccomp"] == "2" and before["NSpid"] == "1"
    images = tmp_path / "images"
    done = runtime("checkpoint", "--image-path", images, cid)
    assert done.returncode == 0, done.stderr
    code, out = restore(runtime, stdio, bundle, cid, images)
    assert code == 0, out
    pid = runtime.state(cid)["pid"]
    assert status_fields(pid) == before
    assert ns_maps(pid) == maps_before
    if userns:
        assert maps_before[0][:3] == ["0", "200000", "65536"]
    hostname = runtime("exec", cid, "hostname")
    assert hostname.stdout.strip() == "ckpt-box", hostname.stderr
    assert counting(data, count(data))
    if not userns:
        assert wait_for(lambda: answer(port), timeout=5) == "kago\n"
    with open(f"/proc/{pid}/cgroup") as f:
        paths = dict(line.split(":", 2)[1:] for line in f.read().splitlines())
    memory = f"/sys/fs/cgroup/memory{paths['memory']}/memory.limit_in_bytes"
    if os.path.exists(memory):  # hybrid/v1 (a pure v2 host: memory.max)
        with open(memory) as f:
            assert int(f.read()) == 64 << 20
    pids_max = f"/sys/fs/cgroup/pids{paths['pids']}/pids.max"
    if os.path.exists(pids_max):
        with open(pids_max) as f:
            assert f.read().strip() == "99"
    shutil.rmtree(data)


def test_a_user_namespace_in_the_hosts_network_is_refused(runtime, make_bundle, tmp_path):
    def mutate(cfg):
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] != "network"] + [{"type": "user"}]
        cfg["linux"]["uidMappings"] = MAPS
        cfg["linux"]["gidMappings"] = MAPS
    bundle = make_bundle(["sleep", "100"], mutate=mutate)
    r, w = os.pipe()
    try:
        cid = run_with(runtime, bundle, r, w)
        done = runtime("checkpoint", "--image-path", tmp_path / "images", cid)
        assert done.returncode == 1
        assert "no network namespace of its own" in last_line(done.stderr), done.stderr
        assert runtime.state(cid)["status"] == "running"
    finally:
        os.close(r)
        os.close(w)


def test_restore_in_the_foreground_waits_and_deletes(runtime, stdio, make_bundle, tmp_path):
    """Without --detach, restore is like run: it waits for the init and deletes the
    container, and exits with the init's status."""
    c = Counter(runtime, stdio, make_bundle, tmp_path)
    cid, bundle, data = c.cid, c.bundle, c.data
    images = tmp_path / "images"
    assert runtime("checkpoint", "--image-path", images, cid).returncode == 0
    io = stdio()
    proc = subprocess.Popen(runtime.argv0 + ["restore", "--bundle", bundle.path,
                                             "--image-path", images, cid],
                            stdin=io.in_r, stdout=io.out_w, stderr=io.out_w, env=env())
    try:
        def restored():  # (the checkpointed record, stopped, is there until restore drops it)
            proc = runtime("state", cid)
            return proc.returncode == 0 and json.loads(proc.stdout)["status"] == "running"
        assert wait_for(restored, timeout=10), io.output()
        assert counting(data, count(data))
        assert proc.poll() is None  # still waiting for the restored init
        os.kill(runtime.state(cid)["pid"], 9)
        assert proc.wait(timeout=10) == 137
        assert runtime("state", cid).returncode == 1  # deleted on the way out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- an established TCP connection ----------------------------------------------------------

def test_tcp_established_connection_survives(runtime, stdio, make_bundle, tmp_path, netns):
    """The container accepts one connection (busybox nc -l) from a client in the same network
    namespace; CRIU refuses to dump it without --tcp-established, and with it the connection
    is restored: what the client sends afterwards reaches the restored container."""
    port = 19003
    bundle = make_bundle(["nc", "-l", "-p", str(port)], mutate=lambda cfg: _join(cfg, netns))
    io = stdio()
    cid = runtime.new_id()
    assert io.run(runtime.argv0 + ["run", "-d", "--bundle", bundle.path, cid]) == 0
    client = subprocess.Popen(["ip", "netns", "exec", netns, "/bin/busybox", "nc",
                               "127.0.0.1", str(port)], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client.stdin.write(b"before\n")
        client.stdin.flush()
        assert wait_for(lambda: "before" in io.seen(), timeout=5), io.seen()
        images = tmp_path / "images"
        refused = runtime("checkpoint", "--image-path", images, cid)
        assert refused.returncode == 1
        assert "tcp-established" in last_line(refused.stderr), refused.stderr
        assert runtime.state(cid)["status"] == "running"
        done = runtime("checkpoint", "--tcp-established", "--image-path", images, cid)
        assert done.returncode == 0, done.stderr
        code, out = restore(runtime, stdio, bundle, cid, images, "--tcp-established")
        assert code == 0, out
        assert runtime.state(cid)["status"] == "running"
        client.stdin.write(b"after\n")
        client.stdin.flush()
        # the restored nc writes to the stdio pipes restore was given: the restore's own
        restored_io = stdio.last()
        assert wait_for(lambda: "after" in restored_io.seen(), timeout=5), restored_io.seen()
    finally:
        client.kill()
        client.wait()


def _join(cfg, netns):
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                  if n["type"] != "network"]
    cfg["linux"]["namespaces"].append({"type": "network", "path": f"/run/netns/{netns}"})


def test_host_pid_namespace_restores_right_after_checkpoint(runtime, stdio, make_bundle,
                                                            tmp_path):
    """Without a pid namespace CRIU restores the same PIDs: checkpoint waits until the dumped
    processes are reaped (PID 1 here reaps about once a second), so restore can follow."""
    data = tmp_path / "data"
    data.mkdir()

    def mutate(cfg):
        cfg["mounts"].append({"destination": "/data", "type": "bind", "source": str(data),
                              "options": ["rbind", "rw"]})
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"]
                                      if n["type"] not in ("pid", "network")]
    bundle = make_bundle(["sh", "-c", PROGRAM.format(port=free_port())], mutate=mutate)
    cid = start(runtime, stdio, bundle)
    assert counting(data, 2)
    pid = runtime.state(cid)["pid"]
    images = tmp_path / "images"
    done = runtime("checkpoint", "--image-path", images, cid)
    assert done.returncode == 0, done.stderr
    assert not os.path.exists(f"/proc/{pid}")
    code, out = restore(runtime, stdio, bundle, cid, images)
    assert code == 0, out
    assert runtime.state(cid)["pid"] == pid  # the same PID, in the host's namespace
    assert counting(data, count(data))


def test_a_paused_container_checkpoints_and_restores_running(runtime, stdio, make_bundle,
                                                             tmp_path):
    c = Counter(runtime, stdio, make_bundle, tmp_path)
    assert runtime("pause", c.cid).returncode == 0
    at_pause = count(c.data)
    images = tmp_path / "images"
    done = runtime("checkpoint", "--image-path", images, c.cid)
    assert done.returncode == 0, done.stderr
    assert runtime.state(c.cid)["status"] == "stopped"
    code, out = restore(runtime, stdio, c.bundle, c.cid, images)
    assert code == 0, out
    assert runtime.state(c.cid)["status"] == "running"
    assert counting(c.data, at_pause)


@pytest.mark.skipif(not os.access(RUNC, os.X_OK), reason="runc is not installed")
def test_kago_oci_restores_what_runc_checkpointed(oci, stdio, make_bundle, tmp_path):
    """runc's images name each masked file as the external mount "/dev/null": restore maps it.
    (The other way fails: kago-oci binds /sys/fs/cgroup/unified on a hybrid host, an external
    mount runc 1.1's restore does not declare. docs/checkpoint.md says so.)"""
    runc = Runtime("runc", oci.root + "-runc")
    kago = Runtime("kago-oci", oci.root)
    try:
        c = Counter(runc, stdio, make_bundle, tmp_path)
        images = tmp_path / "images"
        done = runc("checkpoint", "--image-path", images, c.cid)
        assert done.returncode == 0, done.stderr
        at_dump = count(c.data)
        kago.ids.append(c.cid)
        code, out = restore(kago, stdio, c.bundle, c.cid, images)
        assert code == 0, out
        assert kago.state(c.cid)["status"] == "running"
        resumed = count(c.data)
        assert at_dump <= resumed < at_dump + 30
        assert counting(c.data, resumed)
        assert wait_for(lambda: answer(c.port), timeout=5) == "kago\n"
    finally:
        kago.cleanup()
        runc.cleanup()
        oci.ids.extend(runc.ids)
