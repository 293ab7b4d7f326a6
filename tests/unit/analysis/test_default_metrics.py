"""Analysis cannot pass by accident: with metrics left out a canary is judged on the default metrics
(error rate, p99 against stable), and only `analysis.disabled: true` promotes on the steps alone."""

from __future__ import annotations

from modelops.analysis.judging import MetricReading
from modelops.api.rollout_spec import DEFAULT_METRICS, Analysis, Metric
from modelops.rollout.analysis_runs import analysis_due

from tests.unit.rollout.world import World, make_spec, revision

V2 = revision("2")
NO_METRICS = {"interval": "30s", "failureLimit": 0, "minRequests": 20}


def defaults_read(error_rate: float, p99: float, stable_p99: float = 0.1) -> tuple[MetricReading, ...]:
    return (MetricReading("error-rate", canary=error_rate, stable=0.0, samples=200),
            MetricReading("latency-p99", canary=p99, stable=stable_p99, samples=200))


def rolled_out_v2(analysis: dict[str, object]) -> World:
    world = World(make_spec("1", analysis=analysis))
    world.tick()
    world.tick()
    assert world.status.phase == "Healthy", world.status.message
    world.roll_out("2")
    return world


def drive(world: World, readings: tuple[MetricReading, ...] | None, ticks: int = 60) -> None:
    """Tick every 5s for `ticks` ticks, measuring with `readings` whenever a run is due."""
    for _ in range(ticks):
        due = analysis_due(world.spec, world.status, world.now)
        world.tick(measurement=readings if due else None)
        world.wait(5)


def test_metrics_left_out_means_the_default_metrics() -> None:
    analysis = Analysis.model_validate(NO_METRICS)
    assert analysis.effective_metrics() == DEFAULT_METRICS
    names = {m.name: m for m in DEFAULT_METRICS}
    assert names["error-rate"].builtin == "errorRate" and names["error-rate"].max is not None
    assert names["latency-p99"].builtin == "latencyP99" and names["latency-p99"].vs_stable is not None


def test_written_metrics_replace_the_defaults_and_disabled_means_none() -> None:
    mine = {"name": "errors", "builtin": "errorRate", "max": 0.05}
    assert Analysis.model_validate({"metrics": [mine]}).effective_metrics() == (Metric.model_validate(mine),)
    assert Analysis.model_validate({"disabled": True}).effective_metrics() == ()
    # An empty list is refused at apply time; one stored by an older CRD still gets the defaults.
    assert Analysis.model_validate({"metrics": []}).effective_metrics() == DEFAULT_METRICS


def test_without_metrics_a_silent_canary_is_never_promoted() -> None:
    world = rolled_out_v2(NO_METRICS)
    drive(world, None, ticks=120)  # ten minutes of steps and pauses, and no measurement ever
    assert world.status.canary is not None and world.status.canary.revision == V2
    assert world.status.stable is not None and world.status.stable.model_version == "1"
    assert world.status.phase != "Healthy"


def test_without_metrics_the_defaults_promote_a_good_canary() -> None:
    world = rolled_out_v2(NO_METRICS)
    drive(world, defaults_read(error_rate=0.001, p99=0.11))
    assert world.status.stable is not None and world.status.stable.model_version == "2", world.status.message
    assert world.status.analysis is None or {m.name for m in world.status.analysis.metrics} <= {
        "error-rate", "latency-p99"}


def test_without_metrics_the_defaults_abort_on_errors_or_a_slower_p99() -> None:
    errors = rolled_out_v2(NO_METRICS)
    drive(errors, defaults_read(error_rate=0.2, p99=0.1), ticks=20)
    assert errors.status.canary is not None and errors.status.canary.aborted
    assert "error-rate" in (errors.status.canary.abort_reason or "")

    slower = rolled_out_v2(NO_METRICS)
    drive(slower, defaults_read(error_rate=0.0, p99=0.3, stable_p99=0.1), ticks=20)
    assert slower.status.canary is not None and slower.status.canary.aborted
    assert "latency-p99" in (slower.status.canary.abort_reason or "")


def test_disabled_analysis_promotes_on_the_steps_alone() -> None:
    world = rolled_out_v2({"disabled": True})
    drive(world, None)
    assert world.status.stable is not None and world.status.stable.model_version == "2", world.status.message
    assert world.status.canary is None
