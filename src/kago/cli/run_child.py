"""What a run server's child does (cli/run_server.py forks them): a spare waits for its
request, from the server (a request that came through the supervisor) or, on the run
server's own socket, from a command line directly (``_direct``); then the verb, as the
command line would have done it, with its stdio, working directory and environment, and its
exit line on the connection. The request's checks (``parse``) and the wire helpers are here
too: the server uses them for the requests the supervisor relays."""

import gc
import os
import select
import signal
import socket
import struct
import sys

VERBS = ("run", "create", "start")
MAX_FDS = 4           # the client's connection and its stdin, stdout, stderr


def spare(conn, learn_w, listener=None):
    """A spare child: waits for its request (the line and the client's four fds), or with
    ``listener`` for a command line there, then does it. Never returns."""
    gc.disable()  # its inherited objects wrap fds closed here: none may be collected
    while listener is not None:
        ready = select.select([conn, listener], [], [])[0]
        if conn in ready:
            break  # the end (or an order) from the server
        try:
            sock, _addr = listener.accept()
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            os._exit(0)
        listener.close()  # the next spare accepts: a connection queued meanwhile waits on it
        _direct(conn, sock, learn_w)  # never returns
    try:
        data, fds = receive(conn)
    except OSError:
        data, fds = b"", []
    if not data or len(fds) != MAX_FDS:
        os._exit(0)  # let go unused
    conn.close()
    from kago import jsonio
    sock = socket.socket(fileno=fds[0])
    _child(jsonio.loads(data, "the run request"), sock, fds[1:], learn_w)


def _direct(conn, sock, learn_w):
    """A command line that came to our socket: its request (the line and its three stdio
    fds) read, the connection passed to the server, then done as one that came through the
    supervisor. Never returns. Until ``{"accepted": true}`` nothing is done: a client whose
    connection ends before it goes the supervisor's way."""
    try:
        data, fds = _receive_line(sock)
    except OSError:
        data, fds = b"", []
    if not data or len(fds) != MAX_FDS - 1:
        os._exit(0)
    try:
        conn.sendmsg([b"t"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                               struct.pack("i", sock.fileno()))])
    except OSError:
        os._exit(0)  # the server let us go meanwhile
    conn.close()
    try:
        request = parse(data, sock)
        sock.sendall(b'{"accepted": true}\n')
    except (OSError, ValueError) as e:
        reply(sock, {"ok": False, "error": str(e), "code": 125})
        os._exit(0)
    _child(request, sock, fds, learn_w)


def _receive_line(sock):
    """A command line's request on its own connection: the line (it may come in pieces)
    and the fds sent with its first piece."""
    data, fds = receive(sock)
    while data and not data.endswith(b"\n"):
        more = sock.recv(1 << 20)
        if not more:
            return b"", fds
        data += more
    return data, fds


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
        reply(sock, {"exit": code})
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


def parse(data, sock):
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


def receive(sock):
    """One handoff: the request line and its fds."""
    from kago.manager.supervisor.runs import received_fds
    data, anc, _flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_SPACE(MAX_FDS * 4))
    return data, received_fds(anc)


def reply(sock, doc):
    from kago import jsonio
    try:
        sock.sendall(jsonio.dumps(doc).encode() + b"\n")
    except OSError:
        pass  # the command line is gone


def _learnt(fd, names):
    try:  # under a pipe's 64 KiB: the parent reads it only after this child ended
        names = sorted(n for n in names if not n.startswith("_"))
        os.write(fd, "\n".join(names).encode()[:60000])
    except OSError:
        pass
