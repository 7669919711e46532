"""kago.manager.compose without the kernel: interpolation, -f merges, the translation of a
service into a Definition, and errors that name file:line and the field."""

import textwrap

import pytest

from kago.manager.compose import interpolate as I
from kago.manager.compose.errors import ComposeError
from kago.manager.compose.load import load, normalize_name
from kago.manager.compose.translate import translate
from kago.manager.definition import Mount, Port


# --- interpolation ------------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("${A}", "1"), ("$A", "1"), ("x${A}y", "x1y"), ("$$A", "$A"), ("$${A}", "${A}"),
    ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"), ("${EMPTY-d}", ""), ("${UNSET-d}", "d"),
    ("${A:+yes}", "yes"), ("${UNSET:+yes}", ""), ("${EMPTY+yes}", "yes"),
    ("${UNSET:-${A}}", "1"), ("${UNSET:-a-${A}-b}", "a-1-b"), ("$A.$A", "1.1"),
    ("no dollar", "no dollar"),
])
def test_substitute(text, expected):
    assert I.substitute(text, {"A": "1", "EMPTY": ""}) == expected


def test_an_unset_variable_is_blank_with_a_warning():
    warnings = []
    assert I.substitute("[${NOPE}]", {}, "f", warnings.append) == "[]"
    assert warnings == ["the NOPE variable is not set: defaulting to a blank string"]


@pytest.mark.parametrize("text,message", [
    ("${NEED?set it}", "required variable NEED is missing a value: set it"),
    ("${NEED:?}", "required variable NEED is missing a value: NEED is not set"),
    ("${A", "no closing }"), ("${1A}", "invalid interpolation format"),
    ("a $ b", "use $$ for a literal $"),
])
def test_substitute_errors(text, message):
    with pytest.raises(ComposeError, match=message.replace("$", r"\$")):
        I.substitute(text, {}, "services.web.image")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def project(tmp_path, text, *more, env=None, name=None):
    files = [write(tmp_path, "compose.yaml", text)]
    for i, extra in enumerate(more):
        files.append(write(tmp_path, f"override{i}.yaml", extra))
    return load(files, name, environ=env or {}, cwd=str(tmp_path))


def error(tmp_path, text, *more, env=None):
    with pytest.raises(ComposeError) as e:
        translate(project(tmp_path, text, *more, env=env))
    return str(e.value).replace(str(tmp_path) + "/", "")


def test_dotenv_beside_the_file_and_the_environment_over_it(tmp_path):
    write(tmp_path, ".env", "# comment\nTAG=1.0\nexport PORT='8080'\nQ=\"a b\"\n")
    p = project(tmp_path, """\
        services:
          web:
            image: "busybox:${TAG}"
            ports: ["${PORT}:80"]
            environment: {Q: "${Q}", R: "${R:-r}"}
        """, env={"TAG": "2.0"})
    web = p.services["web"]
    assert web["image"] == "busybox:2.0" and web["ports"] == ["8080:80"]
    assert web["environment"] == {"Q": "a b", "R": "r"}


def test_a_missing_required_variable_names_its_line(tmp_path):
    assert error(tmp_path, """\
        services:
          web:
            image: "busybox:${TAG?give a tag}"
        """) == "compose.yaml:3: services.web.image: required variable TAG is missing a " \
                "value: give a tag"


# --- project names ------------------------------------------------------------------------------

@pytest.mark.parametrize("name,expected", [
    ("My App", "myapp"), ("shop.v2", "shopv2"), ("_x-y_", "x-y_"), ("web_1", "web_1"),
    ("ABC", "abc"),
])
def test_project_names_are_normalised_as_compose_does(name, expected):
    assert normalize_name(name) == expected


def test_project_name_precedence(tmp_path):
    text = "name: from-file\nservices:\n  a:\n    image: busybox\n"
    assert project(tmp_path, text).name == "from-file"
    assert project(tmp_path, text, env={"COMPOSE_PROJECT_NAME": "Env"}).name == "env"
    assert project(tmp_path, text, env={"COMPOSE_PROJECT_NAME": "Env"}, name="Flag").name \
        == "flag"
    assert project(tmp_path, "services:\n  a:\n    image: busybox\n").name \
        == normalize_name(tmp_path.name)


