"""Definitions that are programs: kago up / ps / down / reload / archive on the real kernel.

Each test writes a small definition file, runs the command line against its own manager root
(kago.manager.testing.KagoEnv) and checks what the kernel shows: host UIDs of ID-mapped
workers, PID namespaces, CPU quotas, separate writable layers, hooks' order, the agent's
timers and exit hooks, live limit changes, and that a failing definition leaves nothing.
"""

import os
import textwrap
import time

import pytest

import hostprobe
from conftest import wait_for
from kago.manager.testing import kmt_fixture, wait_http  # noqa: F401 (fixture)


def definition(tmp_path, text, name="def.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def wait_until(predicate, timeout=10.0, interval=0.05):
    return wait_for(predicate, timeout, interval)  # conftest's, with the manager's pace


def read(path):
    with open(path) as f:
        return f.read().strip()


def _running(pid):
    try:
        return read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def containers_of(kmt):
    return sorted(r["name"] for r in kmt.manager().records.all())


WEB = """
from kago.manager.define import Container, id_range, tcp

for port in range({first}, {first} + {count}):
    web = Container(f"kmt-web-{{port}}", image="busybox", network="host",
                    command=["httpd", "-f", "-p", str(port), "-u", "33:33", "-h", "/etc"],
                    ids=id_range(port * 100, 100), cgroup={{"cpu.cfs_quota_us": 30000}},
                    stop_signal="SIGKILL")
    web.ready(tcp(port), timeout=5)
"""


def test_up_ps_down_id_ranges_pid_namespaces_quota_and_layers(kmt, tmp_path):
    first = 18411
    path = definition(tmp_path, WEB.format(first=first, count=3))
    up = kmt.kago("up", path, check=True)
    assert up.stdout.splitlines()[0].split()[:3] == ["NAME", "CONTAINER", "ID"]
    pids = {}
    for port in range(first, first + 3):
        assert wait_http(port, "/hostname") == f"kmt-web-{port}\n"
        doc = kmt.inspect(f"kmt-web-{port}")
        pid = doc["State"]["Pid"]
        pids[port] = pid
        with open(f"/proc/{pid}/status") as f:
            uid = next(line for line in f if line.startswith("Uid:")).split()[1]
        assert int(uid) == port * 100 + 33  # httpd dropped to 33 inside
        assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
        with open(f"/sys/fs/cgroup/cpu/kago-{doc['Id']}/cpu.cfs_quota_us") as f:
            assert f.read().strip() == "30000"
    # each has its own writable layer over the one image
    kmt.kago("exec", f"kmt-web-{first}", "touch", "/mine", check=True)
    assert kmt.kago("exec", f"kmt-web-{first + 1}", "test", "-e", "/mine").returncode == 1
    ps = kmt.kago("ps", path, check=True).stdout
    assert ps.count("Up ") == 3
    kmt.kago("down", "-t", "1", path, check=True)
    assert containers_of(kmt) == []
    assert not any(os.path.exists(f"/proc/{p}") for p in pids.values())


def test_a_definition_error_names_file_and_line_and_starts_nothing(kmt, tmp_path):
    path = definition(tmp_path, """\
        from kago.manager.define import Container
        Container("kmt-ok", image="busybox", network="none", command=["true"])
        Container("kmt-bad", image="busybox", network="none",
                  cgroup={"not a key": 1})
        """)
    proc = kmt.kago("up", path)
    assert proc.returncode == 125
    assert f"{path}:3: container kmt-bad: cgroup" in proc.stderr
    path = definition(tmp_path, "from kago.manager.define import Container\n\nx = 1 +\n",
                      "syntax.py")
    proc = kmt.kago("up", path)
    assert proc.returncode == 125 and f"{path}:3: syntax error" in proc.stderr
    path = definition(tmp_path, """\
        def broken():
            return {}["nope"]
        broken()
        """, "raises.py")
    proc = kmt.kago("up", path)
    assert f"{path}:2: KeyError" in proc.stderr
    path = definition(tmp_path, """\
        from kago.manager.define import Container
        Container("kmt-twice", image="busybox", command=["true"])
        Container("kmt-twice", image="busybox", command=["true"])
        """, "dup.py")
    assert "also used on line 2" in kmt.kago("up", path).stderr
    assert containers_of(kmt) == []


def test_down_now_ends_every_process_with_or_without_a_pid_namespace(kmt, tmp_path):
    """down -t 0 SIGKILLs the init of a container with its own PID namespace (the kernel ends
    the rest) and every process of one in the host's (through its cgroup): none is left, nor
    the records or the ID range."""
    path = definition(tmp_path, """\
        from kago.manager.define import Container, id_range
        Container("kmt-own", image="busybox", network="none", ids=id_range(1849100, 100),
                  command=["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
        Container("kmt-hostpid", image="busybox", network="none", namespaces={"pid": "host"},
                  command=["sh", "-c", "sleep 1000 & sleep 1000 & wait"])
        """)
    kmt.kago("up", path, check=True)
    pids = []
    for name in ("kmt-own", "kmt-hostpid"):
        procs = f"/sys/fs/cgroup/memory/kago-{kmt.inspect(name)['Id']}/cgroup.procs"
        assert wait_until(lambda: len(read(procs).split()) == 3), read(procs)
        pids += [int(p) for p in read(procs).split()]
    from kago.manager import idranges
    assert len(idranges.read(kmt.manager().paths)) == 1
    kmt.kago("down", "-t", "0", path, check=True)
    assert wait_until(lambda: not any(_running(p) for p in pids), timeout=5)
    assert containers_of(kmt) == []
    assert idranges.read(kmt.manager().paths) == {}


def test_a_failing_start_rolls_the_group_back(kmt, tmp_path):
    path = definition(tmp_path, """\
        from kago.manager.define import Container
        Container("kmt-first", image="busybox", network="none", command=["sleep", "60"])
        Container("kmt-second", image="busybox", network="none", command=["no-such-cmd"])
        """)
    proc = kmt.kago("up", path)
    assert proc.returncode == 127, proc.stderr
    assert "kmt-second" in proc.stderr
    assert containers_of(kmt) == []
    proc = kmt.kago("up", "--keep-going", path)
    assert proc.returncode == 1
    assert containers_of(kmt) == ["kmt-first", "kmt-second"]
    kmt.kago("down", "-t", "0", path, check=True)


def test_overlapping_id_ranges_are_refused(kmt, tmp_path):
    a = definition(tmp_path, """\
        from kago.manager.define import Container, id_range
        Container("kmt-a", image="busybox", network="none", command=["sleep", "60"],
                  ids=id_range(3000000, 1000))
        """, "a.py")
    b = definition(tmp_path, """\
        from kago.manager.define import Container, id_range
        Container("kmt-b", image="busybox", network="none", command=["sleep", "60"],
                  ids=id_range(3000500, 1000))
        """, "b.py")
    kmt.kago("up", a, check=True)
    proc = kmt.kago("up", b)
    assert proc.returncode == 125 and "overlaps container kmt-a" in proc.stderr
    assert containers_of(kmt) == ["kmt-a"]
    kmt.kago("down", "-t", "0", a, check=True)


def test_hooks_run_in_order_and_readiness_waits(kmt, tmp_path):
    log = tmp_path / "hooks.log"
    path = definition(tmp_path, f"""\
        from kago.manager.define import Container, tcp
        LOG = {str(log)!r}
        def note(what):
            def hook(c, *rest):
                with open(LOG, "a") as f:
                    f.write(f"{{what}} {{c.name}} {{c.pid > 0}}\\n")
            return hook
        web = Container("kmt-hooked", image="busybox", network="none",
                        command=["sh", "-c", "sleep 0.3; exec httpd -f -p 8080 -h /etc"],
                        stop_signal="SIGKILL")
        for moment in ("before_fork", "before_root_switch", "after_root_switch",
                       "after_fork"):
            web.on(moment)(note(moment))
        web.ready(tcp(8080), timeout=5)
        """)
    up = kmt.kago("up", path, check=True)
    lines = log.read_text().splitlines()
    assert [ln.split()[0] for ln in lines] == ["before_fork", "before_root_switch",
                                              "after_root_switch", "after_fork"]
    assert lines[0].endswith("False") and lines[-1].endswith("True")
    ready = float(up.stdout.splitlines()[1].split()[-1].rstrip("s"))
    assert ready >= 0.3
    kmt.kago("down", "-t", "0", path, check=True)


def test_ready_is_each_containers_own_time(kmt, tmp_path):
    """READY: from when up began with the container to its readiness, not the group's
    running total (the first one does not wait for the slow hook of the second)."""
    path = definition(tmp_path, """\
        import time
        from kago.manager.define import Container, tcp
        Container("kmt-r1", image="busybox", network="none", command=["sleep", "60"],
                  stop_signal="SIGKILL")
        slow = Container("kmt-r2", image="busybox", network="none",
                         command=["sh", "-c", "sleep 0.5; exec httpd -f -p 8080 -h /etc"],
                         stop_signal="SIGKILL")
        slow.on("before_fork")(lambda c: time.sleep(1.0))
        slow.ready(tcp(8080), timeout=10)
        Container("kmt-r3", image="busybox", network="none", command=["sleep", "60"],
                  stop_signal="SIGKILL")
        """)
    up = kmt.kago("up", path, check=True, timeout=120)
    rows = {line.split()[0]: line.split() for line in up.stdout.splitlines()[1:]}
    ready = {name: float(row[-1].rstrip("s")) for name, row in rows.items()}
    assert set(ready) == {"kmt-r1", "kmt-r2", "kmt-r3"}, up.stdout
    assert ready["kmt-r2"] >= 1.5, up.stdout            # its hook, then its server's sleep
    assert ready["kmt-r1"] < 1.0 and ready["kmt-r3"] < 1.0, up.stdout
    kmt.kago("down", "-t", "0", path, check=True)


def test_readiness_timeout_fails_and_rolls_back(kmt, tmp_path):
    path = definition(tmp_path, """\
        from kago.manager.define import Container, tcp
        c = Container("kmt-never", image="busybox", network="none", command=["sleep", "60"])
        c.ready(tcp(9), timeout=0.5)
        """)
    proc = kmt.kago("up", path)
    assert proc.returncode == 125 and "not ready after 0.5 s" in proc.stderr
    assert containers_of(kmt) == []


def test_agent_runs_timers_exit_and_signal_hooks(kmt, tmp_path):
    log = tmp_path / "agent.log"
    path = definition(tmp_path, f"""\
        from kago.manager.define import Container
        LOG = {str(log)!r}
        def write(text):
            with open(LOG, "a") as f:
                f.write(text + "\\n")
        c = Container("kmt-agent", image="busybox", network="none",
                      command=["sh", "-c", "sleep 1.5; exit 3"])
        @c.every(ms=100, times=3)
        def tick(c):
            write("tick")
        @c.on("exit")
        def ended(c, status):
            write(f"exit {{status}}")
        @c.on("failure")
        def failed(c, why):
            write(f"failure {{why}}")
        @c.on_signal("USR1")
        def poked(c):
            write("usr1")
        """)
    kmt.kago("up", path, check=True)
    assert "agent: pid" in kmt.kago("ps", path, check=True).stdout
    from kago.manager.define.group import Group
    agent = Group(kmt.manager(), path).data["agent"]
    kmt.pids_seen.add(agent)
    assert wait_until(lambda: log.exists() and log.read_text().count("tick") == 3)
    os.kill(agent, 10)
    assert wait_until(lambda: "usr1" in log.read_text())
    assert wait_until(lambda: "exit 3" in log.read_text(), timeout=5)
    assert "failure exited with status 3" in log.read_text()
    time.sleep(0.3)
    assert log.read_text().count("tick") == 3
    kmt.kago("down", path, check=True)
    assert wait_until(lambda: not _running(agent))


def test_reload_changes_limits_without_a_restart(kmt, tmp_path):
    path = definition(tmp_path, """\
        from kago.manager.define import Container
        Container("kmt-reload", image="busybox", network="none", command=["sleep", "60"],
                  cgroup={"cpu.max": env.get("CPU", "30000 100000")},
                  rlimits={"nofile": (int(env.get("NOFILE", "512")), 1024)},
                  stop_signal="SIGKILL")
        """)
    kmt.kago("up", "-e", "CPU=30000 100000", path, check=True)
    doc = kmt.inspect("kmt-reload")
    pid = doc["State"]["Pid"]
    quota = f"/sys/fs/cgroup/cpu/kago-{doc['Id']}/cpu.cfs_quota_us"
    assert read(quota) == "30000"
    out = kmt.kago("reload", "-e", "CPU=50000 100000", "-e", "NOFILE=256", path,
                   check=True).stdout
    assert "kmt-reload: limits applied" in out
    assert read(quota) == "50000"
    with open(f"/proc/{pid}/limits") as f:
        nofile = next(line for line in f if line.startswith("Max open files")).split()
    assert nofile[3:5] == ["256", "1024"]
    assert kmt.inspect("kmt-reload")["State"]["Pid"] == pid  # not restarted
    kmt.kago("down", "-t", "0", path, check=True)


def test_bootstrap_provision_and_archive(kmt, tmp_path, rootfs_cache):
    import subprocess
    tarball = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", rootfs_cache, "-cf", str(tarball), "."], check=True)
    rootfs = tmp_path / "made-rootfs"
    path = definition(tmp_path, f"""\
        from kago.manager.define import Container, tarball, shell, python
        def stamp(rootfs):
            with open(rootfs + "/etc/stamp", "w") as f:
                f.write("bootstrapped\\n")
        Container("kmt-boot", rootfs={str(rootfs)!r}, network="none",
                  command=["sleep", "60"], stop_signal="SIGKILL",
                  bootstrap=[tarball({str(tarball)!r}), shell("echo shell > $ROOTFS/etc/sh"),
                             python(stamp)],
                  provision=[shell("echo provisioned > /etc/prov")])
        """)
    kmt.kago("up", path, check=True)
    assert (rootfs / "etc" / "stamp").read_text() == "bootstrapped\n"
    assert (rootfs / "etc" / "sh").read_text() == "shell\n"
    assert kmt.kago("exec", "kmt-boot", "cat", "/etc/prov", check=True).stdout == \
        "provisioned\n"
    kmt.kago("down", "-t", "0", path, check=True)
    out = kmt.kago("archive", "--tag", "kmt-archived", path, check=True).stdout
    assert "kmt-boot: image kmt-archived" in out
    run = kmt.kago("run", "--rm", "--network", "none", "kmt-archived", "cat", "/etc/stamp",
                   "/etc/prov", check=True)
    assert run.stdout == "bootstrapped\nprovisioned\n"
    kmt.kago("rmi", "kmt-archived", check=True)


WATCHED = r"""
from kago.manager.define import Container

def write(text):
    with open(env["LOG"], "a") as f:
        f.write(text + "\n")

busy = Container("kmt-busy", image="busybox", network="none", stop_signal="SIGKILL",
                 command=["sh", "-c", "while :; do :; done"], cgroup={"cpu.cfs_quota_us": 2000})
hog = Container("kmt-hog", image="busybox", network="none", stop_signal="SIGKILL",
                command=["sh", "-c", "while :; do sh -c 'x=$(head -c 60000000 /dev/zero | "
                                     "tr \"\\0\" a)'; sleep 0.2; done"],
                cgroup={"memory.limit_in_bytes": "16m", NO_SWAP: NO_SWAP_VALUE})

@busy.on_pressure("cpu", stall_ms=100, window_ms=2000)
def starved(c):
    write("cpu pressure")

@hog.on_oom
def killed(c):
    write("oom")
"""


@pytest.mark.skipif(not hostprobe.has_cgroup_file("unified", "cpu.pressure"),
                    reason="no cgroup2 tree with PSI (cpu.pressure) here")
def test_agent_fires_pressure_and_oom_hooks(kmt, tmp_path):
    log = tmp_path / "watch.log"
    # the hog gets no swap: a memsw limit where the host accounts swap, else swappiness 0
    no_swap = ('"memory.memsw.limit_in_bytes": "16m"' if hostprobe.has_cgroup_file(
        "memory", "memory.memsw.limit_in_bytes") else '"memory.swappiness": "0"')
    path = definition(tmp_path, WATCHED.replace("NO_SWAP: NO_SWAP_VALUE", no_swap))
    kmt.kago("up", "-e", f"LOG={log}", path, check=True)
    from kago.manager.define.group import Group
    kmt.pids_seen.add(Group(kmt.manager(), path).data["agent"])
    assert wait_until(lambda: log.exists() and "cpu pressure" in log.read_text(), timeout=10)
    assert wait_until(lambda: "oom" in log.read_text(), timeout=10)
    kmt.kago("down", "-t", "0", path, check=True)


ENDING = r"""
from kago.manager.define import Container, bind

def write(text):
    with open(env["LOG"], "a") as f:
        f.write(text + "\n")

burst = Container("kmt-burst", image="busybox", network="none",
                  command=["sh", "-c", "while [ ! -e /shared/stop ]; do :; done"],
                  mounts=[bind(env["SHARED"], "/shared")], cgroup={"cpu.max": "2000 100000"})

@burst.on_pressure("cpu", stall_ms=100, window_ms=2000)
def starved(c):
    write("cpu pressure")

@burst.on("exit")
def ended(c, status):
    write(f"exit {status}")
"""


@pytest.mark.skipif(not hostprobe.has_cgroup_file("unified", "cpu.pressure"),
                    reason="no cgroup2 tree with PSI (cpu.pressure) here")
def test_a_pressure_hook_stops_when_its_container_ends(kmt, tmp_path):
    # the runtime removes an ended container's cgroup; a PSI trigger of a removed cgroup
    # polls as ready (POLLPRI|POLLERR) for ever: the agent must drop it, not fire on it
    log = tmp_path / "watch.log"
    shared = tmp_path / "shared"
    shared.mkdir()
    path = definition(tmp_path, ENDING)
    kmt.kago("up", "-e", f"LOG={log}", "-e", f"SHARED={shared}", path, check=True,
             timeout=120)
    agent = agent_pid(kmt, path)
    assert wait_until(lambda: lines(log, "cpu pressure") >= 1, 60, 0.1), log
    (shared / "stop").touch()  # the burner ends: exit 0
    assert wait_until(lambda: lines(log, "exit 0") == 1, 60, 0.1), log.read_text()
    fired = lines(log, "cpu pressure")
    cpu = cpu_ticks(agent)
    time.sleep(2.5)  # nothing to wait for: the agent's loop wakes at least twice meanwhile
    assert lines(log, "cpu pressure") == fired, log.read_text()
    assert cpu_ticks(agent) - cpu < 100, "the agent spins after its container ended"
    kmt.kago("down", "-t", "0", path, check=True, timeout=120)
    assert wait_until(lambda: not _running(agent), 30, 0.1)


def agent_pid(kmt, path):
    from kago.manager.define.group import Group
    pid = Group(kmt.manager(), path).data["agent"]
    kmt.pids_seen.add(pid)
    return pid


def lines(path, text):
    try:
        return path.read_text().splitlines().count(text)
    except FileNotFoundError:
        return 0


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime
