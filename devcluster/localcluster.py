"""Start and stop a real local Kubernetes cluster: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, real nodes (kubelet, containerd, kube-proxy: devcluster/realnode.py) and kwok nodes
(which run nothing; for the fleet benchmark and the controller tests that need no running pod).

Used by `make cluster-up` / `make cluster-down` (`python -m devcluster up|down`) and by the
pytest session fixture. The control plane binds 127.0.0.1, except kube-apiserver, which also answers
on this checkout's node bridge (pods reach it through the `kubernetes` Service). The pod range
(10.244.0.0/16) and every checkout's Service range (inside 10.96.0.0/11) get an `unreachable` route in
the root network namespace before anything starts; only this checkout's own node block and Service
range are routed, onto its bridge. State lives in `.cluster/` (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devcluster import build, gateway_api, realnode

POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = realnode.service_cidr()
NODES = {"kwok-node-0": "10.244.0.0/24", "kwok-node-1": "10.244.1.0/24"}
KWOK_NODE_LABEL = "type=kwok"
PODS_PER_NODE = 110
# Extra kwok nodes take the /24s above the ones the real-pods nodes use (10.244.16.0 - 10.244.215.0).
EXTRA_NODE_PREFIX = "kwok-fleet-"
EXTRA_NODE_FIRST_SUBNET = 216
EXTRA_NODE_MAX = 40


class ClusterError(Exception):
    """The local control plane could not be built or started."""


@dataclass(frozen=True)
class Cluster:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / ".cluster"

    @property
    def bin(self) -> Path:
        return self.state / "bin"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.state / "pki"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def pids(self) -> Path:
        return self.state / "pids"

    @property
    def port_base(self) -> int:
        # Derived from the checkout's path so that two checkouts never fight over ports, and kept
        # below Linux's ephemeral range (32768-60999): a port in it can be taken at any moment by an
        # outgoing connection (one checkout's apiserver->etcd socket held another's apiserver port).
        env = os.environ.get("MODELOPS_CLUSTER_PORT_BASE")
        if env:
            return int(env)
        return 20000 + (zlib.crc32(str(self.root).encode()) % 127) * 100

    @property
    def apiserver_port(self) -> int:
        return self.port_base

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> str:
        """Run the built kubectl against this cluster and return its stdout. The kubeconfig goes in
        the environment, not as a flag: kubectl refuses flags before a plugin's name, and the
        project's plugin (`kubectl modelops`, next to this Python) is on PATH."""
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        proc = subprocess.run(
            [str(self.bin / "kubectl"), *args],
            capture_output=True, text=True, input=input, timeout=120, env=env,
        )
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout


def default() -> Cluster:
    return Cluster(build.REPO)


# ---------------------------------------------------------------- network safety


def install_unreachable_routes() -> None:
    """Make pod and Service ranges unroutable from the root namespace (idempotent)."""
    for cidr in (POD_CIDR, realnode.SERVICE_SUPERNET):
        proc = subprocess.run(["ip", "route", "replace", "unreachable", cidr], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ClusterError(f"cannot install unreachable route for {cidr}: {proc.stderr.strip()}")


# ---------------------------------------------------------------- certificates


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args[:2])} failed: {proc.stderr.strip()}")


def _make_pki(pki: Path) -> None:
    if (pki / "admin.crt").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "3650", "-subj", "/CN=modelops-local-ca", cwd=pki)
    (pki / "server.ext").write_text(
        f"subjectAltName=IP:127.0.0.1,IP:{realnode.kubernetes_service_ip()},IP:{realnode.host_ip()},"
        "DNS:localhost,DNS:kubernetes,"
        "DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
        "extendedKeyUsage=serverAuth\n"
    )
    (pki / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subject, ext in (("server", "/CN=kube-apiserver", "server.ext"),
                               ("admin", "/O=system:masters/CN=modelops-admin", "client.ext")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject, cwd=pki)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "3650", "-extfile", ext, cwd=pki)
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def _write_kubeconfig(cluster: Cluster) -> None:
    pki = cluster.pki
    cluster.kubeconfig.write_text(json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "modelops-local",
                      "cluster": {"server": cluster.server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "modelops-admin",
                   "user": {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": "modelops-local", "context": {"cluster": "modelops-local", "user": "modelops-admin"}}],
        "current-context": "modelops-local",
    }, indent=2))


