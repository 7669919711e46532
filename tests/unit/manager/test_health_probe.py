"""A probe worker's core (supervisor/health.py ``run_check``) on plain host processes: the
exit status and output of a check, the output cut, and a check past its timeout killed with
its whole process group (the pid file names its leader, as the runtime's exec writes it)."""

import os
import time

from kago.manager.supervisor.health import run_check


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_exit_status_and_output(tmp_path):
    doc = run_check(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"],
                    str(tmp_path / "pid"), 10)
    assert (doc["ExitCode"], doc["Output"]) == (3, "out\nerr\n")
    assert doc["Start"] <= doc["End"] and doc["start"] <= time.time()
    assert not os.path.exists(tmp_path / "pid")


def test_output_is_cut_at_4096_bytes(tmp_path):
    doc = run_check(["/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"],
                    str(tmp_path / "pid"), 10)
    assert doc["ExitCode"] == 0
    assert doc["Output"] == "x" * 4096 + "..."


def test_a_check_past_its_timeout_is_killed_with_its_group(tmp_path):
    pid_file = tmp_path / "pid"
    marks = tmp_path / "sleeper"
    script = f"echo $$ > {pid_file}; sleep 37 & echo $! > {marks}; wait"
    t0 = time.monotonic()
    doc = run_check(["/usr/bin/setsid", "/bin/sh", "-c", script], str(pid_file), 0.5)
    took = time.monotonic() - t0
    assert (doc["ExitCode"], doc["Output"]) == (-1, "Health check exceeded timeout (0.5s)")
    assert 0.4 < took < 2.5, took
    sleeper = int(marks.read_text())
    deadline = time.monotonic() + 2
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(sleeper)  # the check's child went with it


def test_a_command_that_cannot_run_is_a_failure(tmp_path):
    doc = run_check(["/bin/sh", "-c", "exec /nonexistent"], str(tmp_path / "pid"), 5)
    assert doc["ExitCode"] == 127


def test_the_check_starts_with_default_signal_dispositions(tmp_path):
    import signal
    old = signal.signal(signal.SIGQUIT, signal.SIG_IGN)  # as a supervisor might have it
    try:
        doc = run_check(["/bin/sh", "-c", "grep SigIgn /proc/self/status"],
                        str(tmp_path / "pid"), 5)
    finally:
        signal.signal(signal.SIGQUIT, old)
    ignored = int(doc["Output"].split()[1], 16)
    assert not ignored & (1 << (signal.SIGQUIT - 1)), doc["Output"]
