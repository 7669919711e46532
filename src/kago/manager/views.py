"""What ``inspect``, ``top`` and ``stats`` show, shaped like docker's output.

``inspect`` is docker's document (Id, State, Config, HostConfig, NetworkSettings, Mounts...)
with a ``Kago`` section for what docker has no word for (bundle, runtime, ID maps, rootfs
driver and shift). ``stats`` samples the runtime's cgroup statistics (runc's ``events --stats``
data, PSI included) twice and derives CPU % from the difference, as docker does.
"""

import functools
import time

from kago.manager import format as F
from kago.manager.definition import of


def iso(ts):
    if not ts:
        return "0001-01-01T00:00:00Z"
    from kago.manager.logs import timestamp
    return timestamp(int(ts * 1e9))


def inspect(mgr, record, live=None):
    live = live or mgr.live(record)
    d = of(record)
    state = record.get("state") or {}
    att = record.get("network") or {}
    args = record.get("args") or []
    ports = {}
    for p in att.get("ports") or ():
        ports.setdefault(f"{p['container_port']}/{p.get('proto', 'tcp')}", []).append(
            {"HostIp": p.get("host_ip") or "0.0.0.0", "HostPort": str(p["host_port"])})
    # an ended container's network was released (docker: no address, no ports, no sandbox)
    net = {} if F.released(record) and live not in ("running", "paused") else att
    mounts = [_mount(mgr, m) for m in d.mounts]
    limits = d.limits
    return {
        "Id": record["id"],
        "Created": iso(record.get("created")),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {
            "Status": live, "Running": live in ("running", "paused"), "Paused": live == "paused",
            "Restarting": live == "restarting", "OOMKilled": bool(state.get("oom_killed")),
            "Dead": False, "Pid": state.get("pid", 0) if live in ("running", "paused") else 0,
            "ExitCode": state.get("exit_code") or 0, "Error": state.get("error", ""),
            "StartedAt": iso(state.get("started_at")),
            "FinishedAt": iso(state.get("finished_at")),
            **_health(state),
            **_checkpoint(state, live),
        },
        "Image": record.get("image_id") or "",
        "Name": "/" + record["name"],
        "RestartCount": state.get("restart_count", 0),
        "LogPath": mgr.paths.log(record["id"]),
        "HostConfig": {
            "NetworkMode": d.network.text,
            "RestartPolicy": {"Name": d.restart.name,
                              "MaximumRetryCount": d.restart.max_retries},
            "AutoRemove": d.auto_remove, "ReadonlyRootfs": d.read_only,
            "CapAdd": list(d.capabilities.add) or None,
            "CapDrop": list(d.capabilities.drop) or None,
            "Memory": limits.memory or 0, "MemorySwap": limits.memory_swap or 0,
            "NanoCpus": int(round((limits.cpus or 0) * 1e9)),
            "CpuShares": limits.cpu_shares or 0, "CpusetCpus": limits.cpuset_cpus,
            "PidsLimit": limits.pids, "UsernsMode": d.ids.text,
            "CgroupParent": d.cgroup_parent,
            "Sysctls": d.sysctl_dict or None,
            "SecurityOpt": (["seccomp=unconfined"] if d.seccomp == "unconfined" else [])
            + (["no-new-privileges"] if d.no_new_privileges else []) or None,
            "Ulimits": [{"Name": r.name, "Soft": r.soft, "Hard": r.hard}
                        for r in d.rlimits] or None,
            "LogConfig": {"Type": "json-file", "Config": {
                "max-size": str(d.log.max_size), "max-file": str(d.log.max_files)}},
            "PortBindings": {k: v for k, v in ports.items()},
            "Init": d.init or None,
            **docker_flags(d),
        },
        "Config": {
            "Hostname": record.get("hostname", ""),
            "Env": record.get("env") or list(d.env), "Image": record.get("image") or "",
            **effective_config(d, record.get("image_config") or {}),
            "Tty": d.tty, "OpenStdin": d.interactive,
            "StopSignal": record.get("stop_signal", "SIGTERM"),
            "StopTimeout": d.stop_timeout,
            **_healthcheck(d, record),
        },
        "NetworkSettings": {
            "IPAddress": net.get("ipv4") or "", "Gateway": net.get("gateway") or "",
            "MacAddress": net.get("mac") or "", "IPPrefixLen": net.get("prefixlen") or 0,
            "Ports": ports if net else {}, "SandboxKey": net.get("netns_path") or "",
            "Networks": ({att["network"]: {"IPAddress": net.get("ipv4") or "",
                                           "Gateway": net.get("gateway") or "",
                                           "MacAddress": net.get("mac") or ""}}
                         if att.get("network") else {}) | _connected(record, bool(net)),
        },
        "Mounts": mounts,
        "Kago": {
            "Bundle": mgr.paths.bundle(record["id"]), "Runtime": record.get("runtime") or
            "kago-oci (in process)", "RuntimeRoot": record.get("runtime_root"),
            "Rootfs": record.get("rootfs"), "UidMap": record.get("uid_map"),
            "GidMap": record.get("gid_map"), "CgroupsPath": record.get("cgroups_path"),
            "Group": record.get("group"),
        },
    }


