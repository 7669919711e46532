"""``python -m kago.cli.resolver --table T --proc P [--ready-fd N] [--foreground]``: a kago
network's DNS resolver, as ``kago.network.dns.control`` starts it (kago.network.dns.daemon does
the work). Its imports stay few: the resolver runs as long as its network has containers.
"""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kago.cli.resolver")
    parser.add_argument("--table", required=True)
    parser.add_argument("--proc", required=True)
    parser.add_argument("--ready-fd", type=int)
    parser.add_argument("--foreground", action="store_true")
    opts = parser.parse_args(argv)
    from kago.network.dns import daemon
    return daemon.run(opts.table, opts.proc, opts.ready_fd, opts.foreground)


if __name__ == "__main__":
    sys.exit(main())
