"""ComposeError: one line naming the file and line at fault (``compose.yaml:7: services.web.
ports[0]: "80:x" is not a port``); ``kago compose`` exits 1 with it, as docker compose."""

from kago.errors import KagoError


class ComposeError(KagoError):
    exit_code = 1

    def __init__(self, message, file=None, line=None, path=None):
        self.file, self.line, self.path = file, line, path
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        field = f"{path}: " if path else ""
        super().__init__(f"{where}{field}{message}")


def dotted(path):
    """("services", "web", "ports", 0) -> services.web.ports[0]"""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
