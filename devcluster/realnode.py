"""Real nodes for the local cluster: a kubelet, containerd (runc, CNI bridge) and kube-proxy per node.

Each node lives in a network namespace of its own, as a kind node lives in its container: the node's
kubelet, containerd, its runc shims and kube-proxy run inside it (entered with `nsenter --net`, which,
unlike `ip netns exec`, leaves the mount namespace and so the cgroup filesystems alone). What that buys:
- kube-proxy's nftables table, the kubelet's iptables chains, the pod bridge and every pod's veth are
  the node's, not the host's: `down` deletes the namespace and they are gone, and two checkouts on one
  machine each program their own tables instead of rewriting one;
- the kubelet, kube-proxy and containerd listen on the node's own loopback and address, so their
  ports never meet another checkout's;
- nothing a pod sends can leave the machine: the node namespace has no default route, only its pod
  bridge, the link to the host and the other nodes of this checkout.

Addresses (per checkout, from a hash of the checkout's path, CHECKOUT_HASH):
- a block of four /24s in 10.244.16.0-10.244.215.0: node i's pods use the i-th /24 (at most 3 nodes),
  the 4th is the link network: the host's bridge `mo<tag>` holds .1 there, node i's end of its veth .10+i;
- a Service range 10.(96+n).0.0/16 inside the 10.96.0.0/11 that `localcluster` makes unreachable.
The host routes each node's pod /24 to the node's link address and the Service range to node 0, so
host processes (tests, Prometheus, kubectl port-forward) reach pods and ClusterIPs through the node's
kube-proxy. The host's global ip_forward stays 0: the host is only ever an end point; forwarding is on
inside the node namespaces only.

What the kubelet changes on the host (REAL_NODE.md) is undone by `down`: the three sysctls it sets at
start, its cgroups (kept under a cgroup root of this checkout's, `/mo-<tag>-<node>`), its mounts (under
this checkout's state directories; the pod network namespaces live under containerd's state directory).
Images never come from a registry: they are imported from OCI archives, and containerd's registry
configuration points every host at a loopback port where nothing listens, so a missing image fails at
once (`ErrImagePull`, or `ErrImageNeverPull` with imagePullPolicy Never) without a packet leaving.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKOUT_HASH = zlib.crc32(str(REPO).encode())
# The /24 blocks of real-node pods start above the kwok nodes' 10.244.0-1.0/24.
POD_BLOCK_SLOT = CHECKOUT_HASH % 50
SERVICE_SLOT = CHECKOUT_HASH % 32
SERVICE_SUPERNET = "10.96.0.0/11"  # every checkout's Service range is inside it (unreachable on the host)
MAX_NODES = 3
REAL_PODS_KEY = "modelops.dev/real-pods"
# The kubelet writes these at every start (REAL_NODE.md); `down` puts back what it found.
KUBELET_SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")
# containerd's registry configuration sends every pull here: a loopback port where nothing listens.
DEAD_REGISTRY = "https://127.0.0.1:9"
CGROUP_ROOT = Path("/sys/fs/cgroup")


class NodeError(Exception):
    """A real node could not be set up or started."""


def tag() -> str:
    """Four hex digits naming this checkout in interface, namespace and cgroup names."""
    return hashlib.sha1(str(REPO).encode()).hexdigest()[:4]


def service_cidr() -> str:
    return f"10.{96 + SERVICE_SLOT}.0.0/16"


def kubernetes_service_ip() -> str:
    """The first address of the Service range: the `kubernetes` Service's ClusterIP."""
    return str(ipaddress.ip_network(service_cidr())[1])


def pod_cidr(index: int) -> str:
    if not 0 <= index < MAX_NODES:
        raise NodeError(f"real node index {index} is outside 0-{MAX_NODES - 1}")
    return f"10.244.{16 + POD_BLOCK_SLOT * 4 + index}.0/24"


def link_network() -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.244.{16 + POD_BLOCK_SLOT * 4 + 3}.0/24")


def host_ip() -> str:
    """The host's address on the link network: what pods reach the API server at."""
    return str(link_network()[1])


def node_ip(index: int) -> str:
    return str(link_network()[10 + index])


def bridge_name() -> str:
    return f"mo{tag()}"


def node_name(index: int) -> str:
    return f"modelops-node-{index}"


