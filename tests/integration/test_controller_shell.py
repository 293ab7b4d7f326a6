"""The controller's shell against the real API server: status is written before any action (a
conflict leaves the cluster untouched), children are found by owner UID (a namesake's Deployments
are never adopted), a user's Service is left alone with a condition and an Event that say so, a
missing HTTPRoute is a condition, and an idle fleet costs no API requests, resyncs included."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelops.controller.cache import Cache, slim_mdep
from modelops.controller.kube import Conflict, Kube
from modelops.controller.metrics import OperatorMetrics
from modelops.controller.reconcile import Reconciler

from devcluster.localcluster import Cluster
from tests.conftest import OperatorProcess, wait_for

pytestmark = pytest.mark.integration
SAMPLE = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "iris.yaml"


def _json(cluster: Cluster, namespace: str, *what: str) -> dict[str, Any]:
    out = cluster.kubectl("get", *what, "-n", namespace, "-o", "json", check=False)
    return json.loads(out) if out.strip() else {}


def _events(cluster: Cluster, namespace: str) -> list[str]:
    items = _json(cluster, namespace, "events", "--field-selector", "involvedObject.kind=ModelDeployment")
    return [e["reason"] for e in items.get("items", [])]


def _condition(cluster: Cluster, namespace: str, type_: str) -> tuple[str, str]:
    for c in _json(cluster, namespace, "mdep", "iris").get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c["status"], c["reason"]
    return ("", "")


def _sample(name: str = "iris", **spec: Any) -> str:
    """The shipped sample on kwok pods: its pvc:// model would need a bound claim to schedule, and
    nothing is served here, so the model is a file:// path."""
    manifest = yaml.safe_load(SAMPLE.read_text())
    manifest["metadata"]["name"] = name
    manifest["spec"]["model"]["uri"] = "file:///models/iris/1/model.skops"
    manifest["spec"].update(spec)
    return json.dumps(manifest)


def _metric(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.M))


def test_a_conflicting_status_write_leaves_the_cluster_untouched(
        cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_sample())

    async def scenario() -> None:
        kube = Kube(threads=2)
        cache = Cache()
        reconciler = Reconciler(kube, cache, OperatorMetrics())
        stale = json.loads(cluster.kubectl("get", "mdep", "iris", "-n", namespace, "-o", "json"))
        stale.setdefault("apiVersion", "modelops.dev/v1alpha1")
        cache.mdeps.put((namespace, "iris"), slim_mdep(stale))
        # Someone (say `kubectl modelops abort`) writes between our read and our status write.
        cluster.kubectl("annotate", "mdep", "iris", "-n", namespace, "example.com/touched=1")
        with pytest.raises(Conflict):
            await reconciler.reconcile((namespace, "iris"))
        assert _json(cluster, namespace, "deployments")["items"] == []
        assert _events(cluster, namespace) == []
        assert "status" not in _json(cluster, namespace, "mdep", "iris")
        # The next reconcile reads the new version and acts once.
        fresh = json.loads(cluster.kubectl("get", "mdep", "iris", "-n", namespace, "-o", "json"))
        cache.mdeps.put((namespace, "iris"), slim_mdep(fresh))
        await reconciler.reconcile((namespace, "iris"))
        assert len(_json(cluster, namespace, "deployments")["items"]) == 1
        assert _events(cluster, namespace) == ["Deploying"]
        await reconciler.close()

    asyncio.run(scenario())


