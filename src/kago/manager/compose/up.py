"""``kago compose up`` on the manager.

``up`` checks everything it can before it makes anything (images, names held by other
containers, external volumes and networks), builds what has ``build:`` and no image yet,
makes the project's networks and volumes, then creates and starts the services in
depends_on order, waiting for each dependency's condition; a failure removes what this
``up`` made. A service whose container exists with the same configuration (the config-hash
label) is left running, or started; a changed one is recreated.
"""

import os
import sys
import time

from kago.errors import KagoError
from kago.manager.compose.errors import ComposeError
from kago.manager.compose.runner import (
    HASH,
    PROJECT,
    SERVICE,
    _stderr,
    labels_of,
    project_records,
)
from kago.manager.compose.translate import LABEL
from kago.manager.errors import NoSuchContainer

WAIT_TIMEOUT = 300  # seconds a dependency may take to become healthy or complete


def up(mgr, plan, services=(), build=False, out=print, warn=None,
       wait_timeout=WAIT_TIMEOUT):
    """Start ``services`` (all when empty) and what they depend on; their names in order."""
    warn = warn or _stderr
    names = plan.selected(services)
    existing = {labels_of(r).get(SERVICE): r for r in project_records(mgr, plan.project.name)}
    to_build, to_pull = _precheck(mgr, plan, names, existing, build)
    for name in to_pull:
        pull(mgr, plan, name, out)
    for name in to_build:
        build_service(mgr, plan, name, out)
    run = _Up(mgr, plan, out, warn, wait_timeout)
    try:
        for network in plan.used_networks(names):
            run.network(network)
        for volume in plan.used_volumes(names):
            run.volume(volume)
        for name in names:
            run.service(name, existing.get(name))
    except BaseException:
        run.rollback()
        raise
    return [plan.services[n].definition.name for n in names]


def _precheck(mgr, plan, names, existing, build):
    """Images (the services to build), names other containers hold, external volumes and
    networks: before anything is made."""
    from kago.manager import volumes as VOL
    from kago.network.errors import NetworkNotFound
    from kago.storage import ImageNotFound
    for volume in plan.used_volumes(names):
        if volume.external and not os.path.isdir(VOL.mountpoint(mgr, volume.name)):
            raise plan.project.error(("volumes", volume.key), f"volume {volume.name} is "
                                     f"declared external, but it does not exist")
    for net in plan.used_networks(names):
        if net.external:
            try:
                mgr.nets.get(net.name)
            except NetworkNotFound:
                raise plan.project.error(("networks", net.key), f"network {net.name} is "
                                         f"declared external, but it does not exist") \
                    from None
    to_build, to_pull = [], []
    for name in names:
        service = plan.services[name]
        d = service.definition
        policy = service.pull_policy
        try:
            mgr.store.image(d.image)
            found = True
        except ImageNotFound:
            found = False
        if service.build is not None and (build or not found or policy == "build"):
            to_build.append(name)
        elif policy == "always" or (not found and policy == "missing"
                                    and names_registry(d.image)):
            to_pull.append(name)
        elif not found:
            why = ("pull_policy is never" if policy == "never" else
                   "kago pull or import it; up pulls only from a registry the name gives")
            raise plan.project.error(("services", name, "image"),
                                     f"image {d.image} not found ({why})")
        try:
            other = mgr.records.resolve(d.name)
        except NoSuchContainer:
            continue
        if other["name"] == d.name and other["id"] != (existing.get(name) or {}).get("id"):
            raise plan.project.error(("services", name), f'container name "{d.name}" is in '
                                     f"use by container {other['id'][:12]}, not of this "
                                     f"project's {name}")
    return to_build, to_pull


def names_registry(ref):
    """Whether ``ref`` names its registry (host[:port]/...): as ``kago run --pull missing``,
    never Docker Hub unasked."""
    from kago.storage import reference
    from kago.storage.errors import StoreError
    try:
        return reference.parse(ref).domain is not None
    except StoreError:
        return False


def pull(mgr, plan, name, out):
    """The service's image from its registry, as ``kago pull`` (compose's lines)."""
    from kago.manager import images
    image = plan.services[name].definition.image
    out(f" Service {name}  Pulling")
    try:
        images.pull(mgr, image)
    except KagoError as e:
        raise ComposeError(f"service {name}: pull {image}: {e}") from None
    out(f" Service {name}  Pulled")


def build_service(mgr, plan, name, out):
    """``kago build`` of the service's build: section, tagged with its image name."""
    from kago.manager.build import context
    from kago.manager.build.errors import BuildError
    from kago.manager.build.executor import Builder, Options
    from kago.storage import reference
    service = plan.services[name]
    b = service.build
    where = ("services", name, "build")
    if not os.path.isdir(b.context):
        raise plan.project.error(where, f"{b.context}: the build context is not a directory")
    candidates = [b.dockerfile] if b.dockerfile else ["Containerfile", "Dockerfile"]
    text = source = None
    for candidate in candidates:
        path = os.path.join(b.context, candidate)
        if os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                text, source = f.read(), os.path.basename(candidate)
            break
    if text is None:
        raise plan.project.error(where, f"no {' or '.join(candidates)} in {b.context}")
    ignore_path = os.path.join(b.context, ".dockerignore")
    ignore = ""
    if os.path.isfile(ignore_path):
        with open(ignore_path, encoding="utf-8", errors="replace") as f:
            ignore = f.read()
    tree = context.Tree(b.context, "the build context", context.Ignore(ignore))
    tag = reference.normalize(service.definition.image)
    out(f" Service {name}  Building")

    from kago.manager.build.progress import Plain

    def line(text):  # docker compose: the build's progress goes to stderr
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    try:
        Builder(mgr, tree, Options([tag], dict(b.args), b.target or None), Plain(line)) \
            .build(text, source)
    except BuildError as e:
        raise ComposeError(f"service {name}: build failed: {e}") from None
    out(f" Service {name}  Built")


