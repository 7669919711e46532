"""The runtime seam: the manager hands a runc-compatible runtime an OCI bundle, nothing else.

Two ways to drive one, behind one small interface:

- ``LibraryRuntime``: kago's own runtime (the default). The supervisor is a long-lived Python
  process, so it calls ``kago.runtime``'s documented lifecycle functions on the bundle in
  process instead of starting ``kago-oci`` per container (an interpreter start and the imports
  are ~15 ms of each ~25 ms create). The bundle is still the only input, and the state lands in
  the same ``--root`` a ``kago-oci`` command would use, so the two are interchangeable.
- ``ProcessRuntime``: any runc-compatible binary (``--runtime /usr/sbin/runc``, crun, or an
  explicit kago-oci) run as a subprocess with runc's command line.

Interface (``cid``: the runtime's container ID; every failure is a ManagerError, with docker's
127/126 for a command that cannot be found or run):

    start(cid, bundle, stdio) -> (pid, pid_start)  ``run -d`` with stdio = (in, out, err) fds
    state(cid) -> dict or None                     the OCI state (None: no such container)
    states() -> {cid: state}                       every container under --root
    kill(cid, sig, all=False); delete(cid, force=False); pids(cid) -> [pid]
    stats(cid) -> dict                             runc's ``events --stats`` data
    update(cid, resources)                         ``update --resources -``
    run_argv(cid, bundle), exec_argv(cid, args, ...)  command lines for foreground use

The supervisor must stay single-threaded (the runtime forks, and setns needs it), so this
module never imports ``subprocess`` (which imports ``threading``): it spawns with posix_spawn.
"""

import os
import sys

from kago.manager.errors import ManagerError, command_error


