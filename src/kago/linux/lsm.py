"""AppArmor profiles and SELinux labels for the program (``process.apparmorProfile``,
``process.selinuxLabel``), as runc applies them.

Both are one write to the calling thread's procfs ``attr`` files, taking effect at the next
execve(2): AppArmor ``exec PROFILE`` to attr/apparmor/exec (Linux 5.8+; attr/exec before),
SELinux the label to attr/exec. Written last before exec, so the runtime's own steps are not
confined by them. Not run against a real LSM on the development host (it has none): tested
against a fake /proc tree.
"""

import os

from kago.errors import KernelError


def apply(apparmor_profile=None, selinux_label=None, proc="/proc"):
    if apparmor_profile:
        _write(_apparmor_exec(proc), f"exec {apparmor_profile}")
    if selinux_label:
        _write(f"{proc}/thread-self/attr/exec", selinux_label)


def _apparmor_exec(proc):
    path = f"{proc}/thread-self/attr/apparmor/exec"
    return path if os.path.exists(path) else f"{proc}/thread-self/attr/exec"


def _write(path, value):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError("open", e.errno, path) from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise KernelError("write", e.errno, path, value) from None
    finally:
        os.close(fd)
