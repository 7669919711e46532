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
    mount_independent               independent=("proc", "sys", "dev", "devpts", "shm")
    mount_network_etc               network_etc="host"
    add_mount_point                 mounts=[tmpfs("/tmp"), bind("/src", "/dst", readonly=True)]
    cgroup["cpu.cfs_quota_us"]      cgroup={"cpu.cfs_quota_us": 30000} or {"cpu.max": "..."}
    capabilities.allow / drop       cap_add=[...], cap_drop=[...], capabilities=[exact set]
    resource.set_limit              rlimits={"nofile": (1024, 4096)}
    environ                         env={"A": "1"}
    add_general_hook / async_hook   @c.on("before_fork"), @c.every(ms=1000, times=5),
    add_signal_handler              @c.on_signal("USR1"), @c.on_pressure(...), @c.on_oom
"""

import os
import sys

from kago.manager import config as C
from kago.manager.errors import BadValue

MOMENTS = ("before_fork", "after_fork", "before_root_switch", "after_root_switch", "exit",
           "failure")
RESIDENT = ("exit", "failure")  # also timers, signals, pressure and OOM: the agent runs them

_registry = []  # the Containers of the definition being loaded (define/load.py)


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
    return [[int(inside), int(start), int(size)]]


def tmpfs(destination, size=None, mode="1777", readonly=False):
    opts = ["nosuid", "nodev", f"mode={mode}"] + ([f"size={size}"] if size else [])
    return {"type": "tmpfs", "source": "tmpfs", "destination": destination,
            "readonly": readonly, "options": opts}


def bind(source, destination, readonly=False):
    return {"type": "bind", "source": str(source), "destination": destination,
            "readonly": readonly, "options": []}


class Ready:
    """A readiness check: a TCP port accepting connections inside the container's network
    namespace, or a callable fn(container) -> bool; ``kago up`` polls it until ``timeout``."""

    __slots__ = ("fn", "line", "port", "timeout")

    def __init__(self, port=None, fn=None, timeout=10.0):
        self.port, self.fn, self.timeout = port, fn, float(timeout)
        self.line = _caller_line()


def tcp(port):
    return Ready(port=int(port))


class Container:
    """One container of a definition. Every keyword is also an attribute to set later."""

    def __init__(self, name, image=None, *, rootfs=None, command=None, entrypoint=None,
                 hostname=None, env=None, workdir=None, user=None, detach=True,
                 network="bridge", ports=(), ip=None, ids=None, uid_map=None, gid_map=None,
                 namespaces=None, independent=C.INDEPENDENT, network_etc="own", mounts=(),
                 cgroup=None, rlimits=None, cap_add=(), cap_drop=(), capabilities=None,
                 read_only=False, restart="no", labels=None, bootstrap=(), provision=(),
                 stop_signal=None, log=None, seccomp="default"):
        self.line = _caller_line()
        self.file = _caller_file()
        self.name = name
        self.image, self.rootfs = image, rootfs
        self.command, self.entrypoint = command, entrypoint
        self.hostname = hostname
        self.env = dict(env or {}) if not isinstance(env, (list, tuple)) else dict(
            item.split("=", 1) for item in env)
        self.workdir, self.user, self.detach = workdir, user, detach
        self.network, self.ports, self.ip = network, list(ports), ip
        self.ids, self.uid_map, self.gid_map = ids, uid_map, gid_map
        self.namespaces = dict(namespaces or {})
        self.independent = tuple(independent)
        self.network_etc = network_etc
        self.mounts = list(mounts)
        self.cgroup = dict(cgroup or {})
        self.rlimits = dict(rlimits or {})
        self.cap_add, self.cap_drop, self.capabilities = list(cap_add), list(cap_drop), \
            capabilities
        self.read_only, self.restart = read_only, restart
        self.labels = dict(labels or {})
        self.bootstrap = list(bootstrap)
        self.provision = list(provision)
        self.stop_signal, self.log, self.seccomp = stop_signal, log, seccomp
        self.hooks = {m: [] for m in MOMENTS}
        self.timers = []        # (ms, times, fn)
        self.signals = []       # (signal name, fn)
        self.pressure = []      # (resource, stall_ms, window_ms, fn)
        self.oom = []           # fn
        self.readiness = None
        _registry.append(self)

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
        """``kago up`` waits for this before it calls the container ready: tcp(port) or a
        callable fn(container) -> bool."""
        if isinstance(check, Ready):
            check.timeout = float(timeout)
            self.readiness = check
        elif callable(check):
            self.readiness = Ready(fn=check, timeout=timeout)
        else:
            raise BadValue("ready", f"{check!r}: use tcp(port) or a callable")

    def resident(self):
        """Whether something must keep running after ``kago up``: the definition's agent."""
        return bool(self.timers or self.signals or self.pressure or self.oom
                    or any(self.hooks[m] for m in RESIDENT))

    # --- to the manager's vocabulary
    def to_config(self, source_dir):
        """The manager's configuration dict; BadValue names the field at fault."""
        from kago.manager.records import check_name
        check_name(self.name, "name")
        if bool(self.image) == bool(self.rootfs):
            raise BadValue("image", "give exactly one of image= and rootfs=")
        cfg = C.new_config(name=self.name, image=self.image, hostname=self.hostname or self.name,
                           workdir=self.workdir, user=None if self.user is None else str(
                               self.user), read_only=bool(self.read_only), restart=self.restart,
                           network=self.network or "bridge", ip=self.ip,
                           network_etc=self.network_etc, seccomp=self.seccomp)
        if self.rootfs:
            cfg["rootfs"] = os.path.normpath(os.path.join(source_dir, str(self.rootfs)))
        cfg["command"] = _argv(self.command, "command")
        cfg["entrypoint"] = _argv(self.entrypoint, "entrypoint")
        cfg["env"] = [f"{k}={v}" for k, v in self.env.items()]
        cfg["ports"] = [C.parse_port(p, "ports") for p in self.ports]
        cfg["mounts"] = [_mount(m, source_dir, i) for i, m in enumerate(self.mounts)]
        cfg["namespaces"] = dict(self.namespaces)
        cfg["independent"] = C.check_independent(self.independent)
        cfg["cgroup"] = dict(self.cgroup)
        cfg["rlimits"] = dict(self.rlimits)
        if self.capabilities is not None:
            cfg["cap_drop"] = ["ALL"]
            cfg["cap_add"] = list(self.capabilities)
        else:
            cfg["cap_add"], cfg["cap_drop"] = list(self.cap_add), list(self.cap_drop)
        C.capabilities(cfg["cap_add"], cfg["cap_drop"])
        C.parse_restart(self.restart, "restart")
        if self.ids == "auto" or (isinstance(self.ids, str) and self.ids.startswith("auto")):
            cfg["userns"] = C.parse_userns(self.ids, "ids")
        elif self.ids is not None:
            cfg["uid_map"] = C.parse_id_map(self.ids, "ids")
        if self.uid_map is not None:
            cfg["uid_map"] = C.parse_id_map(self.uid_map, "uid_map")
        if self.gid_map is not None:
            cfg["gid_map"] = C.parse_id_map(self.gid_map, "gid_map")
        cfg["labels"] = {str(k): str(v) for k, v in self.labels.items()}
        if self.stop_signal:
            cfg["stop_signal"] = self.stop_signal
        if self.log:
            cfg["log"] = dict(C.DEFAULT_LOG, **self.log)
        if self.network_etc not in ("own", "host"):
            raise BadValue("network_etc", f'"{self.network_etc}": use "own" or "host"')
        from kago.manager.spec import resources, rlimits_for
        resources(cfg)      # cgroup keys and values checked now, not at start
        rlimits_for(cfg)
        return C.validate(cfg)


