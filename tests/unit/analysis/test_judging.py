"""Judging metric readings: limits, the stable comparison, silence and outages."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modelops.analysis.judging import MetricReading, judge_metric, judge_run, record_run
from modelops.api.rollout_spec import Metric

AT = "2025-01-01T12:00:00Z"
ERRORS = Metric.model_validate({"name": "errors", "builtin": "errorRate", "max": 0.02})
P99 = Metric.model_validate({"name": "p99", "builtin": "latencyP99", "max": 0.25, "vsStable": {"maxIncrease": 0.2}})
RELATIVE = Metric.model_validate({"name": "rel", "builtin": "errorRate", "vsStable": {"maxIncrease": 0.5}})
FLOOR = Metric.model_validate({"name": "acc", "prometheus": {"query": "x"}, "min": 0.9})


def judge(metric: Metric, canary: float | None, stable: float | None = None, samples: int = 100,
          error: str | None = None, no_data: str = "Inconclusive") -> tuple[str, str]:
    reading = MetricReading(metric.name, canary, stable, samples, error)
    result = judge_metric(metric, reading, 20, no_data, AT)  # type: ignore[arg-type]
    return result.verdict, result.message


@pytest.mark.parametrize(
    ("metric", "canary", "stable", "verdict"),
    [
        (ERRORS, 0.01, None, "Successful"),
        (ERRORS, 0.03, None, "Failed"),
        (FLOOR, 0.95, None, "Successful"),
        (FLOOR, 0.85, None, "Failed"),
        (P99, 0.11, 0.10, "Successful"),  # +10% of stable, limit +20%
        (P99, 0.13, 0.10, "Failed"),  # +30%
        (P99, 0.30, 0.30, "Failed"),  # equal to stable, but above the absolute max
        (P99, 0.11, None, "Inconclusive"),  # nothing to compare with
        (RELATIVE, 0.01, 0.0, "Failed"),  # zero stable, no absolute max: any rise fails
        (RELATIVE, 0.0, 0.0, "Successful"),
        (P99, 0.2, 0.0, "Successful"),  # zero stable: the absolute max alone judges
    ],
)
def test_limits_and_stable_comparison(metric: Metric, canary: float, stable: float | None, verdict: str):
    assert judge(metric, canary, stable)[0] == verdict


def test_failed_message_names_metric_value_and_limit():
    assert judge(ERRORS, 0.12)[1] == "errors = 0.12 above max 0.02"
    assert "above stable 0.1 +20% = 0.12" in judge(P99, 0.13, 0.10)[1]


@pytest.mark.parametrize("canary", [None, math.nan])
def test_no_data_is_inconclusive_unless_policy_says_failed(canary: float | None):
    assert judge(ERRORS, canary)[0] == "Inconclusive"
    assert judge(ERRORS, canary, no_data="Failed")[0] == "Failed"


def test_too_few_requests_is_inconclusive_even_when_the_value_is_bad():
    verdict, message = judge(ERRORS, 0.5, samples=3)
    assert verdict == "Inconclusive"
    assert message == "errors: only 3 requests, 20 needed"


def test_provider_outage_is_an_error_not_a_failure():
    assert judge(ERRORS, None, error="prometheus unreachable", no_data="Failed")[0] == "Error"


def test_run_fails_if_any_metric_fails_and_is_inconclusive_if_any_is_silent():
    good = MetricReading("errors", 0.0, 0.0, 100)
    slow = MetricReading("p99", 0.5, 0.1, 100)
    assert judge_run([ERRORS, P99], [good, slow], 20, "Inconclusive", AT).verdict == "Failed"
    silent = MetricReading("p99", None, None, 100)
    assert judge_run([ERRORS, P99], [good, silent], 20, "Inconclusive", AT).verdict == "Inconclusive"
    assert judge_run([ERRORS, P99], [good], 20, "Inconclusive", AT).verdict == "Inconclusive"  # no p99 reading
    fine = MetricReading("p99", 0.1, 0.1, 100)
    assert judge_run([ERRORS, P99], [good, fine], 20, "Inconclusive", AT).verdict == "Successful"


def test_record_run_counts_totals_and_streaks():
    ok = judge_run([ERRORS], [MetricReading("errors", 0.0, None, 100)], 20, "Inconclusive", AT)
    unsure = judge_run([ERRORS], [MetricReading("errors", None, None, 100)], 20, "Inconclusive", AT)
    failed = judge_run([ERRORS], [MetricReading("errors", 0.5, None, 100)], 20, "Inconclusive", AT)
    status = None
    for run in (ok, ok, unsure, unsure, failed, ok):
        status = record_run(status, run, AT)
    assert status is not None
    assert (status.successes, status.failures, status.inconclusives) == (3, 1, 2)
    assert (status.consecutive_successes, status.consecutive_inconclusives) == (1, 0)
    assert status.phase == "Successful"


@given(canary=st.floats(allow_nan=True), stable=st.one_of(st.none(), st.floats(allow_nan=True)),
       samples=st.integers(0, 1000))
def test_silence_is_never_successful(canary: float, stable: float | None, samples: int):
    verdict, _ = judge(P99, canary, stable, samples)
    if verdict == "Successful":
        assert samples >= 20 and not math.isnan(canary) and stable is not None and not math.isnan(stable)
