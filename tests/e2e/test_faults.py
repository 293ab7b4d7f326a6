"""The controller under faults, on the real control plane: kube-apiserver restarted in each rollout
phase, etcd stopped for 20 s mid-rollout, the leader killed mid-step with two replicas running,
50 concurrent `kubectl modelops` commands and spec edits against one object, and one object whose
Prometheus never answers while 50 others roll.

Each disturbed run must end in the same state as an undisturbed run of the same rollout (status,
Deployments, Events counted by reason; measured once per module by `undisturbed`), with no
duplicate child (one Deployment UID per revision, from a watch kept for the whole test) and no
action done twice (exactly one CanaryStarted and one Promoted). Pods run on kwok nodes and
analysis has no metrics wherever real serving is not needed, so a rollout takes seconds.
Run by `make test-faults` (not by `make test`: a minute or more each).
"""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from modelops.api.timefmt import parse_time

from demo.scenario import apply, condition, get, status
from devcluster import localcluster
from devcluster.localcluster import Cluster
from devcluster.watching import Watcher
from tests.conftest import OperatorProcess, wait_for
from tests.gitops import rbac

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.faults]
GROUP, VERSION, PLURAL = "modelops.dev", "v1alpha1", "modeldeployments"
NAME = "iris"
LEASE_SECONDS = 5
RETRY_SLACK_SECONDS = 5  # a standby retries every few seconds; it may notice the lapse one retry late
REVISION_LABEL = "modelops.dev/revision"
INSTANCE_LABEL = "app.kubernetes.io/instance"
# Two timed pauses: the "mid-canary pause" fault lands in the first one. The last weight is low so
# that promotion has pods to add (4 replicas, a canary of 2): the status shows Promoting meanwhile.
STEPS: list[dict[str, Any]] = [{"setWeight": 20}, {"pause": {"duration": "4s"}},
                               {"setWeight": 30}, {"pause": {"duration": "1s"}}]


def kwok_mdep(name: str, version: str, steps: list[dict[str, Any]] | None = None, *, replicas: int = 4,
              metrics: list[dict[str, Any]] | None = None, prometheus_url: str | None = None,
              interval: str = "1s") -> dict[str, Any]:
    """A ModelDeployment whose pods run on kwok nodes (Ready at once, nothing served)."""
    spec: dict[str, Any] = {
        "model": {"name": "iris", "version": version, "uri": "file:///models/iris/model.skops", "format": "skops"},
        "serving": {"replicas": replicas},
        "rollout": {"steps": STEPS if steps is None else steps,
                    "analysis": ({"interval": interval, "minRequests": 1, "metrics": metrics} if metrics
                                 else {"disabled": True})},
    }
    if prometheus_url:
        spec["monitoring"] = {"prometheusUrl": prometheus_url}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": name}, "spec": spec}


def healthy_on(version: str) -> Callable[[dict[str, Any]], bool]:
    def check(st: dict[str, Any]) -> bool:
        return (st.get("phase") == "Healthy" and (st.get("stable") or {}).get("modelVersion") == version
                and not (st.get("canary") or {}).get("revision") and condition(st, "Ready").get("status") == "True")
    return check


def api_client(cluster: Cluster) -> Any:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
    cfg.connection_pool_maxsize = 64
    return client.ApiClient(cfg)


# ------------------------------------------------------------------ what a run leaves behind


