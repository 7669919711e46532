"""kago.network as an OCI hook, for bundles run by any runtime (kago-oci, runc, crun)::

    "hooks": {
      "createRuntime": [{"path": "/path/to/.venv/bin/python",
                         "args": ["python", "-m", "kago.network.hook", "attach"]}],
      "poststop":      [{"path": "/path/to/.venv/bin/python",
                         "args": ["python", "-m", "kago.network.hook", "detach"]}]
    }

The runtime passes the container's state JSON on stdin ({"id", "pid", "annotations", ...}).
``attach`` names the netns the runtime made for ``pid`` (/run/netns/kago-<id>) and plumbs it
like ``Networks.attach`` does for the manager; ``detach`` undoes it. The spec's annotations
choose what the container gets:

    org.kago.network.mode      bridge (default) or none
    org.kago.network.name      the network (default: the default network, made on first use)
    org.kago.network.ports     published ports, comma separated: "8080:80,127.0.0.1:53:53/udp"
    org.kago.network.ip / .mac / .hostname / .aliases (comma separated)

Options before the verb pick the Networks settings (--state-dir, --nft-table, --netns-prefix,
--veth-prefix, --default-network, --default-bridge, --default-subnet, --no-outbound, --no-dns,
--dns-upstream ADDRESS[:PORT],...). The network's resolver names the container; the hook
writes no /etc files, so the bundle's resolv.conf decides whether the container asks it.
A failure prints one line on stderr and exits 1, which fails the container's creation.
"""

import argparse
import json
import sys

from kago.errors import KagoError
from kago.network.networks import Networks

PREFIX = "org.kago.network."


def _options(argv):
    parser = argparse.ArgumentParser(prog="python -m kago.network.hook")
    parser.add_argument("--state-dir", default="/var/lib/kago/network")
    parser.add_argument("--nft-table", default="kago")
    parser.add_argument("--netns-prefix", default="kago-")
    parser.add_argument("--veth-prefix", default="kv")
    parser.add_argument("--default-network", default="kago")
    parser.add_argument("--default-bridge", default="kago0")
    parser.add_argument("--default-subnet", default="10.89.0.0/24")
    parser.add_argument("--no-outbound", action="store_true")
    parser.add_argument("--no-dns", action="store_true")
    parser.add_argument("--dns-upstream", help="comma separated; default: the host's")
    parser.add_argument("verb", choices=("attach", "detach"))
    return parser.parse_args(argv)


def _list(text):
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def attach_args(state):
    """Networks.attach keyword arguments from an OCI state document's annotations."""
    notes = state.get("annotations") or {}
    return {"mode": notes.get(PREFIX + "mode", "bridge"),
            "network": notes.get(PREFIX + "name"),
            "ports": _list(notes.get(PREFIX + "ports")),
            "ip": notes.get(PREFIX + "ip"),
            "mac": notes.get(PREFIX + "mac"),
            "hostname": notes.get(PREFIX + "hostname"),
            "aliases": _list(notes.get(PREFIX + "aliases"))}


def main(argv=None, stdin=None):
    opts = _options(sys.argv[1:] if argv is None else argv)
    try:
        state = json.load(stdin or sys.stdin)
        nets = Networks(opts.state_dir, nft_table=opts.nft_table,
                        netns_prefix=opts.netns_prefix, veth_prefix=opts.veth_prefix,
                        default_network=opts.default_network,
                        default_bridge=opts.default_bridge,
                        default_subnet=opts.default_subnet, outbound=not opts.no_outbound,
                        dns=not opts.no_dns,
                        dns_upstream=(None if opts.dns_upstream is None
                                      else _list(opts.dns_upstream)))
        if opts.verb == "attach":
            nets.attach(state["id"], pid=state["pid"], **attach_args(state))
        else:
            nets.detach(state["id"])
    except (KagoError, ValueError, KeyError, OSError) as err:
        what = f"missing {err}" if isinstance(err, KeyError) else str(err)
        print(f"kago.network.hook {opts.verb}: {what}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