# --- merges -------------------------------------------------------------------------------------

def test_later_files_override_by_composes_rules(tmp_path):
    p = project(tmp_path, """\
        services:
          web:
            image: busybox
            command: ["a"]
            ports: ["8080:80"]
            environment: [A=1, B=2]
            labels: {x: "1"}
            volumes: ["data:/data", "/src:/src"]
            depends_on: [db]
            cap_add: [NET_ADMIN]
          db:
            image: busybox
        volumes:
          data:
        """, """\
        services:
          web:
            image: busybox:2
            command: ["b", "c"]
            ports: ["8080:80", "9090:90"]
            environment: {B: "3", C: "4"}
            labels: [y=2]
            volumes: ["/other:/data:ro"]
            depends_on: {db: {condition: service_completed_successfully}}
            cap_add: [SYS_TIME]
        """)
    web = p.services["web"]
    assert web["image"] == "busybox:2" and web["command"] == ["b", "c"]
    assert web["ports"] == ["8080:80", "9090:90"]
    assert web["environment"] == {"A": "1", "B": "3", "C": "4"}
    assert web["labels"] == {"x": "1", "y": "2"}
    assert web["volumes"] == ["/other:/data:ro", "/src:/src"]
    assert web["depends_on"] == {"db": {"condition": "service_completed_successfully"}}
    assert web["cap_add"] == ["NET_ADMIN", "SYS_TIME"]


def test_an_error_in_an_override_names_the_override_file_and_line(tmp_path):
    message = error(tmp_path, """\
        services:
          web:
            image: busybox
            ports: ["8080:80"]
        """, """\
        services:
          web:
            ports:
              - "9090:90"
              - "80:x"
        """)
    assert message == 'override0.yaml:5: services.web.ports[2]: "80:x" is not a port: ' \
                      "container port 'x' is not a port (1-65535)"


# --- translation --------------------------------------------------------------------------------

def test_a_service_becomes_a_definition(tmp_path):
    write(tmp_path, "web.env", "FROM_FILE=1\nA=from-file\n")
    plan = translate(project(tmp_path, """\
        services:
          web:
            image: busybox
            command: httpd -f -p "80"
            entrypoint: ""
            environment: [A=1, PASSED]
            env_file: web.env
            ports:
              - "127.0.0.1:8080:80"
              - "9000-9001:90-91/udp"
              - {target: 443, published: 8443, host_ip: 127.0.0.1}
            volumes:
              - data:/data:ro
              - ./site:/site
              - {type: tmpfs, target: /cache, tmpfs: {size: 1m}}
              - {type: bind, source: /etc/hosts, target: /h, read_only: true}
            tmpfs: /run
            restart: on-failure:3
            user: "33"
            working_dir: /www
            hostname: w
            labels: [tier=front]
            deploy: {resources: {limits: {cpus: "0.5", memory: 64M, pids: 50}}}
            stop_signal: SIGINT
            stop_grace_period: 1m30s
            read_only: true
            cap_add: [NET_ADMIN]
            cap_drop: [ALL]
            sysctls: {net.core.somaxconn: 1024}
            ulimits: {nofile: {soft: 100, hard: 200}, nproc: 50}
        volumes:
          data:
        """, env={"PASSED": "yes"}, name="shop"))
    d = plan.services["web"].definition
    assert d.name == "shop-web-1" and d.image == "busybox"
    assert d.command == ("httpd", "-f", "-p", "80") and d.entrypoint == ()
    assert d.env == ("FROM_FILE=1", "A=1", "PASSED=yes")
    assert d.ports == (Port(8080, 80, "tcp", "127.0.0.1"), Port(9000, 90, "udp"),
                       Port(9001, 91, "udp"), Port(8443, 443, "tcp", "127.0.0.1"))
    assert d.mounts == (
        Mount("volume", "/data", "shop_data", True),
        Mount("bind", "/site", str(tmp_path / "site")),
        Mount("tmpfs", "/cache", "tmpfs", False, ("nosuid", "nodev", "mode=1777",
                                                  f"size={1 << 20}")),
        Mount("bind", "/h", "/etc/hosts", True),
        Mount("tmpfs", "/run", "tmpfs", False, ("nosuid", "nodev", "mode=1777")))
    assert plan.services["web"].make_dirs == (str(tmp_path / "site"),)
    assert (d.network.name, d.network.aliases) == ("shop_default", ("web",))
    assert d.restart.text == "on-failure:3" and d.user == "33" and d.workdir == "/www"
    assert d.hostname == "w" and d.label_dict["tier"] == "front"
    assert (d.limits.cpus, d.limits.memory, d.limits.pids) == (0.5, 64 << 20, 50)
    assert d.stop_signal == "SIGINT" and d.stop_timeout == 90 and d.read_only
    assert d.capabilities.add == ("CAP_NET_ADMIN",) and d.capabilities.drop == ("ALL",)
    assert d.sysctl_dict == {"net.core.somaxconn": "1024"}
    assert {(r.name, r.soft, r.hard) for r in d.rlimits} == {("nofile", 100, 200),
                                                             ("nproc", 50, 50)}
    labels = d.label_dict
    assert labels["com.docker.compose.project"] == "shop"
    assert labels["com.docker.compose.service"] == "web"
    assert labels["com.docker.compose.container-number"] == "1"
    assert len(labels["com.docker.compose.config-hash"]) == 64