def placement(node: str | None = None) -> dict[str, object]:
    """nodeSelector and tolerations that put a pod on a real node (any, or the one named): the real
    nodes carry the taint `modelops.dev/real-pods=true:NoSchedule`, so pods of tests that need no
    running process stay on the kwok nodes. Merge into a pod spec or a ModelDeployment's spec.serving."""
    selector = {REAL_PODS_KEY: "true"}
    if node:
        selector["kubernetes.io/hostname"] = node
    return {"nodeSelector": selector,
            "tolerations": [{"key": REAL_PODS_KEY, "operator": "Equal", "value": "true", "effect": "NoSchedule"}]}


def _run(*args: str, check: bool = True, input: str | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(list(args), capture_output=True, text=True, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise NodeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def _ip(*args: str, check: bool = True) -> str:
    return _run("ip", *args, check=check)


@dataclass(frozen=True)
class Node:
    """One real node of this checkout: names, addresses and paths; no state beyond the files it names."""

    index: int
    state_root: Path  # .cluster/nodes

    @property
    def name(self) -> str:
        return node_name(self.index)

    @property
    def netns(self) -> str:
        return f"mo-{tag()}-n{self.index}"

    @property
    def veth_host(self) -> str:
        return f"mo{tag()}v{self.index}"

    @property
    def ip(self) -> str:
        return node_ip(self.index)

    @property
    def pod_cidr(self) -> str:
        return pod_cidr(self.index)

    @property
    def pod_gateway(self) -> str:
        return str(ipaddress.ip_network(self.pod_cidr)[1])

    @property
    def dir(self) -> Path:
        return self.state_root / self.name

    @property
    def run_dir(self) -> Path:
        # Sockets: a unix socket path must stay under 108 bytes, which a deep checkout would exceed.
        return Path("/run") / f"modelops-{tag()}" / self.name

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def kubelet_root(self) -> Path:
        return self.dir / "kubelet"

    @property
    def cgroup_root(self) -> str:
        return f"mo-{tag()}-n{self.index}"

    def roots(self) -> list[Path]:
        """Every directory under which this node mounts anything."""
        return [self.dir, self.run_dir]

    def nsenter(self, *args: str) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{self.netns}", "--", *args]

    def ctr(self, *args: str) -> list[str]:
        return ["ctr", "--address", str(self.containerd_socket), "--namespace", "k8s.io", *args]


# ---------------------------------------------------------------- the network


def setup_network(nodes: list[Node]) -> None:
    """The host bridge on the link network, one namespace per node with its veth and pod bridge, and
    the host's routes to the nodes' pods and to the Service range (idempotent)."""
    bridge, link = bridge_name(), link_network()
    if not Path(f"/sys/class/net/{bridge}").exists():
        _ip("link", "add", bridge, "type", "bridge")
    _ip("addr", "replace", f"{host_ip()}/{link.prefixlen}", "dev", bridge)
    _ip("link", "set", bridge, "up")
    for node in nodes:
        if not Path(f"/run/netns/{node.netns}").exists():
            _ip("netns", "add", node.netns)
        if not Path(f"/sys/class/net/{node.veth_host}").exists():
            _ip("link", "add", node.veth_host, "type", "veth", "peer", "name", "eth0", "netns", node.netns)
        _ip("link", "set", node.veth_host, "master", bridge, "up")
        ns = ("-n", node.netns)
        _ip(*ns, "link", "set", "lo", "up")
        _ip(*ns, "addr", "replace", f"{node.ip}/{link.prefixlen}", "dev", "eth0")
        _ip(*ns, "link", "set", "eth0", "up")
        if _ip(*ns, "link", "show", "mopods", check=False) == "":
            _ip(*ns, "link", "add", "mopods", "type", "bridge")
        _ip(*ns, "addr", "replace", f"{node.pod_gateway}/24", "dev", "mopods")
        _ip(*ns, "link", "set", "mopods", "up")
        # Forwarding inside the node only: between its pod bridge and its link to the host.
        _run(*node.nsenter("sysctl", "-q", "-w", "net.ipv4.ip_forward=1"))
        for other in nodes:
            if other.index != node.index:
                _ip(*ns, "route", "replace", other.pod_cidr, "via", other.ip)
        _ip("route", "replace", node.pod_cidr, "via", node.ip)
    if nodes:
        _ip("route", "replace", service_cidr(), "via", nodes[0].ip)


def teardown_network(max_nodes: int = MAX_NODES) -> None:
    for index in range(max_nodes):
        node = Node(index, Path("/nonexistent"))
        _ip("route", "del", node.pod_cidr, check=False)
        if Path(f"/run/netns/{node.netns}").exists():
            _kill_netns_processes(node.netns)
            _ip("netns", "del", node.netns, check=False)
    _ip("route", "del", service_cidr(), check=False)
    if Path(f"/sys/class/net/{bridge_name()}").exists():
        _ip("link", "del", bridge_name(), check=False)


def _kill_netns_processes(netns: str) -> None:
    pids = [int(p) for p in _ip("netns", "pids", netns, check=False).split()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


# ---------------------------------------------------------------- host state


def save_sysctls(path: Path) -> None:
    """Record, once, what the kubelet will change, so `down` can put it back."""
    if path.exists():
        return
    values = {key: _run("sysctl", "-n", key).strip() for key in KUBELET_SYSCTLS}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))


def restore_sysctls(path: Path) -> None:
    if not path.exists():
        return
    for key, value in json.loads(path.read_text()).items():
        _run("sysctl", "-q", "-w", f"{key}={value}", check=False)
    path.unlink()


def _hierarchies() -> list[Path]:
    return [p for p in sorted(CGROUP_ROOT.iterdir()) if p.is_dir() and (p / "cgroup.procs").exists()]


def make_cgroup_root(name: str) -> None:
    """The kubelet refuses a cgroup root that does not exist; a new cpuset must be given cpus and mems
    before a task may join it."""
    for hierarchy in _hierarchies():
        path = hierarchy / name
        path.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (path / knob).exists() and not (path / knob).read_text().strip():
                (path / knob).write_text((hierarchy / knob).read_text())


def remove_cgroup_root(name: str) -> None:
    """Kill whatever is left in the subtree, then remove its cgroups, deepest first."""
    for hierarchy in _hierarchies():
        top = hierarchy / name
        if not top.is_dir():
            continue
        tree = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for cgroup in [*tree, top]:
            for _ in range(50):
                try:
                    pids = [int(p) for p in (cgroup / "cgroup.procs").read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.1)
            with contextlib.suppress(OSError):
                cgroup.rmdir()


def mounts_under(roots: Iterable[Path]) -> list[str]:
    """Mount points under any of `roots`, deepest first."""
    prefixes = [str(r.resolve()) if r.exists() else str(r) for r in roots]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_all(roots: Iterable[Path]) -> None:
    roots = list(roots)
    for _ in range(5):
        points = mounts_under(roots)
        if not points:
            return
        for point in points:
            _run("umount", "-l", point, check=False)


# ---------------------------------------------------------------- configuration files


def containerd_config(node: Node, pause_image: str) -> str:
    """containerd 1.6's configuration for one node (REAL_NODE.md: `restrict_oom_score_adj` is required
    on these machines, whose root lacks CAP_SYS_RESOURCE)."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{node.dir / 'containerd'}"
state = "{node.run_dir / 'containerd'}"
[grpc]
  address = "{node.containerd_socket}"
[ttrpc]
  address = "{node.run_dir / 'containerd.ttrpc.sock'}"
[debug]
  level = "warn"
[metrics]
  address = ""
[{cri}]
  sandbox_image = "{pause_image}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        Root = "{node.run_dir / 'runc'}"
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{node.dir / 'cni'}"
  [{cri}.registry]
    config_path = "{node.dir / 'certs.d'}"
"""


def registry_hosts(node: Node, hosts: Iterable[str]) -> None:
    """Every registry a pull could name resolves to a dead loopback port: no DNS query, no packet out."""
    for host in [*hosts, "_default"]:
        directory = node.dir / "certs.d" / host
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "hosts.toml").write_text(
            f'server = "{DEAD_REGISTRY}"\n[host."{DEAD_REGISTRY}"]\n  capabilities = ["pull", "resolve"]\n'
            "  skip_verify = true\n")


