"""What the command line passes to the lifecycle functions (runc's flags, as data)."""

import os


class Options:
    __slots__ = ("no_pivot", "pid_file", "console_socket", "preserve_fds", "detach",
                 "no_new_keyring", "listen_fds", "notify_socket", "rootless")

    def __init__(self, no_pivot=False, pid_file=None, console_socket=None, preserve_fds=0,
                 detach=False, no_new_keyring=False, listen_fds=None, notify_socket=None, rootless=False):
        self.no_pivot = no_pivot
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.preserve_fds = preserve_fds
        self.detach = detach
        self.no_new_keyring = no_new_keyring
        self.listen_fds = listen_fds_from_env() if listen_fds is None else listen_fds
        # the host's sd_notify socket (kago-oci passes its NOTIFY_SOCKET): runtime.notify
        self.notify_socket = notify_socket
        # runc's --rootless: cgroups the caller may not write are skipped (runtime.rootless)
        self.rootless = rootless

    def listen_env(self):
        """systemd socket activation: the container sees LISTEN_FDS and is LISTEN_PID 1."""
        if not self.listen_fds:
            return ()
        return (f"LISTEN_FDS={self.listen_fds}", "LISTEN_PID=1")

    def total_preserved(self):
        """fds 3 .. 3+N-1 reach the container: LISTEN_FDS first, then --preserve-fds."""
        return self.listen_fds + self.preserve_fds


def listen_fds_from_env():
    try:
        return max(int(os.environ.get("LISTEN_FDS", "0")), 0)
    except ValueError:
        return 0
