"""Properties of the retraining loop over random sequences of observations (hypothesis).

Never two runs at once; a trigger inside the cooldown is dropped, not queued; windows below
minSamples never trigger; blocked stays blocked until `retrain --reset`.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from modelops.api.commands import Command
from modelops.api.status import ModelDeploymentStatus
from modelops.api.timefmt import parse_time
from modelops.retraining.machine import next_retraining
from modelops.retraining.observed import JobObservation, RetrainObserved

from .helpers import MDEP, T0, drift, make_spec, stable_status, trained

SPEC = make_spec(triggers={"drift": {"minSamples": 100, "forDuration": "1m"}, "schedule": "*/30 * * * *"},
                 guardrails={"cooldown": "10m", "maxRunsPerDay": 5, "maxConsecutiveRejections": 2})

step = st.fixed_dictionaries({
    "minutes": st.integers(min_value=0, max_value=20),
    "psi": st.sampled_from([0.0, 0.05, 0.5, 3.0]),
    "samples": st.sampled_from([10, 99, 100, 1000]),
    "job": st.sampled_from(["none", "Absent", "Running", "Succeeded-pass", "Succeeded-reject", "Failed"]),
    "manual": st.sampled_from([None, "", "reset"]),
})


def run(steps: list[dict[str, object]]):
    """Carry the loop through `steps`; yield (status before, decision, the tick's time)."""
    status: ModelDeploymentStatus = stable_status()
    now = T0
    for i, s in enumerate(steps):
        now += timedelta(minutes=int(s["minutes"]))  # type: ignore[call-overload]
        rs = status.retraining
        job = None
        if rs is not None and rs.job is not None and s["job"] != "none":
            kind = str(s["job"])
            if kind.startswith("Succeeded"):
                result = trained(sha=f"{i:064x}", dataset=f"{i + 1:064x}", passed=kind.endswith("pass"))
                job = JobObservation(rs.job.name, "Succeeded", result=result)
            else:
                job = JobObservation(rs.job.name, kind)  # type: ignore[arg-type]
        commands = (Command("retrain", str(s["manual"]), f"n{i}"),) if s["manual"] is not None else ()
        observed = RetrainObserved(1, drift=drift(float(s["psi"]), samples=int(s["samples"])),  # type: ignore[call-overload]
                                   job=job, commands=commands)
        decision = next_retraining(SPEC, status, observed, now, MDEP)
        yield status, decision, now, s
        # A candidate is rolled back at once, so the loop goes on (and rejections add up).
        new = decision.status
        candidate = new.retraining.candidate if new.retraining else None
        if candidate is not None:
            new = new.model_copy(update={"retraining": new.retraining.model_copy(  # type: ignore[union-attr]
                update={"candidate": None, "consecutive_rejections": new.retraining.consecutive_rejections + 1})})  # type: ignore[union-attr]
        status = new


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=1, max_size=40))
def test_never_two_runs_at_once(steps: list[dict[str, object]]) -> None:
    for before, decision, _, s in run(steps):
        create = decision.create_job
        running = before.retraining.job if before.retraining else None
        finished = str(s["job"]).startswith(("Succeeded", "Failed"))
        if create is not None and running is not None and not finished:
            # While a run is not seen finished, only the same run (created again after a lost create).
            assert create.name == running.name and create.n == running.number
        if create is not None and running is None:
            count = before.retraining.runs.count if before.retraining else 0
            assert decision.status.retraining.runs.count == count + 1  # type: ignore[union-attr]


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=1, max_size=40))
def test_cooldown_drops_triggers(steps: list[dict[str, object]]) -> None:
    for before, decision, now, s in run(steps):
        rs = before.retraining
        if decision.create_job is None or rs is None or rs.job is not None or s["manual"] == "":
            continue
        last = rs.runs.last_started_at
        assert last is None or now >= parse_time(last) + timedelta(minutes=10)
        # A run started by a trigger that had been dropped would need a held breach since the drop.


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=1, max_size=40))
def test_below_min_samples_never_triggers_drift(steps: list[dict[str, object]]) -> None:
    for s in steps:
        s["samples"] = 99
    for _, decision, _, _ in run(steps):
        create = decision.create_job
        if create is not None:
            assert create.params.trigger.signal != "Drift"


@settings(max_examples=150, deadline=None)
@given(st.lists(step, min_size=1, max_size=40))
def test_blocked_stays_blocked_until_reset(steps: list[dict[str, object]]) -> None:
    for before, decision, _, s in run(steps):
        was = before.retraining is not None and before.retraining.blocked
        if was and s["manual"] != "reset":
            assert decision.status.retraining.blocked  # type: ignore[union-attr]
            running = before.retraining.job if before.retraining else None
            # No new run; at most the one in flight created again.
            assert decision.create_job is None or (running is not None and decision.create_job.name == running.name)
