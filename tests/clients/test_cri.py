"""containerd's CRI plugin running pods with kago-oci as a RuntimeClass handler, driven over
gRPC the way the kubelet drives it.

A private containerd (tests/clients/containerd_fixture.py) is configured the way a cluster
node would be to offer kago::

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kago]
      runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.kago.options]
      BinaryName = "/path/to/kago-oci"

and the test speaks runtime.v1 to its socket as the kubelet does: RunPodSandbox with
``runtime_handler: kago`` (what a pod's ``runtimeClassName`` becomes), CreateContainer,
StartContainer, ExecSync, ContainerStats, StopContainer, RemoveContainer, StopPodSandbox,
RemovePodSandbox, UpdateContainerResources. The messages are the subset in cri_subset.proto
(the CRI's own field numbers), compiled with grpcio-tools into the fixture's temporary
directory: no generated code to keep in step with the protobuf runtime, and the .proto stays
readable. The node's default handler is runc, the reference that the parity tests compare
kago-oci with.

What this does not cover (docs/kubernetes.md): no kubelet, no real pod network (pods use the
node's network, or their own with an eth0 that reaches nothing), no image pulls (the images
are imported from OCI archives written here), no streaming Exec/Attach/PortForward.
"""

import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from conftest import KAGO_OCI, wait_for
from containerd_fixture import (DISABLED, Containerd, argv_of, mount_tmpfs, unmount,
                                write_oci_archive)

grpc = pytest.importorskip("grpc")
protoc = pytest.importorskip("grpc_tools.protoc")

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root and the real kernel"),
    pytest.mark.skipif(shutil.which("containerd") is None
                       or shutil.which("containerd-shim-runc-v2") is None,
                       reason="containerd is not installed: apt-get install containerd"),
]

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE = "docker.io/kago/busybox:test"
PAUSE = "docker.io/kago/pause:test"
CRI = 'plugins."io.containerd.grpc.v1.cri"'
CG = "/sys/fs/cgroup"
LOOPBACK = "/usr/lib/cni/loopback"  # Debian's containernetworking-plugins
# containerd wants an address on the pod's eth0: this plugin gives the pod's network
# namespace (containerd's, never the host's) an eth0 with a TEST-NET-1 address: a bridge
# without ports (the kernel here has no dummy driver), so the pod has a network of its own
# that reaches nothing
DUMMY_PLUGIN = r"""#!/bin/sh
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"0.4.0","supportedVersions":["0.3.1","0.4.0"]}' ;;
ADD)
    nsenter --net="$CNI_NETNS" ip link add "$CNI_IFNAME" type bridge || exit 1
    nsenter --net="$CNI_NETNS" ip addr add 192.0.2.2/24 dev "$CNI_IFNAME" || exit 1
    nsenter --net="$CNI_NETNS" ip link set "$CNI_IFNAME" up || exit 1
    printf '{"cniVersion":"0.4.0","interfaces":[{"name":"%s","sandbox":"%s"}],' \
        "$CNI_IFNAME" "$CNI_NETNS"
    printf '"ips":[{"version":"4","address":"192.0.2.2/24","interface":0}]}\n' ;;
DEL) [ -n "$CNI_NETNS" ] && nsenter --net="$CNI_NETNS" ip link del "$CNI_IFNAME" 2>/dev/null
    exit 0 ;;
*) exit 0 ;;
esac
"""
POD_NETWORK = {"cniVersion": "0.4.0", "name": "kago-pods",
               "plugins": [{"type": "kago-dummy"}]}
# what the kubelet puts in every unprivileged container's security context (its
# securitycontext defaults, docker's list): containerd 1.6 adds none of its own
KUBELET_MASKED_PATHS = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                        "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
KUBELET_READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger"]
K8S = "k8s.io"  # the containerd namespace the CRI plugin keeps its images and containers in


def compile_proto(out):
    """cri_subset.proto -> cri_subset_pb2(_grpc) modules, compiled into ``out``."""
    code = protoc.main(["grpc_tools.protoc", f"-I{HERE}", f"--python_out={out}",
                        f"--grpc_python_out={out}", "cri_subset.proto"])
    assert code == 0, "grpc_tools.protoc could not compile cri_subset.proto"
    sys.path.insert(0, out)
    try:
        return (importlib.import_module("cri_subset_pb2"),
                importlib.import_module("cri_subset_pb2_grpc"))
    finally:
        sys.path.remove(out)


