"""kago.network as an OCI hook, for bundles run by any runtime (kago-oci, runc, crun): what the
hook program (``python -m kago.cli.nethook``, cli/nethook.py) does, as a library.

The runtime passes the container's state JSON on stdin ({"id", "pid", "annotations", ...}).
``attach`` names the netns the runtime made for ``pid`` (/run/netns/kago-<id>) and plumbs it
like ``Networks.attach`` does for the manager; ``detach`` undoes it. The spec's annotations
choose what the container gets:

    org.kago.network.mode      bridge (default) or none
    org.kago.network.name      the network (default: the default network, made on first use)
    org.kago.network.ports     published ports, comma separated: "8080:80,127.0.0.1:53:53/udp"
    org.kago.network.ip / .mac / .hostname / .aliases (comma separated)

The network's resolver names the container; the hook writes no /etc files, so the bundle's
resolv.conf decides whether the container asks it.
"""

from kago.network.networks import Networks

PREFIX = "org.kago.network."


def split_list(text):
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def attach_args(state):
    """Networks.attach keyword arguments from an OCI state document's annotations."""
    notes = state.get("annotations") or {}
    return {"mode": notes.get(PREFIX + "mode", "bridge"),
            "network": notes.get(PREFIX + "name"),
            "ports": split_list(notes.get(PREFIX + "ports")),
            "ip": notes.get(PREFIX + "ip"),
            "mac": notes.get(PREFIX + "mac"),
            "hostname": notes.get(PREFIX + "hostname"),
            "aliases": split_list(notes.get(PREFIX + "aliases"))}


def run(verb, state, **settings):
    """``attach`` or ``detach`` the container of the OCI ``state`` document; ``settings``
    are Networks' (state_dir, nft_table, netns_prefix, ...). Raises KagoError, ValueError,
    KeyError (a field missing from ``state``) or OSError."""
    state_dir = settings.pop("state_dir")
    nets = Networks(state_dir, **settings)
    if verb == "attach":
        nets.attach(state["id"], pid=state["pid"], **attach_args(state))
    else:
        nets.detach(state["id"])
