"""A private containerd for the client tests, and an OCI image archive of the busybox rootfs.

``Containerd(base).start()`` runs Debian's containerd with its own config: its ``root``,
``state``, gRPC/ttrpc sockets, runc root and FIFO directory all live under ``base`` (a tmpfs
the fixture mounts), plugins it does not need are disabled (``opt`` would create
/opt/containerd; aufs, btrfs, devmapper and zfs snapshotters; tracing), and it logs to
``base/containerd.log``. Nothing touches the host's /run/containerd or /var/lib/containerd.

``stop()`` tears down everything it made, by PID and by path, in the order that leaves
nothing behind: kill and delete every task, SIGTERM the daemon (SIGKILL after a bound), then
the shims that were started with our socket address (they outlive the daemon), then any
process still in the cgroups our containers got, then those cgroups (deepest first), then the
mounts under ``base`` (deepest first). ``leftovers()`` reports what is still there, for the
tests to assert on.

One thing containerd 1.6 puts outside ``base`` whatever its config says: each shim's ttrpc
socket, ``/run/containerd/s/<sha256 of address/namespace/id>`` (a constant in its shim
package). ``stop()`` removes the sockets of its shims that are left (a shim killed by SIGKILL
leaves its socket) and the directories it had to create for them.

``write_oci_archive`` writes an OCI image layout tar (image-spec ``image-layout.md``) with one
uncompressed layer, so ``ctr images import`` can load it without any registry.
"""

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import time

from conftest import pid_alive

SOCKET_ROOT = "/run/containerd"  # containerd 1.6's shim socket directory is SOCKET_ROOT/s
CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
SHIM = "containerd-shim-runc-v2"

DISABLED = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp",
            "io.containerd.internal.v1.tracing"]


# ---------------------------------------------------------------- the image


