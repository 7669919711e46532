"""kago cp through the command line: in and out of running and stopped containers, tar
streams, symlinks in the container that point out of it, an ID-mapped container, volumes,
and bad input (one line, exit status 1, nothing left mounted)."""

import io
import os
import stat
import subprocess
import tarfile

from conftest import wait_for
from kago.manager.testing import KAGO, kmt_fixture  # noqa: F401 (fixture)

SETUP = ("ln -s / /escape; ln -s ../../../etc /x; echo container-shadow > /etc/shadow; "
         "mkdir -p /srv/app/sub; echo one > /srv/app/a; echo two > /srv/app/sub/b; "
         "ln -s a /srv/app/link; touch /ready; ")


def run_ready(kmt, name, *flags, command="sleep 60"):
    kmt.kago("run", "-d", "--name", name, "--network", "none", *flags, "busybox", "sh", "-c",
             SETUP + command, check=True)
    assert wait_for(lambda: kmt.kago("exec", name, "test", "-e", "/ready").returncode == 0,
                    timeout=10)
    return kmt.inspect(name)["Id"]


def cat(kmt, name, path):
    return kmt.kago("exec", name, "cat", path, check=True).stdout


def raw(kmt, *args, data=None):
    """kago with binary stdin/stdout (tar streams)."""
    return subprocess.run([KAGO, *args], input=data, capture_output=True, env=kmt.env,
                          timeout=60, check=False)


def one_line_error(proc, *words):
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode()
    assert proc.returncode == 1, err
    assert len(err.splitlines()) == 1 and err.startswith("kago: "), err
    for word in words:
        assert word in err, err


def test_cp_out_and_in_of_a_running_container_by_docker_rules(kmt, tmp_path):
    run_ready(kmt, "kmt-cp")
    # a file out: into an existing directory, and to a new name
    kmt.kago("cp", "kmt-cp:/srv/app/a", str(tmp_path), check=True)
    kmt.kago("cp", "kmt-cp:/srv/app/a", str(tmp_path / "renamed"), check=True)
    assert (tmp_path / "a").read_text() == "one\n" == (tmp_path / "renamed").read_text()
    # a directory out: a new name gets the contents, an existing directory the directory
    kmt.kago("cp", "kmt-cp:/srv/app", str(tmp_path / "copy"), check=True)
    kmt.kago("cp", "kmt-cp:/srv/app", str(tmp_path / "copy"), check=True)
    kmt.kago("cp", "kmt-cp:/srv/app/.", str(tmp_path / "flat"), check=True)
    assert (tmp_path / "copy/sub/b").read_text() == "two\n"
    assert (tmp_path / "copy/app/sub/b").read_text() == "two\n"
    assert sorted(os.listdir(tmp_path / "flat")) == ["a", "link", "sub"]
    # a symlink is copied as a link; -L copies what it points to
    assert os.readlink(tmp_path / "copy/link") == "a"
    kmt.kago("cp", "kmt-cp:/srv/app/link", str(tmp_path / "l1"), check=True)
    kmt.kago("cp", "-L", "kmt-cp:/srv/app/link", str(tmp_path / "l2"), check=True)
    assert os.readlink(tmp_path / "l1") == "a"
    assert (tmp_path / "l2").read_text() == "one\n" and not os.path.islink(tmp_path / "l2")
    # in: a file into a directory (root's inside, mode kept), a tree to a new name
    src = tmp_path / "in"
    (src / "deep").mkdir(parents=True)
    (src / "f").write_text("in\n")
    (src / "deep/g").write_text("deep\n")
    os.chmod(src / "f", 0o751)
    os.chown(src / "f", 1234, 1234)
    kmt.kago("cp", str(src / "f"), "kmt-cp:/srv/", check=True)
    assert cat(kmt, "kmt-cp", "/srv/f") == "in\n"
    assert kmt.kago("exec", "kmt-cp", "stat", "-c", "%a %u:%g", "/srv/f",
                    check=True).stdout.split() == ["751", "0:0"]
    kmt.kago("cp", "-a", str(src / "f"), "kmt-cp:/srv/kept", check=True)
    assert kmt.kago("exec", "kmt-cp", "stat", "-c", "%u:%g", "/srv/kept",
                    check=True).stdout.strip() == "1234:1234"
    kmt.kago("cp", str(src), "kmt-cp:/srv/tree", check=True)
    assert cat(kmt, "kmt-cp", "/srv/tree/deep/g") == "deep\n"
    # docker's refusals: a directory onto a file, a file into a missing directory
    one_line_error(kmt.kago("cp", str(src), "kmt-cp:/srv/f"), "cannot copy a directory")
    one_line_error(kmt.kago("cp", str(src / "f"), "kmt-cp:/nodir/"), "no such directory")
    one_line_error(kmt.kago("cp", "kmt-cp:/srv/app", str(tmp_path / "a")),
                   "cannot copy a directory to a file")


