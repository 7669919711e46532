"""The fake trees' parents are noted in a ledger of the test's own, not the host's (and not
inside the fake tree, which the tests list)."""

import pytest

from kago.linux.cgroups import ledger


@pytest.fixture(autouse=True)
def own_ledger(tmp_path_factory, monkeypatch):
    root = tmp_path_factory.mktemp("ledger")
    monkeypatch.setattr(ledger, "ROOT", str(root))
    return root
