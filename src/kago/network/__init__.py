"""Container networking: netns, veth, bridge, IPAM, published ports, /etc files.

    from kago.network import Networks, NetworkError, PortMapping, Attachment
    nets = Networks(state_dir="/var/lib/kago/network", nft_table="kago")
    att = nets.attach(cid, ports=["8080:80"], hostname="web")    # bridge on network "kago"
    ...                                                          # spec: {"type": "network",
    nets.detach(cid)                                             #  "path": att.netns_path}

Importing this package is cheap: pyroute2 (~150 ms) is imported only when a bridge, veth or
netns is configured, and the OCI runtime (kago-oci) never imports kago.network. The names
below are loaded on first use (PEP 562), so a process that needs one submodule only (the DNS
resolver, ``python -m kago.cli.resolver``) does not load the rest.
"""

import importlib

_WHERE = {"Attachment": "attachment", "Networks": "networks", "PortMapping": "ports",
          **{name: "errors" for name in (
              "AddressExhausted", "AddressInUse", "AttachmentExists", "NetworkBusy",
              "NetworkError", "NetworkExists", "NetworkNotFound", "ObjectExists")}}

__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'kago.network' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kago.network.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
