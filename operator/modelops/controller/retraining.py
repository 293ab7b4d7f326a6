"""The retraining loop's I/O: observe its signals (the stable track's drift and quality gauges,
scraped from its ready pods; a PromQL value; the run's Job and its pods from the cache) and carry
out what `modelops.retraining.machine.next_retraining` decided (create or delete the Job).

Called by `modelops.controller.reconcile` after the rollout machine, inside the same reconcile, so
the retraining status is written with the rollout status in one write, before any action. Signals
are measured every `signal_period(spec)` per object (the reconcile asks to be woken for it); the
Job is read from the cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from modelops.analysis.allowlist import AllowedPrometheus, prometheus_allowed
from modelops.analysis.prometheus import PrometheusProvider
from modelops.analysis.provider import DEFAULT_TIMEOUT_SECONDS, ProviderError
from modelops.analysis.scrape import parse_scrape
from modelops.api.durations import parse_duration
from modelops.api.spec import ModelDeploymentSpec
from modelops.api.status import ModelDeploymentStatus
from modelops.controller.cache import Cache, PodView, owned_by
from modelops.controller.kube import Kube
from modelops.resources.jobs import retrain_job
from modelops.retraining.actions import CreateJob, DeleteJob, RetrainDecision
from modelops.retraining.observed import (
    DriftObservation,
    JobObservation,
    PodDrift,
    PromQLReading,
    QualityReading,
    RetrainObserved,
    observe_job,
    parse_retrain_commands,
    stable_drift,
)

log = logging.getLogger(__name__)
# Signals are looked at a tenth of their window (or forDuration) apart, within these bounds: often
# enough for a breach to be seen in time, rarely enough that a fleet costs few scrapes.
MIN_SIGNAL_PERIOD_SECONDS = 2.0
MAX_SIGNAL_PERIOD_SECONDS = 60.0
FEATURE_PSI = "modelops_feature_drift_psi"
PREDICTION_PSI = "modelops_prediction_drift_psi"
WINDOW_ROWS = "modelops_drift_window_rows"
QUALITY_PREFIX = "modelops_feedback_"  # + accuracy | mae, as the server's QualityGauges name them
QUALITY_SAMPLES = "modelops_feedback_window_samples"


def signal_period(spec: ModelDeploymentSpec) -> float | None:
    """Seconds between looks at the retraining signals; None when no trigger needs measuring."""
    retraining = spec.retraining
    if retraining is None:
        return None
    t = retraining.triggers
    spans = [parse_duration(t.drift.window).total_seconds()] if t.drift is not None else []
    spans += [parse_duration(x.for_duration).total_seconds() for x in (t.quality, t.promql) if x is not None]
    if not spans:
        return None
    return min(max(min(spans) / 10, MIN_SIGNAL_PERIOD_SECONDS), MAX_SIGNAL_PERIOD_SECONDS)


class RetrainingShell:
    def __init__(self, kube: Kube, cache: Cache) -> None:
        self.kube = kube
        self.cache = cache
        self._measured_at: dict[tuple[str, str], float] = {}

    def forget(self, key: tuple[str, str]) -> None:
        self._measured_at.pop(key, None)

    async def observe(self, obj: dict[str, Any], spec: ModelDeploymentSpec, status: ModelDeploymentStatus,
                      pods: Sequence[PodView], session: aiohttp.ClientSession, spec_revision: str,
                      prometheus_allow: Sequence[AllowedPrometheus] = ()) -> RetrainObserved:
        """What the retraining loop sees this tick; signals only when their period is up."""
        meta = obj["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]))
        retraining = spec.retraining
        job = self._job(obj, status)
        commands = parse_retrain_commands(meta.get("annotations") or {})
        base = RetrainObserved(generation=int(meta.get("generation", 0)), spec_revision=spec_revision, job=job,
                               commands=commands)
        if retraining is None:
            return base
        now = time.monotonic()
        period = signal_period(spec)
        if period is None or now - self._measured_at.get(key, 0.0) < period * 0.9:
            return base
        self._measured_at[key] = now
        stable = status.stable.revision if status.stable else None
        drift = quality = promql = None
        triggers = retraining.triggers
        if stable is not None and (triggers.drift is not None or triggers.quality is not None):
            pages = await self._scrape(session, spec, pods, stable)
            if triggers.drift is not None:
                drift = _drift(pages, stable, parse_duration(triggers.drift.window).total_seconds())
            if triggers.quality is not None:
                quality = _quality(pages, stable, triggers.quality.metric)
        url = spec.monitoring.prometheus_url
        if triggers.promql is not None and url and prometheus_allowed(url, prometheus_allow):
            provider = PrometheusProvider(url, session)
            try:
                promql = PromQLReading(await provider.query(triggers.promql.query))
            except ProviderError as error:
                log.info("retraining PromQL of %s/%s: %s", *key, error)
        return RetrainObserved(generation=base.generation, spec_revision=spec_revision, drift=drift, quality=quality,
                               promql=promql, job=job, commands=commands)

    def _job(self, obj: dict[str, Any], status: ModelDeploymentStatus) -> JobObservation | None:
        current = status.retraining.job if status.retraining is not None else None
        if current is None:
            return None
        meta = obj["metadata"]
        found = self.cache.jobs.get(meta["namespace"], current.name)
        if found is not None and not owned_by(found, str(meta["uid"])):
            found = None  # a namesake from an earlier object is not our run
        pods = self.cache.job_pods(meta["namespace"], current.name)
        return observe_job(current.name, found, pods)

    async def _scrape(self, session: aiohttp.ClientSession, spec: ModelDeploymentSpec, pods: Sequence[PodView],
                      revision: str) -> list[dict[tuple[str, frozenset[tuple[str, str]]], float]]:
        port = spec.serving.port
        endpoints = [f"{p.ip}:{port}" for p in pods if p.revision == revision and p.ready and p.ip]

        async def one(endpoint: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            try:
                async with session.get(f"http://{endpoint}/metrics",
                                       timeout=aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT_SECONDS)) as response:
                    if response.status != 200:
                        return None
                    return parse_scrape(await response.text(), revision)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                return None

        pages = await asyncio.gather(*(one(e) for e in endpoints))
        return [p for p in pages if p is not None]

    async def carry_out(self, obj: dict[str, Any], spec: ModelDeploymentSpec, decision: RetrainDecision) -> None:
        """Create or delete the run's Job (after the status that asks for it is written)."""
        meta = obj["metadata"]
        name, namespace, uid = str(meta["name"]), str(meta["namespace"]), str(meta["uid"])
        for action in decision.actions:
            if isinstance(action, CreateJob):
                existing = self.cache.jobs.get(namespace, action.name)
                if existing is not None:
                    continue  # adopted: already running under its deterministic name, never started twice
                await self.kube.call(self.kube.create_job, retrain_job(name, namespace, uid, spec, action))
            elif isinstance(action, DeleteJob):
                existing = self.cache.jobs.get(namespace, action.name)
                if existing is not None and owned_by(existing, uid):
                    await self.kube.call(self.kube.delete_job, namespace, action.name,
                                         str(existing["metadata"]["uid"]))