def test_symlinks_in_the_container_resolve_inside_it(kmt, tmp_path):
    run_ready(kmt, "kmt-cp-link")
    # /escape -> /: the container's /etc/shadow, not this host's
    kmt.kago("cp", "kmt-cp-link:/escape/etc/shadow", str(tmp_path), check=True)
    assert (tmp_path / "shadow").read_text() == "container-shadow\n"
    # /x -> ../../../etc: written into the container's /etc, never this host's
    name = f"kmt-cp-planted-{os.getpid()}"
    (tmp_path / name).write_text("planted\n")
    kmt.kago("cp", str(tmp_path / name), "kmt-cp-link:/x/", check=True)
    assert not os.path.exists(f"/etc/{name}")
    assert cat(kmt, "kmt-cp-link", f"/etc/{name}") == "planted\n"
    kmt.kago("cp", str(tmp_path / name), "kmt-cp-link:/escape/x/../../etc/again", check=True)
    assert not os.path.exists("/etc/again")
    assert cat(kmt, "kmt-cp-link", "/etc/again") == "planted\n"
    # a tar stream with a .. member is refused whole; a symlink member leads inside
    bad = _tar({"../../../../../tmp/kmt-cp-escaped": b"x"})
    one_line_error(raw(kmt, "cp", "-", "kmt-cp-link:/srv", data=bad), "leaves the destination")
    assert not os.path.exists("/tmp/kmt-cp-escaped")


def test_tar_streams_both_ways(kmt):
    run_ready(kmt, "kmt-cp-tar")
    out = raw(kmt, "cp", "kmt-cp-tar:/srv/app", "-")
    assert out.returncode == 0, out.stderr
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as t:
        names = sorted(t.getnames())
        assert t.extractfile("app/sub/b").read() == b"two\n"
        assert t.getmember("app/link").issym()
    assert names == ["app", "app/a", "app/link", "app/sub", "app/sub/b"]
    proc = raw(kmt, "cp", "-", "kmt-cp-tar:/srv", data=_tar({"new/x": b"from a tar\n"}))
    assert proc.returncode == 0, proc.stderr
    assert cat(kmt, "kmt-cp-tar", "/srv/new/x") == "from a tar\n"
    one_line_error(raw(kmt, "cp", "-", "kmt-cp-tar:/srv/app/a", data=_tar({"y": b""})),
                   "must be a directory")
    # a reader that leaves early (| head): no error, no traceback
    proc = subprocess.run(f"{KAGO} cp kmt-cp-tar:/bin - | head -c 100 >/dev/null; "
                          "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
                          capture_output=True, text=True, env=kmt.env, timeout=60, check=False)
    assert (proc.stdout, proc.stderr) == ("0\n", "")


def test_a_stopped_container_is_mounted_for_the_copy_only(kmt, tmp_path):
    cid = run_ready(kmt, "kmt-cp-stopped")
    kmt.kago("stop", "-t", "0", "kmt-cp-stopped", check=True)
    assert kmt.held(cid) == []
    kmt.kago("cp", "kmt-cp-stopped:/srv/app", str(tmp_path / "out"), check=True)
    assert (tmp_path / "out/sub/b").read_text() == "two\n"
    kmt.kago("cp", "kmt-cp-stopped:/escape/etc/shadow", str(tmp_path), check=True)
    assert (tmp_path / "shadow").read_text() == "container-shadow\n"
    (tmp_path / "f").write_text("while stopped\n")
    kmt.kago("cp", str(tmp_path / "f"), "kmt-cp-stopped:/srv/app/", check=True)
    assert kmt.held(cid) == []  # unmounted again
    one_line_error(kmt.kago("cp", "kmt-cp-stopped:/nope", str(tmp_path)),
                   "no such container:path: kmt-cp-stopped:/nope")
    assert kmt.held(cid) == []
    kmt.kago("start", "kmt-cp-stopped", check=True)
    assert cat(kmt, "kmt-cp-stopped", "/srv/app/f") == "while stopped\n"