class Cri:
    """The runtime and image services on the private containerd's socket."""

    def __init__(self, daemon, pb, pb_grpc, cgroup_parent, log_dir):
        self.daemon = daemon
        self.pb = pb
        self.cgroup_parent = cgroup_parent
        self.log_dir = log_dir
        self.channel = grpc.insecure_channel(f"unix://{daemon.address}")
        self.runtime = pb_grpc.RuntimeServiceStub(self.channel)
        self.images = pb_grpc.ImageServiceStub(self.channel)

    def __getattr__(self, name):  # cri.RunPodSandbox(req) -> the runtime service's call
        call = getattr(self.runtime, name)
        return lambda req, timeout=30: call(req, timeout=timeout)

    def pod_config(self, name, network="node"):
        """A pod on the node's network (no hostname: the kubelet sets none there, and runc
        refuses one without a UTS namespace of the container's own), or with its own
        network namespace (``network="pod"``: DUMMY_PLUGIN's network) and hostname."""
        pb = self.pb
        if network == "pod":
            return pb.PodSandboxConfig(
                metadata=pb.PodSandboxMetadata(name=name, uid=uuid.uuid4().hex,
                                               namespace="default"),
                hostname=name, log_directory=self.log_dir, labels={"app": name},
                linux=pb.LinuxPodSandboxConfig(
                    cgroup_parent=self.cgroup_parent,
                    security_context=pb.LinuxSandboxSecurityContext(
                        namespace_options=pb.NamespaceOption(network=pb.POD))))
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=uuid.uuid4().hex, namespace="default"),
            log_directory=self.log_dir,
            labels={"app": name},
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=self.cgroup_parent,
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=pb.NamespaceOption(network=pb.NODE))))

    def run_pod(self, name):
        config = self.pod_config(name)
        resp = self.RunPodSandbox(self.pb.RunPodSandboxRequest(config=config,
                                                               runtime_handler="kago"))
        return resp.pod_sandbox_id, config

    def remove_pod(self, pod_id):
        self.StopPodSandbox(self.pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        self.RemovePodSandbox(self.pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))

    def container_config(self, name, args, resources=None, security=None, log_path="",
                         mounts=()):
        """A container config as the kubelet sends it: an unprivileged container gets the
        kubelet's masked and read-only /proc and /sys paths (ProcMount Default)."""
        pb = self.pb
        security = security if security is not None else pb.LinuxContainerSecurityContext()
        if not security.privileged:
            security.masked_paths[:] = KUBELET_MASKED_PATHS
            security.readonly_paths[:] = KUBELET_READONLY_PATHS
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=IMAGE),
            command=list(args[:1]), args=list(args[1:]),
            envs=[pb.KeyValue(key="GREETING", value="hello")], log_path=log_path,
            mounts=list(mounts),
            linux=pb.LinuxContainerConfig(resources=resources, security_context=security))

    def create(self, pod_id, pod_config, config):
        return self.CreateContainer(self.pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config)).container_id

    def status(self, cid):
        return self.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid)).status

    def exec_sync(self, cid, *cmd, timeout=10):
        return self.ExecSync(self.pb.ExecSyncRequest(container_id=cid, cmd=list(cmd),
                                                     timeout=timeout), timeout=timeout + 20)

    def pods(self):
        return list(self.ListPodSandbox(self.pb.ListPodSandboxRequest()).items)

    def containers(self):
        return list(self.ListContainers(self.pb.ListContainersRequest()).containers)

    def kago_record(self, cid):
        """kago-oci's state record for a task (the handler's Root is ours): proof it ran it."""
        path = os.path.join(self.daemon.runc_root, K8S, cid, "state.json")
        with open(path) as f:
            return json.load(f)

    def cgroup_file(self, controller, cid, name):
        with open(f"{CG}/{controller}{self.cgroup_parent}/{cid}/{name}") as f:
            return f.read().strip()


def cri_config(base, sandbox_image):
    return {
        CRI: {"sandbox_image": sandbox_image, "disable_tcp_service": True,
              "stream_server_address": "127.0.0.1", "stream_server_port": "0",
              "enable_selinux": False, "disable_apparmor": True,
              # this host's root lacks CAP_SYS_RESOURCE: no oom_score_adj below containerd's
              "restrict_oom_score_adj": True, "stats_collect_period": 1,
              "netns_mounts_under_state_dir": True},
        f"{CRI}.containerd": {"snapshotter": "overlayfs", "default_runtime_name": "runc"},
        # the node's default stays runc (the reference the parity test compares kago with);
        # pods ask for kago by their RuntimeClass
        f"{CRI}.containerd.runtimes.runc": {"runtime_type": "io.containerd.runc.v2"},
        f"{CRI}.containerd.runtimes.runc.options": {
            "BinaryName": shutil.which("runc") or "runc", "Root": os.path.join(base, "runc-ref")},
        f"{CRI}.containerd.runtimes.kago": {"runtime_type": "io.containerd.runc.v2"},
        f"{CRI}.containerd.runtimes.kago.options": {
            "BinaryName": KAGO_OCI, "Root": os.path.join(base, "runc")},
        # CNI: a private configuration and plugin directory (DUMMY_PLUGIN and Debian's
        # loopback), nothing under /etc/cni or /opt/cni; network namespaces under the
        # private state directory (netns_mounts_under_state_dir), not /var/run/netns
        f"{CRI}.cni": {"bin_dir": os.path.join(base, "cni/bin"),
                       "conf_dir": os.path.join(base, "cni/net.d"), "max_conf_num": 1},
    }


