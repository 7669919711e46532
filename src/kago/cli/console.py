"""``kago console [--listen HOST:PORT]``: the web console (docs/console.md)."""

from kago.cli.common import Usage, parser


_OUTSIDE = None  # a user's listening socket, bound before the command joined its holder


def _parser():
    p = parser("console", "Serve a web console (pages and a JSON API) for this root's "
                          "containers, groups, images and networks.")
    p.add_argument("--listen", default="127.0.0.1:9090",
                   help="HOST:PORT to listen on (default 127.0.0.1:9090; an address that is "
                        "not loopback needs the token for every request)")
    return p


def bind_outside(argv):
    """For a user (before the command joins the holder's network namespace, where no browser
    of the host reaches): bind ``--listen`` here, in the host's; the console serves on it from
    inside. Bad arguments are left to ``cmd_console`` to refuse."""
    global _OUTSIDE
    try:
        args = _parser().parse_args(argv)
    except (Usage, SystemExit):
        return
    from kago.console import auth
    from kago.console.server import StartError, bind
    try:
        host, port = auth.split_listen(args.listen)
    except ValueError:
        return
    try:
        _OUTSIDE = bind(host, port, args.listen)
    except StartError as e:
        raise Usage(str(e)) from None


def cmd_console(glob, argv):
    args = _parser().parse_args(argv)
    from kago.console.server import StartError, serve
    try:
        return serve(root=glob["root"], runroot=glob["runroot"], runtime=glob["runtime"],
                     listen=args.listen, sock=_OUTSIDE)
    except StartError as e:
        raise Usage(str(e)) from None
    except KeyboardInterrupt:
        return 0
