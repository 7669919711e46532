"""The OCI runtime-tools totals, printed at the end of the run (runtime_tools.TOTALS)."""

import runtime_tools


def pytest_terminal_summary(terminalreporter):
    totals = runtime_tools.TOTALS
    if not totals["programs"]:
        return
    write = terminalreporter.write_line
    write("")
    write(f"OCI runtime-tools, {totals['programs']} validation programs, "
          f"{totals['seconds']:.0f} s of runs:")
    for runtime, c in totals["runtimes"].items():
        write(f"  {runtime:9} passed {c['pass'] + c['skip']:5} (ok lines, {c['skip']} of them "
              f"skips)  failed {c['fail']:3} (not ok)  programs that did not run to their "
              f"plan: {c['incomplete']}  ({c['seconds']:.0f} s)")
    write(f"  assertions runc passes and kago-oci does not: {totals['regressions']}")
    if totals["second_run"]:
        write(f"  passed under kago-oci only on a second run: {', '.join(totals['second_run'])}")
    if "crun" in totals["runtimes"]:
        write(f"  assertions crun passes and kago-oci does not: {totals['behind_crun']} "
              "(each a failure)")
    write(f"  per-assertion results: {totals['records']} (regressions.txt beside it)")
