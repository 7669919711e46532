"""The definition-file vocabulary: ``Container`` and its helpers (see docs/manager.md).

A definition file is a Python program. Every ``Container(...)`` it makes is registered with
the definition being loaded, so one file may define many (a loop over ports is plain Python).
Nothing here touches the host: a definition is data until ``kago up`` acts on it, and each
value is checked when the file is loaded, so an error names the file and the line of the
``Container`` it belongs to and nothing is started.

haconiwa's DSL, in this vocabulary:

    config.name / hostname          Container("web", hostname="web")
    config.init_command             command=["httpd", "-f"]
    daemonize! / foreground         detach=True (default) / detach=False
    chroot_to DIR, bootstrap        rootfs="/dir" + bootstrap=[tarball(...), shell(...),
                                    python(fn)]; or image="busybox"
    provision                       provision=[shell("...")] (inside, on the first start)
    namespace.unshare / enter       namespaces={"pid": "new", "network": "/run/netns/x"}
    set_uid_mapping                 ids=id_range(port * 100, 100) | ids="auto" |
                                    uid_map=[(0, 100000, 65536)], gid_map=...
    cgroup (docker's words)         memory="64m", memory_swap=, cpus=0.5, cpu_shares=,
                                    cpuset_cpus="0-1", pids_limit=100
    mount_independent               independent=("proc", "sys", "dev", "devpts", "shm")
    mount_network_etc               network_etc="host"
    add_mount_point                 mounts=[tmpfs("/tmp"), bind("/src", "/dst", readonly=True),
                                    volume("data", "/data")]
    cgroup["cpu.cfs_quota_us"]      cgroup={"cpu.cfs_quota_us": 30000} or {"cpu.max": "..."}
    cgroup group / name layout      cgroup_parent="/web" (docker's --cgroup-parent: the cgroup
                                    is /web/kago-<id>), cgroup_layout="name" (/web/<name>)
    capabilities.allow / drop       cap_add=[...], cap_drop=[...], capabilities=[exact set]
    resource.set_limit              rlimits={"nofile": (1024, 4096)}
    environ                         env={"A": "1"}
    add_general_hook / async_hook   @c.on("before_fork"), @c.every(ms=1000, times=5),
    add_signal_handler              @c.on_signal("USR1"), @c.on_pressure(...), @c.on_oom

A Container only holds what the file wrote; ``to_definition`` (kago.manager.definition's
``from_container``) parses and checks it into the manager's typed Definition. An attribute set
after the call (``web.memory = "64m"``) is remembered with its line, so an error in it names
that line rather than the ``Container(...)`` call's.
"""

import os
import sys

from kago.manager.definition import INDEPENDENT, IdRange, Mount
from kago.manager.definition import values as V
from kago.manager.errors import BadValue

MOMENTS = ("before_fork", "after_fork", "before_root_switch", "after_root_switch", "exit",
           "failure")
RESIDENT = ("exit", "failure")  # also timers, signals, pressure and OOM: the agent runs them

_registry = []  # the Containers of the definition being loaded (define/load.py)
_consoles = []  # its console(...) calls


class Console:
    """``console(listen=...)``: ``kago up`` starts the root's web console, ``kago down``
    stops it (manager/define/console.py)."""

    __slots__ = ("line", "listen")

    def __init__(self, listen, line):
        self.listen, self.line = listen, line


def console(listen="127.0.0.1:9090"):
    """Serve ``kago console --listen LISTEN`` for this root while the definition is up."""
    host, sep, port = str(listen).rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise BadValue(f"console: listen {listen!r}: want HOST:PORT (like 127.0.0.1:9090)")
    made = Console(str(listen), _caller_line())
    _consoles.append(made)
    return made


class Step:
    """One bootstrap or provision step: kind "tarball", "shell" or "python"."""

    __slots__ = ("kind", "line", "value")

    def __init__(self, kind, value):
        self.kind = kind
        self.value = value
        self.line = _caller_line()


def tarball(path):
    """Bootstrap: unpack this archive (tar, .gz, .xz, .zst) into the rootfs."""
    return Step("tarball", str(path))


def shell(command):
    """Bootstrap: a shell command run on the host with $ROOTFS set. Provision: run inside
    the container (``sh -c``) on its first start."""
    return Step("shell", str(command))


def python(fn):
    """Bootstrap: fn(rootfs_path) on the host. Provision: fn(container) on the host, with
    ``container.exec([...])`` to act inside."""
    if not callable(fn):
        raise BadValue("python", f"{fn!r} is not callable")
    return Step("python", fn)


