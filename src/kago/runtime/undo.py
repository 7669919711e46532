"""What a multi-step operation made so far, undone in reverse when a later step fails.

Used by the runtime's create and exec and by the manager's create: a failure at any step must
leave nothing behind, and one cleanup that fails must not stop the others.
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
