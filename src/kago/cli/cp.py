"""``kago cp [-a] [-L] CONTAINER:SRC DEST|-`` and ``kago cp [-a] [-L] SRC|- CONTAINER:DEST``:
docker's flags, path rules and exit statuses (an error is one line and status 1; flag errors
are 125) over the client's ``copy`` (kago.manager.cp does the work)."""

import sys

from kago.cli.common import client, parser


def cmd_cp(glob, argv):
    p = parser("cp", "Copy files between a container and this host ('-': a tar stream on "
                     "stdin or stdout).")
    p.add_argument("-a", "--archive", action="store_true",
                   help="keep owners (uid/gid) as the source has them")
    p.add_argument("-L", "--follow-link", action="store_true",
                   help="follow a symlink at SRC")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no 'Successfully copied' line (printed on a terminal only)")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dest", metavar="DEST")
    args = p.parse_args(argv)
    from kago.errors import KagoError, describe
    try:
        copied = client(glob).copy(args.src, args.dest, archive=args.archive,
                                   follow_link=args.follow_link)
    except KagoError as e:
        print(f"kago: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # the reader of a tar stream left (kago cp c:/x - | head): main's to handle
    except OSError as e:
        print(f"kago: {describe(e)}", file=sys.stderr)
        return 1
    if not args.quiet and args.dest != "-" and sys.stderr.isatty():
        # docker's line, on a terminal only (as its progress)
        from kago.manager import format as F
        where = args.dest
        print(f"Successfully copied {F.human_size(copied)} to {where}", file=sys.stderr)
    return 0
