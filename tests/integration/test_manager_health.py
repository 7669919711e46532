"""Healthchecks and --init through the ``kago`` command on the real kernel, each test in its
own manager root (kago.manager.testing.KagoEnv): a passing check turns healthy in ps and
inspect, a failing one unhealthy after its retries, a hanging one is killed at its timeout,
the image's HEALTHCHECK (from ``kago build``) applies and --no-healthcheck turns it off;
checks stop when the container ends and leave no process. ``--init`` reaps orphans and
passes ``kago stop``'s SIGTERM to the command (exit 143)."""

import json
import os
import time

import pytest

from conftest import wait_for
from kago.manager.testing import kmt_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="kago needs root")


def health(kmt, ref):
    return kmt.inspect(ref)["State"].get("Health")


def status(kmt, ref):
    return kmt.kago("ps", "-a", "--filter", f"name={ref}", "--format", "{{.Status}}",
                    check=True).stdout.strip()


def processes_with(text):
    """Host processes whose command line holds ``text`` (a container ID, a marker)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append((int(pid), cmdline))
    return found


def test_a_passing_check_turns_healthy_in_ps_inspect_and_the_client(kmt):
    cid = kmt.kago("run", "-d", "--name", "kmt-ok", "--network", "none", "--health-cmd",
                   "echo fine", "--health-interval", "0.5s", "busybox", "sleep", "60",
                   check=True).stdout.strip()
    first = health(kmt, "kmt-ok")
    assert first["Status"] in ("starting", "healthy")
    if first["Status"] == "starting":
        assert status(kmt, "kmt-ok").endswith("(health: starting)")
    assert wait_for(lambda: health(kmt, "kmt-ok")["Status"] == "healthy", 10)
    assert status(kmt, "kmt-ok").startswith("Up ")
    assert status(kmt, "kmt-ok").endswith(" (healthy)")
    doc = kmt.inspect("kmt-ok")
    h = doc["State"]["Health"]
    assert h["FailingStreak"] == 0
    entry = h["Log"][-1]
    assert (entry["ExitCode"], entry["Output"]) == (0, "fine\n")
    assert entry["Start"] <= entry["End"] and entry["Start"].endswith("Z")
    assert doc["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL", "echo fine"],
                                            "Interval": 500_000_000}
    import kago
    client = kago.Client(kmt.root)
    c = client.container("kmt-ok")
    assert c.health == "healthy"
    assert c.attrs["State"]["Health"]["Status"] == "healthy"
    # the log keeps the last five results
    assert wait_for(lambda: len(health(kmt, "kmt-ok")["Log"]) == 5, 10)
    kmt.kago("stop", "-t", "1", "kmt-ok", check=True)
    assert processes_with(f"exec --pid-file {kmt.root}") == []
    assert not processes_with(cid)


def test_a_failing_check_turns_unhealthy_after_its_retries(kmt):
    kmt.kago("run", "-d", "--name", "kmt-bad", "--network", "none", "--health-cmd",
             "echo broken; exit 1", "--health-interval", "0.3s", "--health-retries", "2",
             "busybox", "sleep", "60", check=True)
    assert wait_for(lambda: health(kmt, "kmt-bad")["Status"] == "unhealthy", 10)
    h = health(kmt, "kmt-bad")
    assert h["FailingStreak"] >= 2
    assert {(e["ExitCode"], e["Output"]) for e in h["Log"]} == {(1, "broken\n")}
    assert status(kmt, "kmt-bad").endswith(" (unhealthy)")
    names = kmt.kago("ps", "--filter", "health=unhealthy", "--format", "{{.Names}}",
                     check=True).stdout
    assert names == "kmt-bad\n"
    assert kmt.kago("ps", "-q", "--filter", "health=healthy", check=True).stdout == ""
    assert kmt.kago("ps", "--filter", "health=sick").returncode == 125
    # a restart starts over: starting, no failure counted, the log kept
    kmt.kago("restart", "-t", "1", "kmt-bad", check=True)
    h = health(kmt, "kmt-bad")
    assert h["Status"] == "starting" or h["FailingStreak"] < 2
    assert h["Log"]


def test_a_hanging_check_is_killed_at_its_timeout(kmt):
    kmt.kago("run", "-d", "--name", "kmt-hang", "--network", "none", "--health-cmd",
             "echo started; sleep 47", "--health-interval", "0.2s", "--health-timeout", "1s",
             "--health-retries", "1", "busybox", "sleep", "60", check=True)
    assert wait_for(lambda: (health(kmt, "kmt-hang") or {}).get("Log"), 15)
    entry = health(kmt, "kmt-hang")["Log"][0]
    assert entry["ExitCode"] == -1
    assert entry["Output"] == "Health check exceeded timeout (1s)"
    took = _seconds(entry["End"]) - _seconds(entry["Start"])
    assert 0.9 < took < 4, took
    assert health(kmt, "kmt-hang")["Status"] == "unhealthy"
    # the killed checks' processes are gone (a new one may be running)
    assert wait_for(lambda: len(_in_container(kmt, "kmt-hang", "sleep 47")) <= 1, 5)
    kmt.kago("stop", "-t", "1", "kmt-hang", check=True)
    assert wait_for(lambda: not processes_with("sleep 47"), 5), processes_with("sleep 47")
    assert processes_with(f"exec --pid-file {kmt.root}") == []


def test_checks_stop_when_the_container_ends(kmt):
    kmt.kago("run", "-d", "--name", "kmt-end", "--network", "none", "--health-cmd", "true",
             "--health-interval", "0.2s", "busybox", "sleep", "1", check=True)
    assert wait_for(lambda: kmt.inspect("kmt-end")["State"]["Status"] == "exited", 10)
    log = health(kmt, "kmt-end")["Log"]
    time.sleep(0.8)
    assert health(kmt, "kmt-end")["Log"] == log
    assert status(kmt, "kmt-end").startswith("Exited (0)")
    assert processes_with(f"exec --pid-file {kmt.root}") == []
    # nothing watched: the supervisor goes idle and exits, and no probe worker (a fork of
    # it, with its command line) stays behind
    assert wait_for(lambda: not processes_with(f"--root {kmt.root} "), 15), \
        processes_with(f"--root {kmt.root} ")


def test_the_images_healthcheck_applies_and_no_healthcheck_turns_it_off(kmt, tmp_path):
    (tmp_path / "Containerfile").write_text(
        "FROM busybox\nHEALTHCHECK --interval=300ms --retries=2 CMD echo from-image\n")
    kmt.kago("build", "-q", "-t", "kmt-hc", str(tmp_path), check=True, timeout=180)
    kmt.kago("run", "-d", "--name", "kmt-img", "--network", "none", "kmt-hc", "sleep", "60",
             check=True)
    assert wait_for(lambda: health(kmt, "kmt-img")["Status"] == "healthy", 10)
    assert health(kmt, "kmt-img")["Log"][-1]["Output"] == "from-image\n"
    assert kmt.inspect("kmt-img")["Config"]["Healthcheck"] == {
        "Test": ["CMD-SHELL", "echo from-image"], "Interval": 300_000_000, "Retries": 2}
    # --health-cmd replaces the image's command, keeping its interval
    kmt.kago("run", "-d", "--name", "kmt-over", "--network", "none", "--health-cmd", "exit 3",
             "kmt-hc", "sleep", "60", check=True)
    assert wait_for(lambda: health(kmt, "kmt-over")["Status"] == "unhealthy", 10)
    kmt.kago("run", "-d", "--name", "kmt-none", "--network", "none", "--no-healthcheck",
             "kmt-hc", "sleep", "60", check=True)
    time.sleep(1)
    doc = kmt.inspect("kmt-none")
    assert "Health" not in doc["State"]
    assert doc["Config"]["Healthcheck"]["Test"] == ["NONE"]
    assert status(kmt, "kmt-none").startswith("Up ") and "(" not in status(kmt, "kmt-none")
    import kago
    assert kago.Client(kmt.root).container("kmt-none").health is None
    kmt.kago("rm", "-f", "kmt-img", "kmt-over", "kmt-none", check=True)
    assert processes_with(f"exec --pid-file {kmt.root}") == []


def test_init_reaps_orphans(kmt):
    orphans = "(sleep 0.1 &); (sleep 0.1 &); exec sleep 30"
    kmt.kago("run", "-d", "--name", "kmt-zombies", "--network", "none", "busybox", "sh", "-c",
             orphans, check=True)
    kmt.kago("run", "-d", "--name", "kmt-init", "--network", "none", "--init", "busybox",
             "sh", "-c", orphans, check=True)
    time.sleep(0.8)
    # without an init, sleep as PID 1 never reaps them: zombies (the control)
    assert len(_zombies(kmt, "kmt-zombies")) == 2
    assert _zombies(kmt, "kmt-init") == []
    table = kmt.kago("exec", "kmt-init", "ps", "-o", "pid,args", check=True).stdout
    assert "1 /dev/init -- sh -c" in table
    doc = kmt.inspect("kmt-init")
    assert doc["HostConfig"]["Init"] is True
    assert (doc["Path"], doc["Args"][0]) == ("sh", "-c")  # the command, not the init


def test_init_forwards_sigterm_to_the_command(kmt):
    kmt.kago("run", "-d", "--name", "kmt-term", "--network", "none", "--init", "busybox",
             "sleep", "60", check=True)
    t0 = time.monotonic()
    kmt.kago("stop", "-t", "10", "kmt-term", check=True)
    took = time.monotonic() - t0
    assert took < 3, took  # not the 10 s before SIGKILL
    assert kmt.inspect("kmt-term")["State"]["ExitCode"] == 143
    proc = kmt.kago("run", "--rm", "--network", "none", "--init", "busybox", "sh", "-c",
                    "exit 7")
    assert proc.returncode == 7


def _in_container(kmt, ref, text):
    out = kmt.kago("exec", ref, "ps", "-o", "pid,args").stdout
    return [line for line in out.splitlines() if text in line and "ps -o" not in line]


def _zombies(kmt, ref):
    out = kmt.kago("exec", ref, "ps", "-o", "stat,args", check=True).stdout
    return [line for line in out.splitlines() if line.split()[0].startswith("Z")]


def _seconds(stamp):
    from kago.manager.logs import parse_timestamp
    return parse_timestamp(stamp)


def test_inspect_has_no_health_without_a_check(kmt):
    kmt.kago("run", "-d", "--name", "kmt-plain", "--network", "none", "busybox", "sleep",
             "30", check=True)
    doc = kmt.inspect("kmt-plain")
    assert "Health" not in doc["State"] and "Healthcheck" not in doc["Config"]
    assert json.loads(kmt.kago("inspect", "-f", "{{json .State}}", "kmt-plain",
                               check=True).stdout).get("Health") is None


def test_under_runc_checks_are_killed_at_their_timeout_and_init_runs(workdir, rootfs_cache):
    """The same through runc's exec (--pid-file) and runc's handling of the /dev/init bind."""
    import shutil

    from kago.manager.testing import KagoEnv
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed")
    env = KagoEnv(workdir, runtime=runc, rootfs_cache=rootfs_cache)
    try:
        env.kago("run", "-d", "--name", "kmt-runc-hang", "--network", "none", "--init",
                 "--health-cmd", "echo started; sleep 48", "--health-interval", "0.2s",
                 "--health-timeout", "1s", "busybox", "sleep", "60", check=True)
        assert wait_for(lambda: (health(env, "kmt-runc-hang") or {}).get("Log"), 15)
        entry = health(env, "kmt-runc-hang")["Log"][0]
        assert (entry["ExitCode"], entry["Output"]) == (-1, "Health check exceeded timeout "
                                                            "(1s)")
        assert "1 /dev/init -- sleep 60" in env.kago("exec", "kmt-runc-hang", "ps", "-o",
                                                     "pid,args", check=True).stdout
        t0 = time.monotonic()
        env.kago("stop", "-t", "10", "kmt-runc-hang", check=True)
        assert time.monotonic() - t0 < 3
        assert env.inspect("kmt-runc-hang")["State"]["ExitCode"] == 143
        assert wait_for(lambda: not processes_with("sleep 48"), 5), processes_with("sleep 48")
        assert processes_with(f"exec --pid-file {env.root}") == []
    finally:
        left = env.destroy()
    assert not left, left


def test_kago_up_waits_for_healthy(kmt, tmp_path):
    path = tmp_path / "def.py"
    path.write_text(
        'c = Container("kmt-upweb", image="busybox", network="none", init=True,\n'
        '              command=["sh", "-c", "sleep 1; touch /tmp/up; exec sleep 60"],\n'
        '              healthcheck={"test": "test -e /tmp/up", "interval": 0.3,\n'
        '                           "start_period": "10s", "start_interval": 0.2})\n'
        'c.ready(healthy(), timeout=15)\n')
    up = kmt.kago("up", path, check=True)
    assert "(healthy)" in up.stdout
    assert health(kmt, "kmt-upweb")["Status"] == "healthy"
    kmt.kago("down", "-t", "1", path, check=True)
    bad = tmp_path / "bad.py"
    bad.write_text('c = Container("kmt-upbad", image="busybox", network="none",\n'
                   '              command=["sleep", "60"], healthcheck={"test": "false",\n'
                   '              "interval": 0.2, "retries": 1})\n'
                   'c.ready(healthy(), timeout=1.5)\n')
    proc = kmt.kago("up", bad)
    assert proc.returncode == 125
    assert "container kmt-upbad not ready after 1.5 s (healthcheck)" in proc.stderr
    assert kmt.kago("ps", "-aq", check=True).stdout == ""


def test_a_new_supervisor_takes_the_checks_over(kmt):
    """A supervisor killed while a check runs: its probe worker ends on its own (it holds
    no lock), and the next supervisor runs the container's checks."""
    import signal
    kmt.kago("run", "-d", "--name", "kmt-adopt", "--network", "none", "--health-cmd",
             "sleep 1.5; echo done", "--health-interval", "0.2s", "busybox", "sleep", "60",
             check=True)
    assert wait_for(lambda: _in_container(kmt, "kmt-adopt", "sleep 1.5"), 10)
    old = kmt.supervisor_pid()
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: kmt.supervisor_pid() is None, 5)
    # any command that needs a supervisor starts one, which adopts kmt-adopt
    kmt.kago("run", "-d", "--name", "kmt-other", "--network", "none", "busybox", "sleep",
             "60", check=True)
    assert kmt.supervisor_pid() not in (None, old)
    assert wait_for(lambda: (health(kmt, "kmt-adopt") or {}).get("Status") == "healthy", 15)
    kmt.kago("rm", "-f", "kmt-adopt", "kmt-other", check=True)
    assert wait_for(lambda: not processes_with("sleep 1.5"), 5)


