"""The build's one error: a line naming where it went wrong (``Containerfile:7: ...``)."""

from kago.manager.errors import ManagerError


class BuildError(ManagerError):
    """A build that cannot go on: a parse error, a missing file, a failed RUN. docker build
    exits 1 for each of them; so does ``kago build``."""

    exit_code = 1

    def __init__(self, message, where=None):
        self.where = where
        self.reason = message
        super().__init__(f"{where}: {message}" if where else message)


def at(source, line):
    """``Containerfile:7``: a place to name in an error."""
    return f"{source}:{line}"
