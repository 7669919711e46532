"""``Definition``: everything the manager knows about a container before it makes it.

One frozen value, built by ``kago run``/``create``'s flags (flags.py), by a definition
file's ``Container(...)`` (dsl.py) or by ``kago.Client``, and checked there once. The engine,
spec.build, the supervisor and ``inspect`` read its typed fields; a record stores it as JSON
(serial.py) and reads it back without checking it again.
"""

from dataclasses import dataclass, field, replace

from kago.manager.errors import BadValue

from kago.manager.definition.parts import (
    INDEPENDENT,
    Capabilities,
    Healthcheck,
    Device,
    Dns,
    ExtraHost,
    IdMapping,
    Limits,
    LogOptions,
    Mount,
    Namespace,
    Network,
    OciHook,
    Port,
    RestartPolicy,
    Rlimit,
)

DEFAULT_CAPS = ("CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
                "CAP_KILL", "CAP_MKNOD", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SETFCAP",
                "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT")
"""docker's default set (moby oci/caps/defaults.go): enough for daemons that switch users and
chown their files, which runc spec's three capabilities are not."""


@dataclass(frozen=True)
class Definition:
    # what to run: an image (a reference) or a directory as the root filesystem
    image: str = ""
    rootfs: str = ""                                # absolute
    name: str = ""                                  # "": a random one at create
    command: tuple[str, ...] | None = None          # None: the image's Cmd
    entrypoint: tuple[str, ...] | None = None       # None: the image's Entrypoint
    env: tuple[str, ...] = ()                       # "K=V", merged over the image's
    workdir: str = ""                               # "": the image's, else /
    user: str = ""                                  # "": the image's; name, uid[:gid]
    hostname: str = ""                              # "": the ID's first 12 characters
    tty: bool = False
    interactive: bool = False
    read_only: bool = False
    auto_remove: bool = False
    # filesystem, network
    mounts: tuple[Mount, ...] = ()
    network: Network = field(default_factory=Network)
    ports: tuple[Port, ...] = ()
    network_etc: str = "own"                        # own | host (the host's, read-only)
    # isolation
    ids: IdMapping = field(default_factory=IdMapping)
    namespaces: tuple[Namespace, ...] = ()          # changes to pid/network/ipc/uts/mount new
    independent: tuple[str, ...] = INDEPENDENT      # fresh proc, sys, dev... mounts
    limits: Limits = field(default_factory=Limits)
    rlimits: tuple[Rlimit, ...] = ()
    capabilities: Capabilities = field(default_factory=Capabilities)
    no_new_privileges: bool = False
    seccomp: str = "default"                        # default | unconfined
    sysctls: tuple[tuple[str, str], ...] = ()
    oci_hooks: tuple[OciHook, ...] = ()
    # life
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    stop_signal: str = ""                           # "": the image's, else SIGTERM
    stop_timeout: int | None = None
    labels: tuple[tuple[str, str], ...] = ()
    log: LogOptions = field(default_factory=LogOptions)
    healthcheck: Healthcheck | None = None          # None: the image's (health.effective)
    init: bool = False                              # a reaping PID 1 (tini) runs the command
    # docker's run flags added later (kept last: records and merges stay simple)
    extra_hosts: tuple[ExtraHost, ...] = ()         # --add-host
    dns: Dns = field(default_factory=Dns)           # --dns, --dns-search, --dns-option
    devices: tuple[Device, ...] = ()                # --device
    privileged: bool = False                        # all caps and devices, no seccomp
    publish_all: bool = False                       # -P: exposed ports on random host ports
    expose: tuple[tuple[int, str], ...] = ()        # --expose: (port, proto)
    shm_size: int | None = None                     # bytes of /dev/shm (docker: 64m)
    group_add: tuple[str, ...] = ()                 # more groups: names or gids
    pull: str = "missing"                           # missing | always | never
    # where its cgroup goes: under cgroup_parent ("" the hierarchies' top), named kago-<id>
    # (layout "id") or by the container's name (layout "name": haconiwa's /group/name)
    cgroup_parent: str = ""
    cgroup_layout: str = "id"

    def but(self, **changes):
        """A copy with ``changes`` (values of the right types: nothing is checked again)."""
        return replace(self, **changes)

    @property
    def source(self):
        """The image reference, or the rootfs directory."""
        return self.image or self.rootfs

    @property
    def label_dict(self):
        return dict(self.labels)

    @property
    def sysctl_dict(self):
        return dict(self.sysctls)

    def capability_set(self, base=DEFAULT_CAPS):
        """The bounding set by docker's rule: base (all with ALL added), plus the added,
        minus the dropped (ALL drops every one but those added); sorted CAP_ names."""
        from kago.oci.names import CAPABILITIES
        add, drop = self.capabilities.add, self.capabilities.drop
        caps = set(CAPABILITIES) if "ALL" in add else set(base)
        caps |= {c for c in add if c != "ALL"}
        if "ALL" in drop:
            caps = {c for c in add if c != "ALL"}
        caps -= {c for c in drop if c != "ALL"}
        return tuple(sorted(caps))

    def namespace(self, kind):
        """How the definition asks for namespace ``kind``: "new", "host", a path, or None
        when it says nothing (spec.build's defaults apply)."""
        return next((ns.how for ns in self.namespaces if ns.kind == kind), None)


