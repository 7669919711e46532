"""A build's progress as BuildKit prints it with ``--progress=plain``.

Each piece of work is a numbered vertex: a header line ``#N name``, its log lines
``#N 0.123 text`` (seconds since the vertex started), and one end line: ``#N DONE 0.3s``,
``#N CACHED`` or ``#N ERROR: message``. Vertices are separated by a blank line::

    #4 [2/3] RUN echo hi
    #4 0.212 hi
    #4 DONE 0.3s

A step's name is ``[i/n] INSTRUCTION`` (``[stage i/n]`` when the file has more than one
stage), counting the FROM and the instructions BuildKit shows as steps (RUN, COPY, ADD,
WORKDIR). ``Plain(write)`` takes the function that writes a finished line; ``clock`` is
injectable for tests.
"""

import time

STEP_KEYWORDS = frozenset({"RUN", "COPY", "ADD", "WORKDIR"})


def step_names(plan):
    """{(stage index, instruction index or -1 for FROM): "[prefix i/n] TEXT"} for the needed
    stages of ``plan`` (pure)."""
    multi = len(plan.stages) > 1
    names = {}
    for stage in plan.needed:
        steps = [(-1, "FROM " + _base_name(stage.base))] + [
            (i, instr.text) for i, instr in enumerate(stage.instructions)
            if instr.keyword in STEP_KEYWORDS]
        prefix = (stage.name or f"stage-{stage.index}") + " " if multi else ""
        for n, (i, text) in enumerate(steps, 1):
            names[(stage.index, i)] = f"[{prefix}{n}/{len(steps)}] {text}"
    return names


def _base_name(base):
    """What a FROM names, as BuildKit shows it: the full image reference, ``scratch``, or
    the earlier stage."""
    if not isinstance(base, str):
        return base.name or f"stage-{base.index}"
    if base == "scratch":
        return base
    from kago.storage import reference
    from kago.storage.errors import StoreError
    try:
        return reference.normalize(base)
    except StoreError:
        return base


def size(n):
    """BuildKit's byte counts: ``123B``, ``4.56kB``, ``7.89MB``."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n}B" if unit == "B" else f"{n:.2f}{unit}"
        n /= 1000
    return f"{n}B"  # pragma: no cover - the loop returns


class Vertex:
    """One numbered piece of work; ``log`` lines while it runs, then one of ``done``,
    ``cached``, ``error``."""

    def __init__(self, progress, number, name):
        self.progress = progress
        self.number = number
        self.name = name
        self.started = progress.clock()
        self.partial = ""
        self.ended = False

    def log(self, text):
        """Output of the work, any chunking: each complete line is printed with its time."""
        text = self.partial + text
        lines = text.split("\n")
        self.partial = lines.pop()
        for line in lines:
            self._line(line)

    def _line(self, line):
        elapsed = self.progress.clock() - self.started
        self.progress.write(f"#{self.number} {elapsed:.3f} {line.rstrip(chr(13))}")

    def status(self, text):
        """A status line without a time (``transferring context: 2B done``)."""
        self.progress.write(f"#{self.number} {text}")

    def _flush(self):
        if self.partial:
            line, self.partial = self.partial, ""
            self._line(line)

    def done(self):
        self._end(f"DONE {self.progress.clock() - self.started:.1f}s")

    def cached(self):
        self._end("CACHED")

    def error(self, message):
        self._end(f"ERROR: {message}")

    def _end(self, text):
        if self.ended:
            return
        self._flush()
        self.ended = True
        self.progress.write(f"#{self.number} {text}")
        self.progress.current = None


class Plain:
    """The plain printer: ``vertex(name)`` starts the next numbered vertex."""

    def __init__(self, write, clock=time.monotonic):
        self.write_line = write
        self.clock = clock
        self.count = 0
        self.current = None
        self.first = True

    def write(self, line):
        self.write_line(line)

    def vertex(self, name):
        if self.current is not None:  # a vertex nobody ended: say so, do not interleave
            self.current.done()
        if not self.first:
            self.write("")
        self.first = False
        self.count += 1
        self.current = Vertex(self, self.count, name)
        self.write(f"#{self.count} {name}")
        return self.current

    def note(self, line):
        """A line outside any vertex (a warning), after a blank line."""
        if self.current is not None:
            self.current.done()
        self.write("")
        self.write(line)


class Quiet:
    """No progress at all (``-q`` / ``--progress=quiet``); vertices still collect the log,
    so a failed step's output can be shown."""

    def __init__(self):
        self.collected = []

    def vertex(self, name):
        return _QuietVertex(self.collected)

    def note(self, line):
        pass


class _QuietVertex:
    def __init__(self, collected):
        self.collected = collected

    def log(self, text):
        self.collected.append(text)

    def status(self, text):
        pass

    def done(self):
        pass

    cached = done

    def error(self, message):
        pass
