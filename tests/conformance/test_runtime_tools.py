"""The OCI runtime-tools validation suite against kago-oci and runc, in the same run.

One test per validation program (runtime_tools.py says how they are run). Each program runs
under runc, then under kago-oci, on this host; the test fails on every assertion that runc
passes and kago-oci does not, so the suite calibrates itself to what the host allows (hugetlb,
blkio, AppArmor, SELinux labels...). With ``KAGO_TEST_CRUN=1`` crun runs too, as a third
reference held to the same rule (off by default: its ~50 s would take the host suite past its
15-minute budget; kago-oci passed every assertion crun passes when it last ran). Every
assertion of every runtime is
written to ``results.jsonl`` (and the raw TAP to ``tap/``) in the test's tmp dir; the totals
print at the end of the run, with how many of the programs ran.

``KAGO_RUNTIME_TOOLS_PROGRAMS`` (shell patterns) runs a subset and
``KAGO_RUNTIME_TOOLS_TIMEOUT`` bounds each run: ``./dev test-v2`` sets both for its emulated
pure cgroup v2 guest (docs/cgroups-v2.md).
"""

import dataclasses
import json
import os
import sys

import pytest

import runtime_tools as rt

KAGO_OCI = os.path.join(os.path.dirname(sys.executable), "kago-oci")
# seconds per program and runtime: runc's slowest takes ~14 s here; an emulated guest (./dev
# test-v2) is many times slower and sets more
TIMEOUT = int(os.environ.get("KAGO_RUNTIME_TOOLS_TIMEOUT") or 60)
# space-separated shell patterns of the programs to run (all when unset): ./dev test-v2 runs the
# cgroup and lifecycle ones; the summary names the selection
SELECTED = os.environ.get("KAGO_RUNTIME_TOOLS_PROGRAMS", "")
PROGRAMS = rt.select(rt.programs(), SELECTED) if rt.programs() else []
rt.TOTALS["of"], rt.TOTALS["selected"] = len(rt.programs()), " ".join(SELECTED.split())

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root and the real kernel"),
    pytest.mark.skipif(rt.available() is not None, reason=str(rt.available())),
]


class Suite:
    def __init__(self, workspace, records, runtimes):
        self.ws, self.records, self.runtimes = workspace, records, runtimes
        os.makedirs(os.path.join(records, "tap"), exist_ok=True)
        rt.TOTALS["records"] = os.path.join(records, "results.jsonl")
        for runtime in runtimes:
            rt.TOTALS["runtimes"].setdefault(
                runtime, {"pass": 0, "fail": 0, "skip": 0, "incomplete": 0, "seconds": 0.0})

    def keep_first(self, run):
        base = os.path.join(self.records, "tap", f"{run.program}.{run.runtime}.first")
        for ext, text in ((".tap", run.tap), (".stderr", run.stderr)):
            with open(base + ext, "w") as f:
                f.write(text)

    def record(self, runs, lost):
        totals = rt.TOTALS
        totals["programs"] += 1
        with open(os.path.join(self.records, "results.jsonl"), "a") as f:
            for run in runs.values():
                counts = totals["runtimes"][run.runtime]
                for outcome, n in run.counts().items():
                    counts[outcome] += n
                counts["incomplete"] += run.outcomes()[rt.COMPLETED].outcome != rt.PASS
                totals["seconds"] += run.seconds
                counts["seconds"] += run.seconds
                base = os.path.join(self.records, "tap", f"{run.program}.{run.runtime}")
                with open(base + ".tap", "w") as t:
                    t.write(run.tap)
                with open(base + ".stderr", "w") as t:
                    t.write(run.stderr)
                for a in run.assertions:
                    f.write(json.dumps(dict(program=run.program, runtime=run.runtime,
                                            returncode=run.returncode,
                                            **dataclasses.asdict(a))) + "\n")
        totals["regressions"] += len(lost)
        behind_crun = rt.regressions(runs["crun"], runs["kago-oci"]) if "crun" in runs else []
        totals["behind_crun"] += len(behind_crun)
        with open(os.path.join(self.records, "regressions.txt"), "a") as f:
            for ref, found in (("runc", lost), ("crun", behind_crun)):
                for key, outcome, detail in found:
                    f.write(f"{ref}\t{runs['kago-oci'].program}\t{key}\t{outcome}\t{detail}\n")