def test_depends_on_orders_the_services_and_selection_takes_dependencies(tmp_path):
    plan = translate(project(tmp_path, """\
        services:
          worker:
            image: busybox
            depends_on: [web, db]
          web:
            image: busybox
            depends_on:
              db: {condition: service_started}
          db:
            image: busybox
          other:
            image: busybox
        """))
    assert plan.order == ["db", "web", "worker", "other"]
    assert plan.selected(["web"]) == ["db", "web"]
    assert plan.services["worker"].depends_on == (("web", "service_started"),
                                                  ("db", "service_started"))


def test_networks_declared_aliases_network_mode_and_build(tmp_path):
    plan = translate(project(tmp_path, """\
        services:
          web:
            build: {context: ./app, dockerfile: Web.Dockerfile, args: [V=1], target: run}
            networks:
              front: {aliases: [www], ipv4_address: 10.9.0.5}
          side:
            image: busybox
            network_mode: service:web
          h:
            image: busybox
            network_mode: host
        networks:
          front:
            driver_opts: {com.docker.network.bridge.name: br-front}
            ipam: {config: [{subnet: 10.9.0.0/24}]}
        """, name="p"))
    web = plan.services["web"]
    assert web.definition.image == "p-web"
    assert (web.build.context, web.build.dockerfile, web.build.args, web.build.target) == (
        str(tmp_path / "app"), "Web.Dockerfile", (("V", "1"),), "run")
    n = web.definition.network
    assert (n.name, n.ip, n.aliases) == ("p_front", "10.9.0.5", ("web", "www"))
    front = plan.networks["front"]
    assert (front.name, front.bridge, front.subnet) == ("p_front", "br-front", "10.9.0.0/24")
    side = plan.services["side"]
    assert side.definition.network.text == "container:p-web-1"
    assert side.depends_on == (("web", "service_started"),)
    assert plan.services["h"].definition.network.mode == "host"
    assert [n.name for n in plan.used_networks(plan.order)] == ["p_front"]


# --- errors name file:line and the field --------------------------------------------------------