class _Up:
    def __init__(self, mgr, plan, out, warn, wait_timeout):
        self.mgr, self.plan, self.out, self.warn = mgr, plan, out, warn
        self.wait_timeout = wait_timeout
        self.made, self.started, self.networks, self.volumes = [], [], [], []

    def network(self, net):
        from kago.network.errors import NetworkNotFound
        try:
            self.mgr.nets.get(net.name)
            return
        except NetworkNotFound:
            pass
        from kago.manager import networks
        networks.create(self.mgr, net.name, subnet=net.subnet, gateway=net.gateway,
                        bridge=net.bridge, internal=net.internal)
        self.networks.append(net.name)
        self.out(f" Network {net.name}  Created")

    def volume(self, volume):
        """A named volume, made with compose's labels if it does not exist yet."""
        from kago.manager import volumes as VOL
        if volume.external or os.path.isdir(VOL.mountpoint(self.mgr, volume.name)):
            return
        VOL.create(self.mgr, volume.name, {PROJECT: self.plan.project.name,
                                           f"{LABEL}.volume": volume.key})
        self.volumes.append(volume.name)
        self.out(f" Volume {volume.name}  Created")

    def service(self, name, record):
        service = self.plan.services[name]
        d = service.definition
        for dep, condition in service.depends_on:
            self.wait_for(name, dep, condition)
        if record is not None and labels_of(record).get(HASH) != d.label_dict.get(HASH):
            self.mgr.remove(record["id"], force=True)
            self.out(f" Container {d.name}  Recreate")
            record = None
        if record is not None:
            if self.mgr.live(record) in ("running", "paused", "restarting"):
                self.out(f" Container {d.name}  Running")
                return
        else:
            for path in service.make_dirs:
                os.makedirs(path, exist_ok=True)
            record = self.mgr.create(d)
            self.made.append(record["id"])
            from kago.manager import networks
            for net, ip, aliases in service.more_networks:
                networks.connect(self.mgr, net, record["id"], ip=ip or None, aliases=aliases)
            self.out(f" Container {d.name}  Created")
        self.mgr.start(record["id"])
        self.started.append(record["id"])
        self.out(f" Container {d.name}  Started")

    def wait_for(self, name, dep, condition):
        if condition == "service_started":
            return
        d = self.plan.services[dep].definition
        deadline = time.monotonic() + self.wait_timeout
        ended = None
        while True:
            record = self.mgr.records.resolve(d.name)
            live = self.mgr.live(record)
            if condition == "service_completed_successfully":
                code = (record.get("state") or {}).get("exit_code")
                if live == "exited" and code is None and ended is None:
                    ended = time.monotonic()  # the supervisor records its status next
                if live == "exited" and (code is not None or time.monotonic() - ended > 5):
                    if code == 0:
                        return
                    raise ComposeError(f"service {dep} didn't complete successfully: exit "
                                       f"{'unknown' if code is None else code} (service "
                                       f"{name} depends on it)")
            else:
                health = container_health(self.mgr, record, live)
                if health == "healthy":
                    self.out(f" Container {d.name}  Healthy")
                    return
                if health is None and live in ("running", "paused"):
                    raise ComposeError(f"container {d.name} has no healthcheck (service "
                                       f"{name} waits for it to be healthy)")
                if health == "unhealthy":
                    raise ComposeError(f"dependency failed to start: container {d.name} is "
                                       f"unhealthy (service {name} depends on it)")
                if live not in ("running", "restarting", "paused"):
                    raise ComposeError(f"dependency failed to start: container {d.name} "
                                       f"is {live}, never healthy (service {name} depends "
                                       f"on it)")
            if time.monotonic() > deadline:
                what = "healthy" if condition == "service_healthy" else "completed"
                raise ComposeError(f"container {d.name} not {what} after "
                                   f"{self.wait_timeout:g} s (service {name} depends on it)")
            time.sleep(0.1)

    def rollback(self):
        for cid in reversed(self.made):
            try:
                self.mgr.remove(cid, force=True)
            except KagoError as e:
                self.warn(f"rollback: {e}")
        for cid in reversed(self.started):
            if cid not in self.made:
                try:
                    self.mgr.stop(cid, timeout=5)
                except KagoError as e:
                    self.warn(f"rollback: {e}")
        for name in reversed(self.networks):
            try:
                self.mgr.nets.remove(name)
            except KagoError as e:
                self.warn(f"rollback: {e}")
        from kago.manager import volumes as VOL
        for name in reversed(self.volumes):
            try:
                VOL.remove(self.mgr, name, force=True)
            except KagoError as e:
                self.warn(f"rollback: {e}")


def container_health(mgr, record, live=None):
    """State.Health.Status of docker inspect's document (starting, healthy, unhealthy), or
    None when the container has no healthcheck."""
    from kago.manager import views
    doc = views.inspect(mgr, record, live or mgr.live(record))
    return ((doc.get("State") or {}).get("Health") or {}).get("Status")


__all__ = ["container_health", "up"]
