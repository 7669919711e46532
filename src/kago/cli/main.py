"""``kago``: the command people type (the docker/podman-like manager comes in a later issue).

For now it knows three things:

- ``kago demo [--keep] [--runtime PATH]``: build the embedded busybox bundle in a temp dir, run
  it through a runc-compatible runtime (``kago-oci`` by default) and return the container's exit
  status. It shows, in three lines, that the container has its own hostname, is PID 1 in its
  own PID namespace, and runs as root inside.
- ``kago --version`` and ``kago --help``.

Every other verb says it is not implemented yet and exits 2 (a usage error, like argparse).
Imports stay light: ``argparse``, ``subprocess`` and the bundle builder only when the demo
runs, so ``kago --version`` costs the interpreter and little more.
"""

import os
import sys

from kago import __version__

PROG = "kago"

HELP = f"""\
usage: kago [--version] [--help] COMMAND [ARGS...]

kago {__version__}: a Linux container runtime and manager in Python.

commands:
  demo [--keep] [--runtime PATH]
                 build a busybox bundle and run it through the runtime
                 (default: the kago-oci next to this Python, else on PATH)

The manager's verbs (run, ps, logs, exec, stop, rm, images…) come later;
for OCI bundles use kago-oci, the runc-compatible runtime.
"""

# What the demo container prints: its hostname (the spec's "kago"), its PID (1: it is the
# init of a new PID namespace) and its identity (uid=0(root), from the image's /etc/passwd).
DEMO_SCRIPT = 'echo "hostname: $(hostname)"; echo "pid: $$"; id'


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        sys.stderr.write(HELP)
        return 2
    verb, rest = argv[0], argv[1:]
    if verb in ("-h", "--help", "help"):
        sys.stdout.write(HELP)
        return 0
    if verb in ("-V", "--version", "version"):
        print(f"kago version {__version__}")
        return 0
    if verb == "demo":
        return demo(rest)
    print(f"kago: '{verb}' is not implemented yet (the manager comes later); use kago-oci",
          file=sys.stderr)
    return 2


# ---------------------------------------------------------------- demo


def demo(argv):
    opts = _parse_demo(argv)
    runtime = opts.runtime or default_runtime()
    if runtime is None:
        print("kago: kago-oci not found next to the Python interpreter nor on PATH; "
              "pass --runtime PATH", file=sys.stderr)
        return 127
    # Imported here: building an image is the demo's business, not every kago command's.
    import shutil
    import tempfile

    from kago.testing import busybox

    workdir = tempfile.mkdtemp(prefix="kago-demo-")
    try:
        bundle = busybox.build_bundle(os.path.join(workdir, "bundle"),
                                      args=["sh", "-c", DEMO_SCRIPT])
        status = _run(runtime, bundle)
    except (OSError, busybox.BusyboxError) as e:
        print(f"kago: demo: {_describe(e)}", file=sys.stderr)
        status = 1
    finally:
        if opts.keep:
            print(f"kago: demo bundle kept in {workdir}/bundle", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


def _parse_demo(argv):
    import argparse

    parser = argparse.ArgumentParser(
        prog="kago demo", description="Run the embedded busybox image through a runtime.")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary bundle directory and print its path")
    parser.add_argument("--runtime", metavar="PATH",
                        help="runc-compatible runtime to use (default: kago-oci)")
    return parser.parse_args(argv)


def default_runtime():
    """The kago-oci installed with this Python (venv), else the one on PATH, else None."""
    import shutil

    beside = os.path.join(os.path.dirname(sys.executable), "kago-oci")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("kago-oci")


def _run(runtime, bundle):
    """``RUNTIME run --bundle B ID`` in the foreground; return the container's exit status.

    ``run`` without ``-d`` creates, starts, waits for and deletes the container. If the runtime
    dies half-way it may leave state behind, so a quiet ``delete -f`` follows a failure.
    """
    import subprocess

    cid = "kago-demo-" + os.urandom(4).hex()
    try:
        status = subprocess.call([runtime, "run", "--bundle", os.fspath(bundle), cid])
    except OSError as e:  # the runtime itself is missing or not executable: a shell's 127/126
        print(f"kago: demo: runtime {_describe(e)}", file=sys.stderr)
        return 127 if isinstance(e, FileNotFoundError) else 126
    if status != 0:
        subprocess.call([runtime, "delete", "-f", cid],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if os.geteuid() != 0:
            print("kago: demo: the default bundle needs root (rootless comes later)",
                  file=sys.stderr)
    return _exit_status(status)


def _describe(error):
    """One lower-case line naming the path, not Python's ``[Errno 2] …: '/x'``."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.filename}: {error.strerror.lower()}"
    return str(error)


def _exit_status(status):
    # subprocess reports death by signal N as -N; a shell would say 128+N.
    return 128 - status if status < 0 else status


if __name__ == "__main__":
    sys.exit(main())
