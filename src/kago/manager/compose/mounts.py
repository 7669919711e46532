"""A service's ``volumes:`` (short and long syntax) -> Mounts: named volumes declared at the
top level, bind mounts relative to the project directory, tmpfs. Pure.
"""

import os

from kago.manager.compose import fields as F
from kago.manager.definition import Mount
from kago.manager.definition import values as V


def volume(s, i, item):
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
        dest = F.checked(project, s.base + key + ("target",), V.destination, target)
        readonly = bool(item.get("read_only"))
        if kind == "tmpfs":
            opts = ["nosuid", "nodev", "mode=1777"]
            size = (item.get("tmpfs") or {}).get("size")
            if size is not None:
                opts.append(f"size={F.checked(project, s.base + key, V.size, size)}")
            mode = (item.get("tmpfs") or {}).get("mode")
            if mode is not None:
                opts[2] = f"mode={mode:o}" if isinstance(mode, int) else f"mode={mode}"
            return Mount("tmpfs", dest, "tmpfs", readonly, tuple(opts))
        source = str(item.get("source") or "")
        if kind == "bind":
            prop = (item.get("bind") or {}).get("propagation")
            src = bind_source(s, source)
            if (item.get("bind") or {}).get("create_host_path"):
                s.make_dirs.append(src)
            return Mount("bind", dest, src, readonly, (str(prop),) if prop else ())
        return Mount("volume", dest, volume_name(s, key + ("source",), source), readonly)
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
        src = bind_source(s, source)
        s.make_dirs.append(src)  # compose makes a missing bind source of the short syntax
        text = f"{src}:{parts[1]}" + (f":{mode}" if mode else "")
        m = F.checked(project, s.base + key, V.volume, text)
        return m
    name = volume_name(s, key, source)
    m = F.checked(project, s.base + key, V.volume,
                 f"{name}:{parts[1]}" + (f":{mode.replace('nocopy', '').strip(',')}"
                                         if mode.replace("nocopy", "").strip(",") else ""))
    return m


def bind_source(s, source):
    if not source:
        raise s.error("volumes", "a bind mount needs a source")
    path = os.path.expanduser(source)
    return os.path.normpath(os.path.join(s.project.directory, path))


def volume_name(s, key, source):
    volume = s.plan.volumes.get(source)
    if volume is None:
        raise s.error(key, f'service "{s.name}" refers to undefined volume {source} '
                           f"(declare it under the top-level volumes:)")
    return volume.name
