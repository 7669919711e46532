"""LSM labels on a host without that LSM (this one has neither AppArmor nor SELinux): the
container runs, and kago-oci says plainly that the label was not applied."""


def test_apparmor_profile_without_apparmor_warns_and_runs(oci, make_bundle):
    b = make_bundle(["true"], mutate=lambda c: c["process"].update(
        apparmorProfile="docker-default", selinuxLabel="system_u:system_r:container_t:s0"))
    proc = oci("run", "--bundle", b.path, oci.new_id())
    assert proc.returncode == 0, proc.stderr
    assert "process.apparmorProfile: apparmor is not enabled on this host" in proc.stderr
    assert "docker-default" in proc.stderr and "is not applied" in proc.stderr
    assert "process.selinuxLabel: selinux is not enabled on this host" in proc.stderr


def test_exec_with_the_containers_profile_warns_and_runs(oci, make_bundle):
    from test_lifecycle import SLEEPER, detached, ok
    b = make_bundle(SLEEPER, mutate=lambda c: c["process"].update(apparmorProfile="p"))
    cid = oci.new_id()
    ok(detached(oci, "run", "-d", "--bundle", b.path, cid))
    proc = oci("exec", cid, "true")
    assert proc.returncode == 0, proc.stderr
    assert "apparmor is not enabled" in proc.stderr
