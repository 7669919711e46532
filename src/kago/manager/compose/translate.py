"""A resolved compose project (load.py) -> the manager's typed values: one Definition per
service (kago.manager.definition's ``from_options``, the same builder as ``kago.Client``),
and the project's networks and volumes.

    plan = translate(project)
    plan.services["web"].definition     # a Definition named PROJECT-web-1, compose's labels
    plan.order                          # services in depends_on order
    plan.networks, plan.volumes         # what ``up`` makes and ``down`` removes

Pure: nothing on the host is touched (the images are checked, and built, by runner.py).
Every error is one ComposeError naming the file, the line and the field.
"""

import hashlib
import json
import os
import shlex
from dataclasses import dataclass, field

from kago.manager.compose.errors import ComposeError
from kago.manager.definition import Mount
from kago.manager.definition import values as V
from kago.manager.errors import BadValue

CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
LABEL = "com.docker.compose"

# service keys -> what they are; "ignored": accepted, no effect in kago (said in docs)
SERVICE_KEYS = (
    "image", "build", "command", "entrypoint", "environment", "env_file", "ports", "expose",
    "volumes", "tmpfs", "depends_on", "healthcheck", "networks", "network_mode", "restart",
    "user", "working_dir", "hostname", "labels", "container_name", "deploy", "mem_limit",
    "cpus", "pids_limit", "stop_signal", "stop_grace_period", "read_only", "cap_add",
    "cap_drop", "sysctls", "ulimits", "init")


@dataclass(frozen=True)
class Build:
    context: str                    # absolute
    dockerfile: str                 # as given (relative to the context) or absolute
    args: tuple[tuple[str, str], ...] = ()
    target: str = ""


@dataclass(frozen=True)
class Healthcheck:
    test: tuple[str, ...]           # ("CMD", ...), ("CMD-SHELL", "..."), ("NONE",)
    interval: float = 30.0          # seconds
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0


@dataclass(frozen=True)
class Service:
    name: str
    definition: object              # kago.manager.definition.Definition
    depends_on: tuple[tuple[str, str], ...] = ()    # (service, condition)
    build: Build | None = None
    healthcheck: Healthcheck | None = None
    networks: tuple[str, ...] = ()                  # project network keys it uses
    make_dirs: tuple[str, ...] = ()                 # bind sources compose makes if missing


@dataclass(frozen=True)
class NetworkPlan:
    key: str                        # the compose name (default, front...)
    name: str                       # kago's network name: PROJECT_KEY, or name:
    external: bool = False
    bridge: str | None = None
    subnet: str | None = None
    gateway: str | None = None
    internal: bool = False


@dataclass(frozen=True)
class VolumePlan:
    key: str
    name: str                       # PROJECT_KEY, or name:
    external: bool = False


@dataclass
class Plan:
    project: object
    services: dict = field(default_factory=dict)    # name -> Service, in file order
    order: list = field(default_factory=list)
    networks: dict = field(default_factory=dict)    # key -> NetworkPlan
    volumes: dict = field(default_factory=dict)     # key -> VolumePlan

    def used_networks(self, names):
        """The project networks the services ``names`` are attached to, in plan order."""
        used = {k for n in names for k in self.services[n].networks}
        return [n for k, n in self.networks.items() if k in used]

    def used_volumes(self, names):
        """The project volumes the services ``names`` mount, in plan order."""
        used = {m.source for n in names for m in self.services[n].definition.mounts
                if m.kind == "volume"}
        return [v for v in self.volumes.values() if v.name in used]

    def selected(self, names=()):
        """``names`` and what they depend on, in start order (all when empty)."""
        if not names:
            return list(self.order)
        for n in names:
            if n not in self.services:
                raise ComposeError(f"no such service: {n}")
        wanted, todo = set(), list(names)
        while todo:
            n = todo.pop()
            if n not in wanted:
                wanted.add(n)
                todo += [d for d, _c in self.services[n].depends_on]
        return [n for n in self.order if n in wanted]


