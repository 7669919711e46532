"""Networks as a library, thin over kago.network's Networks: list, create, remove, inspect.
``kago network`` (cli/networks.py) and ``kago.Client`` parse and print."""

import os

from kago.manager import events


def _nets(mgr, name=None):
    """The root's Networks; a root without network state has none, and none is made for
    a verb that only reads or removes (NetworkNotFound for ``name``)."""
    if os.path.isdir(mgr.paths.network()):
        return mgr.nets
    if name is not None:
        from kago.network.errors import NetworkNotFound
        raise NetworkNotFound(name)
    return None


def net_id(name):
    """docker's NETWORK ID column: a stable 12 hex digits from the name."""
    import hashlib
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def list_networks(mgr):
    """[network record dict] ({"name", "subnet", "bridge", "containers", ...})."""
    nets = _nets(mgr)
    return list(nets.list()) if nets else []


def create(mgr, name, subnet=None, gateway=None, bridge=None, ipv6_subnet=None,
           internal=False):
    """A bridge network (``internal``: no outbound NAT); returns its ID."""
    kwargs = {"gateway": gateway, "bridge": bridge, "ipv6_subnet": ipv6_subnet}
    if subnet:
        kwargs["subnet"] = subnet
    if internal:
        kwargs["outbound"] = False
    mgr.nets.create(name, **kwargs)
    events.network(mgr.paths, "create", name)
    return net_id(name)


def remove(mgr, name):
    _nets(mgr, name).remove(name)
    events.network(mgr.paths, "destroy", name)


def connect(mgr, network, container, ip=None, aliases=()):
    """``network connect``: ``container`` gets a further interface on ``network``
    (connections.py)."""
    from kago.manager import connections
    record = connections.connect(mgr, container, network, ip=ip, aliases=tuple(aliases))
    events.network(mgr.paths, "connect", network, record["id"])


def disconnect(mgr, network, container, force=False):
    from kago.manager import connections
    record = connections.disconnect(mgr, container, network, force=force)
    events.network(mgr.paths, "disconnect", network, (record or {}).get("id"))


def inspect(mgr, name):
    """The network's record with its attached containers."""
    nets = _nets(mgr, name)
    doc = dict(nets.get(name))
    doc["containers"] = [a.to_dict() for a in nets.attachments(name)]
    doc["dns"] = nets.resolvers().get(name)     # the running resolver, or None
    return doc
