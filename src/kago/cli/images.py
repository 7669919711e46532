"""``kago images/import/pull/push/tag/rmi/save/load/commit/export``: docker's flags and output
over the client's images (kago.manager.images does the work)."""

import sys
import time

from kago.cli.common import client, out, parser


def cmd_images(glob, argv):
    p = parser("images", "List images.")
    p.add_argument("-q", "--quiet", action="store_true", help="only the image IDs")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate the output")
    p.add_argument("--format", help="a Go template per row, or table, or json")
    p.add_argument("-a", "--all", action="store_true",
                   help="also the intermediate images kago build keeps as its cache")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]",
                   help="only this repository's images (shell wildcards allowed)")
    args = p.parse_args(argv)
    from fnmatch import fnmatchcase

    from kago.manager import format as F
    from kago.manager.images import created_time, split_name
    want = split_name(args.repository) if args.repository else None
    rows = []
    for info in reversed(client(glob).images.list(all=args.all)):
        short = info.id if args.no_trunc else info.id[:12]
        for name in info.names or ["<none>:<none>"]:
            repo, tag = split_name(name)
            if want and not (fnmatchcase(repo, want[0]) and (
                    ":" not in args.repository.rpartition("/")[2]
                    or fnmatchcase(tag, want[1]))):
                continue
            rows.append({"Repository": repo, "Tag": tag, "ID": short,
                         "CreatedSince": F.human_duration(time.time() - created_time(info))
                         + " ago",
                         "CreatedAt": info.created, "Size": F.human_size(info.size)})
    if args.quiet:
        for row in dict.fromkeys(r["ID"] for r in rows):
            out(row)
        return 0
    for line in F.formatted(args.format or "table", rows,
                            ("Repository", "Tag", "ID", "CreatedSince", "Size"),
                            {"ID": "IMAGE ID"}):
        out(line)
    return 0


def cmd_import(glob, argv):
    p = parser("import", "Import a root filesystem (tarball or directory) as an image.")
    p.add_argument("-m", "--message", help="a commit message")
    p.add_argument("-c", "--change", action="append", default=[],
                   help="apply a Dockerfile instruction (CMD, ENV, EXPOSE...)")
    p.add_argument("file", help="a tarball or directory (- for stdin)")
    p.add_argument("reference", nargs="?", help="the image's name (NAME[:TAG])")
    args = p.parse_args(argv)
    info = client(glob).images.import_(args.file, args.reference, changes=args.change,
                                       message=args.message)
    out("sha256:" + info.id)
    return 0


def cmd_pull(glob, argv):
    p = parser("pull", "Pull an image from a registry.")
    p.add_argument("--insecure", "--tls-verify=false", action="store_true",
                   dest="insecure", help="plain HTTP / unverified TLS (local registries)")
    p.add_argument("reference", help="the image's name (NAME[:TAG])")
    args = p.parse_args(argv)
    info = client(glob).images.pull(args.reference, insecure=args.insecure or None)
    out(f"Digest: {info.digest or 'sha256:' + info.id}")
    out(f"Status: downloaded image for {args.reference}")
    return 0


def cmd_push(glob, argv):
    p = parser("push", "Push an image to a registry.")
    p.add_argument("--insecure", action="store_true",
                   help="allow plain HTTP and unverified TLS to the registry")
    p.add_argument("image", help="the image's name or ID")
    p.add_argument("destination", nargs="?", help="push under this name")
    args = p.parse_args(argv)
    digest = client(glob).images.push(args.image, args.destination,
                                     insecure=args.insecure or None)
    out(f"{args.destination or args.image}: digest: {digest}")
    return 0


def cmd_tag(glob, argv):
    p = parser("tag", "Give an image another name.")
    p.add_argument("source", help="the image's name or ID")
    p.add_argument("target", help="the new name (NAME[:TAG])")
    args = p.parse_args(argv)
    client(glob).images.tag(args.source, args.target)
    return 0


def cmd_rmi(glob, argv):
    p = parser("rmi", "Remove images.")
    p.add_argument("-f", "--force", action="store_true",
                   help="remove it even if a stopped container uses it")
    p.add_argument("images", nargs="+", help="the images' names or IDs")
    args = p.parse_args(argv)
    images = client(glob).images
    for ref in args.images:
        for line in images.remove(ref, force=args.force):
            out(line)
    return 0