@pytest.fixture(scope="module")
def cri():
    base = tempfile.mkdtemp(prefix="kago-cri-")
    mount_tmpfs(base)
    parent = f"/kago-cri-{uuid.uuid4().hex[:8]}"
    disabled = list(DISABLED)
    d = Containerd(base, extra=cri_config(base, PAUSE), disabled=disabled,
                   cgroup_parents=[parent])
    client = None
    try:
        from kago.testing import busybox
        rootfs = busybox.build_rootfs(os.path.join(base, "image-rootfs"))
        images = [write_oci_archive(os.path.join(base, "busybox.tar"), rootfs, IMAGE, ["sh"]),
                  write_oci_archive(os.path.join(base, "pause.tar"), rootfs, PAUSE,
                                    ["sleep", "2147483647"])]
        os.makedirs(os.path.join(base, "proto"))
        pb, pb_grpc = compile_proto(os.path.join(base, "proto"))
        os.makedirs(os.path.join(base, "logs"))
        # a shared mount for volumes with host-to-container propagation (containerd refuses
        # those on a private mount)
        mount_tmpfs(os.path.join(base, "propagated"), size="16m")
        subprocess.run(["mount", "--make-shared", os.path.join(base, "propagated")], check=True)
        os.makedirs(os.path.join(base, "cni/net.d"))
        os.makedirs(os.path.join(base, "cni/bin"))
        os.symlink(LOOPBACK, os.path.join(base, "cni/bin/loopback"))
        with open(os.path.join(base, "cni/bin/kago-dummy"), "w") as f:
            f.write(DUMMY_PLUGIN)
        os.chmod(os.path.join(base, "cni/bin/kago-dummy"), 0o755)
        with open(os.path.join(base, "cni/net.d/10-kago-pods.conflist"), "w") as f:
            json.dump(POD_NETWORK, f)
        d.start()
        for archive in images:
            d.ctr("images", "import", archive, ns=K8S, check=True)
        client = Cri(d, pb, pb_grpc, parent, os.path.join(base, "logs"))

        def known(ref):
            try:
                return client.images.ImageStatus(
                    pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)), timeout=5).image.id
            except grpc.RpcError:
                return ""
        assert wait_for(lambda: known(PAUSE) and known(IMAGE), timeout=10), d.log()[-3000:]
        yield client
    finally:
        if client is not None:
            try:  # as the kubelet would; stop() below kills what this does not remove
                for pod in client.pods():
                    client.remove_pod(pod.id)
            except grpc.RpcError:
                pass
            client.channel.close()
        left = d.stop()
        unmount(base)
        os.rmdir(base)
    assert not left, f"containerd left things behind: {left}"


@pytest.fixture
def clean(cri):
    """After the test: no pod, container, cgroup, shim or mount of it is left."""
    yield
    for p in cri.pods():
        cri.remove_pod(p.id)
    assert not cri.pods() and not cri.containers()
    cgroups = [d for d in cri.daemon.cgroup_dirs()
               if os.path.basename(d) != cri.cgroup_parent.strip("/")]
    assert not cgroups, f"cgroups left: {cgroups}"
    assert not cri.daemon.shim_pids(), "a shim outlived its pod"
    ours = (cri.daemon.base, os.path.join(cri.daemon.base, "propagated"))
    mounts = [m for m in cri.daemon.mounts() if m not in ours]
    assert not mounts, f"mounts left: {mounts}"


@pytest.fixture
def pod(cri, clean):
    """A running pod sandbox (kago handler, node network), removed by ``clean``."""
    return cri.run_pod(f"pod-{uuid.uuid4().hex[:6]}")


def test_version_and_runtime_ready(cri):
    version = cri.Version(cri.pb.VersionRequest())
    assert version.runtime_name == "containerd" and version.runtime_api_version == "v1"
    conditions = {c.type: c.status for c in cri.Status(cri.pb.StatusRequest()).status.conditions}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}  # DUMMY_PLUGIN's


