"""Instructions -> stages: the ARGs before the first FROM, each ``FROM base [AS name]`` with
the instructions under it, which stage ``--target`` names, and which stages it needs (pure).

A stage is needed when it is the target, the base of a needed stage (``FROM builder``) or
the source of a needed stage's ``COPY --from``; the others are skipped, as BuildKit does.
"""

import re

from kago.manager.build.errors import BuildError, at
from kago.manager.build.substitute import SubstitutionError, expand, split_raw
from kago.storage.model import host_platform

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9._-]*$")


class Stage:
    """``index``, ``name`` (lower case, or None), ``base`` (an image reference, "scratch" or
    a Stage), ``line`` (of its FROM), ``instructions`` (after the FROM)."""

    __slots__ = ("base", "from_text", "index", "instructions", "line", "name")

    def __init__(self, index, name, base, line, instructions=(), from_text=""):
        self.index = index
        self.name = name
        self.base = base
        self.line = line
        self.instructions = list(instructions)
        self.from_text = from_text

    def label(self):
        return self.name or str(self.index)

    def __repr__(self):
        base = self.base.label() if isinstance(self.base, Stage) else self.base
        return f"Stage({self.index}, {self.name!r}, base={base!r})"


class Plan:
    """``global_args`` {name: value or None} (build args applied), ``stages`` (all, in
    order), ``target`` (a Stage), ``needed`` (the stages to build, in order)."""

    __slots__ = ("escape", "global_args", "needed", "source", "stages", "target")

    def __init__(self, global_args, stages, target, needed, escape="\\", source="Containerfile"):
        self.source = source
        self.global_args = global_args
        self.stages = stages
        self.target = target
        self.needed = needed
        self.escape = escape


def plan(containerfile, build_args=None, target=None):
    """The stages of a parsed Containerfile; BuildError naming the line on anything wrong."""
    build_args = dict(build_args or {})
    escape = containerfile.escape
    instructions = containerfile.instructions
    if not instructions:
        raise BuildError("the file has no instructions", at(containerfile.source, 1))
    global_args = {}
    stages = []
    for instr in instructions:
        if instr.keyword == "FROM":
            stages.append(_stage(instr, len(stages), stages, global_args, escape))
        elif not stages:
            if instr.keyword != "ARG":
                raise instr.error(f"{instr.keyword} before the first FROM: only ARG may come "
                                  "before it")
            for name, default in arg_pairs(instr, global_args, escape):
                global_args[name] = build_args.get(name, default)
        else:
            stages[-1].instructions.append(instr)
    chosen = stages[-1]
    if target is not None:
        chosen = next((s for s in stages if s.name == target.lower()), None)
        if chosen is None:
            raise BuildError(f"target stage {target} could not be found")
    return Plan(global_args, stages, chosen, _needed(chosen, stages), escape,
                containerfile.source)


def arg_pairs(instr, env, escape):
    """``ARG a b=1 c="x y"`` -> [(name, default or None)]."""
    out = []
    try:
        words = split_raw(instr.args, escape)
        if not words:
            raise instr.error("ARG needs a name")
        for word in words:
            name, eq, value = word.partition("=")
            name = expand(name, env, escape)
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise instr.error(f"ARG {name!r}: not a valid name")
            out.append((name, expand(value, env, escape) if eq else None))
    except SubstitutionError as e:
        raise instr.error(str(e)) from None
    return out


def _stage(instr, index, stages, global_args, escape):
    for flag, value in instr.flags:
        if flag != "platform":
            raise instr.error(f"FROM --{flag}: unknown flag (kago build knows --platform)")
        wanted = "/".join(host_platform())
        if value not in (wanted, "$BUILDPLATFORM", "$TARGETPLATFORM", "linux/" + wanted[6:]):
            raise instr.error(f"FROM --platform={value}: kago build builds for the host's "
                              f"platform only ({wanted})")
    env = {k: v for k, v in global_args.items() if v is not None}
    try:
        words = [expand(w, env, escape) for w in split_raw(instr.args, escape)]
    except SubstitutionError as e:
        raise instr.error(str(e)) from None
    if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
        raise instr.error("FROM needs an image, and optionally AS NAME: FROM IMAGE [AS NAME]")
    if not words[0]:
        raise instr.error(f"FROM {instr.args}: the image name is empty (an ARG without a "
                          "value?)")
    name = None
    if len(words) == 3:
        name = words[2].lower()
        if not _STAGE_NAME.match(name):
            raise instr.error(f"stage name {words[2]!r}: use letters, digits, '-', '_' and "
                              "'.', starting with a letter")
        if any(s.name == name for s in stages):
            raise instr.error(f"duplicate stage name {name!r}")
    base = words[0]
    earlier = find_stage(stages, base, numeric=False)
    return Stage(index, name, earlier or base, instr.line, from_text=instr.text)


def find_stage(stages, ref, numeric=True):
    """The earlier stage ``ref`` names (its name, or its index for COPY --from), or None."""
    for stage in stages:
        if stage.name and stage.name == ref.lower():
            return stage
    if numeric and ref.isdigit() and int(ref) < len(stages):
        return stages[int(ref)]
    return None


def _needed(target, stages):
    need = {target.index}
    for stage in reversed(stages[:target.index + 1]):
        if stage.index not in need:
            continue
        if isinstance(stage.base, Stage):
            need.add(stage.base.index)
        earlier = stages[:stage.index]
        for instr in stage.instructions:
            source = instr.flag("from") if instr.keyword == "COPY" else None
            if source:
                dep = find_stage(earlier, source)
                if dep is not None:
                    need.add(dep.index)
    return [s for s in stages if s.index in need]
