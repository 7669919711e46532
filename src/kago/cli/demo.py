"""``kago demo --one``: the embedded busybox bundle, run through a runtime (kago-oci by default).

``kago demo`` itself (ten web containers from one definition file) is demo_web.py's.
"""

import os
import sys

# What the demo container prints: its hostname (the spec's "kago"), its PID (1: it is the
# init of a new PID namespace) and its identity (uid=0(root), from the image's /etc/passwd).
DEMO_SCRIPT = 'echo "hostname: $(hostname)"; echo "pid: $$"; id'


def demo(argv):
    opts = _parse_demo(argv)
    if not opts.one:
        from kago.cli.demo_web import web_demo
        return web_demo()
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
        prog="kago demo",
        description="Start ten busybox web servers from one definition file on a scratch "
                    "manager root, answer one over HTTP, show their stats, remove everything.")
    parser.add_argument("--one", action="store_true",
                        help="instead, run one busybox container through the runtime alone "
                             "(hostname, PID 1, id)")
    parser.add_argument("--keep", action="store_true",
                        help="--one: keep the temporary bundle directory and print its path")
    parser.add_argument("--runtime", metavar="PATH",
                        help="--one: runc-compatible runtime to use (default: kago-oci)")
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
            print("kago: demo: --one's bundle needs root (as a user: kago-oci spec --rootless, "
                  "docs/rootless.md)", file=sys.stderr)
    return _exit_status(status)


def _describe(error):
    """One lower-case line naming the path, not Python's ``[Errno 2] …: '/x'``."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.filename}: {error.strerror.lower()}"
    return str(error)


def _exit_status(status):
    # subprocess reports death by signal N as -N; a shell would say 128+N.
    return 128 - status if status < 0 else status

