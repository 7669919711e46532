"""The top-level ``volumes:`` and ``networks:`` -> what ``up`` makes and ``down`` removes
(names PROJECT_KEY unless ``name:``; ``external`` ones are only used). Pure.
"""

from dataclasses import dataclass

from kago.manager.compose import fields as F
from kago.manager.definition import values as V


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


def volumes(project):
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
        F.checked(project, path, V.name, name)
        out[key] = VolumePlan(key, name, bool(spec.get("external")))
    return out


def networks(project):
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
