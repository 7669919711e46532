"""A container's definition: one typed, frozen value for everything the manager is asked for.

    from kago.manager import definition as D

    d = D.from_flags(args)                  # kago run/create's flags (errors name the flag)
    d = D.from_container(c, source_dir)     # a definition file's Container (file:line)
    d = D.from_options(image, cmd, **opts)  # kago.Client's keyword options (the option)
    spec.build(d, cid=..., rootfs=..., ...) # -> the OCI config.json (pure)
    record["definition"] = D.to_json(d)     # and D.stored(record) -> the Definition again
    D.of(record).auto_remove                # a record without one: the default Definition

Modules: parts.py (Mount, Port, Network, IdMapping, Limits, Rlimit, Capabilities,
RestartPolicy, Namespace, LogOptions, OciHook, Healthcheck), model.py (Definition and the
rules across its fields), values.py, docker_values.py, resources.py and health.py (the parsers
of what users write), from_flags.py / from_dsl.py / from_options.py / from_config.py (the
builders: flags, definition files, keyword options, records of the previous format), serial.py
(JSON with a format version).

The names are loaded on first use (a module ``__getattr__``): a reader of records (``kago
ps``, the supervisor) loads the model and serial.py, not the parsers and builders.
"""

_WHERE = {
    "DEFAULT_CAPS": "model", "LIMIT_FIELDS": "model", "RESTART_FIELDS": "model",
    "Definition": "model",
    "INDEPENDENT": "parts", "TMPFS_OPTIONS": "parts", "Capabilities": "parts",
    "CgroupKey": "parts", "IdMapping": "parts", "IdRange": "parts", "Limits": "parts",
    "LogOptions": "parts", "Mount": "parts", "Namespace": "parts", "Network": "parts",
    "OciHook": "parts", "Port": "parts", "RestartPolicy": "parts", "Rlimit": "parts",
    "FORMAT": "serial", "from_json": "serial", "of": "serial", "stored": "serial",
    "to_json": "serial", "Healthcheck": "parts", "healthcheck": "health",
    "from_config": "from_config", "from_container": "from_dsl", "from_flags": "from_flags",
    "from_options": "from_options",
    "Device": "parts", "Dns": "parts", "ExtraHost": "parts", "PULL_POLICIES": "parts",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
