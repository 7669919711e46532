"""``kago ps/logs/inspect/top/stats``: what the manager knows, in docker's columns and JSON."""

import sys

from kago.cli.common import Usage, client, out, parser


def cmd_ps(glob, argv):
    p = parser("ps", "List containers (or those of a definition FILE).")
    p.add_argument("-a", "--all", action="store_true",
                   help="show every container (default: running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only the container IDs")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate the output")
    p.add_argument("--format", help="a Go template per row, or table, or json")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="filter: name=, status=, id= or label=")
    p.add_argument("-e", "--env", action="append", default=[],
                   help="set a variable the definition file reads: KEY=VALUE")
    p.add_argument("file", nargs="?", help="a definition file: list its containers")
    args = p.parse_args(argv)
    c = client(glob)
    if args.file:
        from kago.cli.definitions import definition_env
        definition_env(args.env)  # checked as before, though ps reads the remembered group
        c.group_table(args.file, out=out)
        return 0
    from kago.manager import format as F
    filters = _filters(args.filter)
    health = {value for key, value in filters if key == "health"}
    rows = [_ps_row(container.record, container.state, args.no_trunc)
            for container in c.containers(all=args.all)
            if all((container.health or "none") == h for h in health)]
    rows = [r for r in rows if _matches(r, filters)]
    if args.quiet:
        for r in rows:
            out(r["ID"])
        return 0
    columns = ("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names")
    fmt = args.format or "table"
    for line in F.formatted(fmt, rows, columns):
        out(line)
    return 0


def _ps_row(record, live, no_trunc=False):
    import time

    from kago.manager import format as F
    from kago.manager.definition import of
    definition = of(record)
    return {"ID": record["id"] if no_trunc else record["id"][:12],
            "Image": record.get("image") or definition.rootfs,
            "Command": F.command_text(record, trunc=not no_trunc),
            "RunningFor": F.human_duration(time.time() - record["created"]) + " ago",
            "CreatedAt": _local_time(record["created"]),
            "Status": F.status_text(record, live), "State": live,
            "Ports": F.ports_text(record), "Names": record["name"],
            "Labels": ",".join(f"{k}={v}" for k, v in definition.labels),
            "Pid": (record.get("state") or {}).get("pid", 0) if live == "running" else 0}


def _local_time(ts):
    import time
    return time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(ts))


def _filters(items):
    """-f KEY=VALUE for name, status, id, label (label=K or label=K=V) and health
    (starting, healthy, unhealthy or none: docker's)."""
    out = []
    for item in items:
        key, eq, value = item.partition("=")
        if key not in ("name", "status", "id", "label", "health") or not eq:
            raise Usage(f"invalid filter '{item}': use name=, status=, id=, label= or health=")
        if key == "health" and value not in ("starting", "healthy", "unhealthy", "none"):
            raise Usage(f"invalid filter '{item}': health= takes starting, healthy, "
                        f"unhealthy or none")
        out.append((key, value))
    return out


def _matches(row, filters):
    labels = dict(pair.split("=", 1) if "=" in pair else (pair, "")
                  for pair in row["Labels"].split(",") if pair)
    for key, value in filters:
        if key == "name" and value not in row["Names"]:
            return False
        if key == "status" and row["State"] != value:
            return False
        if key == "id" and not row["ID"].startswith(value):
            return False
        if key == "label":
            name, eq, wanted = value.partition("=")
            if name not in labels or (eq and labels[name] != wanted):
                return False
    return True