def test_an_id_mapped_container_sees_its_own_ids(kmt, tmp_path):
    cid = run_ready(kmt, "kmt-cp-ids", "--userns", "auto",
                    command="echo o > /srv/owned; chown 1000:1000 /srv/owned; sleep 60")
    (host, ), = [[r[1]] for r in kmt.inspect(cid)["Kago"]["UidMap"]]
    (tmp_path / "f").write_text("x\n")
    os.chown(tmp_path / "f", 1234, 4321)
    kmt.kago("cp", str(tmp_path / "f"), "kmt-cp-ids:/srv/root", check=True)
    kmt.kago("cp", "-a", str(tmp_path / "f"), "kmt-cp-ids:/srv/kept", check=True)
    assert kmt.kago("exec", "kmt-cp-ids", "stat", "-c", "%u:%g", "/srv/root", "/srv/kept",
                    check=True).stdout.split() == ["0:0", "1234:4321"]
    rootfs = kmt.inspect(cid)["Kago"]["Rootfs"]["path"]
    st = os.stat(os.path.join(rootfs, "srv/root"))
    assert (st.st_uid, st.st_gid) == (host, host)  # the range's root on this host
    # out: the caller's IDs, or with -a the IDs the container sees (never the host's)
    kmt.kago("cp", "kmt-cp-ids:/srv/owned", str(tmp_path / "o1"), check=True)
    kmt.kago("cp", "-a", "kmt-cp-ids:/srv/owned", str(tmp_path / "o2"), check=True)
    assert os.stat(tmp_path / "o1").st_uid == 0
    assert (os.stat(tmp_path / "o2").st_uid, os.stat(tmp_path / "o2").st_gid) == (1000, 1000)
    out = raw(kmt, "cp", "kmt-cp-ids:/srv/owned", "-")
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as t:
        assert (t.getmember("owned").uid, t.getmember("owned").gid) == (1000, 1000)


def test_volumes_and_read_only_mounts(kmt, tmp_path):
    run_ready(kmt, "kmt-cp-vol", "-v", "kmt-cpvol:/data", "-v", "kmt-cpro:/ro:ro")
    (tmp_path / "f").write_text("into the volume\n")
    kmt.kago("cp", str(tmp_path / "f"), "kmt-cp-vol:/data/", check=True)
    mountpoint = kmt.kago("volume", "inspect", "-f", "{{.Mountpoint}}", "kmt-cpvol",
                          check=True).stdout.strip()
    assert open(os.path.join(mountpoint, "f")).read() == "into the volume\n"
    assert cat(kmt, "kmt-cp-vol", "/data/f") == "into the volume\n"
    kmt.kago("cp", "kmt-cp-vol:/data/f", str(tmp_path / "back"), check=True)
    assert (tmp_path / "back").read_text() == "into the volume\n"
    one_line_error(kmt.kago("cp", str(tmp_path / "f"), "kmt-cp-vol:/ro/"),
                   "read-only file system")
    # stopped: the volume is still where the container sees it
    kmt.kago("stop", "-t", "0", "kmt-cp-vol", check=True)
    kmt.kago("cp", "kmt-cp-vol:/data/f", str(tmp_path / "again"), check=True)
    assert (tmp_path / "again").read_text() == "into the volume\n"


def test_bad_input_is_one_line_and_exit_1(kmt, tmp_path):
    one_line_error(kmt.kago("cp", "kmt-nope:/etc/hosts", str(tmp_path)),
                   "no such container: kmt-nope")
    one_line_error(kmt.kago("cp", str(tmp_path / "missing"), "kmt-nope:/"))
    one_line_error(kmt.kago("cp", "/etc/hosts", str(tmp_path)), "at least one container")
    one_line_error(kmt.kago("cp", "a:/x", "b:/y"), "between containers")
    assert kmt.kago("cp", "--bogus", "a", "b").returncode == 125
    cid = run_ready(kmt, "kmt-cp-bad")
    one_line_error(kmt.kago("cp", "kmt-cp-bad:/no/such/path", str(tmp_path)),
                   "no such container:path: kmt-cp-bad:/no/such/path")
    one_line_error(kmt.kago("cp", str(tmp_path / "missing"), "kmt-cp-bad:/"),
                   "no such file or directory")
    kmt.kago("stop", "-t", "0", "kmt-cp-bad", check=True)
    one_line_error(kmt.kago("cp", "kmt-cp-bad:/no/such/path", str(tmp_path)))
    assert kmt.held(cid) == []


