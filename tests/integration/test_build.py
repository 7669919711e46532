"""`kago build` through the command line, on the embedded busybox image, each test in its
own isolated manager root (nft table, bridge and netns names of its own): the result's
config and `kago run` of it, multi-stage builds, the cache, build args, a tar context on
stdin, .dockerignore, ADD of a local archive, and that a failed RUN leaves nothing behind."""

import glob
import io
import json
import os
import re
import subprocess
import tarfile

import pytest

from kago.manager.testing import KAGO, kmt_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="kago needs root")


def _context(path, files):
    for name, content in files.items():
        full = os.path.join(path, name)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(content)
    return str(path)


def _build(kmt, *args, check=True):
    return kmt.kago("build", *args, check=check, timeout=180)


def _image_id(proc):
    return proc.stdout.strip().splitlines()[-1]


def _config(kmt, ref):
    return json.loads(kmt.kago("inspect", "--type", "image", ref, check=True).stdout)[0]


SINGLE = """\
FROM busybox
LABEL org.example.name="a test" version=1
ENV GREETING=hello \\
    TARGET=world
WORKDIR /app
COPY greet.sh ./
COPY data/ /app/data/
ADD bundle.tar.gz /opt/
RUN chmod 755 greet.sh && echo "$GREETING $TARGET" > made.txt
RUN echo "app:x:1234:1234::/app:/bin/sh" >> /etc/passwd && chown app /app/made.txt
COPY --chown=1234:99 data/sub/x.txt /app/owned.txt
COPY --chown=app --chmod=600 data/sub/x.txt /app/named.txt
USER app
EXPOSE 8080 53/udp
VOLUME /state
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --retries=2 CMD test -f /app/made.txt
CMD ["/app/greet.sh"]
"""


