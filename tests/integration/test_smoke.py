"""The README's main job: a container that prints its hostname, PID 1 and id."""


def test_run_prints_hostname_pid1_and_id(oci, make_bundle):
    b = make_bundle(["sh", "-c", "hostname; echo $$; id"])
    proc = oci("run", "--bundle", b.path, oci.new_id())
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["kago", "1"]
    assert lines[2].startswith("uid=0(root) gid=0(root)")
