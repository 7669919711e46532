"""docker's events: what the manager did, one JSON line each, in ROOT/events.jsonl.

Every kago command and the supervisor append to the same log as they act, whether or not
anybody listens, so ``kago events --since`` shows what happened before it was asked:

    container  create start die (exitCode) stop kill (signal) destroy rename (oldName)
               pause unpause oom "health_status: STATUS" attach commit
               "exec_create: CMD" "exec_start: CMD" exec_die (execID, exitCode)
    image      import pull push tag untag delete save load
    network    create destroy connect disconnect (container: a container's networks as
               create or a start attaches them and an end or rm detaches them, and the
               network connect/disconnect verbs)
    volume     create destroy

A line holds docker's event document without the legacy fields (``status``/``id``/``from``:
``docker_doc`` adds them when it is shown):

    {"Type": "container", "Action": "start", "Actor": {"ID": "3f2a...", "Attributes":
     {"image": "busybox", "name": "web"}}, "scope": "local", "time": 1796626800,
     "timeNano": 1796626800000000000}

Writes are cheap and never fail the action they describe: the log is opened with O_APPEND
(0600: attributes carry labels) and each event is one write(2) of one line, so concurrent
writers never interleave; no fsync. When the log passes ``MAX_BYTES`` the writer that finds
it so (under an flock of the log, checked again under it) renames it to ``events.jsonl.1``
(replacing the previous one), so the log keeps between ``MAX_BYTES`` and twice that: docker
keeps 256 events in memory, this keeps thousands, and across restarts. ``follow`` reads the
old file, then the current one, then polls for more (and for a rotation) until ``until``.

This module imports nothing heavy: the services call it inline.
"""

import os
import time

from kago.errors import KagoError
from kago.jsonio import std_dumps, std_loads

NAME = "events.jsonl"
MAX_BYTES = 2 << 20
POLL = 0.2


def path(paths):
    return os.path.join(paths.root, NAME)


# --- writing ------------------------------------------------------------------------------

