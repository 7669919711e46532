"""Stages -> images: the build itself, through the manager and its image store.

Each stage starts from its base (a local image, ``scratch``, or an earlier stage's result)
and applies its instructions in order (steps.py). An instruction that only changes the
config changes the stage's state; RUN, COPY and ADD each make a layer: an unnamed image
(the parent's layers and the new one) that is also the build cache's entry for the step. The
target stage's last image and its final config become the named result, with one history
entry per instruction. A failure stops the build with nothing of the failed step left.
"""

import json
import os
import shutil
import stat
import time
import uuid

from kago.manager import events
from kago.manager.build import cache as C
from kago.manager.build import context, files, progress, runner, stages, steps
from kago.manager.build.errors import BuildError, at
from kago.manager.build.parser import parse


class Options:
    """``tags`` [name], ``build_args`` {k: v}, ``target``, ``no_cache``."""

    def __init__(self, tags=(), build_args=None, target=None, no_cache=False):
        self.tags = list(tags)
        self.build_args = dict(build_args or {})
        self.target = target
        self.no_cache = no_cache


class Result:
    """A stage's result: ``image`` (an ID, or None for an empty scratch stage), ``state``."""

    __slots__ = ("history", "image", "state")

    def __init__(self, image, state, history):
        self.image, self.state, self.history = image, state, history


