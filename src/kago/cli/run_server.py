"""The warm half of ``kago run -d``, ``kago create`` and ``kago start``: one process per root
with kago's manager already imported, which forks a child for each request; the child runs
the verb exactly as the command line would (the same parser, code, output and exit status),
with the requesting command line's stdin, stdout, stderr, working directory and environment.

Why: a fresh ``kago run -d`` spends ~60 ms importing argparse, the Definition's dataclasses,
kago.storage and the manager before it creates anything (``python -X importtime``); the work
itself (parse, create, start under the supervisor) takes ~25 ms in a warm process. The command
line (cli/run_thin.py) now pays only the interpreter and a connection.

How it is reached: the supervisor spawns it on the first ``run`` request it gets
(``python -m kago.cli.run_server``, fd 3 its end of a socketpair: supervisor/runs.py) and
hands it each request's connection with the request line and the client's stdio fds
(SCM_RIGHTS). On the client's connection, one JSON line each:

    {"accepted": true}       the request is here; from now on it runs (or is undone) here
    {"exit": N}              written by the child before it exits with N
    {"signal": S}            the child was killed by signal S (no exit line came)

The client may send ``{"signal": S}`` (its Ctrl-C, SIGTERM): the child gets it, so an
interrupted ``run`` undoes its create as the in-process one does. Only root may ask
(SO_PEERCRED), as only root may run the verbs. The process writes one byte on the channel
for each request finished (the supervisor counts what is in flight) and exits when the
supervisor closes the channel, after its children.

The modules a child imported that this process had not are imported here after it ends, so
the next request finds them warm (kago.network after the first bridge run, ...).
"""

import gc
import os
import selectors
import signal
import socket
import struct
import sys

# what every routed verb needs; the rest is learnt from the children (see _learn)
WARM = ("kago.cli.main", "kago.cli.run", "kago.cli.lifecycle", "kago.cli.common", "argparse",
        "kago.client", "kago.manager.create", "kago.manager.lifecycle",
        "kago.manager.release", "kago.manager.removal", "kago.manager.definition.from_flags",
        "kago.manager.definition.serial", "kago.manager.spec", "kago.manager.rootfs",
        "kago.manager.attachments", "kago.manager.runtimes", "kago.storage",
        "kago.manager.supervisor.client")
VERBS = ("run", "create", "start")
MAX_FDS = 4           # the client's connection and its stdin, stdout, stderr
CHANNEL_FD = 3


def main(argv=None):
    for name in WARM:
        __import__(name)
    from kago.cli.run import verb_parser
    for verb in ("run", "create"):
        # a parse as well: argparse compiles a regular expression per argument shape on
        # its first parse (re's cache), which every child would do again (~0.5 ms each)
        verb_parser(verb).parse_known_args(["-d", "--name", "n", "image", "command", "-a"])
    _settle_lazy_names()
    sys.stdout.flush()
    gc.freeze()  # what is loaded now is shared with every child, never collected
    channel = socket.socket(fileno=CHANNEL_FD)
    os.set_inheritable(CHANNEL_FD, False)
    Server(channel).serve()
    return 0


class Child:
    """A forked child: a spare waiting for a request on ``conn``, then the request's."""

    __slots__ = ("conn", "learn", "pid", "pidfd", "sock")

    def __init__(self, conn, learn, pid):
        self.conn, self.learn, self.pid, self.sock = conn, learn, pid, None
        self.pidfd = os.pidfd_open(pid)


