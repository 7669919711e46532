"""A recording fake of the kernel calls, so ``linux/`` and ``process/`` code runs without root.

youki passes a ``Syscall`` trait object with a test double; in kago every kernel call goes
through ``kago.kernel.libc`` (ctypes wrappers) or ``os``, looked up at call time, so the seam
is those module attributes. ``Recorder`` swaps the named ones for recorders, in order::

    with Recorder(["mount", "umount2", "pivot_root"], os_calls=["fchdir"]) as sys:
        sys.fail("umount2", errno.EBUSY)             # every umount2 fails, as the kernel would
        rootfs.pivot("/b/rootfs")
    assert sys.names() == ["fchdir", "pivot_root", "fchdir", "mount", "umount2"]

A scripted failure raises what the real wrapper raises (``KernelError`` for libc, ``OSError``
for os) with that errno; ``returns`` sets a result. Calls not named run for real, so name
every call the code under test makes that would need privileges.
"""

import os

from kago.errors import KernelError
from kago.kernel import libc


class Call:
    __slots__ = ("name", "args", "kwargs")

    def __init__(self, name, args, kwargs):
        self.name, self.args, self.kwargs = name, args, kwargs

    def __eq__(self, other):
        if isinstance(other, tuple):
            return (self.name, *self.args) == other
        return NotImplemented

    def __repr__(self):
        return f"Call({self.name}, {self.args!r}, {self.kwargs!r})"


class Recorder:
    def __init__(self, libc_calls=(), os_calls=()):
        self.calls = []
        self._targets = [(libc, n) for n in libc_calls] + [(os, n) for n in os_calls]
        self._saved = []
        self._results = {}
        self._failures = {}

    # --- scripting
    def returns(self, name, *values):
        """What ``name`` returns: the values in turn, the last one from then on."""
        self._results[name] = list(values)
        return self

    def fail(self, name, errno_, when=None, times=None):
        """Make ``name`` fail with ``errno_``: only the calls whose arguments ``when`` accepts,
        and only the first ``times`` of them (None: every one)."""
        self._failures.setdefault(name, []).append([errno_, when, times])
        return self

    # --- reading
    def names(self):
        return [c.name for c in self.calls]

    def of(self, name):
        return [c.args for c in self.calls if c.name == name]

    # --- installing
    def __enter__(self):
        for module, name in self._targets:
            if not hasattr(module, name):
                raise AttributeError(f"{module.__name__} has no {name}: nothing to record")
            self._saved.append((module, name, getattr(module, name)))
            setattr(module, name, self._fake(module, name))
        return self

    def __exit__(self, *exc):
        while self._saved:
            module, name, real = self._saved.pop()
            setattr(module, name, real)
        return False

    def _fake(self, module, name):
        def call(*args, **kwargs):
            self.calls.append(Call(name, args, kwargs))
            for rule in self._failures.get(name, ()):
                err, when, times = rule
                if times != 0 and (when is None or when(*args, **kwargs)):
                    if times is not None:
                        rule[2] = times - 1
                    if module is os:
                        raise OSError(err, os.strerror(err))
                    raise KernelError(name, err, str(args[0]) if args else None)
            values = self._results.get(name)
            if not values:
                return None
            return values.pop(0) if len(values) > 1 else values[0]
        return call
