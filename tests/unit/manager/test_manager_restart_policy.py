"""The supervisor's restart policy (supervisor/restart.py), a pure decision: policy, exit
code, restart count, whether the user stopped it, the kept delay -> restart?, after what."""

import pytest

from kago.manager.definition import RestartPolicy as P
from kago.manager.supervisor import restart as R

DECIDE = [
    # policy, code, count, stopped, kept delay -> restart, delay, next delay
    (P(), 1, 0, False, None, (False, None, None)),
    (P("no"), 1, 0, False, None, (False, None, None)),
    (P("always"), 0, 0, False, None, (True, 0.1, 0.2)),
    (P("always"), 1, 50, False, 0.4, (True, 0.4, 0.8)),
    (P("always"), 0, 0, True, None, (False, None, None)),          # the user stopped it
    (P("unless-stopped"), 0, 3, False, 8.0, (True, 8.0, 10.0)),    # capped at 10 s
    (P("unless-stopped"), 137, 0, True, 0.2, (False, None, 0.2)),
    (P("on-failure"), 0, 0, False, None, (False, None, None)),     # success: not restarted
    (P("on-failure"), 1, 0, False, None, (True, 0.1, 0.2)),
    (P("on-failure"), None, 0, False, None, (True, 0.1, 0.2)),     # an unknown status
    (P("on-failure", 3), 1, 2, False, 0.2, (True, 0.2, 0.4)),
    (P("on-failure", 3), 1, 3, False, 0.2, (False, None, 0.2)),    # retries used up
    (P("on-failure", 3), 1, 0, True, None, (False, None, None)),
    (P("always"), 0, 0, False, 10.0, (True, 10.0, 10.0)),
]


@pytest.mark.parametrize("policy,code,count,stopped,delay,want", DECIDE)
def test_decide(policy, code, count, stopped, delay, want):
    assert tuple(R.decide(policy, code, count, stopped, delay)) == want


@pytest.mark.parametrize("ran,want", [(0.0, False), (9.99, False), (10.0, True), (60, True)])
def test_a_long_run_resets_the_back_off(ran, want):
    assert R.reset(ran) is want
