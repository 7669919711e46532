"""kago volume create/ls/inspect/rm/prune through the command line: docker's output, a
volume made by ``-v NAME:/path``, removal refused while any container uses it (with -f too),
and prune's prompt."""

import json
import os

from kago.manager.testing import kmt_fixture  # noqa: F401 (fixture)


def test_create_ls_inspect_and_filters(kmt):
    assert kmt.kago("volume", "create", "--label", "tier=db", "kmt-v1",
                    check=True).stdout == "kmt-v1\n"
    generated = kmt.kago("volume", "create", check=True).stdout.strip()
    assert len(generated) == 64
    # an existing name is returned as it is (docker's)
    assert kmt.kago("volume", "create", "kmt-v1", check=True).stdout == "kmt-v1\n"
    table = kmt.kago("volume", "ls", check=True).stdout.splitlines()
    assert table[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert sorted(line.split()[1] for line in table[1:]) == sorted([generated, "kmt-v1"])
    assert kmt.kago("volume", "ls", "-q", "--filter", "label=tier=db",
                    check=True).stdout == "kmt-v1\n"
    assert kmt.kago("volume", "ls", "-q", "-f", "name=kmt-", check=True).stdout == "kmt-v1\n"
    doc, = json.loads(kmt.kago("volume", "inspect", "kmt-v1", check=True).stdout)
    assert (doc["Name"], doc["Driver"], doc["Labels"], doc["Scope"]) == (
        "kmt-v1", "local", {"tier": "db"}, "local")
    assert doc["Mountpoint"] == os.path.join(kmt.root, "volumes", "kmt-v1", "_data")
    assert os.path.isdir(doc["Mountpoint"]) and doc["CreatedAt"].endswith("Z")
    proc = kmt.kago("volume", "inspect", "kmt-v1", "kmt-nope")
    assert proc.returncode == 1 and proc.stderr == "kago: no such volume: kmt-nope\n"
    assert [d["Name"] for d in json.loads(proc.stdout)] == ["kmt-v1"]
    assert kmt.kago("volume", "create", "bad/name").returncode == 1
    assert kmt.kago("volume", "ls", "--filter", "colour=blue").returncode == 1
    assert kmt.kago("volume", "frob").returncode == 125


def test_a_used_volume_is_not_removed_even_with_force(kmt):
    kmt.kago("run", "-d", "--name", "kmt-vuser", "--network", "none", "-v", "kmt-data:/data",
             "busybox", "sh", "-c", "echo kept > /data/f; sleep 60", check=True)
    doc = kmt.inspect("kmt-vuser")
    cid = doc["Id"]
    mount, = doc["Mounts"]
    assert (mount["Type"], mount["Name"], mount["Destination"], mount["Driver"], mount["RW"]) \
        == ("volume", "kmt-data", "/data", "local", True)
    assert mount["Source"] == os.path.join(kmt.root, "volumes", "kmt-data", "_data")
    # -v NAME made the volume
    assert kmt.kago("volume", "ls", "-q", check=True).stdout == "kmt-data\n"
    assert kmt.kago("volume", "ls", "-q", "-f", "dangling=true", check=True).stdout == ""
    for flags in ((), ("-f",)):
        proc = kmt.kago("volume", "rm", *flags, "kmt-data")
        assert proc.returncode == 1
        assert proc.stderr == f"kago: remove kmt-data: volume is in use - [{cid}]\n"
    kmt.kago("stop", "-t", "0", "kmt-vuser", check=True)
    assert kmt.kago("volume", "rm", "kmt-data").returncode == 1  # a stopped one uses it too
    mountpoint = os.path.join(kmt.root, "volumes", "kmt-data", "_data")
    assert open(os.path.join(mountpoint, "f")).read() == "kept\n"
    # a new container on the same volume sees the data
    out = kmt.kago("run", "--rm", "--network", "none", "-v", "kmt-data:/d", "busybox", "cat",
                   "/d/f", check=True).stdout
    assert out == "kept\n"
    kmt.kago("rm", "kmt-vuser", check=True)
    assert kmt.kago("volume", "rm", "kmt-data", check=True).stdout == "kmt-data\n"
    assert not os.path.exists(os.path.join(kmt.root, "volumes", "kmt-data"))
    proc = kmt.kago("volume", "rm", "kmt-data")
    assert proc.returncode == 1 and proc.stderr == "kago: no such volume: kmt-data\n"
    assert kmt.kago("volume", "rm", "-f", "kmt-data").returncode == 0


def test_prune_asks_and_keeps_used_and_named_volumes(kmt):
    kmt.kago("volume", "create", "kmt-named", check=True)
    kmt.kago("volume", "create", "--label", "com.docker.volume.anonymous=", "kmt-anon",
             check=True)
    kmt.kago("create", "--name", "kmt-vp", "--network", "none", "-v", "kmt-used:/u", "busybox",
             "true", check=True)
    proc = kmt.kago("volume", "prune", input="n\n")
    assert proc.returncode == 0 and "Are you sure you want to continue? [y/N]" in proc.stdout
    assert "anonymous local volumes" in proc.stdout
    assert len(kmt.kago("volume", "ls", "-q", check=True).stdout.split()) == 3
    # without -a: anonymous volumes only
    out = kmt.kago("volume", "prune", input="y\n", check=True).stdout
    assert "Deleted Volumes:\nkmt-anon\n" in out and "Total reclaimed space:" in out
    # -a: every unused one; the volume a container names stays
    out = kmt.kago("volume", "prune", "-a", "-f", check=True).stdout
    assert "Deleted Volumes:\nkmt-named\n" in out
    assert kmt.kago("volume", "ls", "-q", check=True).stdout == "kmt-used\n"
    assert "Deleted Volumes" not in kmt.kago("volume", "prune", "-af", check=True).stdout


def test_a_volume_an_id_mapped_container_makes_is_its_roots(kmt):
    out = kmt.kago("run", "--rm", "--network", "none", "--userns", "auto", "-v",
                   "kmt-mapped:/data", "busybox", "sh", "-c",
                   "touch /data/x && stat -c %u:%g /data/x", check=True).stdout
    assert out == "0:0\n"
    mountpoint = os.path.join(kmt.root, "volumes", "kmt-mapped", "_data")
    assert os.stat(mountpoint).st_uid >= 1 << 30  # the range's root on this host


def test_system_prune_volumes_takes_anonymous_volumes_its_containers_freed(kmt):
    kmt.kago("volume", "create", "--label", "com.docker.volume.anonymous=", "kmt-anon2",
             check=True)
    kmt.kago("volume", "create", "kmt-named2", check=True)
    kmt.kago("create", "--name", "kmt-vsp", "--network", "none", "-v", "kmt-anon2:/a",
             "busybox", "true", check=True)
    proc = kmt.kago("system", "prune", "--volumes", input="n\n")
    assert "all anonymous volumes not used by at least one container" in proc.stdout
    assert "anonymous volumes" not in kmt.kago("system", "prune", input="n\n").stdout
    out = kmt.kago("system", "prune", "-f", "--volumes", check=True).stdout
    assert "Deleted Containers:" in out and "Deleted Volumes:\nkmt-anon2\n" in out
    assert kmt.kago("volume", "ls", "-q", check=True).stdout == "kmt-named2\n"


def test_a_volume_on_etc_keeps_the_containers_hosts_hostname_and_resolv_conf(kmt, tmp_path):
    """docker mounts by depth: a volume at /etc (written /x/../etc too) goes first, the
    container's /etc files over it; a file the user binds at /etc/hosts is the user's."""
    mine = tmp_path / "hosts"
    mine.write_text("10.9.8.7 mine\n")
    for dest in ("/etc", "/x/../etc"):
        out = kmt.kago("run", "--rm", "--network", "none", "--hostname", "kmt-etc",
                       "-v", f"kmt-etc:{dest}", "busybox", "sh", "-c",
                       "cat /etc/hostname; grep -q localhost /etc/hosts && echo hosts; "
                       "test -f /etc/resolv.conf && echo resolv", check=True).stdout.split()
        assert out == ["kmt-etc", "hosts", "resolv"], (dest, out)
    out = kmt.kago("run", "--rm", "--network", "none", "-v", "kmt-etc:/etc",
                   "-v", f"{mine}:/etc/hosts:ro", "busybox", "cat", "/etc/hosts",
                   check=True).stdout
    assert out == "10.9.8.7 mine\n"
    kmt.kago("volume", "rm", "kmt-etc", check=True)
