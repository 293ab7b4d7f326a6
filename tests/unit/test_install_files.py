"""The install paths agree with each other: install.yaml and the chart's copies are what `make
manifests` makes from manifests/, the Helm chart renders the same objects as kustomize in every mode
(modulo Helm's own labels), `helm lint` passes, and the RBAC is the least the operator needs.
kubectl and helm are the cached Go builds of devcluster/build.py."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.gitops import render
from tests.gitops.render import kustomize, normalise, objects


def test_generated_files_are_fresh() -> None:
    stale = [str(p.relative_to(render.REPO)) for p in render.stale()]
    assert not stale, f"stale generated files {stale}: run `make manifests`"


def _compare(kustomized: list[dict[str, Any]], helmed: list[dict[str, Any]]) -> None:
    # Helm does not make the release namespace; the chart's users pass --create-namespace.
    want = {k: v for k, v in normalise(kustomized).items() if k[0] != "Namespace"}
    got = normalise(helmed)
    assert sorted(got) == sorted(want), (
        f"objects differ: helm only {set(got) - set(want)}, kustomize only {set(want) - set(got)}")
    for key, obj in want.items():
        assert got[key] == obj, f"{key} differs between the chart and kustomize"


def test_chart_matches_kustomize_cluster_wide() -> None:
    _compare(objects(kustomize("base")), objects(render.helm_template()))


def test_chart_matches_kustomize_namespaced() -> None:
    _compare(objects(kustomize("overlays/namespaced")), objects(render.helm_template("watchNamespace=models")))


def test_chart_matches_kustomize_with_monitoring() -> None:
    sets = [f"metrics.{k}.enabled=true" for k in ("serviceMonitor", "podMonitor", "prometheusRule", "grafanaDashboard")]
    _compare(objects(kustomize("base")) + objects(kustomize("monitoring")), objects(render.helm_template(*sets)))


def test_a_chart_difference_is_caught() -> None:
    with pytest.raises(AssertionError, match="Deployment"):
        _compare(objects(kustomize("base")), objects(render.helm_template("replicas=3")))


def test_helm_lint() -> None:
    proc = subprocess.run([str(render.helm()), "lint", "--strict", str(render.CHART)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _rules(rendered: str, kind: str) -> dict[str, set[str]]:
    role = next(o for o in objects(rendered) if o["kind"] == kind and o["metadata"]["name"] == "modelops-operator")
    out: dict[str, set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault(f"{group}/{resource}", set()).update(rule["verbs"])
    return out


# What the operator does, resource by resource; nothing more is granted (no wildcard, no secrets).
NEEDED = {
    "modelops.dev/modeldeployments": {"get", "list", "watch", "patch", "update"},
    "modelops.dev/modeldeployments/status": {"get", "update", "patch"},
    "apps/deployments": {"get", "list", "watch", "create", "patch", "delete"},
    "apps/deployments/scale": {"patch", "update"},
    "/services": {"get", "list", "watch", "create", "patch"},
    "/pods": {"get", "list", "watch"},
    "/events": {"create", "patch"},
    "events.k8s.io/events": {"create", "patch"},
    "gateway.networking.k8s.io/httproutes": {"get", "list", "watch", "update"},
    "batch/jobs": {"get", "list", "watch", "create", "delete"},
    "policy/poddisruptionbudgets": {"get", "list", "watch", "create", "patch", "delete"},
    "autoscaling/horizontalpodautoscalers": {"get", "list", "watch", "create", "patch", "delete"},
}


def test_rbac_is_least_privilege() -> None:
    assert _rules(kustomize("base"), "ClusterRole") == NEEDED
    namespaced = kustomize("overlays/namespaced")
    assert _rules(namespaced, "Role") == NEEDED
    assert not [o for o in objects(namespaced) if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    lease = next(o for o in objects(namespaced) if o["metadata"]["name"] == "modelops-operator-leader-election"
                 and o["kind"] == "Role")
    assert lease["metadata"]["namespace"] == "modelops-system"
    assert lease["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                               "verbs": ["get", "create", "update"]}]


def test_operator_deployment_shape() -> None:
    for overlay, extra in (("base", []), ("overlays/namespaced", ["--namespace", "models"])):
        dep = next(o for o in objects(kustomize(overlay)) if o["kind"] == "Deployment")
        assert dep["spec"]["replicas"] == 2
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert {"name": "metrics", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
        assert container["command"] == ["modelops", "run", "--metrics-port", "8080", *extra]
        _assert_runs(container)


def _assert_runs(container: dict[str, Any]) -> None:
    """The command parses with the operator's own CLI, and every probe names a port the container has
    (the first real-node run found `--liveness`, a flag `modelops run` never had: CrashLoopBackOff)."""
    from modelops.cli.main import build_parser

    command = container["command"]
    assert command[0] == "modelops"
    build_parser().parse_args(command[1:])  # SystemExit(2) on an unknown flag
    ports = {p["name"] for p in container["ports"]} | {p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in container:
            assert container[probe]["httpGet"]["port"] in ports, (probe, container[probe])


def test_the_charts_operator_command_runs() -> None:
    from tests.gitops import render

    for values in ([], ["watchNamespace=models", "prometheusAllow[0]=prometheus.monitoring"]):
        dep = next(o for o in render.objects(render.helm_template(*values)) if o["kind"] == "Deployment")
        _assert_runs(dep["spec"]["template"]["spec"]["containers"][0])


def test_sync_waves_order_crd_operator_modeldeployments() -> None:
    wave = "argocd.argoproj.io/sync-wave"
    objs = objects(kustomize("base"))
    crd = next(o for o in objs if o["kind"] == "CustomResourceDefinition")
    dep = next(o for o in objs if o["kind"] == "Deployment")
    crd_wave = int(crd["metadata"]["annotations"][wave])
    operator_wave = int((dep["metadata"].get("annotations") or {}).get(wave, "0"))
    for sample in sorted((render.MANIFESTS / "samples").glob("*.yaml")):
        (mdep,) = objects(sample.read_text())
        assert crd_wave < operator_wave < int(mdep["metadata"]["annotations"][wave]), sample.name


def test_tool_versions_match_their_go_modules() -> None:
    """versions.env names the version the cache is keyed by; go.mod decides what is built."""
    from devcluster import build

    versions = build.versions()
    helm_mod = (build.GOMOD / "helm" / "go.mod").read_text()
    assert f"helm.sh/helm/v3 v{versions['HELM_VERSION']}\n" in helm_mod
    kstatus_mod = (build.KSTATUS / "go.mod").read_text()
    assert f"sigs.k8s.io/cli-utils v{versions['CLI_UTILS_VERSION']}\n" in kstatus_mod
