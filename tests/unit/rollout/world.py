"""A tiny in-memory stand-in for the cluster that carries out Decisions, for scenario tests of the
pure state machine. Pods become ready when the test says so (or at once with `auto_ready`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from modelops.analysis.judging import MetricReading
from modelops.api.commands import Command
from modelops.api.events import EmitEvent
from modelops.api.spec import ModelDeploymentSpec, ModelSource
from modelops.api.status import ModelDeploymentStatus
from modelops.rollout.actions import Decision, DeleteDeployment, EnsureDeployment, SetRouting
from modelops.rollout.machine import next_state
from modelops.rollout.observed import DeploymentObservation, DesiredRevision, Measurement, Observed
from modelops.traffic import replica_ratio

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
SHA = "a" * 64


def model(version: str) -> ModelSource:
    return ModelSource(name="iris", version=version, uri=f"file:///models/iris-{version}.joblib", sha256=SHA)


def revision(version: str) -> str:
    return f"rev{version:0>7}"[:10]


def make_spec(version: str = "1", **rollout: Any) -> ModelDeploymentSpec:
    body: dict[str, Any] = {
        "model": model(version).wire(),
        "serving": {"replicas": 3},
        "rollout": {
            "steps": [{"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50},
                      {"pause": {"duration": "30s"}}],
            "analysis": {"interval": "30s", "failureLimit": 0, "inconclusiveLimit": 2, "minRequests": 20,
                         "metrics": [{"name": "errors", "builtin": "errorRate", "max": 0.02}]},
            **rollout,
        },
    }
    return ModelDeploymentSpec.model_validate(body)


def good(samples: int = 100) -> tuple[MetricReading, ...]:
    return (MetricReading("errors", canary=0.001, stable=0.001, samples=samples),)


def bad(samples: int = 100) -> tuple[MetricReading, ...]:
    return (MetricReading("errors", canary=0.12, stable=0.001, samples=samples),)


def silent() -> tuple[MetricReading, ...]:
    return (MetricReading("errors", canary=None, stable=None, samples=0),)


@dataclass
class World:
    spec: ModelDeploymentSpec
    auto_ready: bool = True
    now: datetime = T0
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    deployments: dict[str, list[int]] = field(default_factory=dict)  # revision -> [replicas, ready]
    route_weight: int = 0
    generation: int = 1
    events: list[EmitEvent] = field(default_factory=list)
    last: Decision | None = None
    nonce: int = 0
    problems: dict[str, str] = field(default_factory=dict)  # revision -> why its pods do not start

    def observed(self, measurement: tuple[MetricReading, ...] | None = None,
                 commands: tuple[Command, ...] = ()) -> Observed:
        deps = tuple(DeploymentObservation(r, v[0], v[1], self.problems.get(r))
                     for r, v in sorted(self.deployments.items()))
        stable = self.status.stable.revision if self.status.stable else None
        canary = self.status.canary.revision if self.status.canary else None
        ready_stable = self.deployments.get(stable or "", [0, 0])[1]
        ready_canary = self.deployments.get(canary or "", [0, 0])[1] if canary != stable else 0
        if self.spec.rollout.traffic.router == "GatewayAPI":
            weight = self.route_weight if ready_canary > 0 else 0
        else:
            weight = replica_ratio.observed_weight(ready_stable, ready_canary)
        taken = None
        if measurement is not None and canary is not None:
            taken = Measurement(canary_revision=canary, taken_at=self.now, readings=measurement)
        return Observed(
            generation=self.generation,
            desired=DesiredRevision(revision(self.spec.model.version), self.spec.model),
            deployments=deps,
            observed_weight=weight,
            weight_revision=canary,
            measurement=taken,
            commands=commands,
        )

    def tick(self, measurement: tuple[MetricReading, ...] | None = None,
             commands: tuple[Command, ...] = ()) -> Decision:
        decision = next_state(self.spec, self.status, self.observed(measurement, commands), self.now)
        self.apply(decision)
        self.status = decision.status
        self.last = decision
        return decision

    def command(self, name: str, value: str = "") -> Decision:
        self.nonce += 1
        return self.tick(commands=(Command(name, value, f"n{self.nonce}"),))

    def apply(self, decision: Decision) -> None:
        for action in decision.actions:
            if isinstance(action, EnsureDeployment):
                _, ready = self.deployments.get(action.revision, [0, 0])
                ready = action.replicas if self.auto_ready else min(ready, action.replicas)
                self.deployments[action.revision] = [action.replicas, ready]
            elif isinstance(action, DeleteDeployment):
                self.deployments.pop(action.revision, None)
            elif isinstance(action, SetRouting):
                self.route_weight = action.canary_weight
            elif isinstance(action, EmitEvent):
                self.events.append(action)

    def make_ready(self, rev: str) -> None:
        replicas, _ = self.deployments[rev]
        self.deployments[rev] = [replicas, replicas]

    def wait(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def roll_out(self, version: str) -> None:
        spec = make_spec(version, **self.spec.rollout.model_dump(by_alias=True, exclude_none=True))
        self.spec = spec.model_copy(update={"serving": self.spec.serving})
        self.generation += 1

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]

    def condition(self, type_: str) -> tuple[str, str, str]:
        found = next(c for c in self.status.conditions if c.type == type_)
        return found.status, found.reason, found.message
