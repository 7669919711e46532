"""LSM labels on a host without that LSM: the container runs, and kago-oci says plainly that the
label was not applied. Which LSMs the host runs is probed (tests/hostprobe.py); a label for an
LSM the host does run needs a profile loaded there, which these tests do not do."""

import pytest

import hostprobe

LSMS = hostprobe.lsms()
without_apparmor = pytest.mark.skipif("apparmor" in LSMS, reason="apparmor is enabled here")
without_selinux = pytest.mark.skipif("selinux" in LSMS, reason="selinux is enabled here")


@without_apparmor
def test_apparmor_profile_without_apparmor_warns_and_runs(oci, make_bundle):
    b = make_bundle(["true"], mutate=lambda c: c["process"].update(
        apparmorProfile="docker-default"))
    proc = oci("run", "--bundle", b.path, oci.new_id())
    assert proc.returncode == 0, proc.stderr
    assert "process.apparmorProfile: apparmor is not enabled on this host" in proc.stderr
    assert "docker-default" in proc.stderr and "is not applied" in proc.stderr


@without_selinux
def test_selinux_label_without_selinux_warns_and_runs(oci, make_bundle):
    b = make_bundle(["true"], mutate=lambda c: c["process"].update(
        selinuxLabel="system_u:system_r:container_t:s0"))
    proc = oci("run", "--bundle", b.path, oci.new_id())
    assert proc.returncode == 0, proc.stderr
    assert "process.selinuxLabel: selinux is not enabled on this host" in proc.stderr


@without_apparmor
def test_exec_with_the_containers_profile_warns_and_runs(oci, make_bundle):
    from test_lifecycle import SLEEPER, detached, ok
    b = make_bundle(SLEEPER, mutate=lambda c: c["process"].update(apparmorProfile="p"))
    cid = oci.new_id()
    ok(detached(oci, "run", "-d", "--bundle", b.path, cid))
    proc = oci("exec", cid, "true")
    assert proc.returncode == 0, proc.stderr
    assert "apparmor is not enabled" in proc.stderr
