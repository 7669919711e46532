"""Where the init loads the filter: last before execve, earlier only when it must."""

from kago.process import steps
from kago.process.steps import CREATE_STEPS, EXEC_STEPS


def test_the_filter_is_the_last_step_before_execve():
    for seq in (CREATE_STEPS, EXEC_STEPS):
        assert seq[-2:] == (steps.seccomp, steps.execute)
        assert seq.index(steps.no_new_privileges) == len(seq) - 3


def test_without_no_new_privs_it_is_loaded_before_capabilities_are_dropped():
    for seq in (CREATE_STEPS, EXEC_STEPS):
        assert seq.index(steps.seccomp_privileged) + 1 == seq.index(steps.credentials)


def test_with_a_listener_it_is_loaded_while_the_channel_is_open():
    for seq in (CREATE_STEPS, EXEC_STEPS):
        assert seq.index(steps.seccomp_listener) + 1 == seq.index(steps.signal_ready)
        assert seq.index(steps.close_fds) < seq.index(steps.seccomp_listener)


class _Proc:
    def __init__(self, nnp, notify):
        self.no_new_privileges = nnp
        self.seccomp = type("SP", (), {"notify": notify})()


class _Ctx:
    def __init__(self, nnp, notify):
        self.plan = type("P", (), {})()
        self.plan.process = _Proc(nnp, notify)


def test_exactly_one_of_the_three_steps_loads(monkeypatch):
    for nnp in (True, False):
        for notify in (True, False):
            loaded = []
            monkeypatch.setattr(steps, "_load_seccomp",
                                lambda ctx, sp, loaded=loaded: loaded.append(sp))
            monkeypatch.setattr(steps, "no_new_privileges", lambda ctx: None)
            ctx = _Ctx(nnp, notify)
            for step in (steps.seccomp_privileged, steps.seccomp_listener, steps.seccomp):
                step(ctx)
            assert len(loaded) == 1, (nnp, notify)


def test_no_seccomp_no_load(monkeypatch):
    monkeypatch.setattr(steps, "_load_seccomp", lambda ctx, sp: 1 / 0)
    ctx = _Ctx(True, False)
    ctx.plan.process.seccomp = None
    for nnp in (True, False):
        ctx.plan.process.no_new_privileges = nnp
        for step in (steps.seccomp_privileged, steps.seccomp_listener, steps.seccomp):
            step(ctx)