def test_single_stage_build_then_run(kmt, tmp_path):
    with tarfile.open(tmp_path / "bundle.tar.gz", "w:gz") as t:
        data = b"from the archive\n"
        info = tarfile.TarInfo("bundled/readme.txt")
        info.size, info.uid, info.gid, info.mode = len(data), 42, 43, 0o640
        t.addfile(info, io.BytesIO(data))
    ctx = _context(tmp_path, {
        "Containerfile": SINGLE,
        "greet.sh": "#!/bin/sh\ncat /app/made.txt; id -u; pwd; cat /app/data/sub/x.txt\n",
        "data/sub/x.txt": "x\n"})
    proc = _build(kmt, "-t", "kmt-single:v1", "-t", "kmt-single", ctx)
    # BuildKit's plain progress on stderr: FROM, WORKDIR, COPY, ADD and RUN are the steps
    steps = [line for line in proc.stderr.splitlines() if line.startswith("#")
             and "] " in line and "[internal]" not in line]
    assert [s.split(" ", 1)[1] for s in steps] == [
        "[1/9] FROM busybox:latest", "[2/9] WORKDIR /app", "[3/9] COPY greet.sh ./",
        "[4/9] COPY data/ /app/data/", "[5/9] ADD bundle.tar.gz /opt/",
        '[6/9] RUN chmod 755 greet.sh && echo "$GREETING $TARGET" > made.txt',
        '[7/9] RUN echo "app:x:1234:1234::/app:/bin/sh" >> /etc/passwd && chown app '
        '/app/made.txt', "[8/9] COPY --chown=1234:99 data/sub/x.txt /app/owned.txt",
        "[9/9] COPY --chown=app --chmod=600 data/sub/x.txt /app/named.txt"]
    numbers = [int(s[1:].split(" ", 1)[0]) for s in steps]
    assert numbers == sorted(numbers) and len(set(numbers)) == 9
    for n in numbers:  # each step ends once, DONE with its time
        ends = [line for line in proc.stderr.splitlines() if line.startswith(f"#{n} DONE ")]
        assert len(ends) == 1 and ends[0].endswith("s"), proc.stderr
    assert re.search(r"^#\d+ naming to kmt-single:v1 done$", proc.stderr, re.M)
    assert re.search(r"^#\d+ transferring context: \d+(\.\d+)?k?B done$", proc.stderr, re.M)
    assert proc.stdout.startswith("sha256:") and len(proc.stdout.splitlines()) == 1
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-single:v1", check=True).stdout
    assert out == "hello world\n1234\n/app\nx\n"
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-single", "stat", "-c", "%u:%g %a",
                   "/opt/bundled/readme.txt", "/app/greet.sh", "/app/owned.txt",
                   "/app/named.txt", check=True).stdout
    assert out.split("\n")[:4] == ["42:43 640", "0:0 755", "1234:99 644", "1234:1234 600"]
    cfg = _config(kmt, "kmt-single:v1")["Config"]
    assert cfg["Cmd"] == ["/app/greet.sh"] and "Entrypoint" not in cfg
    assert {"GREETING=hello", "TARGET=world"} <= set(cfg["Env"])
    assert any(e.startswith("PATH=") for e in cfg["Env"])
    assert (cfg["WorkingDir"], cfg["User"], cfg["StopSignal"]) == ("/app", "app", "SIGQUIT")
    assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert cfg["Labels"] == {"org.example.name": "a test", "version": "1"}
    assert cfg["Volumes"] == {"/state": {}}
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "test -f /app/made.txt"],
                                  "Interval": 30 * 10**9, "Retries": 2}
    names = kmt.kago("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout
    assert {"kmt-single:v1", "kmt-single:latest"} <= set(names.split())
    # no build container is left behind
    assert kmt.kago("ps", "-a", "-q", check=True).stdout == ""


MULTI = """\
ARG BASE=busybox
FROM $BASE AS builder
RUN mkdir /out && echo built > /out/artifact && echo unused > /out/other
FROM builder AS tester
RUN echo tested > /out/tested
FROM busybox
COPY --from=builder /out/artifact /srv/
COPY --from=busybox /bin/busybox /copied-busybox
CMD ["cat", "/srv/artifact"]
"""


def test_multi_stage_copy_from_and_target(kmt, tmp_path):
    ctx = _context(tmp_path, {"Containerfile": MULTI})
    proc = _build(kmt, "-t", "kmt-multi", ctx)
    assert "RUN echo tested" not in proc.stderr   # a stage the target does not need
    assert "#3 [builder 1/2] FROM busybox:latest\n" in proc.stderr  # stage-named steps
    assert "] COPY --from=builder /out/artifact /srv/\n" in proc.stderr
    assert "[stage-2 1/3] FROM busybox:latest\n" in proc.stderr
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-multi", check=True).stdout
    assert out == "built\n"
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-multi", "sh", "-c",
                   "ls /srv; test -x /copied-busybox && echo ok", check=True).stdout
    assert out == "artifact\nok\n"
    _build(kmt, "--target", "tester", "-t", "kmt-tester", ctx)
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-tester", "cat", "/out/tested",
                   "/out/artifact", check=True).stdout
    assert out == "tested\nbuilt\n"
    bad = _build(kmt, "--target", "nope", ctx, check=False)
    assert bad.returncode == 1 and "target stage nope could not be found" in bad.stderr


CACHED = """\
FROM busybox
COPY input.txt /input.txt
RUN cat /input.txt > /one && date +%s%N > /stamp
RUN echo two > /two
WORKDIR /srv
CMD ["cat", "/stamp"]
"""


