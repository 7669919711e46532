"""``update`` and ``events``: a running container's cgroup limits and statistics.

The cgroup work itself is ``linux.cgroups`` (Manager.update, stats, pressure, oom_watch); this
module checks the container's status, turns runc's flags into ``linux.resources``, and shapes
runc's ``events`` JSON: ``{"type": "stats", "id": ID, "data": {...}}`` and
``{"type": "oom", "id": ID}``.
"""

import time

from kago import jsonio
from kago.errors import IncorrectStatus, KagoError, SpecError
from kago.runtime import container as ctr

# runc update's flags, as kago-oci's parser names them (dest -> runc flag name)
UPDATE_FLAGS = {"cpu_share": "cpu-share", "cpu_quota": "cpu-quota", "cpu_period": "cpu-period",
                "cpu_rt_period": "cpu-rt-period", "cpu_rt_runtime": "cpu-rt-runtime",
                "cpuset_cpus": "cpuset-cpus", "cpuset_mems": "cpuset-mems", "memory": "memory",
                "memory_swap": "memory-swap", "memory_reservation": "memory-reservation",
                "kernel_memory": "kernel-memory", "kernel_memory_tcp": "kernel-memory-tcp",
                "pids_limit": "pids-limit", "blkio_weight": "blkio-weight"}


def _live_cgroup(store, container_id, verb):
    record = store.load(container_id)
    now = ctr.status(store, record)
    if now in (ctr.STOPPED, ctr.CREATING):
        raise IncorrectStatus("container not running")
    mgr = ctr.cgroup_of(record)
    if mgr is None:
        raise KagoError(f"cannot {verb}: {ctr.NO_CGROUP}")
    return record, mgr


def resources_from(text=None, flags=None):
    """``--resources`` JSON (a file's text or stdin's) and/or runc's flags -> linux.resources."""
    from kago.linux.cgroups import resources_from_flags
    resources = {}
    if text is not None:
        resources = jsonio.loads(text, what="--resources")
        if not isinstance(resources, dict):
            raise SpecError("--resources", "must be a JSON object (linux.resources)")
    for section, values in resources_from_flags(flags or {}).items():
        resources.setdefault(section, {}).update(values)
    if not resources:
        raise SpecError("", "nothing to update: give --resources FILE or a limit flag")
    return resources


def update(store, container_id, resources):
    """Change a running (or created, or paused) container's limits; returns the writes."""
    from kago.plan.validate import kernel_memory_warning
    warning = kernel_memory_warning(resources.get("memory") if isinstance(resources, dict)
                                    else None, set_if=lambda v: v not in (None, 0))
    if warning:
        from kago import log
        log.warning(warning)  # as runc: the limits are not written, the rest is
    with store.lock(container_id):
        _record, mgr = _live_cgroup(store, container_id, "update")
        return mgr.update(resources)


def stats_event(store, container_id):
    _record, mgr = _live_cgroup(store, container_id, "read statistics")
    return {"type": "stats", "id": container_id, "data": mgr.stats()}


def stats_reader(store, container_id):
    """A reader of the running container's stats (docker stats' fields; call it for each
    reading, ``close()`` it when done) that finds its cgroup once and keeps its files open:
    for a sampler that reads every second (linux/cgroups/brief.py). Once the container ends
    it reads zeros (its files are gone)."""
    _record, mgr = _live_cgroup(store, container_id, "read statistics")
    return mgr.brief_reader()


# how often ``events`` looks whether the container stopped, between its stats ticks
STATUS_POLL = 0.2


def events(store, container_id, interval, emit, max_events=None):
    """runc's ``events``: a stats event every ``interval`` seconds and an oom event per OOM
    kill as it happens, until the container stops (or ``max_events`` were emitted).

    The init's exit leaves the cgroup (and so the OOM watch) in place until ``delete``: the
    status is looked at every STATUS_POLL seconds, so the command ends soon after the
    container does, not at the next stats tick.
    """
    record, mgr = _live_cgroup(store, container_id, "watch events")
    emitted = 0
    with mgr.oom_watch() as watch:
        deadline = time.monotonic()
        while max_events is None or emitted < max_events:
            left = max(0.0, deadline - time.monotonic())
            kills = watch.wait(timeout=min(left, STATUS_POLL))
            for _ in range(kills):
                emit({"type": "oom", "id": container_id})
                emitted += 1
            if ctr.status(store, record) == ctr.STOPPED or watch.gone:
                return
            if time.monotonic() >= deadline:
                emit({"type": "stats", "id": container_id, "data": mgr.stats()})
                emitted += 1
                deadline = time.monotonic() + interval


# --- for the manager, which knows a container by its cgroup path, not a runtime record ------

def oom_killed_at(cgroups_path):
    """True if the OOM killer killed a process in the cgroup at ``cgroups_path`` (read it
    before the runtime's delete removes the cgroup; runc's state has no such field)."""
    from kago.linux import cgroups
    try:
        mgr = cgroups.open_manager(cgroups_path, ctr.layout())
        return mgr.exists() and mgr.oom_count() > 0
    except (KagoError, OSError):
        return False


def oom_watch_at(cgroups_path):
    """A watch of OOM kills in the cgroup at ``cgroups_path`` (linux.cgroups' oom_watch: a
    context manager with fileno() to poll and a count); KagoError if it cannot be made."""
    from kago.linux import cgroups
    return cgroups.open_manager(cgroups_path, ctr.layout()).oom_watch()


def pressure_file_at(cgroups_path, resource):
    """The PSI file (``cpu``, ``memory``, ``io``) of the cgroup at ``cgroups_path``, in its
    cgroup2 directory (on hybrid hosts, the unified tree); KagoError where there is none."""
    from kago.linux import cgroups
    mgr = cgroups.open_manager(cgroups_path, ctr.layout())
    return f"{mgr.path_in(cgroups.UNIFIED)}/{resource}.pressure"
