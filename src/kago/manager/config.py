"""What a container should be, in the manager's vocabulary: a plain JSON-able dict.

Both faces fill the same dict: ``kago run``'s flags (cli/main.py) and a definition file's
``Container`` (define/dsl.py). ``spec.build`` turns it into an OCI config.json. Every parser
here is pure and raises ``BadValue(field, message)`` naming the flag or field at fault, so a
bad value is refused before anything is made.

Keys (all optional but the rootfs source):

    image | rootfs      an image reference, or a directory used as the root filesystem
    command, entrypoint lists (None: the image's Cmd / Entrypoint)
    env                 ["K=V", ...]          workdir, user, hostname
    tty, interactive    bool                  read_only, auto_remove, init_ns (see spec)
    mounts              [{"type": bind|tmpfs|volume, "source", "destination", "readonly",
                          "options": [...]}]
    ports               ["8080:80/tcp", ...]  network ("bridge", "host", "none",
                                              "container:REF", or a network's name), ip, aliases
    memory, memory_swap bytes                 cpus (float), pids_limit, cpuset_cpus
    cgroup              {"cpu.cfs_quota_us": 30000, "cpu.max": "30000 100000", ...}
    rlimits             {"nofile": [soft, hard], ...}
    cap_add, cap_drop   ["NET_ADMIN", "ALL", ...]
    restart             "no" | "on-failure[:N]" | "always" | "unless-stopped"
    userns              "host" | "auto" | "keep-id"   uid_map, gid_map: [[inside, host, size]]
    namespaces          {"pid": "new"|"host"|PATH, ...}   (unshare or share each kind)
    independent         ["proc", "sys", "dev", "devpts", "shm", "mqueue"] mounted fresh
    network_etc         "own" (made for the container) or "host" (the host's, read-only)
    log                 {"max_size": bytes, "max_files": N}
    stop_signal, stop_timeout, labels, sysctls, seccomp ("default" | "unconfined")
"""

import os

from kago.manager.errors import BadValue

DEFAULT_CAPS = ("CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
                "CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP",
                "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT")
"""docker's default set (moby oci/caps/defaults.go): enough for daemons that switch users and
chown their files, which runc spec's three capabilities are not."""

NAMESPACE_KINDS = ("pid", "network", "ipc", "uts", "mount", "user", "cgroup")
INDEPENDENT = ("proc", "sys", "dev", "devpts", "shm", "mqueue")
RESTART_NAMES = ("no", "on-failure", "always", "unless-stopped")
DEFAULT_LOG = {"max_size": 10 * 1024 * 1024, "max_files": 3}

_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
               "g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40}


def new_config(**values):
    cfg = {"env": [], "mounts": [], "ports": [], "cap_add": [], "cap_drop": [],
           "restart": "no", "network": "bridge", "cgroup": {}, "rlimits": {}, "labels": {},
           "sysctls": {}, "independent": list(INDEPENDENT), "network_etc": "own",
           "namespaces": {}, "log": dict(DEFAULT_LOG), "seccomp": "default"}
    cfg.update(values)
    return cfg


