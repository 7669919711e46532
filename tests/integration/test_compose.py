"""``kago compose`` on the real kernel, each test on its own manager root (KagoEnv: its own
nft table and bridge names): a three-service project on the embedded busybox image (a web
server published on 127.0.0.1, a db-like server, a worker that depends on both and reaches
them by their service names), a named volume that survives ``down`` and goes with
``down -v``, ``-p``, ``config``, bad files (one line, exit 1, nothing made), an attached
``up`` stopped by Ctrl-C, and nothing left after ``down``."""

import json
import os
import random
import signal
import socket
import subprocess
import textwrap
import time

import yaml

from conftest import wait_for
from kago.manager.testing import KAGO, kmt_fixture, wait_http  # noqa: F401 (fixture)


def free_port():
    for _ in range(50):
        port = random.randrange(20000, 40000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError("no free port")


def project_file(kmt, directory, services, volumes="  data:\n"):
    """compose.yaml in ``directory`` whose default network is on this root's bridge names
    and a /24 of its own."""
    octet = int(kmt.settings["network"]["default_subnet"].split(".")[2])
    subnet = f"10.250.{(octet + 1) % 250 or 1}.0/24"
    text = textwrap.dedent(services) + textwrap.dedent(f"""\
        networks:
          default:
            driver_opts:
              com.docker.network.bridge.name: km{kmt.tag}p0
            ipam:
              config:
                - subnet: {subnet}
        volumes:
        """) + volumes
    path = os.path.join(directory, "compose.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


THREE = """\
    services:
      web:
        image: busybox
        command: ["httpd", "-f", "-p", "80", "-h", "/etc"]
        stop_grace_period: 1s          # httpd as PID 1 ignores SIGTERM
        ports:
          - "127.0.0.1:${WEB_PORT}:80"
      db:
        image: busybox
        command: httpd -f -p 5432 -h /etc
        stop_signal: SIGKILL
      worker:
        image: busybox
        depends_on:
          web:
            condition: service_started
          db:
            condition: service_started
        volumes:
          - data:/data
        environment:
          GREETING: ${GREETING:-hello}
        stop_grace_period: 1s
        command:
          - sh
          - -c
          - |
            n=$$(cat /data/count 2>/dev/null || echo 0); n=$$((n + 1)); echo $$n > /data/count
            echo "$$GREETING run $$n"
            for i in 1 2 3 4 5 6 7 8 9 10; do
              wget -qO- http://web/passwd >/dev/null &&
                wget -qO- http://db:5432/passwd >/dev/null && break
              sleep 0.3
            done
            wget -qO- http://web/passwd >/dev/null && echo web ok
            wget -qO- http://db:5432/passwd >/dev/null && echo db ok
            exec sleep 1000
    """


def compose(kmt, path, *args, env=None, **kw):
    old = dict(kmt.env)
    kmt.env.update(env or {})
    try:
        return kmt.kago("compose", "-f", path, "-p", f"kmt{kmt.tag}", *args, **kw)
    finally:
        kmt.env.clear()
        kmt.env.update(old)


def link_exists(name):
    return os.path.exists(f"/sys/class/net/{name}")


def test_three_services_up_ps_logs_down_and_a_volume_that_survives_down(kmt, tmp_path):
    path = project_file(kmt, str(tmp_path), THREE)
    port = free_port()
    env = {"WEB_PORT": str(port)}
    up = compose(kmt, path, "up", "-d", env=env, timeout=120)
    assert up.returncode == 0, up.stderr
    p = f"kmt{kmt.tag}"
    order = [line.split()[1] for line in up.stdout.splitlines() if line.endswith("Started")]
    assert order[-1] == f"{p}-worker-1" and set(order) == {f"{p}-web-1", f"{p}-db-1",
                                                             f"{p}-worker-1"}
    assert f"Network {p}_default  Created" in up.stdout
    assert link_exists(f"km{kmt.tag}p0")
    ps = compose(kmt, path, "ps", env=env, check=True).stdout.splitlines()
    assert ps[0].split()[:4] == ["NAME", "IMAGE", "SERVICE", "STATUS"]
    rows = {line.split()[0]: line for line in ps[1:]}
    assert set(rows) == {f"{p}-web-1", f"{p}-db-1", f"{p}-worker-1"}
    assert all(" Up " in row for row in rows.values())
    assert f"127.0.0.1:{port}->80/tcp" in rows[f"{p}-web-1"]
    assert "root:x:0:0" in (wait_http(port, "/passwd", timeout=10) or "")

    def worker_log():
        return compose(kmt, path, "logs", "worker", env=env).stdout
    assert wait_for(lambda: "db ok" in worker_log(), timeout=15), worker_log()
    assert worker_log() == "worker-1 | hello run 1\nworker-1 | web ok\nworker-1 | db ok\n"
    doc = kmt.inspect(f"{p}-worker-1")
    labels = doc["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == p
    assert labels["com.docker.compose.service"] == "worker"
    assert labels["com.docker.compose.container-number"] == "1"
    assert len(labels["com.docker.compose.config-hash"]) == 64
    assert doc["HostConfig"]["NetworkMode"] == f"{p}_default"

    # up again: nothing changed, nothing recreated
    again = compose(kmt, path, "up", "-d", env=env, check=True, timeout=60).stdout
    assert again.count("Running") == 3 and "Created" not in again

    down = compose(kmt, path, "down", env=env, check=True, timeout=60)
    assert f"Network {p}_default  Removed" in down.stdout
    assert kmt.kago("ps", "-aq", check=True).stdout == ""
    assert not link_exists(f"km{kmt.tag}p0")
    volume = os.path.join(kmt.root, "volumes", f"{p}_data")
    assert os.path.isfile(os.path.join(volume, "_data", "count"))
    labels = json.loads(kmt.kago("volume", "inspect", f"{p}_data", check=True).stdout)[0][
        "Labels"]
    assert labels == {"com.docker.compose.project": p, "com.docker.compose.volume": "data"}

    # the volume survived down: the next worker counts on
    compose(kmt, path, "up", "-d", "worker", env=dict(env, GREETING="again"), check=True,
            timeout=120)
    assert wait_for(lambda: "again run 2" in worker_log(), timeout=10), worker_log()
    # without a file, -p finds the project by its labels: ps, and down -v
    rows = kmt.kago("compose", "-p", p, "ps", check=True).stdout
    assert f"{p}-worker-1" in rows and f"{p}-web-1" in rows
    # (the cwd of the tests has no compose file)
    down = kmt.kago("compose", "-p", p, "down", "-v", check=True, timeout=60)
    assert f"Volume {p}_data  Removed" in down.stdout
    assert f"Network {p}_default  Removed" in down.stdout
    assert not os.path.exists(volume)
    assert kmt.kago("ps", "-aq", check=True).stdout == ""
    assert kmt.kago("network", "ls", check=True).stdout.count(f"{p}_default") == 0


def test_config_prints_the_resolved_file_and_the_project_name(kmt, tmp_path):
    directory = tmp_path / "My Shop.v2"
    directory.mkdir()
    (directory / ".env").write_text("TAG=from-dotenv\nPORT=8080\n")
    (directory / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          web:
            image: "busybox:${TAG}"
            ports: ["${PORT}:80"]
            command: echo $$HOME
        """))
    (directory / "override.yaml").write_text(textwrap.dedent("""\
        services:
          web:
            ports: ["9090:90"]
            environment: [A=1]
        """))
    env = dict(kmt.env, PORT="8081")
    proc = subprocess.run([KAGO, "compose", "-f", "compose.yaml", "-f", "override.yaml",
                           "config"], cwd=directory, env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(proc.stdout)
    assert doc["name"] == "myshopv2"
    web = doc["services"]["web"]
    assert web["image"] == "busybox:from-dotenv"
    assert web["ports"] == ["8081:80", "9090:90"]
    assert web["command"] == "echo $HOME" and web["environment"] == ["A=1"]
    named = subprocess.run([KAGO, "compose", "-p", "Other_Name", "config"], cwd=directory,
                           env=env, capture_output=True, text=True, timeout=30, check=False)
    assert yaml.safe_load(named.stdout)["name"] == "other_name"


def test_a_bad_file_is_one_line_with_its_line_exit_1_and_nothing_made(kmt, tmp_path):
    path = tmp_path / "compose.yaml"
    path.write_text(textwrap.dedent("""\
        services:
          web:
            image: busybox
            command: httpd -f
            networks: [front]
            ports:
              - "80:x"
        networks:
          front:
        """))
    proc = kmt.kago("compose", "-f", str(path), "up", "-d")
    assert proc.returncode == 1
    assert proc.stderr == f'kago: {path}:7: services.web.ports[0]: "80:x" is not a port: ' \
                          f"container port 'x' is not a port (1-65535)\n"
    path.write_text("services:\n  web:\n    image: busybox\n    depends_on: [db]\n")
    proc = kmt.kago("compose", "-f", str(path), "up", "-d")
    assert (proc.returncode, proc.stderr) == (
        1, f'kago: {path}:4: services.web.depends_on[0]: service "web" depends on undefined '
           f'service "db"\n')
    path.write_text("services:\n  web:\n    image: no-such-image\n")
    proc = kmt.kago("compose", "-f", str(path), "up", "-d")
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"kago: {path}:3: services.web.image: image no-such-image "
                                  f"not found")
    path.write_text("services:\n  web:\n    image: busybox\n   bad: [\n")
    proc = kmt.kago("compose", "-f", str(path), "config")
    assert proc.returncode == 1 and proc.stderr.startswith(f"kago: {path}:4: invalid YAML")
    assert kmt.kago("ps", "-aq", check=True).stdout == ""
    assert "front" not in kmt.kago("network", "ls", check=True).stdout


def test_attached_up_prefixes_the_output_and_ctrl_c_stops_the_services(kmt, tmp_path):
    path = project_file(kmt, str(tmp_path), """\
        services:
          talker:
            image: busybox
            stop_grace_period: 2s
            command:
              - sh
              - -c
              - "trap 'echo bye; exit 0' TERM; echo hello; while :; do sleep 0.1; done"
          quiet:
            image: busybox
            depends_on: [talker]
            command: ["sh", "-c", "echo started; exec sleep 1000"]
            stop_signal: SIGKILL
        """, volumes="")
    p = f"kmt{kmt.tag}"
    proc = subprocess.Popen([KAGO, "compose", "-f", path, "-p", p, "up"], env=kmt.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: "hello" in kmt.kago("logs", f"{p}-talker-1").stdout
                        and "started" in kmt.kago("logs", f"{p}-quiet-1").stdout,
                        timeout=30)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "talker-1 | hello\n" in out and "quiet-1  | started\n" in out
    assert "Gracefully stopping" in err
    ps = kmt.kago("ps", "-a", "--format", "{{.Names}} {{.Status}}", check=True).stdout
    assert f"{p}-talker-1 Exited (0)" in ps and f"{p}-quiet-1 Exited (137)" in ps
    assert "bye" in kmt.kago("logs", f"{p}-talker-1").stdout
    compose(kmt, path, "down", check=True)
    assert kmt.kago("ps", "-aq", check=True).stdout == ""

    # services that end on their own end an attached up, each announced, status 0
    path = project_file(kmt, str(tmp_path), """\
        services:
          once:
            image: busybox
            network_mode: none
            command: ["echo", "done"]
        """, volumes="")
    proc = compose(kmt, path, "up", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("once-1 | done\nonce-1 exited with code 0\n"), proc.stdout
    compose(kmt, path, "down", check=True)


def test_build_completed_dependencies_and_a_failed_up_rolls_back(kmt, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "Containerfile").write_text("FROM busybox\nARG WORD=none\n"
                                       "RUN echo built-$WORD > /built\n")
    path = project_file(kmt, str(tmp_path), """\
        services:
          setup:
            build: {context: ./app, args: {WORD: yes}}
            command: ["sh", "-c", "cat /built > /data/setup"]
            volumes: [data:/data]
          app:
            image: busybox
            depends_on:
              setup: {condition: service_completed_successfully}
            volumes: [data:/data]
            command: ["sh", "-c", "cat /data/setup; exec sleep 1000"]
            stop_signal: SIGKILL
        """)
    p = f"kmt{kmt.tag}"
    up = compose(kmt, path, "up", "-d", timeout=180)
    assert up.returncode == 0, up.stderr
    assert "Service setup  Built" in up.stdout
    assert kmt.kago("images", check=True).stdout.count(f"{p}-setup") == 1
    assert wait_for(lambda: "built-yes" in kmt.kago("logs", f"{p}-app-1").stdout, timeout=10)
    ps = compose(kmt, path, "ps", "-a", check=True).stdout
    assert "Exited (0)" in ps and ps.count(" Up ") == 1
    # a changed service is recreated, an unchanged one kept
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("cat /data/setup; exec", "cat /data/setup; echo changed; exec"))
    again = compose(kmt, path, "up", "-d", "app", check=True, timeout=120).stdout
    assert f"Container {p}-app-1  Recreate" in again and "Built" not in again
    assert wait_for(lambda: "changed" in kmt.kago("logs", f"{p}-app-1").stdout, timeout=10)
    compose(kmt, path, "down", "-v", check=True, timeout=60)

    # a service that cannot start: up fails (exit 1) and removes what it made
    path = project_file(kmt, str(tmp_path), """\
        services:
          first:
            image: busybox
            command: ["sleep", "1000"]
            stop_signal: SIGKILL
          broken:
            image: busybox
            depends_on: [first]
            command: ["no-such-program"]
        """, volumes="")
    proc = compose(kmt, path, "up", "-d", timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "no-such-program" in proc.stderr, proc.stderr
    assert kmt.kago("ps", "-aq", check=True).stdout == ""
    assert not link_exists(f"km{kmt.tag}p0")
    rmi = kmt.kago("rmi", f"{p}-setup", check=True)
    assert rmi.returncode == 0


def has_healthchecks():
    from dataclasses import fields

    from kago.manager.definition import Definition
    return any(f.name == "healthcheck" for f in fields(Definition))


def test_service_healthy_waits_for_the_healthcheck_and_an_unhealthy_one_fails(kmt, tmp_path):
    if not has_healthchecks():
        import pytest
        pytest.skip("this kago has no healthchecks: service_healthy is refused (unit tests)")
    path = project_file(kmt, str(tmp_path), """\
        services:
          db:
            image: busybox
            network_mode: none
            stop_signal: SIGKILL
            command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 1000"]
            healthcheck:
              test: ["CMD-SHELL", "test -f /tmp/ready"]
              interval: 200ms
              timeout: 2s
              retries: 2
              start_period: 5s
          app:
            image: busybox
            network_mode: none
            init: true
            depends_on:
              db: {condition: service_healthy}
            command: ["sleep", "1000"]
        """, volumes="")
    p = f"kmt{kmt.tag}"
    start = time.monotonic()
    up = compose(kmt, path, "up", "-d", timeout=120)
    assert up.returncode == 0, up.stderr
    lines = up.stdout.splitlines()
    healthy = lines.index(f" Container {p}-db-1  Healthy")
    assert healthy < lines.index(f" Container {p}-app-1  Started")
    assert time.monotonic() - start > 1.0
    assert kmt.inspect(f"{p}-db-1")["State"]["Health"]["Status"] == "healthy"
    assert kmt.inspect(f"{p}-app-1")["HostConfig"]["Init"] is True   # init: true
    table = kmt.kago("exec", f"{p}-app-1", "ps", "-o", "pid,args", check=True).stdout
    assert "1 /dev/init -- sleep 1000" in table
    compose(kmt, path, "down", check=True, timeout=60)

    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("test -f /tmp/ready", "false").replace("start_period: 5s",
                                                                      "start_period: 0s"))
    proc = compose(kmt, path, "up", "-d", timeout=120)
    assert proc.returncode == 1
    assert proc.stderr == f"kago: dependency failed to start: container {p}-db-1 is " \
                          f"unhealthy (service app depends on it)\n"
    assert kmt.kago("ps", "-aq", check=True).stdout == ""


def test_orphans_are_left_by_down_unless_remove_orphans_and_ps_q(kmt, tmp_path):
    two = """\
        services:
          a:
            image: busybox
            network_mode: none
            command: ["sleep", "1000"]
            stop_signal: SIGKILL
          b:
            image: busybox
            network_mode: none
            command: ["sleep", "1000"]
            stop_signal: SIGKILL
        """
    path = project_file(kmt, str(tmp_path), two, volumes="")
    p = f"kmt{kmt.tag}"
    compose(kmt, path, "up", "-d", check=True, timeout=60)
    ids = compose(kmt, path, "ps", "-q", check=True).stdout.split()
    assert len(ids) == 2 and all(len(i) == 64 for i in ids)
    project_file(kmt, str(tmp_path), two.split("          b:")[0], volumes="")
    down = compose(kmt, path, "down", timeout=60)
    assert down.returncode == 0
    assert f"found orphan containers ({p}-b-1)" in down.stderr
    assert kmt.kago("ps", "-a", "--format", "{{.Names}}", check=True).stdout == f"{p}-b-1\n"
    down = compose(kmt, path, "down", "--remove-orphans", check=True, timeout=60)
    assert f"Container {p}-b-1  Removed" in down.stdout
    assert kmt.kago("ps", "-aq", check=True).stdout == ""


def test_a_service_on_two_networks_reaches_both_by_name(kmt, tmp_path):
    octet = int(kmt.settings["network"]["default_subnet"].split(".")[2])
    front, back = ((octet + k) % 250 or 1 for k in (2, 3))
    path = tmp_path / "compose.yaml"
    path.write_text(textwrap.dedent(f"""\
        services:
          web:
            image: busybox
            command: ["httpd", "-f", "-p", "80", "-h", "/etc"]
            networks: [front]
            stop_signal: SIGKILL
          db:
            image: busybox
            command: ["httpd", "-f", "-p", "80", "-h", "/etc"]
            networks: [back]
            stop_signal: SIGKILL
          api:
            image: busybox
            depends_on: [web, db]
            networks:
              front: {{}}
              back: {{aliases: [api-internal]}}
            stop_signal: SIGKILL
            command:
              - sh
              - -c
              - |
                for i in 1 2 3 4 5 6 7 8 9 10; do
                  wget -qO- http://web/passwd >/dev/null &&
                    wget -qO- http://db/passwd >/dev/null && break
                  sleep 0.3
                done
                wget -qO- http://web/passwd >/dev/null && echo web ok
                wget -qO- http://db/passwd >/dev/null && echo db ok
                exec sleep 1000
        networks:
          front:
            driver_opts: {{com.docker.network.bridge.name: km{kmt.tag}f0}}
            ipam: {{config: [{{subnet: 10.250.{front}.0/24}}]}}
          back:
            driver_opts: {{com.docker.network.bridge.name: km{kmt.tag}k0}}
            ipam: {{config: [{{subnet: 10.250.{back}.0/24}}]}}
        """))
    p = f"kmt{kmt.tag}"
    up = compose(kmt, str(path), "up", "-d", timeout=120)
    assert up.returncode == 0, up.stderr
    assert wait_for(lambda: "db ok" in kmt.kago("logs", f"{p}-api-1").stdout, timeout=15), \
        kmt.kago("logs", f"{p}-api-1").stdout
    assert kmt.kago("logs", f"{p}-api-1").stdout == "web ok\ndb ok\n"
    nets = kmt.inspect(f"{p}-api-1")["NetworkSettings"]["Networks"]
    assert set(nets) == {f"{p}_front", f"{p}_back"}
    compose(kmt, str(path), "down", check=True, timeout=60)
    assert not link_exists(f"km{kmt.tag}f0") and not link_exists(f"km{kmt.tag}k0")


def test_env_file_entrypoint_user_working_dir_and_limits_reach_the_container(kmt, tmp_path):
    (tmp_path / "app.env").write_text("FROM_FILE=file\nBOTH=file\n")
    path = project_file(kmt, str(tmp_path), """\
        services:
          tool:
            image: busybox
            env_file: app.env
            environment: [BOTH=inline]
            entrypoint: ["/bin/sh", "-c"]
            command: ['echo "$$FROM_FILE $$BOTH $$(id -u):$$(id -g) $$(pwd)"; exec sleep 1000']
            user: "1000:1000"
            working_dir: /tmp
            stop_signal: SIGKILL
            deploy:
              resources:
                limits: {cpus: "0.5", memory: 64M, pids: 50}
        """, volumes="  {}\n")
    compose(kmt, path, "up", "-d", check=True, timeout=120)
    name = f"kmt{kmt.tag}-tool-1"
    assert wait_for(lambda: compose(kmt, path, "logs", "tool").stdout ==
                    "tool-1 | file inline 1000:1000 /tmp\n", timeout=10), \
        compose(kmt, path, "logs", "tool").stdout
    host = kmt.inspect(name)["HostConfig"]
    assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (5 * 10**8, 64 << 20, 50)
    labels = kmt.inspect(name)["Config"]["Labels"]
    assert labels["com.docker.compose.project"] == f"kmt{kmt.tag}"
    assert labels["com.docker.compose.service"] == "tool"
    compose(kmt, path, "down", check=True, timeout=120)
    assert kmt.kago("ps", "-aq", check=True).stdout == ""