def cni_config(node: Node) -> str:
    """The bridge plugin on the node's pod bridge: no masquerade, no gateway (the plugin would turn
    on the node's ip_forward and route pods anywhere otherwise); pods reach the link network and the
    Service range through the node."""
    return json.dumps({
        "cniVersion": "0.4.0",
        "name": "modelops",
        "plugins": [
            {"type": "bridge", "bridge": "mopods", "isGateway": False, "isDefaultGateway": False,
             "ipMasq": False, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": node.pod_cidr, "gateway": node.pod_gateway}]],
                      "routes": [{"dst": "10.244.0.0/16", "gw": node.pod_gateway},
                                 {"dst": service_cidr(), "gw": node.pod_gateway}],
                      "dataDir": str(node.dir / "cni-ipam")}},
            {"type": "loopback"},
        ],
    }, indent=2)


def kubelet_config(node: Node, ca: Path, resolv: Path) -> str:
    return json.dumps({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": node.ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(ca)}},
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{node.cgroup_root}",
        "containerRuntimeEndpoint": f"unix://{node.containerd_socket}",
        # A resolver file naming loopback: pods get no nameserver that leaves the machine.
        "resolvConf": str(resolv),
        "clusterDNS": [],
        "podCIDR": node.pod_cidr,
        "podLogsDir": str(node.dir / "pod-logs"),
        "maxPods": 110,
        "failSwapOn": False,
        "serializeImagePulls": False,
        # The imported images are all there is: never garbage-collect them.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "nodeStatusUpdateFrequency": "4s",
        "syncFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "volumeStatsAggPeriod": "0s",
        "registerWithTaints": [{"key": REAL_PODS_KEY, "value": "true", "effect": "NoSchedule"}],
    }, indent=2)


