"""A throwaway unprivileged user for rootless tests and benches, and all it leaves removed.

``ThrowawayUser.create(subids=True)`` adds a user (``useradd -m``, with shadow's automatic
subordinate IDs turned off), appends one ``NAME:START:COUNT`` line to /etc/subuid and
/etc/subgid if ``subids``, and makes /run/user/UID (its $XDG_RUNTIME_DIR) owned by it.
``remove()`` undoes all of it even after a failure: the user's processes (by PID, found by
their real UID), ``userdel -r`` (its home, with any podman storage in it), its lines in
/etc/subuid and /etc/subgid, /run/user/UID, and files it left in /tmp and /var/tmp. It returns
what it could not remove, so a test can assert the host is as it was.

``run(argv)`` runs a command as the user (setpriv: no PAM session, no logind) with a clean
environment: HOME, USER, LOGNAME, PATH and XDG_RUNTIME_DIR.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

SUBID_FILES = ("/etc/subuid", "/etc/subgid")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# far above the ranges kago's examples and tests map (port * 100, 100000-400000)
SUBID_START, SUBID_COUNT = 1_500_000_000, 65536


class ThrowawayUser:
    def __init__(self, name, uid, gid, home, subids):
        self.name, self.uid, self.gid, self.home = name, uid, gid, home
        self.subids = subids  # (start, count) or None
        self.runtime_dir = f"/run/user/{uid}"

    @classmethod
    def create(cls, subids=True, start=SUBID_START, count=SUBID_COUNT):
        name = "kgrl" + uuid.uuid4().hex[:8]
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", "-K", "SUB_UID_COUNT=0",
                        "-K", "SUB_GID_COUNT=0", name], check=True, capture_output=True)
        pw = pwd.getpwnam(name)
        user = cls(name, pw.pw_uid, pw.pw_gid, pw.pw_dir, (start, count) if subids else None)
        try:
            if subids:
                for path in SUBID_FILES:
                    _append_line(path, f"{name}:{start}:{count}\n")
            os.makedirs(user.runtime_dir, mode=0o700, exist_ok=False)
            os.chown(user.runtime_dir, user.uid, user.gid)
        except BaseException:
            user.remove()
            raise
        return user

    def env(self, **extra):
        env = {"HOME": self.home, "USER": self.name, "LOGNAME": self.name, "PATH": PATH,
               "XDG_RUNTIME_DIR": self.runtime_dir}
        env.update(extra)
        return env

    def run(self, argv, timeout=60, input=None, cwd=None, env=None, detached=False,
            cgroup=None):
        """``detached``: for a command that leaves a process holding its stdout and stderr
        (``kago-oci create``): those go to a file, read once the command exits. ``cgroup``:
        a cgroup2 directory the command starts in (moved there by root before setpriv)."""
        full = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups",
                "--reset-env", "--", "env", "-i",
                *(f"{k}={v}" for k, v in (env or self.env()).items()), *argv]
        if cgroup:
            full = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, *full]
        if not detached:
            return subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                                  input=input, cwd=cwd or self.home)
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(full, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=err, text=True, timeout=timeout, cwd=cwd or self.home)
            err.seek(0)
            proc.stdout, proc.stderr = "", err.read()
        return proc

    def chown(self, path):
        subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(path)], check=True)

    def pids(self):
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    for line in f:
                        if line.startswith("Uid:"):
                            if int(line.split()[1]) == self.uid:
                                found.append(int(entry))
                            break
            except OSError:
                continue
        return found

    def remove(self):
        """Remove everything the user has or made; returns what is still there."""
        for _ in range(50):  # bounded: processes may fork while we kill
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        _umount_under(self.runtime_dir)
        _umount_under(self.home)
        subprocess.run(["userdel", "-r", "-f", self.name], capture_output=True, check=False)
        for path in SUBID_FILES:
            _drop_lines(path, self.name + ":")
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        shutil.rmtree(self.home, ignore_errors=True)
        for top in ("/tmp", "/var/tmp"):
            for entry in os.scandir(top):
                try:
                    if entry.stat(follow_symlinks=False).st_uid == self.uid:
                        if entry.is_dir(follow_symlinks=False):
                            shutil.rmtree(entry.path, ignore_errors=True)
                        else:
                            os.unlink(entry.path)
                except OSError:
                    continue
        return self.left_behind()

    def left_behind(self):
        left = []
        try:
            pwd.getpwnam(self.name)
            left.append(f"user {self.name}")
        except KeyError:
            pass
        for path in SUBID_FILES:
            with open(path) as f:
                if any(line.startswith(self.name + ":") for line in f):
                    left.append(f"{path} line")
        for path in (self.runtime_dir, self.home):
            if os.path.lexists(path):
                left.append(path)
        left += [f"process {pid}" for pid in self.pids()]
        return left


def _append_line(path, line):
    with open(path, "a") as f:
        f.write(line)


def _drop_lines(path, prefix):
    """Rewrite ``path`` without the lines starting with ``prefix`` (in place: same inode,
    owner and mode), only if it has any."""
    with open(path) as f:
        lines = f.readlines()
    kept = [line for line in lines if not line.startswith(prefix)]
    if kept != lines:
        with open(path, "w") as f:
            f.writelines(kept)


def _umount_under(top):
    """Lazily unmount anything mounted at or under ``top`` in our mount namespace."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted(points, key=len, reverse=True):
        if point == top or point.startswith(top.rstrip("/") + "/"):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
