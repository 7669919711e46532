"""Every ``kago`` verb's --help describes each of its flags (docker's --help does), and the
verbs with subcommands (network, system, container, image) answer --help too."""

import re

import pytest

from kago.cli.main import VERBS, main

SUBCOMMANDS = ["network ls", "network create", "network rm", "network inspect",
               "system df", "system prune", "system info", "system supervisor", "container ls", "container prune",
               "image ls", "image prune", "image history", "volume create", "volume ls",
               "volume inspect", "volume rm", "volume prune"]
WHOLE = ["network", "system", "container", "image", "volume"]


def undescribed(text):
    """The flags in argparse's "options:" section that have no description."""
    missing = []
    lines = text.splitlines()
    section = None
    for i, line in enumerate(lines):
        if line and not line.startswith(" "):
            section = line.rstrip(":")
            continue
        if section != "options" or not re.match(r"^  -", line):
            continue
        if re.search(r"\S  +\S", line.strip()):
            continue  # the description follows on the same line
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if re.match(r"^ {6,}\S", following):
            continue  # on the next line, indented
        missing.append(line.strip())
    return [m for m in missing if not m.startswith("-h, --help")]


@pytest.mark.parametrize("verb", sorted(v for v in VERBS if v not in WHOLE) + SUBCOMMANDS)
def test_every_flag_is_described(verb, capsys):
    with pytest.raises(SystemExit) as done:
        main(verb.split() + ["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "usage:" in text
    assert undescribed(text) == [], text


@pytest.mark.parametrize("verb", WHOLE)
def test_verbs_with_subcommands_answer_help(verb, capsys):
    assert main([verb, "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: kago " + verb)


def _forms():
    from kago.cli.groups import CONTAINER, IMAGE
    return [f"{group} {verb}" for group, table in (("container", CONTAINER), ("image", IMAGE))
            for verb, target in table.items() if not isinstance(target, str) or target in VERBS]


@pytest.mark.parametrize("form", _forms())
def test_every_container_and_image_form_reaches_a_verb(form, capsys):
    with pytest.raises(SystemExit) as done:
        main(form.split() + ["--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("usage: kago ")


@pytest.mark.parametrize("rest, asks", [
    (["--help"], True),
    (["-h"], True),
    (["--rm", "-h"], True),
    (["--rm", "busybox", "echo", "-h"], False),  # the container's command's own flag
    (["busybox", "--help"], False),
    (["--", "-h"], False),
    ([], False),
])
def test_a_help_flag_counts_only_before_the_first_argument(rest, asks):
    from kago.cli.main import _asks_help
    assert _asks_help(rest) is asks
