"""The client's container values: ``Container`` (one container as read), ``GroupRun`` (what
``Client.up`` did), ``ClientError``, and ``container_definition`` (the one place a
container's Definition is built from keyword options)."""

from kago.errors import KagoError


class ClientError(KagoError):
    """A call the client cannot make as asked (an unknown option, a terminal it has not)."""

    exit_code = 125


def container_definition(image=None, command=None, **options):
    """The Definition (kago.manager.definition) of one container, every value checked.

    ``image`` (a name in the root's store) or ``rootfs=DIR``; ``command`` a list (or a
    string, run by ``/bin/sh -c``). Options, docker's flags by their Python names:
    ``name``, ``env`` (dict or ["K=V"]), ``ports`` (["8080:80"]), ``volumes``
    (["/src:/dst:ro", "name:/dst"]), ``tmpfs`` (["/run"]), ``network`` ("bridge", "none",
    "host", a network's name), ``ip``, ``aliases``, ``hostname``, ``user``, ``workdir``,
    ``entrypoint`` (str or list), ``memory`` ("64m" or bytes), ``memory_swap``, ``cpus``,
    ``cpu_shares``, ``cpuset_cpus``, ``pids_limit``, ``cap_add``, ``cap_drop``, ``restart``
    ("no", "on-failure[:N]", "always", "unless-stopped"), ``remove`` (docker's --rm),
    ``labels``, ``sysctls``, ``userns`` ("auto", "keep-id", ...), ``read_only``,
    ``stop_signal``, ``stop_timeout``, and a definition file's fields as they are
    (``cgroup``, ``rlimits``, ``namespaces``, ``mounts``, ``seccomp``, ...). A bad value or
    an unknown option is a BadValue naming the option.
    """
    from kago.manager.definition import from_options
    return from_options(image, command, **options)


class Container:
    """One container as it was when read: ``id``, ``name``, ``image``, ``state`` (created,
    running, paused, restarting, exited), ``status`` (docker's "Up 3 seconds" / "Exited (0)
    2 seconds ago"), ``pid`` (0 unless running), ``exit_code`` (None until it ended),
    ``ports`` (the published ports, dicts), ``ip`` (its IPv4 address on its network, None
    once released), ``labels``, ``health`` (its healthcheck's status: "starting",
    "healthy" or "unhealthy"; None without one), ``attrs`` (docker inspect's document) and
    ``record`` (the manager's record, for what this class does not name)."""

    def __init__(self, client, record, state):
        from kago.manager import format as F
        self.client = client
        self.record = record
        self.id = record["id"]
        self.name = record["name"]
        from kago.manager.definition import of
        definition = of(record)
        self.image = record.get("image") or definition.rootfs
        self.state = state
        self.status = F.status_text(record, state)
        run = record.get("state") or {}
        self.pid = run.get("pid") or 0 if state in ("running", "paused") else 0
        self.exit_code = run.get("exit_code")
        released = F.released(record) and state not in ("running", "paused")
        att = {} if released else (record.get("network") or {})
        self.ports = [dict(p) for p in att.get("ports") or ()]
        self.ip = att.get("ipv4") or None
        self.labels = definition.label_dict
        self.health = (run.get("health") or {}).get("Status")
        self._attrs = None

    @property
    def attrs(self):
        """docker inspect's document (read once, with the rest of this snapshot)."""
        if self._attrs is None:
            from kago.manager import views
            self._attrs = views.inspect(self.client.manager, self.record, self.state)
        return self._attrs

    def __repr__(self):
        return f"<Container {self.id[:12]} {self.name} {self.state}>"

    def __eq__(self, other):
        return isinstance(other, Container) and other.id == self.id

    def __hash__(self):
        return hash(self.id)

    def reload(self):
        """This container read again (a new Container)."""
        return self.client.container(self.id)

    def start(self):
        return self.client.start(self.id)

    def stop(self, timeout=None, signal=None):
        return self.client.stop(self.id, timeout=timeout, signal=signal)

    def kill(self, signal="SIGKILL"):
        return self.client.kill(self.id, signal)

    def restart(self, timeout=None):
        return self.client.restart(self.id, timeout=timeout)

    def wait(self):
        return self.client.wait(self.id)

    def checkpoint(self, export=None, leave_running=False, tcp_established=False):
        return self.client.checkpoint(self.id, export, leave_running, tcp_established)

    def restore(self):
        return self.client.restore(self.id)

    def remove(self, force=False):
        self.client.remove(self.id, force=force)

    def logs(self, follow=False, tail=None, since=None):
        return self.client.logs(self.id, follow=follow, tail=tail, since=since)


class GroupRun:
    """What ``Client.up`` did: ``containers`` (the definition's, in its order) and
    ``exit_code`` (0; 1 if a container failed under keep_going; the worst exit status of
    the definition's detach=False containers, which ``up`` followed until they ended)."""

    def __init__(self, exit_code, containers):
        """``containers``: the list, or a function that reads it, called when it is first
        asked for (``kago up`` wants the exit code only: reading every container's state
        for nothing cost it ~0.5 ms of CPU per container)."""
        self.exit_code = exit_code
        self._containers = containers

    @property
    def containers(self):
        if callable(self._containers):
            self._containers = self._containers()
        return self._containers

    def __repr__(self):
        return f"<GroupRun exit_code={self.exit_code} containers={self.containers}>"