def cmd_save(glob, argv):
    p = parser("save", "Write an image as a docker-loadable archive (or an OCI layout).")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("--format", choices=("docker-archive", "oci"), default="docker-archive",
                   help="a Go template per row, or table, or json")
    p.add_argument("image", help="the image's name or ID")
    args = p.parse_args(argv)
    client(glob).images.save(args.image, args.output, format=args.format)
    return 0


def cmd_load(glob, argv):
    p = parser("load", "Load images from a docker archive or an OCI layout.")
    p.add_argument("-i", "--input", help="read from this file instead of stdin")
    args = p.parse_args(argv)
    from kago.manager.images import load_lines
    for line in load_lines(client(glob).images.load(args.input)):
        out(line)
    return 0


def cmd_commit(glob, argv):
    p = parser("commit", "Make an image from a container's changes.")
    p.add_argument("-m", "--message", help="a commit message")
    p.add_argument("-a", "--author", help="author (\"Name <email>\")")
    p.add_argument("-c", "--change", action="append", default=[],
                   help="apply a Dockerfile instruction (CMD, ENV, EXPOSE...)")
    p.add_argument("container", help="the container's name or ID")
    p.add_argument("reference", nargs="?", help="the image's name (NAME[:TAG])")
    args = p.parse_args(argv)
    info = client(glob).commit(args.container, args.reference, message=args.message,
                               author=args.author, changes=args.change)
    out("sha256:" + info.id)
    return 0


def cmd_export(glob, argv):
    p = parser("export", "Write a container's filesystem as a tar archive.")
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("container", help="the container's name or ID")
    args = p.parse_args(argv)
    c = client(glob)
    c.container(args.container)  # an unknown container is the error, before the terminal
    target = args.output or "-"
    if target == "-" and sys.stdout.isatty():
        from kago.manager.errors import ManagerError
        raise ManagerError("refusing to write a tar archive to a terminal: use -o FILE or "
                           "redirect stdout")
    c.export(args.container, target)
    return 0


def cmd_history(glob, argv):
    p = parser("history", "Show the history of an image: its layers and the steps that made "
                          "them, newest first.")
    p.add_argument("-H", "--human", default="true",
                   help="sizes and dates in human form (true, the default, or false)")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate the output")
    p.add_argument("-q", "--quiet", action="store_true", help="only the image IDs")
    p.add_argument("--format", help="a Go template per row, or table, or json")
    p.add_argument("image", help="the image's name or ID")
    args = p.parse_args(argv)
    from kago.manager import format as F
    from kago.manager.images import created_time
    human = args.human.lower() not in ("false", "0")
    rows = []
    for entry in client(glob).images.history(args.image):
        short = entry["id"] if args.no_trunc or entry["id"] == "<missing>" else \
            entry["id"][:12]
        by = entry["created_by"]
        if not args.no_trunc and len(by) > 45:
            by = by[:44] + "…"
        when = created_time(type("I", (), {"created": entry["created"]})())
        rows.append({"ID": short, "CreatedSince": F.human_duration(time.time() - when) + " ago"
                     if human else entry["created"], "CreatedAt": entry["created"],
                     "CreatedBy": by, "Size": F.human_size(entry["size"]) if human
                     else str(entry["size"]), "Comment": entry["comment"]})
    if args.quiet:
        for row in rows:
            out(row["ID"])
        return 0
    for line in F.formatted(args.format or "table", rows,
                            ("ID", "CreatedSince", "CreatedBy", "Size", "Comment"),
                            {"ID": "IMAGE", "CreatedSince": "CREATED",
                             "CreatedBy": "CREATED BY"}):
        out(line)
    return 0


def cmd_image_prune(glob, argv):
    p = parser("image prune", "Remove dangling images (with -a, every image no container "
                              "uses).")
    p.add_argument("-a", "--all", action="store_true",
                   help="every unused image, not just the dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    args = p.parse_args(argv)
    from kago.cli.common import confirm
    what = "all images without at least one container associated to them" if args.all \
        else "all dangling images"
    if not args.force and not confirm(f"WARNING! This will remove {what}.\n"
                                      f"Are you sure you want to continue? [y/N] "):
        return 0
    from kago.manager.images import pruned_lines
    done = client(glob).images.prune(all=args.all)
    lines = pruned_lines(done["images"])
    if lines:
        out("Deleted Images:")
    for line in lines:
        out(line)
    for error in done["errors"]:
        print(f"kago: image prune: {error}", file=sys.stderr)
    return 1 if done["errors"] else 0
