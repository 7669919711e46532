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


def serve(root=None, runroot=None, runtime=None, listen="127.0.0.1:9090", out=None):
    """Serve until interrupted; 0, or raise StartError."""
    import kago
    out = out or (lambda line: print(line, flush=True))
    client = kago.Client(root=root, runroot=runroot, runtime=runtime)
    host, port, token, made = prepare(client.manager.paths.root, listen)
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
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                            ws="wsproto", lifespan="on", server_header=False,
                            timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    try:
        server.run()
    except OSError as e:
        raise StartError(f"listen {listen}: {e.strerror}") from None
    if not server.started:
        raise StartError(f"listen {listen}: the server did not start (see above)")
    return 0


if __name__ == "__main__":  # python -m kago.console.server ROOT LISTEN (detached starts)
    sys.exit(serve(root=sys.argv[1] or None, listen=sys.argv[2]))