def test_pod_with_its_own_network_uts_and_ipc_namespaces(cri, clean):
    """A pod off the node's network: kago-oci runs the sandbox in new network, UTS and IPC
    namespaces (the network one made by containerd, joined by path), and each container
    joins the sandbox's."""
    pb = cri.pb
    config = cri.pod_config("web-0", network="pod")
    pod_id = cri.RunPodSandbox(pb.RunPodSandboxRequest(config=config,
                                                       runtime_handler="kago")).pod_sandbox_id
    try:
        sandbox_pid = cri.kago_record(pod_id)["pid"]
        cid = cri.create(pod_id, config, cri.container_config("app", ["sleep", "60"]))
        cri.StartContainer(pb.StartContainerRequest(container_id=cid))
        pid = cri.kago_record(cid)["pid"]
        for ns in ("net", "uts", "ipc"):
            mine = os.readlink(f"/proc/{pid}/ns/{ns}")
            assert mine == os.readlink(f"/proc/{sandbox_pid}/ns/{ns}"), ns
            assert mine != os.readlink(f"/proc/self/ns/{ns}"), ns
        for ns in ("pid", "mnt"):  # PID namespace per container unless the pod shares one
            assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
        res = cri.exec_sync(cid, "sh", "-c", "hostname; cat /etc/hostname; ip -o -4 addr show"
                            " | sed -E 's/^[0-9]+: ([^ ]+) +inet ([^ ]+).*/\\1 \\2/'")
        assert res.exit_code == 0, res
        lines = res.stdout.decode().splitlines()
        assert lines[:2] == ["web-0", "web-0"], lines
        # DUMMY_PLUGIN's address, not the host's (whose interface is also called eth0)
        assert sorted(lines[2:]) == ["eth0 192.0.2.2/24", "lo 127.0.0.1/8"], lines
        cri.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1))
        cri.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    finally:
        cri.remove_pod(pod_id)


def test_sandbox_runs_on_kago(cri, pod):
    pod_id, _ = pod
    status = cri.PodSandboxStatus(cri.pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
    assert status.state == cri.pb.SANDBOX_READY and status.runtime_handler == "kago"
    record = cri.kago_record(pod_id)
    assert "kago" in record and record["status"] == "running"
    procs = cri.cgroup_file("memory", pod_id, "cgroup.procs").split()
    assert str(record["pid"]) in procs
    # `start` returns once the process is released, maybe before its execve is through
    # (runc's too): its argv is the image's command once it is
    assert wait_for(lambda: argv_of(record["pid"]) == ["sleep", "2147483647"]), \
        argv_of(record["pid"])


@pytest.mark.parametrize("handler", ["runc", "kago"])
def test_a_masked_file_is_the_containers_own_dev_null(cri, clean, handler):
    pb = cri.pb
    config = cri.pod_config(f"mask-{handler}")
    pod_id = cri.RunPodSandbox(pb.RunPodSandboxRequest(config=config,
                                                       runtime_handler=handler)).pod_sandbox_id
    try:
        cid = cri.create(pod_id, config, cri.container_config("m", ["sleep", "60"]))
        cri.StartContainer(pb.StartContainerRequest(container_id=cid))
        res = cri.exec_sync(cid, "stat", "-c", "%d %t:%T %n", "/proc/keys", "/dev/null")
        keys, null = res.stdout.decode().splitlines()
        assert keys.split()[1] == null.split()[1] == "1:3"  # both are the null device
        assert keys.split()[0] == null.split()[0], (keys, null)  # on the same filesystem
        cri.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1))
        cri.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    finally:
        cri.remove_pod(pod_id)