@pytest.fixture(scope="module")
def suite(workdir, rootfs_cache, tmp_path_factory):
    records = str(tmp_path_factory.mktemp("runtime-tools"))
    ws = rt.Workspace(os.path.join(workdir, "runtime-tools"), KAGO_OCI, rootfs_cache)
    runtimes = ["runc", "kago-oci"]
    if os.environ.get("KAGO_TEST_CRUN") == "1" and ws.add_crun():
        runtimes.append("crun")
    return Suite(ws, records, runtimes)


def _propagation():
    """{mount point: its propagation fields} of the host's mount table, as mountinfo says."""
    with open("/proc/self/mountinfo") as f:
        return {(line.split()[4], line.split()[0]): " ".join(
            field for field in line.split(" - ")[0].split()[6:]) for line in f}


@pytest.fixture(scope="module", autouse=True)
def host_mount_table_unchanged():
    """No program, under any runtime, changes the propagation of a host mount (runc given a
    spec without a mount namespace makes "/" rslave where it runs)."""
    before = _propagation()
    yield
    after = _propagation()
    changed = {m: (before[m], after[m]) for m in before if m in after and before[m] != after[m]}
    assert not changed, f"host mounts whose propagation changed: {changed}"


def lost_assertions(runs):
    """What runc or crun (when it runs) passes and kago-oci does not."""
    lost = rt.regressions(runs["runc"], runs["kago-oci"])
    if "crun" in runs:
        seen = {key for key, _outcome, _detail in lost}
        lost += [r for r in rt.regressions(runs["crun"], runs["kago-oci"]) if r[0] not in seen]
    return lost


@pytest.mark.parametrize("program", PROGRAMS or ["(not built)"])
def test_validation_program(suite, program):
    runs = {runtime: suite.ws.run(program, runtime, TIMEOUT) for runtime in suite.runtimes}
    lost = lost_assertions(runs)
    left = [r.stderr for r in runs.values() if "left behind:" in r.stderr]
    if lost:
        # Some programs race their own containers (a trap and `sleep 10 &`; `true` exiting
        # before `kill`), and runc loses such races too under load: a second kago-oci run
        # decides, recorded in place of the first (kept as tap/NAME.kago-oci.first.*) and
        # counted in the summary when it passes.
        suite.keep_first(runs["kago-oci"])
        runs["kago-oci"] = suite.ws.run(program, "kago-oci", TIMEOUT)
        lost = lost_assertions(runs)
        if not lost:
            rt.TOTALS["second_run"].append(program)
    if lost:
        # Still behind: the references run once more. An assertion a reference does not pass
        # again is a race on this host (pidfile kills a `true` that has often exited), not
        # something kago-oci lacks; it is named in the summary, not held against kago-oci.
        again = {r: suite.ws.run(program, r, TIMEOUT) for r in runs if r != "kago-oci"}
        steady = {key for r, run in again.items()
                  for key, _o, _d in rt.regressions(run, runs["kago-oci"])}
        unstable = [key for key, _o, _d in lost if key not in steady]
        lost = [entry for entry in lost if entry[0] in steady]
        rt.TOTALS["unstable"] += [f"{program}: {key}" for key in unstable]
    suite.record(runs, lost)
    kago = runs["kago-oci"]
    shown = "\n".join(f"  [{outcome}] {key}" + (f"\n      {detail}" if detail else "")
                      for key, outcome, detail in lost[:30])
    more = f"\n  ... and {len(lost) - 30} more" if len(lost) > 30 else ""
    assert not lost, (
        f"{program}: {len(lost)} assertion(s) runc or crun passes and kago-oci does not "
        f"(kago-oci exit {kago.returncode}, {kago.seconds:.1f} s; stderr: "
        f"{kago.stderr.strip()[-300:]!r}):\n{shown}{more}")
    left += [r.stderr for r in runs.values() if "left behind:" in r.stderr]
    assert not left, left
