"""``kago network ls|create|rm|inspect|connect|disconnect``: docker's flags and output over
the client's networks (kago.manager.networks does the work)."""

import json

from kago.cli.common import client, out, parser


def cmd_network(glob, argv):
    verbs = {"ls": _ls, "list": _ls, "create": _create, "rm": _rm, "remove": _rm,
             "inspect": _inspect, "connect": _connect, "disconnect": _disconnect}
    if argv and argv[0] in ("-h", "--help", "help"):
        out(_HELP)
        return 0
    if not argv or argv[0] not in verbs:
        from kago.manager.errors import BadValue
        raise BadValue("network", "use network ls, create, rm, inspect, connect or "
                       "disconnect")
    return verbs[argv[0]](glob, argv[1:])


_HELP = """usage: kago network COMMAND

  ls          list networks
  create      create a bridge network
  rm          remove networks
  inspect     show networks as JSON
  connect     connect a container to a further network
  disconnect  disconnect a container from a further network

Run 'kago network COMMAND --help' for a command's flags."""


def _ls(glob, argv):
    p = parser("network ls", "List networks.")
    p.add_argument("-q", "--quiet", action="store_true", help="only the network names")
    p.add_argument("--format", help="a Go template per row, or table, or json")
    args = p.parse_args(argv)
    from kago.manager import format as F
    from kago.manager.networks import net_id
    rows = [{"ID": net_id(n["name"]), "Name": n["name"], "Driver": "bridge",
             "Subnet": n.get("subnet", ""), "Bridge": n.get("bridge", ""),
             "Containers": str(len(n.get("containers") or ()))}
            for n in client(glob).networks.list()]
    if args.quiet:
        for r in rows:
            out(r["Name"])
        return 0
    for line in F.formatted(args.format or "table", rows,
                            ("ID", "Name", "Driver", "Subnet", "Bridge", "Containers"),
                            {"ID": "NETWORK ID"}):
        out(line)
    return 0


def _create(glob, argv):
    p = parser("network create", "Create a bridge network.")
    p.add_argument("--subnet", default=None,
                   help="the IPv4 subnet in CIDR form (default: a free one)")
    p.add_argument("--gateway", help="the bridge's address in the subnet (default: its first)")
    p.add_argument("--bridge", "-o", dest="bridge", help="the bridge interface's name")
    p.add_argument("--ipv6-subnet", help="an IPv6 subnet as well")
    p.add_argument("--internal", action="store_true", help="no outbound NAT")
    p.add_argument("name", help="the network's name")
    args = p.parse_args(argv)
    out(client(glob).networks.create(args.name, subnet=args.subnet, gateway=args.gateway,
                                     bridge=args.bridge, ipv6_subnet=args.ipv6_subnet,
                                     internal=args.internal))
    return 0


def _rm(glob, argv):
    p = parser("network rm", "Remove networks.")
    p.add_argument("names", nargs="+", help="the networks' names")
    args = p.parse_args(argv)
    networks = client(glob).networks
    for name in args.names:
        networks.remove(name)
        out(name)
    return 0


def _inspect(glob, argv):
    p = parser("network inspect", "Show networks as JSON.")
    p.add_argument("names", nargs="+", help="the networks' names")
    args = p.parse_args(argv)
    networks = client(glob).networks
    out(json.dumps([networks.inspect(name) for name in args.names], indent=4))
    return 0


def _connect(glob, argv):
    p = parser("network connect", "Connect a container to a network.")
    p.add_argument("--ip", help="IPv4 address (e.g. 172.30.100.104)")
    p.add_argument("--alias", action="append", default=[], help="a name in that network")
    p.add_argument("network", help="the network's name")
    p.add_argument("container", help="the container's name or ID")
    args = p.parse_args(argv)
    client(glob).networks.connect(args.network, args.container, ip=args.ip,
                                  aliases=args.alias)
    return 0


def _disconnect(glob, argv):
    p = parser("network disconnect", "Disconnect a container from a network.")
    p.add_argument("-f", "--force", action="store_true",
                   help="no error when it is not connected")
    p.add_argument("network", help="the network's name")
    p.add_argument("container", help="the container's name or ID")
    args = p.parse_args(argv)
    client(glob).networks.disconnect(args.network, args.container, force=args.force)
    return 0
