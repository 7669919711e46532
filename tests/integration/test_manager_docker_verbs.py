"""docker's smaller verbs through the ``kago`` command: port (with -P), rename, diff, update
on a running container, history, system df, and the ``container``/``image`` forms.

Every test gets its own manager root (kago.manager.testing.KagoEnv) and must leave nothing
behind.
"""

import os

from conftest import wait_for
from kago.manager.testing import kmt_fixture, wait_http  # noqa: F401 (fixture)


def test_publish_all_puts_exposed_ports_on_free_host_ports(kmt):
    cid = kmt.kago("run", "-d", "--name", "kmt-pa", "-P", "--expose", "80", "-p",
                   "127.0.0.1:28941:81", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc",
                   check=True).stdout.strip()
    lines = kmt.kago("port", "kmt-pa", check=True).stdout.splitlines()
    assert "81/tcp -> 127.0.0.1:28941" in lines, lines
    ours = [line for line in lines if line.startswith("80/tcp -> 0.0.0.0:")]
    assert len(ours) == 1, lines
    host_port = int(ours[0].rsplit(":", 1)[1])
    assert 1024 < host_port <= 65535
    assert kmt.kago("port", "kmt-pa", "81", check=True).stdout == "127.0.0.1:28941\n"
    proc = kmt.kago("port", "kmt-pa", "82/udp")
    assert proc.returncode == 125
    assert "no public port '82/udp' published for kmt-pa" in proc.stderr
    assert "root:" in (wait_http(host_port, "/passwd", timeout=15) or ""), lines
    assert kmt.inspect(cid)["HostConfig"]["PortBindings"]["80/tcp"]
    kmt.kago("rm", "-f", cid, check=True)


def test_rename(kmt):
    kmt.kago("create", "--name", "kmt-a", "--network", "none", "busybox", "true", check=True)
    kmt.kago("create", "--name", "kmt-b", "--network", "none", "busybox", "true", check=True)
    proc = kmt.kago("rename", "kmt-a", "kmt-b")
    assert proc.returncode == 125 and 'the container name "kmt-b" is already in use' in \
        proc.stderr
    proc = kmt.kago("rename", "kmt-a", "bad name")
    assert proc.returncode == 125 and "invalid container name" in proc.stderr
    kmt.kago("rename", "kmt-a", "kmt-c", check=True)
    assert kmt.inspect("kmt-c")["Name"] == "/kmt-c"
    assert kmt.kago("inspect", "kmt-a").returncode == 125
    # the old name is free again
    kmt.kago("create", "--name", "kmt-a", "--network", "none", "busybox", "true", check=True)
    for name in ("kmt-a", "kmt-b", "kmt-c"):
        kmt.kago("rm", name, check=True)


def test_diff_lists_the_writable_layer(kmt):
    kmt.kago("run", "--name", "kmt-diff", "--network", "none", "busybox", "sh", "-c",
             "echo x > /etc/kmt-new; echo y >> /etc/profile 2>/dev/null || "
             "echo y > /etc/profile; rm /bin/vi; mkdir -p /srv/kmt", check=True)
    lines = kmt.kago("diff", "kmt-diff", check=True).stdout.splitlines()
    assert "A /etc/kmt-new" in lines and "C /etc" in lines
    assert "D /bin/vi" in lines and "A /srv/kmt" in lines
    assert lines == sorted(lines, key=lambda line: line[2:])
    assert kmt.kago("container", "diff", "kmt-diff", check=True).stdout.splitlines() == lines
    kmt.kago("rm", "kmt-diff", check=True)


def _cgroup(cid, controller, name):
    path = f"/sys/fs/cgroup/{controller}/kago-{cid}/{name}"
    if not os.path.exists(path):
        path = f"/sys/fs/cgroup/unified/kago-{cid}/{name}"
    with open(path) as f:
        return f.read().strip()


