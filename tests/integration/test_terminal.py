"""process.terminal: the pty master over --console-socket (runc's protocol), and run's own proxy.

The console-socket server here is what containerd's shim or conmon does: listen on a unix
socket, accept the runtime's connection, take the master fd out of an SCM_RIGHTS message.
"""

import array
import errno
import os
import select
import signal
import socket
import subprocess
import time

import pytest

from conftest import KAGO_OCI, wait_for


def ok(proc):
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc.stdout


class ConsoleServer:
    """A listening console socket; ``take()`` accepts one connection and returns the master."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.sock.settimeout(10)
        self.masters = []

    def take(self):
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(10)
            msg, anc, _flags, _addr = conn.recvmsg(1024, socket.CMSG_SPACE(4))
        fds = array.array("i")
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:4])
        assert len(fds) == 1, f"no fd in the console message {msg!r}"
        self.masters.append(fds[0])
        return fds[0]

    def close(self):
        for fd in self.masters:
            os.close(fd)
        self.sock.close()


@pytest.fixture
def console(tmp_path):
    server = ConsoleServer(tmp_path / "console.sock")
    yield server
    server.close()


def read_until_closed(master, timeout=10.0):
    """Everything the container writes to its terminal, until the last slave fd closes."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if not ready:
            continue
        try:
            data = os.read(master, 4096)
        except OSError as e:
            if e.errno == errno.EIO:  # the slave side is gone: the container exited
                break
            raise
        if not data:
            break
        out += data
    return out.decode().replace("\r\n", "\n")


def tty_bundle(make_bundle, script, **process):
    def mutate(cfg):
        cfg["process"]["terminal"] = True
        cfg["process"].update(process)
    return make_bundle(["sh", "-c", script], mutate=mutate)


def test_console_socket_gets_the_pty_master(oci, make_bundle, console):
    b = tty_bundle(make_bundle, "echo tty-ok $(tty)")
    cid = oci.new_id()
    ok(oci("create", "--console-socket", console.path, "--bundle", b.path, cid))
    master = console.take()
    assert os.isatty(master)
    ok(oci("start", cid))
    assert read_until_closed(master).strip() == "tty-ok /dev/pts/0"
    assert wait_for(lambda: oci.state(cid)["status"] == "stopped", timeout=10)
    ok(oci("delete", cid))


def test_console_is_the_controlling_terminal_for_stdio(oci, make_bundle, console):
    b = tty_bundle(make_bundle, "for fd in 0 1 2; do readlink /proc/self/fd/$fd; done; "
                   "cut -d' ' -f7 /proc/self/stat")
    cid = oci.new_id()
    ok(oci("create", "--console-socket", console.path, "--bundle", b.path, cid))
    master = console.take()
    ok(oci("start", cid))
    lines = read_until_closed(master).split()
    assert lines[:3] == ["/dev/pts/0"] * 3
    assert lines[3] != "0"  # tty_nr: the pty is the controlling terminal
    ok(oci("delete", "--force", cid))


def test_console_size_from_spec(oci, make_bundle, console):
    b = tty_bundle(make_bundle, "stty size", consoleSize={"height": 33, "width": 101})
    cid = oci.new_id()
    ok(oci("create", "--console-socket", console.path, "--bundle", b.path, cid))
    master = console.take()
    ok(oci("start", cid))
    assert read_until_closed(master).strip() == "33 101"
    ok(oci("delete", "--force", cid))


def test_console_input_reaches_the_container(oci, make_bundle, console):
    b = tty_bundle(make_bundle, "stty -echo; read line; echo got:$line")
    cid = oci.new_id()
    ok(oci("create", "--console-socket", console.path, "--bundle", b.path, cid))
    master = console.take()
    ok(oci("start", cid))
    time.sleep(0.1)  # let stty -echo run before we type
    os.write(master, b"typed words\n")
    assert "got:typed words" in read_until_closed(master)
    ok(oci("delete", "--force", cid))