def test_a_namesake_does_not_adopt_the_deployments_of_the_object_it_replaces(
        cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_sample())
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "mdep/iris", "--timeout=90s")
    old = _json(cluster, namespace, "deployments")["items"][0]
    # Orphaned: the old Deployment stays, with no owner, under the name the new object wants.
    cluster.kubectl("delete", "mdep", "iris", "-n", namespace, "--cascade=orphan", "--wait=true")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_sample())
    wait_for(lambda: _condition(cluster, namespace, "Stalled") == ("True", "NameTaken"),
             "Stalled=True NameTaken on the new object")
    wait_for(lambda: "NameTaken" in _events(cluster, namespace), "a NameTaken Warning Event")
    same = _json(cluster, namespace, "deployment", old["metadata"]["name"])
    assert same["metadata"]["uid"] == old["metadata"]["uid"]
    assert not same["metadata"].get("ownerReferences")  # not adopted
    # The orphaned Service is not ours either; once both orphans are gone, the new object proceeds.
    assert not _json(cluster, namespace, "service", "iris")["metadata"].get("ownerReferences")
    cluster.kubectl("delete", "deployment", old["metadata"]["name"], "-n", namespace, "--wait=true")
    cluster.kubectl("delete", "service", "iris", "-n", namespace, "--wait=true")
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "mdep/iris", "--timeout=90s")
    new_uid = _json(cluster, namespace, "mdep", "iris")["metadata"]["uid"]
    owners = [d["metadata"]["ownerReferences"][0]["uid"] for d in _json(cluster, namespace, "deployments")["items"]]
    assert owners == [new_uid]


def test_a_users_service_is_left_alone_and_status_says_so(
        cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    theirs = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "iris"},
              "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 8080}]}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(theirs))
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_sample())
    wait_for(lambda: _condition(cluster, namespace, "Stalled") == ("True", "ServiceNotOwned"),
             "Stalled=True ServiceNotOwned")
    wait_for(lambda: "ServiceNotOwned" in _events(cluster, namespace), "a ServiceNotOwned Warning Event")
    # The pods still roll out; the user's Service is exactly theirs.
    wait_for(lambda: (_json(cluster, namespace, "mdep", "iris")["status"].get("stable") or {}).get(
        "readyReplicas") == 2, "2 ready replicas")
    service = _json(cluster, namespace, "service", "iris")
    assert service["spec"]["selector"] == {"app": "theirs"}
    assert not service["metadata"].get("ownerReferences")
    assert "modelops" not in json.dumps(service["metadata"].get("managedFields", []))
    table = cluster.kubectl("get", "mdep", "iris", "-n", namespace)
    assert "False" in table.splitlines()[1]  # READY
    # Once the user's Service is gone, ours is made and the condition clears.
    cluster.kubectl("delete", "service", "iris", "-n", namespace, "--wait=true")
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "mdep/iris", "--timeout=120s")
    assert _condition(cluster, namespace, "Stalled")[0] == "False"
    assert _json(cluster, namespace, "service", "iris")["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    assert _events(cluster, namespace).count("ServiceNotOwned") == 1  # aggregated, not one per retry


def test_a_missing_httproute_is_a_condition(cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_sample())
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "mdep/iris", "--timeout=90s")
    # A new version through a route that does not exist: the canary cannot be routed.
    cluster.kubectl("patch", "mdep", "iris", "-n", namespace, "--type=merge", "-p", json.dumps({"spec": {
        "model": {"version": "2"},
        "rollout": {"traffic": {"router": "GatewayAPI", "httpRoute": {"name": "nowhere"}}}}}))
    wait_for(lambda: _condition(cluster, namespace, "Stalled") == ("True", "RouteNotFound"),
             "Stalled=True RouteNotFound", timeout=90)
    assert "RouteNotFound" in _events(cluster, namespace)
    assert "HTTPRoute nowhere not found" in _json(cluster, namespace, "mdep", "iris")["status"]["message"]


