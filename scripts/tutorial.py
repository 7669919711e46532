"""Replays docs/tutorial.md: a Debian image made with mmdebstrap, a Python web app built on it,
run, copied into and out of, then the app with a Redis server and a worker under
``kago compose``; every step's outcome is checked, and nothing is left behind.

Run it as root from a checkout after ``./dev setup``::

    scripts/tutorial                       # all steps
    scripts/tutorial --transcript FILE     # also writes each command, its output and time

It never touches a user's own kago: its manager root is a fresh directory under /var/tmp,
with its own network settings (a free /24 of 10.231.0.0/16, its own bridge, nft table, netns
and veth names, no outbound NAT) in ROOT/kago.json, and the compose project gets a bridge and
a subnet of its own. The two Debian tarballs are cached (``--cache``, default
/var/tmp/kago-tutorial-cache, or $KAGO_TUTORIAL_CACHE), keyed by their mmdebstrap arguments,
so a second run needs no network. On exit, on a failed check and on Ctrl-C (or SIGTERM) it
removes every container, network, volume, the supervisor and the root, then checks that no
mount, cgroup, netns, link, nft table or process of it is left.

Exit status: 0 when every step worked and nothing was left, 1 otherwise, 77 when a tarball is
not cached and Debian's mirror cannot be reached (nothing was made).
"""

import argparse
import hashlib
import ipaddress
import json
import os
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(CHECKOUT, "src"))

from kago.cli import demo_web  # noqa: E402 - the leftovers check and the free-subnet search