LIMIT_FIELDS = ("limits", "rlimits")
"""What ``kago reload`` applies to a running container."""

RESTART_FIELDS = ("image", "rootfs", "command", "entrypoint", "env", "mounts", "ports",
                  "network", "ids", "namespaces", "user", "workdir", "capabilities",
                  "read_only", "hostname")
"""What ``kago reload`` reports as changed but cannot apply without a new container."""
RESTART_FIELDS += ("healthcheck", "init")


def check(d, names=None):
    """The definition ``d`` if its fields agree with each other; BadValue otherwise.

    Every builder calls this once, after each value was parsed on its own. ``names`` maps a
    field of the Definition to what the user wrote it as (``--restart`` on the command line,
    ``restart`` in a definition file), so the error names that."""
    names = names or {}

    def name(field):
        return names.get(field, field)
    if not d.image and not d.rootfs:
        raise BadValue(name("image"), "give an image or a rootfs directory")
    if d.image and d.rootfs:
        raise BadValue(name("image"), "give either an image or a rootfs directory, not both")
    if d.ports and d.network.mode in ("host", "none"):
        raise BadValue(name("ports"), f"ports cannot be published with "
                                      f"{name('network')} {d.network.mode}")
    _check_host_ports(d.ports, name("ports"))
    _check_sysctls(d, name("sysctls"))
    if d.auto_remove and d.restart.name != "no":
        raise BadValue(name("auto_remove"), f"{name('auto_remove')} and {name('restart')} "
                                            f"cannot be used together")
    if (d.ids.uid_map or d.ids.gid_map) and d.ids.mode in ("auto", "keep-id"):
        raise BadValue(name("userns"), "give either an explicit ID map or a user namespace "
                                       "mode, not both")
    if d.ids.gid_map and not d.ids.uid_map:
        raise BadValue(name("gid_map"), "a gid map needs a uid map too")
    if d.privileged and (d.ids.mode != "host" or d.ids.uid_map):
        raise BadValue(name("privileged"), "privileged mode is incompatible with user "
                                           "namespaces: drop --userns/--uidmap, or "
                                           "--privileged")
    return d


def _check_host_ports(ports, field):
    """One host port (and protocol) once: on one address, or on every address ("")."""
    seen = []
    for p in ports:
        if not p.host_port:
            continue  # a random one each
        for q in seen:
            if (q.host_port, q.proto) == (p.host_port, p.proto) and (
                    not q.host_ip or not p.host_ip or q.host_ip == p.host_ip):
                where = p.host_ip or q.host_ip or "0.0.0.0"
                raise BadValue(field, f"Bind for {where}:{p.host_port} failed: port is "
                                      f"already allocated ({q.text} and {p.text})")
        seen.append(p)


def _check_sysctls(d, field):
    """A sysctl the container's own namespaces hold (the runtime's rule, checked before
    anything is made): never one of the host's alone, nor the hostname."""
    from kago.oci.names import sysctl_namespace
    for key, value in d.sysctls:
        owner = sysctl_namespace(key)
        if owner is None or key.replace("/", ".") == "kernel.hostname":
            raise BadValue(field, f"sysctl '{key}={value}' is not allowed: it is not "
                                  f"namespaced (it would be the host's)" if owner is None
                           else f"sysctl '{key}={value}' is not allowed: set the hostname")
        if owner == "network" and d.network.mode == "host":
            raise BadValue(field, f"sysctl '{key}={value}' is not allowed with the host's "
                                  f"network namespace")
