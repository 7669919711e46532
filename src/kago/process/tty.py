"""The container's terminal (process.terminal: true).

The pty pair comes from the container's own devpts instance (/dev/ptmx after the root switch).
The slave becomes the controlling terminal and fds 0-2; the master is sent over the console
socket with SCM_RIGHTS, exactly as runc does, so containerd, conmon and podman can take it.
Without a console socket, ``kago-oci run`` in the foreground passes its own socketpair end here
and copies between its terminal and the master (``proxy``); the pty then starts at the size of
the runtime's own terminal (``terminal_size``) and follows it on SIGWINCH, as runc's foreground
does.
"""

import os
import struct

from kago.errors import KagoError
from kago.kernel import consts as C
from kago.kernel import libc


def open_pty():
    """Return (master fd, slave fd) from /dev/ptmx of the current root."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    libc.ioctl_int(master, C.TIOCSPTLCK, 0, op="unlock pty")
    num = libc.ioctl_int(master, C.TIOCGPTN, 0, op="get pty number")
    slave = os.open(f"/dev/pts/{num}", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    return master, slave


def setup_console(console_fd, size=None):
    if console_fd is None:
        raise KagoError("process.terminal is true but no console socket was given: "
                        "use --console-socket")
    master, slave = open_pty()
    try:
        if size:
            set_size(slave, size.get("height", 0), size.get("width", 0))
        send_fd(console_fd, master, b"/dev/ptmx")
    finally:
        os.close(master)
    libc.ioctl_val(slave, C.TIOCSCTTY, 0, op="set controlling terminal")
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(slave)


def send_fd(sock_fd, fd, name):
    """Send ``fd`` over the connected console socket with SCM_RIGHTS (runc's protocol).

    struct, not array: ``import array`` imports collections.abc, and this runs after the root
    switch, where no module file can be imported any more.
    """
    import _socket
    sock = _socket.socket(fileno=os.dup(sock_fd))
    try:
        sock.sendmsg([name], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])
    finally:
        sock.close()


def set_size(fd, rows, cols):
    import fcntl
    fcntl.ioctl(fd, C.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def terminal_size(fd):
    """(rows, cols) of the terminal ``fd``, or None if it is not one (or has no size)."""
    import fcntl
    try:
        got = fcntl.ioctl(fd, C.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return None
    rows, cols, _x, _y = struct.unpack("HHHH", got)
    return (rows, cols) if rows and cols else None


def copy_size(src, dst):
    """Give the terminal ``dst`` the size of ``src`` (nothing if ``src`` has none)."""
    size = terminal_size(src)
    if size is not None:
        try:
            set_size(dst, *size)
        except OSError:
            pass  # the pty is gone: the container ended


def recv_master(sock):
    """Receive the pty master sent by the container (the console socket's other end)."""
    import _socket
    _msg, anc, _flags, _addr = sock.recvmsg(1024, _socket.CMSG_SPACE(4))
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
            return struct.unpack("i", data[:4])[0]
    raise KagoError("the container did not send its terminal")


def proxy(master, pid_alive):
    """Copy stdin -> master and master -> stdout until the container's terminal closes; the
    pty follows our terminal's size (SIGWINCH)."""
    import select
    import signal
    import termios
    import tty as _tty
    saved = None
    old_winch = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        _tty.setraw(0)
        copy_size(0, master)
        old_winch = signal.signal(signal.SIGWINCH, lambda _s, _f: copy_size(0, master))
    try:
        _copy_loop(master, select, pid_alive)
    finally:
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _copy_loop(master, select, pid_alive):
    """Until the terminal closes, or the process has ended and what it wrote is read (a
    process gone does not wait for the last of its output to be copied)."""
    fds = [master, 0]
    after = 0  # reads since the process ended: bounded, as something it left may write on
    while True:
        alive = pid_alive()
        ready, _, _ = select.select(fds if alive else [master], [], [], 0.2 if alive else 0)
        if not alive:
            after += 1
            if master not in ready or after > 1024:
                return
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                return  # EIO: the last slave fd closed
            if not data:
                return
            os.write(1, data)
        if 0 in ready:
            data = os.read(0, 65536)
            if not data:
                fds.remove(0)
            else:
                os.write(master, data)