def test_cache_hits_and_no_cache(kmt, tmp_path):
    ctx = _context(tmp_path, {"Containerfile": CACHED, "input.txt": "v1\n"})
    first = _build(kmt, "-t", "kmt-cache", ctx)
    assert "CACHED" not in first.stderr
    assert re.search(r"^#\d+ 0\.\d{3} \S", first.stderr, re.M) is None  # the RUNs print nothing
    stamp = kmt.kago("run", "--rm", "--network", "none", "kmt-cache", check=True).stdout
    second = _build(kmt, "-t", "kmt-cache", ctx)
    # WORKDIR makes no layer, yet it is CACHED like the others, as BuildKit shows it
    assert re.findall(r"^#(\d+) CACHED$", second.stderr, re.M) == ["5", "6", "7", "8"], \
        second.stderr
    assert "#5 [2/5] COPY input.txt /input.txt\n#5 CACHED\n" in second.stderr
    assert "#8 [5/5] WORKDIR /srv\n#8 CACHED\n" in second.stderr
    assert _image_id(second) == _image_id(first)
    # the steps' images are the cache: `images` hides them, `images -a` shows them
    fmt = ("--format", "{{.Repository}}")
    assert sorted(kmt.kago("images", *fmt, check=True).stdout.split()) == ["busybox",
                                                                           "kmt-cache"]
    assert kmt.kago("images", "-a", *fmt, check=True).stdout.split().count("<none>") == 3
    # a changed file misses from its COPY on
    _context(tmp_path, {"input.txt": "v2\n"})
    third = _build(kmt, "-t", "kmt-cache", ctx)
    assert "CACHED" not in third.stderr and _image_id(third) != _image_id(first)
    # --no-cache runs everything again
    fourth = _build(kmt, "--no-cache", "-t", "kmt-cache", ctx)
    assert "CACHED" not in fourth.stderr
    again = kmt.kago("run", "--rm", "--network", "none", "kmt-cache", check=True).stdout
    assert again != stamp


ARGS = """\
ARG VERSION=1.0
FROM busybox
ARG VERSION
ARG FLAVOR=plain
ARG UNSET
RUN echo "version=$VERSION flavor=$FLAVOR unset=${UNSET:-none}" > /args
LABEL version=$VERSION
CMD ["cat", "/args"]
"""


def test_build_args(kmt, tmp_path):
    ctx = _context(tmp_path, {"Containerfile": ARGS})
    _build(kmt, "-t", "kmt-args", ctx)
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-args", check=True).stdout
    assert out == "version=1.0 flavor=plain unset=none\n"
    proc = _build(kmt, "-t", "kmt-args", "--build-arg", "VERSION=2.5", "--build-arg",
                  "FLAVOR=spicy", "--build-arg", "EXTRA=1", ctx)
    assert "\n\n[Warning] one or more build args were not consumed: EXTRA\n" in proc.stderr
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-args", check=True).stdout
    assert out == "version=2.5 flavor=spicy unset=none\n"
    cfg = _config(kmt, "kmt-args")["Config"]
    assert cfg["Labels"] == {"version": "2.5"}
    assert not any(e.startswith(("VERSION=", "FLAVOR=")) for e in cfg["Env"])  # not kept


ENTRY = """\
FROM busybox
SHELL ["/bin/sh", "-ec"]
RUN case "$-" in *e*) echo errexit > /shell;; esac
ENTRYPOINT ["/bin/sh", "-c", "echo \\"$0 $1 $(cat /shell)\\"", "from-entrypoint"]
CMD ["from-cmd"]
"""


def test_shell_entrypoint_and_cmd_through_build_and_run(kmt, tmp_path):
    ctx = _context(tmp_path, {"Entryfile": ENTRY})
    _build(kmt, "-t", "kmt-entry", "-f", os.path.join(ctx, "Entryfile"), ctx)
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-entry", check=True).stdout
    assert out == "from-entrypoint from-cmd errexit\n"
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-entry", "given", check=True)
    assert out.stdout == "from-entrypoint given errexit\n"
    cfg = _config(kmt, "kmt-entry")["Config"]
    assert cfg["Shell"] == ["/bin/sh", "-ec"] and cfg["Cmd"] == ["from-cmd"]
    history = kmt.kago("history", "--no-trunc", "--format", "{{.CreatedBy}}", "kmt-entry",
                       check=True).stdout.splitlines()
    assert history[:2] == ['CMD ["from-cmd"]', 'ENTRYPOINT ["/bin/sh" "-c" '
                           '"echo \\"$0 $1 $(cat /shell)\\"" "from-entrypoint"]']


