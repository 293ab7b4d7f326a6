"""The in-memory cache the reconciler reads: children found by their controller owner's UID (never a
namesake's), pods by ModelDeployment and revision, and slim copies that keep what decisions need."""

from __future__ import annotations

from typing import Any

from modelops.controller.cache import Cache, PodView, pod_problem, slim_deployment, slim_pod


def _deployment(name: str, owner_uid: str, revision: str, ready: int = 1) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "managedFields": [{"big": 1}],
                         "labels": {"modelops.dev/revision": revision, "app.kubernetes.io/instance": "iris"},
                         "ownerReferences": [{"kind": "ModelDeployment", "name": "iris", "uid": owner_uid,
                                              "controller": True}]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "x" * 1000}]}}},
            "status": {"readyReplicas": ready, "replicas": 2}}


def _pod(name: str, revision: str, ready: bool, ip: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns",
                         "labels": {"modelops.dev/revision": revision, "app.kubernetes.io/instance": "iris"}},
            "status": {"podIP": ip, "phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_children_are_found_by_owner_uid_not_by_name_or_labels() -> None:
    cache = Cache()
    mine = slim_deployment(_deployment("iris-aaa", "new-uid", "aaa"))
    old = slim_deployment(_deployment("iris-bbb", "old-uid", "bbb"))
    cache.deployments.put(("ns", "iris-aaa"), mine)
    cache.deployments.put(("ns", "iris-bbb"), old)
    assert [d["metadata"]["name"] for d in cache.owned_deployments("new-uid")] == ["iris-aaa"]
    assert [d["metadata"]["name"] for d in cache.owned_deployments("old-uid")] == ["iris-bbb"]
    cache.deployments.remove(("ns", "iris-bbb"))
    assert cache.owned_deployments("old-uid") == []
    assert "managedFields" not in mine["metadata"] and "template" not in mine["spec"]


def test_pods_of_other_revisions_are_not_ours() -> None:
    cache = Cache()
    cache.pods.put(("ns", "p1"), slim_pod(_pod("p1", "aaa", True, "10.244.1.2")))
    cache.pods.put(("ns", "p2"), slim_pod(_pod("p2", "bbb", True, "10.244.1.3")))
    assert cache.pods_of("ns", "iris", {"aaa"}) == [
        PodView(name="p1", revision="aaa", ip="10.244.1.2", ready=True, phase="Running")]
    assert cache.pods_of("other", "iris", {"aaa"}) == []


def test_a_pod_whose_model_failed_verification_says_why() -> None:
    status = {"initContainerStatuses": [{"name": "fetch-model", "state": {"terminated": {
        "exitCode": 1, "message": "sha256 mismatch: expected ab.. got cd.."}}}]}
    assert pod_problem(status) == "init container fetch-model failed: sha256 mismatch: expected ab.. got cd.."
    waiting = {"containerStatuses": [{"name": "server", "state": {"waiting": {"reason": "ImagePullBackOff",
                                                                              "message": "not found"}}}]}
    assert pod_problem(waiting) == "container server: ImagePullBackOff: not found"
    assert pod_problem({"containerStatuses": [{"name": "server", "state": {"running": {}}}]}) is None


def test_compact_keeps_an_object_equal_and_shares_its_strings_with_other_objects() -> None:
    import json

    from modelops.controller.informer import compact

    text = json.dumps(_deployment("d1", "uid-owner", "r1"))
    a, b = compact(slim_deployment(json.loads(text))), compact(slim_deployment(json.loads(text)))
    assert a == slim_deployment(json.loads(text))
    # Parsed apart (as two watch events are), the same key and label value are one object afterwards.
    assert next(iter(a["metadata"])) is next(iter(b["metadata"]))
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]
    assert a["metadata"]["labels"]["modelops.dev/revision"] is b["metadata"]["labels"]["modelops.dev/revision"]
    long = "m" * 500  # a long string (a message) is left as it is
    assert compact({"message": long})["message"] == long


def _versioned(rv: str, template_hash: str) -> dict[str, Any]:
    obj = _deployment("iris-aaa", "uid", "aaa")
    obj["metadata"]["resourceVersion"] = rv
    obj["metadata"]["annotations"] = {"modelops.dev/template-hash": template_hash}
    return obj


def test_what_we_wrote_is_read_back_at_once_unless_the_watch_brought_something_newer() -> None:
    cache = Cache()
    cache.remember_written(_versioned("10", "new"))  # created: nothing cached yet
    assert cache.deployments.get("ns", "iris-aaa")["metadata"]["resourceVersion"] == "10"  # type: ignore[index]
    decided_from = cache.deployments.get("ns", "iris-aaa")
    # Applied over the version we decided from: the answer replaces it before its watch event comes.
    cache.remember_written(_versioned("12", "newer"), decided_from)
    held = cache.deployments.get("ns", "iris-aaa")
    assert held is not None and held["metadata"]["annotations"] == {"modelops.dev/template-hash": "newer"}
    # The watch delivered version 13 meanwhile: an answer decided from 12's predecessor leaves it alone,
    # and a "created" answer never replaces what is there.
    cache.deployments.put(("ns", "iris-aaa"), slim_deployment(_versioned("13", "watch")))
    cache.remember_written(_versioned("14", "late"), decided_from)
    cache.remember_written(_versioned("15", "late"))
    assert cache.deployments.get("ns", "iris-aaa")["metadata"]["resourceVersion"] == "13"  # type: ignore[index]
