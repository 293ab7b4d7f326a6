"""Direct-scrape metric provider: no Prometheus needed, so analysis works on a bare cluster.

Chosen by `factory.provider_for` when spec.monitoring.prometheusUrl is unset. Each measurement
scrapes every ready pod of both tracks (`http://<pod IP>:<port>/metrics`) twice, `scrape_window`
apart, and computes the builtins from the counter and histogram deltas between the two scrapes
(the same definitions as `queries.py`: 5xx / all requests, p99 of request duration, max PSI).
Counters that went down (a restarted pod) count from zero, as Prometheus' `increase` does. Custom
PromQL metrics need Prometheus and come back as an Error reading.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from modelops.analysis import queries
from modelops.analysis.judging import MetricReading
from modelops.analysis.provider import (
    DEFAULT_TIMEOUT_SECONDS,
    AnalysisTarget,
    ProviderError,
    TrackTarget,
    failed_readings,
)
from modelops.api.rollout_spec import Metric

DEFAULT_SCRAPE_WINDOW_SECONDS = 5.0
LATENCY_QUANTILE = 0.99

SeriesKey = tuple[str, frozenset[tuple[str, str]]]
Scrape = dict[SeriesKey, float]  # one pod's samples at one moment


@dataclass(frozen=True)
class TrackStats:
    """What two scrapes of one track say, summed over its pods."""

    requests: float
    errors: float
    buckets: tuple[tuple[float, float], ...]  # (le, cumulative count increase), sorted by le
    prediction_drift: float | None
    feature_drift: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests > 0 else None

    @property
    def latency_p99(self) -> float | None:
        return histogram_quantile(LATENCY_QUANTILE, self.buckets)


def parse_scrape(text: str, revision: str | None = None) -> Scrape:
    """Samples of one /metrics page; with `revision`, only series of that revision (or unlabelled)."""
    samples: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if revision is not None and labels.get("revision", revision) != revision:
                continue
            samples[(sample.name, frozenset(labels.items()))] = float(sample.value)
    return samples


def counter_increase(before: Scrape, after: Scrape) -> Scrape:
    """Per series, the increase from `before` to `after`; a counter that went down restarted at 0."""
    increase: Scrape = {}
    for key, value in after.items():
        old = before.get(key)
        if old is None:
            continue  # a series born between the scrapes has no baseline; Prometheus skips it too
        increase[key] = value - old if value >= old else value
    return increase


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative (le, count) buckets; None without observations."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    total = ordered[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for le, count in ordered:
        if count >= rank:
            if math.isinf(le):
                return lower_bound  # the quantile is beyond the last finite bucket
            if count == lower_count:
                return le
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = le, count
    return lower_bound


def track_stats(pairs: Iterable[tuple[Scrape, Scrape]]) -> TrackStats:
    """Sum the deltas of every pod (before, after) of one track into the builtins' inputs."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    prediction: list[float] = []
    features: list[float] = []
    for before, after in pairs:
        for (name, labels), value in counter_increase(before, after).items():
            label = dict(labels)
            if name == queries.REQUESTS:
                requests += value
                if label.get("code", "").startswith("5"):
                    errors += value
            elif name == queries.DURATION_BUCKET:
                le = float(label["le"])
                buckets[le] = buckets.get(le, 0.0) + value
        for (name, _labels), value in after.items():
            if name == queries.PREDICTION_DRIFT and not math.isnan(value):
                prediction.append(value)
            elif name == queries.FEATURE_DRIFT and not math.isnan(value):
                features.append(value)
    return TrackStats(
        requests=requests,
        errors=errors,
        buckets=tuple(sorted(buckets.items())),
        prediction_drift=max(prediction) if prediction else None,
        feature_drift=max(features) if features else None,
    )


def builtin_value(builtin: str, stats: TrackStats) -> float | None:
    if builtin == "errorRate":
        return stats.error_rate
    if builtin == "latencyP99":
        return stats.latency_p99
    if builtin == "predictionDrift":
        return stats.prediction_drift
    if builtin == "featureDrift":
        return stats.feature_drift
    raise ValueError(f"unknown builtin metric {builtin!r}")


class ScrapeProvider:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        scrape_window: float = DEFAULT_SCRAPE_WINDOW_SECONDS,
    ):
        self.session = session
        self.timeout = timeout
        self.scrape_window = scrape_window

    async def is_online(self) -> bool:
        return True  # nothing to be down but the pods themselves, judged per measurement

    async def measure(self, metrics: Sequence[Metric], target: AnalysisTarget) -> tuple[MetricReading, ...]:
        try:
            async with asyncio.timeout(self.timeout + self.scrape_window):
                return await self._measure(metrics, target)
        except TimeoutError:
            return failed_readings(metrics, f"scraping the pods took longer than {self.timeout:g}s")

    async def _measure(self, metrics: Sequence[Metric], target: AnalysisTarget) -> tuple[MetricReading, ...]:
        tracks = [target.canary] + ([target.stable] if target.stable is not None else [])
        first = await asyncio.gather(*(self._scrape_track(t) for t in tracks))
        await asyncio.sleep(self.scrape_window)
        second = await asyncio.gather(*(self._scrape_track(t) for t in tracks))
        stats: list[TrackStats | ProviderError] = []
        for track, before, after in zip(tracks, first, second, strict=True):
            pairs = [(before[ep], after[ep]) for ep in track.endpoints if ep in before and ep in after]
            if not pairs:
                stats.append(ProviderError(f"no {track.revision} pod could be scraped twice "
                                           f"({len(track.endpoints)} ready)"))
            else:
                stats.append(track_stats(pairs))
        canary = stats[0]
        stable = stats[1] if len(stats) > 1 else None
        readings: list[MetricReading] = []
        for metric in metrics:
            if metric.builtin is None:
                readings.append(MetricReading(metric.name, None, error="a prometheus query needs "
                                              "spec.monitoring.prometheusUrl"))
                continue
            if isinstance(canary, ProviderError):
                readings.append(MetricReading(metric.name, None, error=str(canary)))
                continue
            stable_value = None if stable is None or isinstance(stable, ProviderError) else builtin_value(
                metric.builtin, stable)
            readings.append(
                MetricReading(
                    name=metric.name,
                    canary=builtin_value(metric.builtin, canary),
                    stable=stable_value,
                    samples=round(canary.requests),
                )
            )
        return tuple(readings)

    async def _scrape_track(self, track: TrackTarget) -> Mapping[str, Scrape]:
        pages = await asyncio.gather(*(self._scrape(ep, track.revision) for ep in track.endpoints))
        return {ep: page for ep, page in zip(track.endpoints, pages, strict=True) if page is not None}

    async def _scrape(self, endpoint: str, revision: str) -> Scrape | None:
        try:
            async with self.session.get(
                f"http://{endpoint}/metrics", timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                if response.status != 200:
                    return None
                return parse_scrape(await response.text(), revision)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None  # a pod that does not answer is left out of this measurement
