"""The manager's verbs as a library: ``Manager(root).create(definition)``, ``.start(ref)``,
``.stop``...

``kago.Client`` (which the command line, cli/, calls) and ``kago up`` (define/) call this.
``Manager`` is a facade: each verb is one call into the service that owns its piece of state (see
docs/manager.md), all sharing one ``Context`` (context.py: paths, settings, records, store,
networks, runtimes, live status). A container's life:

    create  record + name, ID range, rootfs, network, /etc files, then the OCI bundle -- no
            process yet; any failure undoes what was made, in reverse (create.py)
    start   ``prepare``: what an earlier end released comes back (rootfs mount, network
            attachment: release.py), then the shared supervisor runs the bundle
            (lifecycle.py, supervisor/)
    stop    the stop signal, then SIGKILL after the timeout; the record says "stopped by user"
            so no restart policy brings it back (lifecycle.py)
    end     whoever records it (the supervisor, ``stop``, ``run``, a settle) calls ``release``:
            the rootfs is unmounted (its writable layer stays) and the network detached, as
            docker does; the next start prepares them again (release.py)
    rm      runtime state, rootfs, network, ID range, record and name (removal.py)

The services are imported when a verb first needs them: ``kago ps`` loads only the context.
"""

from kago.manager.context import Context, load_settings
from kago.manager.errors import SupervisorError
from kago.runtime import Undo


class Manager:
    def __init__(self, root=None, runroot=None, runtime=None):
        self.ctx = Context(root, runroot, runtime)

    # --- what the services share ------------------------------------------------------------
    @property
    def paths(self):
        return self.ctx.paths

    @property
    def settings(self):
        return self.ctx.settings

    @property
    def records(self):
        return self.ctx.records

    @property
    def runtime_path(self):
        return self.ctx.runtime_path

    @property
    def store(self):
        return self.ctx.store

    @property
    def nets(self):
        return self.ctx.nets

    def runtime(self, record=None):
        return self.ctx.runtime(record)

    def states(self, records=None):
        return self.ctx.states(records)

    def live(self, record, states=None):
        return self.ctx.live(record, states)

    def resolve(self, ref):
        return self.ctx.resolve(ref)

    def list(self, all=False):
        return self.ctx.list(all)

    # --- create -------------------------------------------------------------------------------
    def create(self, definition, group=None):
        from kago.manager import create
        return create.create(self.ctx, definition, group)

    # --- runs ---------------------------------------------------------------------------------
    def supervisor(self):
        from kago.manager import supervisor
        return supervisor.connect(self.paths)

    def start(self, ref, attached=False, conn=None):
        from kago.manager import lifecycle
        record = self.ctx.resolve(ref)
        if record["state"].get("status") == "checkpointed":  # podman's: a start restores it
            return self.restore(record["id"])["state"]["pid"]
        return lifecycle.start(self.ctx, record["id"], attached, conn)

    def start_created(self, record, attached=False, conn=None):
        """``start`` of the container this process has just created (``record``, the one
        ``create`` returned): the checks and the prepare a start of any container does are
        known to pass (lifecycle.start_created)."""
        from kago.manager import lifecycle
        return lifecycle.start_created(self.ctx, record, attached, conn)

    def stop(self, ref, timeout=None, signal_name=None):
        from kago.manager import lifecycle
        return lifecycle.stop(self.ctx, ref, timeout, signal_name)

    def kill(self, ref, signal_name="SIGKILL"):
        from kago.manager import lifecycle
        return lifecycle.kill(self.ctx, ref, signal_name)

    def wait_exit(self, record, timeout=None):
        from kago.manager import lifecycle
        return lifecycle.wait_exit(self.ctx, record, timeout)

    def wait(self, ref):
        from kago.manager import lifecycle
        return lifecycle.wait(self.ctx, ref)

    def restart(self, ref, timeout=None):
        from kago.manager import lifecycle
        return lifecycle.restart(self.ctx, ref, timeout)

    # --- checkpoints (CRIU) ----------------------------------------------------------------------
    def checkpoint(self, ref, export=None, leave_running=False, tcp_established=False):
        from kago.manager import checkpoints
        return checkpoints.checkpoint(self.ctx, ref, export, leave_running, tcp_established)

    def restore(self, ref):
        from kago.manager import checkpoints
        return checkpoints.restore(self.ctx, ref)

    def restore_import(self, file, name=None):
        from kago.manager import checkpoints
        return checkpoints.import_from(self.ctx, file, name)

    # --- what an ended container gives back, and a start takes again -------------------------
    def prepare(self, ref):
        from kago.manager import release
        return release.prepare(self.ctx, ref)

    def prepare_locked(self, record):
        from kago.manager import release
        return release.prepare_locked(self.ctx, record)

    def release(self, ref, by=None):
        from kago.manager import release
        return release.release(self.ctx, ref, by)

    def release_quietly(self, ref, by=None):
        from kago.manager import release
        return release.release_quietly(self.ctx, ref, by)

    def rootfs_mounted(self, record):
        from kago.manager import rootfs
        return rootfs.mounted(self.ctx, record)

    # --- remove -------------------------------------------------------------------------------
    def remove(self, ref, force=False, volumes=False):
        from kago.manager import removal
        return removal.remove(self.ctx, ref, force, volumes)

    def prune(self, all_images=False):
        from kago.manager import removal
        return removal.prune(self.ctx, all_images)


# --- what define/ and the command line take from here ------------------------------------------

def _started(reply):
    """The pid a supervisor's start reply names, or its error raised (lifecycle.started)."""
    from kago.manager.lifecycle import started
    return started(reply)


def mark_removing(r):
    """rm -f, kago down: stopped by the user and about to be removed (release.py)."""
    from kago.manager.release import mark_removing
    mark_removing(r)


__all__ = ["Manager", "SupervisorError", "Undo", "load_settings", "mark_removing"]