def _checkpoint(state, live):
    """podman's checkpoint fields of State: Checkpointed, CheckpointedAt, CheckpointPath,
    Restored, RestoredAt, RestoredFrom."""
    ck = state.get("checkpoint") or {}
    restored = state.get("restored") or {}
    out = {"Checkpointed": live == "checkpointed", "Restored": bool(restored)}
    if ck:
        out.update(CheckpointedAt=iso(ck.get("at")), CheckpointPath=ck.get("path", ""))
        if ck.get("imported_from"):
            out["CheckpointImportedFrom"] = ck["imported_from"]
    if restored:
        out.update(RestoredAt=iso(restored.get("at")), RestoredFrom=restored.get("from", ""))
    return out


def _health(state):
    """docker's State.Health (only for a container with a healthcheck)."""
    h = state.get("health")
    if not h:
        return {}
    return {"Health": {"Status": h.get("Status", "starting"),
                       "FailingStreak": h.get("FailingStreak", 0),
                       "Log": list(h.get("Log") or ())}}


def _healthcheck(definition, record):
    """docker's Config.Healthcheck: the definition's over the image's."""
    from kago.manager.health import effective
    conf = effective(definition, record.get("image_config") or {})
    return {"Healthcheck": conf} if conf else {}


def _mount(mgr, m):
    """docker inspect's Mounts entry; a volume's names it and its directory (Source)."""
    doc = {"Type": m.kind, "Source": m.source, "Destination": m.destination,
           "RW": not m.readonly, "Mode": "ro" if m.readonly else "rw"}
    if m.kind == "volume":
        from kago.manager.volumes import mountpoint
        doc.update(Name=m.source, Source=mountpoint(mgr, m.source), Driver="local")
    return doc


def _connected(record, attached):
    """NetworkSettings.Networks of the further networks (network connect): addresses while
    the container holds them (not after a release, not yet for a stopped one)."""
    out = {}
    for c in record.get("connections") or ():
        a = (c.get("attachment") or {}) if attached else {}
        out[c["network"]] = {"IPAddress": a.get("ipv4") or "", "Gateway": a.get("gateway") or "",
                             "MacAddress": a.get("mac") or "", "Aliases": c.get("aliases") or None,
                             "IPAMConfig": {"IPv4Address": c["ip"]} if c.get("ip") else None,
                             "Interface": a.get("ifname") or ""}
    return out


def effective_config(definition, image):
    """docker inspect's Config.{Cmd, Entrypoint, User, WorkingDir, Labels, ExposedPorts,
    Volumes}: what the container runs with, the image's values where its Definition gives
    none; a new entrypoint drops the image's Cmd, as at run."""
    d = definition
    if d.entrypoint is not None:
        entrypoint, cmd = list(d.entrypoint), list(d.command or ()) or None
    else:
        entrypoint = image.get("Entrypoint")
        cmd = list(d.command or ()) or image.get("Cmd")
    labels = dict(image.get("Labels") or {})
    labels.update(d.label_dict)
    out = {"User": d.user or image.get("User") or "", "Cmd": cmd or None,
           "Entrypoint": entrypoint or None,
           "WorkingDir": d.workdir or image.get("WorkingDir") or "",
           "Labels": labels}
    for key in ("ExposedPorts", "Volumes"):
        if image.get(key):
            out[key] = image[key]
    if d.expose:
        out["ExposedPorts"] = {**out.get("ExposedPorts", {}),
                               **{f"{port}/{proto}": {} for port, proto in d.expose}}
    return out


def docker_flags(d):
    """docker inspect's HostConfig fields of --add-host, --dns..., --device, --privileged,
    -P, --shm-size and --group-add."""
    return {
        "ExtraHosts": [f"{h.name}:{h.ip}" for h in d.extra_hosts] or None,
        "Dns": list(d.dns.servers), "DnsSearch": list(d.dns.search),
        "DnsOptions": list(d.dns.options),
        "Devices": [{"PathOnHost": x.host, "PathInContainer": x.container,
                     "CgroupPermissions": x.permissions} for x in d.devices],
        "Privileged": d.privileged, "PublishAllPorts": d.publish_all,
        "ShmSize": d.shm_size if d.shm_size is not None else 64 << 20,
        "GroupAdd": list(d.group_add) or None,
    }


def top(mgr, record, ps_args=()):
    """docker top: ``ps`` output (``-ef`` by default) filtered to the container's pids."""
    import subprocess
    pids = {str(p) for p in mgr.runtime(record).pids(record["id"])}
    out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True,
                         check=False)
    lines = out.stdout.splitlines()
    if not lines:
        from kago.manager.errors import ManagerError
        raise ManagerError(f"ps: {out.stderr.strip()}")
    header = lines[0].split()
    if "PID" not in header:
        from kago.manager.errors import ManagerError
        raise ManagerError("ps options must keep the PID column")
    col = header.index("PID")
    keep = [ln for ln in lines[1:] if len(ln.split()) > col and ln.split()[col] in pids]
    return [lines[0]] + keep


