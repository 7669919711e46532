"""``client.images``: the root's image store (kago.manager.images)."""


class Images:
    """``client.images``: the root's image store."""

    def __init__(self, manager):
        self.manager = manager

    def list(self, all=False):
        """ImageInfo values (``id``, ``names``, ``created``, ``size``, ``config``...),
        oldest first; ``all`` adds the unnamed images ``kago build`` keeps as its cache."""
        from kago.manager import images
        return images.images(self.manager, all=all)

    def get(self, ref, kind="image"):
        """docker image inspect's document. ``kind`` None: ``ref`` is not a container
        either, so a missing image is docker's "no such object"."""
        from kago.manager import images
        return images.inspect(self.manager, ref, kind)

    def import_(self, path, name=None, changes=(), message=None, stdin=None):
        """A root filesystem (tarball or directory; "-": ``stdin``, default standard input)
        as an image named ``name``. The same content gives the same image ID."""
        from kago.manager import images
        return images.import_image(self.manager, path, name, changes, message, stdin=stdin)

    def pull(self, reference, insecure=None):
        """``insecure`` None: plain HTTP only for loopback registries, as docker."""
        from kago.manager import images
        return images.pull(self.manager, reference, insecure=insecure)

    def push(self, image, destination=None, insecure=None):
        """Push to a registry; the manifest's digest."""
        from kago.manager import images
        return images.push(self.manager, image, destination, insecure=insecure)

    def tag(self, source, target):
        from kago.manager import images
        images.tag(self.manager, source, target)

    def remove(self, ref, force=False):
        """docker rmi's lines: "Untagged: NAME", "Deleted: sha256:ID", ..."""
        from kago.manager import images
        return images.remove(self.manager, ref, force=force)

    def save(self, image, output=None, format="docker-archive", stdout=None):
        """To ``output`` (a path), else to ``stdout`` (a binary file; default standard
        output, never a terminal)."""
        from kago.manager import images
        images.save(self.manager, image, output, format=format, stdout=stdout)

    def load(self, path=None, stdin=None):
        """[ImageInfo] from a docker archive or OCI layout at ``path``, else ``stdin``."""
        from kago.manager import images
        return images.load(self.manager, path, stdin=stdin)

    def history(self, ref):
        """docker history's rows, newest first: {"id", "created", "created_by", "size",
        "comment"} ("id" "<missing>" below the image itself)."""
        from kago.manager import usage
        return usage.history(self.manager, ref)

    def prune(self, all=False):
        """docker image prune: dangling images (``all``: every one no container uses)
        removed; the lines of what went ("deleted: ...")."""
        from kago.manager import orphans
        out = {"containers": [], "orphans": [], "images": [], "errors": []}
        orphans._images(self.manager, all, out)
        return out