# ---------------------------------------------------------------- processes


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _start(cluster: Cluster, name: str, args: list[str]) -> None:
    cluster.logs.mkdir(parents=True, exist_ok=True)
    cluster.pids.mkdir(parents=True, exist_ok=True)
    log = open(cluster.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=cluster.state)
    (cluster.pids / f"{name}.pid").write_text(str(proc.pid))


def _running(cluster: Cluster) -> dict[str, int]:
    out: dict[str, int] = {}
    if cluster.pids.is_dir():
        for f in cluster.pids.glob("*.pid"):
            pid = int(f.read_text())
            if _pid_alive(pid):
                out[f.stem] = pid
    return out


def processes(cluster: Cluster) -> dict[str, int]:
    """The control plane's running processes by name (etcd, kube-apiserver, ...) and their pids."""
    return _running(cluster)


def _ssl_context(cluster: Cluster) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cluster.pki / "ca.crt"))
    ctx.load_cert_chain(str(cluster.pki / "admin.crt"), str(cluster.pki / "admin.key"))
    return ctx


def healthy(cluster: Cluster) -> bool:
    """True when the API server answers /readyz."""
    if not (cluster.pki / "admin.crt").exists():
        return False
    try:
        with urllib.request.urlopen(f"{cluster.server}/readyz", context=_ssl_context(cluster), timeout=3) as r:
            return r.status == 200
    except OSError:
        return False


def _wait(what: str, check: Callable[[], bool], timeout: float, cluster: Cluster, log: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if log and log not in _running(cluster):
            break
        time.sleep(0.25)
    tail = ""
    if log:
        path = cluster.logs / f"{log}.log"
        if path.exists():
            tail = "\n".join(path.read_text(errors="replace").splitlines()[-25:])
    raise ClusterError(f"{what} did not come up within {timeout:.0f}s\n{tail}")


def _etcd_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            return bool(json.loads(r.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def _nodes_manifest(nodes: dict[str, str] | None = None) -> str:
    docs = []
    for name, cidr in (nodes or NODES).items():
        docs.append(json.dumps({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {"type": "kwok", "kubernetes.io/hostname": name,
                                                  "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
                         "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"}},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": str(PODS_PER_NODE)},
                       "capacity": {"cpu": "32", "memory": "256Gi", "pods": str(PODS_PER_NODE)},
                       "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux",
                                    "kubeletVersion": "fake", "kubeProxyVersion": "fake"}},
        }))
    return "\n".join(docs)


def _etcd_args(cluster: Cluster) -> list[str]:
    b, p = cluster.bin, cluster.port_base
    etcd_port = p + 1
    return [
        str(b / "etcd"), "--name", "modelops", "--data-dir", str(cluster.state / "etcd"),
        "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
        "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
        "--listen-peer-urls", f"http://127.0.0.1:{p + 2}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{p + 2}",
        "--initial-cluster", f"modelops=http://127.0.0.1:{p + 2}",
        "--listen-metrics-urls", f"http://127.0.0.1:{p + 3}",
        "--unsafe-no-fsync", "--quota-backend-bytes", str(2 * 1024**3), "--log-level", "warn",
    ]


def _apiserver_args(cluster: Cluster) -> list[str]:
    pki, b, p = cluster.pki, cluster.bin, cluster.port_base
    etcd_port = p + 1
    return [
        str(b / "kube-apiserver"),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        # Pods reach the API server at the host's address on the node bridge (the `kubernetes`
        # Service's endpoint); host clients keep using loopback.
        "--bind-address=0.0.0.0", f"--advertise-address={realnode.host_ip()}", f"--secure-port={p}",
        f"--kubelet-client-certificate={pki / 'admin.crt'}", f"--kubelet-client-key={pki / 'admin.key'}",
        "--kubelet-preferred-address-types=InternalIP",
        f"--tls-cert-file={pki / 'server.crt'}", f"--tls-private-key-file={pki / 'server.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true", "--profiling=false", "--v=0",
    ]