def container_name(project, service, number=1):
    return f"{project}-{service}-{number}"


def translate(project):
    plan = Plan(project)
    plan.volumes = _volumes(project)
    plan.networks = _networks(project)
    for name, svc in project.services.items():
        plan.services[name] = _service(project, plan, name, svc)
    plan.order = _order(project, plan.services)
    return plan


# --- the top level --------------------------------------------------------------------------------

def _volumes(project):
    out = {}
    for key, spec in (project.doc.get("volumes") or {}).items():
        spec = spec or {}
        path = ("volumes", key)
        if not isinstance(spec, dict):
            raise project.error(path, "must be a mapping (or empty)")
        for k in spec:
            if k not in ("name", "external", "driver", "labels") and not k.startswith("x-"):
                raise project.error(path + (k,), "not supported by kago compose")
        if spec.get("driver") not in (None, "local"):
            raise project.error(path + ("driver",), "only local volumes (kago's) exist")
        name = str(spec.get("name") or f"{project.name}_{key}")
        _checked(project, path, V.name, name)
        out[key] = VolumePlan(key, name, bool(spec.get("external")))
    return out


def _networks(project):
    declared = dict(project.doc.get("networks") or {})
    declared.setdefault("default", None)
    out = {}
    for key, spec in declared.items():
        spec = spec or {}
        path = ("networks", key)
        if not isinstance(spec, dict):
            raise project.error(path, "must be a mapping (or empty)")
        for k in spec:
            if k not in ("name", "external", "driver", "driver_opts", "ipam", "internal",
                         "labels") and not k.startswith("x-"):
                raise project.error(path + (k,), "not supported by kago compose")
        if spec.get("driver") not in (None, "bridge"):
            raise project.error(path + ("driver",), "only bridge networks are supported")
        opts = spec.get("driver_opts") or {}
        bridge = opts.get("com.docker.network.bridge.name")
        subnet = gateway = None
        ipam = spec.get("ipam") or {}
        configs = ipam.get("config") or []
        if configs:
            if len(configs) > 1 or not isinstance(configs[0], dict):
                raise project.error(path + ("ipam", "config"), "give one {subnet, gateway}")
            subnet, gateway = configs[0].get("subnet"), configs[0].get("gateway")
        name = str(spec.get("name") or f"{project.name}_{key}")
        out[key] = NetworkPlan(key, name, bool(spec.get("external")),
                               str(bridge) if bridge else None,
                               str(subnet) if subnet else None,
                               str(gateway) if gateway else None, bool(spec.get("internal")))
    return out


# --- a service ------------------------------------------------------------------------------------

class _Service:
    """One service's fields -> from_options's keyword options, each error at its line."""

    def __init__(self, project, plan, name, svc):
        self.project, self.plan, self.name, self.svc = project, plan, name, svc
        self.base = ("services", name)
        self.opts = {}
        self.make_dirs = []

    def error(self, key, message):
        path = self.base + (key if isinstance(key, tuple) else (key,))
        return self.project.error(path, message)

    def get(self, key, default=None):
        value = self.svc.get(key)
        return default if value is None else value


def _build(s):
    value = s.svc.get("build")
    if value is None:
        return None
    if isinstance(value, str):
        value = {"context": value}
    if not isinstance(value, dict):
        raise s.error("build", "a context directory or a mapping (context, dockerfile, "
                               "args, target)")
    for k in value:
        if k not in ("context", "dockerfile", "args", "target") and not k.startswith("x-"):
            raise s.error(("build", k), "not supported by kago compose (context, dockerfile, "
                                        "args, target)")
    context = os.path.normpath(os.path.join(s.project.directory,
                                            os.path.expanduser(str(value.get("context", ".")))))
    args = value.get("args") or {}
    if isinstance(args, list):
        args = dict(str(a).partition("=")[::2] for a in args)
    if not isinstance(args, dict):
        raise s.error(("build", "args"), "a list of KEY=VALUE or a mapping")
    return Build(context, str(value.get("dockerfile") or ""),
                 tuple((str(k), "" if v is None else _scalar(v)) for k, v in args.items()),
                 str(value.get("target") or ""))