class Server:
    """The loop: requests from the channel go to a spare child forked ahead of time (a fork
    of this ~50 MB process costs 2-3 ms: off the request's path); a child's end is seen on
    its pidfd."""

    def __init__(self, channel):
        self.channel = channel
        self.sel = selectors.DefaultSelector()
        self.sel.register(channel, selectors.EVENT_READ, None)
        self.busy = {}       # pidfd -> Child working for a client
        self.spare = None
        self.open = True

    def serve(self):
        self._fork_spare()
        try:
            self.channel.send(b"r")  # ready: the supervisor sends requests from now on
        except OSError:
            pass
        while self.open or self.busy:
            for key, _mask in self.sel.select():
                try:
                    self._event(key)
                except (OSError, ValueError) as e:  # no fd left...: this one event failed
                    _note(f"{key.data[0] if key.data else 'channel'}: {e}")
        if self.spare is not None:
            self.spare.conn.close()  # it reads the end and exits

    def _event(self, key):
        if key.data is None:
            self._channel()
        elif key.data[0] == "child":
            self._ended(key.data[1])
        elif key.data[1].sock is not None:  # not ended in this same round
            self._client(key.data[1])

    def _fork_spare(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX,
                                         socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        learn_r, learn_w = os.pipe2(os.O_CLOEXEC)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _close_all_but((0, 1, 2, theirs.fileno(), learn_w))
            _spare(theirs, learn_w)  # never returns
        theirs.close()
        os.close(learn_w)
        self.spare = Child(ours, learn_r, pid)
        self.sel.register(self.spare.pidfd, selectors.EVENT_READ, ("child", self.spare))

    def _channel(self):
        try:
            data, fds = _receive(self.channel)
        except OSError:
            data, fds = b"", []
        if not data:
            for fd in fds:
                os.close(fd)
            self.sel.unregister(self.channel)
            self.channel.close()
            self.open = False  # the supervisor is gone, or let us go: finish and exit
            return
        try:
            self._take(data, fds)
        finally:
            for fd in fds[1:]:
                os.close(fd)  # the child has its own now

    def _take(self, data, fds):
        if len(fds) != MAX_FDS:
            for fd in fds[:1]:
                os.close(fd)
            _note(f"a request came with {len(fds)} fds, not {MAX_FDS}: dropped")
            self._done()
            return
        sock = socket.socket(fileno=fds[0])
        try:
            _parse(data, sock)
            sock.sendall(b'{"accepted": true}\n')
        except (OSError, ValueError) as e:
            _reply(sock, {"ok": False, "error": str(e), "code": 125})
            sock.close()
            self._done()
            return
        try:
            if self.spare is None:
                self._fork_spare()  # requests at once: each gets its own
            child, self.spare = self.spare, None
            child.conn.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                         struct.pack(f"{MAX_FDS}i", *fds))])
            child.conn.close()
        except OSError as e:  # nothing was done: said on its stderr, as the verb would
            os.write(fds[3], f"kago: run: cannot fork for it: {e}\n".encode())
            _reply(sock, {"exit": 125})
            sock.close()
            self._done()
            return
        child.sock = sock
        self.busy[child.pidfd] = child
        self.sel.register(sock, selectors.EVENT_READ, ("client", child))

    def _client(self, child):
        """A line from the client while its child works: a signal to pass on; its end (the
        command line died): the child goes on, as docker's daemon finishes a request."""
        try:
            data = child.sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(child.sock)
            return
        for line in data.splitlines():
            sig = _signal_of(line)
            if sig:
                try:
                    os.kill(child.pid, sig)
                except ProcessLookupError:
                    pass

    def _ended(self, child):
        self.sel.unregister(child.pidfd)
        os.close(child.pidfd)
        _pid, status = os.waitpid(child.pid, 0)
        names = _read_all(child.learn)
        os.close(child.learn)
        if child is self.spare:  # a spare that died waiting (killed): another one
            self.spare = None
            child.conn.close()
        else:
            del self.busy[child.pidfd]
            try:
                self.sel.unregister(child.sock)
            except KeyError:
                pass  # the client had gone
            if os.WIFSIGNALED(status):
                _reply(child.sock, {"signal": os.WTERMSIG(status)})
            child.sock.close()
            child.sock = None
            self._done()
            _learn(names)
        if self.spare is None and self.open:
            self._fork_spare()  # for the next request, while the command line reads us

    def _done(self):
        if self.open:
            try:
                self.channel.send(b".")
            except OSError:
                pass


def _spare(conn, learn_w):
    """A spare child: waits for its request (the line and the client's four fds), then does
    it. Never returns."""
    gc.disable()  # its inherited objects wrap fds closed here: none may be collected
    try:
        data, fds = _receive(conn)
    except OSError:
        data, fds = b"", []
    if not data or len(fds) != MAX_FDS:
        os._exit(0)  # let go unused
    conn.close()
    from kago import jsonio
    sock = socket.socket(fileno=fds[0])
    _child(jsonio.loads(data, "the run request"), sock, fds[1:], learn_w)