def test_container_exec_stats_limits_stop_remove(cri, pod):
    pb = cri.pb
    pod_id, pod_config = pod
    resources = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000, cpu_shares=512,
                                           memory_limit_in_bytes=64 << 20)
    script = ("echo $GREETING from $$; trap 'echo stopping; exit 0' TERM; "
              "while :; do sleep 0.1; done")
    config = cri.container_config("main", ["sh", "-c", script], resources=resources,
                                  log_path="main.log")
    cid = cri.create(pod_id, pod_config, config)
    assert cri.status(cid).state == pb.CONTAINER_CREATED
    cri.StartContainer(pb.StartContainerRequest(container_id=cid))
    assert cri.status(cid).state == pb.CONTAINER_RUNNING
    assert "kago" in cri.kago_record(cid)

    # ExecSync: output and exit code, in the container's namespaces and environment
    res = cri.exec_sync(cid, "sh", "-c", "echo out $GREETING; echo err >&2; exit 3")
    assert (res.exit_code, res.stdout, res.stderr) == (3, b"out hello\n", b"err\n")
    # the pod's PID namespace (NamespaceOption.pid POD): PID 1 is the sandbox's process
    res = cri.exec_sync(cid, "cat", "/proc/1/cmdline")
    assert res.exit_code == 0 and res.stdout == b"sleep\x002147483647\x00", res

    # LinuxContainerResources, as kago-oci wrote them into the container's cgroups
    assert cri.cgroup_file("memory", cid, "memory.limit_in_bytes") == str(64 << 20)
    assert cri.cgroup_file("cpu", cid, "cpu.cfs_quota_us") == "50000"
    assert cri.cgroup_file("cpu", cid, "cpu.cfs_period_us") == "100000"
    assert cri.cgroup_file("cpu", cid, "cpu.shares") == "512"
    inside = cri.exec_sync(cid, "cat", "/proc/self/cgroup").stdout.decode()
    assert f":memory:{cri.cgroup_parent}/{cid}\n" in inside

    # UpdateContainerResources (a resize): containerd hands the new resources to
    # `kago-oci update --resources -`
    cri.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(
            cpu_period=100000, cpu_quota=150000, cpu_shares=256,
            memory_limit_in_bytes=96 << 20)))
    assert cri.cgroup_file("memory", cid, "memory.limit_in_bytes") == str(96 << 20)
    assert cri.cgroup_file("cpu", cid, "cpu.cfs_quota_us") == "150000"
    assert cri.cgroup_file("cpu", cid, "cpu.shares") == "256"
    assert cri.exec_sync(cid, "true").exit_code == 0  # /dev/null etc. still allowed (devices)

    # ContainerStats: containerd reads the cgroup kago-oci made
    def stats():
        s = cri.ContainerStats(pb.ContainerStatsRequest(container_id=cid)).stats
        return s if s.cpu.usage_core_nano_seconds.value and s.memory.working_set_bytes.value \
            else None
    s = wait_for(stats, timeout=5, interval=0.2)
    assert s, cri.ContainerStats(pb.ContainerStatsRequest(container_id=cid))
    assert s.attributes.id == cid and s.attributes.metadata.name == "main"

    # the log the kubelet would read: CRI format, "<time> stdout F <line>"
    log = os.path.join(cri.log_dir, "main.log")
    assert wait_for(lambda: os.path.exists(log) and " stdout F hello from " in open(log).read())

    cri.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=5))
    status = cri.status(cid)
    assert status.state == pb.CONTAINER_EXITED and status.exit_code == 0, status
    assert wait_for(lambda: " stdout F stopping" in open(log).read())
    assert not os.path.exists(f"{CG}/memory{cri.cgroup_parent}/{cid}")
    cri.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    assert [c.id for c in cri.containers()] == []
    assert not os.path.exists(os.path.join(cri.daemon.runc_root, K8S, cid))

    cri.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    status = cri.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)).status
    assert status.state == pb.SANDBOX_NOTREADY
    cri.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    assert cri.pods() == []
    assert not os.path.exists(os.path.join(cri.daemon.runc_root, K8S, pod_id))


def test_stop_kills_a_container_that_ignores_sigterm(cri, pod):
    pb = cri.pb
    pod_id, pod_config = pod
    config = cri.container_config("stubborn", ["sh", "-c", "trap '' TERM; touch /tmp/trapped; "
                                               "while :; do sleep 0.1; done"])
    cid = cri.create(pod_id, pod_config, config)
    cri.StartContainer(pb.StartContainerRequest(container_id=cid))
    # in the pod's PID namespace sh is not its init: a TERM before the trap would kill it
    assert wait_for(lambda: cri.exec_sync(cid, "test", "-f", "/tmp/trapped").exit_code == 0)
    started = time.monotonic()
    cri.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1))
    assert time.monotonic() - started >= 1
    status = cri.status(cid)
    assert status.state == pb.CONTAINER_EXITED and status.exit_code == 137, status
    cri.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))


def test_tty_container_logs_its_terminal(cri, pod):
    """``tty: true`` (a pod's ``tty``/``stdin``): the shim takes the terminal from kago-oci
    through the console socket and logs what is written to it."""
    pb = cri.pb
    pod_id, pod_config = pod
    config = cri.container_config("term", ["sh", "-c", "tty; test -t 1 && echo on-a-tty; "
                                           "sleep 60"], log_path="term.log")
    config.tty = config.stdin = True
    cid = cri.create(pod_id, pod_config, config)
    cri.StartContainer(pb.StartContainerRequest(container_id=cid))
    log = os.path.join(cri.log_dir, "term.log")
    assert wait_for(lambda: os.path.exists(log) and "on-a-tty" in open(log).read()), \
        open(log).read() if os.path.exists(log) else "no log"
    assert " stdout F /dev/pts/0" in open(log).read()
    cri.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1))
    cri.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))


