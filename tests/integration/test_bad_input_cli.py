"""Command-line bad input not covered elsewhere: each is one clear line, a non-zero exit
(runc's 1, or 255 for exec), and nothing left behind (the oci fixture's leak check)."""

import pytest

from test_lifecycle import SLEEPER, detached, ok


def one_line_error(proc, code, fragment):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert fragment in proc.stderr.replace('\\"', '"'), proc.stderr  # logrus escapes quotes


@pytest.fixture
def running(oci, make_bundle):
    cid = oci.new_id()
    ok(detached(oci, "run", "-d", "--bundle", make_bundle(SLEEPER).path, cid))
    return cid


def test_exec_user_that_is_not_numeric(oci, running):
    one_line_error(oci("exec", "--user", "abc", running, "true"), 255,
                   '--user: "abc" is not uid[:gid]')


def test_exec_without_a_command(oci, running):
    proc = oci("exec", running)
    one_line_error(proc, 1, "nothing to run: give a command or --process FILE")
    assert "exec: nothing" not in proc.stderr


@pytest.mark.parametrize("verb", ["ps", "list"])
def test_unknown_output_format(oci, running, verb):
    args = [verb, "--format", "xml"] + ([running] if verb == "ps" else [])
    one_line_error(oci(*args), 1, "invalid format option: xml")


@pytest.mark.parametrize("sig", ["0", "65", "SIGRTMAX+1"])
def test_kill_with_a_signal_out_of_range(oci, running, sig):
    one_line_error(oci("kill", running, sig), 1, f'unknown signal "{sig}"')
    assert oci.state(running)["status"] == "running"


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_preserve_fds_must_be_a_count(oci, make_bundle, value):
    cid = oci.new_id()
    proc = oci("create", "--preserve-fds", value, "--bundle", make_bundle(SLEEPER).path, cid)
    one_line_error(proc, 1, f'invalid value "{value}" for flag -preserve-fds: not a number')
    one_line_error(oci("state", cid), 1, "container does not exist")


def test_spec_into_a_missing_directory(oci, tmp_path):
    missing = tmp_path / "no" / "such"
    one_line_error(oci("spec", "--bundle", missing), 1, "no such file or directory")
    assert not missing.exists()