def node_set(cluster: Cluster) -> realnode.NodeSet:
    """This cluster's real nodes."""
    return realnode.NodeSet(state=cluster.state, pki=cluster.pki, apiserver_port=cluster.apiserver_port,
                            bin=cluster.bin, kubernetes_version=build.versions()["KUBERNETES_VERSION"])


DIST = build.REPO / "dist"


def image_archives() -> dict[str, Path]:
    """The OCI archives `make image` wrote ({image name without tag: archive}), for the nodes to import."""
    out = {}
    for archive in sorted(DIST.glob("modelops-*.oci.tar")):
        name = archive.name.removesuffix(".oci.tar").rsplit("-", 1)[0]
        out[f"docker.io/library/{name}"] = archive
    return out


def real_nodes_ready(cluster: Cluster, count: int) -> bool:
    out = cluster.kubectl("get", "nodes", "-l", f"{realnode.REAL_PODS_KEY}=true", "-o", "json", check=False)
    try:
        items = json.loads(out)["items"]
    except (ValueError, KeyError):
        return False
    return sum(any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
               for n in items) >= count


def start_real_nodes(cluster: Cluster, count: int, say: Callable[[str], None] = print) -> None:
    """Start (or keep) `count` real nodes, import the images of dist/ into each, wait until Ready."""
    started = time.monotonic()
    nodes = node_set(cluster)
    try:
        nodes.up(count, image_archives(), say)
    except realnode.NodeError as error:
        raise ClusterError(str(error)) from error
    deadline = time.monotonic() + 90
    while not real_nodes_ready(cluster, count):
        if time.monotonic() > deadline:
            raise ClusterError(f"{count} real node(s) not Ready after 90s\n"
                               + nodes.log_tail(nodes.node(0), "kubelet", 30))
        time.sleep(0.3)
    say(f"{count} real node(s) Ready in {time.monotonic() - started:.1f}s "
        f"(pods {', '.join(realnode.pod_cidr(i) for i in range(count))}, Services {SERVICE_CIDR})")