def default_runtime_path():
    """The kago-oci installed with this Python (venv), else the one on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "kago-oci")
    if os.access(beside, os.X_OK):
        return beside
    from shutil import which
    return which("kago-oci")


def open_runtime(path, root):
    """The runtime for ``--runtime PATH`` (None: kago's own, in process)."""
    if path is None or (default_runtime_path() and os.path.realpath(path) == os.path.realpath(
            default_runtime_path()) and os.path.basename(path) == "kago-oci"):
        return LibraryRuntime(default_runtime_path(), root)
    resolved = path if "/" in path else _which(path)
    if not resolved or not os.access(resolved, os.X_OK):
        raise ManagerError(f"runtime {path} not found or not executable: give a runc-compatible "
                           f"binary with --runtime PATH")
    return ProcessRuntime(os.path.abspath(resolved), root)


def _which(name):
    from shutil import which
    return which(name)


def _failure(text, what):
    """The runtime's error as a ManagerError (docker's 127/126 for an unusable command)."""
    text = (text or "").strip() or f"{what} failed"
    return command_error(text) or ManagerError(text)


class LibraryRuntime:
    """kago.runtime called in this process, on the same --root kago-oci would use."""

    name = "kago-oci"

    def __init__(self, path, root):
        self.path = path
        self.root = root

    def _store(self):
        from kago.runtime.store import Store
        os.makedirs(self.root, 0o700, exist_ok=True)
        return Store(self.root)

    def warm(self):
        """Import what ``start`` uses now, so that each forked start does not."""
        from kago.runtime import container
        container.warm()

    def start(self, cid, bundle, stdio, console=None):
        from kago.host.rootless import rootless
        from kago.runtime import container
        from kago.runtime.options import Options
        store = self._store()
        with _as_stdio(stdio, "create"):
            container.run(store, cid, bundle, Options(detach=True, listen_fds=0,
                                                      console_socket=console,
                                                      rootless=rootless()))
        record = store.load(cid)
        return record["pid"], record["kago"]["pid_start"]

    def restore(self, cid, bundle, stdio, how):
        """CRIU's restore of ``cid`` from ``how["image_path"]`` (kago.runtime.checkpoint),
        the restored tree's FIFO stdio given ``stdio``; returns (pid, pid_start)."""
        from kago.host.rootless import rootless
        from kago.runtime import checkpoint
        from kago.runtime.criu import CriuOptions
        from kago.runtime.options import Options
        store = self._store()
        with _as_stdio(stdio, "restore"):
            opts = CriuOptions(how["image_path"], work_path=how.get("work_path"),
                               tcp_established=bool(how.get("tcp_established")))
            record = checkpoint.restore(store, cid, bundle, opts, how["criu"],
                                        Options(detach=True, listen_fds=0,
                                                rootless=rootless()))
        return record["pid"], record["kago"]["pid_start"]

    def state(self, cid):
        from kago.errors import KagoError
        from kago.runtime import container
        try:
            return container.state(self._store(), cid)
        except KagoError:
            return None

    def states(self):
        from kago.runtime import container
        if not os.path.isdir(self.root):
            return {}
        return {s["id"]: s for s in container.list_states(self._store())}

    def kill(self, cid, sig, all=False):
        from kago.errors import KagoError
        from kago.runtime import container
        try:
            container.kill(self._store(), cid, sig, all_processes=all)
        except KagoError as e:
            raise ManagerError(str(e)) from None

    def delete(self, cid, force=False):
        from kago.errors import ContainerNotFound, KagoError
        from kago.runtime import container
        try:
            container.delete(self._store(), cid, force=force)
        except ContainerNotFound:
            pass
        except KagoError as e:
            raise ManagerError(f"delete {cid[:12]}: {e}") from None

    def pids(self, cid):
        from kago.errors import KagoError
        from kago.runtime import container
        try:
            return container.pids(self._store(), cid)
        except KagoError as e:
            raise ManagerError(str(e)) from None

    def stats(self, cid):
        from kago.errors import KagoError
        from kago.runtime import resources
        try:
            return resources.stats_event(self._store(), cid)["data"]
        except KagoError as e:
            raise ManagerError(str(e)) from None

    def stats_reader(self, cid):
        """A reader: call it for ``stats(cid, brief=True)`` again and again (the cgroup
        found once, its files kept open), ``close()`` it when done (kago console)."""
        from kago.errors import KagoError
        from kago.runtime import resources
        try:
            return resources.stats_reader(self._store(), cid)
        except KagoError as e:
            raise ManagerError(str(e)) from None

    def update(self, cid, res):
        from kago.errors import KagoError
        from kago.runtime import resources
        try:
            return resources.update(self._store(), cid, res)
        except KagoError as e:
            raise ManagerError(str(e)) from None

    def run_argv(self, cid, bundle):
        return [self.path, "--root", self.root, "run", "--bundle", bundle, cid]

    def exec_argv(self, cid, args, tty=False, user=None, cwd=None, env=(), detach=False):
        return _exec_argv(self.path, self.root, cid, args, tty, user, cwd, env, detach)


class ProcessRuntime:
    """Any runc-compatible binary, run with runc's command line."""

    def __init__(self, path, root):
        self.path = path
        self.root = root
        self.name = os.path.basename(path)

    def _base(self):
        return [self.path, "--root", self.root]

    def warm(self):
        """Nothing to import: the binary runs in its own process."""

    def start(self, cid, bundle, stdio, console=None):
        os.makedirs(self.root, 0o700, exist_ok=True)
        pid_file = os.path.join(self.root, f".{cid}.pid")
        log_file = os.path.join(self.root, f".{cid}.log")
        argv = self._base() + ["--log", log_file, "--log-format", "json", "run", "-d",
                               "--pid-file", pid_file, "--bundle", bundle, cid]
        if console:
            argv[-1:-1] = ["--console-socket", console]
        try:
            code, _out, _err = call(argv, stdio=stdio)
            if code != 0:
                raise _failure(_last_error(log_file), "run")
            with open(pid_file) as f:
                pid = int(f.read().strip())
        finally:
            for path in (pid_file, log_file):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        from kago.host.procfs import start_time
        return pid, start_time(pid)

    def state(self, cid):
        code, out, _err = call(self._base() + ["state", cid])
        if code != 0:
            return None
        import json
        return json.loads(out)

    def states(self):
        if not os.path.isdir(self.root):
            return {}
        code, out, err = call(self._base() + ["list", "--format", "json"])
        if code != 0:
            raise ManagerError(f"{self.name} list: {err.strip()}")
        import json
        return {s["id"]: s for s in json.loads(out or "null") or ()}

    def kill(self, cid, sig, all=False):
        argv = self._base() + ["kill"] + (["--all"] if all else []) + [cid, str(sig)]
        self._check(argv, "kill")

    def delete(self, cid, force=False):
        code, _out, err = call(self._base() + ["delete"] + (["--force"] if force else []) + [cid])
        if code != 0 and "does not exist" not in err:
            raise ManagerError(f"delete {cid[:12]}: {err.strip()}")

    def pids(self, cid):
        import json
        return json.loads(self._check(self._base() + ["ps", "--format", "json", cid], "ps"))

    def stats(self, cid):
        import json
        return json.loads(self._check(self._base() + ["events", "--stats", cid], "events"))["data"]

    def stats_reader(self, cid):
        return _Reader(lambda: self.stats(cid))

    def update(self, cid, res):
        import json
        self._check(self._base() + ["update", "--resources", "-", cid], "update",
                    input=json.dumps(res).encode())

    def _check(self, argv, what, input=None):
        code, out, err = call(argv, input=input)
        if code != 0:
            raise ManagerError(f"{self.name} {what}: {_strip_logrus(err)}")
        return out

    def run_argv(self, cid, bundle):
        return self._base() + ["run", "--bundle", bundle, cid]

    def exec_argv(self, cid, args, tty=False, user=None, cwd=None, env=(), detach=False):
        return _exec_argv(self.path, self.root, cid, args, tty, user, cwd, env, detach)


class _as_stdio:
    """``stdio`` (three fds) as this process's fds 0-2 for the length of the block: the
    runtime hands the container its caller's fds 0-2 (and nothing else). A KagoError in the
    block is a ManagerError (``what`` failed). A class, not a ``contextlib.contextmanager``:
    the supervisor imports this module, and contextlib (with functools and collections) would
    stay in its memory for its whole life (~0.5 MB)."""

    def __init__(self, stdio, what):
        self.stdio = stdio
        self.what = what
        self.saved = []

    def __enter__(self):
        self.saved = [os.dup(fd) for fd in (0, 1, 2)]
        try:
            for target, fd in enumerate(self.stdio):
                if fd != target:
                    os.dup2(fd, target)
        except BaseException:
            self._restore()
            raise

    def __exit__(self, kind, value, tb):
        self._restore()
        from kago.errors import KagoError
        if isinstance(value, KagoError):
            raise _failure(str(value), self.what) from None
        return False

    def _restore(self):
        for target, fd in enumerate(self.saved):
            os.dup2(fd, target)
            os.close(fd)
        self.saved = []


def _exec_argv(path, root, cid, args, tty, user, cwd, env, detach):
    argv = [path, "--root", root, "exec"]
    if tty:
        argv.append("--tty")
    if detach:
        argv.append("--detach")
    if user:
        argv += ["--user", user]
    if cwd:
        argv += ["--cwd", cwd]
    for item in env:
        argv += ["--env", item]
    return argv + [cid] + list(args)


def _strip_logrus(text):
    """``time="..." level=error msg="x"`` -> ``x`` (runc's stderr lines)."""
    text = (text or "").strip().splitlines()[-1:] or [""]
    line = text[0]
    if 'msg="' in line:
        line = line.split('msg="', 1)[1].rsplit('"', 1)[0].replace('\\"', '"')
    return line


def _last_error(log_file):
    import json
    try:
        with open(log_file) as f:
            lines = f.read().splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("level") == "error":
            return doc.get("msg", "")
    return ""


def call(argv, stdio=None, input=None):
    """Run ``argv`` to completion without ``subprocess``: (exit status, stdout, stderr).

    ``stdio`` (three fds) is passed through instead of capturing. A death by signal N is
    reported as 128 + N, as a shell would.
    """
    import selectors
    actions, ours, theirs = [], [], []
    if stdio is not None:
        for target, fd in enumerate(stdio):
            actions.append((os.POSIX_SPAWN_DUP2, fd, target))
    else:
        for target in (0, 1, 2):
            r, w = os.pipe()
            os.set_inheritable(r, False)
            os.set_inheritable(w, False)
            child, mine = (r, w) if target == 0 else (w, r)
            actions.append((os.POSIX_SPAWN_DUP2, child, target))
            theirs.append(child)
            ours.append(mine)
    try:
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    except OSError as e:
        for fd in ours + theirs:
            os.close(fd)
        raise ManagerError(f"{argv[0]}: {os.strerror(e.errno).lower()}") from None
    for fd in theirs:
        os.close(fd)
    out = {1: b"", 2: b""}
    if ours:
        if input:
            os.write(ours[0], input)  # small (a resources document): fits in the pipe
        os.close(ours[0])
        sel = selectors.DefaultSelector()
        for i, fd in enumerate(ours[1:], start=1):
            sel.register(fd, selectors.EVENT_READ, i)
        while sel.get_map():
            for key, _ in sel.select():
                chunk = os.read(key.fd, 65536)
                if chunk:
                    out[key.data] += chunk
                else:
                    sel.unregister(key.fd)
                    os.close(key.fd)
        sel.close()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return (128 - code if code < 0 else code), out[1].decode(errors="replace"), \
        out[2].decode(errors="replace")


class _Reader:
    """A stats reader with nothing to close (a runtime binary reads for itself)."""

    def __init__(self, read):
        self.read = read

    def __call__(self):
        return self.read()

    def close(self):
        pass
