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


def test_fds_are_marked_close_on_exec_before_any_filter_is_loaded():
    """A profile need not allow close_range (runtime-tools' default does not): fds are marked
    before the first step that can load a filter, whatever noNewPrivileges says."""
    for seq in (CREATE_STEPS, EXEC_STEPS):
        first_load = min(seq.index(s) for s in (steps.seccomp_privileged,
                                               steps.seccomp_listener, steps.seccomp))
        assert seq.index(steps.close_fds) < first_load


def _high_inheritable_fds(count=3, base=900):
    import os
    fds = []
    for i in range(count):
        r = os.open("/dev/null", os.O_RDONLY)
        os.dup2(r, base + i, inheritable=True)
        os.close(r)
        fds.append(base + i)
    return fds


def test_cloexec_from_falls_back_to_proc_self_fd_when_close_range_is_refused(monkeypatch):
    """EPERM (a seccomp filter around the runtime), ENOSYS/EINVAL (a kernel before 5.11):
    each fd listed in /proc/self/fd is marked instead, as runc does."""
    import errno
    import os

    from kago.errors import KernelError
    for err in (errno.EPERM, errno.ENOSYS, errno.EINVAL):
        def refuse(first, last, flags, err=err):
            raise KernelError("close_range", err)
        monkeypatch.setattr(steps.libc, "close_range", refuse)
        fds = _high_inheritable_fds()
        try:
            steps.cloexec_from(fds[1])
            assert os.get_inheritable(fds[0])  # below ``first``: left as it was
            assert not os.get_inheritable(fds[1]) and not os.get_inheritable(fds[2])
        finally:
            for fd in fds:
                os.close(fd)


def test_cloexec_from_without_close_range_or_proc_is_an_error_not_a_leak(monkeypatch, tmp_path):
    import errno

    import pytest

    from kago.errors import KernelError

    def refuse(first, last, flags):
        raise KernelError("close_range", errno.EPERM)
    monkeypatch.setattr(steps.libc, "close_range", refuse)
    with pytest.raises(KernelError) as e:
        steps.cloexec_from(900, fd_dir=str(tmp_path / "no-proc"))
    assert "no-proc" in str(e.value) and "no such file" in str(e.value)


def test_cloexec_from_other_close_range_errors_are_raised(monkeypatch):
    import errno

    import pytest

    from kago.errors import KernelError

    def refuse(first, last, flags):
        raise KernelError("close_range", errno.EBADF)
    monkeypatch.setattr(steps.libc, "close_range", refuse)
    with pytest.raises(KernelError):
        steps.cloexec_from(900)