class Builder:
    """``Builder(mgr, tree, options, shown).build(text, source)`` -> ImageInfo, its progress
    (and each RUN's output) shown through ``shown``, a progress.Plain or progress.Quiet."""

    def __init__(self, mgr, tree, options, shown):
        self.mgr = mgr
        self.store = mgr.store
        self.tree = tree
        self.opts = options
        self.progress = shown
        self.cache = C.Cache(mgr.paths.root, self.store)
        self.tmp = os.path.join(mgr.paths.root, "build", "tmp")
        self.names = {}
        self.context_loaded = False
        self.used_args = set()

    def build(self, text, source="Containerfile"):
        sweep_tmp(self.tmp)
        with _shown(self.progress.vertex(f"[internal] load build definition from {source}")) \
                as v:
            v.status(f"transferring dockerfile: {progress.size(len(text.encode()))} done")
            plan = stages.plan(parse(text, source), self.opts.build_args, self.opts.target)
        v = self.progress.vertex("[internal] load .dockerignore")
        v.status(f"transferring context: {progress.size(self.tree.ignore.size)} done")
        v.done()
        self.names = progress.step_names(plan)
        results = {}
        for stage in plan.needed:
            results[stage.index] = self._stage(plan, stage, results)
        final = self._finish(results[plan.target.index])
        unused = sorted(set(self.opts.build_args) - self.used_args - set(plan.global_args))
        if unused:
            self.progress.note("[Warning] one or more build args were not consumed: "
                               + ", ".join(unused))
        return final

    # --- a stage ---------------------------------------------------------------------------

    def _stage(self, plan, stage, results):
        with _shown(self.progress.vertex(self.names[(stage.index, -1)])) as v:
            image, state, history = self._base(plan, stage, results)
        for i, instr in enumerate(stage.instructions):
            if instr.keyword in ("COPY", "ADD") and instr.flag("from") is None:
                self._load_context()
            name = self.names.get((stage.index, i))
            v = self.progress.vertex(name) if name else None
            with _shown(v):
                action, created_by = steps.apply(state, instr, self.opts.build_args)
                if instr.keyword == "ARG":
                    self.used_args.update(n for n, _ in stages.arg_pairs(instr, {},
                                                                         plan.escape))
                history.append({"created": _now(), "created_by": created_by,
                                **({"empty_layer": True} if action is None else {})})
                if action is not None:
                    image = self._fs_step(plan, stage, results, image, state, action, instr,
                                          v)
                elif v is not None:
                    self._config_step(image, state, created_by, v)
        return Result(image, state, history)

    def _config_step(self, image, state, created_by, v):
        """A step BuildKit shows that makes no layer here (WORKDIR: the runtime makes the
        directory): CACHED when the same parent and config had it before, as BuildKit's."""
        if image is None:  # FROM scratch: no image to name in the cache
            return
        key = C.key(config_only=True, parent=image, config=state.config, step=created_by)
        if not self._cached(key, v):
            self.cache.put(key, image)

    def _load_context(self):
        """BuildKit's ``[internal] load build context`` vertex, once, before the first COPY
        or ADD from the context: the bytes of what the context holds, .dockerignore
        applied."""
        if self.context_loaded:
            return
        self.context_loaded = True
        v = self.progress.vertex("[internal] load build context")
        total = sum(st.st_size for _, _, st in self.tree.walk(self.tree.top)
                    if stat.S_ISREG(st.st_mode))
        v.status(f"transferring context: {progress.size(total)} done")
        v.done()

    def _base(self, plan, stage, results):
        if isinstance(stage.base, stages.Stage):
            done = results[stage.base.index]
            state = done.state.copy()
            state.args, state.cmd_set = {}, False   # ARGs and "CMD set here" are per stage
            return done.image, state, list(done.history)
        if stage.base == "scratch":
            return None, steps.State({}, plan.global_args, plan.escape), []
        from kago.storage import ImageNotFound
        try:
            info = self.store.image(stage.base)
        except ImageNotFound:
            raise BuildError(f"FROM {stage.base}: no such image here (kago build uses local "
                             "images only: kago pull or kago import it first)",
                             at(plan.source, stage.line)) from None
        doc = self.store.image_config(info.id)
        history = list(doc.get("history") or [])
        return info.id, steps.State(info.config, plan.global_args, plan.escape), history

    def _fs_step(self, plan, stage, results, image, state, action, instr, v):
        if isinstance(action, steps.Run):
            key = C.key(parent=image, config=state.config, step=action.key())
            cached = self._cached(key, v)
            if cached:
                return cached
            if image is None:
                raise instr.error("RUN needs a filesystem: FROM scratch has none until a COPY "
                                  "or ADD")
            made = runner.run(self.mgr, image, action, state.config, instr.where,
                              lambda _stream, text: v.log(text))
        else:
            source_tree, source_image, cleanup = self._source(plan, stage, results, action,
                                                              instr)
            try:
                found = []
                for src in action.sources:
                    found += source_tree.match(src, instr.where)
                many = len(action.sources) > 1 or any(
                    ch in s for s in action.sources for ch in "*?[")
                digest = (context.digest(source_tree, found) if source_image is None
                          else [source_image, action.sources])
                key = C.key(parent=image, config=state.config, step=action.key(),
                            files=digest)
                cached = self._cached(key, v)
                if cached:
                    return cached
                made = self._copy(image, state, action, source_tree, found, many, instr)
            finally:
                cleanup()
        self.cache.put(key, made)
        return made

    def _cached(self, key, v):
        if self.opts.no_cache:
            return None
        image = self.cache.get(key)
        if image:
            v.cached()
        return image

    # --- COPY / ADD --------------------------------------------------------------------------

    def _source(self, plan, stage, results, action, instr):
        """(Tree to copy from, its image ID or None for the context, cleanup)."""
        if action.source is None:
            return self.tree, None, lambda: None
        earlier = stages.find_stage(plan.stages[:stage.index], action.source)
        if earlier is not None:
            image = results[earlier.index].image
            name = f"stage {earlier.label()}"
            if image is None:
                empty = self._scratch_dir()
                return (context.Tree(empty, name), "empty",
                        lambda: shutil.rmtree(empty, ignore_errors=True))
        else:
            from kago.storage import ImageNotFound
            try:
                image = self.store.image(action.source).id
            except ImageNotFound:
                raise instr.error(f"COPY --from={action.source}: no such stage or local "
                                  "image") from None
            name = f"image {action.source}"
        cid = _cid()
        info = self.store.create_rootfs(cid, image)
        return (context.Tree(info.path, name), image,
                lambda: self.store.remove_rootfs(cid))

    def _copy(self, image, state, action, tree, found, many, instr):
        if image is None:
            root = self._scratch_dir()
            try:
                self._copy_into(root, state, action, tree, found, many, instr)
                return self.store.import_archive(root, config=state.config,
                                                 message=action.text).id
            finally:
                shutil.rmtree(root, ignore_errors=True)
        cid = _cid()
        info = self.store.create_rootfs(cid, image)
        try:
            self._copy_into(info.path, state, action, tree, found, many, instr)
            return self.store.commit(cid, None, config=state.config, message=action.text).id
        finally:
            self.store.remove_rootfs(cid)

    def _copy_into(self, root, state, action, tree, found, many, instr):
        try:
            owner = files.owner_ids(root, action.chown) if action.chown else None
            with files.Target(root) as target:
                files.copy(target, tree, found, action.dest, owner, action.chmod,
                           action.add, many)
        except BuildError as e:
            if e.where:
                raise
            raise instr.error(str(e)) from None

    def _scratch_dir(self):
        private_dir(self.tmp)
        path = os.path.join(self.tmp, f"{os.getpid()}-{uuid.uuid4().hex[:12]}")
        os.mkdir(path, 0o755)
        os.chmod(path, 0o755)
        return path

    # --- the result --------------------------------------------------------------------------

    def _finish(self, result):
        """The named image: the stage's layers with its final config and history."""
        state = result.state
        config = {k: v for k, v in state.config.items() if v not in (None, {}, [])
                  or k in ("Cmd", "Entrypoint") and v == []}
        key = C.key(final=True, image=result.image, config=config, author=state.author,
                    history=[h["created_by"] for h in result.history])
        with _shown(self.progress.vertex("exporting to image")) as v:
            image_id = None if self.opts.no_cache else self.cache.get(key)
            if image_id is None:
                image_id = self._publish(result, config, state.author)
                self.cache.put(key, image_id)
            v.status("exporting layers done")
            v.status(f"writing image sha256:{image_id} done")
            for name in self.opts.tags:
                self._tag(image_id, name)
                v.status(f"naming to {name} done")
        return self.store.image(image_id)

    def _publish(self, result, config, author):
        from kago.storage.model import host_platform, now_rfc3339
        os_name, arch = host_platform()
        doc = {"architecture": arch, "os": os_name,
               "rootfs": {"type": "layers", "diff_ids": []}}
        layers = []
        if result.image is not None:
            doc = self.store.image_config(result.image)
            layers = self.store.layers(result.image)
        doc = dict(doc, created=now_rfc3339(), config=config, history=result.history)
        if author:
            doc["author"] = author
        blob = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        with self.store.staging() as stage:
            return self.store.new_image_from_config(stage, blob, layers, []).id

    def _tag(self, image_id, name):
        from kago.storage import NameTaken
        try:
            self.store.tag(image_id, name)
        except NameTaken:
            self.store.untag(name)  # docker: the name moves to the new image
            self.store.tag(image_id, name)
        events.image(self.mgr.paths, "tag", "sha256:" + image_id, name)


