"""Definition files that ship with kago (``kago up FILE``; docs/manager.md).

They are definition files, not modules: ``kago up`` runs them with ``env`` given, so importing
one fails. ``path(name)`` is where one is installed (``kago demo`` runs ``web10.py``).
"""

import os


def path(name):
    """The installed path of the bundled definition file ``name`` (``"web10.py"``)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