def kube_proxy_config(node: Node, kubeconfig: Path) -> str:
    return json.dumps({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        # nftables keeps its own table, so rules added before it stay final (REAL_NODE.md).
        "mode": "nftables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node.name,
        "bindAddress": node.ip,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "clusterCIDR": "10.244.0.0/16",
        # Leave the machine-wide conntrack table size alone.
        "conntrack": {"maxPerCore": 0, "min": 0},
    }, indent=2)


# ---------------------------------------------------------------- images


PAUSE_IMAGE = "registry.k8s.io/pause:3.10"


def image_cache() -> Path:
    return Path(os.environ.get("MODELOPS_CACHE") or Path.home() / ".cache" / "modelops") / "image"


def pause_archive(kubernetes_version: str) -> Path:
    """The sandbox image, built here: `gcc -static` of the Kubernetes module's own pause.c, packed
    with umoci (cached per Kubernetes version)."""
    out = image_cache() / f"pause-{kubernetes_version}.oci.tar"
    if out.is_file():
        return out
    gomodcache = _run("go", "env", "GOMODCACHE").strip()
    source = Path(gomodcache) / f"k8s.io/kubernetes@v{kubernetes_version}" / "build/pause/linux/pause.c"
    if not source.is_file():
        gomod = REPO / "devcluster" / "gomod" / "kubernetes"
        subprocess.run(["go", "mod", "download", "k8s.io/kubernetes"], cwd=gomod, check=True)
    work = image_cache() / "pause-build"
    shutil.rmtree(work, ignore_errors=True)
    (work / "bundle").parent.mkdir(parents=True, exist_ok=True)
    binary = work / "pause"
    _run("gcc", "-Os", "-static", "-o", str(binary), str(source),
         f"-DVERSION=v{PAUSE_IMAGE.rsplit(':', 1)[1]}-modelops")
    layout, tagged = work / "layout", f"{work / 'layout'}:{PAUSE_IMAGE.rsplit(':', 1)[1]}"
    _run("umoci", "init", "--layout", str(layout))
    _run("umoci", "new", "--image", tagged)
    _run("umoci", "unpack", "--image", tagged, str(work / "bundle"))
    shutil.copy2(binary, work / "bundle" / "rootfs" / "pause")
    _run("umoci", "repack", "--image", tagged, str(work / "bundle"))
    _run("umoci", "config", "--image", tagged, "--config.entrypoint", "/pause", "--config.user", "65535:65535")
    out.parent.mkdir(parents=True, exist_ok=True)
    _run("tar", "-C", str(layout), "-cf", f"{out}.partial", ".")
    Path(f"{out}.partial").rename(out)
    shutil.rmtree(work, ignore_errors=True)
    return out


