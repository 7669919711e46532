"""The manager under faults and hostile neighbours, through the real ``kago`` command line:
a non-root caller, a full log disk and an fd limit in the supervisor, other local users
reading the state root, a second root wanting the same host port, ``exec -d`` and a
definition whose container exits before it is ready.

Every test has its own manager root (kago.manager.testing.KagoEnv); mounts it makes for
itself (a small tmpfs for a log directory) are unmounted before it ends.
"""

import os
import subprocess

import pytest

from conftest import wait_for
from kago.manager.testing import KAGO, kmt_fixture, wait_http  # noqa: F401 (fixture)

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def wait_until(predicate, timeout=10.0, interval=0.05):
    return wait_for(predicate, timeout, interval)


def as_nobody(argv, env=None):
    return subprocess.run(NOBODY + list(argv), capture_output=True, text=True, env=env,
                          timeout=30, check=False)


# --- without root ---------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["ps"], ["ps", "-a"], ["import", "/etc/hostname", "x"],
                                  ["run", "busybox", "true"], ["inspect", "x"]])
def test_a_non_root_user_is_told_kago_needs_root(kmt, argv):
    before = sorted(os.listdir(kmt.root))
    proc = as_nobody([KAGO, "--root", kmt.root] + argv)
    assert proc.returncode == 125, proc
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "kago needs root" in proc.stderr, proc.stderr
    assert sorted(os.listdir(kmt.root)) == before


# --- exec -d --------------------------------------------------------------------------------

def test_exec_detached_returns_at_once_and_the_program_runs_on(kmt):
    import time
    kmt.kago("run", "-d", "--name", "kmt-xd", "--network", "none", "busybox", "sleep", "60",
             check=True)
    start = time.monotonic()
    proc = kmt.kago("exec", "-d", "kmt-xd", "sh", "-c", "sleep 4; touch /tmp/done",
                    timeout=30)
    took = time.monotonic() - start
    assert (proc.returncode, proc.stdout) == (0, ""), proc.stderr
    assert took < 3, f"exec -d took {took:.1f} s"
    assert kmt.kago("exec", "kmt-xd", "test", "-e", "/tmp/done").returncode == 1
    assert wait_until(lambda: kmt.kago("exec", "kmt-xd", "test", "-e", "/tmp/done")
                      .returncode == 0, timeout=10)
    proc = kmt.kago("exec", "-d", "kmt-xd", "no-such-cmd")
    assert proc.returncode == 127 and "not found" in proc.stderr, proc
    assert proc.stderr.count("\n") == 1
    kmt.kago("rm", "-f", "kmt-xd", check=True)


# --- up: a container that exits before it is ready ------------------------------------------

def test_up_reports_a_container_that_exits_before_it_is_ready_with_its_output(kmt, tmp_path):
    import textwrap
    import time
    path = tmp_path / "def.py"
    path.write_text(textwrap.dedent("""\
        from kago.manager.define import Container, tcp
        c = Container("kmt-early", image="busybox", network="none",
                      command=["sh", "-c", "echo starting; echo DB_HOST is not set >&2; exit 1"])
        c.ready(tcp(20321), timeout=10)
        """))
    start = time.monotonic()
    proc = kmt.kago("up", str(path))
    took = time.monotonic() - start
    assert proc.returncode == 125, proc
    assert "container kmt-early exited with 1 before it was ready: DB_HOST is not set" \
        in proc.stderr, proc.stderr
    assert "kmt-early | starting" in proc.stderr
    assert took < 8, f"up took {took:.1f} s to notice"
    assert kmt.manager().records.all() == []  # rolled back