def _close_all_but(keep):
    """Close every fd but ``keep`` (a spare holds nothing of other requests: their clients
    see their connection end when their own child and this process are gone)."""
    last = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(last, fd)
        last = fd + 1
    os.closerange(last, os.sysconf("SC_OPEN_MAX"))

def _child(request, sock, stdio, learn_w):
    """The forked child: the command line's verb with its stdio, cwd and environment; its
    exit line written on the connection before it exits. Never returns."""
    code = 125
    try:
        before = set(sys.modules)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for i, fd in enumerate(stdio):
            os.dup2(fd, i)
            os.close(fd)
        gc.disable()  # a short command: collections would only copy the shared heap
        code = _run(request)
        _learnt(learn_w, set(sys.modules) - before)
    except BaseException as e:  # noqa: BLE001 - reported on the connection
        print(f"kago: {type(e).__name__}: {e}", file=sys.stderr)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        _reply(sock, {"exit": code})
        os._exit(code)


def _run(request):
    from kago import faults
    from kago.cli import main
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    faults.configure(os.environ)
    try:
        return main.run_verb(request["glob"], request["verb"], request["argv"])
    except SystemExit as e:  # argparse's --help and usage paths
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 125)


def _parse(data, sock):
    from kago import jsonio
    uid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
    if uid != 0:
        raise ValueError(f"run: uid {uid} is not root of this namespace: not served")
    request = jsonio.loads(data, "the run request")
    if request.get("verb") not in VERBS:
        raise ValueError(f"run: unknown verb {request.get('verb')!r}")
    for key, kind in (("argv", list), ("glob", dict), ("cwd", str), ("env", dict)):
        if not isinstance(request.get(key), kind):
            raise ValueError(f"run: bad request: {key} is not a {kind.__name__}")
    return request


def _receive(sock):
    """One handoff: the request line and its fds."""
    from kago.manager.supervisor.runs import received_fds
    data, anc, _flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_SPACE(MAX_FDS * 4))
    return data, received_fds(anc)


def _reply(sock, doc):
    from kago import jsonio
    try:
        sock.sendall(jsonio.dumps(doc).encode() + b"\n")
    except OSError:
        pass  # the command line is gone


def _signal_of(line):
    from kago import jsonio
    try:
        sig = jsonio.loads(line, "a client line").get("signal")
    except (ValueError, AttributeError, Exception):  # noqa: BLE001 - a bad line is ignored
        return 0
    return sig if sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) else 0


def _learnt(fd, names):
    try:  # under a pipe's 64 KiB: the parent reads it only after this child ended
        names = sorted(n for n in names if not n.startswith("_"))
        os.write(fd, "\n".join(names).encode()[:60000])
    except OSError:
        pass


def _read_all(fd):
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace").split()


def _learn(names):
    """Import here what the last child needed, so the next one finds it loaded."""
    fresh = [n for n in names if n not in sys.modules]
    for name in fresh:
        try:
            __import__(name)
        except Exception as e:  # noqa: BLE001 - only a cache: the child imports it anyway
            _note(f"could not pre-import {name}: {e}")
    if fresh:
        _settle_lazy_names()
        gc.freeze()


def _settle_lazy_names():
    """A package that loads its names on first use (a module ``__getattr__``) and has a
    submodule of the same name (``definition.from_flags``, the function, in
    ``definition/from_flags.py``) holds the submodule under that name when the submodule was
    imported before the name was used: take each such name through the package again."""
    for module in list(sys.modules.values()):
        names = getattr(module, "__dict__", {})
        if "__getattr__" not in names or not hasattr(module, "__path__"):
            continue
        for name in list(getattr(module, "__all__", ())):
            value = names.get(name)
            if isinstance(value, type(sys)) and value.__name__ == f"{module.__name__}.{name}":
                del names[name]
                try:
                    getattr(module, name)
                except AttributeError:
                    names[name] = value  # it was the submodule after all


def _note(text):
    import time
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} run server {os.getpid()}: "
                     f"{text}\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