def emit(paths, type_, action, actor, attributes=None, now_ns=None, max_bytes=None):
    """Append one event; returns its document (None if it could not be written)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    doc = {"Type": type_, "Action": action,
           "Actor": {"ID": actor, "Attributes": {k: str(v) for k, v in
                                                 (attributes or {}).items() if v is not None}},
           "scope": "local", "time": now_ns // 1_000_000_000, "timeNano": now_ns}
    data = (std_dumps(doc, separators=(",", ":")) + "\n").encode()
    log = path(paths)
    try:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        os.write(fd, data)
        _rotate(fd, log, MAX_BYTES if max_bytes is None else max_bytes)
    except OSError:
        return None
    finally:
        os.close(fd)
    return doc


def _rotate(fd, log, max_bytes):
    if os.fstat(fd).st_size <= max_bytes:
        return
    import fcntl
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:  # another writer may have rotated it while we waited: ours is then the old one
        st = os.fstat(fd)
        if st.st_size > max_bytes and os.stat(log).st_ino == st.st_ino:
            os.rename(log, log + ".1")
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def container(paths, action, record, **attributes):
    """A container event; its Attributes are docker's: image, name, its labels, then
    ``attributes`` (exitCode, signal, oldName...)."""
    definition = record.get("definition") or {}
    attrs = dict(_labels(definition.get("labels")))
    attrs["image"] = record.get("image") or definition.get("rootfs") or ""
    attrs["name"] = record.get("name", "")
    attrs.update(attributes)
    return emit(paths, "container", action, record["id"], attrs)


def started(paths, record, attached=False):
    """A start (``attached``: a client reads its output, as ``docker run`` without -d: an
    attach first, docker's order)."""
    if attached:
        container(paths, "attach", record)
    return container(paths, "start", record)


def died(paths, record, code, oom=False):
    """An end: oom first when the kernel killed it for memory, then die with its exitCode."""
    if oom:
        container(paths, "oom", record)
    return container(paths, "die", record, exitCode=code)


def exec_started(paths, record, command):
    """docker's exec_create and exec_start (the command in the action); its exec ID, for
    the exec_die at its end."""
    import secrets
    eid = secrets.token_hex(32)
    what = " ".join(command if isinstance(command, (list, tuple)) else [str(command)])
    container(paths, f"exec_create: {what}", record, execID=eid)
    container(paths, f"exec_start: {what}", record, execID=eid)
    return eid


def _labels(labels):
    if isinstance(labels, dict):
        return labels.items()
    return [tuple(p) if isinstance(p, (list, tuple)) else str(p).partition("=")[::2]
            for p in labels or ()]


def image(paths, action, actor, name=None):
    return emit(paths, "image", action, actor, {"name": name} if name else None)


def network(paths, action, name, container=None):
    import hashlib  # kago.manager.networks.net_id's: a stable 12 hex digits from the name
    return emit(paths, "network", action, hashlib.sha256(name.encode()).hexdigest()[:12],
                {"container": container, "name": name, "type": "bridge"})


def networks(paths, record, action):
    """connect or disconnect events for every bridge network ``record`` holds: its first
    (``network``, when create or a start after a release attaches it, and when an end or rm
    detaches it) and those ``network connect`` added."""
    att = record.get("network") or {}
    names = [att["network"]] if att.get("network") and att.get("mode") == "bridge" else []
    names += [c["network"] for c in record.get("connections") or () if c.get("network")]
    for name in names:
        network(paths, action, name, record["id"])


def volume(paths, action, name):
    return emit(paths, "volume", action, name, {"driver": "local"})


# --- reading ------------------------------------------------------------------------------

def read(paths, since=None, until=None):
    """The logged events from ``since`` to ``until`` (unix times, None: no bound), oldest
    first; no following."""
    return follow(paths, since, until, wait=False)


def follow(paths, since=None, until=None, wait=True, poll=POLL, stop=None):
    """The logged events from ``since``, then new ones as they are written, until ``until``
    has passed (or ``stop()`` is true, checked every ``poll`` s); ``wait`` False: only what
    is logged now."""
    log = path(paths)
    lo = None if since is None else int(since * 1e9)
    hi = None if until is None else int(until * 1e9)

    def wanted(docs):
        for doc in docs:
            t = doc.get("timeNano", 0)
            if (lo is None or t >= lo) and (hi is None or t <= hi):
                yield doc

    fd = _open(log)
    try:
        ino = os.fstat(fd).st_ino if fd is not None else None
        old = _open(log + ".1")
        if old is not None:  # the previous log (not ours if it was rotated meanwhile)
            try:
                if os.fstat(old).st_ino != ino:
                    yield from wanted(_lines(old, bytearray()))
            finally:
                os.close(old)
        buf = bytearray()
        if fd is not None:
            yield from wanted(_lines(fd, buf))
        while wait:
            if hi is not None and time.time_ns() > hi:
                return
            if stop is not None and stop():
                return
            try:
                now_ino = os.stat(log).st_ino
            except FileNotFoundError:
                now_ino = None
            if fd is not None:
                yield from wanted(_lines(fd, buf))  # the rest of a rotated one, too
            if now_ino != ino and now_ino is not None:
                if fd is not None:
                    os.close(fd)
                fd, buf = _open(log), bytearray()
                ino = os.fstat(fd).st_ino if fd is not None else None
                continue
            time.sleep(poll)
    finally:
        if fd is not None:
            os.close(fd)


def _open(name):
    try:
        return os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _lines(fd, buf):
    """The complete lines readable from ``fd`` now, as documents; a partial last line stays
    in ``buf`` for the next call."""
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        buf += chunk
    end = buf.rfind(b"\n")
    if end < 0:
        return
    lines, buf[:end + 1] = bytes(buf[:end + 1]), b""
    for line in lines.splitlines():
        try:
            doc = std_loads(line)
        except ValueError:
            continue  # a line cut by a full disk: skipped, the rest is read
        if isinstance(doc, dict):
            yield doc


# --- showing ------------------------------------------------------------------------------

def docker_doc(doc):
    """The event as docker's API shows it: with the legacy status/id/from of container
    (and status/id of image) events."""
    out = {}
    actor = doc.get("Actor") or {}
    if doc.get("Type") == "container":
        out = {"status": doc.get("Action"), "id": actor.get("ID"),
               "from": (actor.get("Attributes") or {}).get("image", "")}
    elif doc.get("Type") == "image":
        out = {"status": doc.get("Action"), "id": actor.get("ID")}
    out.update(doc)
    return out


def line(doc):
    """docker's line: ``TIME TYPE ACTION ID (k=v, ...)``, attributes sorted."""
    t = doc.get("timeNano", 0)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1_000_000_000))
    actor = doc.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    text = f"{stamp}.{t % 1_000_000_000:09d}Z {doc.get('Type')} {doc.get('Action')} " \
           f"{actor.get('ID', '')}"
    if attrs:
        text += " (" + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())) + ")"
    return text


