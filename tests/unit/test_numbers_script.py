"""scripts/numbers: the rows it takes from the benches' output (ROW lines, else each bench's
own table) and the Markdown table it prints."""

import importlib.machinery
import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def numbers():
    path = os.path.join(REPO, "scripts", "numbers")
    loader = importlib.machinery.SourceFileLoader("kago_numbers_script", path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


START_LATENCY = """\
start_latency: 20 runs of /bin/true per runtime in 4 interleaved rounds, bundle /run/b

runtime         median wall ms   mean CPU ms  wall/runc
python floor               7.5           6.1          -
kago-oci                  41.0          23.9      0.81x
runc                      50.7          26.3      1.00x
crun                      21.9           9.0      0.43x
(CPU = user + system of the runtime and all it waited for, mean per run)

GATE kago-oci < runc: PASS (41.0 ms vs 50.7 ms)
"""

MASS_START = """\
  round 1 kago-up: up 0.88, down 0.33, ctr_mem 314572.80, kago_mem 309094.40

20 busybox httpd containers (median over 1 round(s)):
variant           all answer  teardown   ctr mem  kago mem/ctr
crun                   0.99s     0.19s   313 KiB             -
runc                   1.05s     2.17s   276 KiB             -
kago-run               3.16s     0.31s   297 KiB       298 KiB
kago-up                0.88s     0.33s   307 KiB       302 KiB
"""

OCI_VERBS = """\
== plain (no seccomp)
call     kago-oci ms     runc ms     crun ms  kago/runc    goal  verdict    CPU ms (kago, runc)
run             15.0        30.0        10.0      0.50x  <=0.6x  PASS             9.0, 20.0
create          40.0        50.0           -      0.80x    <1.0x  PASS            20.0, 30.0

== seccomp (default seccomp profile, the same every call)
call     kago-oci ms     runc ms     crun ms  kago/runc    goal  verdict    CPU ms (kago, runc)
run             16.0        40.0        12.0      0.40x  <=0.6x  PASS            10.0, 25.0

python floor (/usr/bin/python3 -I -S -c pass, spawned the same way): 7.4 ms median of 40
"""

MASS_APACHE = """\

100 apache2 + mod_php, median of 3 round(s), load now 1.00 1.20 1.30:
  floor (bare host processes, chroot)  all answer   4.00 s
  kago up                              all answer   4.40 s  = 1.10x the floor (goal <= 1.2x)
  kago down -t 0                         0.90 s (goal <= 1 s, nothing left)
"""


def bench(numbers, name):
    return next(b for b in numbers.BENCHES if b.label == name)


def test_start_latency_rows(numbers):
    rows = numbers.rows_of(bench(numbers, "start_latency"), START_LATENCY)
    assert rows[0] == {"work": "`run` /bin/true, median wall", "kago": "41.0 ms",
                       "runc": "50.7 ms", "crun": "21.9 ms",
                       "ratio": "0.81x runc, 1.87x crun"}
    assert rows[1]["kago"] == "7.5 ms" and "floor" in rows[1]["work"]
    seccomp = numbers.rows_of(bench(numbers, "start_latency --seccomp"), START_LATENCY)
    assert [r["work"] for r in seccomp] == ["`run` /bin/true, median wall (default seccomp "
                                            "profile)"]


def test_mass_start_rows(numbers):
    rows = numbers.rows_of(bench(numbers, "mass_start"), MASS_START)
    assert [(r["work"], r["kago"], r["runc"], r["crun"], r["ratio"]) for r in rows] == [
        ("20 busybox httpd until all answer", "`kago up` 0.88 s", "loop 1.05 s",
         "loop 0.99 s", "0.84x runc, 0.89x crun"),
        ("20 busybox httpd until all answer, one command each", "`kago run -d` loop 3.16 s",
         "loop 1.05 s", "loop 0.99 s", "3.01x runc, 3.19x crun"),
        ("teardown of those 20", "`kago down` 0.33 s", "loop 2.17 s", "loop 0.19 s",
         "0.15x runc, 1.74x crun")]


def test_oci_verbs_rows(numbers):
    rows = numbers.rows_of(bench(numbers, "oci_verbs"), OCI_VERBS)
    assert [(r["kago"], r["runc"], r["crun"]) for r in rows] == [
        ("15.0 ms", "30.0 ms", "10.0 ms"), ("40.0 ms", "50.0 ms", ""),
        ("16.0 ms", "40.0 ms", "12.0 ms")]
    assert rows[0]["work"].startswith("kago-oci `run`")
    assert rows[1]["ratio"] == "0.80x runc"
    assert rows[2]["work"].endswith("default seccomp profile")


def test_mass_apache_rows(numbers):
    rows = numbers.rows_of(bench(numbers, "mass_apache"), MASS_APACHE)
    assert [(r["kago"], r.get("ratio")) for r in rows] == [("4.40 s", "1.10x bare processes"),
                                                          ("0.90 s", None)]


def test_row_lines_come_first_and_bad_ones_are_skipped(numbers):
    text = ('ROW {"work": "w1", "kago": "1 ms", "runc": "2 ms", "load": 0.5}\n'
            "ROW {not json\n"
            'ROW {"work": "no kago figure"}\n' + MASS_START)
    rows = numbers.rows_of(bench(numbers, "mass_start"), text)
    assert rows == [{"work": "w1", "kago": "1 ms", "runc": "2 ms", "load": 0.5}]


def test_output_that_says_nothing_gives_no_rows(numbers):
    assert numbers.rows_of(bench(numbers, "mass_start"), "mass_start: must run as root\n") \
        is None
    assert numbers.rows_of(bench(numbers, "supervisor_memory"), "") is None


def test_the_table(numbers):
    text = numbers.table([{"work": "a | b", "kago": "1 ms", "runc": "2 ms", "ratio": "0.50x runc",
                           "load": 1.234}], "quick", "2026-12-07 09:00 UTC",
                         ["bench/x: not in this checkout, skipped"])
    lines = text.splitlines()
    assert lines[0] == "| work | kago | runc 1.1.5 | crun 1.8.1 | ratio | load |"
    assert lines[2] == "| a \\| b | **1 ms** | 2 ms | — | 0.50x runc | 1.23 |"
    assert lines[-1] == "- bench/x: not in this checkout, skipped"
