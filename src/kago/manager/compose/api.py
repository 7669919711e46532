"""``client.compose(...)``: a compose project through kago.Client (docs/api.md).

    project = client.compose(["compose.yaml"], project_name="shop")
    project.up(detach=True)             # [Container] in start order
    project.pull(); project.build(); project.stop(); project.start(); project.restart()
    project.ps(all=True); project.config(); project.logs()
    project.down(volumes=True)
"""

import sys

from kago.manager.compose import runner
from kago.manager.compose import up as project_up
from kago.manager.compose.load import load
from kago.manager.compose.translate import translate


def _quiet(_line=""):
    pass


class ComposeProject:
    """The project of ``files`` (default: compose.yaml... in ``cwd``), loaded and checked
    when made: ``name``, ``directory``, ``plan`` (translate.py's: a Definition per service).
    A bad file is a ComposeError naming file:line."""

    def __init__(self, client, files=None, project_name=None, cwd=None, environ=None,
                 warn=None):
        self.client = client
        self.manager = client.manager
        self.warn = warn or (lambda line: sys.stderr.write(f"kago: warning: {line}\n"))
        self.project = load(files, project_name, environ, cwd, self.warn)
        self.plan = translate(self.project)
        self.name = self.project.name
        self.directory = self.project.directory

    def up(self, services=(), build=False, out=None, wait_timeout=project_up.WAIT_TIMEOUT):
        """Create and start ``services`` (all when empty) and their dependencies, detached;
        their Containers in start order."""
        names = project_up.up(self.manager, self.plan, services, build=build, out=out or _quiet,
                              warn=self.warn, wait_timeout=wait_timeout)
        return [self.client.container(n) for n in names]

    def down(self, volumes=False, remove_orphans=False, timeout=None, out=None):
        runner.down(self.manager, self.name, self.plan, volumes=volumes,
                    remove_orphans=remove_orphans, timeout=timeout, out=out or _quiet,
                    warn=self.warn)

    def containers(self, services=()):
        """The project's containers (every state), oldest first; only ``services``' if
        given."""
        records = self.records(services)
        return [self.client._container(r) for r in records]

    def records(self, services=()):
        records = runner.project_records(self.manager, self.name)
        if services:
            for s in services:
                if s not in self.plan.services:
                    from kago.manager.compose.errors import ComposeError
                    raise ComposeError(f"no such service: {s}")
            records = [r for r in records if runner.labels_of(r).get(runner.SERVICE) in services]
        return records

    def ps(self, all=False):
        """Rows (name, image, service, status, ports), as ``kago compose ps``."""
        return runner.ps(self.manager, self.name, all=all)

    def logs(self, services=(), follow=False, write=None, stop=None, exits=False):
        """Every line of the services' containers, prefixed "web-1 | "; ``write(stream,
        text)`` gets them (default: this process's stdout/stderr); ``exits``: with follow,
        a line as each one ends."""
        runner.logs(self.manager, self.records(services), write or _write, follow=follow,
                    stop=stop, exits=exits)

    def stop(self, services=(), timeout=None):
        """Stop the project's containers (``services``' only, if given) at once (SIGKILL
        after ``timeout``, else each one's stop_grace_period, else 10 s); they stay, ended."""
        runner.stop_all(self.manager, self.records(services), timeout)

    def start(self, services=(), out=None):
        """Start the existing containers of ``services`` (all when empty) that are not
        running, in depends_on order; names of those started. A service without a
        container is an error (``up`` makes them)."""
        return runner.start(self.manager, self.plan, self.records(), services,
                            out or _quiet)

    def restart(self, services=(), timeout=None, out=None):
        """Stop then start ``services``' containers (all when empty)."""
        self.stop(services, timeout)
        return self.start(services, out)

    def pull(self, services=(), out=None):
        """Pull the images of ``services`` (all when empty) that are not built here; the
        names of the services pulled."""
        names = [n for n in (services or self.plan.order) if self._service(n).build is None]
        for name in names:
            project_up.pull(self.manager, self.plan, name, out or _quiet)
        return names

    def build(self, services=(), out=None):
        """Build the images of ``services`` (all when empty) that have a build: section;
        the names of the services built."""
        names = [n for n in (services or self.plan.order) if self._service(n).build]
        for name in names:
            project_up.build_service(self.manager, self.plan, name, out or _quiet)
        return names

    def _service(self, name):
        if name not in self.plan.services:
            from kago.manager.compose.errors import ComposeError
            raise ComposeError(f"no such service: {name}")
        return self.plan.services[name]

    def config(self):
        """The resolved file (interpolated, merged) as YAML text."""
        return config_text(self.project)


def config_text(project):
    """``kago compose config``: the resolved document, its name first, as YAML."""
    import yaml
    doc = {"name": project.name}
    doc.update({k: v for k, v in project.doc.items() if k != "name"})
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def _write(stream, text):
    out = sys.stderr if stream == "stderr" else sys.stdout
    out.write(text)
    out.flush()
