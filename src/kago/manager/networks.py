"""``kago network ls|create|rm|inspect``, thin over kago.network's Networks."""

import json
import os

from kago.manager import format as F


def _nets(mgr, name=None):
    """The root's Networks; a root without network state has none, and none is made for
    a verb that only reads or removes (NetworkNotFound for ``name``)."""
    if os.path.isdir(mgr.paths.network()):
        return mgr.nets
    if name is not None:
        from kago.network.errors import NetworkNotFound
        raise NetworkNotFound(name)
    return None


def command(mgr, argv, parser, out):
    verbs = {"ls": _ls, "list": _ls, "create": _create, "rm": _rm, "remove": _rm,
             "inspect": _inspect}
    if not argv or argv[0] not in verbs:
        from kago.manager.errors import BadValue
        raise BadValue("network", "use network ls, create, rm or inspect")
    return verbs[argv[0]](mgr, argv[1:], parser, out)


def _ls(mgr, argv, parser, out):
    p = parser("network ls", "List networks.")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--format")
    args = p.parse_args(argv)
    rows = [{"ID": _net_id(n["name"]), "Name": n["name"], "Driver": "bridge",
             "Subnet": n.get("subnet", ""), "Bridge": n.get("bridge", ""),
             "Containers": str(len(n.get("containers") or ()))}
            for n in (_nets(mgr).list() if _nets(mgr) else ())]
    if args.quiet:
        for r in rows:
            out(r["Name"])
        return 0
    for line in F.formatted(args.format or "table", rows,
                            ("ID", "Name", "Driver", "Subnet", "Bridge", "Containers"),
                            {"ID": "NETWORK ID"}):
        out(line)
    return 0


def _net_id(name):
    import hashlib
    return hashlib.sha256(name.encode()).hexdigest()[:12]


def _create(mgr, argv, parser, out):
    p = parser("network create", "Create a bridge network.")
    p.add_argument("--subnet", default=None)
    p.add_argument("--gateway")
    p.add_argument("--bridge", "-o", dest="bridge")
    p.add_argument("--ipv6-subnet")
    p.add_argument("--internal", action="store_true", help="no outbound NAT")
    p.add_argument("name")
    args = p.parse_args(argv)
    kwargs = {"gateway": args.gateway, "bridge": args.bridge, "ipv6_subnet": args.ipv6_subnet}
    if args.subnet:
        kwargs["subnet"] = args.subnet
    if args.internal:
        kwargs["outbound"] = False
    mgr.nets.create(args.name, **kwargs)
    out(_net_id(args.name))
    return 0


def _rm(mgr, argv, parser, out):
    p = parser("network rm", "Remove networks.")
    p.add_argument("names", nargs="+")
    args = p.parse_args(argv)
    for name in args.names:
        _nets(mgr, name).remove(name)
        out(name)
    return 0


def _inspect(mgr, argv, parser, out):
    p = parser("network inspect", "Show networks as JSON.")
    p.add_argument("names", nargs="+")
    args = p.parse_args(argv)
    docs = []
    for name in args.names:
        nets = _nets(mgr, name)
        doc = dict(nets.get(name))
        doc["containers"] = [a.to_dict() for a in nets.attachments(name)]
        doc["dns"] = nets.resolvers().get(name)     # the running resolver, or None
        docs.append(doc)
    out(json.dumps(docs, indent=4))
    return 0