def test_update_a_running_container(kmt):
    cid = kmt.kago("run", "-d", "--name", "kmt-up", "--network", "none", "-m", "32m",
                   "busybox", "sleep", "60", check=True).stdout.strip()
    kmt.kago("update", "--memory", "64m", "--pids-limit", "50", "--cpus", "0.5",
             "--restart", "on-failure:2", "kmt-up", check=True)
    assert _cgroup(cid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _cgroup(cid, "pids", "pids.max") == "50"
    assert _cgroup(cid, "cpu", "cpu.cfs_quota_us") == "50000"
    host = kmt.inspect("kmt-up")["HostConfig"]
    assert (host["Memory"], host["PidsLimit"], host["NanoCpus"]) == (64 << 20, 50, 500000000)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    proc = kmt.kago("update", "--memory", "lots", "kmt-up")
    assert proc.returncode == 125 and '--memory: invalid size "lots"' in proc.stderr
    assert kmt.kago("update", "kmt-up").returncode == 125
    kmt.kago("rm", "-f", "kmt-up", check=True)
    kmt.kago("create", "--rm", "--name", "kmt-rm", "--network", "none", "busybox", "true",
             check=True)
    proc = kmt.kago("update", "--restart", "always", "kmt-rm")
    assert "AutoRemove is enabled" in proc.stderr
    kmt.kago("rm", "kmt-rm", check=True)


def test_history_and_system_df(kmt):
    kmt.kago("run", "--name", "kmt-c1", "--network", "none", "busybox", "sh", "-c",
             "head -c 5000 /dev/zero > /kmt-file", check=True)
    kmt.kago("commit", "-m", "five thousand zeros", "kmt-c1", "kmt-img", check=True)
    rows = kmt.kago("history", "kmt-img", check=True).stdout.splitlines()
    assert rows[0].split()[:3] == ["IMAGE", "CREATED", "CREATED"]
    assert "five thousand zeros" in rows[1] and "5kB" in rows[1]
    assert rows[2].startswith("<missing>")
    image_id = kmt.kago("image", "inspect", "-f", "{{.Id}}", "kmt-img",
                        check=True).stdout.strip()
    quiet = kmt.kago("image", "history", "-q", "kmt-img", check=True).stdout.split()
    assert quiet[1:] == ["<missing>"] * (len(quiet) - 1)
    assert quiet[0] == image_id.removeprefix("sha256:")[:12]
    df = kmt.kago("system", "df", check=True).stdout.splitlines()
    assert df[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    types = {line.split("  ")[0]: line.split() for line in df[1:]}
    assert types["Images"][1:3] == ["2", "1"]
    assert types["Containers"][1:3] == ["1", "0"]
    assert types["Containers"][3] == "5kB"
    kmt.kago("rm", "kmt-c1", check=True)
    kmt.kago("image", "rm", "kmt-img", check=True)


def test_container_and_image_forms(kmt):
    kmt.kago("container", "create", "--name", "kmt-f", "--network", "none", "busybox",
             "true", check=True)
    ls = kmt.kago("container", "ls", "-a", "--format", "{{.Names}}", check=True).stdout
    assert ls == "kmt-f\n"
    assert kmt.kago("container", "start", "kmt-f", check=True).stdout == "kmt-f\n"
    assert wait_for(lambda: kmt.inspect("kmt-f")["State"]["Status"] == "exited", 10, 0.05)
    assert kmt.kago("container", "inspect", "-f", "{{.Name}}", "kmt-f",
                    check=True).stdout == "/kmt-f\n"
    assert "busybox" in kmt.kago("image", "ls", check=True).stdout
    assert kmt.kago("image", "inspect", "-f", "{{.Id}}", "busybox",
                    check=True).stdout.startswith("sha256:")
    assert kmt.kago("image", "inspect", "kmt-f").returncode != 0  # not a container's
    kmt.kago("image", "tag", "busybox", "kmt-tag:1", check=True)
    assert "Untagged: kmt-tag:1" in kmt.kago("image", "rm", "kmt-tag:1", check=True).stdout
    pruned = kmt.kago("container", "prune", "-f", check=True).stdout.split()
    assert pruned[:2] == ["Deleted", "Containers:"] and len(pruned) == 3
    assert kmt.kago("ps", "-aq", check=True).stdout == ""
    proc = kmt.kago("container", "fly")
    assert proc.returncode == 125 and "'container fly' is not a kago command" in proc.stderr


def test_an_updated_restart_policy_applies_at_the_next_end(kmt):
    kmt.kago("run", "-d", "--name", "kmt-rp", "--network", "none", "busybox", "sh", "-c",
             "sleep 1; exit 3", check=True)
    kmt.kago("update", "--restart", "on-failure:1", "kmt-rp", check=True)
    assert wait_for(lambda: kmt.inspect("kmt-rp")["RestartCount"] == 1, 20, 0.1)
    assert wait_for(lambda: kmt.inspect("kmt-rp")["State"]["Status"] == "exited", 20, 0.1)
    assert kmt.inspect("kmt-rp")["State"]["ExitCode"] == 3
    kmt.kago("rm", "-f", "kmt-rp", check=True)
