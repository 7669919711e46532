"""``exec --cap``: the capability joins the sets runc 1.1's exec.go adds it to."""

from kago.runtime.exec import process_from_args


def record(capabilities):
    return {"kago": {"process": {"args": ["sleep"], "cwd": "/",
                                 "capabilities": capabilities}}}


def test_cap_joins_bounding_effective_permitted_and_ambient_not_inheritable():
    rec = record({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                  "inheritable": ["CAP_KILL"], "permitted": ["CAP_KILL"]})
    caps = process_from_args(rec, ["sh"], caps=["CAP_SYS_ADMIN", "CAP_KILL"])["capabilities"]
    assert caps == {"bounding": ["CAP_KILL", "CAP_SYS_ADMIN"],
                    "effective": ["CAP_KILL", "CAP_SYS_ADMIN"],
                    "inheritable": ["CAP_KILL"],
                    "permitted": ["CAP_KILL", "CAP_SYS_ADMIN"],
                    "ambient": ["CAP_SYS_ADMIN", "CAP_KILL"]}


def test_no_cap_leaves_the_sets_as_they_are():
    rec = record({"bounding": ["CAP_KILL"]})
    assert process_from_args(rec, ["sh"])["capabilities"] == {"bounding": ["CAP_KILL"]}