class Ledger:
    """Everything seen for the whole test: each Deployment UID per (object, revision), and each status
    of the watched objects in order. A watch across faults: it lists again after any break."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.lock = threading.Lock()
        self.uids: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        self.statuses: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        self.changed = threading.Condition(self.lock)
        api = api_client(cluster)
        self.watchers = [
            Watcher(api, namespace, "apps", "v1", "deployments", self._deployment, "app.kubernetes.io/managed-by"),
            Watcher(api, namespace, GROUP, VERSION, PLURAL, self._mdep),
        ]

    def __enter__(self) -> Ledger:
        for w in self.watchers:
            w.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for w in self.watchers:
            w.__exit__(*exc)

    def _deployment(self, event: str, obj: dict[str, Any], _: float) -> None:
        meta = obj["metadata"]
        labels = meta.get("labels") or {}
        with self.lock:
            self.uids[(labels.get(INSTANCE_LABEL, ""), labels.get(REVISION_LABEL, ""))].add(meta["uid"])

    def _mdep(self, event: str, obj: dict[str, Any], _: float) -> None:
        st = obj.get("status") or {}
        with self.changed:
            seen = self.statuses[obj["metadata"]["name"]]
            if not seen or seen[-1] != st:
                seen.append(st)
            self.changed.notify_all()

    def mark(self, name: str) -> int:
        """A position in the statuses of `name`, for `wait_status(since=...)`."""
        with self.lock:
            return max(0, len(self.statuses.get(name) or []) - 1)

    def wait_status(self, name: str, check: Callable[[dict[str, Any]], bool], what: str,
                    timeout: float = 90, since: int | None = None) -> dict[str, Any]:
        """The first status of `name` for which `check` holds: the current one or a later one, or with
        `since`, any seen from that `mark` on (so a passing state between two looks is not missed)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            index = since if since is not None else max(0, len(self.statuses.get(name) or []) - 1)
            while True:
                seen = self.statuses.get(name) or []
                for st in seen[index:]:
                    if check(st):
                        return st
                index = max(index, len(seen) - 1) if seen else 0
                left = deadline - time.monotonic()
                if left <= 0:
                    last = seen[-1] if seen else {}
                    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last status phase "
                                         f"{last.get('phase')!r}: {last.get('message')!r}")
                self.changed.wait(min(left, 1.0))

    def duplicates(self) -> dict[tuple[str, str], set[str]]:
        """(object, revision) pairs that had more than one Deployment: a child made twice."""
        with self.lock:
            return {k: set(v) for k, v in self.uids.items() if len(v) > 1}

    def revisions(self, name: str) -> int:
        with self.lock:
            return sum(1 for (instance, _) in self.uids if instance == name)


def event_counts(cluster: Cluster, namespace: str, name: str) -> dict[tuple[str, str], int]:
    """Events of the ModelDeployment by (type, reason), an aggregated Event counting as many as it says.
    Only its own: its PodDisruptionBudget has the same name, and the disruption controller's NoPods
    Events on it come as often as that controller's timing makes them, not from anything we did."""
    selector = f"involvedObject.name={name},involvedObject.kind=ModelDeployment"
    items = get(cluster, namespace, "events", "--field-selector", selector).get("items", [])
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    for e in items:
        counts[(e.get("type") or "Normal", e.get("reason") or "")] += int(
            e.get("count") or (e.get("series") or {}).get("count") or 1)
    return dict(counts)


def final_state(cluster: Cluster, namespace: str, name: str, ledger: Ledger) -> dict[str, Any]:
    """What an undisturbed and a disturbed run must agree on."""
    st = status(cluster, namespace, name)
    deployments = get(cluster, namespace, "deployments", "-l", f"{INSTANCE_LABEL}={name}").get("items", [])
    return {
        "phase": st.get("phase"),
        "stable": {k: (st.get("stable") or {}).get(k) for k in ("modelVersion", "replicas", "readyReplicas")},
        "canary": bool((st.get("canary") or {}).get("revision")),
        "history": [(h.get("modelVersion"), h.get("outcome")) for h in st.get("history") or []],
        "conditions": {c["type"]: c["status"] for c in st.get("conditions") or []},
        "deployments": sorted(int((d.get("spec") or {}).get("replicas") or 0) for d in deployments
                              if not d["metadata"].get("deletionTimestamp")),
        "revisions_made": ledger.revisions(name),
    }


