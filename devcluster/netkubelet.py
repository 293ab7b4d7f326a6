"""A small kubelet for one node that really runs its pods, each in a network namespace owning the pod IP.

kwok's nodes make pods Ready without running anything. The end-to-end tests need serving pods that
really answer at their IPs (the operator, Prometheus and the load generator dial them as in a
cluster), so this module registers one more Node and does for its pods what a kubelet and a
container runtime would: a network namespace per pod (the "sandbox") that owns the pod IP, the init
containers run in order, then the containers, a readiness (and liveness) probe, pod status written
like a kubelet writes it, and graceful termination when the pod is deleted.

A "container" here is the container's command and args run by `ip netns exec` on this machine (no
image): volume mount paths (/models, /tmp, ...) in args and env values are rewritten to per-pod host
directories, and `modelops` resolves to this virtualenv's script. Processes run as root; the pod's
securityContext is not enforced. Each container also gets a private mount namespace (`unshare -m`, set
up by a few lines of sh before the command is exec'd, so the pid stays the command's): a small /dev of
its own (null, zero, random, urandom, tty, the host's shm and pts) in which `terminationMessagePath`
(default /dev/termination-log) is a per-container host file that the kubelet reads when the container
exits; and the PersistentVolumeClaims it mounts.

PersistentVolumeClaims: each claim (namespace/claimName) is one shared host directory,
`.cluster/pvcs/<namespace>/<claim>`, whatever PV is bound to it (`create_claim()` makes a bound pair).
A claim mounted under /mnt is bind-mounted at its real mountPath (over a tmpfs on /mnt inside the
container's namespace), so product code reads e.g. /mnt/pvc/<claim> with no test-only hook; a claim
mounted elsewhere is rewritten like the other volumes. `readOnly` (on the mount or on the volume's
claim) makes the bind mount read-only: writes fail with EROFS, root or not. Exec probes and preStop
exec hooks run outside that mount namespace.

The node carries the label and taint `modelops.dev/real-pods=<pool>` (NoSchedule; pool "true" by
default), so only pods that ask for it (nodeSelector plus toleration; see `pod_placement()`) land here
and other tests' pods stay on the kwok nodes. Nodes of another pool (the harness's own tests use
"harness") never take pods meant for the default pool, so both can run at the same time.

Used by tests/integration/test_harness.py and the e2e tests, in process
(`NetKubelet(kubeconfig).start()` / `.stop()`), or in the foreground:
`python -m devcluster.netkubelet --kubeconfig .cluster/kubeconfig [--node NAME] [--cidr CIDR]`.
Needs root and iproute2. Only /32 routes to its own namespaces are added in the root namespace; the
`unreachable` routes for the pod and Service ranges (devcluster/localcluster.py) stay.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

log = logging.getLogger("netkubelet")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_KUBECONFIG = REPO / ".cluster" / "kubeconfig"
STATE_ROOT = REPO / ".cluster" / "netkubelet"
CLAIMS_ROOT = REPO / ".cluster" / "pvcs"
TEST_MODELS = REPO / "tests" / "models"
DEFAULT_NODE = "modelops-real-0"
# Each checkout gets its own block of four /24s (10.244.16.0 - 10.244.215.0), so two checkouts
# running their harness at once never route the same pod address.
CHECKOUT_SLOT = zlib.crc32(str(REPO).encode()) % 50


def real_cidr(index: int) -> str:
    """The podCIDR of this checkout's real node number `index` (0-3)."""
    if not 0 <= index < 4:
        raise ValueError(f"real node index {index} is outside 0-3")
    return f"10.244.{16 + CHECKOUT_SLOT * 4 + index}.0/24"


DEFAULT_CIDR = real_cidr(0)
REAL_PODS_KEY = "modelops.dev/real-pods"
# The host end of every pod's veth carries this link-local address; each namespace routes to it as
# its next hop, so replies to the root namespace come back over the pod's own veth.
GATEWAY = "169.254.123.1"
NETNS_PREFIX = "mo-"
# How long `stop()` lets a pod's processes drain before killing them (a pod's own grace period can be
# 30s; stopping the harness should not take that long).
STOP_GRACE_S = 10.0
VENV_BIN = Path(sys.executable).parent


def pod_placement(node_name: str | None = None, pool: str = "true") -> dict[str, Any]:
    """The nodeSelector and tolerations that put a pod on a NetKubelet node of a pool (any, or the one named).

    Merge into a pod spec, or into a ModelDeployment's `spec.serving`.
    """
    selector = {REAL_PODS_KEY: pool}
    if node_name:
        selector["kubernetes.io/hostname"] = node_name
    return {"nodeSelector": selector,
            "tolerations": [{"key": REAL_PODS_KEY, "operator": "Equal", "value": pool, "effect": "NoSchedule"}]}


def node_tag(node_name: str) -> str:
    """Four hex digits naming a node (of this checkout) in its netns and veth names, so those of two
    nodes, or of two checkouts, never collide."""
    return hashlib.sha1(f"{REPO}:{node_name}".encode()).hexdigest()[:4]


def netns_prefix(node_name: str) -> str:
    """Every network namespace a node makes starts with this."""
    return f"{NETNS_PREFIX}{node_tag(node_name)}-"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    """A Kubernetes API request answered with an unexpected status."""

    def __init__(self, status: int, body: str, what: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class KubeAPI:
    """A minimal JSON client of the API server (plain dicts, watches as iterators), thread-safe.

    The kubernetes package's models convert every object; the harness only needs a few paths, and
    plain dicts keep the status it writes exactly as a kubelet would send it. Also used by
    devcluster/traffic.py.
    """

    def __init__(self, kubeconfig: str | Path) -> None:
        cfg = k8s_client.Configuration()
        # The kubernetes loader understands every kubeconfig form (paths, inline data, tokens).
        k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        self.server = cfg.host.rstrip("/")
        self.verify: str | bool = cfg.ssl_ca_cert or True
        self.cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file else None
        auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
        self.headers = {"Authorization": auth} if auth else {}
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # One session per thread: requests sessions are not guaranteed thread-safe.
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # No environment: REQUESTS_CA_BUNDLE would replace the cluster's CA, and a proxy
            # variable must never route API (or pod) traffic off this machine.
            session.trust_env = False
            session.verify = self.verify
            session.cert = self.cert
            session.headers.update(self.headers)
            self._local.session = session
        return session

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                content_type: str = "application/json", timeout: float = 30) -> dict[str, Any]:
        data = json.dumps(body) if body is not None else None
        resp = self._session().request(method, self.server + path, data=data, params=params, timeout=timeout,
                                       headers={"Content-Type": content_type})
        if resp.status_code >= 300:
            raise ApiError(resp.status_code, resp.text, f"{method} {path}")
        return resp.json() if resp.content else {}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", path, params=params or None)

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def watch(self, path: str, params: dict[str, Any], stop: threading.Event) -> Iterator[dict[str, Any]]:
        """Events of one watch request (ends when the server closes it, or soon after `stop` is set)."""
        params = {**params, "watch": "1", "allowWatchBookmarks": "true"}
        params.setdefault("timeoutSeconds", 10)
        with self._session().get(self.server + path, params=params, stream=True,
                                 timeout=(10, params["timeoutSeconds"] + 15)) as resp:
            if resp.status_code >= 300:
                raise ApiError(resp.status_code, resp.text, f"WATCH {path}")
            for line in resp.iter_lines():
                if stop.is_set():
                    return
                if line:
                    yield json.loads(line)


