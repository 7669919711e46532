"""podman (through conmon) running its containers with kago-oci instead of runc.

Opt-in, because it needs podman installed (`apt-get install podman`) and leaves an image store
under /var/lib/containers: `KAGO_TEST_CLIENTS=1 ./dev test tests/clients`. It imports the
busybox rootfs as an image, runs containers the way a podman user does, and removes what it made.

This host's root lacks CAP_SYS_RESOURCE, and podman asks for RLIMIT_NOFILE 1048576 by default;
runc fails on that exactly as kago-oci does, so the tests ask for limits the host can grant.
"""

import os
import shutil
import subprocess
import tarfile
import uuid

import pytest

from conftest import KAGO_OCI

pytestmark = pytest.mark.skipif(
    os.environ.get("KAGO_TEST_CLIENTS") != "1" or shutil.which("podman") is None,
    reason="opt-in: KAGO_TEST_CLIENTS=1 and podman installed")

ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096", "--network", "none"]


def podman(*args, timeout=60):
    argv = ["podman", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
            "--runtime", KAGO_OCI, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from kago.testing import busybox
    work = tmp_path_factory.mktemp("podman")
    rootfs = busybox.build_rootfs(work / "rootfs")
    tar = work / "rootfs.tar"
    with tarfile.open(tar, "w") as t:
        t.add(rootfs, arcname=".")
    name = f"localhost/kago-test-{uuid.uuid4().hex[:8]}"
    assert podman("import", str(tar), name).returncode == 0
    had_parent = os.path.isdir("/sys/fs/cgroup/unified/libpod_parent")
    yield name
    podman("rm", "-af")
    podman("rmi", "-f", name)
    if not had_parent:  # podman's cgroupfs parent (and its conmon child), made for our tests
        for h in os.listdir("/sys/fs/cgroup"):
            for d in ("libpod_parent/conmon", "libpod_parent"):
                try:
                    os.rmdir(f"/sys/fs/cgroup/{h}/{d}")
                except OSError:
                    pass


def test_run_gets_podmans_seccomp_and_capabilities(image):
    proc = podman("run", "--rm", *ULIMITS, image, "sh", "-c",
                  "echo hello; id -u; grep -E '^(Seccomp|CapEff):' /proc/self/status")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert lines[:2] == ["hello", "0"]
    assert "Seccomp:" in lines and lines[lines.index("Seccomp:") + 1] == "2"  # filter mode
    assert lines[lines.index("CapEff:") + 1] == "00000000800405fb"  # docker's default set


def test_exit_codes_as_podman_users_expect(image):
    assert podman("run", "--rm", *ULIMITS, image, "sh", "-c", "exit 3").returncode == 3
    assert podman("run", "--rm", *ULIMITS, image, "nosuchprog").returncode == 127
    assert podman("run", "--rm", *ULIMITS, image, "/etc/passwd").returncode == 126


def test_detached_exec_top_pause_logs_stop_rm(image):
    name = f"kago-{uuid.uuid4().hex[:8]}"
    assert podman("run", "-d", "--name", name, *ULIMITS, image, "sh", "-c",
                  "echo started; sleep 60").returncode == 0
    try:
        proc = podman("exec", name, "sh", "-c", "echo $$")
        assert proc.returncode == 0 and proc.stdout.strip() != "1", proc.stderr
        assert podman("exec", name, "sh", "-c", "exit 7").returncode == 7
        assert "sleep 60" in podman("top", name).stdout
        assert podman("pause", name).returncode == 0
        # podman asks kago-oci's `state`, which reads the freezer
        assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "paused"
        assert podman("unpause", name).returncode == 0
        assert "started" in podman("logs", name).stdout
        assert podman("stop", "-t", "1", name).returncode == 0
    finally:
        assert podman("rm", "-f", name).returncode == 0