def test_an_idle_fleet_costs_no_api_requests_even_across_resyncs(
        cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    # Without leader election: its Lease renewal (a GET and a PUT every 2 s, the one idle cost the fleet
    # benchmark measures) would leave no quiet interval; this test is about what resyncs cost.
    op = OperatorProcess(cluster, tmp_path / "operator.log", ("--resync", "1", "--no-leader-elect"))
    op.start()
    try:
        for i in range(5):
            cluster.kubectl("apply", "-n", namespace, "-f", "-",
                            input=_sample(f"iris-{i}"))
        for i in range(5):
            cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", f"mdep/iris-{i}", "--timeout=90s")
        wait_for(lambda: _metric(op.metrics(), "modelops_leader") == 1, "the operator to lead")
        # Let the last echoes settle: two resyncs in a row with no request in between.
        def settled() -> bool:
            before = op.metrics()
            reconciles = _metric(before, "modelops_reconcile_total")
            wait_for(lambda: _metric(op.metrics(), "modelops_reconcile_total") >= reconciles + 10,
                     "two resyncs of five objects")
            return _metric(op.metrics(), "modelops_api_requests_total") == _metric(
                before, "modelops_api_requests_total")
        wait_for(settled, "an idle interval", timeout=60, interval=0)
        text = op.metrics()
        assert _metric(text, "modelops_workqueue_depth") == 0
        assert 'modelops_modeldeployment_phase{name="iris-0",namespace="' in text
    finally:
        op.stop()


def test_a_child_created_by_post_is_fully_owned_by_later_applies(
        cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Children are created with a plain POST (half the API server's CPU of an apply) and changed by
    server-side apply: a field the create set and the apply leaves out (say, what an operator upgrade
    drops from the pod template) is removed, not kept under the create's Update entry."""
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    from modelops.api.spec import ModelDeploymentSpec
    from modelops.resources import builders

    manifest = json.loads(_sample())
    spec = ModelDeploymentSpec.model_validate(manifest["spec"])
    # A real owner (no operator runs here), or the garbage collector would remove the child.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_sample())
    uid = _json(cluster, namespace, "mdep", "iris")["metadata"]["uid"]
    body = builders.deployment("iris", namespace, uid, spec, "r1", 0)
    old = json.loads(json.dumps(body))
    old["spec"]["template"]["metadata"]["labels"]["example.com/dropped"] = "1"
    old["metadata"]["annotations"]["example.com/dropped"] = "1"
    kube = Kube(threads=1)
    created = kube.create(old)
    assert created is not None and created["metadata"]["labels"] == body["metadata"]["labels"]
    assert kube.create(old) is None  # the name is taken: the caller looks before it applies
    # The hand-over is conditional on our entries' places in managedFields, which a controller's first
    # status write in the same second can shift: a Conflict, retried as the next reconcile would.
    for attempt in range(5):
        try:
            kube.apply(body)
            break
        except Conflict:
            if attempt == 4:
                raise
    live = kube.get("apps/v1", "Deployment", namespace, body["metadata"]["name"])
    assert live is not None
    assert "example.com/dropped" not in live["spec"]["template"]["metadata"]["labels"]
    assert "example.com/dropped" not in live["metadata"]["annotations"]
    ours = [(e["operation"], e.get("subresource")) for e in live["metadata"]["managedFields"]
            if e["manager"] == "modelops"]
    assert ours == [("Apply", None)]
    # A second apply has nothing left to hand over and changes nothing.
    kube.apply(body)
    again = kube.get("apps/v1", "Deployment", namespace, body["metadata"]["name"])
    assert again is not None and again["metadata"]["generation"] == live["metadata"]["generation"]


def test_an_operator_upgrade_rewrites_the_template_and_drops_what_the_old_one_set(
        cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    """The stable Deployment as an older operator left it (another template hash, a template label the
    new builders no longer set): the running operator rolls the new template out and the label is gone."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_sample())
    cluster.kubectl("wait", "-n", namespace, "--for=condition=Ready", "mdep/iris", "--timeout=90s")
    name = _json(cluster, namespace, "deployments")["items"][0]["metadata"]["name"]
    older = {"metadata": {"annotations": {"modelops.dev/template-hash": "older"}},
             "spec": {"template": {"metadata": {"labels": {"example.com/older-operator": "1"}}}}}
    # As the older operator wrote it: under our field manager (a plain write, as our creates are).
    cluster.kubectl("patch", "deployment", name, "-n", namespace, "--type=merge", "--field-manager=modelops",
                    "-p", json.dumps(older))
    wait_for(lambda: "PodTemplateUpdated" in _events(cluster, namespace), "a PodTemplateUpdated Event")

    def rewritten() -> bool:
        live = _json(cluster, namespace, "deployment", name)
        return (live["metadata"]["annotations"]["modelops.dev/template-hash"] != "older"
                and "example.com/older-operator" not in live["spec"]["template"]["metadata"]["labels"])

    wait_for(rewritten, "the new template hash, and the older operator's label gone")
    assert _events(cluster, namespace).count("PodTemplateUpdated") == 1
