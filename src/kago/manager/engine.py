"""The manager's verbs as a library: ``Manager(root).create(cfg)``, ``.start(ref)``, ``.stop``...

``kago``'s command line (cli/main.py) and ``kago up`` (define/) both call this. A container's
life here:

    create  record + name, ID range, rootfs (kago.storage, or a directory), network
            (kago.network), /etc files, then the OCI bundle (spec.build) -- no process yet;
            any failure undoes what was made, in reverse
    start   ``prepare``: what an earlier end released comes back (rootfs mount, network
            attachment), then the shared supervisor runs the bundle (supervisor.py)
    stop    the stop signal, then SIGKILL after the timeout; the record says "stopped by user"
            so no restart policy brings it back
    end     whoever records it (the supervisor, ``stop``, ``run``, a settle) calls ``release``:
            the rootfs is unmounted (its writable layer stays) and the network detached, as
            docker does; the next start prepares them again
    rm      runtime state, rootfs, network, ID range, record and name

Live status always comes from the runtime's state (which checks the init's pid and start
time in /proc): a record's "running" is believed only if the runtime agrees.
"""

import contextlib
import json
import os
import shutil
import time

from kago.errors import KagoError
from kago.manager import config as C
from kago.manager import journal, perms
from kago.manager.errors import (
    BadValue,
    IdRangeError,
    ImageNotFound,
    ManagerError,
    NoSuchContainer,
    StateError,
    SupervisorError,
    SupervisorGone,
)
from kago.manager.journal import fault
from kago.manager.paths import Paths
from kago.manager.records import Records, check_name, new_state, random_name
from kago.runtime import Undo

AUTO_ID_BASE = 1 << 30        # --userns=auto ranges start here, 65536-aligned
AUTO_ID_SIZE = 65536
STOP_TIMEOUT = 10


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


def _check_reachable(path):
    """A container with its own user namespace reaches its bundle as an unprivileged host ID:
    say so before the runtime fails with a bare EACCES (a missing directory it reports)."""
    from kago.host.facts import closed_ancestor
    closed = closed_ancestor(path)
    if closed and closed[1] is not None:
        parent, mode = closed
        raise ManagerError(
            f"{parent} is not searchable by others (mode {mode & 0o777:o}): a container "
            f"with its own user namespace could not reach its files under it; "
            f"chmod o+x {parent}, or use another --root")


