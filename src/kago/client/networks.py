"""``client.networks``: the root's bridge networks (kago.manager.networks)."""


class Networks:
    """``client.networks``: the root's bridge networks."""

    def __init__(self, manager):
        self.manager = manager

    def list(self):
        from kago.manager import networks
        return networks.list_networks(self.manager)

    def create(self, name, subnet=None, gateway=None, bridge=None, ipv6_subnet=None,
               internal=False):
        """A bridge network; its ID."""
        from kago.manager import networks
        return networks.create(self.manager, name, subnet=subnet, gateway=gateway,
                               bridge=bridge, ipv6_subnet=ipv6_subnet, internal=internal)

    def remove(self, name):
        from kago.manager import networks
        networks.remove(self.manager, name)

    def connect(self, network, container, ip=None, aliases=()):
        """``container`` (created, running or stopped) on ``network`` too: eth1, eth2...,
        kept across stop and start."""
        from kago.manager import networks
        networks.connect(self.manager, network, container, ip=ip, aliases=aliases)

    def disconnect(self, network, container, force=False):
        """``container`` off a network it was connected to."""
        from kago.manager import networks
        networks.disconnect(self.manager, network, container, force=force)

    def get(self, name):
        """The network's record, with its attached containers."""
        from kago.manager import networks
        return networks.inspect(self.manager, name)

    inspect = get
