"""docker commit/import --change: Dockerfile instructions on an image config (pure), and the
container inspect's effective Config."""

import pytest

from kago.manager.errors import ManagerError
from kago.manager.images import apply_changes
from kago.manager.definition import Definition
from kago.manager.views import effective_config

BASE = {"Env": ["PATH=/bin", "A=1"], "Labels": {"a": "1"}, "ExposedPorts": {"80/tcp": {}},
        "Cmd": ["sh"]}


def test_changes_add_to_the_base_or_replace_it_as_docker_does():
    out = apply_changes(BASE, ["ENV A=2 B=\"x y\"", "ENV C 3 4", "LABEL b=2 \"c=d e\"",
                               "LABEL legacy value here", "EXPOSE 8000 53/udp",
                               "VOLUME /data /logs", "ONBUILD RUN true", "USER nobody",
                               "WORKDIR /srv", "STOPSIGNAL SIGINT", "CMD echo hi",
                               "entrypoint [\"/init\"]"])
    assert out["Env"] == ["PATH=/bin", "A=2", "B=x y", "C=3 4"]
    assert out["Labels"] == {"a": "1", "b": "2", "c": "d e", "legacy": "value here"}
    assert out["ExposedPorts"] == {"80/tcp": {}, "8000/tcp": {}, "53/udp": {}}
    assert out["Volumes"] == {"/data": {}, "/logs": {}}
    assert out["OnBuild"] == ["RUN true"]
    assert (out["User"], out["WorkingDir"], out["StopSignal"]) == ("nobody", "/srv", "SIGINT")
    assert out["Cmd"] == ["/bin/sh", "-c", "echo hi"] and out["Entrypoint"] == ["/init"]
    assert BASE["Env"] == ["PATH=/bin", "A=1"]  # the base is not changed


@pytest.mark.parametrize("change, message", [
    ("RUN true", "kago knows CMD, ENTRYPOINT"), ("EXPOSE 0", "'0' is not a port"),
    ("EXPOSE 70000", "is not a port"), ("EXPOSE 80/xtp", "is not a port"),
    ("CMD [1, 2]", "a JSON list of strings"), ("LABEL a=1 =2", "'=2' is not KEY=VALUE"),
    ("USER", "USER needs a value"), ("ENV A=\"open", "no closing quotation")])
def test_bad_changes_are_one_line(change, message):
    with pytest.raises(ManagerError, match=message) as err:
        apply_changes({}, [change])
    assert "\n" not in str(err.value)


def test_inspect_shows_what_the_container_runs_with():
    image = {"Cmd": ["httpd"], "Entrypoint": ["/init"], "User": "www", "WorkingDir": "/w",
             "Labels": {"a": "1"}, "ExposedPorts": {"80/tcp": {}}}
    plain = Definition(image="i")
    out = effective_config(plain, image)
    assert (out["Cmd"], out["Entrypoint"], out["User"], out["WorkingDir"]) == \
        (["httpd"], ["/init"], "www", "/w")
    assert out["ExposedPorts"] == {"80/tcp": {}}
    out = effective_config(plain.but(command=("id",), user="0", labels=(("b", "2"),)), image)
    assert (out["Cmd"], out["User"], out["Labels"]) == (["id"], "0", {"a": "1", "b": "2"})
    out = effective_config(plain.but(entrypoint=("/bin/sh",)), image)  # drops the image's Cmd
    assert (out["Entrypoint"], out["Cmd"]) == (["/bin/sh"], None)
    assert effective_config(plain, {})["Cmd"] is None
    assert effective_config(plain, {})["User"] == ""