def _archive_refs(archive: Path) -> dict[str, str]:
    """{image name: manifest digest} of an OCI archive, from its index.json."""
    import tarfile

    with tarfile.open(archive) as tar:
        member = next((m for m in tar.getmembers() if m.name.lstrip("./") == "index.json"), None)
        if member is None:
            raise NodeError(f"{archive} is not an OCI archive (no index.json)")
        handle = tar.extractfile(member)
        assert handle is not None
        index = json.loads(handle.read())
    refs = {}
    for manifest in index.get("manifests", []):
        name = (manifest.get("annotations") or {}).get("org.opencontainers.image.ref.name", "")
        refs[name] = manifest["digest"]
    return refs


def import_images(node: Node, archives: dict[str, Path]) -> list[str]:
    """Import each archive ({image name without tag: archive}) into the node's containerd unless the
    same manifest is there already; returns what was imported."""
    present: dict[str, str] = {}
    for line in _run(*node.ctr("images", "ls")).splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3:
            present[fields[0]] = fields[2]
    imported = []
    for base, archive in archives.items():
        refs = _archive_refs(archive)
        wanted = {(ref if "/" in ref else f"{base}:{ref}"): digest for ref, digest in refs.items() if ref}
        if wanted and all(present.get(name) == digest for name, digest in wanted.items()):
            continue
        _run(*node.ctr("images", "import", "--base-name", base, str(archive)), timeout=600)
        imported.append(base)
    return imported


# ---------------------------------------------------------------- certificates and kubeconfigs


def _client_cert(pki: Path, name: str, subject: str) -> None:
    if (pki / f"{name}.crt").exists():
        return
    for args in (["req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                  "-subj", subject],
                 ["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                  "-out", f"{name}.crt", "-days", "3650", "-extfile", "client.ext"]):
        proc = subprocess.run(["openssl", *args], cwd=pki, capture_output=True, text=True)
        if proc.returncode != 0:
            raise NodeError(f"openssl {args[0]} for {name} failed: {proc.stderr.strip()}")


def _kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {"client-certificate": str(pki / f"{user}.crt"),
                                          "client-key": str(pki / f"{user}.key")}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }, indent=2))


# ---------------------------------------------------------------- processes


