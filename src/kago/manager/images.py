"""Image verbs, thin over kago.storage: images, import, pull, push, tag, rmi, save, load,
commit, export, and ``inspect`` of an image.

Each ``cmd_*(mgr, argv, parser, out)`` parses its flags with the CLI's parser factory and
prints docker's output; the work is the store's. Store errors are KagoErrors already, so the
CLI reports them with exit status 125.
"""

import os
import time

from kago.manager import format as F
from kago.manager.errors import ManagerError


def _split_name(name):
    repo, _, tag = name.rpartition(":")
    if "/" in tag or not repo:
        return name, "latest"
    return repo, tag


def _created(info):
    from kago.manager.logs import parse_timestamp
    try:
        return parse_timestamp(info.created.replace("+00:00", "Z"))
    except (ValueError, AttributeError):
        return time.time()


def _store_of(mgr, ref):
    """The root's image store, for a verb that needs ``ref`` in it: a root without a store
    has no such image, and none is made to say so."""
    if not os.path.isdir(mgr.paths.storage()):
        from kago.storage.errors import ImageNotFound
        raise ImageNotFound(ref)
    return mgr.store


def cmd_images(mgr, argv, parser, out):
    p = parser("images", "List images.")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    args = p.parse_args(argv)
    rows = []
    images = mgr.store.images() if os.path.isdir(mgr.paths.storage()) else []
    for info in reversed(images):
        short = info.id if args.no_trunc else info.id[:12]
        for name in info.names or ["<none>:<none>"]:
            repo, tag = _split_name(name)
            rows.append({"Repository": repo, "Tag": tag, "ID": short,
                         "CreatedSince": F.human_duration(time.time() - _created(info)) + " ago",
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


def cmd_import(mgr, argv, parser, out):
    p = parser("import", "Import a root filesystem (tarball or directory) as an image.")
    p.add_argument("-m", "--message")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("file")
    p.add_argument("reference", nargs="?")
    args = p.parse_args(argv)
    info = import_image(mgr, args.file, args.reference, args.change, args.message)
    out("sha256:" + info.id)
    return 0


def import_image(mgr, source, name=None, changes=(), message=None, stdin=None):
    """docker import: ``source`` a tarball or directory, or "-" for standard input."""
    import sys
    config = _changes(changes)
    if source == "-":
        source = stdin or sys.stdin.buffer
        if os.isatty(source.fileno()):
            raise ManagerError("import from standard input: it is a terminal (redirect a "
                               "tarball into it, or give a file)")
    else:
        source = os.path.abspath(source)
    return mgr.store.import_archive(source, name=name, config=config or None, message=message)


def _changes(items):
    """docker import/commit --change 'CMD ["sh"]' / 'ENV A=1' / 'WORKDIR /x' / 'USER u' /
    'ENTRYPOINT [...]' -> image config keys."""
    import json
    config = {}
    for item in items:
        word, _, rest = item.strip().partition(" ")
        word = word.upper()
        rest = rest.strip()
        if word in ("CMD", "ENTRYPOINT"):
            try:
                value = json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]
            except ValueError:
                raise ManagerError(f"--change {item}: a JSON list or a shell command") from None
            config["Cmd" if word == "CMD" else "Entrypoint"] = value
        elif word == "ENV":
            key, eq, value = rest.partition("=")
            if not eq:
                key, _, value = rest.partition(" ")
            config.setdefault("Env", []).append(f"{key}={value.strip()}")
        elif word == "WORKDIR":
            config["WorkingDir"] = rest
        elif word == "USER":
            config["User"] = rest
        elif word == "STOPSIGNAL":
            config["StopSignal"] = rest
        elif word == "LABEL":
            key, _, value = rest.partition("=")
            config.setdefault("Labels", {})[key] = value.strip('"')
        else:
            raise ManagerError(f"--change {item}: kago knows CMD, ENTRYPOINT, ENV, WORKDIR, "
                               f"USER, STOPSIGNAL and LABEL")
    return config


def cmd_pull(mgr, argv, parser, out):
    p = parser("pull", "Pull an image from a registry.")
    p.add_argument("--insecure", "--tls-verify=false", action="store_true",
                   dest="insecure", help="plain HTTP / unverified TLS (local registries)")
    p.add_argument("reference")
    args = p.parse_args(argv)
    from kago.storage import registry
    info = registry.pull(mgr.store, args.reference, insecure=args.insecure)
    out(f"Digest: sha256:{info.id}")
    out(f"Status: downloaded image for {args.reference}")
    return 0


def cmd_push(mgr, argv, parser, out):
    p = parser("push", "Push an image to a registry.")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("image")
    p.add_argument("destination", nargs="?")
    args = p.parse_args(argv)
    from kago.storage import registry
    digest = registry.push(_store_of(mgr, args.image), args.image, args.destination or args.image,
                           insecure=args.insecure)
    out(f"{args.destination or args.image}: digest: {digest}")
    return 0


def cmd_tag(mgr, argv, parser, out):
    p = parser("tag", "Give an image another name.")
    p.add_argument("source")
    p.add_argument("target")
    args = p.parse_args(argv)
    _store_of(mgr, args.source).tag(args.source, args.target)
    return 0


def cmd_rmi(mgr, argv, parser, out):
    p = parser("rmi", "Remove images.")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("images", nargs="+")
    args = p.parse_args(argv)
    for ref in args.images:
        for what in _store_of(mgr, ref).remove_image(ref, force=args.force):
            kind, _, value = what.partition(" ")
            out(f"Untagged: {value}" if kind == "name" else f"Deleted: {value}")
    return 0


def cmd_save(mgr, argv, parser, out):
    p = parser("save", "Write an image as a docker-loadable archive (or an OCI layout).")
    p.add_argument("-o", "--output")
    p.add_argument("--format", choices=("docker-archive", "oci"), default="docker-archive")
    p.add_argument("image")
    args = p.parse_args(argv)
    save(mgr, args.image, args.output, args.format)
    return 0


def save(mgr, ref, output=None, fmt="docker-archive", stdout=None):
    """docker save: to ``output``, or to standard output (never a terminal) without one."""
    import sys
    store = _store_of(mgr, ref)
    if output is None:
        output = stdout or sys.stdout.buffer
        if os.isatty(output.fileno()):
            raise ManagerError("cowardly refusing to save to a terminal. Use the -o flag or "
                               "redirect")
    if fmt == "oci":
        store.export_oci(ref, output)
    else:
        store.export_docker_archive(ref, output)
    if hasattr(output, "flush"):
        output.flush()


def cmd_load(mgr, argv, parser, out):
    p = parser("load", "Load images from a docker archive or an OCI layout.")
    p.add_argument("-i", "--input")
    args = p.parse_args(argv)
    for line in load(mgr, args.input):
        out(line)
    return 0


def load(mgr, source=None, stdin=None):
    """docker load: from ``source`` or, without one, standard input. Returns docker's lines."""
    import sys
    if source is None:
        source = stdin or sys.stdin.buffer
        if os.isatty(source.fileno()):
            raise ManagerError("requested load from stdin, but stdin is empty")
    else:
        source = os.path.abspath(source)
    lines = []
    for info in mgr.store.load(source):
        if info.names:
            lines += [f"Loaded image: {name}" for name in info.names]
        else:
            lines.append(f"Loaded image ID: sha256:{info.id}")
    return lines


def cmd_commit(mgr, argv, parser, out):
    p = parser("commit", "Make an image from a container's changes.")
    p.add_argument("-m", "--message")
    p.add_argument("-a", "--author")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("container")
    p.add_argument("reference", nargs="?")
    args = p.parse_args(argv)
    record = mgr.resolve(args.container)
    info = commit(mgr, record, args.reference, args.message, args.author,
                  _changes(args.change) or None)
    out("sha256:" + info.id)
    return 0


def commit(mgr, record, name, message=None, author=None, config=None):
    if (record.get("rootfs") or {}).get("kind") != "image":
        # a directory rootfs has no base image to diff against: import it whole
        return mgr.store.import_archive(record["rootfs"]["path"], name=name, message=message,
                                        author=author, config=config)
    return mgr.store.commit(record["id"], name, message=message, author=author, config=config)


def cmd_export(mgr, argv, parser, out):
    p = parser("export", "Write a container's filesystem as a tar archive.")
    p.add_argument("-o", "--output")
    p.add_argument("container")
    args = p.parse_args(argv)
    record = mgr.resolve(args.container)
    import subprocess
    import sys
    target = args.output or "-"
    if target == "-" and sys.stdout.isatty():
        raise ManagerError("refusing to write a tar archive to a terminal: use -o FILE or "
                           "redirect stdout")
    # an ended container's rootfs was released: mounted for the export, unmounted after
    with mgr.rootfs_mounted(record) as rootfs:
        code = subprocess.call(["tar", "--numeric-owner", "-C", rootfs, "-cf", target, "."])
    if code:
        raise ManagerError(f"export {record['name']}: tar exited {code}")
    return 0


def inspect(mgr, ref):
    """docker image inspect's document for ``ref``."""
    info = _store_of(mgr, ref).image(ref)
    return {"Id": "sha256:" + info.id, "RepoTags": info.names, "Created": info.created,
            "Size": info.size, "Author": info.author or "", "Config": info.config,
            "Architecture": info.architecture, "Os": info.os,
            "RootFS": {"Type": "layers", "Layers": info.layers}}