def id_range(start, size=65536, inside=0):
    """Container IDs inside..inside+size-1 are host IDs start..start+size-1 (uids and gids)."""
    return V.id_map((inside, start, size), "id_range")


def tmpfs(destination, size=None, mode="1777", readonly=False):
    """A fresh tmpfs at ``destination`` (``size``: "1m", bytes...; ``mode``: octal text)."""
    opts = ("nosuid", "nodev", f"mode={mode}")
    if size is not None:
        opts += (f"size={V.size(size, 'tmpfs size')}",)
    return Mount("tmpfs", V.destination(destination, "tmpfs"), "tmpfs", bool(readonly), opts)


def bind(source, destination, readonly=False):
    """The host's ``source`` (relative to the definition file) at ``destination``."""
    return Mount("bind", V.destination(destination, "bind"), str(source), bool(readonly))


def volume(name, destination, readonly=False):
    """kago volume ``name`` (made on first use) at ``destination``."""
    return Mount("volume", V.destination(destination, "volume"), V.name(name, "volume"),
                 bool(readonly))


class Ready:
    """A readiness check: a TCP port accepting connections inside the container's network
    namespace, or a callable fn(container) -> bool; ``kago up`` polls it until ``timeout``."""

    __slots__ = ("fn", "health", "line", "port", "timeout")

    def __init__(self, port=None, fn=None, timeout=10.0):
        self.port, self.fn, self.timeout = port, fn, float(timeout)
        self.health = False
        self.line = _caller_line()


def tcp(port):
    return Ready(port=int(port))


def healthy():
    """Readiness by the container's healthcheck (``healthcheck=`` or the image's): ready when
    its status is "healthy"."""
    ready = Ready()
    ready.health = True
    return ready


