"""``kago console [--listen HOST:PORT]``: the web console (docs/console.md)."""

from kago.cli.common import Usage, parser


def cmd_console(glob, argv):
    p = parser("console", "Serve a web console (pages and a JSON API) for this root's "
                          "containers, groups, images and networks.")
    p.add_argument("--listen", default="127.0.0.1:9090",
                   help="HOST:PORT to listen on (default 127.0.0.1:9090; an address that is "
                        "not loopback needs the token for every request)")
    args = p.parse_args(argv)
    from kago.console.server import StartError, serve
    try:
        return serve(root=glob["root"], runroot=glob["runroot"], runtime=glob["runtime"],
                     listen=args.listen)
    except StartError as e:
        raise Usage(str(e)) from None
    except KeyboardInterrupt:
        return 0
