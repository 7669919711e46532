"""The build cache: a step's key -> the image it made, in ROOT/build/cache/<key>.

A key is the sha256 of everything the step's result depends on: the parent image's ID (its
layer chain and config), the stage's config at that point, the instruction after
substitution (with a RUN's environment, user and working directory), and for COPY/ADD the
digest of the files copied. A key whose image was removed (``rmi``, ``system prune``) is a
miss. The images are unnamed and kept like docker's intermediate images.
"""

import hashlib
import json
import os
import uuid


def key(final=False, config_only=False, **parts):
    """The key of a step (or with ``final``, of a build's result; with ``config_only``, of a
    step that makes no layer, such as WORKDIR) from what it depends on."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    prefix = "f-" if final else "c-" if config_only else ""
    return prefix + hashlib.sha256(text.encode()).hexdigest()


class Cache:
    def __init__(self, root, store=None):
        self.dir = os.path.join(root, "build", "cache")
        self.store = store

    def get(self, k):
        """The image ID cached for ``k`` if that image is still in the store, else None."""
        try:
            with open(os.path.join(self.dir, k)) as f:
                image_id = f.read().strip()
        except FileNotFoundError:
            return None
        from kago.storage import ImageNotFound
        try:
            return self.store.image(image_id).id
        except ImageNotFound:
            return None

    def put(self, k, image_id):
        if not os.path.isdir(self.dir):
            for level in (os.path.dirname(self.dir), self.dir):
                os.makedirs(level, mode=0o700, exist_ok=True)
        tmp = os.path.join(self.dir, f".{k}.{uuid.uuid4().hex[:8]}")
        with open(tmp, "w") as f:
            f.write(image_id + "\n")
        os.rename(tmp, os.path.join(self.dir, k))

    def image_ids(self):
        """The IDs of the build's intermediate images: what the steps' keys name (a final
        image's key starts with ``f-``: once its name moved on, it shows as dangling; a
        config-only step's, ``c-``, names its parent, which it did not make)."""
        out = set()
        for entry in os.listdir(self.dir) if os.path.isdir(self.dir) else ():
            if entry.startswith(("f-", "c-", ".")):
                continue
            try:
                with open(os.path.join(self.dir, entry)) as f:
                    out.add(f.read().strip())
            except (FileNotFoundError, IsADirectoryError):
                continue
        return out