@dataclass
class NodeSet:
    """The real nodes of one checkout's cluster. `state` is the cluster's `.cluster` directory, `pki`
    its certificate directory, `apiserver_port` the port kube-apiserver listens on (all addresses)."""

    state: Path
    pki: Path
    apiserver_port: int
    bin: Path
    kubernetes_version: str

    @property
    def root(self) -> Path:
        return self.state / "nodes"

    def node(self, index: int) -> Node:
        return Node(index, self.root)

    def existing(self) -> list[Node]:
        return [self.node(i) for i in range(MAX_NODES)
                if Path(f"/run/netns/{self.node(i).netns}").exists() or self.node(i).dir.exists()]

    def _pidfile(self, node: Node, component: str) -> Path:
        return node.dir / f"{component}.pid"

    def _start(self, node: Node, component: str, args: list[str]) -> int:
        log = open(node.dir / f"{component}.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(node.nsenter(*args), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=node.dir)
        self._pidfile(node, component).write_text(str(proc.pid))
        return proc.pid

    def pid(self, node: Node, component: str) -> int | None:
        path = self._pidfile(node, component)
        if not path.exists():
            return None
        pid = int(path.read_text())
        return pid if _alive(pid) else None

    def log_tail(self, node: Node, component: str, lines: int = 20) -> str:
        path = node.dir / f"{component}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _wait(self, what: str, check: Callable[[], bool], timeout: float, node: Node, component: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if self.pid(node, component) is None:
                break
            time.sleep(0.2)
        raise NodeError(f"{what} on {node.name} did not come up within {timeout:.0f}s\n"
                        f"{self.log_tail(node, component)}")

    def start_containerd(self, node: Node) -> None:
        if self.pid(node, "containerd"):
            return
        node.run_dir.mkdir(parents=True, exist_ok=True)
        (node.dir / "containerd.toml").write_text(containerd_config(node, PAUSE_IMAGE))
        self._start(node, "containerd", ["containerd", "--config", str(node.dir / "containerd.toml")])
        self._wait("containerd", lambda: subprocess.run(node.ctr("version"), capture_output=True).returncode == 0,
                   30, node, "containerd")

    def start_kubelet(self, node: Node) -> None:
        if self.pid(node, "kubelet"):
            return
        self._start(node, "kubelet", [
            str(self.bin / "kubelet"), f"--config={node.dir / 'kubelet.json'}",
            f"--kubeconfig={node.dir / 'kubelet.kubeconfig'}", f"--root-dir={node.kubelet_root}",
            f"--cert-dir={node.dir / 'kubelet-pki'}", f"--node-ip={node.ip}", f"--hostname-override={node.name}",
            f"--node-labels={REAL_PODS_KEY}=true", "--v=1",
        ])

    def start_kube_proxy(self, node: Node) -> None:
        if self.pid(node, "kube-proxy"):
            return
        self._start(node, "kube-proxy", [str(self.bin / "kube-proxy"), f"--config={node.dir / 'kube-proxy.json'}"])

    def stop_component(self, node: Node, component: str, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        pid = self.pid(node, component)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def up(self, count: int, archives: dict[str, Path], say: Callable[[str], None] = print) -> list[Node]:
        """Start `count` real nodes (idempotent) and import `archives` into each; returns the nodes."""
        if not 0 < count <= MAX_NODES:
            raise NodeError(f"real nodes: {count} is outside 1-{MAX_NODES}")
        nodes = [self.node(i) for i in range(count)]
        setup_network(nodes)
        save_sysctls(self.root / "sysctls.json")
        server = f"https://{host_ip()}:{self.apiserver_port}"
        pause = pause_archive(self.kubernetes_version)
        resolv = self.root / "resolv.conf"
        resolv.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        _client_cert(self.pki, "kube-proxy", "/CN=system:kube-proxy")
        for node in nodes:
            node.dir.mkdir(parents=True, exist_ok=True)
            for sub in ("cni", "pod-logs", "kubelet-pki"):
                (node.dir / sub).mkdir(exist_ok=True)
            (node.dir / "cni" / "10-modelops.conflist").write_text(cni_config(node))
            registry_hosts(node, ("docker.io", "registry.k8s.io", "ghcr.io", "quay.io", "gcr.io"))
            make_cgroup_root(node.cgroup_root)
            user = f"kubelet-{node.index}"
            _client_cert(self.pki, user, f"/O=system:nodes/CN=system:node:{node.name}")
            _kubeconfig(node.dir / "kubelet.kubeconfig", server, self.pki, user)
            _kubeconfig(node.dir / "kube-proxy.kubeconfig", server, self.pki, "kube-proxy")
            (node.dir / "kubelet.json").write_text(kubelet_config(node, self.pki / "ca.crt", resolv))
            (node.dir / "kube-proxy.json").write_text(kube_proxy_config(node, node.dir / "kube-proxy.kubeconfig"))
            started = time.monotonic()
            self.start_containerd(node)
            imported = import_images(node, {PAUSE_IMAGE.rsplit(":", 1)[0]: pause, **archives})
            if imported:
                say(f"  {node.name}: imported {', '.join(imported)} in {time.monotonic() - started:.0f}s")
            self.start_kubelet(node)
            self.start_kube_proxy(node)
        return nodes

    def down(self) -> None:
        """Stop every node of this checkout and leave the host as it was before `up`."""
        for node in self.existing():
            for component in ("kube-proxy", "kubelet"):
                self.stop_component(node, component)
            # Pods first (their processes are in the node's cgroup root), then the shims and containerd.
            remove_cgroup_root(node.cgroup_root)
            if Path(f"/run/netns/{node.netns}").exists():
                _kill_netns_processes(node.netns)
            self.stop_component(node, "containerd", timeout=5)
            unmount_all(node.roots())
            remove_cgroup_root(node.cgroup_root)
            shutil.rmtree(node.run_dir, ignore_errors=True)
            shutil.rmtree(node.dir, ignore_errors=True)
        teardown_network()
        restore_sysctls(self.root / "sysctls.json")
        with contextlib.suppress(OSError):
            (Path("/run") / f"modelops-{tag()}").rmdir()
        shutil.rmtree(self.root, ignore_errors=True)
