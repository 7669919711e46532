"""kago down's fan-out: every item once, results in order, a failure raised after all ran."""

import threading

import pytest

from kago.manager.define.down import fanout


def test_results_come_in_the_items_order_from_several_threads():
    items = list(range(50))
    assert fanout(lambda i: i * i, items, workers=4) == [i * i for i in items]


def test_one_worker_or_one_item_runs_in_the_callers_thread():
    me = threading.get_ident()
    assert fanout(lambda i: threading.get_ident() == me, [1, 2], workers=1) == [True, True]
    assert fanout(lambda i: threading.get_ident() == me, [1]) == [True]
    assert fanout(lambda i: i, []) == []


def test_what_a_call_raises_is_raised_after_the_others_ran():
    done = []

    def work(i):
        if i == 3:
            raise ValueError("three")
        done.append(i)

    with pytest.raises(ValueError, match="three"):
        fanout(work, list(range(10)), workers=2)
    assert sorted(done) == [0, 1, 2, 4, 5, 6, 7, 8, 9]  # the other thread took the rest
