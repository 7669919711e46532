"""sd_notify readiness through the runtime (``NOTIFY_SOCKET``), as runc 1.1.5 does it.

When kago-oci runs with ``NOTIFY_SOCKET`` in its environment (a systemd unit of
``Type=notify``, podman ``--sdnotify=container``), the container's program gets a socket of
its own to notify on, and the runtime passes its readiness on to the host's socket
(runc: notify_socket.go, utils_linux.go startContainer, start.go). Only the command line
reads the variable (``Options.notify_socket``, ``container.start(notify_socket=)``): a
library caller such as the manager's supervisor, whose own environment may name a socket,
is not affected.

- ``create`` and ``run`` make ``<state dir>/notify/`` (0755) and bind-mount it into the
  container at ``/run/notify`` (``bind,nosuid,noexec,nodev,ro``: a socket can be connected to
  on a read-only mount), and add ``NOTIFY_SOCKET=/run/notify/notify.sock`` to the process's
  environment. runc 1.1.5 puts it there, not at the host's path.
- The socket itself (a datagram socket, mode 0777 so that any user of the container may send)
  is bound by the command that will relay: ``start`` (before it releases the init, so an early
  message is not lost), or ``run`` (before the program starts).
- Relaying: the first datagram that begins with ``READY=`` is forwarded as its first line plus
  a newline, followed by ``MAINPID=<pid>\\n``, in two datagrams; other messages (STATUS=...,
  EXTEND_TIMEOUT_USEC=...) are dropped, as runc drops them. ``<pid>`` is the container's init
  for ``start`` and ``run -d``, and the runtime's own pid for a foreground ``run`` (it stays
  the process systemd should watch). The host socket is connected to before waiting: if it
  cannot be, the command fails. The command returns once READY is passed on, or when the
  container's init has exited without sending it (checked every 100 ms, as runc).

Where kago differs: a foreground ``run`` stops waiting for READY when the container exits
(runc 1.1.5 waits for its own pid, so for ever); and ``start`` relays only for a container
created with ``NOTIFY_SOCKET`` (runc fails ``start`` when the directory is missing).
"""

import os

DIR = "notify"
SOCKET = "notify.sock"
IN_CONTAINER = "/run/notify"
ENV = f"NOTIFY_SOCKET={IN_CONTAINER}/{SOCKET}"
MOUNT_OPTIONS = ("bind", "nosuid", "noexec", "nodev", "ro")
POLL = 0.1  # seconds between checks that the container still lives (runc's ticker)


def directory(state_dir):
    return os.path.join(state_dir, DIR)


def mount(state_dir):
    """The spec mount that shows the notify directory in the container (runc's setupSpec)."""
    return {"destination": IN_CONTAINER, "type": "bind", "source": directory(state_dir),
            "options": list(MOUNT_OPTIONS)}


def make_directory(state_dir):
    os.mkdir(directory(state_dir), 0o755)
    os.chmod(directory(state_dir), 0o755)  # whatever the umask


def created_with_notify(state_dir):
    return os.path.isdir(directory(state_dir))


def bind(state_dir):
    """The container's notify socket, bound in the notify directory; returns the socket."""
    import _socket
    path = os.path.join(directory(state_dir), SOCKET)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        sock.bind(path)
        os.chmod(path, 0o777)
    except OSError as e:
        sock.close()
        from kago.errors import KagoError
        raise KagoError(f"notify socket {path}: {os.strerror(e.errno).lower()}") from None
    return sock


def _address(host):
    """A NOTIFY_SOCKET value as a socket address: ``@name`` is in the abstract namespace."""
    return "\0" + host[1:] if host.startswith("@") else host


def connect(host):
    import _socket
    client = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        client.connect(_address(host))
    except OSError as e:
        client.close()
        from kago.errors import KagoError
        raise KagoError(f"notify socket {host}: {os.strerror(e.errno).lower()}") from None
    return client


def ready_line(datagram):
    """The line to pass on if ``datagram`` is a READY notification (runc's test), else None."""
    if not datagram.startswith(b"READY="):
        return None
    return datagram.split(b"\n", 1)[0]


def relay(sock, host, main_pid, alive):
    """Wait for the container's READY=, pass it on to ``host`` with MAINPID=``main_pid``.

    ``alive()`` says whether the container's init still runs; once it does not, return
    without sending anything. Returns True if READY was relayed. Closes ``sock``.
    """
    try:
        client = connect(host)
        try:
            sock.settimeout(POLL)
            while True:
                try:
                    datagram = sock.recv(4096)
                except TimeoutError:
                    if not alive():
                        return False
                    continue
                line = ready_line(datagram)
                if line is not None:
                    _send(client, host, line + b"\n")
                    _send(client, host, b"MAINPID=%d\n" % main_pid)
                    return True
        finally:
            client.close()
    finally:
        sock.close()


def _send(client, host, data):
    try:
        client.send(data)
    except OSError as e:
        from kago.errors import KagoError
        raise KagoError(f"notify socket {host}: {os.strerror(e.errno).lower()}") from None
