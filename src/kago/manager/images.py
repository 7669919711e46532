"""Images as a library, thin over kago.storage: list, import, pull, push, tag, remove, save,
load, commit, export, and ``inspect`` of an image. ``kago``'s verbs (cli/images.py) and
``kago.Client`` parse and print; these take typed arguments and return values. Store errors
are KagoErrors already, so the CLI reports them with exit status 125.
"""

import os
import time

from kago.manager import events
from kago.manager.errors import ManagerError


def split_name(name):
    """``repo:tag`` -> (repo, tag); a name without a tag is ``latest``."""
    repo, _, tag = name.rpartition(":")
    if "/" in tag or not repo:
        return name, "latest"
    return repo, tag


def created_time(info):
    """An image's creation time (a unix time; now if it has none)."""
    from kago.manager.logs import parse_timestamp
    try:
        return parse_timestamp(info.created.replace("+00:00", "Z"))
    except (ValueError, AttributeError):
        return time.time()


def store_of(mgr, ref):
    """The root's image store, for a verb that needs ``ref`` in it: a root without a store
    has no such image, and none is made to say so."""
    if not os.path.isdir(mgr.paths.storage()):
        from kago.storage.errors import ImageNotFound
        raise ImageNotFound(ref)
    return mgr.store


def images(mgr, all=False):
    """The root's images (kago.storage ImageInfo), oldest first; none without a store. The
    unnamed images ``kago build`` keeps as its cache are left out unless ``all``."""
    found = mgr.store.images() if os.path.isdir(mgr.paths.storage()) else []
    if all:
        return found
    from kago.manager.build.cache import Cache
    hidden = Cache(mgr.paths.root).image_ids()
    return [i for i in found if i.names or i.id not in hidden]


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
    info = mgr.store.import_archive(source, name=name, config=config, message=message)
    events.image(mgr.paths, "import", "sha256:" + info.id, name)
    return info


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


def pull(mgr, reference, insecure=None):
    """``insecure`` None: plain HTTP allowed for loopback registries only, as docker."""
    from kago.storage import registry
    info = registry.pull(mgr.store, reference, insecure=insecure)
    events.image(mgr.paths, "pull", reference, reference)
    return info


def push(mgr, image, destination=None, insecure=None):
    """Push ``image`` (as ``destination``); returns the manifest's digest."""
    from kago.storage import registry
    digest = registry.push(store_of(mgr, image), image, destination or image, insecure=insecure)
    events.image(mgr.paths, "push", destination or image, destination or image)
    return digest


def tag(mgr, source, target):
    store = store_of(mgr, source)
    store.tag(source, target)
    events.image(mgr.paths, "tag", "sha256:" + store.image(target).id, target)


def remove(mgr, ref, force=False):
    """docker rmi's lines for one image: each name untagged, then the image and the layers
    that went with it (by ID; the blobs under them are not listed, as docker does not)."""
    store = store_of(mgr, ref)
    img = store.image(ref)
    names = img.names
    lines = []
    for what in store.remove_image(ref, force=force):
        kind, _, value = what.partition(" ")
        if kind == "name":
            lines.append(f"Untagged: {value}")
            events.image(mgr.paths, "untag", "sha256:" + img.id, value)
        elif kind == "image":
            lines += [f"Untagged: {name}" for name in names]
            lines.append(f"Deleted: sha256:{value}")
            for name in names:
                events.image(mgr.paths, "untag", "sha256:" + value, name)
            events.image(mgr.paths, "delete", "sha256:" + value, ref)
        elif kind == "layer":
            lines.append(f"Deleted: {value}")
    return lines