def parse_size(text, field):
    """docker's sizes: 512, 512b, 64k, 512m, 1.5g (powers of 1024); returns bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise BadValue(field, f"{text} is negative")
        return text
    value = str(text).strip().lower()
    i = len(value)
    while i and value[i - 1].isalpha():
        i -= 1
    number, unit = value[:i], value[i:]
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if unit not in _SIZE_UNITS or amount < 0 or not number:
        raise BadValue(field, f'invalid size "{text}": use a number with b, k, m or g')
    return int(amount * _SIZE_UNITS[unit])


def parse_cpus(text, field="--cpus"):
    """--cpus 1.5 -> (quota, period) for a 100 ms period, as docker."""
    try:
        cpus = float(text)
    except (TypeError, ValueError):
        raise BadValue(field, f'invalid number of CPUs "{text}"') from None
    if cpus <= 0 or cpus > 1024:
        raise BadValue(field, f"{text}: give a positive number of CPUs like 0.5 or 2")
    period = 100000
    return int(cpus * period), period


def parse_env(items, field="-e", environ=None):
    """["K=V", "K"] -> ["K=V", ...]; a bare K takes the caller's value (and is dropped if
    unset), as docker does."""
    environ = os.environ if environ is None else environ
    out = []
    for item in items or ():
        key, eq, value = str(item).partition("=")
        if not key or any(c.isspace() for c in key):
            raise BadValue(field, f'invalid environment variable "{item}"')
        if eq:
            out.append(f"{key}={value}")
        elif key in environ:
            out.append(f"{key}={environ[key]}")
    return out


def merge_env(base, overrides):
    """Environment lists merged by key: later entries replace earlier ones, order kept."""
    order, values = [], {}
    for item in list(base or ()) + list(overrides or ()):
        key = item.partition("=")[0]
        if key not in values:
            order.append(key)
        values[key] = item
    return [values[k] for k in order]


def parse_volume(text, field="-v"):
    """-v SRC:DST[:OPTS]: an absolute SRC is a bind mount, a name a kago volume.

    OPTS: ro, rw, and the bind propagations; SELinux's z/Z are accepted and ignored (this
    host has no SELinux; podman ignores them the same way).
    """
    parts = str(text).split(":")
    if len(parts) == 1 or len(parts) > 3 or not all(parts[:2]):
        raise BadValue(field, f'invalid volume "{text}": use SRC:DST[:ro]')
    source, dest = parts[0], parts[1]
    opts = parts[2].split(",") if len(parts) == 3 and parts[2] else []
    if not dest.startswith("/"):
        raise BadValue(field, f'invalid volume "{text}": the destination must be absolute')
    readonly = False
    options = []
    for opt in opts:
        if opt == "ro":
            readonly = True
        elif opt == "rw":
            readonly = False
        elif opt in ("z", "Z"):
            continue
        elif opt in ("private", "rprivate", "shared", "rshared", "slave", "rslave",
                     "nocopy", "noexec", "nosuid", "nodev"):
            options.append(opt)
        else:
            raise BadValue(field, f'invalid volume option "{opt}" in "{text}"')
    if source.startswith("/"):
        kind = "bind"
    elif source.startswith("."):
        raise BadValue(field, f'invalid volume "{text}": a bind source must be absolute')
    else:
        from kago.manager.records import check_name
        check_name(source, field)
        kind = "volume"
    return {"type": kind, "source": source, "destination": dest, "readonly": readonly,
            "options": options}


def parse_tmpfs(text, field="--tmpfs"):
    """--tmpfs DST[:OPTS] (docker): a fresh tmpfs, options as mount(8) takes them."""
    dest, _, opts = str(text).partition(":")
    if not dest.startswith("/"):
        raise BadValue(field, f'invalid tmpfs "{text}": the destination must be absolute')
    options = [o for o in opts.split(",") if o] if opts else ["nosuid", "nodev", "mode=1777"]
    return {"type": "tmpfs", "source": "tmpfs", "destination": dest, "readonly": False,
            "options": options}


def parse_restart(text, field="--restart"):
    """"no", "always", "unless-stopped", "on-failure[:N]" -> (name, max retries or 0)."""
    name, _, count = str(text or "no").partition(":")
    if name not in RESTART_NAMES:
        raise BadValue(field, f'invalid restart policy "{text}": use no, on-failure[:N], '
                              f'always or unless-stopped')
    if count and name != "on-failure":
        raise BadValue(field, f'invalid restart policy "{text}": only on-failure takes a count')
    try:
        retries = int(count) if count else 0
    except ValueError:
        retries = -1
    if retries < 0:
        raise BadValue(field, f'invalid restart count in "{text}"')
    return name, retries


def parse_port(text, field="-p"):
    """[IP:]HOST:CONTAINER[/PROTO], checked now (kago.network's parser) so that a typo fails
    before anything is made; returns the text, which kago.network parses again to publish."""
    from kago.network import NetworkError, PortMapping
    try:
        return str(PortMapping.parse(str(text)))
    except NetworkError as e:
        raise BadValue(field, str(e)) from None


def cap_name(name, field):
    """"net_admin", "NET_ADMIN", "CAP_NET_ADMIN" -> "CAP_NET_ADMIN"; "ALL" stays."""
    upper = str(name).strip().upper()
    if upper == "ALL":
        return upper
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    from kago.oci.names import CAPABILITIES
    if upper not in CAPABILITIES:
        raise BadValue(field, f'unknown capability "{name}"')
    return upper


def capabilities(cap_add, cap_drop, base=DEFAULT_CAPS):
    """docker's rule: start from the defaults (or all with ALL), add, then drop (ALL drops
    every one); returns a sorted list of CAP_ names."""
    from kago.oci.names import CAPABILITIES
    adds = [cap_name(c, "--cap-add") for c in cap_add or ()]
    drops = [cap_name(c, "--cap-drop") for c in cap_drop or ()]
    caps = set(base)
    if "ALL" in adds:
        caps = set(CAPABILITIES)
    caps |= {c for c in adds if c != "ALL"}
    if "ALL" in drops:
        caps = {c for c in adds if c != "ALL"}
    caps -= {c for c in drops if c != "ALL"}
    return sorted(caps)


def parse_userns(text, field="--userns"):
    value = str(text or "host")
    if value not in ("host", "auto", "keep-id") and not value.startswith("auto:size="):
        raise BadValue(field, f'invalid user namespace mode "{text}": use auto, host or keep-id')
    return value


def parse_id_map(value, field):
    """[[inside, host, size], ...] or (inside, host, size) or "inside:host:size" -> list."""
    if isinstance(value, str):
        items = [tuple(v.split(":")) for v in value.split(",") if v]
    elif value and isinstance(value[0], (list, tuple)):
        items = value
    else:
        items = [value] if value else []
    out = []
    for item in items:
        try:
            inside, host, size = (int(x) for x in item)
        except (TypeError, ValueError):
            raise BadValue(field, f"invalid ID mapping {item!r}: use (inside, host, size)") from None
        if inside < 0 or host < 0 or size <= 0 or host + size > 1 << 32:
            raise BadValue(field, f"invalid ID mapping {item!r}: IDs are 0..2^32-1, size > 0")
        out.append([inside, host, size])
    return out


def check_namespaces(namespaces, field="namespaces"):
    for kind, how in (namespaces or {}).items():
        if kind not in NAMESPACE_KINDS:
            raise BadValue(field, f'unknown namespace "{kind}": use one of '
                                  f'{", ".join(NAMESPACE_KINDS)}')
        if how not in ("new", "host") and not (isinstance(how, str) and how.startswith("/")):
            raise BadValue(f"{field}.{kind}", f'"{how}": use "new", "host" or a namespace path')


def check_independent(items, field="independent"):
    for item in items:
        if item not in INDEPENDENT:
            raise BadValue(field, f'"{item}" is not one of {", ".join(INDEPENDENT)}')
    return list(items)


def validate(cfg):
    """Checks across fields, after every flag was parsed on its own."""
    if not cfg.get("image") and not cfg.get("rootfs"):
        raise BadValue("image", "give an image or a rootfs directory")
    if cfg.get("rootfs") and not os.path.isabs(cfg["rootfs"]):
        raise BadValue("--rootfs", f"{cfg['rootfs']}: must be an absolute path")
    network = cfg.get("network") or "bridge"
    if cfg.get("ports") and network in ("host", "none"):
        raise BadValue("-p", f"ports cannot be published with --network {network}")
    if cfg.get("tty") and cfg.get("restart", "no") != "no":
        raise BadValue("--restart", "a container with a terminal (-t) runs in the foreground "
                                    "and cannot have a restart policy")
    if cfg.get("auto_remove") and cfg.get("restart", "no") != "no":
        raise BadValue("--rm", "--rm and --restart cannot be used together")
    if cfg.get("uid_map") and cfg.get("userns") in ("auto", "keep-id"):
        raise BadValue("--userns", "give either an explicit ID map or --userns, not both")
    check_namespaces(cfg.get("namespaces"))
    check_independent(cfg.get("independent", INDEPENDENT))
    return cfg
