"""``kago console`` against real containers: the command line's server on a loopback port
(its own manager root, busybox), every API endpoint through HTTP, SSE and the terminal
WebSocket, the refusals (no token, a foreign Origin, reads on an address that is not
loopback), and the sampler's history (memory moving, PSI under a CPU quota)."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import hostprobe
from conftest import wait_for
from kago.manager.testing import KagoEnv
from kago.testing.console_browser import ConsoleProcess

httpx = pytest.importorskip("httpx")
wsproto = pytest.importorskip("wsproto")

KAGO = os.path.join(os.path.dirname(sys.executable), "kago")
PORTS = range(19090, 19100)


def free_port(host="127.0.0.1"):
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    pytest.skip(f"no free port in {PORTS.start}-{PORTS.stop - 1} on {host}")


class Server(ConsoleProcess):
    """``kago console --listen HOST:PORT`` on ``env``'s root, with an HTTP client."""

    def __init__(self, env, host="127.0.0.1"):
        super().__init__(env, port=free_port(host), timeout=15, host=host)
        self.http = httpx.Client(base_url=self.base, timeout=30)

    def auth(self, origin=True):
        h = {"Authorization": f"Bearer {self.token}"}
        if origin:
            h["Origin"] = self.base
        return h


def sse(server, path, event, count, timeout=15):
    """The data of the first ``count`` events named ``event`` of an SSE stream."""
    found, name = [], None
    with server.http.stream("GET", path, timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == event:
                found.append(json.loads(line[6:]))
                if len(found) == count:
                    return found
            elif line.startswith("data: ") and name == "end":
                return found
    return found


class WebSocket:
    """A small WebSocket client (wsproto on a socket) for the terminal."""

    def __init__(self, server, path, headers):
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import AcceptConnection, RejectConnection, Request
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending, self.closed = [], False
        extra = [(k.encode(), v.encode()) for k, v in headers.items()]
        self.sock.sendall(self.ws.send(Request(host=f"{server.host}:{server.port}",
                                               target=path, extra_headers=extra)))
        while True:
            event = self._next()
            if isinstance(event, AcceptConnection):
                return
            if isinstance(event, RejectConnection):
                self.status = event.status_code
                raise ConnectionRefusedError(event.status_code)

    def _next(self):
        while not self.pending:
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self.pending.extend(self.ws.events())
            if not data and not self.pending:
                return None
        return self.pending.pop(0)

    def send(self, frame):
        from wsproto.events import TextMessage
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(frame))))

    def read_until(self, text, timeout=10):
        """The output until ``text`` appears (or the socket closes)."""
        from wsproto.events import BytesMessage, CloseConnection, TextMessage
        out, deadline = b"", time.monotonic() + timeout
        while text.encode() not in out and time.monotonic() < deadline:
            event = self._next()
            if event is None or isinstance(event, CloseConnection):
                self.closed = True
                break
            if isinstance(event, BytesMessage):
                out += event.data
            elif isinstance(event, TextMessage):
                out += event.data.encode()
        return out.decode(errors="replace")

    def close(self):
        from wsproto.events import CloseConnection
        try:
            self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        except Exception:  # noqa: BLE001 - closed already
            pass
        self.sock.close()


@pytest.fixture(scope="module")
def env(workdir, rootfs_cache):
    e = KagoEnv(workdir, rootfs_cache=rootfs_cache)
    yield e
    left = e.destroy()
    assert not left, f"test left things behind: {left}"


@pytest.fixture(scope="module")
def server(env):
    s = Server(env)
    yield s
    s.stop()


def run(env, *args, network="none"):
    net = ["--network", network] if network else []
    return env.kago("run", "-d", *net, *args, check=True).stdout.strip()