def assert_like_undisturbed(cluster: Cluster, namespace: str, ledger: Ledger, reference: dict[str, Any]) -> None:
    assert not ledger.duplicates(), f"children made twice (revision -> UIDs): {ledger.duplicates()}"
    # The old stable Deployment goes after promotion; wait for that before comparing.
    wait_for(lambda: final_state(cluster, namespace, NAME, ledger)["deployments"] == reference["state"]["deployments"],
             "the Deployments of an undisturbed run", timeout=60)
    state = final_state(cluster, namespace, NAME, ledger)
    assert state == reference["state"], f"disturbed run ended in {state}, undisturbed in {reference['state']}"
    counts = event_counts(cluster, namespace, NAME)
    normal = {reason: n for (type_, reason), n in counts.items() if type_ == "Normal"}
    assert normal.get("CanaryStarted") == 1 and normal.get("Promoted") == 1, counts
    expected = {reason: n for (type_, reason), n in reference["events"].items() if type_ == "Normal"}
    twice = {reason: n for reason, n in normal.items() if n > expected.get(reason, 0)}
    assert not twice, f"Events beyond an undisturbed run's {expected}: {twice}"


def roll_v1_to_v2(cluster: Cluster, namespace: str, ledger: Ledger,
                  fault: Callable[[], None] | None = None, fault_when: str | None = None) -> None:
    """v1 deployed, then v2 canaried through STEPS to promotion; `fault` runs once the status first shows
    `fault_when` ("deploying": the first Deployment exists; otherwise a status predicate name)."""
    apply(cluster, namespace, kwok_mdep(NAME, "1"))
    if fault_when == "deploying":
        wait_for(lambda: ledger.revisions(NAME) >= 1, "the first Deployment", timeout=60, interval=0.02)
        assert fault is not None
        fault()
    ledger.wait_status(NAME, healthy_on("1"), "v1 Healthy")
    since = ledger.mark(NAME)
    apply(cluster, namespace, kwok_mdep(NAME, "2"))
    if fault_when in FAULT_POINTS:
        assert fault is not None
        ledger.wait_status(NAME, FAULT_POINTS[fault_when], f"the rollout to reach {fault_when}", timeout=60,
                           since=since)
        fault()
    ledger.wait_status(NAME, healthy_on("2"), "v2 promoted", timeout=120)


def _at_pause(st: dict[str, Any]) -> bool:
    canary = st.get("canary") or {}
    return canary.get("modelVersion") == "2" and canary.get("stepIndex") == 1


def _promoting(st: dict[str, Any]) -> bool:
    canary = st.get("canary") or {}
    return canary.get("modelVersion") == "2" and (st.get("phase") == "Promoting"
                                                   or int(canary.get("stepIndex") or 0) >= len(STEPS))


FAULT_POINTS: dict[str, Callable[[dict[str, Any]], bool]] = {"mid-canary pause": _at_pause, "promoting": _promoting}


# ------------------------------------------------------------------ operators


def lease_name(namespace: str) -> str:
    """One Lease per test, in the operator's own namespace (where the shipped RBAC grants Leases): a
    leader a test SIGKILLed leaves its Lease held, and the next test must not wait it out."""
    return f"faults-{namespace}"[:63].rstrip("-")


class Operators:
    """Operator processes of one test, scoped to the test's namespace, each acting as the operator's
    ServiceAccount under the shipped RBAC (a permission a fault path needs fails here, not on a user)."""

    def __init__(self, cluster: Cluster, namespace: str, log_dir: Path) -> None:
        self.cluster, self.namespace, self.log_dir = cluster, namespace, log_dir
        self.started: list[OperatorProcess] = []
        self.kubeconfig: Path | None = None
        # A restarted kube-apiserver answers 403 for a moment, until its RBAC caches are filled
        # again: refusals are then expected (the run must still end as the undisturbed one).
        self.control_plane_restarted = False

    def start(self, *, leader_elect: bool = False) -> OperatorProcess:
        if self.kubeconfig is None:
            self.kubeconfig = rbac.operator_kubeconfig(self.cluster, self.log_dir / "operator.kubeconfig")
        index = len(self.started)
        args = ["--namespace", self.namespace, "--workers", "16"]
        if leader_elect:
            args += ["--leader-elect", "--lease-namespace", rbac.OPERATOR_NAMESPACE,
                     "--lease-name", lease_name(self.namespace), "--lease-duration", str(LEASE_SECONDS)]
        else:
            args += ["--no-leader-elect"]
        op = OperatorProcess(self.cluster, self.log_dir / f"operator-{index}.log", args,
                             kubeconfig=self.kubeconfig, pod_namespace=rbac.OPERATOR_NAMESPACE)
        op.start()
        self.started.append(op)
        return op

    def stop_all(self) -> None:
        for op in self.started:
            op.stop()

    def refusals(self) -> list[str]:
        """Lines of the operators' logs in which the shipped RBAC refused a request."""
        return rbac.refusals([op.log for op in self.started])


