"""How runtime_tools reads TAP and matches assertions between runtimes (no root needed)."""

import pytest

import runtime_tools as rt


def run(tap, returncode=0, runtime="x"):
    return rt.Run("p", runtime, returncode, 0.0, tap, "", rt.parse_tap(tap, returncode))


def outcomes(r):
    return {a.key: a.outcome for a in r.assertions}


def test_ok_not_ok_skip_and_repeated_descriptions():
    r = run("TAP version 13\nok 1 - find cgroup\nnot ok 2 - limit is set\n"
            "ok 3 # SKIP linux.mountlabel not set\nok 4 - find cgroup\n1..4\n")
    assert outcomes(r) == {"find cgroup": "pass", "limit is set": "fail",
                           "# SKIP linux.mountlabel not set": "skip",
                           "find cgroup #2": "pass", rt.COMPLETED: "pass"}
    assert r.counts() == {"pass": 2, "fail": 1, "skip": 1}


def test_varying_parts_are_normalised():
    a = run("ok 1 - pid 123456 in /tmp/ocitest937914287/x\n1..1\n")
    b = run("ok 1 - pid 654321 in /tmp/ocitest12/x\n1..1\n")
    assert outcomes(a) == outcomes(b)
    assert "devices c 10:229 rwm is set correctly" in outcomes(
        run("ok 1 - devices c 10:229 rwm is set correctly\n1..1\n"))


def test_failing_assertion_takes_the_diagnostic_after_it():
    r = run('not ok 1 - create MUST create a new container\n  ---\n  {\n'
            '    "error": "exit status 1",\n    "stderr": "create failed: boom"\n  }\n'
            '  ...\n1..1\n')
    assert r.assertions[0].detail == "exit status 1 | create failed: boom"


def test_the_program_ran_to_its_plan():
    def completed(tap, code=0):
        return outcomes(run(tap, code))[rt.COMPLETED]
    assert completed("ok 1 - a\n1..1\n") == "pass"
    assert completed("ok 1 - a\n") == "fail"               # no plan: it stopped early
    assert completed("ok 1 - a\n1..1\n", code=1) == "fail"
    assert completed("ok 1 - a\n", code=None) == "fail"    # timed out
    assert completed("") == "pass"                         # exit 0 and silent: its verdict
    # an error diagnostic in a run with no assertion is the program's own failure ...
    assert completed('  ---\n  {\n    "error": "Hooks MUST be called in order"\n  }\n'
                     '  ...\n1..0\n') == "fail"
    # ... a diagnostic of the container's output before the first assertion is not
    assert completed('  ---\n  {\n    "stderr": "getwd: operation not permitted"\n  }\n'
                     '  ...\nok 1 - \n1..1\n') == "pass"


def test_regressions_are_what_the_reference_passes_and_the_candidate_does_not():
    ref = run("ok 1 - a\nok 2 - b\nnot ok 3 - c\nok 4 - d\n1..4\n")
    cand = run("ok 1 - a\nnot ok 2 - b\nok 3 - c\n", returncode=1)
    lost = {key: outcome for key, outcome, _ in rt.regressions(ref, cand)}
    assert lost == {"b": "fail", "d": "missing", rt.COMPLETED: "fail"}
    assert rt.regressions(cand, ref) == []


def test_a_program_that_judged_the_reference_wrong_does_not_hold_its_output_against_others():
    # runc runs the container that must be refused and prints its assertions, then exits 1
    ref = run("ok 1 - has expected hostname\n", returncode=1)
    assert rt.regressions(ref, run("", returncode=0)) == []
    lost = rt.regressions(ref, run("", returncode=1))
    assert [key for key, _, _ in lost] == ["has expected hostname"]


def test_a_selection_keeps_the_order_and_names_a_pattern_that_matches_nothing():
    names = ["default", "delete", "kill", "linux_cgroups_cpus", "linux_cgroups_memory"]
    assert rt.select(names, "") == names
    assert rt.select(names, " linux_cgroups_* kill ") == ["kill", "linux_cgroups_cpus",
                                                         "linux_cgroups_memory"]
    with pytest.raises(ValueError, match="no validation program matches linux_cgroup_mem"):
        rt.select(names, "delete linux_cgroup_mem")
