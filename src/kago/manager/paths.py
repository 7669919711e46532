"""Where the manager keeps things: persistent state under ROOT, volatile state under RUNROOT.

    ROOT (default /var/lib/kago, or $KAGO_ROOT, or --root; as a user ~/.local/share/kago)
      containers/<id>/container.json     the record (records.py), with its intent journal
                                         (journal.py); containers/.new-<id>-<pid> while made
      containers/<id>/bundle/            the OCI bundle handed to the runtime (config.json)
      containers/<id>/etc/               hosts, hostname, resolv.conf made for the container
      containers/<id>/logs/ctr.log[.N]   stdout/stderr as json lines, rotated by size
      names/<name>                       the name's owner (an id), linked complete
      storage/                           kago.storage's Store
      network/                           kago.network's state
      groups/<key>.json                  what ``kago up FILE`` started
      events.jsonl[.1]                   docker's events, appended by every command (events.py)
    RUNROOT (default /run/kago/manager, as a user $XDG_RUNTIME_DIR/kago/manager; ROOT/run
    when only --root is given)
      oci/                               the runtime's --root
      supervisor.sock / .pid / .log      the shared supervisor
      fifos/<id>/{stdout,stderr}         the container's output, read by the supervisor

Tests give every run its own ROOT in a temp dir, so nothing they do reaches /var/lib/kago.
"""

import os

DEFAULT_ROOT = "/var/lib/kago"
DEFAULT_RUNROOT = "/run/kago/manager"


def defaults(environ=None):
    """(root, runroot) without --root/--runroot: /var/lib/kago and /run/kago/manager for host
    root; for a user (or root of the user's holder namespace) $XDG_DATA_HOME/kago (else
    ~/.local/share/kago) and $XDG_RUNTIME_DIR/kago/manager (else /run/user/UID/kago/manager)."""
    from kago.host import rootless
    if not rootless.rootless():
        return DEFAULT_ROOT, DEFAULT_RUNROOT
    from kago.host import holder
    environ = os.environ if environ is None else environ
    home = environ.get("HOME") or _home(rootless.host_uid())
    return (holder.user_root(environ, home),
            holder.user_runroot(environ, rootless.host_uid()))


def _home(uid):
    import pwd
    try:
        return pwd.getpwuid(uid).pw_dir
    except KeyError:
        return "/"


class Paths:
    __slots__ = ("root", "runroot")

    def __init__(self, root=None, runroot=None):
        env_root = os.environ.get("KAGO_ROOT")
        explicit = root or env_root
        default_root, default_runroot = defaults()
        self.root = os.path.abspath(explicit or default_root)
        self.runroot = os.path.abspath(runroot or os.environ.get("KAGO_RUNROOT") or (
            os.path.join(self.root, "run") if explicit else default_runroot))

    # --- persistent
    def containers(self):
        return os.path.join(self.root, "containers")

    def container(self, cid):
        return os.path.join(self.root, "containers", cid)

    def record(self, cid):
        return os.path.join(self.root, "containers", cid, "container.json")

    def bundle(self, cid):
        return os.path.join(self.root, "containers", cid, "bundle")

    def etc(self, cid):
        return os.path.join(self.root, "containers", cid, "etc")

    def logs(self, cid):
        return os.path.join(self.root, "containers", cid, "logs")

    def log(self, cid):
        return os.path.join(self.root, "containers", cid, "logs", "ctr.log")

    def checkpoint(self, cid):
        """A checkpointed container's CRIU images and checkpoint.json (checkpoints.py)."""
        return os.path.join(self.root, "checkpoints", cid)

    def warm(self):
        """Warm-start checkpoints of definitions, by key (define/warm.py)."""
        return os.path.join(self.root, "warm")

    def names(self):
        return os.path.join(self.root, "names")

    def storage(self):
        return os.path.join(self.root, "storage")

    def network(self):
        return os.path.join(self.root, "network")

    def groups(self):
        return os.path.join(self.root, "groups")

    def rootfs_cache(self):
        """Directory rootfs trees bootstrapped once by definitions (``rootfs=tarball(...)``)."""
        return os.path.join(self.root, "rootfs")

    # --- volatile
    def oci(self):
        return os.path.join(self.runroot, "oci")

    def socket(self):
        return os.path.join(self.runroot, "supervisor.sock")

    def supervisor_pid(self):
        return os.path.join(self.runroot, "supervisor.pid")

    def supervisor_log(self):
        return os.path.join(self.runroot, "supervisor.log")

    def fifos(self, cid):
        return os.path.join(self.runroot, "fifos", cid)

    def console(self, cid):
        """The console socket of a tty container's start (short: a unix socket's path is at
        most 107 bytes)."""
        return os.path.join(self.runroot, "tty", cid[:16])

    def hooks(self, cid):
        return os.path.join(self.runroot, "hooks", cid)
