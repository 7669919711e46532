"""The manager's errors: one line each, naming the container, image, file or value at fault.

docker's exit codes: 125 when kago itself fails (a bad flag, an unknown image, a name in use),
126 when the container's command cannot be invoked, 127 when it cannot be found; otherwise a
command exits with the container's own status. ``exit_code`` carries the first three.
"""

from kago.errors import KagoError


class ManagerError(KagoError):
    """Something the manager refuses or cannot do (docker's exit status 125)."""

    exit_code = 125


class NoSuchContainer(ManagerError):
    def __init__(self, ref):
        self.ref = ref
        super().__init__(f"no such container: {ref}")


class AmbiguousContainer(ManagerError):
    def __init__(self, ref, matches):
        self.ref = ref
        super().__init__(f"{ref} matches {len(matches)} containers: give more of the ID")


class NameInUse(ManagerError):
    def __init__(self, name, owner):
        self.name = name
        super().__init__(f'the container name "{name}" is already in use by container '
                         f'{owner[:12]}: remove it or pick another name')


class BadValue(ManagerError):
    """A flag or definition field with a value kago cannot use: ``field`` names it."""

    def __init__(self, field, message):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class ImageNotFound(ManagerError):
    def __init__(self, ref):
        self.ref = ref
        super().__init__(f"image not found: {ref} (kago import FILE {ref}, or kago pull {ref})")


class StateError(ManagerError):
    """The verb does not apply in the container's current state (docker's wording)."""


class IdRangeError(ManagerError):
    """A user-namespace ID range overlaps another container's, or none is left."""


class CommandError(ManagerError):
    """The container's command cannot be started: 127 not found, 126 not executable."""

    def __init__(self, message, code):
        super().__init__(message)
        self.exit_code = code


class SupervisorError(ManagerError):
    """The supervisor could not be reached or started."""


class SupervisorGone(SupervisorError):
    """The supervisor's connection ended before its answer (it died)."""


class DefinitionError(ManagerError):
    """A definition file that cannot be loaded; ``file`` and ``line`` say where."""

    def __init__(self, file, line, message):
        self.file = file
        self.line = line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {message}")


def command_error(message):
    """Turn a runtime's "cannot exec" text into docker's 127/126, or None for other failures.

    runc, crun and kago-oci word these alike (conmon and podman match them too):
    ``exec: "x": executable file not found in $PATH``, ``no such file or directory``,
    ``permission denied``.
    """
    text = message.lower()
    if "executable file not found" in text or ("exec" in text and "no such file" in text):
        return CommandError(message, 127)
    if "exec" in text and ("permission denied" in text or "is a directory" in text):
        return CommandError(message, 126)
    return None