Page = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _drift(pages: Sequence[Page], revision: str, window_seconds: float) -> DriftObservation | None:
    pods = []
    for page in pages:
        rows = 0
        features: dict[str, float] = {}
        prediction: float | None = None
        for (metric, labels), value in page.items():
            label = dict(labels)
            if metric == WINDOW_ROWS:
                rows = max(rows, int(value))
            elif metric == FEATURE_PSI and "feature" in label:
                features[label["feature"]] = value
            elif metric == PREDICTION_PSI:
                prediction = value
        pods.append(PodDrift(rows=rows, features=features, prediction=prediction))
    return stable_drift(revision, window_seconds, pods) if pods else None


def _quality(pages: Sequence[Page], revision: str, metric: str) -> QualityReading | None:
    """The rolling quality of the stable track from the feedback gauges: the pod with most labels."""
    best: tuple[float, float] | None = None  # (samples, value)
    for page in pages:
        value = samples = None
        for (name, _labels), number in page.items():
            if name == QUALITY_PREFIX + metric:
                value = number
            elif name == QUALITY_SAMPLES:
                samples = number
        # NaN is how a server says its window holds no labels yet
        if value is not None and samples is not None and value == value and (best is None or samples > best[0]):
            best = (samples, value)
    if best is None:
        return None
    return QualityReading(revision=revision, metric=metric, value=best[1], samples=int(best[0]))  # type: ignore[arg-type]