class Manager:
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
            self._nets = Networks(self.paths.network(), **(self.settings.get("network") or {}))
        return self._nets

    def runtime(self, record=None):
        path = record.get("runtime") if record else self.runtime_path
        root = record.get("runtime_root") if record else self._runtime_root(path)
        key = (path, root)
        if key not in self._runtimes:
            from kago.manager.runtimes import open_runtime
            self._runtimes[key] = open_runtime(path, root)
        return self._runtimes[key]

    def _runtime_root(self, path):
        name = "kago" if path is None else os.path.basename(path)
        return os.path.join(self.paths.oci(), name)

    # --- create -------------------------------------------------------------------------------
    def create(self, cfg, group=None):
        """Prepare a container (no process yet); returns its record."""
        cfg = C.validate(dict(cfg))
        cid = Records.new_id()
        name = check_name(cfg.get("name") or random_name())
        cfg["name"] = name
        undo = Undo()
        try:
            return self._create(cid, name, cfg, group, undo)
        except BaseException as e:
            failed = undo.run()
            if failed:
                from kago.errors import describe
                raise ManagerError(f"{_describe(e)}; cleanup also failed: "
                                   + "; ".join(describe(f) for f in failed)) from e
            if isinstance(e, KagoError) and not isinstance(e, ManagerError):
                raise ManagerError(str(e)) from e
            raise

    def _create(self, cid, name, cfg, group, undo):
        # the record first (journal.py): from here on, whatever dies, ps -a shows it and
        # rm -f / system prune find what its intents name
        record = {
            "id": cid, "name": name, "created": time.time(), "config": cfg,
            "image": cfg.get("image") or "", "image_id": "", "image_config": {},
            "rootfs": None, "network": None, "uid_map": None, "gid_map": None,
            "runtime": self.runtime_path, "runtime_root": self._runtime_root(self.runtime_path),
            "cgroups_path": f"/kago-{cid}", "group": group,
            "state": journal.begin(new_state()), "intents": [],
        }
        self.records.create(record)
        undo.push(self.records.remove, cid)
        fault("create.record")
        self.records.reserve_name(name, cid)
        fault("create.name")
        image = self._image(cfg)
        journal.intend(self.records, record, "ids")
        uid_map, gid_map = self._reserve_ids(cid, cfg)
        fault("create.ids")
        if uid_map:
            undo.push(self._release_ids, cid)
            _check_reachable(self.paths.container(cid))
        rootfs = self._make_rootfs(record, cfg, uid_map, gid_map, undo)
        from kago.manager.rootfs_files import resolve_user
        from kago.manager.spec import ImageConfig, build
        image_cfg = ImageConfig(image.config if image else None)
        user = resolve_user(rootfs["path"], cfg.get("user") or image_cfg.user)
        hostname = cfg.get("hostname") or cid[:12]
        journal.intend(self.records, record, "network")
        netns, attachment, etc = self._attach(cid, cfg, hostname, undo)
        fault("create.network")
        volumes = self._volumes(cfg, uid_map, gid_map)
        cgroups_path = record["cgroups_path"]
        spec = build(cfg, cid=cid, rootfs=rootfs["path"], image=image_cfg, user=user,
                     netns=netns, etc=etc, uid_map=uid_map, gid_map=gid_map, volumes=volumes,
                     cgroups_path=cgroups_path)
        bundle = self.paths.bundle(cid)
        journal.intend(self.records, record, "bundle")
        os.mkdir(bundle, perms.SEARCH)
        os.chmod(bundle, perms.SEARCH)  # mkdir's mode passed through the umask
        # dumps without indent is the C encoder: ~8x faster
        journal.write_atomic(os.path.join(bundle, "config.json"), json.dumps(spec).encode())
        fault("create.bundle")
        record.update({
            "image_id": image.id if image else "",
            "image_config": image.config if image else {}, "rootfs": rootfs,
            "network": attachment, "uid_map": uid_map, "gid_map": gid_map,
            "args": spec["process"]["args"], "env": spec["process"]["env"],
            "hostname": hostname,
            "stop_signal": cfg.get("stop_signal") or image_cfg.stop_signal or "SIGTERM",
        })
        journal.finish(record["state"])
        self.records.save(record, existing=True)
        undo.steps = []  # made: nothing to undo any more
        fault("create.done")
        return record

    def _image(self, cfg):
        if not cfg.get("image"):
            if not os.path.isdir(cfg["rootfs"]):
                raise BadValue("--rootfs", f"{cfg['rootfs']}: not a directory")
            return None
        from kago.storage import ImageNotFound as StoreImageNotFound
        try:
            return self.store.image(cfg["image"])
        except StoreImageNotFound:
            raise ImageNotFound(cfg["image"]) from None

    def _make_rootfs(self, record, cfg, uid_map, gid_map, undo):
        cid = record["id"]
        if not cfg.get("image"):
            return {"kind": "dir", "path": os.path.abspath(cfg["rootfs"])}
        idmap = None
        if uid_map:
            from kago.storage import IdMap
            idmap = IdMap([tuple(r) for r in uid_map], [tuple(r) for r in gid_map or uid_map])
        journal.intend(self.records, record, "layer")
        undo.push(self.store.remove_rootfs, cid)
        info = self.store.create_rootfs(cid, cfg["image"], idmap=idmap)
        fault("create.layer")
        path = os.path.join(self.paths.container(cid), "rootfs")
        journal.intend(self.records, record, "mount")
        os.mkdir(path, 0o755)
        undo.push(_unbind, path)
        _bind(info.path, path)
        fault("create.mount")
        return {"kind": "image", "path": path, "store_path": info.path, "driver": info.driver,
                "shift": info.shift}

    def _attach(self, cid, cfg, hostname, undo):
        """(netns for the spec, attachment dict, {dest: host file} to bind)."""
        mode = cfg.get("network") or "bridge"
        network = None
        if mode not in ("bridge", "host", "none") and not mode.startswith("container:"):
            mode, network = "bridge", mode  # a network's name
        if mode.startswith("container:"):
            other = self.records.resolve(mode.split(":", 1)[1])
            if other["id"] == cid:
                raise BadValue("--network", "a container cannot join its own network")
            mode = f"container:{other['id']}"
        etc_dir = self.paths.etc(cid)
        att = self._attach_network(cid, cfg, mode, network, hostname)
        undo.push(self.nets.detach, cid)
        netns = "host" if att.mode == "host" else att.netns_path
        if cfg.get("network_etc") == "host":
            etc = {d: d for d in ("/etc/resolv.conf", "/etc/hosts") if os.path.exists(d)}
        else:
            etc = {d: os.path.join(etc_dir, os.path.basename(d))
                   for d in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
                   if os.path.exists(os.path.join(etc_dir, os.path.basename(d)))}
        return netns, att.to_dict(), etc

    def _attach_network(self, cid, cfg, mode, network, hostname):
        """kago.network's attach with what create asked for (again at a start after a
        release: the same static --ip and published ports; a dynamic address may change)."""
        return self.nets.attach(cid, mode=mode, network=network, ip=cfg.get("ip"),
                                ports=cfg.get("ports") or (), hostname=hostname,
                                aliases=tuple(cfg.get("aliases") or ()) + (cfg["name"],),
                                etc_dir=self.paths.etc(cid))

    def _volumes(self, cfg, uid_map=None, gid_map=None):
        out = {}
        for m in cfg.get("mounts") or ():
            if m["type"] == "volume":
                from kago.manager import volumes
                out[m["source"]] = volumes.ensure(self, m["source"], uid_map, gid_map)
            elif m["type"] == "bind" and not os.path.exists(m["source"]):
                raise BadValue("-v", f"bind source path does not exist: {m['source']}")
        return out

    # --- user-namespace ID ranges -----------------------------------------------------------
    def _reserve_ids(self, cid, cfg):
        """The container's (uid_map, gid_map), reserved in ROOT/idranges.json so no two
        containers share host IDs. ``userns=auto`` takes the lowest free 64 Ki block."""
        userns = cfg.get("userns") or "host"
        uid_map = C.parse_id_map(cfg.get("uid_map"), "uid_map") if cfg.get("uid_map") else []
        gid_map = C.parse_id_map(cfg.get("gid_map"), "gid_map") if cfg.get("gid_map") else []
        if not uid_map and not userns.startswith("auto"):
            return None, None
        with _FileLock(os.path.join(self.paths.root, "idranges.lock")):
            table = self._id_table()
            if not uid_map:
                size = int(userns.split("=", 1)[1]) if "=" in userns else AUTO_ID_SIZE
                base = _free_block(table, size)
                uid_map = [[0, base, size]]
            gid_map = gid_map or [list(r) for r in uid_map]
            for kind, ranges in (("uids", uid_map), ("gids", gid_map)):
                _check_free(table, kind, ranges, self._name_of)
            table[cid] = {"uids": uid_map, "gids": gid_map}
            self._write_id_table(table)
        return uid_map, gid_map

    def _release_ids(self, cid):
        with _FileLock(os.path.join(self.paths.root, "idranges.lock")):
            table = self._id_table()
            if table.pop(cid, None) is not None:
                self._write_id_table(table)

    def _id_table(self):
        try:
            with open(os.path.join(self.paths.root, "idranges.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _write_id_table(self, table):
        path = os.path.join(self.paths.root, "idranges.json")
        with open(path + ".tmp", "w") as f:
            f.write(json.dumps(table))
        os.rename(path + ".tmp", path)

    def _name_of(self, cid):
        try:
            return self.records.load(cid)["name"]
        except NoSuchContainer:
            return cid[:12]

    # --- state --------------------------------------------------------------------------------
    def states(self):
        """{runtime container ID: OCI state} for every runtime this root's records use."""
        out = {}
        paths = {(r.get("runtime"), r.get("runtime_root")) for r in self.records.all()}
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

    # --- start / stop -------------------------------------------------------------------------
    def supervisor(self):
        from kago.manager import supervisor
        return supervisor.connect(self.paths)

    def start(self, ref, attached=False, conn=None):
        """Start a created or exited container under the supervisor; returns its pid."""
        record = self.resolve(ref)
        status = self.live(record)
        if status in ("running", "paused"):
            return record["state"]["pid"]  # docker: starting a running container is a no-op
        self.prepare(record)
        fault("start.prepared")
        own = conn is None
        conn = conn or self.supervisor()
        try:
            reply = conn.request("start", id=record["id"], attached=attached)
        except SupervisorGone:
            reply = self._start_outcome(record)
        finally:
            if own:
                conn.close()
        fault("start.requested")
        return _started(reply)

    def _start_outcome(self, record):
        """The supervisor died during our start: the next one adopts the start (its worker
        may have started the container: adoption.py) and says how it went."""
        from kago.manager import supervisor
        deadline = time.monotonic() + 30
        while True:
            # its orphaned start worker still holds the dead one's socket and lock: a
            # connection may reach nobody until that worker is done
            conn = supervisor.connect(self.paths)
            try:
                return conn.request("adopt", id=record["id"])
            except SupervisorGone:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                conn.close()

    # --- what an ended container gives back, and a start takes again -------------------------
    def prepare(self, ref):
        """Set up what a start needs and an end released (or a reboot took): the rootfs mount
        and the network attachment. The record is marked ``fresh`` under its lock, so that a
        release of the previous run still on its way leaves them alone. Returns the record."""
        cid = ref["id"] if isinstance(ref, dict) else self.resolve(ref)["id"]
        with self.records.lock(cid):
            record = self.records.load(cid)
            self.prepare_locked(record)
            _clear_stop(record)
            self.records.save(record)
        return record

    def prepare_locked(self, record):
        """``prepare`` for a caller that holds the record's lock and saves ``record`` after
        (the supervisor's start worker)."""
        made = self._mount_rootfs(record)
        try:
            att = self._reattach(record)
        except BaseException:
            if made:
                self._unmount_rootfs(record)
            raise
        if att is not None:
            record["network"] = att
        record["state"].update(fresh=True, released=False, network_kept=False,
                               removing=False)

    def _mount_rootfs(self, record):
        rootfs = record.get("rootfs") or {}
        if rootfs.get("kind") != "image":
            return False
        from kago.storage import syscalls
        if syscalls.is_mountpoint(rootfs["path"]):
            return False
        source = self.store.mount_rootfs(record["id"])
        _bind(source, rootfs["path"])
        return True

    def _unmount_rootfs(self, record):
        rootfs = record.get("rootfs") or {}
        if rootfs.get("kind") != "image":
            return
        from kago.storage import syscalls
        syscalls.unmount(rootfs["path"])  # every stacked bind, lazily when busy
        self.store.unmount_rootfs(record["id"])

    def _reattach(self, record):
        """The network again if it is not there: the new attachment dict, or None."""
        cid = record["id"]
        old = record.get("network") or {}
        mode = old.get("mode")
        if not mode or mode == "host":
            return None  # a host-network container holds nothing: never released
        current = self.nets.attachment(cid)
        if current is not None:
            if not current.netns_path or os.path.exists(current.netns_path):
                return None  # never released, or kept for a running container sharing it
            self.nets.detach(cid)  # half there: a reboot emptied /run, or a release failed
        att = self._attach_network(cid, record["config"], mode, old.get("network"),
                                   record.get("hostname"))
        try:
            if att.netns_path != old.get("netns_path"):
                self._retarget_bundle(cid, att.netns_path)
        except BaseException:
            self.nets.detach(cid)
            raise
        return att.to_dict()

    def _retarget_bundle(self, cid, netns_path):
        """The bundle's network namespace path, when a new attach put it elsewhere (the
        root's network settings changed since create)."""
        path = os.path.join(self.paths.bundle(cid), "config.json")
        with open(path) as f:
            spec = json.load(f)
        for ns in (spec.get("linux") or {}).get("namespaces") or ():
            if ns.get("type") == "network" and ns.get("path"):
                ns["path"] = netns_path
        with perms.private_file(path + ".tmp") as f:
            f.write(json.dumps(spec))
        os.rename(path + ".tmp", path)

    def release(self, ref, by=None):
        """Give back what an ended container holds on the host, as docker does at a stop: its
        rootfs is unmounted (the writable layer stays) and its network detached (veth, netns,
        IP lease, published ports; peers' /etc/hosts follow). ``prepare`` sets them up again.

        Nothing is done while it runs or a start is on its way (``fresh``), while it is being
        removed, for a --rm container (its removal comes), for a host-network one's network
        (it holds nothing), for a network another running container shares (released when
        that one ends), and, while the definition's agent lives, for a container whose
        definition has exit or failure hooks: the agent releases it after they ran
        (``by="agent"``), so they still see its rootfs. True if something was released;
        ManagerError names what could not be (the rest is released)."""
        try:
            cid = ref["id"] if isinstance(ref, dict) else self.resolve(ref)["id"]
            with self.records.lock(cid):
                record = self.records.load(cid)
                state = record.get("state") or {}
                if not self._releasable(record, by):
                    # released by someone else (the supervisor reaping it): the owner of a
                    # network it shared may still be being released by them; taking the
                    # owner's lock below waits for that, so a stop returns with both done
                    if state.get("released") and not state.get("network_kept"):
                        self._release_owner(record, by)
                    return False
                errors, kept = self._release(record)
                record["state"].update(released=True, network_kept=kept)
                self.records.save(record)
        except NoSuchContainer:
            return False  # removed meanwhile: rm released everything
        if not kept:
            self._release_owner(record, by)  # the owner may have waited for us
        if errors:
            raise ManagerError(f"release {record['name']}: " + "; ".join(_describe(e)
                                                                          for e in errors))
        return True

    def _release_owner(self, record, by):
        """Release the container whose network ``record``'s shared (--network container:ID)."""
        shares = (record.get("network") or {}).get("shares")
        if shares:
            try:
                self.release(shares, by)
            except NoSuchContainer:
                pass

    def _releasable(self, record, by):
        state = record.get("state") or {}
        if state.get("fresh", state.get("status") == "created") or state.get("removing") \
                or foreground(state):
            return False
        if state.get("released") and not state.get("network_kept"):
            return False
        if (record.get("config") or {}).get("auto_remove"):
            return False
        group = record.get("group") or {}
        if group.get("release") == "agent" and by != "agent" and _agent_alive(self.paths,
                                                                              group):
            return False
        return self.live(record) not in ("running", "paused")

    def _release(self, record):
        """(errors, whether the network was kept for a running container sharing it)."""
        cid = record["id"]
        errors = []
        try:
            self._unmount_rootfs(record)
        except (KagoError, OSError) as e:
            errors.append(e)
        kept = False
        if (record.get("network") or {}).get("mode") not in (None, "host"):
            kept = self._shared_by_running(cid)
            if not kept:
                try:
                    self.nets.detach(cid)
                except (KagoError, OSError) as e:
                    errors.append(e)
        return errors, kept

    def _shared_by_running(self, cid):
        """Whether a running container uses ``cid``'s network (--network container:ID)."""
        for att in self.nets.attachments():
            if att.shares == cid and att.cid != cid:
                try:
                    other = self.records.load(att.cid)
                except NoSuchContainer:
                    continue
                if self.live(other) in ("running", "paused"):
                    return True
        return False

    def release_quietly(self, ref, by=None):
        """``release`` for a command whose own work is done (stop, run): a failure is a
        warning on stderr, not the command's failure."""
        try:
            return self.release(ref, by)
        except (KagoError, OSError) as e:
            import sys
            sys.stderr.write(f"kago: warning: {_describe(e)}\n")
            return False

    @contextlib.contextmanager
    def rootfs_mounted(self, record):
        """The container's root filesystem as the host sees it, mounted for the duration
        (``export`` of an ended container) and unmounted again if it was released."""
        rootfs = record.get("rootfs") or {}
        if rootfs.get("kind") != "image":
            yield rootfs["path"]
            return
        from kago.storage import syscalls
        if syscalls.is_mountpoint(rootfs["path"]):
            yield rootfs["path"]
            return
        source = self.store.mount_rootfs(record["id"])
        try:
            yield source
        finally:
            with self.records.lock(record["id"]):
                state = self.records.load(record["id"])["state"]
                if state.get("released") and not state.get("fresh") and \
                        not syscalls.is_mountpoint(rootfs["path"]):
                    self.store.unmount_rootfs(record["id"])

    def stop(self, ref, timeout=None, signal_name=None):
        """docker stop: the stop signal, SIGKILL after ``timeout`` s; returns the record."""
        record = self.resolve(ref)
        self.records.update(record["id"], _mark_stopped)
        status = self.live(record)
        if status not in ("running", "paused"):
            self.release_quietly(record)  # restarting (or an end nobody released)
            return self.records.load(record["id"])
        timeout = STOP_TIMEOUT if timeout is None else timeout
        runtime = self.runtime(record)
        from kago.oci.names import parse_signal
        if status == "paused":
            runtime.kill(record["id"], parse_signal("SIGKILL"), all=True)
        else:
            try:
                runtime.kill(record["id"], parse_signal(signal_name or record["stop_signal"]))
            except ManagerError:
                pass  # it ended meanwhile
        fault("stop.signalled")
        if not self.wait_exit(record, timeout):
            try:
                runtime.kill(record["id"], parse_signal("SIGKILL"), all=True)
            except ManagerError:
                pass
            if not self.wait_exit(record, 10):
                raise ManagerError(f"container {record['name']} did not stop after SIGKILL")
        fault("stop.stopped")
        # the supervisor releases it too; this makes stop return with it done (docker's)
        self.release_quietly(record)
        return self.records.load(record["id"])

    def kill(self, ref, signal_name="SIGKILL"):
        from kago.oci.names import parse_signal
        record = self.resolve(ref)
        if self.live(record) not in ("running", "paused"):
            raise StateError(f"cannot kill container {record['name']}: it is not running")
        sig = parse_signal(signal_name if signal_name.upper().startswith("SIG") or
                           signal_name.isdigit() else "SIG" + signal_name.upper())
        if sig == 9:
            self.records.update(record["id"], _mark_stopped)
        self.runtime(record).kill(record["id"], sig)
        return record

    def wait_exit(self, record, timeout=None):
        """Wait until the container's end is recorded; False on timeout. Uses the supervisor
        when one is alive, else the pid's pidfd (and then records the end itself)."""
        from kago.manager import supervisor
        conn = supervisor.connect(self.paths, spawn=False)
        if conn is not None:
            try:
                reply = conn.request("wait", timeout=timeout, id=record["id"])
            except (ManagerError, OSError):
                reply = None
            finally:
                conn.close()
            if self.live(self.records.load(record["id"])) not in ("running", "paused"):
                return True
            if reply is None:
                return False
            # answered at once but still running: not the supervisor's (kago run -it)
        return self._wait_unsupervised(record, timeout)

    def _wait_unsupervised(self, record, timeout):
        import select
        state = self.records.load(record["id"])["state"]
        rt = self.runtime(record).state(record["id"]) or {}
        pid = state.get("pid") or rt.get("pid")  # a foreground run records no pid
        if pid and self.live(record) in ("running", "paused"):
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                fd = None
            if fd is not None:
                try:
                    if not select.select([fd], [], [], timeout)[0]:
                        return False
                finally:
                    os.close(fd)
        self._settle(record)
        return True

    def _settle(self, record):
        """Record the end of a container nobody watched (its exit status is lost)."""
        runtime = self.runtime(record)
        try:
            runtime.delete(record["id"], force=True)
        except ManagerError:
            pass

        def ended(r):
            if foreground(r["state"]):
                return  # its command line records the real status
            r["state"]["foreground"] = False
            if r["state"]["status"] in ("running", "restarting"):
                r["state"].update(status="exited", pid=0, finished_at=time.time(),
                                  fresh=False,
                                  error="exited while no supervisor was watching: exit "
                                        "status unknown")
        try:
            self.records.update(record["id"], ended)
        except NoSuchContainer:
            return
        self.release_quietly(record["id"])

    def wait(self, ref):
        """docker wait: block until the container stops; its exit code (None if unknown)."""
        record = self.resolve(ref)
        from kago.manager import supervisor
        conn = supervisor.connect(self.paths, spawn=False)
        if conn is None:
            self._wait_unsupervised(record, None)
            return self.records.load(record["id"])["state"].get("exit_code")
        try:
            return conn.request("wait", id=record["id"]).get("exit_code")
        finally:
            conn.close()

    def restart(self, ref, timeout=None):
        record = self.stop(ref, timeout)
        return self.start(record["id"])

    # --- remove -------------------------------------------------------------------------------
    def remove(self, ref, force=False, volumes=False):
        record = self.resolve(ref)
        status = self.live(record)
        if status in ("running", "paused", "restarting"):
            if not force:
                raise StateError(f"cannot remove container {record['name']}: it is {status}: "
                                 f"stop it first or use rm -f")
            self.records.update(record["id"], mark_removing)  # its end releases nothing
            self.stop(record["id"], timeout=0)
        self._teardown(record)
        return record

    def _teardown(self, record):
        """Everything create made, in reverse; the record goes last, so a failure can be
        retried with another rm. An incomplete record (journal.py) names in ``intents``
        what its creator may have made: each undo is idempotent, so all of them run."""
        cid = record["id"]
        errors = []
        rootfs = record.get("rootfs") or {}
        steps = [("runtime", lambda: self.runtime(record).delete(cid, force=True))]
        if rootfs.get("kind") == "image" or journal.intended(record, "mount"):
            path = rootfs.get("path") or os.path.join(self.paths.container(cid), "rootfs")
            steps.append(("mount", lambda: _unbind(path)))
        if rootfs.get("kind") == "image" or journal.intended(record, "layer"):
            steps.append(("rootfs", lambda: self.store.remove_rootfs(cid)))
        if record.get("network") or journal.intended(record, "network"):
            steps.append(("network", lambda: self.nets.detach(cid)))
        if record.get("uid_map") or journal.intended(record, "ids"):
            steps.append(("ids", lambda: self._release_ids(cid)))
        steps.append(("fifos", lambda: shutil.rmtree(self.paths.fifos(cid), ignore_errors=True)))
        for name, step in steps:
            try:
                step()
            except (KagoError, OSError) as e:
                errors.append(e)
            fault(f"rm.{name}")
        if errors:
            raise ManagerError(f"remove {record['name']}: " + "; ".join(_describe(e)
                                                                         for e in errors))
        self.records.remove(cid)
        fault("rm.record")

    def prune(self, all_images=False):
        """system prune (orphans.py): stopped and abandoned containers, what no record owns,
        unused images; {"containers", "orphans", "images", "errors"}."""
        from kago.manager import orphans
        return orphans.prune(self, all_images)


# --- helpers ------------------------------------------------------------------------------------

def _started(reply):
    if reply.get("ok"):
        return reply["pid"]
    from kago.manager.errors import CommandError
    code = reply.get("code", 125)
    if code in (126, 127):
        raise CommandError(reply.get("error", "cannot start"), code)
    raise ManagerError(reply.get("error", "the supervisor could not start the container"))


def _bind(source, target):
    """The store's rootfs, bind-mounted at ROOT/containers/<id>/rootfs for the bundle.

    Why not hand the runtime the store's own path: the store keeps its directories 0700, and
    a container with a user namespace sets its root up as the namespace's root, which may not
    search them (EACCES). Our container directory is 0755 and the mount's root is the
    rootfs itself, whose ownership the ID shift already made right."""
    from kago.kernel import consts, libc
    libc.mount(source, target, None, consts.MS_BIND)


def _unbind(target):
    from kago.errors import KernelError
    from kago.kernel import consts, libc
    try:
        libc.umount2(target, consts.MNT_DETACH)
    except KernelError as e:
        if e.errno not in (22, 2):  # EINVAL: not a mount point (any more); ENOENT: gone
            raise


def foreground(state):
    """A `kago run -it` whose command line still lives (it records the end itself)."""
    if not state.get("foreground"):
        return False
    from kago.manager.adoption import lives
    return "client" not in state or lives(state["client"])


def _clear_stop(r):
    r["state"]["stopped_by_user"] = False
    r["state"]["error"] = ""


def _mark_stopped(r):
    r["state"]["stopped_by_user"] = True


def mark_removing(r):
    """rm -f, kago down: stopped by the user and about to be removed (teardown frees all)."""
    r["state"].update(stopped_by_user=True, removing=True)


def _agent_alive(paths, group):
    """Whether the agent of a container's definition (ROOT/groups/<key>.json) is running."""
    try:
        with open(os.path.join(paths.groups(), group.get("key", "") + ".json")) as f:
            pid = json.load(f).get("agent")
    except (OSError, ValueError):
        return False
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"kago.manager.define.agent" in f.read()
    except OSError:
        return False


def _describe(e):
    from kago.errors import describe
    return describe(e)


def _free_block(table, size):
    taken = sorted((h, h + s) for entry in table.values() for kind in ("uids", "gids")
                   for _, h, s in entry[kind])
    base = AUTO_ID_BASE
    for start, end in taken:
        if start < base + size and base < end:
            base = ((end + AUTO_ID_SIZE - 1) // AUTO_ID_SIZE) * AUTO_ID_SIZE
    if base + size > 1 << 32:
        raise IdRangeError("no free user-namespace ID range is left: remove containers or "
                           "use smaller ranges")
    return base


def _check_free(table, kind, ranges, name_of):
    for _, host, size in ranges:
        for other, entry in table.items():
            for _, oh, osz in entry[kind]:
                if host < oh + osz and oh < host + size:
                    raise IdRangeError(
                        f"{kind[:-1]} range {host}-{host + size - 1} overlaps container "
                        f"{name_of(other)}'s {oh}-{oh + osz - 1}: choose another range")


class _FileLock:
    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        import fcntl
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


__all__ = ["Manager", "SupervisorError", "Undo", "load_settings", "mark_removing"]
