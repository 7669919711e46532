"""The test-only fault hook: ``KAGO_FAULT_STEP=<step>`` makes a kago process SIGKILL itself
when it reaches ``fault("<step>")``.

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
    """Test-only: SIGKILL this process at ``step`` when KAGO_FAULT_STEP names it."""
    if _FAULT is not None and _FAULT == step:
        os.kill(os.getpid(), signal.SIGKILL)
