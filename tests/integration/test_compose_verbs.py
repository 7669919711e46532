"""``kago compose pull|build|stop|start|restart`` and ``pull_policy`` on the real kernel, each
test on its own manager root: images pulled from a loopback registry (Debian's
docker-registry) by ``up`` and by ``pull``, a policy that refuses to pull, and the
containers of a project stopped, started and restarted in place."""

import os

import pytest

from conftest import wait_for
from kago.manager.testing import kmt_fixture  # noqa: F401 (fixture)
from kago.storage import testkit
from test_compose import compose, project_file


def _states(kmt):
    """{name: state} of every container of the root."""
    out = kmt.kago("ps", "-a", "--format", "{{.Names}} {{.State}}", check=True).stdout
    return dict(line.split() for line in out.splitlines())


@pytest.mark.skipif(not os.path.exists(testkit.Registry.BINARY),
                    reason="docker-registry is not installed")
def test_up_pulls_a_missing_image_and_pull_fetches_it_again(kmt, tmp_path):
    with testkit.Registry(str(tmp_path)) as reg:
        ref = f"{reg.host}/kmt/busybox:1"
        kmt.kago("push", "busybox", ref, check=True)  # (push does not tag it here)
        path = project_file(kmt, str(tmp_path), f"""\
            services:
              web:
                image: {ref}
                command: ["sleep", "1000"]
                stop_signal: SIGKILL
            """, volumes="")
        p = f"kmt{kmt.tag}"
        up = compose(kmt, path, "up", "-d", timeout=120)
        assert up.returncode == 0, up.stderr
        lines = up.stdout.splitlines()
        assert lines.index(" Service web  Pulling") < lines.index(" Service web  Pulled") \
            < lines.index(f" Container {p}-web-1  Started")
        assert ref in kmt.kago("images", "--format", "{{.Repository}}:{{.Tag}}",
                               check=True).stdout.split()
        again = compose(kmt, path, "up", "-d", check=True, timeout=60).stdout
        assert "Pulling" not in again  # present: missing does not pull
        pulled = compose(kmt, path, "pull", check=True, timeout=60).stdout
        assert pulled == " Service web  Pulling\n Service web  Pulled\n"
        compose(kmt, path, "down", check=True, timeout=60)
        kmt.kago("rmi", ref, check=True)
        # pull_policy: never refuses to fetch it, and up makes nothing
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("stop_signal: SIGKILL",
                                 "stop_signal: SIGKILL\n    pull_policy: never"))
        proc = compose(kmt, path, "up", "-d", timeout=60)
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and "pull_policy is never" in proc.stderr
        assert "compose.yaml:" in proc.stderr
        assert kmt.kago("ps", "-aq", check=True).stdout == ""
        assert kmt.kago("network", "ls", check=True).stdout.count(f"{p}_default") == 0


def test_missing_image_without_a_registry_and_a_bad_policy_are_one_line(kmt, tmp_path):
    path = project_file(kmt, str(tmp_path), """\
        services:
          web:
            image: kmt-nosuch:1
        """, volumes="")
    proc = compose(kmt, path, "up", "-d", timeout=60)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "image kmt-nosuch:1 not found" in proc.stderr
    assert "only from a registry the name gives" in proc.stderr
    path = project_file(kmt, str(tmp_path), """\
        services:
          web:
            image: busybox
            pull_policy: sometimes
        """, volumes="")
    proc = compose(kmt, path, "config", "-q")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "compose.yaml:4:" in proc.stderr and "pull_policy" in proc.stderr
    path = project_file(kmt, str(tmp_path), """\
        services:
          web:
            image: busybox
            pull_policy: build
        """, volumes="")
    proc = compose(kmt, path, "config", "-q")
    assert proc.returncode == 1 and "needs a build: section" in proc.stderr
    assert kmt.kago("ps", "-aq", check=True).stdout == ""


def test_build_then_stop_start_restart_in_place(kmt, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "Containerfile").write_text("FROM busybox\nRUN echo built > /built\n")
    path = project_file(kmt, str(tmp_path), """\
        services:
          db:
            image: busybox
            command: ["sleep", "1000"]
            stop_signal: SIGKILL
          app:
            build: ./app
            depends_on: [db]
            command: ["sh", "-c", "cat /built; exec sleep 1000"]
            stop_signal: SIGKILL
        """, volumes="")
    p = f"kmt{kmt.tag}"
    built = compose(kmt, path, "build", check=True, timeout=180)
    assert built.stdout == " Service app  Building\n Service app  Built\n"
    assert "] RUN echo built > /built" in built.stderr  # BuildKit-style progress
    assert f"{p}-app" in kmt.kago("images", "--format", "{{.Repository}}",
                                  check=True).stdout.split()
    proc = compose(kmt, path, "start")
    assert proc.returncode == 1 and "has no container" in proc.stderr
    compose(kmt, path, "up", "-d", check=True, timeout=120)
    ids = kmt.kago("ps", "-q", "--no-trunc", check=True).stdout.split()
    assert len(ids) == 2
    stopped = compose(kmt, path, "stop", check=True, timeout=60).stdout
    assert f" Container {p}-app-1  Stopped" in stopped
    assert _states(kmt) == {f"{p}-db-1": "exited", f"{p}-app-1": "exited"}
    started = compose(kmt, path, "start", "app", check=True, timeout=60).stdout
    # dependencies first, the same containers
    assert started == f" Container {p}-db-1  Started\n Container {p}-app-1  Started\n"
    assert sorted(kmt.kago("ps", "-q", "--no-trunc", check=True).stdout.split()) == \
        sorted(ids)
    before = kmt.inspect(f"{p}-app-1")["State"]["StartedAt"]
    restarted = compose(kmt, path, "restart", "app", "-t", "1", check=True, timeout=60)
    assert f" Container {p}-app-1  Started" in restarted.stdout
    assert kmt.inspect(f"{p}-app-1")["State"]["StartedAt"] != before
    assert _states(kmt) == {f"{p}-db-1": "running", f"{p}-app-1": "running"}
    assert wait_for(lambda: kmt.kago("logs", f"{p}-app-1").stdout.count("built") == 3,
                    timeout=10)
    compose(kmt, path, "down", check=True, timeout=60)
    assert kmt.kago("ps", "-aq", check=True).stdout == ""
    kmt.kago("rmi", f"{p}-app", check=True)