EXAMPLE = os.path.join(CHECKOUT, "examples", "tutorial")
BASE = "/var/tmp"
MIRROR = os.environ.get("KAGO_TUTORIAL_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
RANGE = ipaddress.ip_network("10.231.0.0/16")
SKIP = 77
NO_RECOMMENDS = 'APT::Install-Recommends "false"'
IMAGES = {  # image -> mmdebstrap packages
    "debian-py:12": ["python3"],
    "debian-redis:12": ["redis-server"],
}
SEED = "buy bread\ncall the plumber\n"


class StepFailed(Exception):
    """A step's command failed or its outcome was not what the tutorial says."""


class Skip(Exception):
    """Debian's mirror is needed and cannot be reached."""


class Tutorial:
    def __init__(self, args):
        self.args = args
        self.tag = os.urandom(2).hex()
        self.top = os.path.join(BASE, f"kago-tutorial-{self.tag}")
        self.root = os.path.join(self.top, "root")
        self.work = os.path.join(self.top, "notes-app")
        self.scratch = demo_web.Scratch(self.tag, BASE)  # names for the leftovers check
        self.scratch.base = self.top
        self.table = f"kago_tut_{self.tag}"
        self.netns_prefix = f"kago-tut-{self.tag}-"
        self.veth_prefix = f"kt{self.tag}"
        self.kago = [os.path.join(CHECKOUT, ".venv", "bin", "kago"), "--root", self.root]
        self.env = dict(os.environ)
        for name in ("KAGO_ROOT", "KAGO_RUNROOT", "COMPOSE_PROJECT_NAME"):
            self.env.pop(name, None)
        self.transcript = []
        self.ids = set()
        self.compose_made = False
        self.started = time.monotonic()

    # ------------------------------------------------------------------ output

    def say(self, text=""):
        print(text, flush=True)

    def heading(self, text):
        self.say(f"\n## {text}")
        self.transcript.append(("heading", text))

    def show(self, command, output, seconds):
        self.transcript.append(("command", command, output, seconds))

    # ------------------------------------------------------------------ running

    def run(self, *args, cwd=None, shown=None, expect=0, env=None):
        """``kago ARGS`` on the scratch root: its output streamed and returned."""
        return self.command(self.kago + list(args), shown or "kago " + shlex.join(args),
                            cwd=cwd, expect=expect, env=env)

    def command(self, argv, shown, cwd=None, expect=0, env=None):
        self.say(f"$ {shown}")
        started = time.monotonic()
        child = subprocess.Popen(argv, cwd=cwd or self.work, env=env or self.env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 start_new_session=False)
        lines = []
        try:
            for line in child.stdout:
                print(line, end="", flush=True)
                lines.append(line)
            status = child.wait()
        except KeyboardInterrupt:
            demo_web._end(child, 20.0)  # it got the Ctrl-C too: let it roll back
            raise
        seconds = time.monotonic() - started
        output = "".join(lines)
        self.say(f"  ({seconds:.2f} s)")
        self.show(shown, output, seconds)
        if expect is not None and status != expect:
            raise StepFailed(f"{shown}: exited with {status}")
        return output

    def http(self, method, port, path="/", body=None, timeout=20.0):
        """A request to 127.0.0.1:PORT, retried until it answers (the server may be starting)."""
        url = f"http://127.0.0.1:{port}{path}"
        shown = f"curl -s {url}" if body is None else f"curl -s -d '{body}' {url}"
        self.say(f"$ {shown}")
        started = time.monotonic()
        deadline = started + timeout
        while True:
            request = urllib.request.Request(url, data=body.encode() if body else None,
                                             method=method)
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    text = answer.read().decode()
                    break
            except (OSError, urllib.error.URLError) as e:
                if time.monotonic() > deadline:
                    raise StepFailed(f"{url} did not answer: {e}") from None
                time.sleep(0.2)
        seconds = time.monotonic() - started
        print(text, end="", flush=True)
        self.say(f"  ({seconds:.2f} s)")
        self.show(shown, text, seconds)
        return text

    def check(self, ok, what):
        if not ok:
            raise StepFailed(what)
        self.say(f"  ok: {what}")

    def wait_for(self, what, test, timeout=60.0):
        deadline = time.monotonic() + timeout
        while not test():
            if time.monotonic() > deadline:
                raise StepFailed(f"not within {timeout:.0f} s: {what}")
            time.sleep(0.5)
        self.say(f"  ok: {what}")

    def quiet(self, *args):
        proc = subprocess.run(self.kago + list(args), env=self.env, capture_output=True,
                              text=True, timeout=120, check=False, cwd=self.work)
        return proc.stdout if proc.returncode == 0 else ""

    # ------------------------------------------------------------------ the steps

    def prepare(self):
        tarballs = {image: self.tarball_path(packages) for image, packages in IMAGES.items()}
        if not all(os.path.exists(t) for t in tarballs.values()):
            reach_mirror()
        os.makedirs(self.root, mode=0o700)
        shutil.copytree(EXAMPLE, self.work)
        routes = demo_web.host_routes()
        self.subnet = demo_web.free_subnet(routes, RANGE)
        self.compose_subnet = demo_web.free_subnet(routes + [self.subnet], RANGE)
        self.port = free_port(self.args.port)
        self.compose_port = free_port(self.args.port + 1, avoid=self.port)
        settings = {"network": {
            "nft_table": self.table, "netns_prefix": self.netns_prefix,
            "veth_prefix": self.veth_prefix, "default_network": f"kagotut{self.tag}",
            "default_bridge": f"{self.veth_prefix}b0", "default_subnet": str(self.subnet),
            "outbound": False}}
        with open(os.path.join(self.root, "kago.json"), "w") as f:
            json.dump(settings, f)
        self.compose_env = dict(self.env, NOTES_PORT=str(self.compose_port),
                                NOTES_BRIDGE=f"{self.veth_prefix}n0",
                                NOTES_SUBNET=str(self.compose_subnet))
        self.say(f"kago tutorial: root {self.root}, network {self.subnet}, compose network "
                 f"{self.compose_subnet}, ports {self.port} and {self.compose_port}")
        return tarballs

    def tarball_path(self, packages):
        os.makedirs(self.args.cache, exist_ok=True)
        key = hashlib.sha256(json.dumps(mmdebstrap_argv(packages, "OUT")).encode()).hexdigest()
        return os.path.join(self.args.cache, f"bookworm-{'-'.join(packages)}-{key[:12]}.tar")

    def debian_tarball(self, packages, path):
        """mmdebstrap's tarball for ``packages``, made once into the cache."""
        shown = shlex.join(mmdebstrap_argv(packages, os.path.basename(path)))
        if os.path.exists(path):
            self.say(f"$ {shown}\n  (cached: {path})")
            self.show(shown, f"(cached: {os.path.basename(path)})\n", 0.0)
            return
        partial = f"{path[:-len('.tar')]}.{os.getpid()}.partial.tar"
        try:
            self.command(mmdebstrap_argv(packages, partial), shown, cwd=self.args.cache)
            os.rename(partial, path)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)

    def step1_image(self, tarballs):
        self.heading("1. A Debian image with Python")
        path = tarballs["debian-py:12"]
        self.debian_tarball(IMAGES["debian-py:12"], path)
        os.symlink(path, os.path.join(self.work, "debian-py.tar"))
        self.run("import", "debian-py.tar", "debian-py:12")
        out = self.run("run", "--rm", "debian-py:12", "python3", "-c",
                       "import sys; print(sys.version)")
        self.check(out.startswith("3.11."), "python3 3.11 runs in the image")
        out = self.run("images")
        self.check("debian-py" in out, "kago images lists debian-py:12")

    def step2_build(self):
        self.heading("2. The app's image: kago build")
        self.command(["cat", "Containerfile"], "cat Containerfile",
                     cwd=os.path.join(self.work, "notes"))
        self.run("build", "-t", "notes:1", ".", cwd=os.path.join(self.work, "notes"))
        out = self.run("inspect", "-f", "{{json .Config.Healthcheck}}", "notes:1")
        self.check('"Test"' in out, "the image carries its HEALTHCHECK")

    def step3_run(self):
        self.heading("3. Run it, publish its port")
        self.run("run", "-d", "-p", f"127.0.0.1:{self.port}:8000", "--name", "notes", "notes:1")
        self.ids.update(self.quiet("ps", "-a", "-q", "--no-trunc").split())
        page = self.http("GET", self.port)
        self.check(page.startswith("notes on "), "the app answers on the published port")
        self.wait_for("kago ps shows the container healthy",
                      lambda: "(healthy)" in self.quiet("ps", "-f", "name=notes"))
        self.run("ps")
        out = self.run("logs", "notes")
        self.check("serving notes on port 8000" in out, "kago logs shows the app's output")

    def step4_cp(self):
        self.heading("4. Files in and out: kago cp")
        with open(os.path.join(self.work, "seed.txt"), "w") as f:
            f.write(SEED)
        self.command(["cat", "seed.txt"], "cat seed.txt")
        self.run("cp", "seed.txt", "notes:/data/notes.txt")
        page = self.http("GET", self.port)
        self.check("- buy bread" in page, "the app serves the notes copied in")
        self.http("POST", self.port, body="water the plants")
        self.run("cp", "notes:/data/notes.txt", "notes-copy.txt")
        out = self.command(["cat", "notes-copy.txt"], "cat notes-copy.txt")
        self.check(out == SEED + "water the plants\n",
                   "the copy out has the seeded notes and the one added over HTTP")
        self.run("rm", "-f", "notes")
        self.check(not self.quiet("ps", "-a", "-q"), "no container is left")

    def step5_compose(self, tarballs):
        self.heading("5. Three services: kago compose")
        path = tarballs["debian-redis:12"]
        self.debian_tarball(IMAGES["debian-redis:12"], path)
        os.symlink(path, os.path.join(self.work, "debian-redis.tar"))
        self.run("import", "debian-redis.tar", "debian-redis:12")
        self.command(["cat", "compose.yaml"], "cat compose.yaml")
        self.compose_made = True
        self.run("compose", "up", "-d", env=self.compose_env)
        self.ids.update(self.quiet("ps", "-a", "-q", "--no-trunc").split())
        out = self.run("compose", "ps", env=self.compose_env)
        for service in ("web", "db", "worker"):
            self.check(f"notes-app-{service}-1" in out, f"compose ps lists {service}")
        self.check("healthy" in out, "the db is healthy")
        hosts = self.run("exec", "notes-app-web-1", "getent", "hosts", "db").split()
        dns = self.run("exec", "notes-app-web-1", "python3", "dnsask.py", "db")
        self.check(hosts and dns.startswith(f"db: {hosts[0]} (asked "),
                   "the network's resolver answers the service's name with its address")
        self.wait_for("the worker has written to redis",
                      lambda: "tick 2" in self.quiet("exec", "notes-app-db-1", "redis-cli",
                                                     "LRANGE", "notes", "0", "-1"))
        self.http("POST", self.compose_port, body="notes kept in redis")
        page = self.http("GET", self.compose_port)
        self.check("- tick 1 from the worker" in page and "- notes kept in redis" in page,
                   "the web app reads and writes the db by its service name")
        self.run("exec", "notes-app-db-1", "redis-cli", "LLEN", "notes")
        out = self.run("compose", "logs", "worker", env=self.compose_env)
        self.check("worker: wrote tick 1 " in out, "compose logs shows the worker's lines")

    def step6_down(self):
        self.heading("6. Down, and down -v")
        self.run("compose", "down", env=self.compose_env)
        self.check(not self.quiet("ps", "-a", "-q"), "no container is left")
        out = self.run("volume", "ls")
        self.check("notes-app_dbdata" in out, "the named volume outlives down")
        self.run("compose", "up", "-d", env=self.compose_env)
        page = self.http("GET", self.compose_port)
        self.check("- notes kept in redis" in page, "the notes survived down and up")
        self.run("compose", "down", "-v", env=self.compose_env)
        self.compose_made = False
        out = self.run("volume", "ls", "-q")
        self.check(not out.strip(), "down -v removed the volume")
        out = self.run("network", "ls")
        self.check("notes-app_default" not in out, "the project's network is gone")

    # ------------------------------------------------------------------ the end

    def clean(self):
        """Remove all of it; return what is still on the host."""
        if not os.path.isdir(self.root):
            return []
        self.ids.update(self.quiet("ps", "-a", "-q", "--no-trunc").split())
        if self.compose_made:
            subprocess.run(self.kago + ["compose", "down", "-v", "-t", "1"], cwd=self.work,
                           env=self.compose_env, capture_output=True, timeout=120, check=False)
        rest = self.quiet("ps", "-a", "-q").split()
        if rest:
            self.quiet("rm", "-f", *rest)
        for line in self.quiet("network", "ls").splitlines()[1:]:
            words = line.split()
            if len(words) > 1 and words[1] not in ("host", "none"):
                self.quiet("network", "rm", words[1])
        self.quiet("volume", "prune", "-a", "-f")
        self.quiet("system", "supervisor", "--stop")
        left = demo_web._wait_for_nothing(lambda: self.leftovers())
        if not any(item.startswith("mount ") for item in left):
            shutil.rmtree(self.top, ignore_errors=True)  # never through a mount
            if os.path.exists(self.top):
                left.append(f"directory {self.top}")
        return left

    def leftovers(self):
        scratch = _Names(self.top, self.table, self.netns_prefix, self.veth_prefix)
        return demo_web.leftovers(scratch, self.ids)

    def write_transcript(self, path):
        parts = []
        for entry in self.transcript:
            if entry[0] == "heading":
                parts.append(f"\n## {entry[1]}\n")
                continue
            _, shown, output, seconds = entry
            output = output.replace(self.top, "/var/tmp/kago-tutorial-XXXX")
            if output and not output.endswith("\n"):
                output += "\n"
            parts.append(f"```console\n$ {shown}\n{output}```\n({seconds:.2f} s)\n")
        with open(path, "w") as f:
            f.write("\n".join(parts))


