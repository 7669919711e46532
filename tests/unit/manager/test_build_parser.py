"""kago build's pure half: the Containerfile parser, variable substitution, stages and what
each instruction does to a stage's state; every error names the file and the line."""

import pytest

from kago.manager.build import context, stages, steps
from kago.manager.build.errors import BuildError
from kago.manager.build.parser import parse
from kago.manager.build.substitute import (
    SubstitutionError,
    expand,
    expand_words,
    pairs,
    split_raw,
)

ENV = {"A": "1", "EMPTY": "", "SP": "x y", "HOME": "/root"}


@pytest.mark.parametrize("text,want", [
    ("$A", "1"), ("${A}", "1"), ("pre${A}post", "pre1post"), ("$A$A", "11"),
    ("$NOPE", ""), ("${NOPE}", ""), ("$", "$"), ("a$", "a$"), ("$1x", "$1x"),
    ("${NOPE:-dflt}", "dflt"), ("${EMPTY:-dflt}", "dflt"), ("${EMPTY-dflt}", ""),
    ("${NOPE-dflt}", "dflt"), ("${A:-dflt}", "1"),
    ("${A:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${NOPE+alt}", ""),
    ("${NOPE:-$A}", "1"), ("${NOPE:-${HOME}/x}", "/root/x"), ("${NOPE:-a b}", "a b"),
    ("'$A'", "$A"), ('"$A"', "1"), ('"${A}x"', "1x"), (r"\$A", "$A"), (r'"\$A"', "$A"),
    (r'"a\"b"', 'a"b'), (r'"a\b"', r"a\b"), (r"a\ b", "a b"), ('"a  b"', "a  b"),
    ("a  b", "a  b"), ("'it''s'", "its"), ('"x"\'y\'z', "xyz"),
])
def test_expand(text, want):
    assert expand(text, ENV) == want


@pytest.mark.parametrize("text,want", [
    ("a b  c", ["a", "b", "c"]), ("$SP z", ["x", "y", "z"]), ('"$SP" z', ["x y", "z"]),
    ("'a b' c", ["a b", "c"]), ('""', [""]), ("$NOPE a", ["a"]), (r"a\ b c", ["a b", "c"]),
    ("${A}.txt /d/", ["1.txt", "/d/"]),
])
def test_expand_words(text, want):
    assert expand_words(text, ENV) == want


def test_backquote_escape():
    assert expand("`$A", ENV, escape="`") == "$A"
    assert expand(r"C:\dir", ENV, escape="`") == r"C:\dir"