# --- filters ------------------------------------------------------------------------------

FILTERS = ("container", "event", "image", "label", "network", "type", "volume")
TYPES = ("container", "image", "network", "volume")


class FilterError(KagoError):
    """A filter or time ``kago events`` cannot use (docker's exit status 125)."""

    exit_code = 125


def parse_filters(filters):
    """{key: [values]} from ["key=value", ...] or a dict (values a string or a list);
    docker's keys only."""
    out = {}
    items = []
    if isinstance(filters, dict):
        for key, values in filters.items():
            for value in [values] if isinstance(values, str) else values:
                items.append((key, value))
    else:
        for text in filters or ():
            key, eq, value = text.partition("=")
            if not eq:
                raise FilterError(f"bad format of filter (expected name=value): {text}")
            items.append((key, value))
    for key, value in items:
        if key not in FILTERS:
            raise FilterError(f"invalid filter '{key}'")
        if key == "type" and value not in TYPES:
            raise FilterError(f"invalid filter 'type={value}': a type is one of "
                              + ", ".join(TYPES))
        out.setdefault(key, []).append(value)
    return out


def matches(doc, filters):
    """docker's rules: values of one key are alternatives, every key must match."""
    kind = doc.get("Type")
    action = doc.get("Action") or ""
    actor = doc.get("Actor") or {}
    aid = actor.get("ID") or ""
    attrs = actor.get("Attributes") or {}

    def named(want, of_type):  # an ID, an ID prefix or the name
        return kind == of_type and any(aid.startswith(w) or attrs.get("name") == w
                                       for w in want)
    for key, want in filters.items():
        if key == "type":
            ok = kind in want
        elif key == "event":
            ok = action in want or action.partition(":")[0] in want
        elif key == "container":
            ok = named(want, "container")
        elif key == "network":
            ok = named(want, "network")
        elif key == "volume":
            ok = kind == "volume" and aid in want
        elif key == "image":
            names = {attrs.get("image", "")} if kind == "container" else \
                {aid, attrs.get("name", "")} if kind == "image" else set()
            ok = any(_same_image(w, n) for w in want for n in names if n)
        elif key == "label":
            ok = any(attrs.get(k) == v if eq else k in attrs
                     for k, eq, v in (w.partition("=") for w in want))
        else:
            ok = False
        if not ok:
            return False
    return True


def _same_image(want, name):
    def norm(n):
        last = n.rsplit("/", 1)[-1]
        return n if ":" in last or "@" in n or n.startswith("sha256:") else n + ":latest"
    return want == name or norm(want) == norm(name) or \
        (name.startswith("sha256:") and name[7:].startswith(want.removeprefix("sha256:")))


# --- times --------------------------------------------------------------------------------

def when(value, now=None):
    """--since/--until: a unix time (number or text), a datetime, RFC 3339, or a duration
    (10m, 1h30m, 500ms: that long ago)."""
    import re
    if value is None or isinstance(value, (int, float)):
        return value
    if hasattr(value, "timestamp"):
        return value.timestamp()
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if parts and "".join(n + u for n, u in parts) == text:
        return (time.time() if now is None else now) - sum(float(n) * units[u]
                                                           for n, u in parts)
    from kago.manager.logs import parse_timestamp
    try:
        return parse_timestamp(text)
    except ValueError:
        raise FilterError(f"{text}: use a unix time, RFC 3339 or a duration (10m)") from None
