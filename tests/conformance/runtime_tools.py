"""OCI runtime-tools' validation programs, run against kago-oci and a reference runtime.

``./dev setup`` builds runtime-tools (``runtimetest`` and one ``NAME.t`` per validation
program) into ``.build/runtime-tools``. Each program is a TAP producer: it writes bundles
(``util.PrepareBundle`` untars ``./rootfs-amd64.tar.gz`` into a fresh ``$TMPDIR/ocitest*``
whose root path is ``.``), copies ``./runtimetest`` into them and drives ``$RUNTIME create |
start | state | kill | delete`` itself, with the runtime's default ``--root``. So a
``Workspace`` holds, in its working directory, ``runtimetest``, a rootfs tarball made from
busybox-static (kago.testing.busybox) and one wrapper script per runtime that adds a private
``--root``; after every program it deletes what the program left: containers in those roots,
processes it started (found by an environment marker), mounts and files under its ``$TMPDIR``
and the cgroups the programs name (``/cgrouptest``, ``testdir/cgrouptest/container``).

Assertions are matched between runtimes by program + description (pids and temporary names
normalised, repeated descriptions numbered in order), plus one per program: "the program ran
to its plan" (exit status 0, a ``1..N`` line, no top-level error), so that a crash or a
timeout under one runtime shows even when it emitted no assertion at all.
"""

import dataclasses
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, ".build", "runtime-tools")
RUNTIMETEST = os.path.join(BUILD, "runtimetest")
PROGRAMS_DIR = os.path.join(BUILD, "validation")
RUNC = "/usr/sbin/runc"
CRUN = "/usr/bin/crun"

PASS, FAIL, SKIP = "pass", "fail", "skip"
COMPLETED = "(the program ran to its plan)"
# cgroupsPath values the programs use (runtime-tools' cgroups.AbsCgroupPath / RelCgroupPath)
CGROUP_NAMES = ("cgrouptest", "testdir")
MARKER = "KAGO_RUNTIME_TOOLS_RUN"

_LINE = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$")
_DIRECTIVE = re.compile(r"#\s*(SKIP|TODO)\b\s*(.*)$", re.IGNORECASE)
_VARYING = (
    (re.compile(r"\b(ocitest|oci-pid|runtimetest)[A-Za-z0-9_]+"), r"\1*"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\d{5,}"), "<n>"),  # pids, random name suffixes; small numbers are values
)


def available():
    """None when the suite is built, else why it is not."""
    if not os.path.isfile(RUNTIMETEST) or not os.path.isdir(PROGRAMS_DIR):
        return (f"runtime-tools is not built in {BUILD} (./dev setup builds it from "
                f"../shared/third_party or $KAGO_THIRD_PARTY)")
    return None


def programs():
    """The validation programs' names, sorted (``default``, ``linux_seccomp``, ...)."""
    if available():
        return []
    return sorted(n[:-2] for n in os.listdir(PROGRAMS_DIR) if n.endswith(".t"))


def select(names, patterns):
    """The ``names`` matching one of the space-separated shell ``patterns`` (all when empty),
    in order; a pattern that matches none is an error naming it (a typo must not make a
    smaller run pass)."""
    wanted = patterns.split()
    if not wanted:
        return list(names)
    unmatched = [p for p in wanted if not fnmatch.filter(names, p)]
    if unmatched:
        raise ValueError(f"KAGO_RUNTIME_TOOLS_PROGRAMS: no validation program matches "
                         f"{' '.join(unmatched)}")
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in wanted)]


# ---------------------------------------------------------------- TAP


@dataclasses.dataclass
class Assertion:
    key: str          # normalised description, "#2" appended to its second occurrence
    outcome: str      # pass, fail or skip
    line: str         # the TAP line as written
    detail: str = ""  # the runtime's error from the diagnostic block, if any


@dataclasses.dataclass
class Run:
    program: str
    runtime: str
    returncode: object  # int, or None when it timed out
    seconds: float
    tap: str
    stderr: str
    assertions: list

    def outcomes(self):
        return {a.key: a for a in self.assertions}

    def counts(self):
        real = [a for a in self.assertions if a.key != COMPLETED]
        return {o: sum(a.outcome == o for a in real) for o in (PASS, FAIL, SKIP)}


def normalise(description):
    text = " ".join(description.split())
    for pattern, repl in _VARYING:
        text = pattern.sub(repl, text)
    return text