def test_oom_killed_reason(cri, pod):
    pb = cri.pb
    pod_id, pod_config = pod
    config = cri.container_config(
        "hog", ["sh", "-c", "x=0123456789; while :; do x=$x$x; done"],
        resources=pb.LinuxContainerResources(memory_limit_in_bytes=32 << 20))
    cid = cri.create(pod_id, pod_config, config)
    cri.StartContainer(pb.StartContainerRequest(container_id=cid))
    assert wait_for(lambda: cri.status(cid).state == pb.CONTAINER_EXITED, timeout=20)
    status = cri.status(cid)
    assert status.exit_code == 137 and status.reason == "OOMKilled", status
    cri.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))


def test_runtime_default_seccomp_and_readonly_root(cri, pod):
    """A container as a hardened pod spec asks for it: RuntimeDefault seccomp, read-only root,
    dropped capabilities (the kubelet leaves no_new_privs false unless asked)."""
    pb = cri.pb
    pod_id, pod_config = pod
    security = pb.LinuxContainerSecurityContext(
        seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault),
        readonly_rootfs=True, capabilities=pb.Capability(drop_capabilities=["ALL"]),
        run_as_user=pb.Int64Value(value=1000),
        namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER))
    config = cri.container_config("hardened", ["sleep", "60"], security=security)
    cid = cri.create(pod_id, pod_config, config)
    cri.StartContainer(pb.StartContainerRequest(container_id=cid))
    res = cri.exec_sync(cid, "sh", "-c", "grep -E '^(Seccomp|CapEff|NoNewPrivs):' "
                        "/proc/self/status; id -u; "
                        # PID 1 may still be before its execve (start does not wait for it)
                        "for i in $(seq 100); do grep -q sleep /proc/1/cmdline && break; "
                        "sleep 0.05; done; cat /proc/1/cmdline; echo; "
                        "touch /x 2>&1; exit 0")
    assert res.exit_code == 0, res
    out = res.stdout.decode()
    assert "Seccomp:\t2" in out and "CapEff:\t0000000000000000" in out, out
    assert "NoNewPrivs:\t0" in out, out
    assert "\n1000\n" in out, out  # runAsUser
    assert "sleep\x0060" in out, out  # its own PID namespace (pid CONTAINER): PID 1 is sleep
    assert "Read-only file system" in out, out
    cri.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1))
    cri.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))


def test_privileged_container(cri, clean):
    """A privileged container (as node agents and CNI daemon sets run): every capability the
    host's root has, the host's devices, writable /sys."""
    pb = cri.pb
    config = cri.pod_config(f"priv-{uuid.uuid4().hex[:6]}")
    config.linux.security_context.privileged = True  # a privileged container needs this
    priv_id = cri.RunPodSandbox(pb.RunPodSandboxRequest(config=config,
                                                        runtime_handler="kago")).pod_sandbox_id
    try:
        cconfig = cri.container_config(
            "agent", ["sleep", "60"], security=pb.LinuxContainerSecurityContext(privileged=True))
        cid = cri.create(priv_id, config, cconfig)
        cri.StartContainer(pb.StartContainerRequest(container_id=cid))
        res = cri.exec_sync(cid, "sh", "-c", "grep CapEff: /proc/self/status; "
                            "grep ' /sys ' /proc/self/mounts; ls /dev | wc -l")
        assert res.exit_code == 0, res
        with open("/proc/self/status") as f:
            host_caps = [line for line in f if line.startswith("CapEff:")][0].split()[1]
        lines = res.stdout.decode().splitlines()
        assert lines[0].split()[1] == host_caps, lines
        assert lines[1].split()[3].startswith("rw"), lines
        assert int(lines[2]) > 20, lines  # the host's devices, not the default six
        cri.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1))
        cri.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    finally:
        cri.remove_pod(priv_id)


