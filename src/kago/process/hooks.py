"""OCI hooks: run each with the container's state JSON on stdin, its env, and its timeout.

Failure semantics (runtime-spec config.md#posix-platform-hooks): a failing prestart,
createRuntime, createContainer or startContainer hook fails the operation (the caller rolls
back); a failing poststart or poststop hook is logged as a warning and the operation goes on.
A hook that outlives its timeout is killed (SIGKILL) and counts as failed.

Hooks are rare, so ``subprocess`` (~10 ms of imports) is only imported when one runs.
"""

from kago import log
from kago.errors import HookError

FATAL = ("prestart", "createRuntime", "createContainer", "startContainer")


def run_hooks(kind, hooks, state_json):
    """Run the hooks of one kind in order; raise HookError for a fatal kind's failure."""
    for hook in hooks or ():
        try:
            with log.phase(f"hook {kind} {hook.path}"):
                run_one(kind, hook, state_json)
        except HookError as e:
            if kind in FATAL:
                raise
            log.warning(str(e))


def run_one(kind, hook, state_json):
    import subprocess
    args = hook.args or [hook.path]
    try:
        proc = subprocess.run(args, executable=hook.path, input=state_json.encode(),
                              env=_env(hook.env), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=hook.timeout, close_fds=True)
    except subprocess.TimeoutExpired:
        raise HookError(kind, hook.path, f"timed out after {hook.timeout}s") from None
    except OSError as e:
        raise HookError(kind, hook.path, e.strerror.lower()) from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        tail = f": {detail[-1]}" if detail else ""
        raise HookError(kind, hook.path, f"exit status {_status(proc.returncode)}{tail}")


def _env(pairs):
    env = {}
    for item in pairs or ():
        key, _, value = item.partition("=")
        env[key] = value
    return env


def _status(code):
    return f"signal {-code}" if code < 0 else str(code)