def test_the_clients_healthcheck_and_init_options(kmt):
    import kago
    client = kago.Client(kmt.root)
    c = client.run("busybox", ["sleep", "60"], name="kmt-api", network="none", init=True,
                   healthcheck={"test": ["test", "-d", "/"], "interval": 0.3})
    assert c.health in ("starting", "healthy")
    assert wait_for(lambda: c.reload().health == "healthy", 10)
    entry = c.reload().attrs["State"]["Health"]["Log"][-1]
    assert (entry["ExitCode"], entry["Output"]) == (0, "")
    assert c.reload().attrs["HostConfig"]["Init"] is True
    stopped = c.stop(timeout=10)
    assert stopped.exit_code == 143
    c.remove()


def test_checks_and_containers_start_with_sigpipe_at_its_default(kmt):
    """As under runc: neither the container nor its checks inherit Python's ignored SIGPIPE."""
    import signal
    kmt.kago("run", "-d", "--name", "kmt-sig", "--network", "none", "--health-cmd",
             "grep SigIgn /proc/self/status", "--health-interval", "0.3s", "busybox", "sh",
             "-c", "grep SigIgn /proc/self/status; exec sleep 60", check=True)
    assert wait_for(lambda: (health(kmt, "kmt-sig") or {}).get("Log"), 10)
    pipe = 1 << (signal.SIGPIPE - 1)
    check = health(kmt, "kmt-sig")["Log"][0]["Output"]
    assert not int(check.split()[1], 16) & pipe, check
    assert wait_for(lambda: "SigIgn" in kmt.kago("logs", "kmt-sig").stdout, 5)
    main = kmt.kago("logs", "kmt-sig").stdout
    assert not int(main.split()[1], 16) & pipe, main