def parse_tap(text, returncode):
    """The assertions of one program's TAP output, plus its COMPLETED pseudo-assertion.

    A diagnostic block follows the assertion it explains (a failing one gets its error as
    ``detail``); one with an ``error`` in a run that has no assertion at all is the program's
    own verdict (``1..0`` after "hooks MUST be called in the listed order"). A program that
    exits 0 having written nothing at all has passed (process_capabilities_fail only checks
    that create fails).
    """
    assertions, seen, planned, errors = [], {}, False, []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if re.match(r"^1\.\.\d+", line):
            planned = True
            continue
        if line.strip() == "---":  # a YAML block; the programs write JSON in it
            block = []
            while i < len(lines) and lines[i].strip() != "...":
                block.append(lines[i])
                i += 1
            i += 1
            detail, is_error = _diagnostic("\n".join(block))
            if assertions and assertions[-1].outcome == FAIL and not assertions[-1].detail:
                assertions[-1].detail = detail
            if is_error:
                errors.append(detail)
            continue
        m = _LINE.match(line)
        if not m:
            continue
        status, _number, rest = m.groups()
        d = _DIRECTIVE.search(rest)
        if d and d.group(1).upper() == "SKIP":
            outcome, desc = SKIP, "# SKIP " + d.group(2)
        else:
            outcome = PASS if status == "ok" else FAIL
            desc = rest
        key = normalise(desc)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            key = f"{key} #{seen[key]}"
        assertions.append(Assertion(key, outcome, line))
    top_error = errors[0] if errors and not assertions else ""
    silent = returncode == 0 and not text.strip()
    completed = silent or (returncode == 0 and planned and not top_error)
    if completed:
        why = ""
    elif returncode is None:
        why = "timed out"
    elif top_error:
        why = top_error
    elif returncode != 0:
        why = f"exit status {returncode}"
    else:
        why = "no plan line"
    assertions.append(Assertion(COMPLETED, PASS if completed else FAIL, "", why))
    return assertions


def _diagnostic(block):
    """(a one-line summary, whether it carries an ``error``) of a diagnostic block."""
    try:
        data = json.loads(block)
    except ValueError:
        return " ".join(block.split())[:500], False
    if not isinstance(data, dict):
        return str(data)[:500], False
    parts = [" ".join(str(data[k]).split()) for k in ("error", "stderr") if data.get(k)]
    return " | ".join(parts)[:500], bool(data.get("error"))


def regressions(reference, candidate):
    """The assertions ``reference`` passes and ``candidate`` does not (fails, skips, lacks).

    A program's exit status is its verdict on the runtime: when it judged the reference
    wrong (non-zero) and the candidate right (zero), what the reference's container printed
    on the way is not held against the candidate (runc runs a container with the unknown
    capability CAP_TEST that process_capabilities_fail requires to be refused).
    """
    theirs = candidate.outcomes()
    found = []
    judged = reference.returncode not in (0, None) and candidate.returncode == 0
    for a in reference.assertions:
        if judged and a.key != COMPLETED:
            continue
        if a.outcome != PASS:
            continue
        b = theirs.get(a.key)
        if b is None:
            found.append((a.key, "missing", "the program stopped before it"))
        elif b.outcome != PASS:
            found.append((a.key, b.outcome, b.detail))
    return found


# ---------------------------------------------------------------- running