# ---------------------------------------------------------------- network namespaces


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def list_netns() -> list[str]:
    """Names of all network namespaces on the machine (`ip netns list`)."""
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(netns: str) -> list[int]:
    out = _ip("netns", "pids", netns, check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def _kill_netns_processes(netns: str) -> None:
    """SIGKILL whatever still runs in a namespace (a worker that escaped its process group)."""
    for _ in range(20):
        pids = netns_pids(netns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


@dataclass
class Sandbox:
    """One pod's network namespace, its veth pair and the root namespace's /32 route to the pod IP."""

    netns: str
    host_veth: str
    ip: str

    def create(self) -> None:
        self.destroy()  # a half-made sandbox of an earlier attempt
        peer = "mp" + self.host_veth[2:]
        _ip("netns", "add", self.netns)
        _ip("link", "add", self.host_veth, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", self.netns)
        _ip("-n", self.netns, "link", "set", peer, "name", "eth0")
        _ip("-n", self.netns, "addr", "add", f"{self.ip}/32", "dev", "eth0")
        _ip("-n", self.netns, "link", "set", "lo", "up")
        _ip("-n", self.netns, "link", "set", "eth0", "up")
        _ip("-n", self.netns, "route", "add", GATEWAY, "dev", "eth0", "scope", "link")
        _ip("-n", self.netns, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
        _ip("addr", "add", f"{GATEWAY}/32", "dev", self.host_veth)
        _ip("link", "set", self.host_veth, "up")
        # Only this one address, and from the gateway address, so replies find their way back.
        _ip("route", "replace", f"{self.ip}/32", "dev", self.host_veth, "src", GATEWAY)

    def destroy(self) -> None:
        if self.netns in list_netns():
            _kill_netns_processes(self.netns)
            _ip("netns", "delete", self.netns, check=False)
        # Deleting the namespace destroys the pair (and the route with it); this covers a pair whose
        # peer never made it into the namespace.
        _ip("link", "delete", self.host_veth, check=False)


# ---------------------------------------------------------------- containers


def _tail(path: Path, max_lines: int = 80, max_bytes: int = 2048) -> str:
    """The end of a container log, as FallbackToLogsOnError puts it into the termination message."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [line for line in data.splitlines() if line.strip() and not line.startswith("=== netkubelet")]
    return "\n".join(lines[-max_lines:]).strip()


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
MAX_TERMINATION_MESSAGE = 4096


def _sh(word: str) -> str:
    return shlex.quote(word)


@dataclass
class Container:
    """One container of a pod: its spec, its process, and the status a kubelet reports for it."""

    spec: dict[str, Any]
    init: bool
    proc: subprocess.Popen[bytes] | None = None
    restart_count: int = 0
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "PodInitializing"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    next_start: float = 0.0  # monotonic time before which a crashed container is not restarted
    done: bool = False  # exited and not to be restarted (restartPolicy Never / OnFailure)
    backoff: float = 0.0
    probe_ok: int = 0
    probe_fail: int = 0
    next_liveness: float = 0.0
    liveness_fail: int = 0

    @property
    def name(self) -> str:
        return str(self.spec["name"])

    def status(self) -> dict[str, Any]:
        pid = self.proc.pid if self.proc else 0
        out: dict[str, Any] = {
            "name": self.name, "image": self.spec.get("image", ""), "imageID": "",
            "ready": self.ready, "restartCount": self.restart_count, "state": self.state,
            "lastState": self.last_state,
        }
        if pid:
            out["containerID"] = f"netkubelet://{pid}"
        if not self.init:
            out["started"] = self.started
        return out


class PodRunner(threading.Thread):
    """Runs one pod from admission to deletion; every failure stays inside this pod's thread."""

    def __init__(self, kubelet: NetKubelet, pod: dict[str, Any], ip: str) -> None:
        meta = pod["metadata"]
        super().__init__(name=f"pod-{meta['namespace']}/{meta['name']}", daemon=True)
        self.kubelet = kubelet
        self.pod = pod
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.pod_name: str = meta["name"]
        self.ip = ip
        tag = kubelet.tag
        self.sandbox = Sandbox(f"{NETNS_PREFIX}{tag}-{self.uid[:8]}", f"mo{tag}{self.uid[:8]}", ip)
        self.dir = kubelet.state_dir / "pods" / f"{self.namespace}_{self.pod_name}_{self.uid[:8]}"
        self.lock = threading.Lock()
        self.terminate_at: float | None = None  # monotonic deadline of graceful termination
        self.gone = threading.Event()  # the pod is no longer in the API: kill at once
        self.wake = threading.Event()
        self.admitted_at = time.monotonic()
        spec = pod["spec"]
        self.init_containers = [Container(c, True) for c in spec.get("initContainers") or []]
        self.containers = [Container(c, False) for c in spec.get("containers") or []]
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.phase = "Pending"
        self.initialized = not self.init_containers
        self.start_time = now_rfc3339()
        self.transitions: dict[str, tuple[str, str]] = {}
        self.sandbox_error = ""
        self.last_written: dict[str, Any] | None = None
        self.volumes: dict[str, Path] = {}
        self.claim_volumes: dict[str, tuple[Path, bool]] = {}  # volume name -> (claim directory, readOnly)

    # ------------------------------------------------------------ called by the kubelet's watch

    def update(self, pod: dict[str, Any]) -> None:
        with self.lock:
            self.pod = pod
            if pod["metadata"].get("deletionTimestamp") and self.terminate_at is None:
                grace = pod["metadata"].get("deletionGracePeriodSeconds")
                if grace is None:
                    grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
                self.terminate_at = time.monotonic() + float(grace)
                log.info("pod %s/%s deleted: terminating (grace %ss)", self.namespace, self.pod_name, grace)
        self.wake.set()

    def shutdown(self, grace: float) -> None:
        """Terminate for the kubelet's own stop: at most `grace` seconds of draining."""
        with self.lock:
            deadline = time.monotonic() + grace
            if self.terminate_at is None or self.terminate_at > deadline:
                self.terminate_at = deadline
        self.wake.set()

    @property
    def terminating(self) -> bool:
        return self.terminate_at is not None or self.gone.is_set()

    # ------------------------------------------------------------ the pod's life

    def run(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s/%s: runner failed", self.namespace, self.pod_name)
        finally:
            try:
                self._kill_all(grace_until=time.monotonic() if self.gone.is_set() else self.terminate_at)
                self.sandbox.destroy()
                shutil.rmtree(self.dir / "volumes", ignore_errors=True)
            except Exception:
                log.exception("pod %s/%s: teardown failed", self.namespace, self.pod_name)
            # Only a deleted pod (or one the stopping kubelet gives up) leaves the API; after a crash
            # of this thread the resync admits the pod again, as a fresh sandbox.
            if self.terminate_at is not None and not self.gone.is_set():
                self._delete_from_api()
            self.kubelet.forget(self.uid)

    def _run(self) -> None:
        self._prepare_volumes()
        while not self.terminating:
            try:
                self.sandbox.create()
                self.sandbox_error = ""
                break
            except Exception as error:  # retried, as a kubelet retries a failed sandbox
                self.sandbox_error = str(error)
                log.error("pod %s/%s: sandbox: %s", self.namespace, self.pod_name, error)
                self._write_status()
                self.wake.wait(5)
                self.wake.clear()
        self._write_status()
        for c in self.init_containers:
            if not self._run_init(c):
                return
        self.initialized = True
        self.phase = "Running"
        while not self.terminating:
            finished = self._tick()
            self._write_status()
            if finished:
                break
            self.wake.wait(1.0)
            self.wake.clear()
        # Completed (restartPolicy Never/OnFailure): the kubelet keeps the record until deletion.
        while not self.terminating:
            self.wake.wait(5)
            self.wake.clear()
        if not self.gone.is_set():
            self._kill_all(grace_until=self.terminate_at)
            for c in self.containers:
                c.ready = False
            self._write_status()

    def _run_init(self, c: Container) -> bool:
        """Run one init container until it succeeds (restarting with back-off) or the pod goes."""
        while not self.terminating:
            wait = c.next_start - time.monotonic()
            if wait > 0:
                self.wake.wait(min(wait, 1.0))
                self.wake.clear()
                continue
            if not self._start(c):
                continue
            self._write_status()
            while not self.terminating and c.proc is not None and c.proc.poll() is None:
                self.wake.wait(0.2)
                self.wake.clear()
            if self.terminating:
                return False
            assert c.proc is not None
            code = c.proc.returncode
            self._terminated(c, code)
            self._write_status()
            if code == 0:
                return True
            if self.restart_policy == "Never":
                self.phase = "Failed"
                self._write_status()
                while not self.terminating:
                    self.wake.wait(5)
                    self.wake.clear()
                return False
            self._back_off(c)
        return False

    def _tick(self) -> bool:
        """One pass over the containers: exits, restarts, probes. True when the pod has completed."""
        for c in self.containers:
            if c.proc is not None and c.proc.poll() is None:
                self._probe(c)
                continue
            if c.proc is not None and "running" in c.state:  # it has just exited
                code = c.proc.returncode
                self._terminated(c, code)
                if self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and code != 0):
                    self._back_off(c)
                else:
                    c.done = True
            if not c.done and time.monotonic() >= c.next_start:
                self._start(c)
        if self.containers and all(c.done for c in self.containers):
            codes = [c.state.get("terminated", {}).get("exitCode", 1) for c in self.containers]
            self.phase = "Succeeded" if all(code == 0 for code in codes) else "Failed"
            return True
        return False

    # ------------------------------------------------------------ processes

    def _prepare_volumes(self) -> None:
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        volumes: dict[str, Path] = {}
        for vol in self.pod["spec"].get("volumes") or []:
            if "hostPath" in vol:
                volumes[vol["name"]] = Path(vol["hostPath"]["path"])
            elif "persistentVolumeClaim" in vol:
                claim = vol["persistentVolumeClaim"]
                path = self.kubelet.claim_dir(self.namespace, claim["claimName"])
                volumes[vol["name"]] = path
                self.claim_volumes[vol["name"]] = (path, bool(claim.get("readOnly")))
            else:
                # emptyDir, and (empty) stand-ins for kinds this harness does not project.
                path = self.dir / "volumes" / vol["name"]
                path.mkdir(parents=True, exist_ok=True)
                os.chmod(path, 0o1777)
                volumes[vol["name"]] = path
        self.volumes = volumes

    def _claim_mounts(self, spec: dict[str, Any]) -> list[tuple[str, Path, bool, bool]]:
        """(mountPath, host directory, read-only, really mounted) of each claim the container mounts."""
        out = []
        for m in spec.get("volumeMounts") or []:
            if m["name"] not in self.claim_volumes:
                continue
            base, ro = self.claim_volumes[m["name"]]
            target = base / m["subPath"] if m.get("subPath") else base
            target.mkdir(parents=True, exist_ok=True)
            mount_path = m["mountPath"].rstrip("/") or "/"
            # Really mounted only where a tmpfs over the host's /mnt (inside the namespace) can make the
            # mount point without touching the host, and never when the claim's own directory lives there.
            real = mount_path.startswith("/mnt/") and Path("/mnt").is_dir() and not str(target).startswith("/mnt/")
            out.append((mount_path, target, ro or bool(m.get("readOnly")), real))
        return out

    def _mounts(self, spec: dict[str, Any]) -> list[tuple[str, Path]]:
        mounts = []
        really_mounted = {path for path, _, _, real in self._claim_mounts(spec) if real}
        for m in spec.get("volumeMounts") or []:
            if (m["mountPath"].rstrip("/") or "/") in really_mounted:
                continue  # bind-mounted at its real path in the container's mount namespace
            base = self.volumes.get(m["name"])
            if base is not None:
                target = base / m["subPath"] if m.get("subPath") else base
                target.mkdir(parents=True, exist_ok=True)
                mounts.append((m["mountPath"].rstrip("/") or "/", target))
        # Longest mount path first, so /models/current wins over /models.
        return sorted(mounts, key=lambda item: len(item[0]), reverse=True)

    @staticmethod
    def _rewrite(value: str, mounts: list[tuple[str, Path]]) -> str:
        """Map a container path onto the host directory of the volume mounted there."""
        prefix, sep, rest = value.partition("=") if value.startswith("--") else ("", "", value)
        for mount, host in mounts:
            if rest == mount or rest.startswith(mount + "/"):
                return f"{prefix}{sep}{host}{rest[len(mount):]}"
        return value

    def _field_ref(self, path: str) -> str:
        values = {"metadata.name": self.pod_name, "metadata.namespace": self.namespace, "metadata.uid": self.uid,
                  "status.podIP": self.ip, "status.hostIP": self.kubelet.node_ip,
                  "spec.nodeName": self.kubelet.node_name}
        return values.get(path, "")

    def _argv_env(self, c: Container) -> tuple[list[str], dict[str, str]]:
        spec = c.spec
        mounts = self._mounts(spec)
        env = {"PATH": f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOSTNAME": self.pod_name, "HOME": str(self.dir), "PYTHONUNBUFFERED": "1",
               # This harness's "image" also carries the test-only models (tests/models).
               "PYTHONPATH": str(TEST_MODELS)}
        for mount, host in mounts:
            if mount == "/tmp":
                env["TMPDIR"] = str(host)  # the container's /tmp is its volume, not the host's
        for item in spec.get("env") or []:
            if "value" in item:
                value = _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), str(item["value"]))
            elif "fieldRef" in (item.get("valueFrom") or {}):
                value = self._field_ref(item["valueFrom"]["fieldRef"]["fieldPath"])
            else:
                value = ""
            env[item["name"]] = self._rewrite(value, mounts)
        command = list(spec.get("command") or [])
        if not command:
            raise RuntimeError("no command: images' entrypoints are not known to this harness")
        args = list(spec.get("args") or [])
        words = [_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), w) for w in command + args]
        words = [self._rewrite(w, mounts) for w in words]
        exe = words[0]
        if "/" not in exe:
            found = shutil.which(exe, path=env["PATH"])
            if found is None:
                raise RuntimeError(f"executable file not found in $PATH: {exe}")
            exe = found
        return [exe, *words[1:]], env

    def _termination_file(self, c: Container) -> tuple[Path | None, str]:
        """The host file behind the container's terminationMessagePath, and that path.

        /dev/...: a per-container file bound into the container's own /dev. Under a volume: the
        volume's host path. Anywhere else: not supported here (None), so no message is read.
        """
        path = c.spec.get("terminationMessagePath") or "/dev/termination-log"
        if path.startswith("/dev/") and "/" not in path[len("/dev/"):]:
            return self.dir / "termination" / f"{'init-' if c.init else ''}{c.name}", path
        rewritten = self._rewrite(path, self._mounts(c.spec))
        return (Path(rewritten), path) if rewritten != path else (None, path)

    def _mount_script(self, c: Container) -> str:
        """sh run in the container's private mount namespace before exec'ing the command."""
        stage = self.dir / "stage" / f"{'init-' if c.init else ''}{c.name}"
        stage.mkdir(parents=True, exist_ok=True)
        lines = ["set -e", f"S={_sh(str(stage))}", 'mount --rbind /dev "$S"',
                 "mount -t tmpfs -o mode=755,size=1m tmpfs /dev",
                 'for d in null zero full random urandom tty; do touch /dev/$d; mount --bind "$S/$d" /dev/$d; done',
                 'mkdir /dev/shm /dev/pts; mount --rbind "$S/shm" /dev/shm; mount --rbind "$S/pts" /dev/pts',
                 "ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin",
                 "ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr",
                 'umount -l "$S"']
        host, path = self._termination_file(c)
        if host is not None and path.startswith("/dev/"):
            host.parent.mkdir(parents=True, exist_ok=True)
            host.write_bytes(b"")  # a fresh message for every run
            lines.append(f"touch {_sh(path)}; mount --bind {_sh(str(host))} {_sh(path)}")
        elif host is not None:
            host.parent.mkdir(parents=True, exist_ok=True)
            host.unlink(missing_ok=True)
        claims = self._claim_mounts(c.spec)
        if any(real for *_, real in claims):
            lines.append("mount -t tmpfs -o mode=755,size=1m tmpfs /mnt")
        for mount_path, host_dir, ro, real in claims:
            target = mount_path if real else str(host_dir)
            if real:
                lines.append(f"mkdir -p {_sh(target)}; mount --bind {_sh(str(host_dir))} {_sh(target)}")
            elif ro:
                lines.append(f"mount --bind {_sh(target)} {_sh(target)}")
            if ro:
                lines.append(f"mount -o remount,bind,ro {_sh(target)}")
        lines.append('exec "$@"')
        return "\n".join(lines)

    def _start(self, c: Container) -> bool:
        log_path = self.dir / "logs" / f"{c.name}.log"
        if "terminated" in c.state:  # a restart: the last run moves to lastState
            c.last_state = {"terminated": c.state["terminated"]}
            c.restart_count += 1
        try:
            argv, env = self._argv_env(c)
            # A private mount namespace: its own /dev (termination message) and the claims it mounts.
            # Each step execs the next, so the pid is the command's.
            shown = " ".join(argv)
            argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                    self._mount_script(c), "sh", *argv]
            with open(log_path, "ab") as out:
                out.write(f"=== netkubelet {now_rfc3339()} start #{c.restart_count}: {shown}\n".encode())
                out.flush()
                # `ip netns exec` enters the pod's namespace and execs the command (same pid). A
                # session of its own lets termination reach the workers it forks.
                c.proc = subprocess.Popen(["ip", "netns", "exec", self.sandbox.netns, *argv], env=env,
                                          cwd=self.dir, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        except Exception as error:
            log.error("pod %s/%s: cannot start %s: %s", self.namespace, self.pod_name, c.name, error)
            c.state = {"waiting": {"reason": "CreateContainerError", "message": str(error)}}
            c.proc = None
            self._back_off(c)
            self._write_status()
            return False
        c.state = {"running": {"startedAt": now_rfc3339()}}
        c.started = True
        c.ready = False
        c.probe_ok = c.probe_fail = c.liveness_fail = 0
        probe = c.spec.get("livenessProbe") or {}
        c.next_liveness = time.monotonic() + float(probe.get("initialDelaySeconds", 0)) + float(
            probe.get("periodSeconds", 10))
        self._event("Normal", "Started", f"Started container {c.name}")
        return True

    def _terminated(self, c: Container, code: int) -> None:
        message = ""
        host, _ = self._termination_file(c)
        if host is not None:
            try:
                with open(host, "rb") as f:
                    # A kubelet keeps at most 4096 bytes of the file.
                    message = f.read(MAX_TERMINATION_MESSAGE).decode(errors="replace")
            except OSError:
                message = ""
        policy = c.spec.get("terminationMessagePolicy", "File")
        if not message.strip() and code != 0 and policy == "FallbackToLogsOnError":
            message = _tail(self.dir / "logs" / f"{c.name}.log")
        started = c.state.get("running", {}).get("startedAt", now_rfc3339())
        term: dict[str, Any] = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                "startedAt": started, "finishedAt": now_rfc3339(), "containerID": c.status().get(
                                    "containerID", "")}
        if code < 0:  # killed by a signal: report it as a runtime does (128 + signal)
            term["exitCode"] = 128 - code
            term["signal"] = -code
        if message:
            term["message"] = message
        c.state = {"terminated": term}
        c.ready = False
        c.started = False
        if code != 0:
            self._event("Warning", "BackOff" if c.restart_count else "Failed",
                        f"container {c.name} exited with {term['exitCode']}: {message[-300:]}")

    def _back_off(self, c: Container) -> None:
        """Schedule a restart 10s, 20s, 40s ... 5 min after the last failure, as the kubelet does.

        Unlike the kubelet (which shows `waiting: CrashLoopBackOff`), the terminated state with its
        exit code and message stays in `state` during the back-off, and moves to `lastState` on
        restart, so the reason a pod is stuck is always readable in one place or the other.
        """
        c.backoff = min(300.0, c.backoff * 2) if c.backoff else self.kubelet.initial_backoff_s
        c.next_start = time.monotonic() + c.backoff

    def _pre_stop(self, c: Container, deadline: float) -> None:
        """Run a container's preStop hook (sleep, exec or httpGet) within the grace period."""
        hook = (c.spec.get("lifecycle") or {}).get("preStop") or {}
        remaining = deadline - time.monotonic()
        if not hook or remaining <= 0:
            return
        try:
            if "sleep" in hook:
                # Cut short only if the pod is force-deleted meanwhile.
                self.gone.wait(min(remaining, float(hook["sleep"].get("seconds", 0))))
            elif "exec" in hook:
                mounts = self._mounts(c.spec)
                words = [self._rewrite(w, mounts) for w in hook["exec"].get("command") or []]
                if words and "/" not in words[0]:
                    words[0] = shutil.which(words[0], path=f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin") or words[0]
                subprocess.run(["ip", "netns", "exec", self.sandbox.netns, *words], timeout=remaining,
                               capture_output=True, cwd=self.dir)
            elif "httpGet" in hook:
                self._probe_once(c, {"httpGet": hook["httpGet"], "timeoutSeconds": remaining})
        except Exception as error:  # a failed hook does not stop the termination
            self._event("Warning", "FailedPreStopHook", f"preStop hook of {c.name} failed: {error}")

    def _kill_all(self, grace_until: float | None) -> None:
        """preStop hooks, then SIGTERM to each container's main process, then SIGKILL after the grace period."""
        deadline = grace_until if grace_until is not None else time.monotonic()
        running = [c for c in self.init_containers + self.containers if c.proc and c.proc.poll() is None]
        hooks = [threading.Thread(target=self._pre_stop, args=(c, deadline), daemon=True)
                 for c in running if not c.init]
        for hook in hooks:
            hook.start()
        for hook in hooks:
            hook.join(max(0.0, deadline - time.monotonic()))
        procs = [c.proc for c in running if c.proc is not None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        if procs:
            self._event("Normal", "Killing", "Stopping containers")
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
        for c in self.init_containers + self.containers:
            if c.proc is not None and "running" in c.state and c.proc.poll() is not None:
                self._terminated(c, c.proc.returncode)
        if self.sandbox.netns in list_netns():
            _kill_netns_processes(self.sandbox.netns)

    # ------------------------------------------------------------ probes

    def _probe_once(self, c: Container, probe: dict[str, Any]) -> bool:
        timeout = float(probe.get("timeoutSeconds", 1))
        if "httpGet" in probe:
            get = probe["httpGet"]
            port = self._port(c, get.get("port"))
            host = get.get("host") or self.ip
            if host != self.ip and not host.startswith("127."):
                return False  # never dial anything but the pod itself
            try:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
                conn.request("GET", get.get("path", "/"), headers={"User-Agent": "kube-probe/1.34"})
                status = conn.getresponse().status
                conn.close()
            except OSError:
                return False
            return 200 <= status < 400
        if "tcpSocket" in probe:
            try:
                with socket.create_connection((self.ip, self._port(c, probe["tcpSocket"].get("port"))), timeout):
                    return True
            except OSError:
                return False
        if "exec" in probe:
            cmd = probe["exec"].get("command") or []
            try:
                return subprocess.run(["ip", "netns", "exec", self.sandbox.netns, *cmd], timeout=timeout,
                                      capture_output=True).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                return False
        return True

    @staticmethod
    def _port(c: Container, port: Any) -> int:
        if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
            return int(port)
        for p in c.spec.get("ports") or []:
            if p.get("name") == port:
                return int(p["containerPort"])
        raise ValueError(f"container {c.name} has no port named {port!r}")

    def _probe(self, c: Container) -> None:
        readiness = c.spec.get("readinessProbe")
        if readiness is None:
            c.ready = True
        else:
            # Every second rather than every periodSeconds: tests wait on readiness, and a pod
            # should turn Ready as soon as its server answers.
            if self._probe_once(c, readiness):
                c.probe_ok += 1
                c.probe_fail = 0
                if c.probe_ok >= int(readiness.get("successThreshold", 1)):
                    c.ready = True
            else:
                c.probe_fail += 1
                c.probe_ok = 0
                if c.probe_fail >= int(readiness.get("failureThreshold", 3)) or not c.ready:
                    c.ready = False
        liveness = c.spec.get("livenessProbe")
        if liveness is not None and time.monotonic() >= c.next_liveness:
            c.next_liveness = time.monotonic() + float(liveness.get("periodSeconds", 10))
            if self._probe_once(c, liveness):
                c.liveness_fail = 0
            else:
                c.liveness_fail += 1
                if c.liveness_fail >= int(liveness.get("failureThreshold", 3)) and c.proc is not None:
                    self._event("Warning", "Unhealthy", f"Liveness probe failed; restarting container {c.name}")
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(c.proc.pid, signal.SIGTERM)

    # ------------------------------------------------------------ status

    def _condition(self, kind: str, ok: bool, reason: str = "") -> dict[str, Any]:
        status = "True" if ok else "False"
        previous = self.transitions.get(kind)
        if previous is None or previous[0] != status:
            self.transitions[kind] = (status, now_rfc3339())
        cond: dict[str, Any] = {"type": kind, "status": status, "lastTransitionTime": self.transitions[kind][1]}
        if reason and not ok:
            cond["reason"] = reason
        return cond

    def _status(self) -> dict[str, Any]:
        containers_ready = bool(self.containers) and all(c.ready for c in self.containers)
        not_ready = [c.name for c in self.containers if not c.ready]
        reason = "PodCompleted" if self.phase in ("Succeeded", "Failed") else "ContainersNotReady"
        conditions = [
            self._condition("PodReadyToStartContainers", not self.sandbox_error and not self.terminating),
            self._condition("Initialized", self.initialized, "ContainersNotInitialized"),
            self._condition("Ready", containers_ready, reason),
            self._condition("ContainersReady", containers_ready, reason),
            self._condition("PodScheduled", True),
        ]
        for cond in conditions:
            if cond["type"] in ("Ready", "ContainersReady") and not containers_ready and not_ready:
                cond["message"] = f"containers with unready status: [{' '.join(not_ready)}]"
        if not self.initialized:
            pending = [c.name for c in self.init_containers if "terminated" not in c.state
                       or c.state["terminated"].get("exitCode") != 0]
            conditions[1]["message"] = f"containers with incomplete status: [{' '.join(pending)}]"
        status: dict[str, Any] = {
            "phase": self.phase, "conditions": conditions,
            "hostIP": self.kubelet.node_ip, "hostIPs": [{"ip": self.kubelet.node_ip}],
            "podIP": self.ip, "podIPs": [{"ip": self.ip}], "startTime": self.start_time,
            "containerStatuses": [c.status() for c in self.containers],
        }
        if self.init_containers:
            status["initContainerStatuses"] = [c.status() for c in self.init_containers]
        if self.sandbox_error:
            status["message"] = f"sandbox: {self.sandbox_error}"
        return status

    def _write_status(self, force: bool = False) -> None:
        status = self._status()
        if status == self.last_written and not force:
            return
        try:
            self.kubelet.api.merge_patch(f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}/status",
                                         {"status": status})
            self.last_written = status
        except ApiError as error:
            if error.status == 404:
                self.gone.set()
            else:
                log.warning("pod %s/%s: status not written: %s", self.namespace, self.pod_name, error)
        except requests.RequestException as error:
            log.warning("pod %s/%s: status not written: %s", self.namespace, self.pod_name, error)

    def _delete_from_api(self) -> None:
        """Remove the pod object for good (grace 0), as a kubelet does once its containers are gone."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                "preconditions": {"uid": self.uid}}
        try:
            self.kubelet.api.request("DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{self.pod_name}", body)
        except ApiError as error:
            if error.status not in (404, 409):
                log.warning("pod %s/%s: not deleted: %s", self.namespace, self.pod_name, error)
        except requests.RequestException as error:
            log.warning("pod %s/%s: not deleted: %s", self.namespace, self.pod_name, error)

    def _event(self, kind: str, reason: str, message: str) -> None:
        self.kubelet.event(self.pod, kind, reason, message)


# ---------------------------------------------------------------- claims


def create_claim(api: KubeAPI, namespace: str, name: str, claims_root: Path = CLAIMS_ROOT,
                 size: str = "1Gi") -> dict[str, Any]:
    """A PersistentVolumeClaim and a PersistentVolume bound to it (the PV controller completes the binding),
    so the scheduler places pods that mount the claim. The PV's hostPath is the claim's shared directory,
    which is also where NetKubelet maps the claim; returns the PVC as created."""
    path = claims_root / namespace / name
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o1777)
    pv_name = f"modelops-{hashlib.sha1(f'{namespace}/{name}'.encode()).hexdigest()[:10]}-{name}"[:63].rstrip("-.")
    pv = {"apiVersion": "v1", "kind": "PersistentVolume",
          "metadata": {"name": pv_name, "labels": {"modelops.dev/claim-namespace": namespace}},
          "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteMany"],
                   "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                   "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
                   "claimRef": {"namespace": namespace, "name": name}}}
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": namespace},
           "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": size}},
                    "storageClassName": "", "volumeName": pv_name}}
    for path_, body in (("/api/v1/persistentvolumes", pv),
                        (f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", pvc)):
        try:
            api.request("POST", path_, body)
        except ApiError as error:
            if error.status != 409:
                raise
    return pvc


# ---------------------------------------------------------------- the kubelet


class NetKubelet:
    """One node whose pods run for real. `start()` returns once the Node is registered and Ready."""

    def __init__(self, kubeconfig: str | Path = DEFAULT_KUBECONFIG, node_name: str = DEFAULT_NODE,
                 pod_cidr: str = DEFAULT_CIDR, *, pool: str = "true", taint: bool = True,
                 labels: dict[str, str] | None = None,
                 state_dir: Path | None = None, initial_backoff_s: float = 10.0,
                 stop_grace_s: float = STOP_GRACE_S, claims_root: Path = CLAIMS_ROOT) -> None:
        self.api = KubeAPI(kubeconfig)
        self.node_name = node_name
        self.pod_cidr = str(ipaddress.ip_network(pod_cidr))
        self.pool = pool
        self.taint = taint
        self.labels = labels or {}
        self.node_ip = "127.0.0.1"  # as kwok's nodes: nothing ever needs to dial the node itself
        self.tag = node_tag(node_name)
        self.state_dir = state_dir or STATE_ROOT / node_name
        self.initial_backoff_s = initial_backoff_s
        self.stop_grace_s = stop_grace_s
        self.claims_root = claims_root
        self.runners: dict[str, PodRunner] = {}
        # Pods that ended here, by uid (monotonic time): a list taken before their end must not
        # start them again.
        self.ended: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    # ------------------------------------------------------------ public

    @property
    def netns_prefix(self) -> str:
        """Every network namespace this node makes starts with this."""
        return netns_prefix(self.node_name)

    def start(self) -> NetKubelet:
        if os.geteuid() != 0:
            raise RuntimeError("NetKubelet needs root (network namespaces)")
        if shutil.which("ip") is None:
            raise RuntimeError("NetKubelet needs iproute2 (`ip`)")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._clean_stale()
        self._register_node()
        self._renew_lease()
        for target, name in ((self._heartbeat_loop, "heartbeat"), (self._watch_loop, "watch"),
                             (self._resync_loop, "resync")):
            thread = threading.Thread(target=target, name=f"netkubelet-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        log.info("node %s registered (podCIDR %s)", self.node_name, self.pod_cidr)
        return self

    def stop(self) -> None:
        """Stop every pod (deleting it from the API), tear the namespaces down, delete the Node."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        # Cordon first, so the ReplicaSets' replacements of the pods deleted below stay Pending.
        with contextlib.suppress(Exception):
            self.api.merge_patch(f"/api/v1/nodes/{self.node_name}", {"spec": {"unschedulable": True}})
        with self.lock:
            runners = list(self.runners.values())
        for runner in runners:
            runner.shutdown(self.stop_grace_s)
        for runner in runners:
            runner.join(self.stop_grace_s + 30)
        for thread in self.threads:
            thread.join(5)
        self._clean_stale()
        for path in (f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node_name}",
                     f"/api/v1/nodes/{self.node_name}"):
            with contextlib.suppress(ApiError, requests.RequestException):
                self.api.request("DELETE", path)
        log.info("node %s stopped", self.node_name)

    def __enter__(self) -> NetKubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pod_netns(self, namespace: str, name: str) -> str | None:
        """The network namespace of a pod this node runs (None when it does not run it)."""
        with self.lock:
            for runner in self.runners.values():
                if runner.namespace == namespace and runner.pod_name == name:
                    return runner.sandbox.netns
        return None

    def claim_dir(self, namespace: str, claim: str) -> Path:
        """The host directory that is PersistentVolumeClaim namespace/claim on every node of this checkout."""
        if "/" in namespace or "/" in claim or claim in (".", "..") or namespace in (".", ".."):
            raise ValueError(f"not a namespace/claim name: {namespace}/{claim}")
        path = self.claims_root / namespace / claim
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o1777)
        return path

    def pod_log(self, namespace: str, name: str, container: str) -> str:
        """A container's log (all its runs), for test failure messages."""
        for path in (self.state_dir / "pods").glob(f"{namespace}_{name}_*/logs/{container}.log"):
            return path.read_text(errors="replace")
        return ""

    def owned_netns(self) -> list[str]:
        """The network namespaces of this node that exist on the machine right now."""
        return [ns for ns in list_netns() if ns.startswith(self.netns_prefix)]

    # ------------------------------------------------------------ node

    def _node_status(self) -> dict[str, Any]:
        now = now_rfc3339()
        resources = {"cpu": "8", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}

        def cond(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
            return {"type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": now, "lastTransitionTime": self._started_at}

        return {
            "capacity": resources, "allocatable": resources,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "netkubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": self.node_ip},
                          {"type": "Hostname", "address": self.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": os.uname().release,
                         "osImage": "netkubelet", "containerRuntimeVersion": "netkubelet://0.1",
                         "kubeletVersion": "v1.34.4", "kubeProxyVersion": "", "operatingSystem": "linux",
                         "architecture": "amd64"},
        }

    def _register_node(self) -> None:
        self._started_at = now_rfc3339()
        labels = {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "amd64", REAL_PODS_KEY: self.pool, "type": "netkubelet", **self.labels}
        spec: dict[str, Any] = {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr], "unschedulable": False}
        spec["taints"] = ([{"key": REAL_PODS_KEY, "value": self.pool, "effect": "NoSchedule"}] if self.taint else [])
        node = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "labels": labels,
                             # No kwok.x-k8s.io/node annotation: kwok must leave this node alone.
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
                "spec": spec}
        try:
            self.api.request("POST", "/api/v1/nodes", node)
        except ApiError as error:
            if error.status != 409:
                raise
            existing = self.api.get(f"/api/v1/nodes/{self.node_name}")
            if existing["spec"].get("podCIDR") not in (None, self.pod_cidr):
                raise RuntimeError(f"node {self.node_name} exists with podCIDR {existing['spec']['podCIDR']}, "
                                   f"not {self.pod_cidr}") from error
            self.api.merge_patch(f"/api/v1/nodes/{self.node_name}", {"metadata": {"labels": labels}, "spec": spec})
        self.api.merge_patch(f"/api/v1/nodes/{self.node_name}/status", {"status": self._node_status()})

    def _renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.node_name}"
        spec = {"holderIdentity": self.node_name, "leaseDurationSeconds": 40, "renewTime": now_micro()}
        try:
            self.api.merge_patch(path, {"spec": spec})
        except ApiError as error:
            if error.status != 404:
                raise
            node = self.api.get(f"/api/v1/nodes/{self.node_name}")
            # Owned by the Node, as the kubelet's lease is, so deleting the Node collects it.
            owner = {"apiVersion": "v1", "kind": "Node", "name": self.node_name, "uid": node["metadata"]["uid"]}
            self.api.request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                             {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                              "metadata": {"name": self.node_name, "namespace": "kube-node-lease",
                                           "ownerReferences": [owner]}, "spec": spec})

    def _heartbeat_loop(self) -> None:
        while not self.stopping.wait(10):
            try:
                self._renew_lease()
                self.api.merge_patch(f"/api/v1/nodes/{self.node_name}/status", {"status": self._node_status()})
            except ApiError as error:
                if error.status == 404:
                    log.warning("node %s disappeared; registering it again", self.node_name)
                    with contextlib.suppress(Exception):
                        self._register_node()
                else:
                    log.warning("heartbeat failed: %s", error)
            except Exception as error:
                log.warning("heartbeat failed: %s", error)

    # ------------------------------------------------------------ pods

    def _pods_path(self) -> tuple[str, dict[str, Any]]:
        return "/api/v1/pods", {"fieldSelector": f"spec.nodeName={self.node_name}"}

    def _list_pods(self) -> tuple[list[dict[str, Any]], str]:
        path, params = self._pods_path()
        out = self.api.get(path, **params)
        return out.get("items") or [], out["metadata"]["resourceVersion"]

    def _watch_loop(self) -> None:
        version = ""
        while not self.stopping.is_set():
            try:
                if not version:
                    listed_at = time.monotonic()
                    pods, version = self._list_pods()
                    self._sync(pods, listed_at)
                path, params = self._pods_path()
                for event in self.api.watch(path, {**params, "resourceVersion": version}, self.stopping):
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        version = ""  # expired resourceVersion: list again
                        break
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._admit_or_update(obj)
                    elif event["type"] == "DELETED":
                        self._gone(obj["metadata"]["uid"])
            except Exception as error:
                if not self.stopping.is_set():
                    log.warning("pod watch failed (%s); listing again", error)
                    version = ""
                    self.stopping.wait(1)

    def _resync_loop(self) -> None:
        # A missed watch event must never leave a pod unstarted or a deleted pod running.
        while not self.stopping.wait(10):
            try:
                listed_at = time.monotonic()
                pods, _ = self._list_pods()
                self._sync(pods, listed_at)
            except Exception as error:
                log.warning("resync failed: %s", error)

    def _sync(self, pods: list[dict[str, Any]], listed_at: float) -> None:
        """Reconcile with a full list taken at `listed_at` (pods admitted since are not in it)."""
        present = {p["metadata"]["uid"] for p in pods}
        with self.lock:
            vanished = [uid for uid, r in self.runners.items() if uid not in present and r.admitted_at < listed_at]
            self.ended = {uid: at for uid, at in self.ended.items() if at > listed_at - 600}
            stale = {uid for uid, at in self.ended.items() if at > listed_at}
        for uid in vanished:
            self._gone(uid)
        for pod in pods:
            if pod["metadata"]["uid"] not in stale:
                self._admit_or_update(pod)

    def _admit_or_update(self, pod: dict[str, Any]) -> None:
        if pod["spec"].get("nodeName") != self.node_name or self.stopping.is_set():
            return
        uid = pod["metadata"]["uid"]
        with self.lock:
            runner = self.runners.get(uid)
            if runner is None:
                if uid in self.ended and not pod["metadata"].get("deletionTimestamp"):
                    # Ended here; still listed because its deletion has not reached us yet (or the
                    # runner crashed: then the pod is started again once the entry expires).
                    if time.monotonic() - self.ended[uid] < 30:
                        return
                    del self.ended[uid]
                if pod["metadata"].get("deletionTimestamp"):
                    # Deleted before (or after) we ran it: nothing runs, so it can go at once.
                    threading.Thread(target=self._delete_pod, args=(pod,), daemon=True).start()
                    return
                if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                    return
                ip = self._allocate(pod)
                if ip is None:
                    log.error("pod %s/%s: no free address in %s", pod["metadata"]["namespace"],
                              pod["metadata"]["name"], self.pod_cidr)
                    return
                runner = PodRunner(self, pod, ip)
                self.runners[uid] = runner
                log.info("pod %s/%s admitted at %s", runner.namespace, runner.pod_name, ip)
                runner.start()
                return
        runner.update(pod)

    def _allocate(self, pod: dict[str, Any]) -> str | None:
        """A free address of the podCIDR; a pod that already has one (a restarted kubelet) keeps it."""
        network = ipaddress.ip_network(self.pod_cidr)
        used = {r.ip for r in self.runners.values()}
        current = pod.get("status", {}).get("podIP")
        if current and ipaddress.ip_address(current) in network and current not in used:
            return str(current)
        for host in list(network.hosts())[1:]:  # .1 is left out, as a bridge's gateway would be
            if str(host) not in used:
                return str(host)
        return None

    def _gone(self, uid: str) -> None:
        with self.lock:
            runner = self.runners.get(uid)
        if runner is not None:
            runner.gone.set()
            runner.wake.set()

    def _delete_pod(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}}
        with contextlib.suppress(ApiError, requests.RequestException):
            self.api.request("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body)

    def forget(self, uid: str) -> None:
        with self.lock:
            self.runners.pop(uid, None)
            self.ended[uid] = time.monotonic()

    def _clean_stale(self) -> None:
        """Remove namespaces (and their processes) left by an earlier run of this node."""
        for ns in self.owned_netns():
            with self.lock:
                if any(r.sandbox.netns == ns for r in self.runners.values()):
                    continue
            log.info("removing stale network namespace %s", ns)
            _kill_netns_processes(ns)
            _ip("netns", "delete", ns, check=False)
        out = _ip("-o", "link", "show", check=False).stdout
        for match in re.finditer(rf"^\d+: (mo{self.tag}[0-9a-f]{{8}})[@:]", out, re.M):
            with self.lock:
                if any(r.sandbox.host_veth == match.group(1) for r in self.runners.values()):
                    continue
            _ip("link", "delete", match.group(1), check=False)

    def event(self, pod: dict[str, Any], kind: str, reason: str, message: str) -> None:
        """Record an Event on a pod, as the kubelet does (best effort)."""
        meta = pod["metadata"]
        now = now_rfc3339()
        body = {"apiVersion": "v1", "kind": "Event",
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": meta["namespace"],
                                   "name": meta["name"], "uid": meta["uid"]},
                "reason": reason, "message": message[:1000], "type": kind, "count": 1,
                "firstTimestamp": now, "lastTimestamp": now,
                "source": {"component": "kubelet", "host": self.node_name}, "reportingComponent": "kubelet",
                "reportingInstance": self.node_name}
        with contextlib.suppress(ApiError, requests.RequestException):
            self.api.request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body, timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.netkubelet", description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", type=Path, default=DEFAULT_KUBECONFIG)
    parser.add_argument("--node", default=DEFAULT_NODE)
    parser.add_argument("--cidr", default=DEFAULT_CIDR, help="the node's podCIDR (inside 10.244.0.0/16)")
    parser.add_argument("--pool", default="true", help="value of the node's modelops.dev/real-pods label and taint")
    parser.add_argument("--no-taint", action="store_true", help="let any pod be scheduled here")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(threadName)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    kubelet = NetKubelet(args.kubeconfig, args.node, args.cidr, pool=args.pool, taint=not args.no_taint).start()
    try:
        stop.wait()
    finally:
        kubelet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
