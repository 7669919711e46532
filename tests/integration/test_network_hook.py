"""kago.network as OCI hooks (python -m kago.cli.nethook): createRuntime attaches the netns kago-oci made, poststop detaches;
the spec's annotations choose ports and addresses. A refused attach fails the create and
leaves nothing (the oci fixture checks the runtime's side, leftovers() the network's)."""

import io
import json
import sys

from kago.cli.nethook import main
from kago.network.hook import attach_args
from kago.network.testing import netenv_fixture, run  # noqa: F401 (fixture)
from test_lifecycle import detached


def hook_options(env, verb):
    return ["--state-dir", env.state_dir,
            "--nft-table", env.table, "--netns-prefix", env.nets.netns_prefix,
            "--veth-prefix", env.nets.veth_prefix, "--default-network", "kt",
            "--default-bridge", env.bridge(0), "--default-subnet", env.subnet(0),
            "--no-outbound", "--dns-upstream", "", verb]


def with_hooks(env, annotations):
    def mutate(cfg):
        argv = [sys.executable, "-m", "kago.cli.nethook"]
        cfg["hooks"] = {kind: [{"path": sys.executable, "args": argv + hook_options(env, verb)}]
                        for kind, verb in (("createRuntime", "attach"), ("poststop", "detach"))}
        cfg["annotations"] = annotations
    return mutate


def test_hooks_attach_and_detach_a_runtime_made_netns(oci, make_bundle, netenv):
    bundle = make_bundle(["sh", "-c", "ls /sys/class/net; ip -o -4 addr show eth0"],
                         mutate=with_hooks(netenv, {"org.kago.network.ports": "18498:80",
                                                    "org.kago.network.hostname": "hooked"}),
                         process__terminal=False)
    cid = oci.new_id("hook")
    proc = oci("run", "--bundle", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["eth0", "lo"]
    assert f" {netenv.subnet(0).rsplit('.', 1)[0]}." in proc.stdout
    # run deleted the container: poststop detached it
    assert netenv.nets.attachments() == []
    assert "18498" not in run(["nft", "list", "table", "inet", netenv.table]).stdout


def test_the_networks_resolver_names_a_hooked_container(oci, make_bundle, netenv):
    gateway = netenv.subnet(0).rsplit(".", 1)[0] + ".1"
    bundle = make_bundle(["sh", "-c", f"ip -o -4 addr show eth0; nslookup HOOKED {gateway}"],
                         mutate=with_hooks(netenv, {"org.kago.network.hostname": "hooked"}),
                         process__terminal=False)
    cid = oci.new_id("hook")
    proc = oci("run", "--bundle", bundle.path, cid)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    own = proc.stdout.split(" inet ", 1)[1].split("/", 1)[0]
    assert f"Address: {own}" in proc.stdout.split("\n\n", 1)[1], proc.stdout
    assert not [x for x in netenv.leftovers() if "resolver" in x]   # poststop stopped it


def test_a_refused_hook_attach_fails_create_and_leaves_nothing(oci, make_bundle, netenv):
    taken = netenv.nets.attach("first")
    bundle = make_bundle(["true"], mutate=with_hooks(netenv, {"org.kago.network.ip":
                                                              taken.ipv4}),
                         process__terminal=False)
    cid = oci.new_id("hook")
    proc = detached(oci, "create", "--bundle", bundle.path, cid)
    assert proc.returncode == 1
    assert f"ip {taken.ipv4} is already used by container first" in proc.stderr
    assert [a.cid for a in netenv.nets.attachments()] == ["first"]
    assert not [x for x in netenv.leftovers() if cid in x]


def test_hook_reads_annotations_and_reports_one_line(netenv, capsys):
    state = {"id": "x", "annotations": {"org.kago.network.ports": "1:2, 3:4/udp",
                                        "org.kago.network.aliases": "a,b"}}
    args = attach_args(state)
    assert args["ports"] == ["1:2", "3:4/udp"] and args["aliases"] == ["a", "b"]
    assert args["mode"] == "bridge" and args["network"] is None
    assert main(hook_options(netenv, "attach"), io.StringIO(json.dumps({"pid": 1}))) == 1
    assert capsys.readouterr().err == "kago.cli.nethook attach: missing 'id'\n"
    assert main(hook_options(netenv, "detach"), io.StringIO("{not json")) == 1
    assert "kago.cli.nethook detach: " in capsys.readouterr().err
    assert main(hook_options(netenv, "detach"), io.StringIO(json.dumps({"id": "x"}))) == 0
