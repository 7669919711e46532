"""The test-only fault hook: ``KAGO_FAULT_STEP=<step>`` makes a kago process SIGKILL itself
when it reaches ``fault("<step>")``; ``KAGO_FAULT_STEP=<step>:sleep=<seconds>`` makes it wait
there instead (a slow step, to hold a race's window open).

Tests use it to prove that a death at each named step is recovered from (the steps and what
recovery does: kago/manager/journal.py, docs/manager.md). The variable is read once, at
import; without it ``fault`` is one comparison with None. Nothing outside tests sets it.
"""

import os
import _signal as signal  # signal.py adds enums (and imports enum): not needed here

FAULT_ENV = "KAGO_FAULT_STEP"
_FAULT = os.environ.get(FAULT_ENV) or None


def configure(environ):
    """Read the variable again from ``environ``: a process forked to do another command
    line's work (cli/run_server.py) takes that command line's."""
    global _FAULT
    _FAULT = environ.get(FAULT_ENV) or None


def fault(step):
    """Test-only: SIGKILL this process at ``step`` when KAGO_FAULT_STEP names it (or sleep
    there, for ``<step>:sleep=<seconds>``)."""
    if _FAULT is None:
        return
    if _FAULT == step:
        os.kill(os.getpid(), signal.SIGKILL)
    elif _FAULT.startswith(step + ":sleep="):
        import time
        time.sleep(float(_FAULT[len(step) + 7:]))
