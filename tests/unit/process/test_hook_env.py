"""A hook's environment: its own ``env``, or (none given) the one it inherits, as runc."""

import os

from kago.plan.build import hooks
from kago.process.hooks import hook_env


def test_no_env_is_none_and_empty_env_is_empty():
    built = hooks({"prestart": [{"path": "/a"}, {"path": "/b", "env": []},
                                {"path": "/c", "env": ["A=1"]}]})["prestart"]
    assert [h.env for h in built] == [None, [], ["A=1"]]


def test_without_env_a_hook_inherits():
    assert hook_env(None) is os.environ
    assert hook_env(None, ["PATH=/x", "A=b=c"]) == {"PATH": "/x", "A": "b=c"}


def test_its_own_env_is_its_whole_environment():
    assert hook_env([], ["PATH=/x"]) == {}
    assert hook_env(["K=v"]) == {"K": "v"}
