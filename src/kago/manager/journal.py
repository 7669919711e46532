"""The manager's crash safety: atomic files, the per-container intent journal, and the
test-only fault hook.

Files (kago.atomicfile). Every state file is written whole to a temp file in the same
directory, fsynced, and renamed over its name (``write_atomic``) or linked to it
(``create_exclusive``: link(2) fails with EEXIST, so of several writers exactly one wins, and
readers see either no file or the complete one, never an empty or half-written file). Inside
a ``batch`` (kago up, kago down) the fsyncs are one syncfs at its end; ``unsynced`` (a start's
record edits) has none: see docs/manager.md, State, crashes and recovery.

Intent journal. A container's record (``containers/<id>/container.json``) is written first,
before its name is taken or any host object made, with ``state.incomplete`` set and the
``creator`` (pid and start time of the command making it). Before a step makes a host object,
its name is in ``intents`` and the record saved again (create names all its steps in one save;
each undo is idempotent, so a step never taken undoes nothing):

    ids      its user-namespace ID range in ROOT/idranges.json
    layer    its writable layer in the store (storage/containers/<id>)
    mount    the layer bound at containers/<id>/rootfs
    network  its attachment (netns, veth, lease, published ports, nft elements; kago.network
             journals those steps itself in network/attachments/<id>.json)
    bundle   containers/<id>/bundle/config.json

The last save clears ``incomplete``. So whatever the moment a process dies, the container is in
``kago ps -a`` ("Created (incomplete)" while it is), ``rm -f`` undoes every step its journal
names (each undo is idempotent), and ``system prune`` removes an incomplete container whose
creator is gone, plus anything a record no longer names (``orphans.py``).

Fault hook (tests only, kago/faults.py). With ``KAGO_FAULT_STEP=<step>`` in its environment, a
kago process kills itself with SIGKILL when it reaches ``fault("<step>")``: tests use it to
prove that a death at each named step is recovered from. The variable is read once, at import;
without it ``fault`` is one comparison with None. Steps: ``create.<record|name|ids|layer|mount|network|
bundle|done>``, ``start.<prepared|requested>``, ``supervisor.<forked|started>``,
``worker.<prepared|started>``, ``stop.<signalled|stopped>``, ``rm.<runtime|mount|rootfs|
network|ids|fifos|record>``, ``up.created``, ``down.removed``, ``connect.<recorded|attached>``,
``disconnect.<recorded|detached>`` (connections.py: a further network's own journal); inside
kago.network's attach, after each of its own journalled steps:
``attach.<record|leases|ports|netns|veth|nft|dns|etc>`` (a connect's: ``record|leases|veth|
dns|hosts``).
"""

import os

from kago import atomicfile
from kago.faults import fault  # noqa: F401 (the manager's steps call it from here)
from kago.host.procfs import alive


# --- files ------------------------------------------------------------------------------------

# records and specs hold the container's environment (passwords): root's alone (0600)
write_atomic = atomicfile.replace
create_exclusive = atomicfile.create


# writes about a live process (a start's record edits): no fsync at all, a reboot ends the
# process they describe, and live status never comes from the record alone
unsynced = atomicfile.Batch


class batch(atomicfile.Batch):
    """State files written inside reach the disk together at its end: one syncfs(2) per
    filesystem instead of a fsync per write (~5-11 ms each on ext4). ``kago up`` and ``kago
    down`` write a hundred records each: per write that was most of their time. A killed
    process leaves what it left before (renames are atomic); a power loss inside the batch
    may take back its writes, and with them only what a reboot takes anyway (processes,
    mounts, network namespaces) or what ``system prune`` removes (a layer no record names)."""

    __slots__ = ()

    def __exit__(self, *exc):
        dirs = self.dirs if self.outer else ()
        super().__exit__(*exc)
        sync_filesystems(dirs)


def sync_filesystems(dirs):
    """One syncfs(2) per filesystem among ``dirs`` (a directory gone meanwhile is skipped)."""
    from kago.kernel import libc
    done = set()
    for path in sorted(dirs):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            dev = os.fstat(fd).st_dev
            if dev not in done:
                done.add(dev)
                libc.syncfs(fd, path)
        finally:
            os.close(fd)


# --- the journal in a record ------------------------------------------------------------------

def creator():
    """{"pid", "start"} of this process, to tell later whether the creator still lives."""
    from kago.host.procfs import start_time
    pid = os.getpid()
    return {"pid": pid, "start": start_time(pid)}


def begin(state):
    """Mark a new record's state incomplete, made by this process."""
    state.update(incomplete=True, creator=creator())
    return state


def intend(records, record, *steps):
    """Journal ``steps`` in ``record`` and save it, before they make anything (no save when
    all were journalled already: a create names its steps in one write)."""
    intents = record.setdefault("intents", [])
    new = [step for step in steps if step not in intents]
    if not new:
        return
    intents.extend(new)
    records.save(record, existing=True)  # removed meanwhile (rm -f): the create fails


def intended(record, step):
    return step in (record.get("intents") or ())


def finish(state):
    state.pop("incomplete", None)
    state.pop("creator", None)


def incomplete(record):
    return bool((record.get("state") or {}).get("incomplete"))


def abandoned(record):
    """An incomplete record whose creator died: nobody will complete or undo it."""
    if not incomplete(record):
        return False
    who = record["state"].get("creator") or {}
    return not (who.get("pid") and alive(who["pid"], who.get("start")))