def test_tar_context_on_stdin(kmt, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, data in {"Dockerfile": b"FROM busybox\nCOPY app/hello /hello\n"
                                         b"CMD [\"cat\", \"/hello\"]\n",
                           "app/hello": b"from stdin\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    proc = subprocess.run([KAGO, "build", "-q", "-t", "kmt-stdin", "-"], input=buf.getvalue(),
                          capture_output=True, env=kmt.env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().startswith("sha256:")
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-stdin", check=True).stdout
    assert out == "from stdin\n"
    # stdin that is not a tar is the Containerfile itself, with an empty context
    proc = kmt.kago("build", "-q", "-t", "kmt-stdin2", "-", input="FROM busybox\nENV A=1\n",
                    check=True)
    assert "A=1" in _config(kmt, "kmt-stdin2")["Config"]["Env"]


def test_dockerignore(kmt, tmp_path):
    ctx = _context(tmp_path, {
        "Containerfile": "FROM busybox\nCOPY . /ctx/\nRUN find /ctx -type f | sort\n",
        ".dockerignore": "# build output\n*.log\nsecrets/\ndocs/**/*.md\n!docs/keep.md\n",
        "a.txt": "a", "debug.log": "x", "secrets/key": "k", "docs/keep.md": "k",
        "docs/deep/drop.md": "d", "docs/deep/keep.txt": "t", "sub/nested.log": "n"})
    _build(kmt, "-t", "kmt-ignore", ctx)
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-ignore", "find", "/ctx", "-type",
                   "f", check=True).stdout.split()
    assert sorted(out) == ["/ctx/.dockerignore", "/ctx/Containerfile", "/ctx/a.txt",
                           "/ctx/docs/deep/keep.txt", "/ctx/docs/keep.md",
                           "/ctx/sub/nested.log"]
    bad = _context(tmp_path / "b", {"Containerfile": "FROM busybox\nCOPY debug.log /\n",
                                    ".dockerignore": "*.log\n", "debug.log": "x"})
    proc = _build(kmt, bad, check=False)
    assert proc.returncode == 1
    assert "Containerfile:2: debug.log: no such file or directory in the build context" \
        in proc.stderr


def _cgroups(prefix):
    """The cgroups of the container whose ID starts with ``prefix`` (v1 hierarchies, the
    hybrid host's cgroup2 tree, or a pure cgroup v2 host's root)."""
    return (glob.glob(f"/sys/fs/cgroup/kago-{prefix}*")
            + glob.glob(f"/sys/fs/cgroup/*/kago-{prefix}*"))


def _store_state(kmt):
    storage = os.path.join(kmt.root, "storage")
    return {sub: sorted(os.listdir(os.path.join(storage, sub)))
            for sub in ("layers", "images", "containers", "tmp", "blobs/sha256")}


def test_failed_run_leaves_nothing(kmt, tmp_path):
    ctx = _context(tmp_path, {"Containerfile": "FROM busybox\nRUN echo prepared > /p\n"
                                               "RUN echo about to fail; echo oops >&2; "
                                               "exit 3\nRUN echo never\n"})
    # the first step succeeds and is cached: what the failure must not touch
    ok = _context(tmp_path / "ok", {"Containerfile": "FROM busybox\nRUN echo prepared > /p\n"})
    _build(kmt, ok)
    before = _store_state(kmt)
    proc = _build(kmt, "-t", "kmt-fail", ctx, check=False)
    assert proc.returncode == 1
    # the step's output with its times, then its ERROR line, a gap and the one-line error
    assert re.search(r"^#5 \d+\.\d{3} about to fail\n#5 \d+\.\d{3} oops\n", proc.stderr, re.M)
    assert proc.stderr.endswith(
        "#5 ERROR: RUN /bin/sh -c echo about to fail; echo oops >&2; exit 3: exited with "
        "status 3\n\nkago: Containerfile:3: RUN /bin/sh -c echo about to fail; echo oops >&2; "
        "exit 3: exited with status 3\n"), proc.stderr
    assert "never" not in proc.stderr and proc.stdout == ""
    assert kmt.kago("ps", "-a", "-q", check=True).stdout == ""
    assert _store_state(kmt) == before
    with open(os.path.join(kmt.root, "events.jsonl")) as f:
        made = [e["Actor"]["ID"] for e in map(json.loads, f) if e["Action"] == "create"
                and e["Type"] == "container"]
    cid = made[-1][:12]  # the failed step's container
    assert _cgroups(cid) == []
    assert not any(cid in line for line in open("/proc/self/mountinfo"))
    # no netns, veth or mount of it (the default network's bridge and table stay)
    shared = ("supervisor", "nft table", f"link km{kmt.tag}b0")
    assert [x for x in kmt.leftovers() if not x.startswith(shared)] == []
    assert os.listdir(os.path.join(kmt.root, "build", "tmp")) == [] if os.path.isdir(
        os.path.join(kmt.root, "build", "tmp")) else True
    images = kmt.kago("images", "--format", "{{.Repository}}", check=True).stdout.split()
    assert "kmt-fail" not in images
    # -q prints the failed step's output too
    proc = _build(kmt, "-q", ctx, check=False)
    assert proc.returncode == 1 and "about to fail" in proc.stderr and "#" not in proc.stderr
    # --progress=quiet is -q; a progress mode docker does not have is a flag error
    assert _build(kmt, "--progress=quiet", ctx, check=False).stderr.startswith("about to fail")
    bad = _build(kmt, "--progress=fancy", ctx, check=False)
    assert bad.returncode == 125 and "--progress" in bad.stderr


def test_symlinks_stay_inside_the_image_and_the_context(kmt, tmp_path):
    outside = tmp_path / "outside"
    ctx = _context(tmp_path / "ctx", {
        "Containerfile": f"FROM busybox\nRUN ln -s /../../../../../..{outside} /escape\n"
                         "COPY f /escape/\nCOPY f /escape/sub/g\n",
        "f": "data\n"})
    _build(kmt, "-t", "kmt-links", ctx)
    assert not outside.exists()   # the image's symlink was followed inside the image
    out = kmt.kago("run", "--rm", "--network", "none", "kmt-links", "cat", f"{outside}/f",
                   f"{outside}/sub/g", check=True).stdout
    assert out == "data\ndata\n"
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    os.symlink(str(secret), tmp_path / "ctx" / "link")
    os.symlink("../secret", tmp_path / "ctx" / "rel")  # the host file, seen from ctx
    for name in ("link", "rel"):
        with open(tmp_path / "ctx" / "Containerfile", "w") as f:
            f.write(f"FROM busybox\nCOPY {name} /got\n")
        proc = _build(kmt, ctx, check=False)
        assert proc.returncode == 1
        assert f"Containerfile:2: {name}: no such file or directory in the build context" \
            in proc.stderr
    assert os.stat(os.path.join(kmt.root, "build")).st_mode & 0o777 == 0o700


def test_parse_error_names_the_line(kmt, tmp_path):
    ctx = _context(tmp_path, {"Containerfile": "FROM busybox\n# fine\nRUN true \\\n  && true\n"
                                               "FOO bar\n"})
    proc = _build(kmt, ctx, check=False)
    assert proc.returncode == 1
    assert proc.stderr.endswith("\n#1 ERROR: unknown instruction FOO\n\n"
                                "kago: Containerfile:5: unknown instruction FOO\n")
    assert proc.stdout == "" and "#2" not in proc.stderr
    ctx = _context(tmp_path / "m", {"Dockerfile.dev": "FROM nosuchimage\n"})
    proc = _build(kmt, "-f", os.path.join(ctx, "Dockerfile.dev"), ctx, check=False)
    assert proc.returncode == 1
    assert "Dockerfile.dev:1: FROM nosuchimage: no such image here" in proc.stderr
    proc = _build(kmt, str(tmp_path / "absent"), check=False)
    assert proc.returncode == 1 and "is not a directory" in proc.stderr
    proc = _build(kmt, "-t", "Bad:Name", ctx, check=False)   # a bad flag: docker's 125
    assert proc.returncode == 125 and "-t Bad:Name" in proc.stderr
