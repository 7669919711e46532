"""OCI hooks: run each with the container's state JSON on stdin, its env, and its timeout.

Failure semantics (runtime-spec config.md#posix-platform-hooks): a failing prestart,
createRuntime, createContainer or startContainer hook fails the operation (the caller rolls
back); a failing poststart or poststop hook is logged as a warning and the operation goes on.
A hook that outlives its timeout is killed (SIGKILL) and counts as failed.

Environment: a hook's ``env`` is its whole environment (``[]`` is an empty one). A hook with
no ``env`` inherits the environment of the process that runs it, as in runc 1.1 (Go's
exec.Cmd with a nil Env): kago-oci's own for prestart, createRuntime, poststart and poststop;
the container process's ``env`` for createContainer and startContainer, which run in the
container's init (runc's init replaced its environment with the process's by then).

Hooks are spawned with ``os.posix_spawn`` and watched by polling, not with ``subprocess``: the
startContainer hooks run in the container's init after it switched to the container's root,
where no module can be imported any more (and ``subprocess`` costs ~10 ms of imports).
Only builtin modules are used here.
"""

import _signal
import os
import time

from kago import log
from kago.errors import HookError

FATAL = ("prestart", "createRuntime", "createContainer", "startContainer")


def run_hooks(kind, hooks, state_json, inherited=None):
    """Run the hooks of one kind in order; raise HookError for a fatal kind's failure.

    ``inherited``: the environment ("KEY=value" strings) a hook without ``env`` gets; None
    for this process's own.
    """
    for hook in hooks or ():
        try:
            with log.phase(f"hook {kind} {hook.path}"):
                run_one(kind, hook, state_json, inherited)
        except HookError as e:
            if kind in FATAL:
                raise
            log.warning(str(e))


def run_one(kind, hook, state_json, inherited=None):
    """Spawn one hook, feed it the state, wait (bounded by its timeout); HookError if it fails."""
    pid, stdin_w, err_r = _spawn(kind, hook, inherited)
    try:
        code, stderr = _watch(pid, stdin_w, err_r, state_json.encode(), hook.timeout)
    finally:
        for fd in (stdin_w, err_r):
            _close(fd)
    if code is None:
        raise HookError(kind, hook.path, f"timed out after {hook.timeout}s")
    if code != 0:
        lines = stderr.decode(errors="replace").strip().splitlines()
        tail = f": {lines[-1]}" if lines else ""
        raise HookError(kind, hook.path, f"exit status {_status(code)}{tail}")


def _spawn(kind, hook, inherited=None):
    """posix_spawn the hook with stdin and stderr on pipes; return (pid, stdin_w, err_r)."""
    stdin_r, stdin_w = os.pipe()
    err_r, err_w = os.pipe()
    out = _devnull(err_w)
    actions = [(os.POSIX_SPAWN_DUP2, stdin_r, 0), (os.POSIX_SPAWN_DUP2, out, 1),
               (os.POSIX_SPAWN_DUP2, err_w, 2)]
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable_fds({stdin_r, out, err_w})]
    try:
        pid = _posix_spawn(hook.path, hook.args or [hook.path],
                           hook_env(hook.env, inherited), file_actions=actions,
                           setsigdef=(_signal.SIGPIPE,))
    except OSError as e:
        for fd in (stdin_w, err_r):
            _close(fd)
        raise HookError(kind, hook.path, os.strerror(e.errno).lower()) from None
    finally:
        for fd in {stdin_r, err_w, out}:
            _close(fd)
    os.set_blocking(stdin_w, False)
    os.set_blocking(err_r, False)
    return pid, stdin_w, err_r


def _posix_spawn(path, args, env, file_actions, setsigdef):
    """``os.posix_spawn``, or the same by fork + execve when it fails.

    glibc's posix_spawn makes its child with clone3(2) and falls back to clone(2) only on
    ENOSYS: under a seccomp filter that refuses clone3 otherwise (runtime-tools' default
    profile returns EPERM; init loads the filter before the startContainer hooks when
    noNewPrivileges is false) it cannot start anything, while fork's clone(2) is allowed.
    The fork path reports the execve's own error, so a missing hook still reads as one.
    """
    try:
        return os.posix_spawn(path, args, env, file_actions=file_actions, setsigdef=setsigdef)
    except OSError:
        pass
    err_r, err_w = os.pipe()  # close-on-exec: a successful execve closes it, EOF
    pid = os.fork()
    if pid == 0:
        try:
            for action in file_actions:
                if action[0] == os.POSIX_SPAWN_DUP2:
                    os.dup2(action[1], action[2])
                else:
                    _close(action[1])
            for sig in setsigdef:
                _signal.signal(sig, _signal.SIG_DFL)
            os.execve(path, args, env)
        except OSError as e:
            os.write(err_w, str(e.errno or 0).encode())
        finally:
            os._exit(127)
    os.close(err_w)
    try:
        failed = os.read(err_r, 16)
    finally:
        os.close(err_r)
    if failed:
        os.waitpid(pid, 0)
        code = int(failed)
        raise OSError(code, os.strerror(code))
    return pid


def _devnull(fallback):
    try:
        return os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return fallback  # no /dev/null (a container without one): stdout joins stderr


def _inheritable_fds(keep):
    """fds >= 3 a hook would inherit (e.g. an init's preserved fds): closed in the hook."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    fds = []
    for name in names:
        fd = int(name)
        if fd < 3 or fd in keep:
            continue
        try:
            if os.get_inheritable(fd):
                fds.append(fd)
        except OSError:
            pass  # the listing's own fd, closed by now
    return fds


def _watch(pid, stdin_w, err_r, data, timeout):
    """Write ``data`` to the hook, collect its stderr, reap it: (exit code or None, stderr)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    chunks = []
    delay = 0.0002
    while True:
        data = _feed(stdin_w, data)
        if data is None and stdin_w >= 0:
            _close(stdin_w)
            stdin_w = -1
        _drain(err_r, chunks)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            _drain(err_r, chunks)
            return os.waitstatus_to_exitcode(status), b"".join(chunks)[-4096:]
        if deadline is not None and time.monotonic() > deadline:
            os.kill(pid, _signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, b"".join(chunks)
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def _feed(fd, data):
    """Write what the pipe takes; return the rest, or None once all is written (or refused)."""
    if data is None or fd < 0:
        return None
    try:
        written = os.write(fd, data) if data else 0
    except BlockingIOError:
        return data
    except OSError:
        return None  # the hook closed its stdin (EPIPE): it does not want the state
    return data[written:] or None


def _drain(fd, chunks):
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            return
        chunks.append(chunk)
        if len(chunks) > 16:  # a chatty hook: keep the end, where the error is
            del chunks[:-16]


def _close(fd):
    if fd is not None and fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def hook_env(pairs, inherited=None):
    """The environment a hook runs with: its ``env`` if given (None: not given), else
    ``inherited`` (None: this process's)."""
    if pairs is None:
        if inherited is None:
            return os.environ
        pairs = inherited
    env = {}
    for item in pairs:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def _status(code):
    return f"signal {-code}" if code < 0 else str(code)