# What a process sees of its container, read-only (a probe must change nothing: in a pod on
# the node's network the UTS namespace is the node's). Timestamps, inode numbers and
# snapshot numbers are cut; the container's own ID is replaced by CID.
PROBE = r"""
notime() { sed -E 's/ [A-Z][a-z]{2} +[0-9]+ +[0-9:]+ / /'; }
echo '## status'; grep -E '^(Uid|Gid|Groups|Cap|Seccomp|NoNewPrivs|Umask)' /proc/self/status
echo '## limits'; cat /proc/self/limits
echo '## oom'; cat /proc/self/oom_score_adj
echo '## cgroup'; cat /proc/self/cgroup
echo '## mounts'; sed -E 's/snapshots\/[0-9]+/S/g; s/[0-9a-f]{64}/ID/g' /proc/self/mounts
echo '## dev'; ls -lnR /dev | notime
echo '## env'; env | sort
echo '## process'; pwd; hostname; umask
echo '## ns'; ls -l /proc/self/ns | sed -nE 's/.* ([a-z_]+) -> .*/\1/p'
echo '## etc'; ls -ln /etc | notime; cat /etc/hosts /etc/resolv.conf /etc/hostname
echo '## fds'; ls /proc/self/fd
echo '## volumes'; ls -lnR /data /etc/config /shared 2>&1 | notime
cat /etc/config/app.conf /dev/termination-log 2>&1; touch /etc/config/x /data/x 2>&1
echo '## sysctl'; cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced
"""
CGROUP_FILES = ["devices/devices.list", "memory/memory.limit_in_bytes", "cpu/cpu.shares",
                "cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us", "pids/pids.max",
                "memory/memory.swappiness", "cpuset/cpuset.cpus", "freezer/freezer.state"]


def _view(cri, handler, security, resources, network, mounts=(), sysctls=None):
    """The probe's output and the container's cgroup files, in a fresh pod of ``handler``."""
    pb = cri.pb
    config = cri.pod_config("view", network=network)
    config.linux.sysctls.update(sysctls or {})
    pod_id = cri.RunPodSandbox(pb.RunPodSandboxRequest(config=config,
                                                       runtime_handler=handler)).pod_sandbox_id
    try:
        cid = cri.create(pod_id, config, cri.container_config(
            "probe", ["sleep", "60"], security=security, resources=resources, mounts=mounts))
        cri.StartContainer(pb.StartContainerRequest(container_id=cid))
        res = cri.exec_sync(cid, "sh", "-c", PROBE)
        view = {}
        section = None
        for line in (res.stdout + res.stderr).decode().splitlines():
            if line.startswith("## "):
                section = line[3:]
                view[section] = []
            elif section:
                view[section].append(line.replace(cid, "CID").replace(pod_id, "POD"))
        for name in CGROUP_FILES:
            controller, leaf = name.split("/")
            with open(f"{CG}/{controller}{cri.cgroup_parent}/{cid}/{leaf}") as f:
                view[name] = sorted(f.read().split("\n"))  # the order rules were written in
        cri.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1))
        cri.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
        return view
    finally:
        cri.remove_pod(pod_id)


def _known_differences(view):
    """Normalise the differences between kago-oci and runc 1.1 that are choices, not bugs.

    On cgroup v1, runc leaves the tmpfs at /sys/fs/cgroup writable and mounts the v1
    hierarchies in /proc/self/cgroup order; kago-oci makes the tmpfs read-only as the spec's
    "ro" asks, mounts them in sorted order and adds the hybrid host's cgroup2 hierarchy
    at /sys/fs/cgroup/unified (read-only), as systemd lays it out.
    """
    mounts = []
    cgroup_lines = []
    for line in view["mounts"]:
        fields = line.split()
        if fields[1] == "/sys/fs/cgroup/unified" and fields[2] == "cgroup2":
            continue
        if fields[1] == "/sys/fs/cgroup" and fields[2] == "tmpfs":
            fields[3] = fields[3].replace("rw,", "ro,", 1)
            line = " ".join(fields)
        if fields[1].startswith("/sys/fs/cgroup/"):
            cgroup_lines.append(line)
            continue
        mounts.append(line)
    view["mounts"] = mounts + sorted(cgroup_lines)
    return view


def _masked_files(view):
    """The mounts over masked files (/proc/keys, /proc/timer_list): what /dev/null they are."""
    return [line for line in view["mounts"]
            if line.split()[1] in KUBELET_MASKED_PATHS and line.split()[2] != "proc"
            and not line.split()[3].startswith("ro,")]  # a masked directory is a ro tmpfs


def _without_masked_files(view):
    masked = set(_masked_files(view))
    view["mounts"] = [line for line in view["mounts"] if line not in masked]
    return view


