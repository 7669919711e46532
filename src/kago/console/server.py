"""Running the console: the token (made and printed once, on the first start), the listen
rule, and uvicorn in this process (one worker: the sampler and the sessions live in it)."""

import sys

from kago.console import auth


class StartError(Exception):
    """The console cannot start as asked: one line."""


def prepare(root, listen):
    """(host, port, token, made): the listen address checked, the token read or made. A
    non-loopback address without a token file is refused."""
    try:
        host, port = auth.split_listen(listen)
    except ValueError as e:
        raise StartError(str(e)) from None
    try:
        token, made = auth.load_or_make_token(root)
    except auth.TokenError as e:
        if auth.is_loopback(host):
            raise StartError(str(e)) from None
        raise StartError(f"{e}: refusing to listen on {host}, which is not loopback, "
                         "without a token") from None
    return host, port, token, made


def serve(root=None, runroot=None, runtime=None, listen="127.0.0.1:9090", out=None,
          detached=False, sock=None):
    """Serve until interrupted (SIGINT, SIGTERM); 0, or raise StartError. The socket is bound
    before anything is printed; ``detached`` (kago up's console): then standard output is
    closed, which tells the starter that it listens. ``sock``: ``listen`` bound already
    (a user's console binds in the host's network namespace before joining its holder's)."""
    import kago
    out = out or (lambda line: print(line, flush=True))
    client = kago.Client(root=root, runroot=runroot, runtime=runtime)
    host, port, token, made = prepare(client.manager.paths.root, listen)
    if sock is None:
        try:
            sock = bind(host, port, listen)
        except StartError:
            if made:
                auth.forget_token(client.manager.paths.root)
            raise
    import uvicorn

    from kago.console.app import Console, make_app
    console = Console(root, runroot, runtime, listen, token)
    app = make_app(console=console)
    shown = f"[{host}]" if ":" in host else host
    out(f"kago console: http://{shown}:{port}/ (root {client.manager.paths.root})")
    if made:
        out(f"kago console: its token (shown this once; kept 0600 in "
            f"{auth.token_path(client.manager.paths.root)}): {token}")
    if not console.loopback:
        out(f"kago console: {host} is not loopback: every page and API call needs the token")
    if detached:
        import os
        sys.stdout.flush()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    config = uvicorn.Config(app, log_level="warning", access_log=False, ws="wsproto",
                            lifespan="on", server_header=False, timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def bind(host, port, listen):
    """The listening socket (IPv6 for a host with a colon); StartError naming the address."""
    import socket
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        if host == "localhost":
            host = "127.0.0.1"
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        raise StartError(f"listen {listen}: {e.strerror or e}") from None
    sock.set_inheritable(False)
    return sock


def main(argv):
    """``python -m kago.console.server ROOT RUNROOT LISTEN``: a detached console (kago up)."""
    root, runroot, listen = argv
    try:
        return serve(root=root or None, runroot=runroot or None, listen=listen, detached=True)
    except StartError as e:
        print(f"kago console: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