class Container:
    """One container of a definition. Every keyword is also an attribute to set later."""

    def __init__(self, name, image=None, *, rootfs=None, command=None, entrypoint=None,
                 hostname=None, env=None, workdir=None, user=None, detach=True,
                 network="bridge", ports=(), ip=None, aliases=(), ids=None, uid_map=None,
                 gid_map=None, namespaces=None, independent=INDEPENDENT, network_etc="own",
                 mounts=(), cgroup=None, memory=None, memory_swap=None, cpus=None,
                 cpu_shares=None, cpuset_cpus=None, pids_limit=None, rlimits=None,
                 cap_add=(), cap_drop=(), capabilities=None, no_new_privileges=False,
                 read_only=False, restart="no", labels=None, sysctls=None, bootstrap=(),
                 provision=(), stop_signal=None, stop_timeout=None, log=None,
                 seccomp="default", healthcheck=None, init=False, cgroup_parent=None,
                 cgroup_layout="id", warm=False):
        object.__setattr__(self, "_lines", {})
        object.__setattr__(self, "_tracking", False)  # every keyword is on the call's line
        self.line = _caller_line()
        self.file = _caller_file()
        self.name = name
        self.image, self.rootfs = image, rootfs
        self.command, self.entrypoint = command, entrypoint
        self.hostname = hostname
        self.env = dict(env or {}) if not isinstance(env, (list, tuple)) else dict(
            item.split("=", 1) for item in env)
        self.workdir, self.user, self.detach = workdir, user, detach
        self.network, self.ports, self.ip, self.aliases = network, list(ports), ip, list(aliases)
        self.ids, self.uid_map, self.gid_map = ids, uid_map, gid_map
        self.namespaces = dict(namespaces or {})
        self.independent = tuple(independent)
        self.network_etc = network_etc
        self.mounts = list(mounts)
        self.cgroup = dict(cgroup or {})
        self.memory, self.memory_swap, self.cpus = memory, memory_swap, cpus
        self.cpu_shares, self.cpuset_cpus, self.pids_limit = cpu_shares, cpuset_cpus, pids_limit
        self.rlimits = dict(rlimits or {})
        self.cap_add, self.cap_drop, self.capabilities = list(cap_add), list(cap_drop), \
            capabilities
        self.no_new_privileges = no_new_privileges
        self.read_only, self.restart = read_only, restart
        self.labels = dict(labels or {})
        self.sysctls = dict(sysctls or {})
        self.bootstrap = list(bootstrap)
        self.provision = list(provision)
        self.stop_signal, self.stop_timeout = stop_signal, stop_timeout
        self.log, self.seccomp = log, seccomp
        self.healthcheck, self.init = healthcheck, init
        self.cgroup_parent, self.cgroup_layout = cgroup_parent, cgroup_layout
        self.hooks = {m: [] for m in MOMENTS}
        self.timers = []        # (ms, times, fn)
        self.signals = []       # (signal name, fn)
        self.pressure = []      # (resource, stall_ms, window_ms, fn)
        self.oom = []           # fn
        self.readiness = None
        # warm start (define/warm.py): the first up checkpoints it once ready, a later up
        # restores that checkpoint instead of booting it
        if not isinstance(warm, bool):
            raise BadValue("warm", f"{warm!r}: want True or False")
        self.warm = warm
        object.__setattr__(self, "_tracking", True)  # from now on, each assignment's line
        _registry.append(self)

    def __setattr__(self, name, value):
        if self._tracking and not name.startswith("_"):
            line = _caller_line()
            if line:
                self._lines[name] = line
        object.__setattr__(self, name, value)

    def line_of(self, field):
        """The line that set ``field``: where it was assigned, or the Container(...) call."""
        return self._lines.get(str(field).split(".")[0].split("[")[0], self.line)

    # --- hooks
    def on(self, moment):
        """Decorator: fn(container) at ``moment`` (fn(container, status) for "exit",
        fn(container, error) for "failure")."""
        if moment not in MOMENTS:
            raise BadValue("on", f'unknown moment "{moment}": use one of {", ".join(MOMENTS)}')

        def register(fn):
            self.hooks[moment].append(_checked(fn))
            return fn
        return register

    def every(self, ms, times=None):
        """Decorator: fn(container) every ``ms`` milliseconds, at most ``times`` times."""
        if int(ms) <= 0 or (times is not None and int(times) <= 0):
            raise BadValue("every", "ms and times must be positive")

        def register(fn):
            self.timers.append((int(ms), None if times is None else int(times), _checked(fn)))
            return fn
        return register

    def on_signal(self, name):
        """Decorator: fn(container) when the definition's agent receives signal ``name``."""
        import signal
        sig = name.upper() if name.upper().startswith("SIG") else "SIG" + name.upper()
        if not hasattr(signal, sig) or sig in ("SIGKILL", "SIGSTOP", "SIGCHLD"):
            raise BadValue("on_signal", f"{name}: not a signal a handler can take")

        def register(fn):
            self.signals.append((sig, _checked(fn)))
            return fn
        return register

    def on_pressure(self, resource="memory", stall_ms=200, window_ms=2000):
        """Decorator: fn(container) when tasks stall on ``resource`` (memory, cpu, io) for
        more than ``stall_ms`` within ``window_ms`` (a PSI trigger on the cgroup). Without
        CAP_SYS_RESOURCE the kernel takes only 2 s windows; the agent then scales."""
        if resource not in ("memory", "cpu", "io"):
            raise BadValue("on_pressure", f'"{resource}": use memory, cpu or io')
        if not 0 < int(stall_ms) <= int(window_ms) or not 500 <= int(window_ms) <= 10000:
            raise BadValue("on_pressure", "0 < stall_ms <= window_ms, window_ms in 500..10000 "
                                          "(the kernel's PSI trigger limits)")

        def register(fn):
            self.pressure.append((resource, int(stall_ms), int(window_ms), _checked(fn)))
            return fn
        return register

    def on_oom(self, fn):
        """Decorator: fn(container) when the OOM killer kills a process of the container."""
        self.oom.append(_checked(fn))
        return fn

    def ready(self, check, timeout=10.0):
        """``kago up`` waits for this before it calls the container ready: tcp(port),
        healthy() or a callable fn(container) -> bool."""
        if isinstance(check, Ready):
            check.timeout = float(timeout)
            self.readiness = check
        elif callable(check):
            self.readiness = Ready(fn=check, timeout=timeout)
        else:
            raise BadValue("ready", f"{check!r}: use tcp(port), healthy() or a callable")

    def resident(self):
        """Whether something must keep running after ``kago up``: the definition's agent."""
        return bool(self.timers or self.signals or self.pressure or self.oom
                    or any(self.hooks[m] for m in RESIDENT))

    # --- to the manager's vocabulary
    def to_definition(self, source_dir):
        """The manager's Definition; DefinitionError names the file and the line at fault."""
        from kago.manager.definition import from_container
        return from_container(self, source_dir)


def _checked(fn):
    if not callable(fn):
        raise BadValue("hook", f"{fn!r} is not callable")
    return fn


_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _definition_frame():
    """The innermost frame that runs the definition file (not this package)."""
    frame = sys._getframe(1)
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(_HERE):
            return frame
        frame = frame.f_back
    return None


def _caller_line():
    frame = _definition_frame()
    return frame.f_lineno if frame else 0


def _caller_file():
    frame = _definition_frame()
    return frame.f_code.co_filename if frame else ""
