"""``kago build [-t NAME[:TAG]]... [-f FILE] [--build-arg K=V]... [--target STAGE]
[--no-cache] [-q] PATH|-``: an image from a Containerfile, as ``docker build``.

PATH is the build context (a directory); ``-`` reads a tar archive of one from stdin (or,
when stdin is not a tar, the Containerfile itself, with an empty context). The file is
``-f FILE`` (a path, or inside the tar for ``-``; ``-f -`` reads it from stdin), else
Containerfile, else Dockerfile in the context. Progress goes to stdout and a RUN's output
on stderr as BuildKit's ``--progress=plain`` shows them (numbered steps, each RUN's output
with its time, DONE with the step's time or CACHED); the image ID goes to stdout. With
``-q`` (or ``--progress=quiet``) only the ID is printed, and the failed step's output on
stderr if one fails. A failed build exits 1, as docker's; a bad flag 125.
"""

import argparse
import io
import os
import shutil
import sys
import uuid

from kago.errors import UsageError

NAMES = ("Containerfile", "Dockerfile")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # docker: flag errors exit 125, not argparse's 2
        raise UsageError(f"{self.prog}: {message}")


def _parser():
    p = _Parser(prog="kago build", description="Build an image from a Containerfile.")
    p.add_argument("-t", "--tag", action="append", default=[], help="NAME[:TAG] (repeatable)")
    p.add_argument("-f", "--file", help="the Containerfile (default: PATH/Containerfile or "
                                        "PATH/Dockerfile)")
    p.add_argument("--build-arg", action="append", default=[], metavar="K=V",
                   help="set a build-time variable (ARG): KEY=VALUE")
    p.add_argument("--target", help="build this stage and what it needs, not the last")
    p.add_argument("--no-cache", action="store_true", help="run every step again")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    p.add_argument("--progress", default="auto", choices=("auto", "plain", "tty", "quiet"),
                   help="how to show progress: plain (auto and tty too: BuildKit's plain "
                        "lines on stderr) or quiet (as -q)")
    p.add_argument("context", metavar="PATH|-",
                   help="the build context: a directory, or - for a Dockerfile on stdin")
    return p


def main(glob, argv):
    args = _parser().parse_args(argv)
    args.quiet = args.quiet or args.progress == "quiet"
    from kago.manager.build.errors import BuildError
    from kago.manager.engine import Manager
    mgr = Manager(glob.get("root"), glob.get("runroot"), glob.get("runtime"))
    scratch = shown = None
    try:
        from kago.manager.build import context
        from kago.manager.build.executor import Builder, Options
        opts = Options(_tags(args.tag), _build_args(args.build_arg), args.target,
                       args.no_cache)
        if args.context == "-":
            scratch = _scratch(mgr)
            top, text, source = _stdin_context(scratch, args.file)
        else:
            top = args.context
            if not os.path.isdir(top):
                raise BuildError(f"{top}: the build context is not a directory")
            text, source = _file(top, args.file)
        ignore = context.Ignore(_read(os.path.join(top, ".dockerignore")) or "")
        tree = context.Tree(top, "the build context", ignore)
        from kago.manager.build import progress
        shown = progress.Quiet() if args.quiet else progress.Plain(_err)
        builder = Builder(mgr, tree, opts, shown)
        try:
            info = builder.build(text, source)
        except BuildError:
            if args.quiet and shown.collected:
                sys.stderr.write("".join(shown.collected))
            raise
    except BuildError as e:
        if shown is not None and getattr(shown, "count", 0):
            _err()  # after the failed step's ERROR line, as BuildKit leaves a gap
        print(f"kago: {e}", file=sys.stderr)
        return 1
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    sys.stdout.write("sha256:" + info.id + "\n")
    sys.stdout.flush()
    return 0


def _err(line=""):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _tags(items):
    from kago.storage import reference
    from kago.storage.errors import StoreError
    out = []
    for item in items:
        try:
            out.append(reference.normalize(item))
        except StoreError as e:  # a bad flag: 125, before anything is built
            raise UsageError(f"kago build: -t {item}: {e}") from None
    return out


def _build_args(items):
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise UsageError(f"--build-arg {item}: use KEY=VALUE")
        if not eq:  # docker: --build-arg KEY takes KEY from the environment, if set there
            if key not in os.environ:
                continue
            value = os.environ[key]
        out[key] = value
    return out


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def _file(top, name):
    """(text, name for errors) of the Containerfile."""
    from kago.manager.build.errors import BuildError
    if name == "-":
        return sys.stdin.read(), "Containerfile"
    if name:
        text = _read(name)
        if text is None:
            raise BuildError(f"{name}: no such file")
        return text, os.path.basename(name)
    for candidate in NAMES:
        text = _read(os.path.join(top, candidate))
        if text is not None:
            return text, candidate
    raise BuildError(f"{top}: no Containerfile or Dockerfile in the build context (or give "
                     "-f FILE)")


def _scratch(mgr):
    from kago.manager.build.executor import private_dir
    tmp = os.path.join(mgr.paths.root, "build", "tmp")
    private_dir(tmp)
    path = os.path.join(tmp, f"ctx-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    os.mkdir(path, 0o700)
    return path


def _stdin_context(scratch, name):
    """``kago build -``: stdin is a tar of the context, or else the Containerfile."""
    from kago.manager.build import context
    from kago.manager.build.errors import BuildError
    data = sys.stdin.buffer.read()
    probe = os.path.join(scratch, ".probe")
    with open(probe, "wb") as f:
        f.write(data)
    is_tar = context.is_archive(probe)
    os.unlink(probe)
    top = os.path.join(scratch, "context")
    os.mkdir(top, 0o755)
    if not is_tar:
        if name:
            raise BuildError("-f with `build -`: stdin is not a tar archive holding the file")
        return top, data.decode("utf-8", errors="replace"), "Containerfile"
    context.extract(io.BytesIO(data), top, what="the context on stdin")
    tree = context.Tree(top, "the context on stdin")
    for candidate in [name] if name else NAMES:
        path = tree.resolve(candidate)  # a symlink in the tar stays inside it
        text = _read(path) if path else None
        if text is not None:
            return top, text, os.path.basename(candidate)
    if name:
        raise BuildError(f"{name}: not in the context on stdin")
    raise BuildError("the context on stdin has no Containerfile or Dockerfile (give -f "
                     "FILE)")
