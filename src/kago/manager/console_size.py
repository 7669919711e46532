"""A tty container's terminal size at its start: the bundle's ``process.consoleSize``, set
from the terminal of the command line that attaches from the start (``run -it``, ``start
-ai``), as docker passes the client's size with the start: the container's first look at its
terminal sees that size (a resize after the start would race with it). Later sizes go to the
pty itself (cli/terminal.py).
"""

import json
import os

from kago.manager import perms
from kago.manager.records import Records


def set_console_size(paths, cid, rows, cols):
    """Write ``rows`` x ``cols`` into ``cid``'s bundle, under the record's lock (a network
    re-attach may rewrite the same file)."""
    path = os.path.join(paths.bundle(cid), "config.json")
    with Records(paths).lock(cid):
        with open(path) as f:
            spec = json.load(f)
        proc = spec.get("process") or {}
        if not proc.get("terminal"):
            return
        proc["consoleSize"] = {"height": rows, "width": cols}
        with perms.private_file(path + ".tmp") as f:
            f.write(json.dumps(spec))
        os.rename(path + ".tmp", path)