def cmd_logs(glob, argv):
    p = parser("logs", "Show a container's output.")
    p.add_argument("-f", "--follow", action="store_true", help="follow the log as it grows")
    p.add_argument("-n", "--tail", default="all", help="only the last N lines (default: all)")
    p.add_argument("--since", help="only lines since a time (RFC 3339, unix time, or 10m...)")
    p.add_argument("-t", "--timestamps", action="store_true", help="show each line's time")
    p.add_argument("container", help="the container's name or ID")
    args = p.parse_args(argv)
    c = client(glob)
    container = c.container(args.container)
    tail = None
    if args.tail != "all":
        if not args.tail.lstrip("-").isdigit():
            raise Usage(f"--tail {args.tail}: give a number or all")
        tail = max(int(args.tail), 0)
    since = _since(args.since) if args.since else None
    for entry in c.log_entries(container.id, follow=args.follow, tail=tail, since=since):
        _log_line(entry, args.timestamps)
    return 0


def _log_line(entry, timestamps):
    stream = sys.stdout if entry.get("stream") == "stdout" else sys.stderr
    if timestamps:
        stream.write(entry.get("time", "") + " ")
    stream.write(entry.get("log", ""))
    stream.flush()


def _since(text):
    """docker's --since: a duration (10m, 1h30m), RFC 3339, or a unix timestamp."""
    import time

    from kago.cli.oci import _duration
    seconds = _duration(text) if not text[:1].isdigit() or text[-1:].isalpha() else None
    if seconds is not None and not text.replace(".", "").isdigit():
        return time.time() - seconds
    try:
        return float(text)
    except ValueError:
        pass
    from kago.manager.logs import parse_timestamp
    try:
        return parse_timestamp(text)
    except ValueError:
        raise Usage(f"--since {text}: use a duration (10m), RFC 3339 or a unix time") from None


def cmd_inspect(glob, argv):
    p = parser("inspect", "Show containers' (or images') details as JSON.")
    p.add_argument("-f", "--format", help="a Go template, applied to each document")
    p.add_argument("--type", choices=("container", "image"),
                   help="only a container or only an image")
    p.add_argument("names", nargs="+", help="names or IDs of containers or images")
    args = p.parse_args(argv)
    import json

    from kago.manager import format as F
    from kago.manager.errors import NoSuchContainer
    c = client(glob)
    docs = []
    for name in args.names:
        doc = None
        if args.type != "image":
            try:
                doc = c.inspect(name)
            except NoSuchContainer:
                if args.type == "container":
                    raise
        if doc is None:
            doc = c.images.get(name, args.type)
        docs.append(doc)
    if args.format:
        for doc in docs:
            out(F.render(args.format, doc))
    else:
        out(json.dumps(docs, indent=4))
    return 0


def cmd_top(glob, argv):
    p = parser("top", "Show a container's processes (ps options allowed).")
    p.add_argument("container", help="the container's name or ID")
    p.add_argument("ps_args", nargs="...", help="ps options (default -ef)")
    args = p.parse_args(argv)
    for line in client(glob).top(args.container, args.ps_args):
        out(line)
    return 0


def cmd_stats(glob, argv):
    p = parser("stats", "Live resource usage: CPU, memory, pids, net, block I/O, PSI.")
    p.add_argument("--no-stream", action="store_true", help="print one sample and exit")
    p.add_argument("-a", "--all", action="store_true",
                   help="show every container (default: running)")
    p.add_argument("--format", help="a Go template per row, or table, or json")
    p.add_argument("containers", nargs="*",
                   help="the containers' names or IDs (default: the running ones)")
    args = p.parse_args(argv)
    from kago.manager import format as F
    from kago.manager import views
    c = client(glob)
    said = set()
    while True:
        rows = c.stats(args.containers, interval=0.5 if args.no_stream else 1.0)
        lines = F.formatted(args.format or "table", rows, views.STATS_COLUMNS)
        if not args.no_stream:
            sys.stdout.write("\033[2J\033[H")
        for line in lines:
            out(line)
        sys.stdout.flush()
        for r in rows:
            if r.get("Unavailable") and r["ID"] not in said:
                said.add(r["ID"])
                print(f"kago: stats: {r['Name']}: usage and limits unavailable "
                      f"({r['Unavailable']})", file=sys.stderr)
        if args.no_stream:
            return 0

