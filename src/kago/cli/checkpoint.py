"""``kago checkpoint`` and ``kago restore``: a running container to CRIU images and back
(kago.manager.checkpoints does the work; docs/checkpoint.md)."""

from kago.cli.common import Usage, client, out, parser


def cmd_checkpoint(glob, argv):
    p = parser("checkpoint", "Checkpoint a running container (CRIU): it is then "
                             "checkpointed, and kago restore or kago start brings it back.")
    p.add_argument("container", help="the container's name or ID")
    p.add_argument("--export", metavar="FILE", help="also write the checkpoint to one tar "
                                                    "FILE, for kago restore --import")
    p.add_argument("--leave-running", action="store_true",
                   help="keep the container running after the checkpoint")
    p.add_argument("--tcp-established", action="store_true",
                   help="checkpoint established TCP connections too")
    args = p.parse_args(argv)
    record = client(glob).checkpoint(args.container, export=args.export,
                                     leave_running=args.leave_running,
                                     tcp_established=args.tcp_established)
    out(record.name)
    return 0


def cmd_restore(glob, argv):
    p = parser("restore", "Restore a checkpointed container, or (--import) a container "
                          "from an exported checkpoint.")
    p.add_argument("container", nargs="?", help="the checkpointed container's name or ID")
    p.add_argument("--import", dest="file", metavar="FILE",
                   help="a checkpoint written by kago checkpoint --export")
    p.add_argument("--name", help="with --import: the new container's name (default: the "
                                  "checkpointed one's)")
    args = p.parse_args(argv)
    if args.container is None and args.file is None:
        raise Usage("restore: give a container, or --import FILE")
    if args.container is not None and args.file is not None:
        raise Usage("restore: give a container or --import FILE, not both (--name names the "
                    "imported one)")
    if args.name and not args.file:
        raise Usage("restore: --name goes with --import")
    c = client(glob)
    if args.file:
        restored = c.restore(file=args.file, name=args.name)
    else:
        restored = c.restore(args.container)
    out(restored.name)
    return 0
