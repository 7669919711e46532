"""Terminals through ``kago`` as docker's: ``run -it`` and ``exec -it`` at the caller's size and
following it, TERM for ``exec -t``, -it refused without a terminal on stdin, ``run -dit`` with
``attach`` and ``start -ai`` (the supervisor holds the pty), the detach keys, ``run -i`` from
a pipe.

Each command runs with a pty from here as its controlling terminal: a TIOCSWINSZ on the master
sends it SIGWINCH as a real terminal would. Every wait is bounded; the fixture checks that
nothing is left behind.
"""

import fcntl
import os
import select
import struct
import subprocess
import termios
import time

from conftest import wait_for
from kago.manager.testing import KAGO, kmt_fixture  # noqa: F401 (fixture)

NOT_A_TTY = "the input device is not a TTY"


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Terminal:
    """``kago ARGS`` with a pty of ``rows`` x ``cols`` as its controlling terminal."""

    def __init__(self, kmt, *args, rows=40, cols=120):
        self.master, slave = os.openpty()
        set_size(slave, rows, cols)

        def controlling():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        self.proc = subprocess.Popen([KAGO] + list(args), stdin=slave, stdout=slave,
                                     stderr=slave, env=kmt.env, start_new_session=True,
                                     preexec_fn=controlling)
        os.close(slave)
        self.seen = ""

    def read_for(self, text, timeout=15.0):
        """Read until ``text`` appears (after what earlier calls consumed); all read so far."""
        deadline = time.monotonic() + timeout
        while text not in self.seen and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    break
                self.seen += data.decode(errors="replace").replace("\r\n", "\n")
        assert text in self.seen, f"{text!r} not seen in {self.seen!r}"
        found = self.seen
        self.seen = self.seen[self.seen.index(text) + len(text):]
        return found

    def type(self, text):
        os.write(self.master, text.encode() if isinstance(text, str) else text)

    def resize(self, rows, cols):
        set_size(self.master, rows, cols)  # the kernel sends SIGWINCH to its foreground

    def wait(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:
                    pass
        return self.proc.wait(timeout=1)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)


def test_run_it_starts_at_the_terminals_size_and_follows_a_resize(kmt):
    t = Terminal(kmt, "run", "-it", "--rm", "--name", "kmt-tty", "--network", "none",
                 "busybox", "sh", "-c", "echo size:$(stty size) term:$TERM; read x; "
                 "echo size:$(stty size)", rows=40, cols=120)
    try:
        t.read_for("size:40 120 term:xterm")
        t.resize(50, 132)
        time.sleep(0.3)
        t.type("\n")
        t.read_for("size:50 132")
        assert t.wait() == 0
    finally:
        t.close()


def test_exec_it_has_term_and_the_terminals_size(kmt):
    kmt.kago("run", "-d", "--name", "kmt-ex", "--network", "none", "busybox", "sleep", "60",
             check=True)
    t = Terminal(kmt, "exec", "-it", "kmt-ex", "sh", "-c",
                 "echo term:$TERM size:$(stty size); read x; echo size:$(stty size)",
                 rows=33, cols=101)
    try:
        t.read_for("term:xterm size:33 101")
        t.resize(21, 77)
        time.sleep(0.3)
        t.type("\n")
        t.read_for("size:21 77")
        assert t.wait() == 0
    finally:
        t.close()


def test_it_without_a_terminal_is_refused_as_dockers_and_leaves_nothing(kmt):
    proc = kmt.kago("run", "-it", "--name", "kmt-notty", "busybox", "true", input="")
    assert (proc.returncode, proc.stderr.strip()) == (1, NOT_A_TTY)
    assert kmt.kago("ps", "-aq", check=True).stdout == ""
    kmt.kago("run", "-dit", "--name", "kmt-dit0", "--network", "none", "busybox", "sh",
             check=True, input="")  # -d: no terminal needed (docker's)
    proc = kmt.kago("exec", "-it", "kmt-dit0", "true", input="")
    assert (proc.returncode, proc.stderr.strip()) == (1, NOT_A_TTY)
    proc = kmt.kago("attach", "kmt-dit0", input="")
    assert (proc.returncode, proc.stderr.strip()) == (1, NOT_A_TTY)
    assert kmt.inspect("kmt-dit0")["State"]["Running"]
    kmt.kago("create", "-it", "--name", "kmt-cit0", "--network", "none", "busybox", "sh",
             check=True, input="")
    proc = kmt.kago("start", "-ai", "kmt-cit0", input="")
    assert (proc.returncode, proc.stderr.strip()) == (1, NOT_A_TTY)
    assert kmt.inspect("kmt-cit0")["State"]["Status"] == "created"