@pytest.fixture
def operators(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Operators]:
    ops = Operators(cluster, namespace, tmp_path)
    yield ops
    ops.stop_all()
    print(f"\noperator logs: {tmp_path}")
    if not ops.control_plane_restarted and (refused := ops.refusals()):
        pytest.fail("the shipped RBAC refused the operator:\n" + "\n".join(refused[:5]))


@pytest.fixture(scope="module")
def undisturbed(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The v1 -> v2 rollout with nothing disturbing it: the state every fault test must end in."""
    namespace = f"t-faults-reference-{int(time.time() * 1000) % 100000}"
    cluster.kubectl("create", "namespace", namespace)
    ops = Operators(cluster, namespace, tmp_path_factory.mktemp("reference"))
    try:
        wait_for(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", namespace, "-o", "name",
                                         check=False), "the namespace's default service account")
        ops.start()
        with Ledger(cluster, namespace) as ledger:
            roll_v1_to_v2(cluster, namespace, ledger)
            assert not ledger.duplicates()
            wait_for(lambda: final_state(cluster, namespace, NAME, ledger)["deployments"] == [4],
                     "one Deployment left after promotion", timeout=60)
            reference = {"state": final_state(cluster, namespace, NAME, ledger),
                         "events": event_counts(cluster, namespace, NAME)}
        yield reference
    finally:
        ops.stop_all()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# ------------------------------------------------------------------ the faults


@pytest.mark.parametrize("phase", ["deploying", "mid-canary pause", "promoting"])
def test_apiserver_restart_in_each_phase(cluster: Cluster, namespace: str, operators: Operators,
                                         undisturbed: dict[str, Any], phase: str) -> None:
    operators.start()
    operators.control_plane_restarted = True
    downtime: list[float] = []
    with Ledger(cluster, namespace) as ledger:
        roll_v1_to_v2(cluster, namespace, ledger, lambda: downtime.append(localcluster.restart_apiserver(cluster)),
                      phase)
        assert downtime, f"the fault point {phase!r} was never reached"
        assert operators.started[0].running(), "the operator exited during the restart"
        assert_like_undisturbed(cluster, namespace, ledger, undisturbed)


def test_etcd_stopped_for_20s_mid_rollout(cluster: Cluster, namespace: str, operators: Operators,
                                          undisturbed: dict[str, Any]) -> None:
    operators.start()
    operators.control_plane_restarted = True

    def outage() -> None:
        localcluster.stop_component(cluster, "etcd")
        try:
            time.sleep(20)  # the length of the outage under test, not a wait for something
        finally:
            localcluster.start_etcd(cluster)
        wait_for(lambda: localcluster.healthy(cluster), "kube-apiserver ready again after etcd", timeout=60)

    with Ledger(cluster, namespace) as ledger:
        roll_v1_to_v2(cluster, namespace, ledger, outage, "mid-canary pause")
        assert operators.started[0].running(), "the operator exited during the etcd outage"
        assert_like_undisturbed(cluster, namespace, ledger, undisturbed)


def _lease(cluster: Cluster, namespace: str) -> dict[str, Any]:
    return get(cluster, rbac.OPERATOR_NAMESPACE, "lease", lease_name(namespace)).get("spec") or {}


def _leaders(ops: list[OperatorProcess]) -> list[OperatorProcess]:
    out = []
    for op in ops:
        try:
            if op.running() and op.metric("modelops_leader") == 1:
                out.append(op)
        except OSError:
            continue
    return out


def test_leader_killed_mid_step_the_other_carries_on(cluster: Cluster, namespace: str, operators: Operators,
                                                     undisturbed: dict[str, Any]) -> None:
    replicas = [operators.start(leader_elect=True), operators.start(leader_elect=True)]
    leader = wait_for(lambda: _leaders(replicas), "one operator to lead", timeout=60)
    assert len(leader) == 1, "two operators lead at once"
    killed: dict[str, Any] = {}

    def kill_leader() -> None:
        lease = _lease(cluster, namespace)
        killed["holder"], killed["renewed"] = lease.get("holderIdentity"), lease.get("renewTime")
        leader[0].kill()

    with Ledger(cluster, namespace) as ledger:
        roll_v1_to_v2(cluster, namespace, ledger, kill_leader, "mid-canary pause")
        lease = _lease(cluster, namespace)
        assert killed and lease.get("holderIdentity") not in (None, killed["holder"]), lease
        survivor = next(op for op in replicas if op is not leader[0])
        assert _leaders([survivor]) == [survivor]
        assert_like_undisturbed(cluster, namespace, ledger, undisturbed)
    # The standby took the Lease once it lapsed: its acquireTime is within one lease duration (plus a
    # retry period of slack) of the dead leader's last renewal, both as the Lease records them.
    assert int(lease.get("leaseTransitions") or 0) >= 1, lease
    gap = (parse_time(lease["acquireTime"]) - parse_time(killed["renewed"])).total_seconds()
    print(f"\nlease taken over {gap:.1f}s after the dead leader's last renewal (lease {LEASE_SECONDS}s)")
    assert gap <= LEASE_SECONDS + RETRY_SLACK_SECONDS, (killed, lease)


def test_concurrent_commands_and_spec_edits_end_consistent(cluster: Cluster, namespace: str,
                                                           operators: Operators) -> None:
    from kubernetes import client
    from modelops.cli import kubectl as plugin

    operators.start()
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 40}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]
    with Ledger(cluster, namespace) as ledger:
        apply(cluster, namespace, kwok_mdep(NAME, "1", steps))
        ledger.wait_status(NAME, healthy_on("1"), "v1 Healthy")
        apply(cluster, namespace, kwok_mdep(NAME, "2", steps))
        ledger.wait_status(NAME, lambda st: (st.get("canary") or {}).get("stepIndex") == 1, "v2 at its first pause")

        custom = client.CustomObjectsApi(api_client(cluster))
        kubeconfig = str(cluster.kubeconfig)
        commands = ["promote", "pause", "resume", "abort", "retry", "promote", "resume", "pause"]

        def command(i: int) -> int:
            if i % 5 == 4:  # one in five: a spec edit, as a GitOps sync would make it
                spec = ({"serving": {"replicas": 2 + (i // 10) % 2}} if i % 10 == 4
                        else {"model": {"version": str(3 + i % 3)}})
                custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NAME, {"spec": spec})
                return 0
            return plugin.main([commands[i % len(commands)], NAME, "-n", namespace, "--kubeconfig", kubeconfig])

        with ThreadPoolExecutor(50) as pool:
            codes = list(pool.map(command, range(50)))
        assert set(codes) <= {0, 1}, codes  # 1: refused by the plugin's own check (e.g. nothing to retry)

        # Every request written is taken by the controller, once.
        def all_handled() -> bool:
            obj = get(cluster, namespace, "mdep", NAME)
            asked = {k.removeprefix("modelops.dev/"): json.loads(v)["nonce"]
                     for k, v in (obj["metadata"].get("annotations") or {}).items()
                     if k.removeprefix("modelops.dev/") in set(commands) | {"undo"}}
            handled = (obj.get("status") or {}).get("handledCommands") or {}
            st = obj.get("status") or {}
            return (all(handled.get(c) == n for c, n in asked.items())
                    and st.get("observedGeneration") == obj["metadata"]["generation"])

        wait_for(all_handled, "every command annotation handled and the last spec observed", timeout=90)
        events = get(cluster, namespace, "events", "--field-selector", f"involvedObject.name={NAME}")["items"]
        nonces = collections.Counter(
            e["message"].rsplit("(request ", 1)[1].rstrip(")") for e in events
            for _ in range(int(e.get("count") or 1))
            if e.get("reason") == "CommandHandled" and "(request " in (e.get("message") or ""))
        assert all(n == 1 for n in nonces.values()), f"a command acted on twice: {nonces}"

        # Then drive it to a known end, as an SRE would: retry if aborted, promote to the end. (Without
        # --wait: the plugin tells an ignored request by an Event posted within a second of it, and
        # the storm just posted such Events for the same commands.)
        st = status(cluster, namespace, NAME)
        if (st.get("canary") or {}).get("aborted"):
            mark = ledger.mark(NAME)
            assert plugin.main(["retry", NAME, "-n", namespace, "--kubeconfig", kubeconfig]) == 0
            ledger.wait_status(NAME, lambda s: not (s.get("canary") or {}).get("aborted"), "the retried canary",
                               timeout=60, since=mark)
        spec_version = get(cluster, namespace, "mdep", NAME)["spec"]["model"]["version"]
        if (status(cluster, namespace, NAME).get("canary") or {}).get("revision"):
            assert plugin.main(["promote", "--full", NAME, "-n", namespace, "--kubeconfig", kubeconfig]) == 0
        final = ledger.wait_status(NAME, healthy_on(spec_version), f"v{spec_version} Healthy", timeout=90)
        assert not ledger.duplicates(), f"children made twice: {ledger.duplicates()}"
        wait_for(lambda: len([d for d in get(cluster, namespace, "deployments", "-l",
                                             f"{INSTANCE_LABEL}={NAME}")["items"]
                              if not d["metadata"].get("deletionTimestamp")]) == 1,
                 "one Deployment left", timeout=60)
        promoted = collections.Counter(h.get("revision") for h in final.get("history") or []
                                       if h.get("outcome") == "Promoted")
        assert all(n == 1 for n in promoted.values()), f"a revision promoted twice: {final.get('history')}"


class SilentPrometheus:
    """A loopback socket that accepts connections and never answers: a Prometheus that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)  # held open, never read from nor answered

    def __enter__(self) -> SilentPrometheus:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_silent_prometheus_does_not_hold_up_the_others(cluster: Cluster, namespace: str,
                                                       operators: Operators) -> None:
    from kubernetes import client

    operators.start()
    custom = client.CustomObjectsApi(api_client(cluster))
    quick = [f"q{i:02d}" for i in range(50)]
    steps = [{"setWeight": 50}]

    def roll_all(version: str, ledger: Ledger) -> float:
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, n, {"spec": {"model": {"version": version}}}), quick))
        for n in quick:
            ledger.wait_status(n, healthy_on(version), f"{n} promoted to v{version}", timeout=120)
        return time.monotonic() - started

    with SilentPrometheus() as prometheus, Ledger(cluster, namespace) as ledger:
        slow = kwok_mdep("slow", "1", [{"setWeight": 50}, {"pause": {"duration": "1s"}}], replicas=1,
                         metrics=[{"name": "errors", "builtin": "errorRate", "max": 0.02}],
                         prometheus_url=prometheus.url)
        apply(cluster, namespace, slow)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda n: custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, kwok_mdep(n, "1", steps, replicas=1)), quick))
        for n in [*quick, "slow"]:
            ledger.wait_status(n, healthy_on("1"), f"{n} Healthy", timeout=120)

        alone = roll_all("2", ledger)  # the 50 by themselves

        slow["spec"]["model"]["version"] = "2"
        apply(cluster, namespace, slow)
        wait_for(lambda: prometheus.accepted, "the operator to query the silent Prometheus", timeout=60)
        beside = roll_all("3", ledger)  # the 50 while the silent one's analysis hangs

        # Ordering, not a stopwatch: all 50 were promoted while the silent one still waited on its
        # analysis (never promoted on silence), and its queries kept hanging throughout.
        st = status(cluster, namespace, "slow")
        assert (st.get("canary") or {}).get("revision") and (st.get("stable") or {}).get("modelVersion") == "1", st
        assert (st.get("analysis") or {}).get("phase") != "Successful", st.get("analysis")
        assert "Promoted" not in [h.get("outcome") for h in st.get("history") or []][1:], st.get("history")
        print(f"\n50 rollouts: {alone:.1f}s alone, {beside:.1f}s beside a silent Prometheus")