def up(cluster: Cluster | None = None, quiet: bool = False, real_nodes: int = 1) -> Cluster:
    """Start the control plane and `real_nodes` real nodes, or reuse what runs from this checkout."""
    cluster = cluster or default()
    say = (lambda *_: None) if quiet else (lambda msg: print(msg, flush=True))
    install_unreachable_routes()
    if healthy(cluster) and {"etcd", "kube-apiserver", "kwok"} <= set(_running(cluster)):
        say(f"control plane already running at {cluster.server}")
        if real_nodes:
            start_real_nodes(cluster, real_nodes, say)
        return cluster
    if _running(cluster) or node_set(cluster).existing():
        down(cluster, quiet=True)
    started = time.monotonic()
    say("building control-plane binaries (cached per version)")
    try:
        build.ensure_binaries(cluster.bin)
    except build.BuildError as error:
        raise ClusterError(str(error)) from error
    cluster.state.mkdir(parents=True, exist_ok=True)
    _make_pki(cluster.pki)
    _write_kubeconfig(cluster)
    etcd_port = cluster.port_base + 1
    say(f"starting etcd on 127.0.0.1:{etcd_port}")
    _start(cluster, "etcd", _etcd_args(cluster))
    _wait("etcd", lambda: _etcd_healthy(etcd_port), 60, cluster, "etcd")
    say(f"starting kube-apiserver on {cluster.server}")
    _start(cluster, "kube-apiserver", _apiserver_args(cluster))
    _wait("kube-apiserver", lambda: healthy(cluster), 120, cluster, "kube-apiserver")
    pki, b, p = cluster.pki, cluster.bin, cluster.port_base
    kubeconfig = str(cluster.kubeconfig)
    say("starting kube-controller-manager, kube-scheduler and kwok")
    _start(cluster, "kube-controller-manager", [
        str(b / "kube-controller-manager"), f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
        f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
        "--leader-elect=false", "--secure-port=0", "--allocate-node-cidrs=false",
        f"--cluster-cidr={POD_CIDR}", f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-route",
        "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
        "--concurrent-gc-syncs=20", "--v=0",
        # The default 20 requests/s would make the controller-manager, not the operator, what a
        # fleet of a thousand Deployments waits on (large clusters raise it the same way).
        "--kube-api-qps=300", "--kube-api-burst=500",
    ])
    _start(cluster, "kube-scheduler", [
        str(b / "kube-scheduler"), f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false", "--secure-port=0", "--v=0", "--kube-api-qps=300", "--kube-api-burst=500",
    ])
    _start(cluster, "kwok", [
        str(b / "kwok"), f"--kubeconfig={kubeconfig}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1",
        f"--server-address=127.0.0.1:{p + 4}",
        "--node-lease-duration-seconds=40",
    ])
    cluster.kubectl("apply", "-f", "-", input=_nodes_manifest())
    _wait("kwok nodes Ready", lambda: _nodes_ready(cluster), 90, cluster, "kwok")
    _wait("default service account", lambda: _has_default_sa(cluster), 60, cluster, "kube-controller-manager")
    say("installing the Gateway API CRDs (standard channel)")
    for crd in gateway_api.manifests():
        cluster.kubectl("apply", "--server-side", "-f", str(crd))
    if real_nodes:
        start_real_nodes(cluster, real_nodes, say)
    say(f"cluster healthy in {time.monotonic() - started:.1f}s; kubeconfig: {cluster.kubeconfig}")
    return cluster


def _nodes_ready(cluster: Cluster, at_least: int = len(NODES)) -> bool:
    out = cluster.kubectl("get", "nodes", "-o", "json", check=False)
    try:
        items = json.loads(out)["items"]
    except (ValueError, KeyError):
        return False
    ready = [n for n in items
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))]
    return len(ready) >= at_least


def _has_default_sa(cluster: Cluster) -> bool:
    return bool(cluster.kubectl("get", "serviceaccount", "default", "-o", "name", check=False).strip())


def down(cluster: Cluster | None = None, quiet: bool = False) -> None:
    """Stop every component and remove the cluster's state (the binaries stay cached)."""
    cluster = cluster or default()
    node_set(cluster).down()
    running = _running(cluster)
    for name in ("kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
        pid = running.get(name)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_pid_alive(pid) for pid in running.values()):
        time.sleep(0.1)
    for pid in running.values():
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    for path in ("etcd", "pids", "logs", "pki", "kubeconfig"):
        target = cluster.state / path
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        elif target.exists():
            target.unlink()
    if not quiet:
        print("control plane stopped and its state removed")


# ---------------------------------------------------------------- faults and fleets
# Used by tests/e2e/test_faults.py (restart or stop a component mid-rollout) and by the fleet
# benchmark (benchmarks/controller/fleet.py: more kwok nodes for thousands of pods).



def stop_component(cluster: Cluster, name: str, timeout: float = 30, crash: bool = False) -> None:
    """Stop one running component (e.g. "kube-apiserver", "etcd") and wait until its process is gone;
    `crash` kills it at once (SIGKILL) instead of letting it drain its requests."""
    pid = _running(cluster).get(name)
    if pid is None:
        raise ClusterError(f"{name} is not running")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL if crash else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            time.sleep(0.2)
            break
        time.sleep(0.05)


