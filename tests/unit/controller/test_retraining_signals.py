"""The retraining shell reads the very series the model server exports: names that drift apart fail here."""

from __future__ import annotations

import math

import pytest
from modelops.analysis.scrape import parse_scrape
from modelops.controller.retraining import MAX_SIGNAL_PERIOD_SECONDS, MIN_SIGNAL_PERIOD_SECONDS, _quality, signal_period
from modelops.serving.metrics import QualityGauges
from prometheus_client import CollectorRegistry, generate_latest

from tests.unit.retraining.helpers import make_spec


def _page(task: str, value: float, samples: int, revision: str = "rev1") -> str:
    gauges = QualityGauges("iris", "2", revision, task)
    registry = CollectorRegistry()
    for collector in gauges.collectors:
        registry.register(collector)
    gauges.set_quality(value)
    gauges.set_samples(samples)
    return generate_latest(registry).decode()


@pytest.mark.parametrize(("task", "metric", "value"), [("classification", "accuracy", 0.71),
                                                       ("regression", "mae", 3.5)])
def test_quality_is_read_from_the_server_gauges(task: str, metric: str, value: float) -> None:
    pages = [parse_scrape(_page(task, value, 40), "rev1"), parse_scrape(_page(task, value / 2, 300), "rev1")]
    reading = _quality(pages, "rev1", metric)
    assert reading is not None
    assert (reading.value, reading.samples, reading.metric) == (value / 2, 300, metric)  # the pod with most labels


def test_quality_ignores_other_revisions_the_other_metric_and_empty_windows() -> None:
    assert _quality([parse_scrape(_page("classification", 0.7, 90, "rev0"), "rev1")], "rev1", "accuracy") is None
    assert _quality([parse_scrape(_page("classification", 0.7, 90), "rev1")], "rev1", "mae") is None
    assert _quality([parse_scrape(_page("classification", math.nan, 0), "rev1")], "rev1", "accuracy") is None


def test_signal_period_is_a_tenth_of_the_shortest_span_within_bounds() -> None:
    assert signal_period(make_spec(triggers={"drift": {"window": "10m", "minSamples": 100}})) == 60.0
    assert signal_period(make_spec(triggers={"drift": {"window": "5m", "minSamples": 100}})) == 30.0
    assert signal_period(make_spec(triggers={"drift": {"window": "1h"},
                                             "quality": {"metric": "accuracy", "below": 0.8, "forDuration": "2m"}})) \
        == 12.0
    assert signal_period(make_spec(triggers={"drift": {"window": "10s"}})) == MIN_SIGNAL_PERIOD_SECONDS
    assert signal_period(make_spec(triggers={"drift": {"window": "24h"}})) == MAX_SIGNAL_PERIOD_SECONDS
    spec = make_spec()
    assert signal_period(spec.model_copy(update={"retraining": None})) is None