@pytest.mark.parametrize("service,expected", [
    ('ports: ["80"]', 'compose.yaml:4: services.web.ports[0]: "80": kago publishes a port '
                      "only with a host port (HOST:CONTAINER)"),
    ("volumes: [nodata:/d]", "compose.yaml:4: services.web.volumes[0]: service \"web\" "
                             "refers to undefined volume nodata (declare it under the "
                             "top-level volumes:)"),
    ("volumes: [/anon]", 'compose.yaml:4: services.web.volumes[0]: "/anon": anonymous '
                         "volumes are not supported (name one: NAME:/anon, declared under "
                         "volumes:)"),
    ("restart: sometimes", 'compose.yaml:4: services.web.restart: invalid restart policy '
                           '"sometimes": use no, on-failure[:N], always or unless-stopped'),
    ("deploy: {resources: {limits: {memory: lots}}}",
     'compose.yaml:4: services.web.deploy.resources.limits.memory: invalid size "lots": '
     "use a number with b, k, m or g"),
    ("stop_grace_period: soon", 'compose.yaml:4: services.web.stop_grace_period: "soon" is '
                                "not a duration (10s, 1m30s, 500ms)"),
    ("pid: host", "compose.yaml:4: services.web.pid: not supported by kago "
                  "compose (docs/compose.md lists the keys)"),
    ("networks: [nowhere]", "compose.yaml:4: services.web.networks.nowhere: service \"web\" "
                            "refers to undefined network nowhere (declare it under the "
                            "top-level networks:)"),
    ("cap_add: [NOT_A_CAP]", 'compose.yaml:4: services.web.cap_add: unknown capability '
                             '"NOT_A_CAP"'),
])
def test_error_lines(tmp_path, service, expected):
    text = "services:\n  web:\n    image: busybox\n    " + service + \
        "\nnetworks:\n  a:\n  b:\n"
    assert error(tmp_path, text) == expected


def test_a_dependency_cycle_is_named(tmp_path):
    assert error(tmp_path, """\
        services:
          a: {image: busybox, depends_on: [b]}
          b: {image: busybox, depends_on: [a]}
        """) == "compose.yaml:2: services.a.depends_on: dependency cycle: a -> b -> a"


def test_yaml_errors_and_the_top_level(tmp_path):
    assert error(tmp_path, "services:\n  web:\n    image: [\n").startswith(
        "compose.yaml:4: invalid YAML")
    assert error(tmp_path, "services: {}\n") == "compose.yaml:1: services: a compose file " \
                                                "needs services: a mapping of at least one " \
                                                "service"
    assert error(tmp_path, "services:\n  a: {image: busybox}\nsecrets: {}\n") == \
        "compose.yaml:3: secrets: not supported by kago compose"


def test_service_healthy_without_healthchecks_in_kago_is_refused_clearly(tmp_path):
    from dataclasses import fields

    from kago.manager.definition import Definition
    if any(f.name == "healthcheck" for f in fields(Definition)):
        pytest.skip("this kago runs healthchecks")
    assert error(tmp_path, """\
        services:
          db:
            image: busybox
            healthcheck: {test: ["CMD", "true"]}
          web:
            image: busybox
            depends_on:
              db:
                condition: service_healthy
        """) == ("compose.yaml:9: services.web.depends_on.db.condition: service_healthy "
                 "needs healthchecks, which this kago does not run yet: use service_started")


def test_only_true_and_false_are_booleans_as_in_compose(tmp_path):
    p = project(tmp_path, """\
        services:
          web:
            image: busybox
            restart: no
            read_only: true
            environment: {A: yes, B: off, C: on}
        """)
    web = p.services["web"]
    assert web["restart"] == "no" and web["read_only"] is True
    assert web["environment"] == {"A": "yes", "B": "off", "C": "on"}
    assert translate(p).services["web"].definition.restart.name == "no"


def has_field(name):
    from dataclasses import fields

    from kago.manager.definition import Definition
    return any(f.name == name for f in fields(Definition))


def test_init_is_the_definitions_or_refused(tmp_path):
    text = "services:\n  web:\n    image: busybox\n    init: true\n"
    if not has_field("init"):
        assert error(tmp_path, text) == (
            "compose.yaml:4: services.web.init: not supported yet: kago has no init process "
            "to run as PID 1 (run one from the image, e.g. command: [tini, --, ...])")
    else:
        assert translate(project(tmp_path, text)).services["web"].definition.init is True


