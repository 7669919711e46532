"""The syscall probe: a small static C program the escape tests put inside containers.

``probe.c`` (beside this file) takes a verb (``mount``, ``keyctl``, ``write-file PATH DATA``…),
makes the one system call it names and prints ``OK [detail]`` (exit 0) or
``ERR <errno name> <strerror>`` (exit 1). A shell cannot make most of these calls (bpf,
kexec_load, open_by_handle_at, perf_event_open, keyctl), and busybox's applets hide the errno,
hence C. It must be static: the test rootfs has no libc.

``build_probe(dest_dir)`` compiles it once per source version (``gcc -static -O1``, cached under
``cache_dir`` (default ``$KAGO_PROBE_CACHE`` or /tmp/kago-probe-cache) by the source's hash) and
copies it to ``dest_dir/probe``::

    from kago.testing import probe
    path = probe.build_probe(os.path.join(bundle.rootfs, "bin"))   # -> .../rootfs/bin/probe

Inside a container, run it with ``PROBE_CONTAINED=1`` in the environment: without it the probe
refuses to run, because as host root ``probe mount`` would really mount a tmpfs on /tmp.

Command line: ``python3 -m kago.testing.probe DIR`` builds DIR/probe and prints its path.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

from kago.errors import KagoError
from kago.testing.busybox import _has_pt_interp

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe.c")
# KAGO_PROBE_CACHE: a cache filled elsewhere (./dev test-v2 compiles on the host for a guest
# that has no gcc)
DEFAULT_CACHE = os.environ.get("KAGO_PROBE_CACHE") or os.path.join(tempfile.gettempdir(),
                                                                    "kago-probe-cache")
GCC_HINT = "gcc is not installed: apt-get install gcc"
LIBC_HINT = "glibc's static libc (libc.a) is missing: apt-get install libc6-dev"

# verb -> the arguments it takes, for readers of the tests (probe.c's table is the truth)
VERBS = {
    "mount": "[TARGET]", "umount": "[TARGET]", "pivot_root": "", "unshare-user": "",
    "keyctl": "[NAME]", "add_key": "", "keyring": "", "ptrace": "PID",
    "kexec_load": "", "open_by_handle_at": "", "bpf": "", "perf_event_open": "",
    "mknod": "PATH b|c MAJOR MINOR", "open-write": "PATH", "create-file": "PATH",
    "write-file": "PATH DATA", "read-file": "PATH", "list-dir": "PATH",
    "chown": "PATH UID GID", "setuid": "UID", "creds": "", "setuid-regain": "",
    "exe-hunt": "SECONDS", "notify": "MESSAGE (to $NOTIFY_SOCKET)",
}
ENV = "PROBE_CONTAINED=1"


class ProbeBuildError(KagoError):
    """The probe cannot be compiled here (no gcc, no static libc) or the result is unusable."""


def source_key():
    with open(SOURCE, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def compiled(cache_dir=None):
    """The path of the compiled probe for the current source, compiling it if needed."""
    cache = cache_dir or DEFAULT_CACHE
    final = os.path.join(cache, f"probe-{source_key()}")
    if os.path.isfile(final):
        return final
    gcc = shutil.which("gcc")
    if gcc is None:
        raise ProbeBuildError(GCC_HINT)
    os.makedirs(cache, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".probe-", dir=cache)
    os.close(fd)
    try:
        proc = subprocess.run([gcc, "-static", "-O1", "-Wall", "-o", tmp, SOURCE],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise ProbeBuildError(_explain(proc.stderr))
        with open(tmp, "rb") as f:
            if _has_pt_interp(f, f.read(64)) is not False:
                raise ProbeBuildError(f"gcc -static made a dynamic or non-ELF binary; {LIBC_HINT}")
        os.chmod(tmp, 0o755)
        os.rename(tmp, final)  # atomic: a concurrent builder's rename wins or loses whole
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return final


def _explain(stderr):
    if "cannot find -lc" in stderr or "libc.a" in stderr:
        return LIBC_HINT
    lines = [line for line in stderr.splitlines() if "error" in line] or stderr.splitlines()
    return "cannot compile the probe: " + (lines[0].strip() if lines else "gcc failed")


def build_probe(dest_dir, name="probe", cache_dir=None, mode=0o755):
    """Copy the compiled probe to ``dest_dir/name`` (created if missing); return that path."""
    binary = compiled(cache_dir)
    os.makedirs(dest_dir, exist_ok=True)
    dest = os.path.join(dest_dir, name)
    shutil.copyfile(binary, dest)
    os.chmod(dest, mode)
    return dest


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python3 -m kago.testing.probe DIR", file=sys.stderr)
        return 1
    try:
        print(build_probe(argv[0]))
    except (KagoError, OSError) as e:
        print(f"kago.testing.probe: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
