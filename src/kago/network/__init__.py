"""Container networking: netns, veth, bridge, IPAM, published ports, /etc files.

    from kago.network import Networks, NetworkError, PortMapping, Attachment
    nets = Networks(state_dir="/var/lib/kago/network", nft_table="kago")
    att = nets.attach(cid, ports=["8080:80"], hostname="web")    # bridge on network "kago"
    ...                                                          # spec: {"type": "network",
    nets.detach(cid)                                             #  "path": att.netns_path}

Importing this package is cheap: pyroute2 (~150 ms) is imported only when a bridge, veth or
netns is configured, and the OCI runtime (kago-oci) never imports kago.network.
"""

from kago.network.attachment import Attachment
from kago.network.errors import (AddressExhausted, AddressInUse, AttachmentExists, NetworkBusy,
                                 NetworkError, NetworkExists, NetworkNotFound, ObjectExists)
from kago.network.networks import Networks
from kago.network.ports import PortMapping

__all__ = ["AddressExhausted", "AddressInUse", "Attachment", "AttachmentExists", "NetworkBusy",
           "NetworkError", "NetworkExists", "NetworkNotFound", "Networks", "ObjectExists",
           "PortMapping"]
