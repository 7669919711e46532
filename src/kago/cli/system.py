"""``kago system prune|info|supervisor``, ``kago version``, ``kago info``."""

import os
import sys

from kago.version import __version__
from kago.cli.common import Usage, client, confirm, out, parser


def cmd_system(glob, argv):
    if argv and argv[0] in ("-h", "--help"):
        out(_SYSTEM_HELP)
        return 0
    if not argv or argv[0] not in ("prune", "info", "supervisor", "df", "events"):
        raise Usage("system: use df, prune, info or supervisor")
    if argv[0] == "df":
        return _df(glob, argv[1:])
    if argv[0] == "events":
        return __import__("kago.cli.events", fromlist=["_"]).cmd_events(glob, argv[1:])
    if argv[0] == "info":
        return cmd_info(glob, argv[1:])
    if argv[0] == "supervisor":
        return _supervisor(glob, argv[1:])
    p = parser("system prune", "Remove stopped containers, dangling images, unused layers.")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.add_argument("-a", "--all", action="store_true",
                   help="remove all unused images, not just dangling ones")
    p.add_argument("--volumes", action="store_true", help="prune anonymous volumes")
    args = p.parse_args(argv[1:])
    if not args.force and not confirm(_PRUNE_WARNING.format(
            images="all images without at least one container associated to them"
            if args.all else "all dangling images",
            volumes="  - all anonymous volumes not used by at least one container\n"
            if args.volumes else "")):
        return 0
    kago = client(glob)
    done = kago.prune(all_images=args.all)
    out("Deleted Containers:" if done["containers"] else "No stopped containers")
    for record in done["containers"]:
        out(record["id"])
    for what in done["orphans"]:
        out(f"Removed orphaned {what}")
    from kago.manager.images import pruned_lines
    lines = pruned_lines(done["images"])
    if lines:
        out("Deleted Images:")
        for line in lines:
            out(line)
    if args.volumes:  # after the containers: a removed one no longer uses its volumes
        pruned = kago.volumes.prune()
        if pruned["volumes"]:
            out("Deleted Volumes:")
            for name in pruned["volumes"]:
                out(name)
    for error in done["errors"]:
        print(f"kago: system prune: {error}", file=sys.stderr)
    return 1 if done["errors"] else 0


_PRUNE_WARNING = """WARNING! This will remove:
  - all stopped containers
  - {images}
{volumes}  - what no container owns any more (attachments, layers, ID ranges of dead commands)

Are you sure you want to continue? [y/N] """


def _supervisor(glob, argv):
    """system supervisor [--stop]: the shared supervisor's pid and what it watches."""
    p = parser("system supervisor", "Show the shared supervisor's pid and what it watches.")
    p.add_argument("--stop", action="store_true",
                   help="stop it (the containers keep running)")
    args = p.parse_args(argv)
    from kago.manager import supervisor
    mgr = client(glob).manager
    conn = supervisor.connect(mgr.paths, spawn=False)
    if conn is None:
        out("no supervisor is running")
        return 0
    try:
        if args.stop:
            conn.request("quit", timeout=5)
            out("supervisor stopped (containers keep running)")
        else:
            reply = conn.request("ping", timeout=5)
            idle = reply.get("idle_timeout")
            out(f"pid {reply['pid']}, watching {len(reply['watching'])} container(s)"
                + (f", exits after {idle:g} s with nothing to do" if idle is not None else ""))
            for cid, count in sorted((reply.get("dropped") or {}).items()):
                out(f"{cid[:12]}: {count} log lines dropped (its log could not be written)")
    finally:
        conn.close()
    return 0


def cmd_version(glob, argv):
    parser("version", "Show kago's version, its runtime's and the OCI spec's.").parse_args(argv)
    mgr = client(glob).manager
    runtime = mgr.runtime()
    out(f"kago version {__version__}")
    out(f"runtime: {runtime.name} ({runtime.path})")
    from kago.version import OCI_VERSION
    out(f"OCI runtime spec: {OCI_VERSION}")
    return 0


def cmd_info(glob, argv):
    parser("info", "Show system-wide information.").parse_args(argv)
    import platform
    mgr = client(glob).manager
    counts = {"running": 0, "paused": 0, "exited": 0, "created": 0, "restarting": 0}
    containers = mgr.list(all=True)
    for _record, live in containers:
        counts[live] = counts.get(live, 0) + 1
    from kago.manager import supervisor
    from kago.runtime import container
    layout = container.layout()
    out(f"Containers: {len(containers)}")
    out(f" Running: {counts['running']}")
    out(f" Paused: {counts['paused']}")
    out(f" Stopped: {counts['exited'] + counts['created']}")
    if os.path.isdir(mgr.paths.storage()):
        out(f"Images: {len(mgr.store.images())}")
        program = mgr.store.mount_program
        out(f"Storage Driver: {mgr.store.driver}" + (f" (mounted by {program})" if program
                                                       else ""))
    else:
        out("Images: 0")
    out(f"Cgroup Version: {layout.mode}")
    from kago.manager import rootless
    found = rootless.delegation()
    if found is not None:  # a user's manager: what its containers' cgroups may use
        from kago.manager.delegation import describe
        out(f"Cgroup Controllers: {describe(found)}")
    out(f"Runtime: {mgr.runtime().name}")
    out(f"Kernel Version: {platform.release()}")
    out(f"Kago Root Dir: {mgr.paths.root}")
    out(f"Kago Run Dir: {mgr.paths.runroot}")
    pid = supervisor.running_pid(mgr.paths)
    out(f"Supervisor: {'pid ' + str(pid) if pid else 'not running'}")
    if rootless.active():  # docker's "Security Options: rootless"
        from kago.host.rootless import host_uid
        space = rootless.id_space()
        out(f"Rootless: yes (host uid {host_uid()}, {space.uids} subordinate UIDs, "
            f"{space.gids} GIDs; holder pid {rootless.holder_pid(mgr.paths) or '-'})")
    return 0



_SYSTEM_HELP = """usage: kago system COMMAND

  df          show what images, containers and volumes take on disk
  prune       remove stopped containers, dangling images, what nothing owns
  info        show system-wide information
  events      show what kago did: docker's events (as kago events)
  supervisor  show (or --stop) the shared supervisor"""


def _df(glob, argv):
    p = parser("system df", "Show what images, containers and volumes take on disk.")
    p.add_argument("--format", help="a Go template per row, or table, or json")
    args = p.parse_args(argv)
    from kago.manager import format as F
    rows = []
    for r in client(glob).disk_usage():
        share = f" ({100 * r['reclaimable'] // r['size']}%)" if r["size"] else " (0%)"
        rows.append({"Type": r["type"], "TotalCount": str(r["total"]),
                     "Active": str(r["active"]), "Size": F.human_size(r["size"]),
                     "Reclaimable": F.human_size(r["reclaimable"]) + share})
    for line in F.formatted(args.format or "table", rows,
                            ("Type", "TotalCount", "Active", "Size", "Reclaimable"),
                            {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE",
                             "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}):
        out(line)
    return 0
