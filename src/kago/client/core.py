"""``Client``: kago's manager on one root, its containers' verbs, definition files and compose
projects (the package docstring has an example)."""

import os

from kago.client.containers import ClientError, Container, GroupRun, container_definition
from kago.client.images import Images
from kago.client.networks import Networks
from kago.client.volumes import Volumes


def _quiet(_line=""):
    pass


class Client:
    """kago's manager on one root (``root``: /var/lib/kago or $KAGO_ROOT; ``runroot``:
    /run/kago/manager, ROOT/run with a root; ``runtime``: a runc-compatible runtime's path,
    kago-oci by default). ``manager`` is the kago.manager.engine.Manager underneath."""

    def __init__(self, root=None, runroot=None, runtime=None):
        from kago.manager.engine import Manager
        self.manager = Manager(root, runroot, runtime)
        self.images = Images(self.manager)
        self.networks = Networks(self.manager)
        self.volumes = Volumes(self.manager)

    def _container(self, record, state=None):
        return Container(self, record, state or self.manager.live(record))

    # --- containers ----------------------------------------------------------------------------
    def create(self, image=None, command=None, **options):
        """A created container (not started): ``container_definition``'s options."""
        return self.create_from(container_definition(image, command, **options))

    def create_from(self, definition):
        """A created container from a Definition (``container_definition``'s, or the
        command line's)."""
        return self._container(self.manager.create(definition))

    def run(self, image=None, command=None, *, name=None, detach=True, **options):
        """Create and start a container. ``detach=True``: returns it running. ``detach=False``:
        waits until it ends and returns it ended (``exit_code`` set; its output is in
        ``logs()``; with ``remove=True`` it is removed before this returns, and the value
        returned is its last snapshot). A terminal (``tty``/``interactive``) is the command
        line's: ClientError."""
        definition = container_definition(image, command, name=name, **options)
        if definition.tty or definition.interactive:
            raise ClientError("tty/interactive need a terminal: use kago run -it")
        container = self.create_from(definition)
        remove = definition.auto_remove
        try:
            # not detached with remove: this call removes it at its end (as kago run --rm)
            self.manager.start(container.id, attached=remove and not detach)
        except BaseException:
            if remove:
                self.manager.remove(container.id, force=True)
            raise
        if detach:
            return container.reload()
        try:
            code = self.manager.wait(container.id)
            ended = self.container(container.id)
            ended.exit_code = code
        finally:
            if remove:
                self.manager.remove(container.id, force=True)
        if not remove:
            self.manager.release_quietly(container.id)
            ended = self.container(container.id)
        return ended

    def start(self, ref):
        self.manager.start(ref)
        return self.container(ref)

    def checkpoint(self, ref, export=None, leave_running=False, tcp_established=False):
        """CRIU's checkpoint of the running container ``ref`` (docs/checkpoint.md): it is
        then ``checkpointed`` (or still running with ``leave_running``); ``export``: a
        file to write the checkpoint to, for ``restore(file=...)`` on another root."""
        return self._container(self.manager.checkpoint(ref, export, leave_running,
                                                       tcp_established))

    def restore(self, ref=None, *, file=None, name=None):
        """A checkpointed container running again, or (``file``) a container made from an
        exported checkpoint (named ``name``, else as it was) and restored."""
        if (ref is None) == (file is None):
            raise ClientError("restore: give a container or file=, not both")
        if file is not None:
            return self._container(self.manager.restore_import(file, name))
        return self._container(self.manager.restore(ref))

    def container(self, ref):
        """The container named by ``ref`` (a name, an ID or an ID prefix):
        NoSuchContainer if none."""
        return self._container(self.manager.resolve(ref))

    def containers(self, all=False):
        """Running (and paused, restarting) containers, newest first; ``all``: every one."""
        return [self._container(record, state) for record, state in self.manager.list(all=all)]

    def stop(self, ref, timeout=None, signal=None):
        """The stop signal (the container's, or ``signal``), SIGKILL after ``timeout`` s
        (default 10); returns the stopped container."""
        record = self.manager.stop(ref, timeout, signal)
        return self._container(record)

    def kill(self, ref, signal="SIGKILL"):
        self.manager.kill(ref, signal)

    def restart(self, ref, timeout=None):
        self.manager.restart(ref, timeout)
        return self.container(ref)

    def wait(self, ref):
        """Block until the container ends; its exit code (None if nobody saw it)."""
        return self.manager.wait(ref)

    def remove(self, ref, force=False):
        """Remove a container (``force``: a running one is stopped first)."""
        self.manager.remove(ref, force=force)

    def pause(self, ref):
        self._freeze(ref, "pause")

    def unpause(self, ref):
        self._freeze(ref, "resume")

    def _freeze(self, ref, verb):
        record = self.manager.resolve(ref)
        runtime = self.manager.runtime(record)
        from kago.manager.runtimes import call
        code, _o, err = call([runtime.path, "--root", runtime.root, verb, record["id"]])
        if code:
            from kago.manager.errors import ManagerError
            what = "pause" if verb == "pause" else "unpause"
            raise ManagerError(err.strip().splitlines()[-1] if err.strip() else f"{what} failed")
        from kago.manager import events
        events.container(self.manager.paths, "pause" if verb == "pause" else "unpause", record)

    def log_entries(self, ref, follow=False, tail=None, since=None):
        """The container's log as entries ({"stream": "stdout"|"stderr", "log": text,
        "time": RFC 3339}), oldest first; ``tail`` the last N, ``since`` a unix time;
        ``follow``: then what it writes until it ends."""
        from kago.manager import logs
        record = self.manager.resolve(ref)
        path = self.manager.paths.log(record["id"])
        yield from logs.read(path, since=since, tail=tail)
        if follow:
            size = os.path.getsize(path) if os.path.exists(path) else 0

            def stopped():
                return self.manager.live(self.manager.resolve(record["id"])) not in (
                    "running", "paused", "restarting")
            yield from logs.follow(path, stopped, interval=0.1, offset=size)

    def logs(self, ref, follow=False, tail=None, since=None):
        """The container's output lines (stdout and stderr, in order, each with its "\\n")."""
        for entry in self.log_entries(ref, follow=follow, tail=tail, since=since):
            yield entry.get("log", "")

    def exec(self, ref, command, tty=False, user=None, workdir=None, env=(), detach=False):
        """Run ``command`` in a running container with this process's stdio (the runtime's
        ``exec``); its exit status (127/126 if it cannot be found/run)."""
        from kago.manager import execs
        return execs.run(self.manager, ref, list(command), tty=tty, user=user,
                         workdir=workdir, env=env, detach=detach)

    def inspect(self, ref):
        """docker inspect's document of a container."""
        return self.container(ref).attrs

    def top(self, ref, ps_args=()):
        """ps's lines for the container's processes (ps options allowed)."""
        from kago.manager import views
        from kago.manager.errors import StateError
        record = self.manager.resolve(ref)
        if self.manager.live(record) not in ("running", "paused"):
            raise StateError(f"container {record['name']} is not running")
        return views.top(self.manager, record, list(ps_args))

    def stats(self, refs=None, interval=0.5):
        """docker stats' rows (CPU %, memory, pids, net and block I/O, PSI), sampled over
        ``interval`` s, for ``refs`` (default: the running containers)."""
        from kago.manager import views
        if refs:
            records = [self.manager.resolve(r) for r in refs]
        else:
            records = [r for r, live in self.manager.list() if live == "running"]
        return views.stats_rows(self.manager, records, interval=interval)

    def commit(self, ref, name=None, message=None, author=None, changes=()):
        """An image of the container's filesystem; ``changes`` docker's --change lines
        ('CMD ["sh"]', "ENV A=1", ...). Its ImageInfo."""
        from kago.manager import images
        record = self.manager.resolve(ref)
        return images.commit(self.manager, record, name, message, author, changes=changes)

    def export(self, ref, target):
        """The container's filesystem as a tar archive at ``target`` ("-": stdout)."""
        from kago.manager import images
        images.export(self.manager, self.manager.resolve(ref), target)

    def copy(self, src, dest, archive=False, follow_link=False, stdin=None, stdout=None):
        """docker cp: ``src`` to ``dest``, one of them ``CONTAINER:PATH`` (running or
        stopped), the other a path on this host or "-" (a tar stream from ``stdin`` / to
        ``stdout``: binary files, default this process's). ``archive`` keeps owners (-a),
        ``follow_link`` follows a symlink at ``src`` (-L). The bytes of file data copied;
        kago.manager.cp.CopyError (a ManagerError) names what is at fault."""
        from kago.manager import cp
        return cp.copy(self.manager, src, dest, archive=archive, follow=follow_link, stdin=stdin,
                stdout=stdout)

    def prune(self, all_images=False):
        """Remove stopped containers, what nothing owns, dangling (``all_images``: unused)
        images: {"containers": [record], "orphans": [text], "images": [text],
        "errors": [text]}."""
        return self.manager.prune(all_images=all_images)

    def rename(self, ref, new):
        """docker rename: the container named ``new``; returns it."""
        from kago.manager import changes
        return self._container(changes.rename(self.manager.ctx, ref, new))

    def update(self, ref, memory=None, memory_swap=None, cpus=None, pids_limit=None,
               restart=None):
        """docker update: new limits (docker's spellings: "512m", "1.5", 100) and/or a
        restart policy ("on-failure:3"); a running container gets the limits at once, and
        its record keeps them. Returns the container."""
        from kago.manager import changes
        from kago.manager.definition import values as V
        limits = {}
        if memory is not None:
            limits["memory"] = V.size(memory, "--memory")
        if memory_swap is not None:
            limits["memory_swap"] = V.swap(memory_swap, "--memory-swap")
        if cpus is not None:
            limits["cpus"] = V.cpus(cpus, "--cpus")
        if pids_limit is not None:
            limits["pids"] = V.count(pids_limit, "--pids-limit", minimum=-1)
        policy = None if restart is None else V.restart(restart, "--restart")
        return self._container(changes.update(self.manager.ctx, ref, limits, policy))

    def port(self, ref):
        """docker port: [(container "PORT/PROTO", host "IP:PORT")]."""
        from kago.manager import changes
        return changes.ports(self.manager.resolve(ref))

    def diff(self, ref):
        """docker diff: [(A|C|D, path)] of the container's writable layer."""
        from kago.manager import changes
        return changes.diff(self.manager.ctx, ref)

    def prune_containers(self):
        """docker container prune: every stopped (or never started) container removed;
        [record] of those."""
        removed = []
        for record, live in self.manager.list(all=True):
            if live in ("exited", "created", "dead"):
                self.manager.remove(record["id"])
                removed.append(record)
        return removed

    def disk_usage(self):
        """docker system df's rows: images, containers, volumes (total, active, size,
        reclaimable bytes)."""
        from kago.manager import usage
        return usage.disk_usage(self.manager)

    def events(self, since=None, until=None, filters=None, poll=None):
        """docker's events (kago.manager.events) as docker's API documents ({"Type",
        "Action", "Actor": {"ID", "Attributes"}, "time", "timeNano", ...}), oldest first.
        ``since``/``until``: a unix time, a datetime, RFC 3339 text or a duration ("10m":
        that long ago). Without ``until`` it follows the log, yielding new events as kago
        commands and the supervisor make them, until the caller stops iterating; without
        ``since`` either, only events from now on (docker's). ``filters``: {"type":
        "container", "event": ["start", "die"], "container": NAME, "label": "k=v", ...} or
        ["type=container", ...]; values of one key are alternatives, keys must all match."""
        import time

        from kago.manager import events as E
        wanted = E.parse_filters(filters)
        since, until = E.when(since), E.when(until)
        if since is None and until is None:
            since = time.time()
        for doc in E.follow(self.manager.paths, since, until, poll=poll or E.POLL):
            if E.matches(doc, wanted):
                yield E.docker_doc(doc)

    # --- definition files (docs/manager.md) ----------------------------------------------------
    def up(self, file, env=None, *, keep_going=False, wait=True, out=None):
        """Start every container the definition ``file`` defines (``env``: its ``-e``
        values); ``out`` receives the table lines ``kago up`` prints. A GroupRun."""
        from kago.manager.define import up
        code = up.up(self.manager, file, env=env, out=out or _quiet, keep_going=keep_going,
                     no_wait=not wait)
        return GroupRun(code, lambda: self.group(file))

    def down(self, file, timeout=10, out=None):
        """Stop and remove the definition's containers (found even if the file changed)."""
        from kago.manager.define import down
        down.down(self.manager, file, out=out or _quiet, timeout=timeout)

    def group(self, file):
        """The containers ``up`` made for ``file``, in definition order (removed ones
        left out)."""
        from kago.manager.define.group import Group
        states = self.manager.states()
        return [self._container(record, self.manager.live(record, states))
                for _name, record in Group(self.manager, file).records() if record is not None]

    def group_table(self, file, out):
        """``kago ps FILE``'s table, line by line to ``out``."""
        from kago.manager.define import table
        table.ps(self.manager, file, out=out)

    def reload_definition(self, file, env=None, out=None):
        """Apply the definition's changed limits to its running containers, no restarts."""
        from kago.manager.define import reload
        reload.reload(self.manager, file, env=env, out=out or _quiet)

    def archive(self, file, env=None, tag=None, out=None):
        """Bootstrap and provision the definition's rootfs in scratch containers, save each
        as an image (``tag``: its name)."""
        from kago.manager.define import archive
        archive.archive(self.manager, file, env=env, out=out or _quiet, tag=tag)

    # --- compose files (docs/compose.md) -------------------------------------------------------
    def compose(self, files=None, project_name=None, cwd=None, environ=None):
        """The compose project of ``files`` (default: compose.yaml, docker-compose.yml... in
        ``cwd``), loaded and checked: ``up``, ``down``, ``ps``, ``containers``, ``logs``,
        ``config`` (kago.manager.compose.api.ComposeProject). ``environ``: the variables
        for interpolation (default: this process's, over the .env file)."""
        from kago.manager.compose.api import ComposeProject
        return ComposeProject(self, files, project_name, cwd, environ)