def port_free(port: int) -> bool:
    """Whether a server could bind `port` on loopback now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_ports_free(cluster: Cluster, *ports: int, timeout: float = 30) -> None:
    """A killed Go process can show as exited while its other threads still hold its sockets."""
    _wait(f"ports {ports} free", lambda: all(port_free(port) for port in ports), timeout, cluster)


def start_etcd(cluster: Cluster) -> None:
    """Start etcd again on its data directory (after `stop_component(cluster, "etcd")`)."""
    p = cluster.port_base
    _wait_ports_free(cluster, p + 1, p + 2, p + 3)
    _start(cluster, "etcd", _etcd_args(cluster))
    _wait("etcd", lambda: _etcd_healthy(cluster.port_base + 1), 60, cluster, "etcd")


def start_apiserver(cluster: Cluster) -> None:
    """Start kube-apiserver with the arguments `up()` uses and wait for /readyz."""
    _wait_ports_free(cluster, cluster.apiserver_port)
    _start(cluster, "kube-apiserver", _apiserver_args(cluster))
    _wait("kube-apiserver", lambda: healthy(cluster), 120, cluster, "kube-apiserver")


def restart_apiserver(cluster: Cluster, crash: bool = True) -> float:
    """Stop kube-apiserver (by default a crash: a graceful stop drains watches for up to a minute) and
    start it again; returns the seconds it was not serving."""
    started = time.monotonic()
    stop_component(cluster, "kube-apiserver", crash=crash)
    start_apiserver(cluster)
    return time.monotonic() - started


def apply_crd(cluster: Cluster, path: Path | str, name: str, timeout: float = 60) -> None:
    """Apply a CRD and wait until the API server serves it (Established). Polled here rather than with
    `kubectl wait`, which fails at once ("status.conditions accessor error") on a CRD so new that it
    has no status yet."""
    cluster.kubectl("apply", "--server-side", "-f", str(path))
    wait_established(cluster, name, timeout)


def wait_established(cluster: Cluster, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        out = cluster.kubectl("get", "crd", name, "-o", "json", check=False)
        conditions = (json.loads(out).get("status") or {}).get("conditions") or [] if out.strip() else []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"CRD {name} not Established after {timeout:.0f}s: {conditions}")
        time.sleep(0.2)


def add_kwok_nodes(cluster: Cluster, count: int) -> list[str]:
    """Make sure `count` extra kwok nodes (PODS_PER_NODE pods each) exist and are Ready; returns their names."""
    if not 0 <= count <= EXTRA_NODE_MAX:
        raise ClusterError(f"extra kwok nodes: {count} is outside 0-{EXTRA_NODE_MAX}")
    names = [f"{EXTRA_NODE_PREFIX}{i}" for i in range(count)]
    if names:
        cluster.kubectl("apply", "-f", "-", input=_nodes_manifest(
            {name: f"10.244.{EXTRA_NODE_FIRST_SUBNET + i}.0/24" for i, name in enumerate(names)}))
        _wait(f"{count} extra kwok nodes Ready", lambda: _nodes_ready(cluster, len(NODES) + count), 120, cluster,
              "kwok")
    return names


def remove_kwok_nodes(cluster: Cluster) -> None:
    """Delete every extra kwok node `add_kwok_nodes` made (their pods should be gone first)."""
    out = cluster.kubectl("get", "nodes", "-o", "name", check=False)
    extra = [n for n in out.split() if n.startswith(f"node/{EXTRA_NODE_PREFIX}")]
    if extra:
        cluster.kubectl("delete", "--wait=false", *extra, check=False)


def apiserver_metrics(cluster: Cluster) -> str:
    """The API server's own /metrics text, read with the admin client certificate."""
    with urllib.request.urlopen(f"{cluster.server}/metrics", context=_ssl_context(cluster), timeout=30) as r:
        return str(r.read().decode())


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    try:
        if command == "up":
            count = int(argv[argv.index("--nodes") + 1]) if "--nodes" in argv else 1
            up(real_nodes=count)
        elif command == "down":
            down()
        elif command == "binaries":
            build.ensure_binaries()
        elif command == "status":
            cluster = default()
            print(json.dumps({"healthy": healthy(cluster), "server": cluster.server,
                              "running": _running(cluster)}, indent=2))
        else:
            print(f"usage: python -m devcluster up [--nodes N]|down|status|binaries (got {command!r})", file=sys.stderr)
            return 2
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
