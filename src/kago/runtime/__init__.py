"""kago's library API: Container lifecycle (container.py), exec, resources, state store.

``Undo`` lives here, in the package itself, because both the runtime's create/exec and the
manager's create use it, and a module of its own would be one more file on kago-oci's start
path: what a multi-step operation made so far, undone in reverse when a later step fails. A
failure at any step must leave nothing behind, and one cleanup that fails must not stop the
others.
"""


class Undo:
    __slots__ = ("steps",)

    def __init__(self):
        self.steps = []

    def push(self, fn, *args):
        self.steps.append((fn, args))

    def run(self):
        """Run every step, last first; return the exceptions of those that failed."""
        errors = []
        for fn, args in reversed(self.steps):
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 - keep undoing, report at the end
                errors.append(e)
        self.steps = []
        return errors