def _tar(files, links=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            t.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_device_nodes_stay_out_of_host_files_but_fifos_come(kmt, tmp_path):
    run_ready(kmt, "kmt-cp-dev", command="mknod /srv/app/disk b 8 0; chmod 666 /srv/app/disk; "
                                         "mkfifo /srv/app/pipe; touch /made; sleep 60")
    assert wait_for(lambda: kmt.kago("exec", "kmt-cp-dev", "test", "-e", "/made").returncode
                    == 0, timeout=10)
    kmt.kago("cp", "kmt-cp-dev:/srv/app", str(tmp_path / "out"), check=True)
    assert sorted(os.listdir(tmp_path / "out")) == ["a", "link", "pipe", "sub"]
    assert stat.S_ISFIFO(os.lstat(tmp_path / "out/pipe").st_mode)
    out = raw(kmt, "cp", "kmt-cp-dev:/srv/app", "-")
    with tarfile.open(fileobj=io.BytesIO(out.stdout)) as t:
        disk = t.getmember("app/disk")
        assert disk.isblk() and (disk.devmajor, disk.devminor) == (8, 0)


def test_what_the_container_hands_out_never_writes_through_a_symlink_on_this_host(kmt,
                                                                                   tmp_path):
    target = tmp_path / "outside"
    target.mkdir()
    run_ready(kmt, "kmt-cp-swap", command=f"mkdir /srv/evil; ln -s {target} /srv/evil/lnk; "
                                          "touch /made; sleep 60")
    assert wait_for(lambda: kmt.kago("exec", "kmt-cp-swap", "test", "-e", "/made").returncode
                    == 0, timeout=10)
    kmt.kago("cp", "kmt-cp-swap:/srv/evil", str(tmp_path / "out"), check=True)
    assert os.readlink(tmp_path / "out/lnk") == str(target)
    # the link becomes a directory in the container: a second copy does not follow the
    # link it left here
    kmt.kago("exec", "kmt-cp-swap", "sh", "-c",
             "rm /srv/evil/lnk; mkdir /srv/evil/lnk; echo x > /srv/evil/lnk/x", check=True)
    one_line_error(kmt.kago("cp", "kmt-cp-swap:/srv/evil/.", str(tmp_path / "out")),
                   "cannot overwrite non-directory")
    assert os.listdir(target) == []
    # a tar stream's symlink member leads inside the container, never to this host's /etc
    name = f"kmt-cp-tar-{os.getpid()}"
    stream = _tar({f"d/{name}": b"via a link\n"}, links={"d": "/etc"})
    proc = raw(kmt, "cp", "-", "kmt-cp-swap:/srv", data=stream)
    assert proc.returncode == 0, proc.stderr
    assert not os.path.exists(f"/etc/{name}")
    assert cat(kmt, "kmt-cp-swap", f"/etc/{name}") == "via a link\n"


def test_the_client_copies_with_python_streams_and_counts_bytes(kmt, tmp_path):
    import kago
    run_ready(kmt, "kmt-cp-api")
    client = kago.Client(root=kmt.root)
    (tmp_path / "f").write_bytes(b"12345")
    assert client.copy(str(tmp_path / "f"), "kmt-cp-api:/srv/") == 5
    out = io.BytesIO()
    assert client.copy("kmt-cp-api:/srv/app", "-", stdout=out) == len("one\ntwo\n")
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        assert t.extractfile("app/a").read() == b"one\n"
    assert client.copy("-", "kmt-cp-api:/srv",
                       stdin=io.BytesIO(_tar({"z": b"zz"}))) == 2
    assert cat(kmt, "kmt-cp-api", "/srv/z") == "zz"
