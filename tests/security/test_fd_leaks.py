"""No runtime fd reaches the container, and the runtime cannot be reached from inside it.

- Only 0, 1, 2 (plus --preserve-fds / LISTEN_FDS) survive into the container's program, even
  when kago-oci itself inherited other fds (CVE-2024-21626 leaked a host cgroup dir fd).
- While the init waits for ``start`` it is still kago's python, inside the container's
  namespaces: it is non-dumpable, so a process ``exec``'d into the container cannot open its
  /proc/1/exe (CVE-2019-5736 overwrote runc's binary that way), environ or fds.
"""

import os
import subprocess

import pytest

from conftest import KAGO_OCI, wait_for


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


def oci_with_fds(oci, redirections, *args, stdio_file=None):
    """kago-oci with fds 3.. opened on host files by a shell (not preserved by any flag).

    ``stdio_file``: send the command's stdout/stderr there instead of pipes (needed for
    create and run -d: the container would hold a pipe open)."""
    argv = ["sh", "-c", f'exec "$@" {redirections}', "sh", KAGO_OCI, "--root", oci.root, *args]
    if stdio_file is None:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)
    with open(stdio_file, "w") as out:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                              timeout=30)
    with open(stdio_file) as f:
        proc.stdout = proc.stderr = f.read()
    return proc


# the shell's own fds, listed by a child (``ls``): a $(...) would add the shell's pipe end
FD_SCRIPT = "ls -l /proc/$$/fd"


def fds_of(out):
    """{fd number: link target} from ``ls -l`` of a /proc/PID/fd directory."""
    fds = {}
    for line in out.splitlines():
        left, arrow, target = line.partition(" -> ")
        if arrow:
            fds[int(left.split()[-1])] = target
    return fds


HOST_FILES = "3</etc/hostname 4</etc/passwd 7</etc/hosts 9</proc/self/mountinfo"


def test_inherited_fds_do_not_reach_the_container(oci, make_bundle):
    b = make_bundle(["sh", "-c", FD_SCRIPT])
    out = ok(oci_with_fds(oci, HOST_FILES, "run", "--bundle", b.path, oci.new_id()))
    fds = fds_of(out)
    assert sorted(fds) == [0, 1, 2], fds


def test_only_preserved_fds_reach_the_container(oci, make_bundle):
    b = make_bundle(["sh", "-c", FD_SCRIPT])
    out = ok(oci_with_fds(oci, HOST_FILES, "run", "--preserve-fds", "2", "--bundle", b.path,
                          oci.new_id()))
    fds = fds_of(out)
    assert sorted(fds) == [0, 1, 2, 3, 4], fds  # 7 and 9 were not asked for


def test_no_runtime_paths_behind_the_std_fds(oci, make_bundle):
    b = make_bundle(["sh", "-c", FD_SCRIPT])
    out = ok(oci("run", "--bundle", b.path, oci.new_id()))
    fds = fds_of(out)
    for fd, target in fds.items():
        assert target.startswith(("pipe:", "/dev/")), (fd, target)
        assert oci.root not in target and "cgroup" not in target, (fd, target)


@pytest.fixture
def running(oci, make_bundle, tmp_path):
    """A detached container (sleep) started with extra host fds; yields its id."""
    b = make_bundle(["sleep", "60"])
    cid = oci.new_id()
    ok(oci_with_fds(oci, HOST_FILES, "run", "-d", "--bundle", b.path, cid,
                    stdio_file=tmp_path / "run.out"))
    yield cid
    oci("delete", "--force", cid)


def test_container_init_has_only_std_fds(oci, running):
    pid = oci.state(running)["pid"]
    fds = sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))
    assert fds == [0, 1, 2], {n: os.readlink(f"/proc/{pid}/fd/{n}") for n in fds}


def test_exec_gets_only_std_fds(oci, running):
    out = ok(oci_with_fds(oci, HOST_FILES, "exec", running, "sh", "-c", FD_SCRIPT))
    assert sorted(fds_of(out)) == [0, 1, 2], out


def test_exec_with_preserve_fds(oci, running):
    out = ok(oci_with_fds(oci, HOST_FILES, "exec", "--preserve-fds", "1", running, "sh", "-c",
                          FD_SCRIPT))
    assert sorted(fds_of(out)) == [0, 1, 2, 3], out


# --- the init before start ----------------------------------------------------------------------

@pytest.fixture
def created(oci, make_bundle, tmp_path):
    """A container in the "created" state: its init is kago's python, waiting for start."""
    b = make_bundle(["sh", "-c", "true"])
    cid = oci.new_id()
    ok(oci_with_fds(oci, HOST_FILES, "create", "--bundle", b.path, cid,
                    stdio_file=tmp_path / "create.out"))
    assert oci.state(cid)["status"] == "created"
    yield cid
    oci("delete", "--force", cid)


def test_created_init_is_the_runtime(oci, created):
    pid = oci.state(created)["pid"]
    exe = os.readlink(f"/proc/{pid}/exe")
    assert "python" in os.path.basename(exe), exe
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert b"kago-oci" in f.read()


def test_created_init_is_not_dumpable(oci, created):
    # non-dumpable: its /proc entries need CAP_SYS_PTRACE, which the container lacks (the
    # fd numbers may be listed, the directory belonging to root, but not followed)
    out = ok(oci("exec", created, "sh", "-c",
                 "cat /proc/1/environ >/dev/null 2>&1; echo environ=$?; "
                 "readlink /proc/1/exe >/dev/null 2>&1; echo exe=$?; "
                 "readlink /proc/1/fd/0 >/dev/null 2>&1; echo fd=$?; "
                 "readlink /proc/1/cwd >/dev/null 2>&1; echo cwd=$?"))
    assert out.split() == ["environ=1", "exe=1", "fd=1", "cwd=1"], out


def test_exec_process_itself_is_dumpable_after_exec(oci, created):
    # the contrast: the program exec'd by ``exec`` is an ordinary process again
    out = ok(oci("exec", created, "sh", "-c", "readlink /proc/$$/exe"))
    assert out.strip() == "/bin/busybox"


def test_created_init_exe_cannot_be_opened_for_writing(oci, created):
    proc = oci("exec", created, "sh", "-c", "echo pwn >> /proc/1/exe")
    assert proc.returncode != 0
    assert "Permission denied" in proc.stderr, proc.stderr
    python = os.readlink(f"/proc/{oci.state(created)['pid']}/exe")
    with open(python, "rb") as f:
        assert f.read(4) == b"\x7fELF"


def test_created_init_environ_is_unreadable(oci, created):
    proc = oci("exec", created, "cat", "/proc/1/environ")
    assert proc.returncode != 0
    assert "Permission denied" in proc.stderr, proc.stderr
    assert "PATH=" not in proc.stdout


def test_created_init_holds_no_host_fds(oci, created):
    pid = oci.state(created)["pid"]
    targets = [os.readlink(f"/proc/{pid}/fd/{n}")
               for n in sorted(os.listdir(f"/proc/{pid}/fd"), key=int)]
    # 0-2 and the exec fifo (O_PATH) it waits on; nothing kago-oci inherited (3/4/7/9)
    for host_file in ("/etc/hostname", "/etc/passwd", "/etc/hosts", "mountinfo"):
        assert not any(t.endswith(host_file) for t in targets), targets
    assert len(targets) == 4 and targets[3].endswith("/exec.fifo"), targets


def test_started_container_exits_normally_after_the_checks(oci, created):
    ok(oci("start", created))
    assert wait_for(lambda: oci.state(created)["status"] == "stopped", timeout=10)