def _argv(value, field):
    if value is None:
        return None
    if isinstance(value, str):
        return ["/bin/sh", "-c", value]
    if not all(isinstance(a, str) for a in value):
        raise BadValue(field, "a list of strings (or one shell command string)")
    return list(value)


def _mount(m, source_dir, i):
    if not isinstance(m, dict) or m.get("type") not in ("tmpfs", "bind", "volume"):
        raise BadValue(f"mounts[{i}]", "use tmpfs(...) or bind(...)")
    if not str(m.get("destination", "")).startswith("/"):
        raise BadValue(f"mounts[{i}]", "the destination must be an absolute path")
    m = dict(m)
    if m["type"] == "bind":
        m["source"] = os.path.normpath(os.path.join(source_dir, m["source"]))
    return m


def _checked(fn):
    if not callable(fn):
        raise BadValue("hook", f"{fn!r} is not callable")
    return fn


def _definition_frame():
    """The innermost frame that runs the definition file (not this package)."""
    frame = sys._getframe(1)
    here = os.path.dirname(os.path.abspath(__file__))
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not path.startswith(here + os.sep):
            return frame
        frame = frame.f_back
    return None


def _caller_line():
    frame = _definition_frame()
    return frame.f_lineno if frame else 0


def _caller_file():
    frame = _definition_frame()
    return frame.f_code.co_filename if frame else ""
