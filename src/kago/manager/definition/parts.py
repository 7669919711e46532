"""The parts of a container's definition: frozen values, checked once when built.

Each part holds typed values only (numbers in bytes or microseconds, canonical names,
absolute paths): the builders (flags.py, dsl.py) parse what a user wrote, and nothing
downstream parses it again. Mappings are tuples of pairs so that a definition is hashable and
compares by value.
"""

from dataclasses import dataclass

NAMESPACE_KINDS = ("pid", "network", "ipc", "uts", "mount", "user", "cgroup")
INDEPENDENT = ("proc", "sys", "dev", "devpts", "shm", "mqueue")
RESTART_NAMES = ("no", "on-failure", "always", "unless-stopped")
MOUNT_KINDS = ("bind", "tmpfs", "volume")
NETWORK_MODES = ("bridge", "host", "none", "container")
USERNS_MODES = ("host", "auto", "keep-id")
RLIMITS = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
           "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")
TMPFS_OPTIONS = ("nosuid", "nodev", "mode=1777")
AUTO_ID_SIZE = 65536
CPU_PERIOD = 100000


@dataclass(frozen=True)
class Mount:
    """A bind mount of a host path, a kago volume (by name), or a fresh tmpfs."""

    kind: str                       # bind | volume | tmpfs
    destination: str                # absolute, inside the container
    source: str = ""                # host path (bind), volume name (volume), "tmpfs"
    readonly: bool = False
    options: tuple[str, ...] = ()   # propagation / mount(8) options, "ro"/"rw" excluded


@dataclass(frozen=True)
class Port:
    """A published port: ``host_ip:host_port`` on the host to ``container_port``."""

    host_port: int
    container_port: int
    proto: str = "tcp"
    host_ip: str = ""               # "": every local address

    @property
    def text(self):
        host = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{host}:{self.host_port}:{self.container_port}/{self.proto}"


@dataclass(frozen=True)
class Network:
    """Which network: a bridge (the default one, or the named network ``name``), the host's,
    none, or another container's (``container``: its name or ID)."""

    mode: str = "bridge"            # bridge | host | none | container
    name: str = ""                  # bridge: a network's name ("" the default one)
    container: str = ""             # container: the container to join
    ip: str = ""                    # a static address on the bridge
    aliases: tuple[str, ...] = ()   # more names peers see in /etc/hosts

    @property
    def text(self):
        """docker's NetworkMode: bridge, host, none, container:REF or the network's name."""
        if self.mode == "container":
            return f"container:{self.container}"
        return self.name or self.mode


@dataclass(frozen=True)
class IdRange:
    """Container IDs inside..inside+size-1 are host IDs host..host+size-1."""

    inside: int
    host: int
    size: int


@dataclass(frozen=True)
class IdMapping:
    """The user namespace: none (``host``), a free range picked at create (``auto``, of
    ``auto_size`` IDs), or explicit maps (``gid_map`` empty: the uid map's)."""

    mode: str = "host"              # host | auto | keep-id
    auto_size: int = AUTO_ID_SIZE
    uid_map: tuple[IdRange, ...] = ()
    gid_map: tuple[IdRange, ...] = ()

    @property
    def text(self):
        """docker's UsernsMode ("" for the host's)."""
        if self.mode == "auto" and self.auto_size != AUTO_ID_SIZE:
            return f"auto:size={self.auto_size}"
        return "" if self.mode == "host" else self.mode


@dataclass(frozen=True)
class CgroupKey:
    """One cgroup control file the definition sets: ``section``/``field`` name its
    linux.resources place (a v1 name with an equivalent field), else it goes to
    ``linux.resources.unified``; ``value`` is already converted (bytes, -1 for max)."""

    key: str                        # cpu.cfs_quota_us, cpu.max, memory.high...
    value: int | str
    section: str = ""               # cpu, memory, pids, blockIO; "" for unified
    field: str = ""


@dataclass(frozen=True)
class Limits:
    """cgroup limits: what ``kago reload`` may change on a running container."""

    memory: int | None = None       # bytes
    memory_swap: int | None = None  # bytes, -1 unlimited
    cpus: float | None = None       # a quota of cpus * CPU_PERIOD per CPU_PERIOD
    cpu_shares: int | None = None
    cpuset_cpus: str = ""
    pids: int | None = None
    cgroup: tuple[CgroupKey, ...] = ()

    @property
    def cpu_quota(self):
        """(quota, period) in microseconds for ``cpus``, as docker: a 100 ms period."""
        return None if self.cpus is None else (int(self.cpus * CPU_PERIOD), CPU_PERIOD)


@dataclass(frozen=True)
class Rlimit:
    name: str                       # nofile, nproc... (without RLIMIT_)
    soft: int
    hard: int


@dataclass(frozen=True)
class Capabilities:
    """docker's rule: the default set (all with ALL in ``add``), plus ``add``, minus
    ``drop`` (ALL in ``drop`` drops every one but those added). Names are CAP_X or ALL."""

    add: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()


@dataclass(frozen=True)
class RestartPolicy:
    name: str = "no"                # no | on-failure | always | unless-stopped
    max_retries: int = 0            # on-failure only; 0: no limit

    @property
    def text(self):
        return f"{self.name}:{self.max_retries}" if self.max_retries else self.name


@dataclass(frozen=True)
class Namespace:
    """One namespace kind: a new one, the host's, or the one at ``path``."""

    kind: str                       # pid, network, ipc, uts, mount, user, cgroup
    how: str = "new"                # new | host | an absolute path


@dataclass(frozen=True)
class LogOptions:
    """kago's json log: rotated at ``max_size`` bytes, ``max_files`` kept."""

    max_size: int = 10 * 1024 * 1024
    max_files: int = 3


@dataclass(frozen=True)
class OciHook:
    """A runtime-spec hook (``kago up`` adds these for before/after_root_switch)."""

    kind: str                       # createRuntime, createContainer, startContainer...
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


@dataclass(frozen=True)
class Healthcheck:
    """docker's healthcheck: ``test`` is () (the image's), ("NONE",) (none at all),
    ("CMD", arg...) or ("CMD-SHELL", command). Durations are nanoseconds as in docker's
    config; 0 (and ``retries`` 0) means the image's value, else docker's default."""

    test: tuple[str, ...] = ()
    interval: int = 0               # ns between checks (default 30 s)
    timeout: int = 0                # ns before a check is killed and failed (default 30 s)
    start_period: int = 0           # ns after a start in which failures do not count
    start_interval: int = 0         # ns between checks in the start period (default 5 s)
    retries: int = 0                # consecutive failures to be unhealthy (default 3)


PULL_POLICIES = ("missing", "always", "never")


@dataclass(frozen=True)
class Device:
    """--device HOST[:CONTAINER[:PERMS]]: a host device node made in the container, with the
    cgroup rule that lets it be used (``permissions``: some of r, w, m)."""

    host: str                       # absolute, under /dev
    container: str                  # absolute, inside the container
    permissions: str = "rwm"


@dataclass(frozen=True)
class ExtraHost:
    """--add-host NAME:IP: one more /etc/hosts line (``ip`` "host-gateway": the host's
    address on the container's network, as docker)."""

    name: str
    ip: str


@dataclass(frozen=True)
class Dns:
    """--dns, --dns-search, --dns-option: what replaces resolv.conf's lines of that kind
    (empty: the network's, or the host's)."""

    servers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def __bool__(self):
        return bool(self.servers or self.search or self.options)