class Workspace:
    """A working directory and private state roots for running the programs (see module doc)."""

    def __init__(self, work, kago_oci, busybox_rootfs):
        self.work = os.path.abspath(work)
        self.tmp = os.path.join(self.work, "tmp")
        os.makedirs(self.tmp, exist_ok=True)
        shutil.copy2(RUNTIMETEST, os.path.join(self.work, "runtimetest"))
        with tarfile.open(os.path.join(self.work, "rootfs-amd64.tar.gz"), "w:gz",
                          compresslevel=1) as tar:
            tar.add(busybox_rootfs, arcname=".")
        self.roots, self.wrappers = {}, {}
        self._wrap("kago-oci", kago_oci)
        self._wrap("runc", RUNC)
        for cg in sorted(_named_cgroups(), key=len, reverse=True):
            if not _has_processes(cg):  # an earlier, interrupted run's: it would change results
                _remove_cgroup(cg)
        self.cgroups_before = set(_named_cgroups())

    def _wrap(self, name, binary, prefix=""):
        root = os.path.join(self.work, "state-" + name)
        path = os.path.join(self.work, name + ".sh")
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\n{prefix}exec {binary} --root {root} \"$@\"\n")
        os.chmod(path, 0o755)
        self.roots[name], self.wrappers[name] = root, path

    def add_crun(self):
        """crun 1.8.1 refuses hybrid cgroup hosts: each call gets a tmpfs over cgroup2."""
        if not os.access(CRUN, os.X_OK):
            return False
        root = os.path.join(self.work, "state-crun")
        path = os.path.join(self.work, "crun.sh")
        inner = (f"mount --make-rprivate / && mount -t tmpfs tmpfs /sys/fs/cgroup/unified && "
                 f"exec {CRUN} --root {root} \"$@\"")
        hybrid = _hybrid()
        with open(path, "w") as f:
            if hybrid:
                f.write(f"#!/bin/sh\nexec unshare -m sh -c '{inner}' crun \"$@\"\n")
            else:
                f.write(f"#!/bin/sh\nexec {CRUN} --root {root} \"$@\"\n")
        os.chmod(path, 0o755)
        self.roots["crun"], self.wrappers["crun"] = root, path
        return True

    def run(self, program, runtime, timeout):
        """Run one program against one runtime; clean up after it; return a Run."""
        token = uuid.uuid4().hex
        env = dict(os.environ, RUNTIME=self.wrappers[runtime], TMPDIR=self.tmp,
                   **{MARKER: token})
        # each program in a mount namespace of its own, a slave of the host's: runc given a
        # spec without a mount namespace makes "/" rslave and mounts into the bundle, and
        # none of that may reach the host's mount table (it dies with the namespace)
        argv = ["unshare", "--mount", "--propagation", "slave",
                os.path.join(PROGRAMS_DIR, program + ".t")]
        start = time.monotonic()
        proc = subprocess.Popen(argv, cwd=self.work, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                start_new_session=True, text=True, errors="replace")
        try:
            out, err = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            _killpg(proc.pid)
            out, err = proc.communicate(timeout=30)
            code = None
        seconds = time.monotonic() - start
        left = self.clean(runtime, token)
        if left:
            err += "\nleft behind: " + "; ".join(left)
        return Run(program, runtime, code, seconds, out, err, parse_tap(out, code))

    def clean(self, runtime, token):
        """Remove what a program left; return what could not be removed."""
        left = []
        root = self.roots[runtime]
        for cid in self.containers(runtime):
            subprocess.run([self.wrappers[runtime], "delete", "--force", cid],
                           capture_output=True, timeout=30)
        _kill_marked(token)
        for cg in sorted(set(_named_cgroups()) - self.cgroups_before, key=len, reverse=True):
            if not _remove_cgroup(cg):
                left.append(f"cgroup {cg}")
        for mnt in sorted(_mounts_under(self.tmp), key=len, reverse=True):
            subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=30)
        left += [f"mount {m}" for m in _mounts_under(self.tmp)]
        for name in os.listdir(self.tmp):
            shutil.rmtree(os.path.join(self.tmp, name), ignore_errors=True)
        left += [f"container {cid} in {root}" for cid in self.containers(runtime)]
        return left

    def containers(self, runtime):
        """The IDs in the runtime's private root (``list -q``, so caches there are not IDs)."""
        proc = subprocess.run([self.wrappers[runtime], "list", "-q"], capture_output=True,
                              text=True, timeout=30)
        return proc.stdout.split()


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_marked(token):
    """SIGKILL every process carrying this run's marker (helpers the program forked)."""
    needle = f"{MARKER}={token}".encode()
    for _round in range(20):
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == os.getpid():
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        pids.append(int(name))
            except OSError:
                continue
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _hybrid():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            if fields[4] == "/sys/fs/cgroup/unified" and fields[sep + 1] == "cgroup2":
                return True
    return False


def _named_cgroups(top="/sys/fs/cgroup", depth=8):
    """Cgroup directories named like the programs' cgroupsPath, in every hierarchy."""
    found = []
    for hierarchy in os.listdir(top):
        base = os.path.join(top, hierarchy)
        if os.path.islink(base) or not os.path.isdir(base):
            continue
        for dirpath, dirnames, _ in os.walk(base):
            if os.path.basename(dirpath) in CGROUP_NAMES:
                found.append(dirpath)
            if dirpath.count("/") - base.count("/") >= depth:
                dirnames[:] = []
    return found


def _has_processes(path):
    for dirpath, _dirs, _files in os.walk(path):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                if f.read().strip():
                    return True
        except OSError:
            pass
    return False


def _remove_cgroup(path):
    """rmdir a leftover test cgroup and its children, killing what still runs in them."""
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda w: len(w[0]), reverse=True):
        for _try in range(50):
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)
    return not os.path.exists(path)


def _mounts_under(path):
    prefix = path.rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split()[4].replace("\\040", " ")
            if mnt.startswith(prefix):
                found.append(mnt)
    return found


# What the whole run saw, for the summary conftest.py prints.
TOTALS = {"programs": 0, "of": 0, "selected": "", "seconds": 0.0, "regressions": 0, "behind_crun": 0, "runtimes": {},
          "records": "", "second_run": [], "unstable": []}
