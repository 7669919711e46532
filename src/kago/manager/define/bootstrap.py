"""A definition's bootstrap steps (a new rootfs: a tarball, a shell command or a Python
function on the host) and provision steps (a container's first start: a shell command or a
Python function inside it), for ``up`` and ``archive``."""

import os
import shutil
import subprocess

from kago.manager.define import hooks as H
from kago.manager.errors import ManagerError


def bootstrap_dir(c, definition):
    """A directory rootfs that does not exist yet is made and bootstrapped (once, ever);
    returns it if this call made it, so a failure can remove it again."""
    rootfs = definition.rootfs
    if not rootfs or not c.bootstrap:
        return None
    if os.path.isdir(rootfs) and os.listdir(rootfs):
        return None
    os.makedirs(rootfs, exist_ok=True)
    try:
        run_bootstrap(c, rootfs)
    except BaseException:
        shutil.rmtree(rootfs, ignore_errors=True)
        raise
    return rootfs


def run_bootstrap(c, rootfs):
    for step in c.bootstrap:
        where = f"container {c.name}: bootstrap ({step.kind}, line {step.line})"
        if step.kind == "tarball":
            proc = subprocess.run(["tar", "--numeric-owner", "-xf", step.value, "-C", rootfs],
                                  capture_output=True, text=True, check=False)
            if proc.returncode:
                raise ManagerError(f"{where}: tar: {proc.stderr.strip()}")
        elif step.kind == "shell":
            proc = subprocess.run(["/bin/sh", "-c", step.value], capture_output=True,
                                  text=True, env=dict(os.environ, ROOTFS=rootfs), check=False)
            if proc.returncode:
                raise ManagerError(f"{where}: exited {proc.returncode}: "
                                   f"{(proc.stderr or proc.stdout).strip()[-300:]}")
        else:
            ok, result = H.call(step.value, rootfs)
            if not ok:
                raise ManagerError(f"{where}: {result}")


def provision_step(c, step, handle):
    where = f"container {c.name}: provision ({step.kind}, line {step.line})"
    if step.kind == "shell":
        code, output = handle.exec(["/bin/sh", "-c", step.value], check=False)
        if code:
            raise ManagerError(f"{where}: exited {code}: {output.strip()[-300:]}")
    elif step.kind == "python":
        ok, result = H.call(step.value, handle)
        if not ok:
            raise ManagerError(f"{where}: {result}")
    else:
        raise ManagerError(f"{where}: a tarball is a bootstrap step, not a provision step")