def test_a_healthcheck_becomes_the_definitions(tmp_path):
    if not has_field("healthcheck"):
        pytest.skip("this kago has no healthchecks")
    plan = translate(project(tmp_path, """\
        services:
          db:
            image: busybox
            healthcheck:
              test: pg_isready
              interval: 1m30s
              timeout: 500ms
              retries: 5
              start_period: 2s
          off:
            image: busybox
            healthcheck: {disable: true}
          web:
            image: busybox
            depends_on:
              db: {condition: service_healthy}
        """))
    hc = plan.services["db"].definition.healthcheck
    assert hc.test == ("CMD-SHELL", "pg_isready")
    assert (hc.interval, hc.timeout, hc.retries, hc.start_period) == (
        90 * 10**9, 500 * 10**6, 5, 2 * 10**9)
    assert plan.services["off"].definition.healthcheck.test == ("NONE",)
    assert plan.services["web"].depends_on == (("db", "service_healthy"),)
    assert error(tmp_path, """\
        services:
          db:
            image: busybox
            healthcheck: {test: "true", interval: soon}
        """) == ('compose.yaml:4: services.db.healthcheck.interval: "soon" is not a duration '
                 "(10s, 1m30s, 500ms)")


# --- YAML with lines, env files -----------------------------------------------------------------

def test_yaml_keeps_the_line_of_every_value_through_anchors_and_merge_keys():
    from kago.manager.compose.yamlfile import read
    doc, lines = read("c.yaml", textwrap.dedent("""\
        x-base: &base
          image: busybox
          restart: always
        services:
          web:
            <<: *base
            ports:
              - "80:80"
        """))
    assert doc["services"]["web"] == {"image": "busybox", "restart": "always",
                                      "ports": ["80:80"]}
    assert lines[("services", "web", "ports", 0)] == ("c.yaml", 8)
    assert lines[("services", "web", "image")] == ("c.yaml", 2)  # where the anchor wrote it


def test_env_files(tmp_path):
    from kago.manager.compose.yamlfile import read_env_file
    path = write(tmp_path, "x.env", """\
        # a comment
        A=1
        export B=two words
        C="quoted # not a comment\\n"
        D='single'
        E=value # a comment
        F
        """)
    assert read_env_file(path) == {"A": "1", "B": "two words", "C": "quoted # not a comment\n",
                                   "D": "single", "E": "value", "F": ""}
    bad = write(tmp_path, "bad.env", "A=1\nBAD KEY=2\n")
    with pytest.raises(ComposeError, match=r"bad.env:2: invalid line 'BAD KEY=2'"):
        read_env_file(bad, "bad.env")


def test_more_networks_than_one_are_connected_after_the_first(tmp_path):
    plan = translate(project(tmp_path, """\
        services:
          web:
            image: busybox
            networks:
              front: {aliases: [www]}
              back: {ipv4_address: 10.9.1.5}
        networks:
          front:
          back:
        """, name="p"))
    web = plan.services["web"]
    assert web.definition.network.name == "p_front"
    assert web.definition.network.aliases == ("web", "www")
    assert web.more_networks == (("p_back", "10.9.1.5", ("web",)),)
    assert [n.name for n in plan.used_networks(["web"])] == ["p_front", "p_back"]


def test_the_docker_run_keys_reach_the_definition(tmp_path):
    """privileged, devices, dns*, extra_hosts, shm_size, group_add and expose are kago run's
    flags by their compose names."""
    plan = translate(project(tmp_path, """\
        services:
          web:
            image: busybox
            privileged: true
            devices: ["/dev/fuse"]
            dns: 10.0.0.53
            dns_search: [example.test]
            dns_opt: [ndots:2]
            extra_hosts: {db: 10.0.0.5}
            shm_size: 128m
            group_add: ["1001"]
            expose: ["8000"]
        """))
    d = plan.services["web"].definition
    assert d.privileged and [x.host for x in d.devices] == ["/dev/fuse"]
    assert d.dns.servers == ("10.0.0.53",) and d.dns.search == ("example.test",)
    assert d.dns.options == ("ndots:2",)
    assert [(h.name, h.ip) for h in d.extra_hosts] == [("db", "10.0.0.5")]
    assert d.shm_size == 128 << 20 and d.group_add == ("1001",)
    assert d.expose == ((8000, "tcp"),)


def test_a_bad_docker_run_key_names_its_line(tmp_path):
    message = error(tmp_path, """\
        services:
          web:
            image: busybox
            extra_hosts: ["nocolon"]
        """)
    assert message.startswith("compose.yaml:4: services.web.extra_hosts"), message