def test_terminal_without_console_socket_on_create_is_refused(oci, make_bundle):
    b = tty_bundle(make_bundle, "true")
    proc = oci("create", "--bundle", b.path, oci.new_id())
    assert proc.returncode != 0
    assert "console socket" in proc.stderr, proc.stderr


def test_console_socket_that_does_not_exist(oci, make_bundle, tmp_path):
    b = tty_bundle(make_bundle, "true")
    missing = tmp_path / "nobody-listens.sock"
    proc = oci("create", "--console-socket", str(missing), "--bundle", b.path, oci.new_id())
    assert proc.returncode != 0
    assert str(missing) in proc.stderr, proc.stderr


def test_exec_with_tty_and_console_socket(oci, make_bundle, console):
    b = make_bundle(["sleep", "30"])
    cid = oci.new_id()
    ok(_run_detached(oci, b, cid))
    ok(oci("exec", "-d", "--tty", "--console-socket", console.path, cid,
           "sh", "-c", "echo exec-tty $(tty)"))
    master = console.take()
    assert read_until_closed(master).strip().startswith("exec-tty /dev/pts/")
    ok(oci("delete", "--force", cid))


def _run_detached(oci, bundle, cid):
    """``run -d`` with the container's stdio on /dev/null and a file: a pipe would be held
    open by the container and make subprocess.run wait for it to exit."""
    err_path = os.path.join(bundle.path, "run.err")
    with open(err_path, "w") as err:
        proc = subprocess.run([KAGO_OCI, "--root", oci.root, "run", "-d", "--bundle",
                               bundle.path, cid], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=err, timeout=30)
    with open(err_path) as err:
        proc.stderr = err.read()
    proc.stdout = ""
    return proc


def test_run_in_foreground_proxies_the_terminal(oci, make_bundle):
    b = tty_bundle(make_bundle, "echo tty-ok $(tty); read line; echo got:$line")
    master, slave = os.openpty()
    proc = subprocess.Popen([KAGO_OCI, "--root", oci.root, "run", "--bundle", b.path,
                             oci.new_id()], stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    try:
        seen = _read_for(master, "tty-ok", timeout=10)
        os.write(master, b"hello\n")
        seen += read_until_closed_or_exit(master, proc)
    finally:
        code = proc.wait(timeout=10)
        os.close(master)
    assert "tty-ok /dev/pts/0" in seen, seen
    assert "got:hello" in seen, seen
    assert code == 0


def _read_for(master, marker, timeout):
    out = ""
    deadline = time.monotonic() + timeout
    while marker not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            out += os.read(master, 4096).decode().replace("\r\n", "\n")
    return out


def read_until_closed_or_exit(master, proc, timeout=10.0):
    out = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            out += data.decode().replace("\r\n", "\n")
        elif proc.poll() is not None:
            break
    return out


def _set_size(fd, rows, cols):
    import fcntl
    import struct
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_run_in_foreground_starts_at_our_terminal_size_and_follows_it(oci, make_bundle):
    # consoleSize says 24x80; run's proxy gives the pty its own terminal's size instead (as
    # runc's foreground resizes it) and passes a SIGWINCH on
    b = tty_bundle(make_bundle, "echo size:$(stty size); read line; echo size:$(stty size)",
                   consoleSize={"height": 24, "width": 80})
    master, slave = os.openpty()
    _set_size(slave, 40, 120)
    proc = subprocess.Popen([KAGO_OCI, "--root", oci.root, "run", "--bundle", b.path,
                             oci.new_id()], stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    try:
        seen = _read_for(master, "size:40 120", timeout=10)
        _set_size(master, 50, 132)
        proc.send_signal(signal.SIGWINCH)
        time.sleep(0.2)
        os.write(master, b"\n")
        seen += read_until_closed_or_exit(master, proc)
    finally:
        code = proc.wait(timeout=10)
        os.close(master)
    assert "size:40 120" in seen and "size:50 132" in seen, seen
    assert code == 0
