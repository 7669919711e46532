"""Errors of kago.network: one line each, naming the value at fault and what to do next."""

from kago.errors import KagoError


class NetworkError(KagoError):
    """Anything kago.network refuses or cannot do. Subclasses let callers branch on the kind."""


class NetworkNotFound(NetworkError):
    def __init__(self, name):
        self.name = name
        super().__init__(f"network {name!r} does not exist: create it first (kago network create)")


class NetworkExists(NetworkError):
    def __init__(self, name):
        self.name = name
        super().__init__(f"network {name!r} already exists")


class NetworkBusy(NetworkError):
    def __init__(self, name, cids):
        self.name = name
        self.cids = list(cids)
        shown = ", ".join(self.cids[:5]) + (", ..." if len(self.cids) > 5 else "")
        super().__init__(f"network {name!r} has {len(self.cids)} container(s) attached "
                         f"({shown}): remove them first")


class AddressInUse(NetworkError):
    """A static IP or MAC, or a published host port, already belongs to someone else."""


class AddressExhausted(NetworkError):
    def __init__(self, name, subnet):
        self.name = name
        super().__init__(f"network {name!r}: no free address left in {subnet}")


class AttachmentExists(NetworkError):
    def __init__(self, cid):
        self.cid = cid
        super().__init__(f"container {cid} is already attached to a network: detach it first")


class ObjectExists(NetworkError):
    """A host object (netns, interface) with the name kago wanted is already there and is not
    kago's to remove: the caller undoes its own steps but must leave this one alone."""
