"""``kago run -d``, ``kago create`` and ``kago start`` (without -a/-i) as a thin client: the
command line, its working directory, environment and stdio go to the root's supervisor, which
hands them to its warm run server (cli/run_server.py); a child forked there runs the verb as
this process would have, writing to our stdout and stderr, and sends back the exit status.

This module imports only what that takes (no argparse, no json package, no socket module:
``_socket``, ``kago.jsonio``), so the command costs the interpreter's start and a round trip.
What it cannot send goes the usual way (``call`` returns None): a run that is not detached,
``--help``, a flag it does not know (argparse decides: an abbreviation, a typo), a
supervisor that does not know the request (an older one), or one that ends before it took
the request. ``KAGO_THIN=0`` in the environment turns it off.

Exit: the child's status; a child killed by a signal kills this process with the same signal
(a shell sees what it would have seen). Our SIGINT/SIGTERM go to the child, so an interrupted
``run`` is undone there as here.
"""

import os
import sys

VERBS = ("run", "create", "start")
DONE = False  # the last call was done remotely: nothing of this process is left to close


def call(glob, verb, rest):
    """The verb done by the run server: its exit status, or None to do it here."""
    if os.environ.get("KAGO_THIN", "1") == "0" or not wanted(verb, rest):
        return None
    from kago.manager.paths import Paths
    paths = Paths(glob["root"], glob["runroot"])
    sock = _connect(paths)
    if sock is None:
        return None
    global DONE
    try:
        code = _request(sock, glob, verb, rest)
    finally:
        sock.close()
    DONE = code is not None
    return code


def wanted(verb, rest):
    if verb == "create":
        return _flags_before_image(rest, _run_table()) is not None
    if verb == "run":
        seen = _flags_before_image(rest, _run_table())
        return seen is not None and "-d" in seen
    if verb == "start":
        # containers and --detach-keys only: -a and -i attach this terminal
        return all(not a.startswith("-") or a.startswith("--detach-keys") for a in rest)
    return False


def _run_table():
    """run's flags: name -> takes a value (from the same declaration argparse gets)."""
    from kago.cli.flags import add_run_flags
    table = _Table()
    add_run_flags(table)
    return table.flags


class _Table:
    """Records ``add_argument`` calls as argparse would take them."""

    def __init__(self):
        self.flags = {}

    def add_argument(self, *names, **kw):
        takes = kw.get("action") not in ("store_true", "store_false", "count")
        for name in names:
            if name.startswith("-"):
                self.flags[name] = takes


def _flags_before_image(argv, table):
    """The canonical flags given before the image (-d for --detach...), or None when the
    command line is one to leave to argparse (help, an unknown or abbreviated flag)."""
    seen = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            return seen
        if arg.startswith("--"):
            name, eq, _value = arg.partition("=")
            if name not in table or name == "--help" or (eq and not table[name]):
                return None
            seen.add("-d" if name == "--detach" else name)
            i += 1 if eq or not table[name] else 2
            continue
        for j, letter in enumerate(arg[1:], 1):
            name = "-" + letter
            if name not in table or name == "-h":
                return None
            seen.add(name)
            if table[name]:
                i += 1 if j < len(arg) - 1 else 2  # -p80:80 or -p 80:80
                break
        else:
            i += 1
    return seen


def _connect(paths):
    """A connection to the root's supervisor (started if there is none), or None."""
    import _socket
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(paths.socket())
        return sock
    except OSError:
        sock.close()
    from kago.errors import KagoError
    from kago.manager import supervisor
    try:  # none yet: started as every command starts it
        conn = supervisor.connect(paths)
    except (KagoError, OSError):
        return None  # the usual way says why
    return conn.sock


def _request(sock, glob, verb, rest):
    from kago import jsonio
    doc = {"op": "run", "verb": verb, "argv": list(rest), "glob": glob, "cwd": os.getcwd(),
           "env": dict(os.environ)}
    line = jsonio.dumps(doc).encode() + b"\n"
    fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2))
    try:
        import _socket
        sent = sock.sendmsg([line], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        if sent < len(line):
            sock.sendall(line[sent:])
    except OSError:
        return None
    replies = _Replies(sock)
    first = replies.next()
    if first is not None and ("exit" in first or "signal" in first):
        return _ended(first)
    if first is None or not first.get("accepted"):
        if first is not None and not first.get("fallback") and "unknown request" not in \
                str(first.get("error")):
            print(f"kago: {first.get('error', 'the supervisor refused the request')}",
                  file=sys.stderr)
            return first.get("code", 125)
        return None  # nothing was done: the usual way
    return _outcome(sock, replies)


def _outcome(sock, replies):
    import _signal as signal  # the signal module costs ~3 ms (enum)
    old = {}

    def forward(signum, _frame):
        try:
            sock.sendall(b'{"signal": %d}\n' % signum)
        except OSError:
            pass
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        old[s] = signal.signal(s, forward)
    try:
        end = replies.next()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return _ended(end)


def _ended(end):
    """The exit status a child's end line gives (a signal: this process dies of it too)."""
    import _signal as signal
    if end is not None and "exit" in end:
        return end["exit"]
    if end is not None and end.get("signal"):
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            signal.signal(end["signal"], signal.SIG_DFL)
        except (OSError, ValueError):
            pass  # SIGKILL, SIGSTOP: never caught anyway
        os.kill(os.getpid(), end["signal"])
        return 128 + end["signal"]
    print("kago: the run server ended during the request: see 'kago ps -a'", file=sys.stderr)
    return 125


class _Replies:
    """JSON lines from the connection; None at its end."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def next(self):
        from kago import jsonio
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except InterruptedError:
                continue
            except OSError:
                data = b""
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            doc = jsonio.loads(line, "the run server's reply")
        except Exception:  # noqa: BLE001 - a broken reply is the end of the conversation
            return None
        return doc if isinstance(doc, dict) else None