class _shown:
    """``with _shown(vertex):`` ends the vertex DONE, or ERROR with the build error's
    reason (the error itself goes on up); a None vertex shows nothing."""

    def __init__(self, vertex):
        self.vertex = vertex

    def __enter__(self):
        return self.vertex

    def __exit__(self, kind, error, _tb):
        if self.vertex is None:
            return False
        if error is None:
            self.vertex.done()
        elif isinstance(error, BuildError):
            self.vertex.error(error.reason)
        else:
            self.vertex.error("interrupted" if isinstance(error, KeyboardInterrupt)
                              else str(error) or type(error).__name__)
        return False


def sweep_tmp(tmp):
    """Remove what builds that died (SIGKILL) left in ROOT/build/tmp: entries are named
    ``[ctx-]PID-RANDOM`` after the build that made them."""
    for entry in os.listdir(tmp) if os.path.isdir(tmp) else ():
        pid = entry.removeprefix("ctx-").split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            shutil.rmtree(os.path.join(tmp, entry), ignore_errors=True)


def private_dir(path):
    """Make ``path`` and ROOT/build above it root's alone (0700): a context may hold secrets."""
    for level in (os.path.dirname(path), path):
        os.makedirs(level, mode=0o700, exist_ok=True)
        os.chmod(level, 0o700)


def _cid():
    return f"kago-build-{uuid.uuid4().hex[:16]}"


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