def _blob(out, data, media_type):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _add(out, f"blobs/sha256/{digest[7:]}", data)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _add(out, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    out.addfile(info, io.BytesIO(data))


def layer_tar(rootfs):
    """The rootfs as an uncompressed tar layer, entries relative (``./bin/sh``), owners kept."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.add(str(rootfs), arcname=".")
    return buf.getvalue()


def write_oci_archive(path, rootfs, name, cmd, env=("PATH=/usr/sbin:/usr/bin:/sbin:/bin",)):
    """Write an OCI layout tar at ``path``: one image ``name`` whose layer is ``rootfs``."""
    layer = layer_tar(rootfs)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": list(cmd), "Env": list(env), "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "kago tests: busybox-static rootfs"}],
    }
    with tarfile.open(path, "w") as out:
        _add(out, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        layer_desc = _blob(out, layer, "application/vnd.oci.image.layer.v1.tar")
        config_desc = _blob(out, json.dumps(config).encode(),
                            "application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_desc, "layers": [layer_desc]}
        desc = _blob(out, json.dumps(manifest).encode(),
                     "application/vnd.oci.image.manifest.v1+json")
        desc["annotations"] = {"io.containerd.image.name": name,
                               "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
        desc["platform"] = {"architecture": "amd64", "os": "linux"}
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                 "manifests": [desc]}
        _add(out, "index.json", json.dumps(index).encode())
    return path


# ---------------------------------------------------------------- the daemon


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is a JSON string for our values


def toml(tables):
    """``{"": {top-level keys}, "a.b": {keys}}`` as TOML (tables in the given order)."""
    lines = []
    for table, keys in tables.items():
        if table:
            lines.append(f"\n[{table}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


def _mountpoints():
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def argv_of(pid):
    """A process's argv, read from /proc (empty once it is gone)."""
    return [a.decode() for a in _cmdline(pid)[:-1]]


def _listdir(path):
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _socket_answers(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


def _wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [p for p in pids if pid_alive(p)]


class Containerd:
    """One private containerd under ``base`` (an existing directory, ideally a tmpfs).

    ``extra`` adds or overrides config tables (``{"plugins.\\"...cri\\"": {...}}``);
    ``disabled`` replaces the disabled plugin list. ``cgroup_parents`` are the cgroup paths
    (relative to each hierarchy, e.g. ``/kago-ctr-1234``) the tests put containers under:
    ``stop()`` empties and removes them.
    """

    def __init__(self, base, extra=None, disabled=DISABLED, cgroup_parents=()):
        self.base = os.path.abspath(base)
        self.address = os.path.join(self.base, "containerd.sock")
        self.runc_root = os.path.join(self.base, "runc")
        self.fifo_dir = os.path.join(self.base, "fifo")
        # the daemon's temporary directories (a checkpoint's ctrd-checkpoint*, which
        # containerd 1.6 never removes) go under base, not the host's /tmp
        self.tmp_dir = os.path.join(self.base, "tmp")
        self.log_path = os.path.join(self.base, "containerd.log")
        self.config_path = os.path.join(self.base, "config.toml")
        self.cgroup_parents = list(cgroup_parents)
        self.namespaces = set()
        self.proc = None
        tables = {
            "": {"version": 2, "root": os.path.join(self.base, "root"),
                 "state": os.path.join(self.base, "state"), "oom_score": 0,
                 "disabled_plugins": list(disabled)},
            "grpc": {"address": self.address},
            "ttrpc": {"address": self.address + ".ttrpc"},
            "debug": {"level": "info"},
            "cgroup": {"path": ""},
        }
        tables.update(extra or {})
        self.config_text = toml(tables)

    # -- life

    def start(self, timeout=15):
        if self.proc is None:  # what of SOCKET_ROOT was there before the first start
            self._had = {d for d in (SOCKET_ROOT, f"{SOCKET_ROOT}/s") if os.path.isdir(d)}
            self._sockets_before = set(_listdir(f"{SOCKET_ROOT}/s"))
        os.makedirs(self.runc_root, exist_ok=True)
        os.makedirs(self.fifo_dir, exist_ok=True)
        os.makedirs(self.tmp_dir, exist_ok=True)
        with open(self.config_path, "w") as f:
            f.write(self.config_text)
        for sock in (self.address, self.address + ".ttrpc"):  # a killed daemon's
            if os.path.exists(sock):
                os.unlink(sock)
        log = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
        env["TMPDIR"] = self.tmp_dir  # Go's os.TempDir, where MkdirTemp("") lands
        self.proc = subprocess.Popen([CONTAINERD, "--config", self.config_path],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited {self.proc.returncode}:\n{self.log()}")
            if os.path.exists(self.address) and self.ctr("version", ns=None).returncode == 0:
                return self
            time.sleep(0.05)
        raise RuntimeError(f"containerd did not answer in {timeout}s:\n{self.log()}")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def ctr(self, *args, ns="default", timeout=60, input=None, check=False):
        argv = [CTR, "--address", self.address]
        if ns is not None:
            self.namespaces.add(ns)
            argv += ["--namespace", ns]
        argv += [str(a) for a in args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv} exited {proc.returncode}: {proc.stderr}")
        return proc

    # -- what is ours

    def shim_pids(self):
        """The shims started for this daemon: their command line names our socket."""
        addr = self.address.encode()
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                argv = _cmdline(int(entry))
                if argv and argv[0].endswith(SHIM.encode()) and addr in argv:
                    pids.append(int(entry))
        return pids

    def cgroup_dirs(self):
        """Our cgroup parents (and everything under them) in every hierarchy, deepest first."""
        found = []
        for h in os.listdir("/sys/fs/cgroup"):
            for parent in self.cgroup_parents:
                top = os.path.join("/sys/fs/cgroup", h, parent.strip("/"))
                if os.path.isdir(top) and not os.path.islink(top):
                    found += [d for d, _, _ in os.walk(top)]
        return sorted(set(found), key=lambda d: d.count("/"), reverse=True)

    def mounts(self):
        return [m for m in _mountpoints() if m == self.base or m.startswith(self.base + "/")]

    def leftovers(self, include_base_mount=False):
        left = [f"shim pid {p}" for p in self.shim_pids()]
        if self.proc is not None and self.proc.poll() is None:
            left.append(f"containerd pid {self.proc.pid}")
        left += [f"cgroup {d}" for d in self.cgroup_dirs()]
        left += [f"mount {m}" for m in self.mounts() if include_base_mount or m != self.base]
        left += [f"shim socket {p}" for p in self.shim_sockets()]
        left += [f"directory {d}" for d in (f"{SOCKET_ROOT}/s", SOCKET_ROOT)
                 if os.path.isdir(d) and d not in getattr(self, "_had", {d})]
        return left

    # -- teardown

    def kill_tasks(self):
        for ns in sorted(self.namespaces):
            proc = self.ctr("tasks", "ls", "-q", ns=ns, timeout=15)
            for tid in proc.stdout.split():
                self.ctr("tasks", "kill", "-a", "-s", "SIGKILL", tid, ns=ns, timeout=15)
            for tid in proc.stdout.split():
                self.ctr("tasks", "delete", "-f", tid, ns=ns, timeout=15)
            for cid in self.ctr("containers", "ls", "-q", ns=ns, timeout=15).stdout.split():
                self.ctr("containers", "delete", cid, ns=ns, timeout=15)

    def stop(self):
        """Stop the daemon and remove everything it made; return what could not be removed."""
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            try:
                self.kill_tasks()
            except (subprocess.TimeoutExpired, OSError):
                pass
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shims = self.shim_pids()
        for pid in _wait_gone(shims, 5):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(shims, 5)
        for d in self.cgroup_dirs():
            self._empty_cgroup(d)
        for d in self.cgroup_dirs():
            try:
                os.rmdir(d)
            except OSError:
                pass
        for m in sorted(self.mounts(), key=lambda m: m.count("/"), reverse=True):
            if m != self.base:
                subprocess.run(["umount", "-l", m], check=False)
        self._remove_shim_sockets()
        return self.leftovers()

    def shim_sockets(self):
        """Sockets in SOCKET_ROOT/s made since this daemon first started."""
        return [f"{SOCKET_ROOT}/s/{n}" for n in _listdir(f"{SOCKET_ROOT}/s")
                if n not in getattr(self, "_sockets_before", ())]

    def _remove_shim_sockets(self):
        for path in self.shim_sockets():
            if not _socket_answers(path):  # a dead shim's (ours: its shims are gone by now)
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        for d in (f"{SOCKET_ROOT}/s", SOCKET_ROOT):
            if d not in getattr(self, "_had", {d}):
                try:
                    os.rmdir(d)
                except OSError:  # not empty: someone else's too
                    pass

    @staticmethod
    def _empty_cgroup(d):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            return
        freezer = os.path.join(d, "freezer.state")
        if os.path.exists(freezer):  # a paused container cannot die until thawed
            try:
                with open(freezer, "w") as f:
                    f.write("THAWED")
            except OSError:
                pass
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _wait_gone(pids, 5)


def mount_tmpfs(path, size="1g"):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode=755,size={size}", "kago-containerd",
                    path], check=True)


def unmount(path):
    subprocess.run(["umount", "-l", path], check=False)
