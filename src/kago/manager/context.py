"""What every manager service works with: the root's paths, settings (ROOT/kago.json) and
records, the collaborators made on first use (the image store, the networks, the runtimes),
and a container's live status, which comes from the runtime, never from the record alone.

Each service (create, lifecycle, release, removal, attachments, rootfs, idranges) takes a
``Context``; ``engine.Manager`` is one over them. Importing this module imports neither
kago.storage nor kago.network: ``kago ps`` and the supervisor stay lean.
"""

import json
import os

from kago.manager import perms
from kago.manager.errors import ManagerError, NoSuchContainer
from kago.manager.paths import Paths
from kago.manager.records import Records


def load_settings(paths):
    """ROOT/kago.json: {"runtime": path, "network": {Networks options}, "storage": {...}}.

    Lets a root carry its own settings (tests give theirs their own nft table and netns
    prefix), so every command on that root agrees without repeating flags."""
    try:
        with open(os.path.join(paths.root, "kago.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise ManagerError(f"{paths.root}/kago.json: {e}") from None


class Context:
    def __init__(self, root=None, runroot=None, runtime=None):
        self.paths = Paths(root, runroot)
        perms.secure(self.paths)  # a root an older kago left readable by all: tightened
        self.settings = load_settings(self.paths)
        self.records = Records(self.paths)
        self.runtime_path = runtime or self.settings.get("runtime")
        self._store = None
        self._nets = None
        self._runtimes = {}

    # --- collaborators, made on first use -----------------------------------------------------
    @property
    def store(self):
        if self._store is None:
            from kago.storage import Store
            opts = self.settings.get("storage") or {}
            self._store = Store(self.paths.storage(), driver=opts.get("driver"))
        return self._store

    @property
    def nets(self):
        if self._nets is None:
            from kago.network import Networks
            settings = dict(self.settings.get("network") or {})
            from kago.manager import rootless
            if rootless.active():  # the holder's network namespace is this runroot's own host
                settings.setdefault("host_dir", os.path.join(self.paths.runroot, "host"))
                settings.setdefault("netns_dir", os.path.join(self.paths.runroot, "netns"))
                # its slirp4netns (connected by the CLI as the holder was made) forwards
                # published ports from the host and carries outbound traffic
                settings.setdefault("slirp_runroot", self.paths.runroot)
            self._nets = Networks(self.paths.network(), **settings)
        return self._nets

    def runtime(self, record=None):
        path = record.get("runtime") if record else self.runtime_path
        root = record.get("runtime_root") if record else self.runtime_root(path)
        key = (path, root)
        if key not in self._runtimes:
            from kago.manager.runtimes import open_runtime
            self._runtimes[key] = open_runtime(path, root)
        return self._runtimes[key]

    def runtime_root(self, path):
        name = "kago" if path is None else os.path.basename(path)
        return os.path.join(self.paths.oci(), name)

    # --- state --------------------------------------------------------------------------------
    def states(self, records=None):
        """{runtime container ID: OCI state} for every runtime this root's records (or
        ``records``) use."""
        out = {}
        paths = {(r.get("runtime"), r.get("runtime_root"))
                 for r in (self.records.all() if records is None else records)}
        for path, root in paths:
            if root and os.path.isdir(root):
                out.update(self.runtime({"runtime": path, "runtime_root": root}).states())
        return out

    def live(self, record, states=None):
        """The container's status now: created, running, paused, restarting, exited."""
        cid = record["id"]
        rt = states.get(cid) if states is not None else self.runtime(record).state(cid)
        state = record.get("state") or {}
        if rt is not None and rt.get("status") in ("running", "paused", "created"):
            return "paused" if rt["status"] == "paused" else "running"
        status = state.get("status", "created")
        if status == "restarting":
            return "restarting"
        if status == "running":
            return "exited"  # the runtime does not have it running: it ended unobserved
        return status

    def resolve(self, ref):
        return self.records.resolve(ref)

    def list(self, all=False):
        """[(record, live status)], newest first (docker's order)."""
        states = self.states()
        out = []
        for record in reversed(self.records.all()):
            status = self.live(record, states)
            if all or status in ("running", "paused", "restarting"):
                out.append((record, status))
        return out

    def name_of(self, cid):
        try:
            return self.records.load(cid)["name"]
        except NoSuchContainer:
            return cid[:12]


def describe(e):
    from kago.errors import describe
    return describe(e)
