"""``client.volumes``: the root's named volumes (kago.manager.volumes)."""


class Volumes:
    """``client.volumes``: the root's named volumes (docker's local driver), as
    ``kago.manager.volumes.Volume`` values: ``name``, ``mountpoint``, ``created``,
    ``labels``, ``users`` (IDs of the containers whose configuration names it)."""

    def __init__(self, manager):
        self.manager = manager

    def create(self, name=None, labels=None):
        """A new volume (a random name without ``name``); an existing one as it is."""
        from kago.manager import volumes
        return volumes.create(self.manager, name, labels=labels)

    def list(self, filters=None):
        """Every volume, by name; ``filters`` docker's ["dangling=true", "label=K=V",
        "name=PART", "driver=local"]."""
        from kago.manager import volumes
        return volumes.list_volumes(self.manager, filters or ())

    def get(self, name):
        """The volume ``name`` (NoSuchVolume if none); ``.inspect()`` is docker's document."""
        from kago.manager import volumes
        return volumes.get(self.manager, name)

    def remove(self, name, force=False):
        """Refused (VolumeInUse) while a container's configuration names it, even with
        ``force``, as docker; ``force`` makes a missing volume no error."""
        from kago.manager import volumes
        volumes.remove(self.manager, name, force=force)

    def prune(self, all=False, filters=None):  # noqa: A002 (docker's flag)
        """Remove unused anonymous volumes (``all``: every unused one) matching ``filters``
        (["label=K=V", "label!=K"]): {"volumes": [names], "reclaimed": bytes}."""
        from kago.manager import volumes
        names, size = volumes.prune(self.manager, all=all, filters=filters or ())
        return {"volumes": names, "reclaimed": size}
