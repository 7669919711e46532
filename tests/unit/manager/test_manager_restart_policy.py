"""The supervisor's restart policy (supervisor/restart.py), a pure decision: policy, exit
code, restart count, whether the user stopped it, the kept delay -> restart?, after what."""

import pytest

from kago.manager.supervisor import restart as R

DECIDE = [
    # policy, code, count, stopped, kept delay -> restart, delay, next delay
    (None, 1, 0, False, None, (False, None, None)),
    ("no", 1, 0, False, None, (False, None, None)),
    ("always", 0, 0, False, None, (True, 0.1, 0.2)),
    ("always", 1, 50, False, 0.4, (True, 0.4, 0.8)),
    ("always", 0, 0, True, None, (False, None, None)),          # the user stopped it
    ("unless-stopped", 0, 3, False, 8.0, (True, 8.0, 10.0)),    # capped at 10 s
    ("unless-stopped", 137, 0, True, 0.2, (False, None, 0.2)),
    ("on-failure", 0, 0, False, None, (False, None, None)),     # success: not restarted
    ("on-failure", 1, 0, False, None, (True, 0.1, 0.2)),
    ("on-failure", None, 0, False, None, (True, 0.1, 0.2)),     # an unknown status
    ("on-failure:3", 1, 2, False, 0.2, (True, 0.2, 0.4)),
    ("on-failure:3", 1, 3, False, 0.2, (False, None, 0.2)),     # retries used up
    ("on-failure:3", 1, 0, True, None, (False, None, None)),
    ("always", 0, 0, False, 10.0, (True, 10.0, 10.0)),
]


@pytest.mark.parametrize("policy,code,count,stopped,delay,want", DECIDE)
def test_decide(policy, code, count, stopped, delay, want):
    assert tuple(R.decide(policy, code, count, stopped, delay)) == want


@pytest.mark.parametrize("ran,want", [(0.0, False), (9.99, False), (10.0, True), (60, True)])
def test_a_long_run_resets_the_back_off(ran, want):
    assert R.reset(ran) is want
