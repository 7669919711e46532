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

    from kago.storage.store import DEFAULT_PATH
    config = apply_changes({"Env": [DEFAULT_PATH]}, changes) if changes else None
    if source == "-":
        source = stdin or sys.stdin.buffer
        if os.isatty(source.fileno()):
            raise ManagerError("import from standard input: it is a terminal (redirect a "
                               "tarball into it, or give a file)")
    else:
        source = os.path.abspath(source)
    return mgr.store.import_archive(source, name=name, config=config, message=message)


CHANGES = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER",
           "VOLUME", "WORKDIR")


def apply_changes(base, items):
    """docker import/commit --change: Dockerfile instructions applied to the image config
    ``base`` (its "config" object), as docker does: ENV, LABEL, EXPOSE and VOLUME add to what
    the base has, CMD/ENTRYPOINT/USER/WORKDIR/STOPSIGNAL replace it. Returns a new dict."""
    import copy
    config = copy.deepcopy(dict(base or {}))
    for item in items:
        word, _, rest = item.strip().partition(" ")
        word, rest = word.upper(), rest.strip()
        if word not in CHANGES:
            raise ManagerError(f"--change {item}: kago knows {', '.join(CHANGES)}")
        if not rest:
            raise ManagerError(f"--change {item}: {word} needs a value")
        if word in ("CMD", "ENTRYPOINT"):
            config["Cmd" if word == "CMD" else "Entrypoint"] = _exec_form(item, rest)
        elif word == "ENV":
            env = [e for e in config.get("Env") or () if isinstance(e, str)]
            for key, value in _pairs(item, rest):
                env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            config["Env"] = env
        elif word == "LABEL":
            labels = dict(config.get("Labels") or {})
            labels.update(_pairs(item, rest))
            config["Labels"] = labels
        elif word == "EXPOSE":
            ports = dict(config.get("ExposedPorts") or {})
            for port in _words(item, rest):
                ports.update({p: {} for p in _ports(item, port)})
            config["ExposedPorts"] = ports
        elif word == "VOLUME":
            paths = _exec_form(item, rest) if rest.startswith("[") else _words(item, rest)
            volumes = dict(config.get("Volumes") or {})
            volumes.update({path: {} for path in paths})
            config["Volumes"] = volumes
        elif word == "ONBUILD":
            config["OnBuild"] = list(config.get("OnBuild") or ()) + [rest]
        else:
            config[{"USER": "User", "WORKDIR": "WorkingDir",
                    "STOPSIGNAL": "StopSignal"}[word]] = rest
    return config


def _exec_form(item, rest):
    """A JSON list of strings, or a shell command (run by /bin/sh -c)."""
    import json
    if not rest.startswith("["):
        return ["/bin/sh", "-c", rest]
    try:
        value = json.loads(rest)
    except ValueError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManagerError(f"--change {item}: a JSON list of strings or a shell command")
    return value


def _words(item, rest):
    import shlex
    try:
        return shlex.split(rest)
    except ValueError as e:
        raise ManagerError(f"--change {item}: {str(e).lower()}") from None


def _pairs(item, rest):
    """KEY=VALUE pairs (quoted values kept whole), or the old form "KEY VALUE..."."""
    words = _words(item, rest)
    if "=" not in words[0]:
        return [(words[0], rest.partition(" ")[2].strip())]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise ManagerError(f"--change {item}: {word!r} is not KEY=VALUE")
        out.append((key, value))
    return out


def _ports(item, text):
    """EXPOSE's "80", "80/udp", "8000-8002/tcp" -> ["80/tcp", ...]."""
    spec, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    low, _, high = spec.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        first = last = 0
    if proto not in ("tcp", "udp", "sctp") or not 0 < first <= last <= 65535:
        raise ManagerError(f"--change {item}: {text!r} is not a port (PORT[-PORT][/tcp|udp])")
    return [f"{port}/{proto}" for port in range(first, last + 1)]


def cmd_pull(mgr, argv, parser, out):
    p = parser("pull", "Pull an image from a registry.")
    p.add_argument("--insecure", "--tls-verify=false", action="store_true",
                   dest="insecure", help="plain HTTP / unverified TLS (local registries)")
    p.add_argument("reference")
    args = p.parse_args(argv)
    from kago.storage import registry
    info = registry.pull(mgr.store, args.reference, insecure=args.insecure or None)
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
                           insecure=args.insecure or None)
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
        for line in remove(mgr, ref, force=args.force):
            out(line)
    return 0


def remove(mgr, ref, force=False):
    """docker rmi's lines for one image: each name untagged, then the image and the layers
    that went with it (by ID; the blobs under them are not listed, as docker does not)."""
    store = _store_of(mgr, ref)
    names = store.image(ref).names
    lines = []
    for what in store.remove_image(ref, force=force):
        kind, _, value = what.partition(" ")
        if kind == "name":
            lines.append(f"Untagged: {value}")
        elif kind == "image":
            lines += [f"Untagged: {name}" for name in names]
            lines.append(f"Deleted: sha256:{value}")
        elif kind == "layer":
            lines.append(f"Deleted: {value}")
    return lines


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
        if info.given:  # the archive's names (the image may have had others already)
            lines += [f"Loaded image: {name}" for name in info.given]
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
    info = commit(mgr, record, args.reference, args.message, args.author, changes=args.change)
    out("sha256:" + info.id)
    return 0


def commit(mgr, record, name, message=None, author=None, config=None, changes=()):
    """docker commit; ``changes`` (--change instructions) apply to the container's image
    config, ``config`` (keys of it) after them."""
    if changes:
        config = dict(apply_changes(record.get("image_config") or {}, changes),
                      **(config or {}))
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


def inspect(mgr, ref, kind=None):
    """docker image inspect's document for ``ref``. ``kind`` None: ``ref`` was not a
    container either, so a missing image is docker's "no such object"."""
    from kago.storage.errors import ImageNotFound
    try:
        info = _store_of(mgr, ref).image(ref)
    except ImageNotFound:
        if kind is None:
            raise ManagerError(f"no such object: {ref}") from None
        raise
    return {"Id": "sha256:" + info.id, "RepoTags": info.names, "Created": info.created,
            "Size": info.size, "Author": info.author or "", "Config": info.config,
            "Architecture": info.architecture, "Os": info.os,
            "RootFS": {"Type": "layers", "Layers": info.layers}}