@pytest.mark.parametrize("text,message", [
    ("${A", "missing '}'"), ("${A:-x", "missing '}'"), ("${%}", "needs a variable name"),
    ("${A%x}", "unsupported modifier (%)"), ("'open", "' is not closed"),
    ('"open', '" is not closed'), ("${NOPE:?must be set}", "NOPE: must be set"),
    ("${EMPTY:?}", "EMPTY: parameter not set or null"),
])
def test_expand_errors(text, message):
    with pytest.raises(SubstitutionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expand(text, ENV)


def test_set_but_empty_is_not_an_error_without_the_colon():
    assert expand("${EMPTY?boom}", ENV) == ""


@pytest.mark.parametrize("text,want", [
    ("A=1 B=2", [("A", "1"), ("B", "2")]),
    ('A="x y" B=\'$A\'', [("A", "x y"), ("B", "$A")]),
    ("P=$HOME/bin", [("P", "/root/bin")]),
    ("KEY the value   here", [("KEY", "the value   here")]),
    (r"A=a\ b", [("A", "a b")]),
    ("A=", [("A", "")]),
])
def test_pairs(text, want):
    assert pairs(text, ENV) == want


def test_split_raw_keeps_quotes():
    assert split_raw('A="x y" B=\'z\' C') == ['A="x y"', "B='z'", "C"]


@pytest.mark.parametrize("text,message", [
    ("A=1 B", "cannot find = in 'B'"), ("=1", "names cannot be blank"), ("ONLY", "needs a value"),
])
def test_pairs_errors(text, message):
    with pytest.raises(SubstitutionError, match=message):
        pairs(text, ENV)


# --- the parser -----------------------------------------------------------------------------

def test_continuations_comments_and_lines():
    cf = parse("FROM busybox\n"
               "\n"
               "# a comment\n"
               "RUN echo a \\\n"
               "  # a comment inside\n"
               "\n"
               "  && echo b \\   \n"
               "  && echo c\n"
               "   cmd   [\"sh\"]\n")
    assert [(i.keyword, i.line) for i in cf.instructions] == [("FROM", 1), ("RUN", 4),
                                                               ("CMD", 9)]
    assert cf.instructions[1].args == "echo a   && echo b   && echo c"
    assert cf.instructions[2].json == ("sh",)


@pytest.mark.parametrize("args,json", [
    ('["a", "b c"]', ("a", "b c")), ('[]', ()), ("echo [x]", None), ('["a", 1]', None),
    ("[not json", None), ('["a"] tail', None),
])
def test_exec_and_shell_forms(args, json):
    assert parse(f"FROM x\nCMD {args}").instructions[1].json == json


def test_escape_directive():
    cf = parse("# escape=`\nFROM x\nRUN echo a `\n  b\nCOPY C:\\x /y\n")
    assert cf.escape == "`"
    assert cf.instructions[1].args == "echo a   b"
    assert cf.instructions[2].args == "C:\\x /y"


def test_directive_after_a_comment_is_a_comment():
    cf = parse("# hello\n# escape=`\nFROM x\nRUN a \\\n b")
    assert cf.escape == "\\" and cf.instructions[1].args == "a  b"


def test_flags():
    instr = parse("FROM x\nCOPY --from=build --chown=1:2 --link a b").instructions[1]
    assert instr.flags == (("from", "build"), ("chown", "1:2"), ("link", None))
    assert instr.args == "a b" and instr.flag("from") == "build"


@pytest.mark.parametrize("text,where,message", [
    ("FROM x\nRUN a\n\nFOO bar\n", "Containerfile:4", "unknown instruction FOO"),
    ("FROM x\nONBUILD RUN a\n", "Containerfile:2", "ONBUILD is not supported"),
    ("# escape=x\nFROM x\n", "Containerfile:1", "invalid escape token"),
    ("# escape=`\n# escape=\\\nFROM x\n", "Containerfile:2", "only one escape"),
    ("FROM x\nCOPY --from:build a b\n", "Containerfile:2", "bad flag --from:build"),
    ("FROM x\nRUN <<EOF\necho\nEOF\n", "Containerfile:2", "heredoc"),
])
def test_parse_errors_name_the_line(text, where, message):
    with pytest.raises(BuildError, match=message) as err:
        parse(text)
    assert str(err.value).startswith(where + ": ")


def test_error_names_the_file():
    with pytest.raises(BuildError) as err:
        parse("FROM x\nBAD\n", source="Dockerfile.dev")
    assert str(err.value) == "Dockerfile.dev:2: unknown instruction BAD"


# --- stages ---------------------------------------------------------------------------------

MULTI = """\
ARG BASE=busybox
ARG TAG
FROM ${BASE} AS build
RUN make
FROM build AS test
RUN test
FROM scratch AS other
COPY --from=build /out /out
FROM $BASE
COPY --from=0 /x /x
"""


def test_stages_and_global_args():
    plan = stages.plan(parse(MULTI))
    assert plan.global_args == {"BASE": "busybox", "TAG": None}
    assert [(s.index, s.name) for s in plan.stages] == [(0, "build"), (1, "test"),
                                                       (2, "other"), (3, None)]
    assert plan.stages[0].base == "busybox" and plan.stages[1].base is plan.stages[0]
    assert plan.stages[2].base == "scratch"
    assert plan.target is plan.stages[3]
    assert [s.index for s in plan.needed] == [0, 3]   # test and other are skipped


def test_target_and_build_args():
    plan = stages.plan(parse(MULTI), {"BASE": "alpine"}, target="other")
    assert plan.stages[0].base == "alpine"
    assert [s.index for s in plan.needed] == [0, 2]
    assert [s.index for s in stages.plan(parse(MULTI), target="test").needed] == [0, 1]


@pytest.mark.parametrize("text,target,message", [
    ("RUN a\nFROM x\n", None, "Containerfile:1: RUN before the first FROM"),
    ("FROM x AS a\nFROM y AS A\n", None, "Containerfile:2: duplicate stage name 'a'"),
    ("FROM x AS 1a\n", None, "Containerfile:1: stage name '1a'"),
    ("FROM x y\n", None, "Containerfile:1: FROM needs an image"),
    ("ARG B\nFROM $B\n", None, "Containerfile:2: FROM \\$B: the image name is empty"),
    ("FROM x --platform=linux/s390x\n", None, "FROM needs an image"),
    ("FROM --platform=windows/amd64 x\n", None, "Containerfile:1: FROM --platform"),
    ("FROM x\n", "nope", "target stage nope could not be found"),
    ("", None, "Containerfile:1: the file has no instructions"),
])
def test_stage_errors(text, target, message):
    with pytest.raises(BuildError, match=message):
        stages.plan(parse(text), target=target)


# --- instructions on a state ----------------------------------------------------------------

def _run(text, config=None, build_args=None, global_args=None):
    """Apply every instruction after the FROM; (state, [actions])."""
    cf = parse("FROM base\n" + text)
    state = steps.State(config or {"Env": ["PATH=/bin"]}, global_args or {})
    actions = [steps.apply(state, instr, build_args or {})[0] for instr in cf.instructions[1:]]
    return state, actions


@pytest.mark.parametrize("text,key,want", [
    ("ENV A=1 B=\"x y\"", "Env", ["PATH=/bin", "A=1", "B=x y"]),
    ("ENV PATH=/x:$PATH", "Env", ["PATH=/x:/bin"]),
    ("ENV A 1 2", "Env", ["PATH=/bin", "A=1 2"]),
    ("ENV A=1\nENV B=$A$A", "Env", ["PATH=/bin", "A=1", "B=11"]),
    ("WORKDIR /a\nWORKDIR b\nWORKDIR ../c", "WorkingDir", "/a/c"),
    ("ENV D=/srv\nWORKDIR $D/app", "WorkingDir", "/srv/app"),
    ("USER app:staff", "User", "app:staff"),
    ("EXPOSE 80 53/udp 8000-8001", "ExposedPorts",
     {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}),
    ("LABEL a=b \"c d\"=e", "Labels", {"a": "b", "c d": "e"}),
    ("VOLUME /data /logs", "Volumes", {"/data": {}, "/logs": {}}),
    ('VOLUME ["/data"]', "Volumes", {"/data": {}}),
    ("STOPSIGNAL SIGQUIT", "StopSignal", "SIGQUIT"),
    ("STOPSIGNAL 9", "StopSignal", "9"),
    ('SHELL ["/bin/bash", "-c"]\nCMD echo', "Cmd", ["/bin/bash", "-c", "echo"]),
    ('CMD ["a", "b"]', "Cmd", ["a", "b"]),
    ("CMD echo $HOME", "Cmd", ["/bin/sh", "-c", "echo $HOME"]),
    ("ENTRYPOINT [\"/e\"]", "Entrypoint", ["/e"]),
    ("HEALTHCHECK NONE", "Healthcheck", {"Test": ["NONE"]}),
    ("HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --retries=4 CMD ok",
     "Healthcheck", {"Test": ["CMD-SHELL", "ok"], "Interval": 90 * 10**9,
                     "Timeout": 500 * 10**6, "StartPeriod": 2 * 10**9, "Retries": 4}),
    ('HEALTHCHECK CMD ["wget", "-q", "x"]', "Healthcheck", {"Test": ["CMD", "wget", "-q",
                                                                    "x"]}),
])
def test_metadata_instructions(text, key, want):
    state, actions = _run(text)
    assert actions == [None] * len(actions)
    assert state.config[key] == want


@pytest.mark.parametrize("text,created_by", [
    ('CMD ["echo $A", "b"]', 'CMD ["echo $A" "b"]'),
    ("CMD echo it's", 'CMD ["/bin/sh" "-c" "echo it\'s"]'),
    ('ENTRYPOINT ["/bin/sh", "-c"]', 'ENTRYPOINT ["/bin/sh" "-c"]'),
    ('SHELL ["/bin/sh", "-c"]', 'SHELL ["/bin/sh" "-c"]'),
    ("VOLUME /data /logs", 'VOLUME ["/data" "/logs"]'),
    ("HEALTHCHECK CMD true", 'HEALTHCHECK ["CMD-SHELL" "true"]'),
])
def test_history_shows_lists_as_docker_does_not_as_python_reprs(text, created_by):
    cf = parse("FROM base\n" + text)
    state = steps.State({"Env": ["PATH=/bin"]}, {})
    assert steps.apply(state, cf.instructions[1], {})[1] == created_by


def test_entrypoint_drops_the_base_cmd_but_not_its_own():
    state, _ = _run('ENTRYPOINT ["/e"]', config={"Cmd": ["base"]})
    assert "Cmd" not in state.config
    state, _ = _run('CMD ["mine"]\nENTRYPOINT ["/e"]', config={"Cmd": ["base"]})
    assert state.config["Cmd"] == ["mine"]


def test_args_build_args_and_run_environment():
    state, actions = _run("ARG V=1\nARG W\nARG G\nENV E=$V\nRUN echo $V\nARG V2=${V}x\n",
                          build_args={"V": "9"}, global_args={"G": "g"})
    run = actions[4]
    assert isinstance(run, steps.Run)
    assert run.argv == ["/bin/sh", "-c", "echo $V"]
    assert run.env == ["PATH=/bin", "E=9", "V=9", "G=g"]   # ARG W has no value: not set
    assert state.args == {"V": "9", "W": None, "G": "g", "V2": "9x"}
    assert "V" not in "".join(state.config["Env"]).split("=")[0]


def test_env_wins_over_arg():
    state, actions = _run("ARG X=arg\nENV X=env\nRUN true\nENV Y=$X")
    assert actions[2].env == ["PATH=/bin", "X=env"]
    assert state.config["Env"][-1] == "Y=env"


def test_run_uses_workdir_user_and_shell():
    _, actions = _run('WORKDIR /w\nUSER 5\nSHELL ["/bin/ash", "-e", "-c"]\nRUN x\n'
                      'RUN ["/bin/y", "$NOT"]')
    assert (actions[3].argv, actions[3].workdir, actions[3].user) == (
        ["/bin/ash", "-e", "-c", "x"], "/w", "5")
    assert actions[4].argv == ["/bin/y", "$NOT"]


@pytest.mark.parametrize("text,sources,dest,source,chown,chmod", [
    ("COPY a b /d/", ["a", "b"], "/d/", None, None, None),
    ("WORKDIR /w\nCOPY a .", ["a"], "/w/", None, None, None),
    ("WORKDIR /w\nCOPY a sub", ["a"], "/w/sub", None, None, None),
    ("ENV F=x.txt\nCOPY $F /d", ["x.txt"], "/d", None, None, None),
    ('COPY ["a b", "/d e/"]', ["a b"], "/d e/", None, None, None),
    ("COPY --from=build --chown=app:app --chmod=640 /o /o", ["/o"], "/o", "build", "app:app",
     0o640),
    ("ARG S=st\nCOPY --from=$S a /", ["a"], "/", "st", None, None),
])
def test_copy(text, sources, dest, source, chown, chmod):
    _, actions = _run(text)
    copy = actions[-1]
    assert isinstance(copy, steps.Copy) and not copy.add
    assert (copy.sources, copy.dest, copy.source, copy.chown, copy.chmod) == (
        sources, dest, source, chown, chmod)


@pytest.mark.parametrize("text,message", [
    ("ADD https://example.com/x.tgz /x", "ADD https://example.com/x.tgz: kago build does not "
                                         "fetch from the network"),
    ("ADD --checksum=sha256:0 a /b", "ADD --checksum is for URLs"),
    ("ADD --from=x a /b", "ADD --from: unknown flag"),
    ("COPY a", "COPY needs a source and a destination"),
    ("COPY --chmod=rwx a /b", "--chmod=rwx: use an octal mode"),
    ("RUN --mount=type=cache,target=/x true", "RUN --mount is not supported"),
    ("ENV --x=1 A=1", "ENV --x: unknown flag"),
    ("EXPOSE http", "EXPOSE http: use PORT"),
    ("EXPOSE 70000", "port 70000 is out of range"),
    ("STOPSIGNAL SIGNOPE", "STOPSIGNAL SIGNOPE: not a signal"),
    ("SHELL /bin/sh -c", "SHELL needs the JSON form"),
    ("HEALTHCHECK --interval=soon CMD x", "--interval=soon: not a duration"),
    ("HEALTHCHECK echo", "HEALTHCHECK needs CMD COMMAND or NONE"),
    ("WORKDIR ${NOPE:?set it}", "NOPE: set it"),
    ("USER", "USER needs one user"),
    ("COPY --from build a b", "COPY --from needs a value: --from=VALUE"),
    ("ARG 1x", "ARG '1x': not a valid name"),
])
def test_instruction_errors_name_the_line(text, message):
    with pytest.raises(BuildError) as err:
        _run("ENV OK=1\n" + text)
    assert str(err.value).startswith("Containerfile:3: ")
    assert message in str(err.value)


# --- .dockerignore --------------------------------------------------------------------------

@pytest.mark.parametrize("rules,path,ignored", [
    ("*.log", "a.log", True), ("*.log", "dir/a.log", False), ("**/*.log", "dir/a.log", True),
    ("**/*.log", "a.log", True), ("build", "build/x/y", True), ("/build", "build", True),
    ("*.md\n!README.md", "README.md", False), ("*.md\n!README.md", "x.md", True),
    ("!keep\n*", "keep", True), ("# c\n\nsecret?", "secret1", True), ("dir/*", "dir", False),
    ("dir/*", "dir/x", True), ("a/**/b", "a/b", True), ("a/**/b", "a/x/y/b", True),
    ("[ab].txt", "b.txt", True), ("[!ab].txt", "b.txt", False), ("x", "xy", False),
])
def test_dockerignore(rules, path, ignored):
    assert context.Ignore(rules).ignored(path) is ignored