def pruned_lines(removed):
    """docker's ``Deleted Images:`` lines for what a prune removed (the store's "image ID",
    "layer sha256:..." and "name N"; its blobs and scratch are not listed, as docker does
    not)."""
    lines = []
    for what in removed:
        kind, _, value = what.partition(" ")
        if kind == "image":
            lines.append(f"deleted: sha256:{value}")
        elif kind == "layer":
            lines.append(f"deleted: {value}")
        elif kind == "name":
            lines.append(f"untagged: {value}")
    return list(dict.fromkeys(lines))


def save(mgr, ref, output=None, format="docker-archive", stdout=None):
    """docker save: ``ref`` as a docker-loadable archive or (``format="oci"``) an OCI layout,
    to ``output``, or to standard output (never a terminal) without one."""
    import sys
    store = store_of(mgr, ref)
    if output is None:
        output = stdout or sys.stdout.buffer
        if os.isatty(output.fileno()):
            raise ManagerError("cowardly refusing to save to a terminal. Use the -o flag or "
                               "redirect")
    if format == "oci":
        store.export_oci(ref, output)
    else:
        store.export_docker_archive(ref, output)
    if hasattr(output, "flush"):
        output.flush()
    events.image(mgr.paths, "save", "sha256:" + store.image(ref).id, ref)


def load(mgr, source=None, stdin=None):
    """docker load: images from a docker archive or an OCI layout at ``source`` or, without
    one, on standard input; [ImageInfo] (``given``: the names the archive carried)."""
    import sys
    if source is None:
        source = stdin or sys.stdin.buffer
        if os.isatty(source.fileno()):
            raise ManagerError("requested load from stdin, but stdin is empty")
    else:
        source = os.path.abspath(source)
    infos = list(mgr.store.load(source))
    for info in infos:
        events.image(mgr.paths, "load", "sha256:" + info.id, ",".join(info.given or ()))
    return infos


def load_lines(infos):
    """docker load's lines for what ``load`` returned."""
    lines = []
    for info in infos:
        if info.given:  # the archive's names (the image may have had others already)
            lines += [f"Loaded image: {name}" for name in info.given]
        else:
            lines.append(f"Loaded image ID: sha256:{info.id}")
    return lines


def commit(mgr, record, name, message=None, author=None, config=None, changes=()):
    """docker commit; ``changes`` (--change instructions) apply to the container's image
    config, ``config`` (keys of it) after them."""
    if changes:
        config = dict(apply_changes(record.get("image_config") or {}, changes),
                      **(config or {}))
    if (record.get("rootfs") or {}).get("kind") != "image":
        # a directory rootfs has no base image to diff against: import it whole
        info = mgr.store.import_archive(record["rootfs"]["path"], name=name, message=message,
                                        author=author, config=config)
    else:
        info = mgr.store.commit(record["id"], name, message=message, author=author,
                                config=config)
    events.container(mgr.paths, "commit", record, comment=message, imageID="sha256:" + info.id,
                     imageRef=name)
    return info


def export(mgr, record, target):
    """A container's filesystem as a tar archive at ``target`` ("-": standard output)."""
    import subprocess
    # an ended container's rootfs was released: mounted for the export, unmounted after
    with mgr.rootfs_mounted(record) as rootfs:
        code = subprocess.call(["tar", "--numeric-owner", "-C", rootfs, "-cf", target, "."])
    if code:
        raise ManagerError(f"export {record['name']}: tar exited {code}")


def inspect(mgr, ref, kind=None):
    """docker image inspect's document for ``ref``. ``kind`` None: ``ref`` was not a
    container either, so a missing image is docker's "no such object"."""
    from kago.storage.errors import ImageNotFound
    try:
        info = store_of(mgr, ref).image(ref)
    except ImageNotFound:
        if kind is None:
            raise ManagerError(f"no such object: {ref}") from None
        raise
    return {"Id": "sha256:" + info.id, "RepoTags": info.names, "Created": info.created,
            "Size": info.size, "Author": info.author or "", "Config": info.config,
            "Architecture": info.architecture, "Os": info.os,
            "RootFS": {"Type": "layers", "Layers": info.layers}}
