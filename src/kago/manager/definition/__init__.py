"""A container's definition: one typed, frozen value for everything the manager is asked for.

    from kago.manager import definition as D

    d = D.from_flags(args)                  # kago run/create's flags (errors name the flag)
    d = D.from_container(c, source_dir)     # a definition file's Container (file:line)
    d = D.from_options(image, cmd, **opts)  # kago.Client's keyword options (the option)
    spec.build(d, cid=..., rootfs=..., ...) # -> the OCI config.json (pure)
    record["definition"] = D.to_json(d)     # and D.stored(record) -> the Definition again

Modules: parts.py (Mount, Port, Network, IdMapping, Limits, Rlimit, Capabilities,
RestartPolicy, Namespace, LogOptions, OciHook), model.py (Definition), values.py and
resources.py (the parsers of what users write), check.py (rules across fields),
from_flags.py / from_dsl.py / from_options.py / from_config.py (the builders: flags,
definition files, keyword options, records of the previous format), serial.py (JSON with a
format version).
"""

from kago.manager.definition.from_config import from_config
from kago.manager.definition.from_dsl import from_container
from kago.manager.definition.from_flags import from_flags
from kago.manager.definition.from_options import from_options
from kago.manager.definition.model import DEFAULT_CAPS, LIMIT_FIELDS, RESTART_FIELDS, Definition
from kago.manager.definition.parts import (
    INDEPENDENT,
    TMPFS_OPTIONS,
    Capabilities,
    CgroupKey,
    IdMapping,
    IdRange,
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
from kago.manager.definition.serial import FORMAT, from_json, stored, to_json

__all__ = ["DEFAULT_CAPS", "FORMAT", "INDEPENDENT", "LIMIT_FIELDS", "RESTART_FIELDS",
           "TMPFS_OPTIONS", "Capabilities", "CgroupKey", "Definition", "IdMapping", "IdRange",
           "Limits", "LogOptions", "Mount", "Namespace", "Network", "OciHook", "Port",
           "RestartPolicy", "Rlimit", "from_config", "from_container", "from_flags",
           "from_json", "from_options", "stored", "to_json"]
