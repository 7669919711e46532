"""The kago error tree.

Every error a user can see is a ``KagoError``: ``str(err)`` is the one-line message the CLI prints
(lower case, no trailing period, naming the path or value at fault, runc's wording where clients
parse it). Fields are kept as attributes so callers and tests can check them without parsing text.
Errors that come from a system call are ``KernelError``, a subclass of ``OSError`` that also says
which operation on which path failed.

Imports nothing: this module is on ``kago-oci``'s start-up path.
"""

import os


class KagoError(Exception):
    """Base of every error kago reports to a user."""

    exit_code = 1


class UsageError(KagoError):
    """A bad command line: unknown flag, missing argument."""


class SpecError(KagoError):
    """config.json (or process.json) is malformed or asks for something invalid.

    ``field`` is the JSON path of the offending value, e.g. ``linux.uidMappings[1].size``.
    """

    def __init__(self, field, message):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class InvalidIDError(KagoError):
    def __init__(self, container_id):
        self.id = container_id
        super().__init__("invalid container ID format")


class ContainerNotFound(KagoError):
    def __init__(self, container_id):
        self.id = container_id
        super().__init__("container does not exist")


class ContainerExists(KagoError):
    def __init__(self, container_id):
        self.id = container_id
        super().__init__("container with given ID already exists")


class IncorrectStatus(KagoError):
    """The operation is not allowed in the container's current status (runc's wording)."""


class HookError(KagoError):
    def __init__(self, kind, path, message):
        self.kind = kind
        self.path = path
        super().__init__(f"{kind} hook {path}: {message}")


class ExecError(KagoError):
    """The container's program cannot be started.

    The messages copy runc's, because podman/conmon map them to exit 127/126 by their words:
    "executable file not found in $PATH", "no such file or directory", "permission denied".
    """

    exit_code = 1

    def __init__(self, message, status=126):
        #: what the container's process exits with when this happens after "ready", when
        #: nobody is left to report to: 127 "not found", 126 "cannot execute" (the shell's)
        self.status = status
        super().__init__(message)


class KernelError(KagoError, OSError):
    """A system call failed: ``op`` on ``path`` with ``errno``."""

    def __init__(self, op, err, path=None, detail=None):
        self.op = op
        self.path = path
        self.detail = detail
        text = os.strerror(err).lower() if err else "failed"
        where = f" {path}" if path else ""
        extra = f" ({detail})" if detail else ""
        OSError.__init__(self, err, f"{op}{where}{extra}: {text}")

    def __str__(self):
        return self.args[1] if len(self.args) > 1 else super().__str__()


class MountError(KernelError):
    """A mount (or a step preparing one) failed."""


class CgroupError(KagoError):
    def __init__(self, path, message, err=None):
        self.path = path
        self.errno = err
        super().__init__(f"cgroup {path}: {message}")


class CreateError(KagoError):
    """``create`` failed; ``cause`` is why, ``cleanup_errors`` what rollback could not undo."""

    def __init__(self, cause, cleanup_errors=()):
        self.cause = cause
        self.cleanup_errors = list(cleanup_errors)
        text = describe(cause)
        if self.cleanup_errors:
            text += "; cleanup also failed: " + "; ".join(describe(e) for e in self.cleanup_errors)
        super().__init__(text)


def describe(err):
    """One line for any exception: a plain OSError reads ``path: reason``, not ``[Errno 2] ...``."""
    if isinstance(err, OSError) and not isinstance(err, KagoError) and err.strerror:
        reason = err.strerror.lower()
        return f"{err.filename}: {reason}" if err.filename else reason
    return str(err) or type(err).__name__
