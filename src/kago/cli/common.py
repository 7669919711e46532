"""What every ``kago`` verb shares: its argparse parser (flag errors exit 125, docker's), the
client of the global flags' root (kago.client), output lines, and docker's partial failure
over many containers."""

import sys


class Usage(Exception):
    pass


def parser(prog, description):
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message):  # docker: flag errors exit 125, not argparse's 2
            raise Usage(f"{self.prog}: {message}")

    return Parser(prog=f"kago {prog}", description=description)


def client(glob):
    from kago.client import Client
    return Client(glob["root"], glob["runroot"], glob["runtime"])


def out(line=""):
    sys.stdout.write(line + "\n")


def each(glob, refs, fn, verb):
    """Apply ``fn`` to each container, printing its reference; docker's partial failure:
    go on, report each error, exit 1 if any failed."""
    from kago.errors import KagoError
    c = client(glob)
    failed = 0
    for ref in refs:
        try:
            fn(c, ref)
            out(ref)
        except KagoError as e:
            print(f"kago: {verb} {ref}: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def confirm(question):
    """docker's prompt: only y or yes (any case) goes on; no terminal input is a no."""
    sys.stdout.write(question)
    sys.stdout.flush()
    answer = sys.stdin.readline() if sys.stdin else ""
    return answer.strip().lower() in ("y", "yes")

