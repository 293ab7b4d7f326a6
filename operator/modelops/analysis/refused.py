"""The provider a prometheusUrl off the operator's allow-list gets: Error readings, and no request.

Chosen by `modelops.analysis.factory.provider_for`; a provider of its own so that a refused address is
judged like any failed measurement (Error), never queried.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelops.analysis.judging import MetricReading
from modelops.analysis.provider import AnalysisTarget, failed_readings
from modelops.api.rollout_spec import Metric


class RefusedProvider:
    """Every metric an Error reading with the refusal's message."""

    def __init__(self, message: str):
        self.message = message

    async def measure(self, metrics: Sequence[Metric], target: AnalysisTarget) -> tuple[MetricReading, ...]:
        return failed_readings(metrics, self.message)

    async def is_online(self) -> bool:
        return False