def test_an_address_it_cannot_listen_on_is_one_line_and_leaves_no_token(tmp_path):
    root = tmp_path / "root"
    proc = subprocess.run([KAGO, "console", "--listen", "198.51.100.7:9090"],
                          env=dict(os.environ, KAGO_ROOT=str(root)), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 125, proc
    assert proc.stderr.strip().splitlines() == [
        "kago: listen 198.51.100.7:9090: Cannot assign requested address"], proc.stderr
    assert not (root / "console").exists()


def test_first_start_makes_the_token_0600_and_prints_it_once(env, server):
    path = os.path.join(env.root, "console", "token")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert len(server.token) >= 40
    again = Server(env, host="127.0.0.2")  # a second start: the same token, not printed
    try:
        r = again.http.get("/api/whoami")
        assert r.json() == {"authenticated": False, "reads_need_token": True}
    finally:
        out = again.stop()
    assert server.token not in out and "127.0.0.2" in out


def test_list_stream_inspect_and_not_found(env, server):
    run(env, "--name", "csl-list", "-p", "127.0.0.1:19099:80", "busybox", "sleep", "300",
        network=None)
    env.kago("create", "--network", "none", "--name", "csl-made", "busybox", "true",
             check=True)
    rows = server.http.get("/api/containers").json()
    assert [r["name"] for r in rows] == ["csl-list"]
    every = {r["name"]: r for r in server.http.get("/api/containers?all=1").json()}
    assert set(every) == {"csl-list", "csl-made"}
    row = every["csl-list"]
    assert set(row) == {"id", "name", "image", "state", "status", "created", "started_at",
                        "uptime_s", "cpu_pct", "mem_bytes", "mem_limit", "pids",
                        "psi_cpu_some10", "psi_mem_some10", "psi_io_some10", "ports", "group"}
    assert (row["image"], row["state"], row["group"]) == ("busybox", "running", None)
    assert row["ports"] == ["127.0.0.1:19099->80/tcp"] and row["status"].startswith("Up")
    assert every["csl-made"]["state"] == "created" and every["csl-made"]["cpu_pct"] is None
    ticks = sse(server, "/api/stream", "tick", 3)
    assert len(ticks) == 3 and ticks[0]["t"] < ticks[1]["t"] < ticks[2]["t"]
    live = {r["name"]: r for r in ticks[-1]["containers"]}
    assert live["csl-list"]["pids"] == 1 and live["csl-list"]["mem_bytes"] > 0
    assert live["csl-list"]["cpu_pct"] is not None and live["csl-made"]["state"] == "created"
    doc = server.http.get("/api/containers/csl-list").json()
    assert doc["Name"] == "/csl-list" and doc["State"]["Running"] is True
    missing = server.http.get("/api/containers/csl-nope")
    assert missing.status_code == 404 and "csl-nope" in missing.json()["error"]
    assert server.http.get("/api/containers/csl-nope/history").status_code == 404
    env.kago("rm", "-f", "csl-list", "csl-made", check=True)


def test_refusals_token_origin_and_sessions(env, server):
    run(env, "--name", "csl-auth", "busybox", "sleep", "300")
    bare = server.http.post("/api/containers/csl-auth/stop")
    assert bare.status_code == 401 and "log in" in bare.json()["error"]
    foreign = server.http.post("/api/containers/csl-auth/stop",
                               headers={**server.auth(), "Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "evil.example" in foreign.json()["error"]
    wrong = server.http.post("/api/login", json={"token": "nope"})
    assert wrong.status_code == 401
    with httpx.Client(base_url=server.base, timeout=30) as browser:
        ok = browser.post("/api/login", json={"token": server.token},
                          headers={"Origin": server.base})
        assert ok.status_code == 204
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/" in cookie
        assert server.token not in cookie
        assert browser.get("/api/whoami").json()["authenticated"] is True
        stopped = browser.post("/api/containers/csl-auth/stop", json={"timeout": 0},
                               headers={"Origin": server.base})
        assert stopped.status_code == 200 and stopped.json()["state"] == "exited"
        assert browser.post("/api/logout", headers={"Origin": server.base}).status_code == 204
        browser.cookies.set("kago_console", cookie.split(";")[0].split("=", 1)[1])
        assert browser.post("/api/containers/csl-auth/start").status_code == 401
    with pytest.raises(ConnectionRefusedError):  # a WebSocket needs the Origin
        WebSocket(server, "/api/containers/csl-auth/terminal", server.auth(origin=False))
    with pytest.raises(ConnectionRefusedError):
        WebSocket(server, "/api/containers/csl-auth/terminal", {"Origin": server.base})
    env.kago("rm", "-f", "csl-auth", check=True)


def test_reads_need_the_token_off_loopback(env):
    other = Server(env, host="127.0.0.2")  # not 127.0.0.1/::1/localhost: not loopback
    try:
        assert other.http.get("/api/containers").status_code == 401
        assert other.http.get("/api/stream").status_code == 401
        page = other.http.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert other.http.get("/api/containers", headers=other.auth()).status_code == 200
        assert other.http.get("/api/whoami").json()["reads_need_token"] is True
    finally:
        other.stop()


def test_verbs_start_stop_restart_remove(env, server):
    run(env, "--name", "csl-verbs", "busybox", "sleep", "300")
    h = server.auth()
    stopped = server.http.post("/api/containers/csl-verbs/stop", json={"timeout": 0},
                               headers=h)
    assert stopped.status_code == 200 and stopped.json()["state"] == "exited"
    started = server.http.post("/api/containers/csl-verbs/start", headers=h)
    assert started.status_code == 200 and started.json()["state"] == "running"
    pid = env.inspect("csl-verbs")["State"]["Pid"]
    restarted = server.http.post("/api/containers/csl-verbs/restart", json={"timeout": 0},
                                 headers=h)
    assert restarted.json()["state"] == "running"
    assert env.inspect("csl-verbs")["State"]["Pid"] != pid
    bad = server.http.post("/api/containers/csl-verbs/stop", json={"timeout": "x"}, headers=h)
    assert bad.status_code == 400 and "timeout" in bad.json()["error"]
    busy = server.http.delete("/api/containers/csl-verbs", headers=h)
    assert busy.status_code == 409 and "\n" not in busy.json()["error"]
    gone = server.http.delete("/api/containers/csl-verbs?force=1", headers=h)
    assert gone.json() == {"removed": "csl-verbs"}
    assert server.http.post("/api/containers/csl-verbs/start", headers=h).status_code == 404


def test_logs_tail_and_follow(env, server):
    run(env, "--name", "csl-logs", "busybox", "sh", "-c",
        "for i in 1 2 3; do echo out$i; done; echo err >&2; sleep 2; echo late; sleep 300")
    assert wait_for(lambda: "err" in env.kago("logs", "csl-logs").stderr, 10, 0.05)
    lines = sse(server, "/api/containers/csl-logs/logs?tail=2", "line", 10)
    assert lines == [{"stream": "stdout", "text": "out3"}, {"stream": "stderr", "text": "err"}]
    followed = sse(server, "/api/containers/csl-logs/logs?tail=1&follow=1", "line", 2)
    assert followed == [{"stream": "stderr", "text": "err"}, {"stream": "stdout", "text": "late"}]
    assert server.http.get("/api/containers/csl-logs/logs?tail=x").status_code == 400
    env.kago("rm", "-f", "csl-logs", check=True)


def processes_with(*words):
    """Pids of host processes with every one of ``words`` among their arguments."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if all(w in args for w in words):
            found.append(int(pid))
    return found


def exec_processes(cid):
    """Host processes of runtime execs into ``cid``."""
    return processes_with("exec", cid)


def test_terminal_echo_resize_and_nothing_left(env, server):
    cid = run(env, "--name", "csl-term", "busybox", "sleep", "300")
    ws = WebSocket(server, "/api/containers/csl-term/terminal?cols=100&rows=30", server.auth())
    try:
        ws.send({"type": "input", "data": "echo h''i; stty size\n"})
        out = ws.read_until("30 100")
        assert "\nhi" in out.replace("\r", "") and "30 100" in out
        ws.send({"type": "resize", "cols": 77, "rows": 11})
        ws.send({"type": "input", "data": "sleep 0.2; stty size\n"})
        assert "11 77" in ws.read_until("11 77")
        assert exec_processes(cid)
    finally:
        ws.close()
    assert wait_for(lambda: not exec_processes(cid), 10, 0.05), exec_processes(cid)
    assert wait_for(lambda: len(env.kago("top", "csl-term").stdout.splitlines()) == 2, 10, 0.1)
    ended = WebSocket(server, "/api/containers/csl-term/terminal", server.auth())
    ended.send({"type": "input", "data": "exit\n"})
    ended.read_until("never printed", timeout=10)
    assert ended.closed  # the shell's end closes the socket
    ended.close()
    assert wait_for(lambda: not exec_processes(cid), 10, 0.05)
    env.kago("rm", "-f", "csl-term", check=True)


def test_history_grows_memory_moves_and_samples_stream(env, server):
    run(env, "--name", "csl-mem", "--memory", "128m", "busybox", "sh", "-c",
        "sleep 3; dd if=/dev/zero of=/dev/shm/fill bs=1M count=48 2>/dev/null; sleep 300")
    samples = sse(server, "/api/containers/csl-mem/samples", "sample", 2)
    assert len(samples) == 2 and samples[0]["t"] < samples[1]["t"]
    assert set(samples[0]) == {"t", "cpu_pct", "mem_bytes", "io_read_bytes", "io_write_bytes",
                               "pids", "psi_cpu_some10", "psi_mem_some10", "psi_io_some10"}

    def filled():
        h = server.http.get("/api/containers/csl-mem/history").json()
        return h if h["mem_bytes"] and h["mem_bytes"][-1] > 40 << 20 else None
    h = wait_for(filled, 15, 0.25)
    assert h, server.http.get("/api/containers/csl-mem/history").json()
    assert len(h["t"]) >= 4 and all(len(h[k]) == len(h["t"]) for k in h if k != "mem_limit")
    assert h["mem_bytes"][0] < 8 << 20 and h["mem_limit"] == 128 << 20
    assert h["t"] == sorted(h["t"])
    env.kago("rm", "-f", "csl-mem", check=True)
    assert server.http.get("/api/containers/csl-mem/history").status_code == 404


def test_psi_under_a_cpu_quota(env, server):
    hostprobe.skip_unless_cgroup_files(("unified", "cpu.pressure"))
    run(env, "--name", "csl-hog", "--cpus", "0.1", "busybox", "sh", "-c", "while :; do :; done")

    def pressure():
        h = server.http.get("/api/containers/csl-hog/history").json()
        return h["psi_cpu_some10"][-1] if len(h["t"]) >= 3 else None
    assert wait_for(lambda: pressure() is not None, 10, 0.25), \
        server.http.get("/api/containers/csl-hog/history").json()
    assert wait_for(lambda: (pressure() or 0) > 0, 10, 0.25), pressure()
    row = next(r for r in server.http.get("/api/containers").json() if r["name"] == "csl-hog")
    assert 0 < row["cpu_pct"] < 30
    env.kago("rm", "-f", "csl-hog", check=True)


def test_groups_reload_and_down(env, server, tmp_path):
    definition = tmp_path / "csl-pair.py"
    definition.write_text(textwrap.dedent("""\
        from kago.manager.define import Container
        for i in range(2):
            Container(f"csl-pair-{i}", image="busybox", network="none",
                      command=["sleep", "300"], stop_signal="SIGKILL")
        """))
    env.kago("up", definition, check=True)
    [group] = server.http.get("/api/groups").json()
    assert group == {"name": "csl-pair", "definition": str(definition),
                     "containers": ["csl-pair-0", "csl-pair-1"], "running": 2, "total": 2}
    rows = server.http.get("/api/containers").json()
    assert {r["group"] for r in rows if r["name"].startswith("csl-pair")} == {"csl-pair"}
    h = server.auth()
    assert server.http.post("/api/groups/csl-pair/reload").status_code == 401
    assert server.http.post("/api/groups/csl-pair/reload", headers=h).status_code == 200
    assert server.http.post("/api/groups/nope/down", headers=h).status_code == 404
    down = server.http.post("/api/groups/csl-pair/down", headers=h)
    assert down.status_code == 200 and down.json()["down"] is True
    assert server.http.get("/api/groups").json() == []
    assert server.http.get("/api/containers?all=1").json() == []


def test_images_and_networks(env, server):
    [image] = server.http.get("/api/images").json()
    assert image["tags"] == ["busybox:latest"] and image["size"] > 0 and len(image["id"]) == 64
    run(env, "--name", "csl-net", "busybox", "sleep", "300", network=None)
    nets = server.http.get("/api/networks").json()
    [net] = [n for n in nets if "csl-net" in n["containers"]]
    assert net["driver"] == "bridge" and net["subnet"] and net["gateway"]
    env.kago("rm", "-f", "csl-net", check=True)


def console_processes(root):
    return processes_with("kago.console.server", root)


def test_a_definition_starts_and_stops_its_console(env, tmp_path):
    port = free_port()
    definition = tmp_path / "csl-web.py"
    definition.write_text(textwrap.dedent(f"""\
        from kago.manager.define import Container, console
        Container("csl-web-0", image="busybox", network="none", command=["sleep", "300"],
                  stop_signal="SIGKILL")
        console(listen="127.0.0.1:{port}")
        """))
    up = env.kago("up", definition, check=True)
    assert f"http://127.0.0.1:{port}/" in up.stdout
    try:
        [pid] = console_processes(env.root)
        rows = httpx.get(f"http://127.0.0.1:{port}/api/containers", timeout=10).json()
        assert [r["name"] for r in rows] == ["csl-web-0"] and rows[0]["group"] == "csl-web"
    finally:  # also when an assertion failed: the console would outlive the test, on its port
        env.kago("down", definition, check=True)
    assert wait_for(lambda: not console_processes(env.root), 10, 0.05)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again
    twice = tmp_path / "csl-twice.py"
    twice.write_text("from kago.manager.define import Container, console\n"
                     "Container('csl-x', image='busybox', network='none')\n"
                     "console()\nconsole(listen='127.0.0.1:19097')\n")
    refused = env.kago("up", twice)
    assert refused.returncode != 0 and "csl-twice.py:4: console() is given twice" in refused.stderr
