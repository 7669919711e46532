"""One supervisor per manager root: it starts detached containers, reaps them, records how they
ended, restarts them by policy and copies their output into rotated logs.

Why one process for all containers (and not conmon per container): memory. Each conmon is a
~1 MB C process; this is one Python process (~10 MB, shared by every container), so the memory
kago adds per detached container is a record, two pipe buffers and a few fds
(bench/supervisor_memory measures it).

How it holds on to containers:

- It is a child subreaper (PR_SET_CHILD_SUBREAPER) and it starts every container itself (the
  runtime is called in a worker forked by its start forker, forker.py, a fork of this process
  that is no subreaper), so each container's init ends up as its child: it reaps it at once (a VM's PID 1 was seen to reap orphans 1-2 s late) and gets the real
  exit status. OOM kills are read from the container's cgroup before the runtime deletes it.
- A container's stdout and stderr are named FIFOs under RUNROOT/fifos/<id>, which the
  container holds open read-write: if the supervisor dies, the container's writes never fail
  with EPIPE (they block once the 64 KiB pipe is full), and a new supervisor reopens the FIFOs
  and carries on. It adopts running containers it did not start through a pidfd, which says
  when they end but not how: their exit status is recorded as unknown.
- Nothing ``kago ps`` shows depends on this process being alive: live state comes from the
  runtime and /proc, this process only adds exit codes and restarts to the records.
- When a container ends, its rootfs mount and network attachment are released
  (``release.release``, docker's behaviour; a restart or ``kago start`` prepares them again).
  That needs kago.network and pyroute2 (~18 MB, ~150 ms to import), which this process never
  loads: a forked releaser does it, for every container that ended meanwhile in one go, under
  each record's lock. A start worker takes the same lock and prepares what a release took.

It is started on demand by the first command that needs it, holds RUNROOT/supervisor.lock
for its lifetime (so a second one exits at once), and exits when it has had nothing to do for
the idle timeout: no container watched, starting, restarting or being released, no request
pending (subscribers to events, such as a definition's agent, do not keep it). The timeout is
``KAGO_SUPERVISOR_IDLE`` seconds in its environment, else ``{"supervisor": {"idle_timeout":
N}}`` in ROOT/kago.json, else 30. Containers keep running when it exits or is killed; the next
command that needs it starts it again.

The package, by what each module holds:

    client      connect (spawning one) / Connection / running_pid, and the protocol (imported by
                every command that talks to the supervisor: it imports nothing below)
    main        the entry point (``python -m kago.manager.supervisor``): lock, pid file
    server      the Supervisor: set-up, the loop, accept, dispatch of client requests
    starts      start workers: fork, prepare (release.prepare_locked), reports
    forker      the start forker: the fork that holds the warmed runtime and forks the workers,
                let go when no start came for a few seconds
    output      the FIFOs read into rotated logs
    console     a -t container's pty master (console socket), its output, attached clients
    endings     ends recorded, restarts scheduled, --rm spawned, retries after EMFILE/ENOSPC
    restart     the restart policy as a pure decision (and the back-off delay)
    releases    the forked releaser (release.release)
    runs        ``kago run -d``/create/start requests handed to the warm run server
                (kago/cli/run_server.py), which it spawns and lets go when idle
    state       Watched, Client, idle_timeout, the record edits, say

Nothing here imports engine.py: a worker and a releaser call the services (release.py on a
context.py Context) directly. Importing this package imports nothing more: each name
(``connect``, ``Supervisor``, ``idle_timeout``...) is loaded from its module when first used,
so the supervisor itself never imports the client (nor its ``json`` and ``socket``).
"""

_LAZY = {
    "Connection": "client", "connect": "client", "running_pid": "client",
    "Supervisor": "server", "main": "main", "Watched": "state", "Client": "state",
    "idle_timeout": "state", "IDLE_TIMEOUT": "state", "wants_release": "releases",
    "_wants_release": ("releases", "wants_release"), "_started": ("state", "started"),
    "WORKER_TIMEOUT": "starts", "STREAMS": "output",
}


def __getattr__(name):
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = where if isinstance(where, tuple) else (where, name)
    import importlib
    return getattr(importlib.import_module(f"{__name__}.{module}"), attr)


__all__ = ["Connection", "connect", "running_pid"]