def _service(project, plan, name, svc):
    base = ("services", name)
    if not isinstance(svc, dict):
        raise project.error(base, "a service must be a mapping")
    s = _Service(project, plan, name, svc)
    for key in svc:
        if key not in SERVICE_KEYS and not key.startswith("x-"):
            raise s.error(key, "not supported by kago compose (docs/compose.md lists the "
                               "keys)")
    build = _build(s)
    image = s.get("image")
    if image is None and build is None:
        raise s.error((), "give image: or build:")
    image = str(image) if image is not None else f"{project.name}-{name}"
    opts = s.opts
    opts["name"] = str(s.get("container_name") or container_name(project.name, name))
    _checked(project, base + ("container_name",), V.name, opts["name"])
    for key, option in (("command", "command"), ("entrypoint", "entrypoint")):
        if key in svc:
            opts[option] = _argv(s, key, svc[key])
    opts["env"] = _environment(s)
    opts["ports"] = [p for i, item in enumerate(s.get("ports", [])) for p in _ports(s, i, item)]
    mounts = [_volume(s, i, item) for i, item in enumerate(_list(s, "volumes"))]
    tmpfs = s.get("tmpfs", [])
    for i, item in enumerate([tmpfs] if isinstance(tmpfs, str) else tmpfs):
        mounts.append(_checked(project, base + ("tmpfs", i), V.tmpfs, str(item)))
    opts["mounts"] = mounts
    depends = _depends(s)
    networks, network, ip, aliases = _service_network(s)
    opts.update(network=network, ip=ip, aliases=aliases)
    if network.startswith("container:") and svc.get("network_mode", "").startswith("service:"):
        dep = svc["network_mode"].split(":", 1)[1]
        if dep not in [d for d, _ in depends]:
            depends.append((dep, "service_started"))
    for key, option in (("user", "user"), ("working_dir", "workdir"), ("hostname", "hostname"),
                        ("stop_signal", "stop_signal")):
        if svc.get(key) is not None:
            opts[option] = str(svc[key])
    restart = svc.get("restart")
    if restart is not None:
        opts["restart"] = "no" if restart is False else str(restart)
    if "stop_grace_period" in svc:
        seconds = _duration(s, "stop_grace_period", svc["stop_grace_period"])
        opts["stop_timeout"] = int(-(-seconds // 1))
    for key in ("read_only",):
        if key in svc:
            opts[key] = _bool(s, key, svc[key])
    for key in ("cap_add", "cap_drop"):
        if key in svc:
            opts[key] = [str(c) for c in _list(s, key)]
    if "sysctls" in svc:
        opts["sysctls"] = _mapping(s, "sysctls")
    if "ulimits" in svc:
        opts["rlimits"] = _ulimits(s)
    _limits(s)
    if "init" in svc and _bool(s, "init", svc["init"]):
        if not _has_field("init"):
            raise s.error("init", "not supported yet: kago has no init process to run as "
                                  "PID 1 (run one from the image, e.g. command: [tini, --, "
                                  "...])")
        opts["init"] = True
    healthcheck = _healthcheck(s)
    labels = _mapping(s, "labels") if "labels" in svc else {}
    labels.update(_compose_labels(project, name, svc, depends))
    opts["labels"] = labels
    if healthcheck is not None and _has_health_field():
        opts["healthcheck"] = _health_option(svc["healthcheck"])
    elif healthcheck is not None and healthcheck.test != ("NONE",):
        s.project.warn(f"services.{name}.healthcheck: not run: this kago has no healthchecks")
    definition = _definition(s, image, opts)
    return Service(name, definition, tuple(depends), build, healthcheck, tuple(networks),
                   tuple(s.make_dirs))


_OPTION_KEYS = {"name": "container_name", "command": "command", "entrypoint": "entrypoint",
                "env": "environment", "ports": "ports", "mounts": "volumes",
                "network": "network_mode", "ip": "networks", "aliases": "networks",
                "workdir": "working_dir", "stop_timeout": "stop_grace_period",
                "rlimits": "ulimits", "memory": ("deploy", "resources", "limits", "memory"),
                "cpus": ("deploy", "resources", "limits", "cpus"),
                "pids_limit": ("deploy", "resources", "limits", "pids"),
                "restart": "restart", "user": "user", "hostname": "hostname",
                "stop_signal": "stop_signal", "cap_add": "cap_add", "cap_drop": "cap_drop",
                "sysctls": "sysctls", "labels": "labels", "read_only": "read_only",
                "image": "image", "healthcheck": "healthcheck", "init": "init"}


def _definition(s, image, opts):
    from kago.manager.definition import from_options
    try:
        return from_options(image, opts.pop("command", None), environ={}, **opts)
    except BadValue as e:
        first = e.field.split("[")[0].split(".")[0]
        key = _OPTION_KEYS.get(first, e.field)
        key = key if isinstance(key, tuple) else (key,)
        if first == "healthcheck" and "." in e.field:
            key += tuple(e.field.split(".")[1:])
        raise s.error(key, _message(e)) from None


def _message(e):
    """A BadValue's message without the field it names (ours names the compose path)."""
    text = str(e)
    prefix = f"{e.field}: "
    return text[len(prefix):] if e.field and text.startswith(prefix) else text


def _has_field(name):
    from dataclasses import fields

    from kago.manager.definition import Definition
    return any(f.name == name for f in fields(Definition))


def _has_health_field():
    return _has_field("healthcheck")


def _health_option(hc):
    """compose's healthcheck -> the Definition builder's option (its durations are Go's,
    as compose's)."""
    if hc.get("disable"):
        return False
    return {k: v for k, v in hc.items() if k in ("test", "interval", "timeout", "retries",
                                                  "start_period", "start_interval")}


def _checked(project, path, parse, *args):
    try:
        return parse(*args, ".".join(map(str, path)))
    except BadValue as e:
        raise project.error(path, _message(e)) from None


def _list(s, key):
    value = s.svc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise s.error(key, "must be a list")
    return value


def _bool(s, key, value):
    if not isinstance(value, bool):
        raise s.error(key, f"{value!r} is not true or false")
    return value


def _argv(s, key, value):
    """compose's command/entrypoint: a list, or a string split as a shell would (not run by
    a shell); an empty one clears the image's."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as e:
            raise s.error(key, f"{value!r}: {e}") from None
    if isinstance(value, list) and all(isinstance(a, (str, int, float)) for a in value):
        return [str(a) for a in value]
    raise s.error(key, "a string or a list of strings")


def _mapping(s, key):
    """A list of K=V (or K) or a mapping -> {K: V}."""
    value = s.svc.get(key)
    if isinstance(value, dict):
        return {str(k): "" if v is None else _scalar(v) for k, v in value.items()}
    if isinstance(value, list):
        out = {}
        for item in value:
            k, _, v = str(item).partition("=")
            out[k] = v
        return out
    raise s.error(key, "a list of KEY=VALUE or a mapping")


def _scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _environment(s):
    """env_file values, then environment over them; a name without a value takes the
    project environment's (and is left out when unset there)."""
    env = {}
    files = s.svc.get("env_file")
    if files is not None:
        for i, item in enumerate([files] if isinstance(files, (str, dict)) else files):
            required = True
            if isinstance(item, dict):
                required = item.get("required", True)
                item = item.get("path")
            path = os.path.join(s.project.directory, os.path.expanduser(str(item)))
            if not os.path.exists(path) and not required:
                continue
            from kago.manager.compose import yamlfile
            file, line = s.project.where(s.base + ("env_file",))
            try:
                env.update(yamlfile.read_env_file(path, str(item)))
            except ComposeError as e:
                raise ComposeError(str(e).replace(f"{item}: ", "", 1),
                                   file, line, f"services.{s.name}.env_file") from None
    value = s.svc.get("environment")
    if value is None:
        pass
    elif isinstance(value, dict):
        for k, v in value.items():
            if v is None:
                if k in s.project.env:
                    env[str(k)] = s.project.env[k]
            else:
                env[str(k)] = _scalar(v)
    elif isinstance(value, list):
        for item in value:
            k, eq, v = str(item).partition("=")
            if eq:
                env[k] = v
            elif k in s.project.env:
                env[k] = s.project.env[k]
    else:
        raise s.error("environment", "a list of KEY=VALUE or a mapping")
    out = []
    for k, v in env.items():
        if not k or any(c.isspace() for c in k):
            raise s.error(("environment", k), f'invalid environment variable "{k}"')
        out.append(f"{k}={v}")
    return out


def _ports(s, i, item):
    """Short syntax ([IP:]HOST:CONTAINER[/PROTO], ranges HOST-HOST:C-C) or the long
    {target, published, host_ip, protocol}; texts as kago run -p takes them."""
    key = ("ports", i)
    if isinstance(item, dict):
        unknown = set(item) - {"target", "published", "host_ip", "protocol", "mode", "name",
                               "app_protocol"}
        if unknown:
            raise s.error(key + (sorted(unknown)[0],), "not supported by kago compose")
        if item.get("published") in (None, ""):
            raise s.error(key, "kago publishes a port only with a host port: give published:")
        host = str(item.get("host_ip") or "")
        host = f"[{host}]" if ":" in host else host
        text = f"{host + ':' if host else ''}{item['published']}:{item.get('target')}" \
               f"/{item.get('protocol') or 'tcp'}"
        texts = [text]
        shown = json.dumps(item)
    else:
        shown = str(item)
        texts = _expand_ports(s, key, shown)
    out = []
    for text in texts:
        try:
            V.port(text, "ports")
        except BadValue as e:
            detail = _message(e).split("': ", 1)[-1] if _message(e).startswith(
                "port mapping '") else _message(e)
            raise s.error(key, f'"{shown}" is not a port: {detail}') from None
        out.append(text)
    return out


def _expand_ports(s, key, text):
    spec, slash, proto = text.partition("/")
    if spec.startswith("["):
        ip, _, rest = spec[1:].partition("]:")
        ip = f"[{ip}]:"
    else:
        parts = spec.rsplit(":", 2)
        ip = parts[0] + ":" if len(parts) == 3 else ""
        rest = ":".join(parts[-2:]) if len(parts) >= 2 else parts[0]
    if ":" not in rest:
        raise s.error(key, f'"{text}": kago publishes a port only with a host port '
                           f"(HOST:CONTAINER)")
    host, container = rest.split(":", 1)
    if "-" not in host and "-" not in container:
        return [text]

    def span(part):
        a, _, b = part.partition("-")
        try:
            lo, hi = int(a), int(b or a)
        except ValueError:
            raise s.error(key, f'"{text}" is not a port') from None
        return list(range(lo, hi + 1))
    hosts, containers = span(host), span(container)
    if len(hosts) != len(containers):
        raise s.error(key, f'"{text}": the host and container ranges differ in length')
    return [f"{ip}{h}:{c}{slash}{proto}" for h, c in zip(hosts, containers)]


def _volume(s, i, item):
    key = ("volumes", i)
    project = s.project
    if isinstance(item, dict):
        unknown = set(item) - {"type", "source", "target", "read_only", "bind", "volume",
                               "tmpfs", "consistency"}
        if unknown:
            raise s.error(key + (sorted(unknown)[0],), "not supported by kago compose")
        kind = item.get("type")
        target = item.get("target")
        if kind not in ("bind", "volume", "tmpfs"):
            raise s.error(key + ("type",), f'"{kind}": use bind, volume or tmpfs')
        dest = _checked(project, s.base + key + ("target",), V.destination, target)
        readonly = bool(item.get("read_only"))
        if kind == "tmpfs":
            opts = ["nosuid", "nodev", "mode=1777"]
            size = (item.get("tmpfs") or {}).get("size")
            if size is not None:
                opts.append(f"size={_checked(project, s.base + key, V.size, size)}")
            mode = (item.get("tmpfs") or {}).get("mode")
            if mode is not None:
                opts[2] = f"mode={mode:o}" if isinstance(mode, int) else f"mode={mode}"
            return Mount("tmpfs", dest, "tmpfs", readonly, tuple(opts))
        source = str(item.get("source") or "")
        if kind == "bind":
            prop = (item.get("bind") or {}).get("propagation")
            src = _bind_source(s, source)
            if (item.get("bind") or {}).get("create_host_path"):
                s.make_dirs.append(src)
            return Mount("bind", dest, src, readonly, (str(prop),) if prop else ())
        return Mount("volume", dest, _volume_name(s, key + ("source",), source), readonly)
    text = str(item)
    parts = text.split(":")
    if len(parts) == 1:
        raise s.error(key, f'"{text}": anonymous volumes are not supported (name one: '
                           f"NAME:{text}, declared under volumes:)")
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise s.error(key, f'"{text}" is not a volume: use SOURCE:TARGET[:ro]')
    source = parts[0]
    mode = parts[2] if len(parts) == 3 else ""
    if source.startswith(("/", ".", "~")):
        src = _bind_source(s, source)
        s.make_dirs.append(src)  # compose makes a missing bind source of the short syntax
        text = f"{src}:{parts[1]}" + (f":{mode}" if mode else "")
        m = _checked(project, s.base + key, V.volume, text)
        return m
    name = _volume_name(s, key, source)
    m = _checked(project, s.base + key, V.volume,
                 f"{name}:{parts[1]}" + (f":{mode.replace('nocopy', '').strip(',')}"
                                         if mode.replace("nocopy", "").strip(",") else ""))
    return m


def _bind_source(s, source):
    if not source:
        raise s.error("volumes", "a bind mount needs a source")
    path = os.path.expanduser(source)
    return os.path.normpath(os.path.join(s.project.directory, path))


def _volume_name(s, key, source):
    volume = s.plan.volumes.get(source)
    if volume is None:
        raise s.error(key, f'service "{s.name}" refers to undefined volume {source} '
                           f"(declare it under the top-level volumes:)")
    return volume.name


def _depends(s):
    value = s.svc.get("depends_on")
    out = []
    if value is None:
        return out
    if isinstance(value, list):
        items = [(str(v), {}, (i,)) for i, v in enumerate(value)]
    elif isinstance(value, dict):
        items = [(str(k), v or {}, (k,)) for k, v in value.items()]
    else:
        raise s.error("depends_on", "a list of services or a mapping")
    for dep, spec, sub in items:
        key = ("depends_on",) + sub
        if dep not in s.project.services:
            raise s.error(key, f'service "{s.name}" depends on undefined service "{dep}"')
        if dep == s.name:
            raise s.error(key, f'service "{s.name}" depends on itself')
        if not isinstance(spec, dict):
            raise s.error(key, "a mapping with condition:")
        condition = spec.get("condition", "service_started")
        if condition not in CONDITIONS:
            raise s.error(key + ("condition",), f'"{condition}": use '
                                                + ", ".join(CONDITIONS))
        if condition == "service_healthy":
            if not _has_health_field():
                raise s.error(key + ("condition",),
                              "service_healthy needs healthchecks, which this kago does not "
                              "run yet: use service_started")
            hc = (s.project.services[dep] or {}).get("healthcheck") or {}
            if hc.get("disable") or hc.get("test") in (["NONE"], "NONE"):
                raise s.error(key + ("condition",), f'service "{dep}" has its healthcheck '
                                                    f"disabled: nothing to wait for")
        out.append((dep, condition))
    return out


def _service_network(s):
    """(project network keys, network option, ip, aliases)."""
    svc = s.svc
    mode = svc.get("network_mode")
    if mode is not None and svc.get("networks") is not None:
        raise s.error("network_mode", "network_mode and networks cannot be used together")
    if mode is not None:
        mode = str(mode)
        if mode.startswith("service:"):
            other = mode.split(":", 1)[1]
            if other not in s.project.services:
                raise s.error("network_mode", f'undefined service "{other}"')
            return [], "container:" + _other_container(s, other), "", []
        if mode in ("host", "none", "bridge") or mode.startswith("container:"):
            return [], mode, "", []
        raise s.error("network_mode", f'"{mode}": use host, none, bridge, service:NAME or '
                                      f"container:NAME")
    value = svc.get("networks")
    if value is None:
        items = {"default": {}}
    elif isinstance(value, list):
        items = {str(k): {} for k in value}
    elif isinstance(value, dict):
        items = {str(k): v or {} for k, v in value.items()}
    else:
        raise s.error("networks", "a list of networks or a mapping")
    if len(items) != 1:
        raise s.error("networks", f"kago attaches a container to one network ({len(items)} "
                                  f"given): {', '.join(items)}")
    (key, spec), = items.items()
    if key not in s.plan.networks:
        raise s.error(("networks", key), f'service "{s.name}" refers to undefined network '
                                         f"{key} (declare it under the top-level networks:)")
    if not isinstance(spec, dict):
        raise s.error(("networks", key), "a mapping (aliases, ipv4_address)")
    unknown = set(spec) - {"aliases", "ipv4_address"}
    if unknown:
        raise s.error(("networks", key, sorted(unknown)[0]), "not supported by kago compose")
    aliases = [s.name] + [str(a) for a in spec.get("aliases") or ()]
    return [key], s.plan.networks[key].name, str(spec.get("ipv4_address") or ""), aliases


def _other_container(s, other):
    svc = s.project.services.get(other) or {}
    return str(svc.get("container_name") or container_name(s.project.name, other))


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(s, key, value):
    """compose's durations: 10s, 1m30s, 500ms, 1h; a bare number is seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text, total, number = str(value).strip(), 0.0, ""
    i = 0
    if not text:
        raise s.error(key, f'"{value}" is not a duration (10s, 1m30s, 500ms)')
    while i < len(text):
        if text[i].isdigit() or text[i] == ".":
            number += text[i]
            i += 1
            continue
        unit = next((u for u in ("us", "ms", "h", "m", "s") if text.startswith(u, i)), None)
        if unit is None or not number:
            raise s.error(key, f'"{value}" is not a duration (10s, 1m30s, 500ms)')
        try:
            total += float(number) * _UNITS[unit]
        except ValueError:
            raise s.error(key, f'"{value}" is not a duration (10s, 1m30s, 500ms)') from None
        number, i = "", i + len(unit)
    if number:
        raise s.error(key, f'"{value}" is not a duration: give a unit (10s, 1m30s, 500ms)')
    return total


def _ulimits(s):
    value = s.svc.get("ulimits")
    if not isinstance(value, dict):
        raise s.error("ulimits", "a mapping: nofile: {soft: N, hard: N} or nproc: N")
    out = {}
    for name, spec in value.items():
        if isinstance(spec, dict):
            if set(spec) - {"soft", "hard"} or "soft" not in spec or "hard" not in spec:
                raise s.error(("ulimits", name), "give soft: and hard:")
            out[name] = (spec["soft"], spec["hard"])
        else:
            out[name] = spec
    return out


def _limits(s):
    opts, svc = s.opts, s.svc
    deploy = svc.get("deploy")
    limits = {}
    if deploy is not None:
        if not isinstance(deploy, dict):
            raise s.error("deploy", "must be a mapping")
        for k in deploy:
            if k != "resources":
                raise s.error(("deploy", k), "not supported by kago compose (only "
                                             "deploy.resources.limits)")
        resources = deploy.get("resources") or {}
        for k in resources:
            if k != "limits":
                raise s.error(("deploy", "resources", k), "not supported by kago compose "
                                                          "(only deploy.resources.limits)")
        limits = resources.get("limits") or {}
        for k in limits:
            if k not in ("cpus", "memory", "pids"):
                raise s.error(("deploy", "resources", "limits", k),
                              "not supported: use cpus, memory or pids")
    if "cpus" in limits or "cpus" in svc:
        opts["cpus"] = limits.get("cpus", svc.get("cpus"))
    if "memory" in limits or "mem_limit" in svc:
        opts["memory"] = limits.get("memory", svc.get("mem_limit"))
    if "pids" in limits or "pids_limit" in svc:
        opts["pids_limit"] = limits.get("pids", svc.get("pids_limit"))


def _healthcheck(s):
    hc = s.svc.get("healthcheck")
    if hc is None:
        return None
    if not isinstance(hc, dict):
        raise s.error("healthcheck", "must be a mapping")
    for k in hc:
        if k not in ("test", "interval", "timeout", "retries", "start_period", "disable",
                     "start_interval"):
            raise s.error(("healthcheck", k), "not supported by kago compose")
    if hc.get("disable"):
        return Healthcheck(("NONE",))
    test = hc.get("test")
    if isinstance(test, str):
        test = ("CMD-SHELL", test)
    elif isinstance(test, list) and test and all(isinstance(t, str) for t in test):
        if test[0] not in ("CMD", "CMD-SHELL", "NONE"):
            raise s.error(("healthcheck", "test"), 'a list starts with "CMD", "CMD-SHELL" '
                                                   'or "NONE"')
        test = tuple(test)
    else:
        raise s.error(("healthcheck", "test"), 'a string or a list ["CMD", ...]')
    values = {}
    for k in ("interval", "timeout", "start_period"):
        if k in hc:
            values[k] = _duration(s, ("healthcheck", k), hc[k])
    if "retries" in hc:
        r = hc["retries"]
        if not isinstance(r, int) or isinstance(r, bool) or r < 1:
            raise s.error(("healthcheck", "retries"), f"{r!r}: a whole number >= 1")
        values["retries"] = r
    return Healthcheck(test, **values)


def _compose_labels(project, name, svc, depends):
    digest = hashlib.sha256(json.dumps(svc, sort_keys=True, default=str).encode()).hexdigest()
    return {f"{LABEL}.project": project.name, f"{LABEL}.service": name,
            f"{LABEL}.container-number": "1", f"{LABEL}.oneoff": "False",
            f"{LABEL}.config-hash": digest,
            f"{LABEL}.project.working_dir": project.directory,
            f"{LABEL}.project.config_files": ",".join(
                os.path.abspath(os.path.join(project.directory, f)) if not os.path.isabs(f)
                else f for f in project.files),
            f"{LABEL}.depends_on": ",".join(f"{d}:{c}:false" for d, c in depends)}


def _order(project, services):
    """depends_on order (a cycle is an error naming it); file order among equals."""
    order, state = [], {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = trail[trail.index(name):] + [name]
            raise project.error(("services", name, "depends_on"),
                                "dependency cycle: " + " -> ".join(cycle))
        state[name] = "visiting"
        for dep, _c in services[name].depends_on:
            visit(dep, trail + [name])
        state[name] = "done"
        order.append(name)
    for name in services:
        visit(name, [])
    return order