# --- stats --------------------------------------------------------------------------------------

def sample(mgr, record):
    """One reading: cpu ns, memory usage/limit, pids, block I/O, net I/O, PSI avg10."""
    return reading(record, mgr.runtime(record).stats(record["id"]))


def reading(record, data, net=True):
    """``sample``'s reading from the runtime's stats ``data`` (runc's events --stats);
    ``net``: with the network's bytes (else None)."""
    mem = data["memory"]["usage"]
    raw = data["memory"].get("raw") or {}
    # docker's usage without the page cache it may drop: v1's memory.stat counts the tree in
    # total_inactive_file, v2's has inactive_file (hierarchical already)
    usage = mem["usage"] - raw.get("total_inactive_file", raw.get("inactive_file", 0))
    limit = mem["limit"]
    if not limit or limit >= 1 << 62:
        limit = host_memory()
    read = write = 0
    for entry in (data.get("blkio") or {}).get("ioServiceBytesRecursive") or ():
        op = entry.get("op", "").lower()
        read += entry["value"] if op == "read" else 0
        write += entry["value"] if op == "write" else 0
    psi = {key: ((data.get(key) or {}).get("psi") or {}).get("some", {}).get("avg10")
           for key in ("cpu", "memory", "blkio")}
    return {"t": time.monotonic(), "cpu": data["cpu"]["usage"]["total"], "mem": max(usage, 0),
            "limit": limit, "pids": data["pids"]["current"], "read": read, "write": write,
            "net": _net_io(record) if net else None, "psi": psi}


@functools.lru_cache(maxsize=1)
def host_memory():
    """The machine's memory in bytes (MemTotal), read once."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _net_io(record):
    """(rx, tx) bytes of the container's own network namespace; None for the host's."""
    att = record.get("network") or {}
    if att.get("mode") == "host" or not (record.get("state") or {}).get("pid"):
        return None
    rx = tx = 0
    try:
        with open(f"/proc/{record['state']['pid']}/net/dev") as f:
            for line in f.readlines()[2:]:
                name, _, rest = line.partition(":")
                if name.strip() == "lo":
                    continue
                fields = rest.split()
                rx += int(fields[0])
                tx += int(fields[8])
    except (OSError, IndexError, ValueError):
        return None
    return rx, tx


def row(record, before, after):
    """docker stats' columns (plus kago's PRESSURE) from two samples."""
    wall = max(after["t"] - before["t"], 1e-9) * 1e9
    cpu = max(after["cpu"] - before["cpu"], 0) / wall * 100
    mem_pct = after["mem"] / after["limit"] * 100 if after["limit"] else 0.0
    net = after["net"]
    psi = after["psi"]
    pressure = "/".join("--" if psi[k] is None else f"{psi[k]:.1f}"
                        for k in ("cpu", "memory", "blkio"))
    return {
        "ID": record["id"][:12], "Container": record["id"][:12], "Name": record["name"],
        "CPUPerc": f"{cpu:.2f}%",
        "MemUsage": f"{F.binary_size(after['mem'])} / {F.binary_size(after['limit'])}",
        "MemPerc": f"{mem_pct:.2f}%",
        "NetIO": "--" if net is None else f"{F.human_size(net[0])} / {F.human_size(net[1])}",
        "BlockIO": f"{F.human_size(after['read'])} / {F.human_size(after['write'])}",
        "PIDs": str(after["pids"]), "Pressure": pressure,
    }


STATS_COLUMNS = ("ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
                 "Pressure")


def stats_rows(mgr, records, interval=0.5):
    """One table's worth of rows for ``records`` (running ones), sampled ``interval`` apart."""
    from kago.manager.errors import ManagerError
    first, missing = {}, {}
    for record in records:
        try:
            first[record["id"]] = sample(mgr, record)
        except ManagerError as e:
            missing[record["id"]] = str(e)
    time.sleep(interval)
    rows = []
    for record in records:
        if record["id"] in missing:
            if mgr.runtime(record).state(record["id"]) is not None:
                rows.append(unavailable_row(record, missing[record["id"]]))
            continue
        try:
            rows.append(row(record, first[record["id"]], sample(mgr, record)))
        except ManagerError:
            continue
    return rows


def unavailable_row(record, why):
    """A running container without a cgroup (a user's manager on a host that delegates it
    none): "--" for what only a cgroup counts, its own network's bytes, and ``why`` under
    "Unavailable" (not a column: the command line says it once)."""
    net = _net_io(record)
    return {"ID": record["id"][:12], "Container": record["id"][:12], "Name": record["name"],
            "CPUPerc": "--", "MemUsage": "-- / --", "MemPerc": "--",
            "NetIO": "--" if net is None else f"{F.human_size(net[0])} / {F.human_size(net[1])}",
            "BlockIO": "--", "PIDs": "--", "Pressure": "--/--/--", "Unavailable": why}
