"""The operator's per-object series: 1 for the current phase and each condition's current status,
nothing else, and nothing left once the object is gone."""

from __future__ import annotations

from modelops.controller.metrics import OperatorMetrics
from prometheus_client import generate_latest


def _lines(metrics: OperatorMetrics, prefix: str) -> list[str]:
    text = generate_latest(metrics.registry).decode()
    return sorted(line for line in text.splitlines() if line.startswith(prefix))


def test_only_the_current_phase_and_statuses_are_exported_and_a_change_replaces_them() -> None:
    metrics = OperatorMetrics()
    metrics.object_status("ns", "iris", "Progressing", [("Ready", "True"), ("Reconciling", "True")])
    metrics.object_status("ns", "wine", "Healthy", [("Ready", "True")])
    assert _lines(metrics, "modelops_modeldeployment_phase{") == [
        'modelops_modeldeployment_phase{name="iris",namespace="ns",phase="Progressing"} 1.0',
        'modelops_modeldeployment_phase{name="wine",namespace="ns",phase="Healthy"} 1.0',
    ]
    metrics.object_status("ns", "iris", "Healthy", [("Ready", "False"), ("Reconciling", "False")])
    assert _lines(metrics, 'modelops_modeldeployment_condition{name="iris"') == [
        'modelops_modeldeployment_condition{name="iris",namespace="ns",status="False",type="Ready"} 1.0',
        'modelops_modeldeployment_condition{name="iris",namespace="ns",status="False",type="Reconciling"} 1.0',
    ]
    metrics.forget_object("ns", "iris")
    assert not _lines(metrics, 'modelops_modeldeployment_phase{name="iris"')
    assert not _lines(metrics, 'modelops_modeldeployment_condition{name="iris"')
    assert len(_lines(metrics, "modelops_modeldeployment_phase{")) == 1


def test_series_for_thousands_of_objects_stay_few() -> None:
    metrics = OperatorMetrics()
    for i in range(3000):
        metrics.object_status("ns", f"m{i}", "Healthy", [("Ready", "True"), ("Stalled", "False")])
    assert len(_lines(metrics, "modelops_modeldeployment_")) == 3000 * 3
