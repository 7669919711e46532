"""A resolved compose project (load.py) -> the manager's typed values: one Definition per
service (kago.manager.definition's ``from_options``, the same builder as ``kago.Client``),
and the project's networks and volumes.

    plan = translate(project)
    plan.services["web"].definition     # a Definition named PROJECT-web-1, compose's labels
    plan.order                          # services in depends_on order
    plan.networks, plan.volumes         # what ``up`` makes and ``down`` removes

Pure: nothing on the host is touched (the images are checked, and built, by up.py).
Every error is one ComposeError naming the file, the line and the field.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field

from kago.manager.compose import fields as F
from kago.manager.compose import links as L
from kago.manager.compose import mounts as M
from kago.manager.compose import top as T
from kago.manager.compose.errors import ComposeError
from kago.manager.compose.fields import Build, Healthcheck
from kago.manager.compose.links import CONDITIONS, container_name
from kago.manager.compose.top import NetworkPlan, VolumePlan
from kago.manager.definition import values as V
from kago.manager.errors import BadValue

__all__ = ["CONDITIONS", "LABEL", "Build", "Healthcheck", "NetworkPlan", "Plan", "Service",
           "VolumePlan", "container_name", "translate"]

LABEL = "com.docker.compose"

# service keys -> what they are; "ignored": accepted, no effect in kago (said in docs)
SERVICE_KEYS = (
    "image", "build", "command", "entrypoint", "environment", "env_file", "ports", "expose",
    "volumes", "tmpfs", "depends_on", "healthcheck", "networks", "network_mode", "restart",
    "user", "working_dir", "hostname", "labels", "container_name", "deploy", "mem_limit",
    "cpus", "pids_limit", "stop_signal", "stop_grace_period", "read_only", "cap_add",
    "cap_drop", "sysctls", "ulimits", "init", "privileged", "devices", "dns", "dns_search",
    "dns_opt", "extra_hosts", "shm_size", "group_add", "pull_policy")

# compose's pull_policy values -> kago's: "missing" pulls an absent image (from a registry the
# name gives), "always" at every up, "never" not at all, "build" builds at every up
PULL_POLICIES = {"missing": "missing", "if_not_present": "missing", "always": "always",
                 "never": "never", "build": "build"}


@dataclass(frozen=True)
class Service:
    name: str
    definition: object              # kago.manager.definition.Definition
    depends_on: tuple[tuple[str, str], ...] = ()    # (service, condition)
    build: Build | None = None
    healthcheck: Healthcheck | None = None
    networks: tuple[str, ...] = ()                  # project network keys it uses
    make_dirs: tuple[str, ...] = ()                 # bind sources compose makes if missing
    more_networks: tuple = ()       # (network, ip, aliases) connected after the first
    pull_policy: str = "missing"    # missing | always | never | build


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


def translate(project):
    plan = Plan(project)
    plan.volumes = T.volumes(project)
    plan.networks = T.networks(project)
    for name, svc in project.services.items():
        plan.services[name] = _service(project, plan, name, svc)
    plan.order = _order(project, plan.services)
    return plan


# --- the top level --------------------------------------------------------------------------------


# --- a service ------------------------------------------------------------------------------------

class _Service:
    """One service's fields -> from_options's keyword options, each error at its line."""

    def __init__(self, project, plan, name, svc):
        self.project, self.plan, self.name, self.svc = project, plan, name, svc
        self.base = ("services", name)
        self.opts = {}
        self.make_dirs = []
        self.more_networks = []

    def error(self, key, message):
        path = self.base + (key if isinstance(key, tuple) else (key,))
        return self.project.error(path, message)

    def get(self, key, default=None):
        value = self.svc.get(key)
        return default if value is None else value


def _service(project, plan, name, svc):
    base = ("services", name)
    if not isinstance(svc, dict):
        raise project.error(base, "a service must be a mapping")
    s = _Service(project, plan, name, svc)
    for key in svc:
        if key not in SERVICE_KEYS and not key.startswith("x-"):
            raise s.error(key, "not supported by kago compose (docs/compose.md lists the "
                               "keys)")
    build = F.build(s)
    image = s.get("image")
    if image is None and build is None:
        raise s.error((), "give image: or build:")
    image = str(image) if image is not None else f"{project.name}-{name}"
    policy = _pull_policy(s, build)
    opts = s.opts
    opts["name"] = str(s.get("container_name") or container_name(project.name, name))
    F.checked(project, base + ("container_name",), V.name, opts["name"])
    for key, option in (("command", "command"), ("entrypoint", "entrypoint")):
        if key in svc:
            opts[option] = F.argv(s, key, svc[key])
    opts["env"] = F.environment(s)
    opts["ports"] = [p for i, item in enumerate(s.get("ports", [])) for p in L.ports(s, i, item)]
    mounts = [M.volume(s, i, item) for i, item in enumerate(F.list_of(s, "volumes"))]
    tmpfs = s.get("tmpfs", [])
    for i, item in enumerate([tmpfs] if isinstance(tmpfs, str) else tmpfs):
        mounts.append(F.checked(project, base + ("tmpfs", i), V.tmpfs, str(item)))
    opts["mounts"] = mounts
    depends = L.depends_on(s)
    networks, network, ip, aliases = L.service_network(s)
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
        seconds = F.duration(s, "stop_grace_period", svc["stop_grace_period"])
        opts["stop_timeout"] = int(-(-seconds // 1))
    for key in ("read_only",):
        if key in svc:
            opts[key] = F.boolean(s, key, svc[key])
    for key in ("cap_add", "cap_drop"):
        if key in svc:
            opts[key] = [str(c) for c in F.list_of(s, key)]
    if "sysctls" in svc:
        opts["sysctls"] = F.key_values(s, "sysctls")
    if "ulimits" in svc:
        opts["rlimits"] = F.ulimits(s)
    _docker_keys(s, svc, opts)
    F.limits(s)
    if "init" in svc and F.boolean(s, "init", svc["init"]):
        if not F.has_field("init"):
            raise s.error("init", "not supported yet: kago has no init process to run as "
                                  "PID 1 (run one from the image, e.g. command: [tini, --, "
                                  "...])")
        opts["init"] = True
    healthcheck = F.healthcheck(s)
    labels = F.key_values(s, "labels") if "labels" in svc else {}
    labels.update(_compose_labels(project, name, svc, depends))
    opts["labels"] = labels
    if healthcheck is not None and F.has_health_field():
        opts["healthcheck"] = F.health_option(svc["healthcheck"])
    elif healthcheck is not None and healthcheck.test != ("NONE",):
        s.project.warn(f"services.{name}.healthcheck: not run: this kago has no healthchecks")
    opts["pull"] = "never"  # up pulls before it makes anything; create never does
    definition = _definition(s, image, opts)
    return Service(name, definition, tuple(depends), build, healthcheck, tuple(networks),
                   tuple(s.make_dirs), tuple(s.more_networks), policy)


def _pull_policy(s, build):
    value = s.svc.get("pull_policy")
    if value is None:
        return "missing"
    policy = PULL_POLICIES.get(str(value))
    if policy is None:
        raise s.error("pull_policy", f"{value!r}: use one of {', '.join(PULL_POLICIES)}")
    if policy == "build" and build is None:
        raise s.error("pull_policy", "build needs a build: section")
    return policy


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
                "image": "image", "healthcheck": "healthcheck", "init": "init",
                "privileged": "privileged", "devices": "devices", "dns": "dns",
                "dns_search": "dns_search", "dns_options": "dns_opt",
                "extra_hosts": "extra_hosts", "shm_size": "shm_size", "group_add": "group_add",
                "expose": "expose"}


def _docker_keys(s, svc, opts):
    """The keys that are docker run's later flags, by from_options's names: privileged,
    devices, dns, dns_search, dns_opt, extra_hosts (list or mapping), shm_size, group_add,
    expose."""
    if "privileged" in svc:
        opts["privileged"] = F.boolean(s, "privileged", svc["privileged"])
    for key, option in (("dns", "dns"), ("dns_search", "dns_search")):
        if key in svc:   # a string or a list, as compose takes them
            value = svc[key]
            opts[option] = [str(value)] if isinstance(value, str) else \
                [str(v) for v in F.list_of(s, key)]
    for key, option in (("dns_opt", "dns_options"), ("devices", "devices"),
                        ("group_add", "group_add"), ("expose", "expose")):
        if key in svc:
            opts[option] = [str(v) for v in F.list_of(s, key)]
    if "extra_hosts" in svc:
        hosts = svc["extra_hosts"]
        opts["extra_hosts"] = {str(k): str(v) for k, v in hosts.items()} \
            if isinstance(hosts, dict) else [str(h) for h in F.list_of(s, "extra_hosts")]
    if "shm_size" in svc:
        opts["shm_size"] = F.scalar(svc["shm_size"])


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
        raise s.error(key, F.message(e)) from None


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