class _Names:
    """What demo_web.leftovers looks for: mounts under ``root``, netns, links, the table."""

    def __init__(self, root, table, netns_prefix, veth_prefix):
        self.root, self.table = root, table
        self.netns_prefix, self.veth_prefix = netns_prefix, veth_prefix


def mmdebstrap_argv(packages, out):
    return ["mmdebstrap", "--variant=minbase", "--format=tar", f"--include={','.join(packages)}",
            f"--aptopt={NO_RECOMMENDS}", *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in
                                           ("doc", "man", "locale")), SUITE, out, MIRROR]


def reach_mirror():
    url = f"{MIRROR}/dists/{SUITE}/Release"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10):
            return
    except (OSError, urllib.error.URLError) as e:
        raise Skip(f"Debian's mirror cannot be reached ({url}: {e}) and the tarballs are "
                   f"not cached") from None


def free_port(preferred, avoid=None):
    """``preferred`` when 127.0.0.1 has it free, else one the kernel picks."""
    for port in (preferred, 0):
        if port == avoid:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise StepFailed("no free port on 127.0.0.1")


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    parser = argparse.ArgumentParser(prog="scripts/tutorial", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=os.environ.get("KAGO_TUTORIAL_CACHE",
                                                          "/var/tmp/kago-tutorial-cache"),
                        help="where the Debian tarballs are kept between runs")
    parser.add_argument("--port", type=int, default=8000,
                        help="the app's host port (this one and the next, when free)")
    parser.add_argument("--transcript", help="write the commands, outputs and times here")
    parser.add_argument("--until", type=int, default=6, choices=range(1, 7),
                        help="stop after this step (1-6)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("scripts/tutorial: run it as root (kago makes containers from namespaces, "
              "mounts and cgroups)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)
    tutorial = Tutorial(args)
    status = 0
    try:
        tarballs = tutorial.prepare()
        tutorial.step1_image(tarballs)
        steps = [tutorial.step2_build, tutorial.step3_run, tutorial.step4_cp,
                 lambda: tutorial.step5_compose(tarballs), tutorial.step6_down]
        for step in steps[:args.until - 1]:
            step()
    except Skip as e:
        print(f"scripts/tutorial: skipped: {e}", file=sys.stderr)
        return SKIP
    except (StepFailed, OSError, subprocess.SubprocessError) as e:
        print(f"scripts/tutorial: failed: {e}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("\ninterrupted: removing what the tutorial made", file=sys.stderr)
        status = 130
    finally:
        previous = {n: signal.signal(n, signal.SIG_IGN) for n in (signal.SIGINT, signal.SIGTERM)}
        try:
            left = tutorial.clean()
        finally:
            for n, handler in previous.items():
                signal.signal(n, handler)
    if args.transcript:
        tutorial.write_transcript(args.transcript)
    seconds = time.monotonic() - tutorial.started
    if left:
        print("left on the host: " + "; ".join(left), file=sys.stderr)
        return status or 1
    print(f"\nleft on the host: nothing - {seconds:.1f} s in all"
          + ("" if status else " - every step checked"), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
