"""Images as a library, thin over kago.storage: list, import, pull, push, tag, remove, save,
load, commit, export, and ``inspect`` of an image. ``kago``'s verbs (cli/images.py) and
``kago.Client`` parse and print; these take typed arguments and return values. Store errors
are KagoErrors already, so the CLI reports them with exit status 125.
"""

import os
import time

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


def import_image(mgr, path, name=None, config=None, message=None):
    """A root filesystem (tarball or directory) as an image; its ImageInfo."""
    return mgr.store.import_archive(os.path.abspath(path), name=name, config=config or None,
                                    message=message)


def parse_changes(items):
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


def pull(mgr, reference, insecure=False):
    from kago.storage import registry
    return registry.pull(mgr.store, reference, insecure=insecure)


def push(mgr, image, destination=None, insecure=False):
    """Push ``image`` (as ``destination``); returns the manifest's digest."""
    from kago.storage import registry
    return registry.push(store_of(mgr, image), image, destination or image, insecure=insecure)


def tag(mgr, source, target):
    store_of(mgr, source).tag(source, target)


def remove(mgr, ref, force=False):
    """Remove an image (or one of its names); ["name N" or "id I", ...] of what went."""
    return store_of(mgr, ref).remove_image(ref, force=force)


def save(mgr, image, output, format="docker-archive"):
    """Write ``image`` as a docker-loadable archive or (``format="oci"``) an OCI layout."""
    store = store_of(mgr, image)
    if format == "oci":
        store.export_oci(image, output)
    else:
        store.export_docker_archive(image, output)


def load(mgr, path):
    """Images from a docker archive or an OCI layout; [ImageInfo]."""
    path = os.path.abspath(path)
    is_oci = os.path.isdir(path) and os.path.exists(os.path.join(path, "oci-layout"))
    infos = mgr.store.import_oci(path) if is_oci else mgr.store.import_docker_archive(path)
    return infos if isinstance(infos, list) else [infos]


def commit(mgr, record, name, message=None, author=None, config=None):
    if (record.get("rootfs") or {}).get("kind") != "image":
        # a directory rootfs has no base image to diff against: import it whole
        return mgr.store.import_archive(record["rootfs"]["path"], name=name, message=message,
                                        author=author, config=config)
    return mgr.store.commit(record["id"], name, message=message, author=author, config=config)


def export(mgr, record, target):
    """A container's filesystem as a tar archive at ``target`` ("-": standard output)."""
    import subprocess
    # an ended container's rootfs was released: mounted for the export, unmounted after
    with mgr.rootfs_mounted(record) as rootfs:
        code = subprocess.call(["tar", "--numeric-owner", "-C", rootfs, "-cf", target, "."])
    if code:
        raise ManagerError(f"export {record['name']}: tar exited {code}")


def inspect(mgr, ref):
    """docker image inspect's document for ``ref``."""
    info = store_of(mgr, ref).image(ref)
    return {"Id": "sha256:" + info.id, "RepoTags": info.names, "Created": info.created,
            "Size": info.size, "Author": info.author or "", "Config": info.config,
            "Architecture": info.architecture, "Os": info.os,
            "RootFS": {"Type": "layers", "Layers": info.layers}}
