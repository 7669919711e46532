"""kago.network as an OCI hook program (kago.network.hook does the work)::

    "hooks": {
      "createRuntime": [{"path": "/path/to/.venv/bin/python",
                         "args": ["python", "-m", "kago.cli.nethook", "attach"]}],
      "poststop":      [{"path": "/path/to/.venv/bin/python",
                         "args": ["python", "-m", "kago.cli.nethook", "detach"]}]
    }

The runtime passes the container's state JSON on stdin; its annotations choose what the
container gets (kago.network.hook lists them). Options before the verb pick the Networks
settings (--state-dir, --nft-table, --netns-prefix, --veth-prefix, --default-network,
--default-bridge, --default-subnet, --no-outbound, --no-dns, --dns-upstream
ADDRESS[:PORT],...). A failure prints one line on stderr and
exits 1, which fails the container's creation.
"""

import argparse
import json
import sys

PROG = "kago.cli.nethook"


def _options(argv):
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}")
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


def main(argv=None, stdin=None):
    from kago.errors import KagoError
    from kago.network import hook
    opts = _options(sys.argv[1:] if argv is None else argv)
    try:
        state = json.load(stdin or sys.stdin)
        hook.run(opts.verb, state, state_dir=opts.state_dir, nft_table=opts.nft_table,
                 netns_prefix=opts.netns_prefix, veth_prefix=opts.veth_prefix,
                 default_network=opts.default_network, default_bridge=opts.default_bridge,
                 default_subnet=opts.default_subnet, outbound=not opts.no_outbound,
                 dns=not opts.no_dns, dns_upstream=(None if opts.dns_upstream is None
                                                    else hook.split_list(opts.dns_upstream)))
    except (KagoError, ValueError, KeyError, OSError) as err:
        what = f"missing {err}" if isinstance(err, KeyError) else str(err)
        print(f"{PROG} {opts.verb}: {what}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