def test_run_dit_then_attach_types_reads_and_detaches(kmt):
    kmt.kago("run", "-dit", "--name", "kmt-dit", "--network", "none", "busybox", "sh",
             check=True, input="")
    t = Terminal(kmt, "attach", "kmt-dit", rows=30, cols=90)
    try:
        t.type("echo hel''lo-$((6*7)) $(stty size)\n")
        t.read_for("hello-42 30 90")
        t.type(b"\x10\x11")  # ctrl-p ctrl-q
        assert t.wait() == 0
    finally:
        t.close()
    assert kmt.inspect("kmt-dit")["State"]["Running"]
    assert "hello-42" in kmt.kago("logs", "kmt-dit", check=True).stdout
    t = Terminal(kmt, "attach", "--detach-keys", "ctrl-a,x", "kmt-dit")
    try:
        t.type("echo again\n")
        t.read_for("again")
        t.type(b"\x01x")
        assert t.wait() == 0
    finally:
        t.close()
    t = Terminal(kmt, "attach", "kmt-dit")
    try:
        t.type("exit 3\n")
        assert t.wait() == 3
    finally:
        t.close()
    assert wait_for(lambda: not kmt.inspect("kmt-dit")["State"]["Running"], 10, 0.05)
    assert kmt.inspect("kmt-dit")["State"]["ExitCode"] == 3


def test_start_ai_attaches_from_the_start(kmt):
    kmt.kago("create", "-it", "--name", "kmt-sai", "--network", "none", "busybox", "sh", "-c",
             "echo first:$(stty size); read x; echo got:$x", check=True, input="")
    t = Terminal(kmt, "start", "-ai", "kmt-sai", rows=25, cols=100)
    try:
        t.read_for("first:25 100")
        t.type("typed\n")
        t.read_for("got:typed")
        assert t.wait() == 0
    finally:
        t.close()


def test_run_i_streams_a_pipe_and_closes_it_at_eof(kmt):
    proc = kmt.kago("run", "-i", "--rm", "--network", "none", "busybox", "cat", input="hi\n",
                    timeout=30)
    assert (proc.returncode, proc.stdout) == (0, "hi\n"), proc.stderr


def test_run_it_detaches_with_the_keys_and_logs_its_output(kmt):
    t = Terminal(kmt, "run", "-it", "--name", "kmt-rdet", "--network", "none", "busybox", "sh")
    try:
        t.type("echo logged-$((2+3))\n")
        t.read_for("logged-5")
        t.type(b"\x10\x11")
        assert t.wait() == 0
    finally:
        t.close()
    assert kmt.inspect("kmt-rdet")["State"]["Running"]
    assert "logged-5" in kmt.kago("logs", "kmt-rdet", check=True).stdout
    t = Terminal(kmt, "attach", "kmt-rdet")
    try:
        t.type("exit 4\n")
        assert t.wait() == 4
    finally:
        t.close()
    doc = kmt.inspect("kmt-rdet")
    assert (doc["State"]["Status"], doc["State"]["ExitCode"]) == ("exited", 4)


def test_run_dit_and_attach_under_runc(workdir, rootfs_cache):
    """The console socket is runc's protocol: the supervisor holds runc's pty the same way."""
    import shutil

    import pytest

    from kago.manager.testing import KagoEnv
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("runc is not installed")
    env = KagoEnv(workdir, runtime=runc, rootfs_cache=rootfs_cache)
    try:
        env.kago("run", "-dit", "--name", "kmt-runc-tty", "--network", "none", "busybox", "sh",
                 check=True, input="")
        t = Terminal(env, "attach", "kmt-runc-tty", rows=31, cols=91)
        try:
            t.type("echo via-runc $(stty size)\n")
            t.read_for("via-runc 31 91")
            t.type("exit 6\n")
            assert t.wait() == 6
        finally:
            t.close()
    finally:
        left = env.destroy()
    assert not left, left


def test_a_restarted_tty_container_has_a_new_terminal_to_attach_to(kmt):
    kmt.kago("run", "-dit", "--restart", "always", "--name", "kmt-rtty", "--network", "none",
             "busybox", "sh", "-c", "echo start; read x; echo got-$x; exit 2", check=True,
             input="")
    t = Terminal(kmt, "attach", "kmt-rtty")
    try:
        t.type("one\n")
        t.read_for("got-one")
        assert t.wait() == 2
    finally:
        t.close()
    assert wait_for(lambda: kmt.inspect("kmt-rtty")["RestartCount"] >= 1
                    and kmt.inspect("kmt-rtty")["State"]["Running"], 10, 0.05)
    t = Terminal(kmt, "attach", "kmt-rtty")
    try:
        t.type("two\n")
        t.read_for("got-two")
        assert t.wait() == 2
    finally:
        t.close()
    kmt.kago("rm", "-f", "kmt-rtty", check=True)


def test_attach_ended_by_a_signal_gives_the_terminal_back(kmt):
    kmt.kago("run", "-dit", "--name", "kmt-sig", "--network", "none", "busybox", "sh",
             check=True, input="")
    t = Terminal(kmt, "attach", "kmt-sig")
    try:
        t.type("echo ready-$((1+1))\n")
        t.read_for("ready-2")
        assert not termios.tcgetattr(t.master)[3] & termios.ICANON  # raw while attached
        t.proc.terminate()
        assert t.wait() == 128 + 15
        assert termios.tcgetattr(t.master)[3] & termios.ICANON  # cooked again
    finally:
        t.close()
    assert kmt.inspect("kmt-sig")["State"]["Running"]