def _kubelet_volumes(cri, handler):
    """The mounts a kubelet gives a pod's container, each a bind from the node: a writable
    volume (emptyDir), a read-only one (a configMap), the termination-log file into /dev,
    the pod's /etc/hosts file; one volume with host-to-container propagation."""
    pb = cri.pb
    top = os.path.join(cri.daemon.base, "volumes", handler)
    # shared again, right before use: every mount of the host was seen turned private
    # while other suites ran beside this one (an rslave/rprivate of "/" outside a new
    # mount namespace does that)
    subprocess.run(["mount", "--make-shared", os.path.join(cri.daemon.base, "propagated")],
                   check=True)
    shared = os.path.join(cri.daemon.base, "propagated", handler)
    for d in (f"{top}/data", f"{top}/config", shared):
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(top, "config", "app.conf"), "w") as f:
        f.write("answer=42\n")
    with open(os.path.join(top, "termination-log"), "w"):
        pass
    with open(os.path.join(top, "hosts"), "w") as f:
        f.write("127.0.0.1\tlocalhost\n192.0.2.2\tview\n")
    return [
        pb.Mount(container_path="/data", host_path=f"{top}/data"),
        pb.Mount(container_path="/etc/config", host_path=f"{top}/config", readonly=True),
        pb.Mount(container_path="/dev/termination-log", host_path=f"{top}/termination-log"),
        pb.Mount(container_path="/etc/hosts", host_path=f"{top}/hosts"),
        pb.Mount(container_path="/shared", host_path=shared,
                 propagation=pb.PROPAGATION_HOST_TO_CONTAINER),
    ]


@pytest.mark.parametrize("kind", ["default", "hardened", "pod-network", "kubelet-volumes"])
def test_kago_gives_a_pod_container_the_same_view_as_runc(cri, clean, kind):
    pb = cri.pb
    network = "node" if kind in ("default", "hardened") else "pod"
    mounts = {}
    sysctls = None
    if kind == "kubelet-volumes":
        mounts = {h: _kubelet_volumes(cri, h) for h in ("runc", "kago")}
        sysctls = {"net.ipv4.ip_unprivileged_port_start": "80", "kernel.shm_rmid_forced": "1"}
        security = pb.LinuxContainerSecurityContext(
            run_as_user=pb.Int64Value(value=1000), run_as_group=pb.Int64Value(value=1000),
            supplemental_groups=[100, 5])
        resources = None
    elif kind != "hardened":
        security, resources = None, None
    else:
        security = pb.LinuxContainerSecurityContext(
            seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault),
            readonly_rootfs=True, capabilities=pb.Capability(drop_capabilities=["ALL"]),
            run_as_user=pb.Int64Value(value=1000), no_new_privs=True)
        resources = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000,
                                               cpu_shares=512, memory_limit_in_bytes=64 << 20,
                                               cpuset_cpus="0")
    runc = _known_differences(_view(cri, "runc", security, resources, network,
                                    mounts.get("runc", ()), sysctls))
    kago = _known_differences(_view(cri, "kago", security, resources, network,
                                    mounts.get("kago", ()), sysctls))
    for view in (runc, kago):  # each handler's volumes are its own directory on the node
        view["mounts"] = [line.replace("/runc", "/H").replace("/kago", "/H")
                          for line in view["mounts"]]
    assert [line.split()[1] for line in _masked_files(kago)] == \
        [line.split()[1] for line in _masked_files(runc)]
    runc, kago = _without_masked_files(runc), _without_masked_files(kago)  # see below
    for view in (runc, kago):  # the probe ran to its end, in both
        assert all(view.get(k) for k in ("status", "limits", "mounts", "dev", "env", "ns",
                                         "sysctl")), view
    assert runc.keys() == kago.keys()
    for section in runc:
        assert kago[section] == runc[section], f"{section} differs from runc's"


@pytest.mark.parametrize("handler", ["runc", "kago"])
def test_a_command_that_cannot_start(cri, clean, handler):
    """The kubelet shows StartContainer's error as the container's StartError message: the
    runtime's wording reaches it, and the container is left exited, not running."""
    pb = cri.pb
    config = cri.pod_config(f"nostart-{handler}")
    pod_id = cri.RunPodSandbox(pb.RunPodSandboxRequest(config=config,
                                                       runtime_handler=handler)).pod_sandbox_id
    try:
        cid = cri.create(pod_id, config, cri.container_config("bad", ["/nonexistent"]))
        with pytest.raises(grpc.RpcError) as info:
            cri.StartContainer(pb.StartContainerRequest(container_id=cid))
        status = cri.status(cid)
        assert status.state == pb.CONTAINER_EXITED and status.reason == "StartError", status
        # runc: '... runc create failed: unable to start container process: exec:
        # "/nonexistent": stat /nonexistent: no such file or directory'; kago-oci: '... create
        # failed: exec: "/nonexistent": stat /nonexistent: no such file or directory'
        assert 'exec: "/nonexistent": stat /nonexistent: no such file or directory' \
            in status.message, status.message
        assert status.message in info.value.details()
        cri.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    finally:
        cri.remove_pod(pod_id)
