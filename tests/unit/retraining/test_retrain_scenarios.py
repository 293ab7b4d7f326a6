"""Scenarios of the retraining loop, one per Event and guardrail: given a status and what the controller
observed, when the loop ticks, then the Job, the Events and status.retraining are these."""

from __future__ import annotations

from datetime import timedelta

from modelops.api.commands import Command
from modelops.api.status import HistoryEntry, ModelDeploymentStatus
from modelops.retraining.actions import CreateJob, DeleteJob
from modelops.retraining.machine import candidate_version, desired_model, job_name, next_retraining
from modelops.retraining.observed import (
    JobObservation,
    PromQLReading,
    QualityReading,
    RetrainObserved,
    parse_retrain_commands,
)

from .helpers import (
    DATA_NEW,
    MDEP,
    SHA_NEW,
    SHA_STABLE,
    STABLE_REV,
    T0,
    canary_status,
    drift,
    git_model,
    make_spec,
    pinned,
    reasons,
    stable_status,
    tick,
    trained,
)

SPEC = make_spec()


def breach_until_trigger(spec=SPEC, status: ModelDeploymentStatus | None = None, psi: float = 0.9):
    """Drift breaching at T0 and held for forDuration: the tick at T0+5m decides."""
    status = status or stable_status()
    first = tick(spec, status, T0, drift_obs=drift(psi))
    assert first.create_job is None and first.requeue_after == 300
    return tick(spec, first.status, T0 + timedelta(minutes=5), drift_obs=drift(psi))


def run_job(result=None, spec=SPEC, status: ModelDeploymentStatus | None = None):
    """A drift trigger, then the Job found Succeeded with `result`."""
    started = breach_until_trigger(spec, status)
    rs = started.status.retraining
    assert rs is not None and rs.job is not None
    seen = JobObservation(rs.job.name, "Succeeded", result=result or trained())
    return tick(spec, started.status, T0 + timedelta(minutes=20), job=seen)


def test_drift_held_for_duration_starts_exactly_one_job() -> None:
    decision = breach_until_trigger()
    assert reasons(decision) == ["RetrainTriggered"]
    create = decision.create_job
    assert isinstance(create, CreateJob) and create.name == f"{MDEP}-retrain-1" and create.n == 1
    assert create.params.trigger.signal == "Drift" and create.params.trigger.samples == 500
    assert create.params.output_uri == f"pvc://models/iris/{MDEP}-retrain-1"
    assert create.params.parent is not None and create.params.parent.sha256 == SHA_STABLE
    rs = decision.status.retraining
    assert rs is not None and rs.job is not None and rs.runs.count == 1 and rs.runs.runs_today == 1
    assert rs.last_triggered is not None and rs.last_triggered.value == 0.9
    assert rs.next_run_after == "2025-03-03T13:05:00Z"
    # The next tick sees the Job running: no second Job, however much drift there is.
    again = tick(SPEC, decision.status, T0 + timedelta(minutes=30), drift_obs=drift(0.9))
    assert again.create_job is None and again.status.retraining.runs.count == 1  # type: ignore[union-attr]


def test_breach_shorter_than_for_duration_does_not_trigger() -> None:
    first = tick(SPEC, stable_status(), T0, drift_obs=drift(0.9))
    calm = tick(SPEC, first.status, T0 + timedelta(minutes=3), drift_obs=drift(0.01))
    later = tick(SPEC, calm.status, T0 + timedelta(minutes=6), drift_obs=drift(0.9))
    assert later.create_job is None and reasons(later) == []


def test_windows_below_min_samples_never_count() -> None:
    status = stable_status()
    for minute in range(0, 60, 5):
        decision = tick(SPEC, status, T0 + timedelta(minutes=minute), drift_obs=drift(5.0, samples=99))
        status = decision.status
        assert decision.create_job is None
    assert status.retraining is not None and status.retraining.breach_since == {}


def test_canary_drift_is_not_evidence() -> None:
    first = tick(SPEC, stable_status(), T0, drift_obs=drift(0.9, revision="rev0000002"))
    later = tick(SPEC, first.status, T0 + timedelta(minutes=10), drift_obs=drift(0.9, revision="rev0000002"))
    assert later.create_job is None


def test_small_windows_need_more_psi_than_large_ones() -> None:
    # 0.3 is far beyond chance with 5,000 rows, within it with 100 over 4 series (threshold ~0.73).
    big = breach_until_trigger(psi=0.3)
    assert big.create_job is not None
    status = stable_status()
    for minute in (0, 5, 10):
        small = tick(SPEC, status, T0 + timedelta(minutes=minute), drift_obs=drift(0.3, samples=100))
        status = small.status
        assert small.create_job is None


def test_cooldown_drops_the_trigger_and_says_so() -> None:
    done = run_job(trained(passed=False, candidate=0.5))
    assert "CandidateRejected" in reasons(done)
    first = tick(SPEC, done.status, T0 + timedelta(minutes=25), drift_obs=drift(0.9))
    dropped = tick(SPEC, first.status, T0 + timedelta(minutes=30), drift_obs=drift(0.9))
    assert reasons(dropped) == ["RetrainSkipped"] and dropped.create_job is None
    assert dropped.events[0].message.startswith("Cooldown:")
    rs = dropped.status.retraining
    assert rs is not None and rs.last_dropped is not None and rs.last_dropped.reason == "Cooldown"
    # The dropped trigger does not hide what the last run came to.
    assert rs.last_result is not None and rs.last_result.outcome == "Rejected"
    # Dropped, not queued: the breach starts over, so the next tick says nothing.
    assert rs.breach_since == {}
    quiet = tick(SPEC, dropped.status, T0 + timedelta(minutes=31), drift_obs=drift(0.9))
    assert reasons(quiet) == []
    # Inside the cooldown (it ends at T0+65m) a breach held 30 minutes is dropped again.
    held = tick(SPEC, quiet.status, T0 + timedelta(minutes=61), drift_obs=drift(0.9))
    assert held.events[0].message.startswith("Cooldown:")
    # After the cooldown a breach held again starts run 2.
    a = tick(SPEC, held.status, T0 + timedelta(minutes=66), drift_obs=drift(0.9))
    b = tick(SPEC, a.status, T0 + timedelta(minutes=71), drift_obs=drift(0.9))
    assert b.create_job is not None and b.create_job.name == job_name(MDEP, 2)


def test_daily_budget() -> None:
    spec = make_spec(guardrails={"cooldown": "1m", "maxRunsPerDay": 1})
    done = run_job(trained(passed=False, candidate=0.5), spec=spec)
    a = tick(spec, done.status, T0 + timedelta(hours=1), drift_obs=drift(0.9))
    b = tick(spec, a.status, T0 + timedelta(hours=1, minutes=5), drift_obs=drift(0.9))
    assert b.events[0].message.startswith("DailyBudget:")
    assert b.status.retraining.next_run_after == "2025-03-04T00:00:00Z"  # type: ignore[union-attr]
    c = tick(spec, b.status, T0 + timedelta(hours=12), drift_obs=drift(0.9))
    d = tick(spec, c.status, T0 + timedelta(hours=12, minutes=5), drift_obs=drift(0.9))
    assert d.create_job is not None and d.status.retraining.runs.runs_today == 1  # type: ignore[union-attr]


def test_no_run_during_a_canary_or_an_undo_pin() -> None:
    for status, reason in ((canary_status(stable_status(), git_model("2")), "CanaryInProgress"),
                           (pinned(stable_status()), "UndoPinned")):
        decision = breach_until_trigger(status=status)
        assert decision.create_job is None
        assert decision.events[0].message.startswith(reason + ":")


def test_gate_passes_candidate_recorded_and_desired() -> None:
    done = run_job()
    assert reasons(done) == ["CandidateRecorded"]
    rs = done.status.retraining
    assert rs is not None and rs.job is None and rs.candidate is not None
    assert rs.candidate.sha256 == SHA_NEW and rs.candidate.gate is not None and rs.candidate.gate.passed
    assert rs.candidate.replaces_revision == STABLE_REV and rs.candidate.replaces_model == git_model()
    model, source = desired_model(SPEC, done.status)
    assert (model.sha256, source) == (SHA_NEW, "Retrain")
    assert model.version == "1-r1"


def test_candidate_promoted() -> None:
    done = run_job()
    candidate = done.status.retraining.candidate  # type: ignore[union-attr]
    assert candidate is not None
    promoted = done.status.model_copy(update={"stable": done.status.stable.model_copy(  # type: ignore[union-attr]
        update={"model": candidate.model})})
    decision = tick(SPEC, promoted, T0 + timedelta(hours=1))
    assert reasons(decision) == ["RetrainPromoted"]
    rs = decision.status.retraining
    assert rs is not None and rs.candidate is None and rs.promoted == candidate
    assert rs.stable_dataset_sha256 == DATA_NEW and rs.consecutive_rejections == 0
    # The retrained model stays desired while spec.model is unchanged.
    assert desired_model(SPEC, decision.status)[0].sha256 == SHA_NEW


def test_gate_rejects_with_both_numbers() -> None:
    done = run_job(trained(passed=False, candidate=0.41, current=0.9))
    assert reasons(done) == ["CandidateRejected"]
    assert "0.41" in done.events[0].message and "0.9" in done.events[0].message
    rs = done.status.retraining
    assert rs is not None and rs.candidate is None and rs.consecutive_rejections == 1
    assert desired_model(SPEC, done.status)[1] == "Git"


def test_job_failed() -> None:
    started = breach_until_trigger()
    name = started.status.retraining.job.name  # type: ignore[union-attr]
    failed = tick(SPEC, started.status, T0 + timedelta(minutes=9),
                  job=JobObservation(name, "Failed", reason="DeadlineExceeded"))
    assert reasons(failed) == ["RetrainJobFailed"] and "DeadlineExceeded" in failed.events[0].message
    assert failed.status.retraining.job is None  # type: ignore[union-attr]


def test_lost_create_is_repeated_under_the_same_name() -> None:
    started = breach_until_trigger()
    name = started.status.retraining.job.name  # type: ignore[union-attr]
    again = tick(SPEC, started.status, T0 + timedelta(minutes=6), job=JobObservation(name, "Absent"))
    assert again.create_job is not None and again.create_job.name == name
    assert again.status.retraining.runs.count == 1  # type: ignore[union-attr]


def test_rolled_back_candidates_end_blocked_until_reset() -> None:
    status = stable_status()
    now = T0
    for n in (1, 2):
        a = tick(SPEC, status, now, drift_obs=drift(0.9))
        b = tick(SPEC, a.status, now + timedelta(minutes=5), drift_obs=drift(0.9))
        assert b.create_job is not None and b.create_job.n == n
        seen = JobObservation(b.create_job.name, "Succeeded", result=trained(sha=str(n) * 64))
        c = tick(SPEC, b.status, now + timedelta(minutes=10), job=seen)
        candidate = c.status.retraining.candidate  # type: ignore[union-attr]
        assert candidate is not None
        aborted = canary_status(c.status, candidate.model, aborted=True)
        d = tick(SPEC, aborted, now + timedelta(minutes=20))
        assert "RetrainRolledBack" in reasons(d)
        status = d.status.model_copy(update={"canary": None})
        now += timedelta(hours=2)
    assert reasons(d)[-1] == "RetrainBlocked"
    assert status.retraining is not None and status.retraining.blocked
    assert any(c.type == "RetrainBlocked" and c.status == "True" for c in status.conditions)
    a = tick(SPEC, status, now, drift_obs=drift(0.9))
    b = tick(SPEC, a.status, now + timedelta(minutes=5), drift_obs=drift(0.9))
    assert b.events[0].message.startswith("Blocked:")
    reset = tick(SPEC, b.status, now + timedelta(minutes=6),
                 commands=(Command("retrain", "reset", "n1"),))
    assert not reset.status.retraining.blocked  # type: ignore[union-attr]
    assert any(c.type == "RetrainBlocked" and c.status == "False" for c in reset.status.conditions)


def test_git_edit_supersedes_the_candidate_and_the_running_job() -> None:
    done = run_job()
    moved = make_spec(version="2")
    decision = next_retraining(moved, done.status, RetrainObserved(generation=2), T0 + timedelta(hours=1), MDEP)
    assert reasons(decision) == ["CandidateSuperseded"]
    assert decision.status.retraining.candidate is None  # type: ignore[union-attr]
    assert desired_model(moved, done.status) == (moved.model, "Git")
    started = breach_until_trigger()
    name = started.status.retraining.job.name  # type: ignore[union-attr]
    finished = next_retraining(moved, started.status,
                               RetrainObserved(generation=2, job=JobObservation(name, "Succeeded", result=trained())),
                               T0 + timedelta(minutes=20), MDEP)
    assert reasons(finished) == ["CandidateSuperseded"] and finished.status.retraining.candidate is None  # type: ignore[union-attr]


def test_no_new_data_from_the_job_and_from_spec() -> None:
    done = run_job()
    candidate = done.status.retraining.candidate  # type: ignore[union-attr]
    promoted = tick(SPEC, done.status.model_copy(update={"stable": done.status.stable.model_copy(  # type: ignore[union-attr]
        update={"model": candidate.model})}), T0 + timedelta(hours=1))  # type: ignore[union-attr]
    manual = tick(SPEC, promoted.status, T0 + timedelta(hours=2), commands=(Command("retrain", "", "m1"),))
    name = manual.create_job.name  # type: ignore[union-attr]
    assert manual.create_job.params.current_dataset_sha256 == DATA_NEW  # type: ignore[union-attr]
    same = tick(SPEC, manual.status, T0 + timedelta(hours=2, minutes=10),
                job=JobObservation(name, "Succeeded", result=trained(sha="f" * 64, dataset=DATA_NEW)))
    assert same.events[-1].message.startswith("NoNewData:")
    spec = make_spec(job={"dataset": {"uri": "pvc://data/iris.csv", "sha256": DATA_NEW},
                          "holdout": {"uri": "pvc://data/h.csv"}, "output": {"uri": "pvc://models/iris"}})
    pre = tick(spec, same.status, T0 + timedelta(hours=3), commands=(Command("retrain", "", "m2"),))
    assert pre.create_job is None and pre.events[-1].message.startswith("NoNewData:")


def test_identical_artifact_is_never_canaried() -> None:
    done = run_job(trained(sha=SHA_STABLE))
    assert done.events[-1].message.startswith("IdenticalArtifact:")
    assert done.status.retraining.candidate is None  # type: ignore[union-attr]


def test_manual_promotion_waits_for_approve() -> None:
    spec = make_spec(promotion="Manual")
    done = run_job(spec=spec)
    assert desired_model(spec, done.status)[1] == "Git"
    approved = tick(spec, done.status, T0 + timedelta(hours=1), commands=(Command("approve", "", "a1"),))
    assert reasons(approved) == ["CommandHandled"]
    assert desired_model(spec, approved.status) == (approved.status.retraining.candidate.model, "Retrain")  # type: ignore[union-attr]
    twice = tick(spec, approved.status, T0 + timedelta(hours=1), commands=(Command("approve", "", "a1"),))
    assert reasons(twice) == []  # the same nonce is not handled twice


def test_drift_persisting_after_a_retrain_sets_a_condition_instead_of_retraining() -> None:
    done = run_job()
    candidate = done.status.retraining.candidate  # type: ignore[union-attr]
    stable = done.status.stable.model_copy(update={"model": candidate.model})  # type: ignore[union-attr]
    promoted = tick(SPEC, done.status.model_copy(update={"stable": stable}), T0 + timedelta(hours=1))
    a = tick(SPEC, promoted.status, T0 + timedelta(hours=2), drift_obs=drift(0.9))
    b = tick(SPEC, a.status, T0 + timedelta(hours=2, minutes=5), drift_obs=drift(0.9))
    assert b.create_job is None and "DriftPersists" in reasons(b)
    assert any(c.type == "DriftPersists" and c.status == "True" for c in b.status.conditions)
    # A manual run is still allowed: a person decided.
    manual = tick(SPEC, b.status, T0 + timedelta(hours=3), commands=(Command("retrain", "", "m"),))
    assert manual.create_job is not None


def test_quality_promql_and_schedule_triggers() -> None:
    spec = make_spec(triggers={"quality": {"metric": "accuracy", "below": 0.8, "minSamples": 50, "forDuration": "1m"},
                               "promql": {"query": "up", "above": 5, "forDuration": "1m"},
                               "schedule": "0 3 * * *"})
    status = stable_status()
    low = QualityReading(STABLE_REV, "accuracy", 0.7, 60)
    a = next_retraining(spec, status, RetrainObserved(1, quality=low), T0, MDEP)
    b = next_retraining(spec, a.status, RetrainObserved(1, quality=low), T0 + timedelta(minutes=1), MDEP)
    assert b.create_job is not None and b.create_job.params.trigger.signal == "Quality"
    status = stable_status()
    a = next_retraining(spec, status, RetrainObserved(1, promql=PromQLReading(9.0)), T0, MDEP)
    b = next_retraining(spec, a.status, RetrainObserved(1, promql=PromQLReading(9.0)), T0 + timedelta(minutes=2), MDEP)
    assert b.create_job is not None and b.create_job.params.trigger.signal == "PromQL"
    # Schedule: the first tick starts the clock, the tick after 03:00 fires once.
    night = T0.replace(hour=2, minute=50)
    a = next_retraining(spec, stable_status(), RetrainObserved(1), night, MDEP)
    assert a.create_job is None and a.requeue_after == 600
    b = next_retraining(spec, a.status, RetrainObserved(1), night + timedelta(minutes=11), MDEP)
    assert b.create_job is not None and b.create_job.params.trigger.signal == "Schedule"


def test_retraining_removed_deletes_the_running_job() -> None:
    started = breach_until_trigger()
    name = started.status.retraining.job.name  # type: ignore[union-attr]
    off = SPEC.model_copy(update={"retraining": None})
    decision = next_retraining(off, started.status, RetrainObserved(2), T0 + timedelta(minutes=6), MDEP)
    assert decision.actions == (DeleteJob(name),)


def test_commands_parse_like_rollout_commands() -> None:
    parsed = parse_retrain_commands({"modelops.dev/retrain": '{"value": "reset", "nonce": "x"}',
                                     "modelops.dev/approve": "123", "modelops.dev/abort": "9"})
    assert parsed == (Command("retrain", "reset", "x"), Command("approve", "", "123"))


def test_candidate_version_and_history_source() -> None:
    assert candidate_version("1", 3) == "1-r3"
    assert len(candidate_version("v" * 63, 12)) == 63
    entry = HistoryEntry(revision="r", model_version="1", outcome="Promoted", at="t", source="Retrain")
    assert entry.wire()["source"] == "Retrain"


def _pod(phase: str, message: str, created: str) -> dict[str, object]:
    return {"metadata": {"creationTimestamp": created},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "retrain", "state": {"terminated": {"exitCode": 0 if phase == "Succeeded" else 2,
                                                             "message": message}}}]}}


def test_the_job_as_the_api_returns_it() -> None:
    from modelops.retraining.observed import observe_job

    assert observe_job("j", None, []).phase == "Absent"
    running = {"status": {"active": 1}}
    assert observe_job("j", running, []).phase == "Running"
    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    seen = observe_job("j", done, [_pod("Failed", "boom", "2025-01-01T00:00:00Z"),
                                   _pod("Succeeded", trained().to_json(), "2025-01-01T00:01:00Z")])
    assert seen.phase == "Succeeded" and seen.result == trained()
    garbled = observe_job("j", done, [_pod("Succeeded", "Traceback...", "2025-01-01T00:01:00Z")])
    assert garbled.result is None and "not JSON" in garbled.reason
    failed = {"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                                         "message": "Job has reached the specified backoff limit"}]}}
    seen = observe_job("j", failed, [_pod("Failed", "modelops retrain-job: dataset gone", "2025-01-01T00:00:00Z")])
    assert seen.phase == "Failed" and seen.reason.startswith("BackoffLimitExceeded: Job has reached")
    assert "dataset gone" in seen.reason


def test_a_quiet_tick_changes_nothing_in_status() -> None:
    spec = make_spec(triggers={"drift": {"minSamples": 100}, "schedule": "0 3 * * *"})
    first = tick(spec, stable_status(), T0, drift_obs=drift(0.01))
    again = tick(spec, first.status, T0 + timedelta(minutes=1), drift_obs=drift(0.01))
    assert again.status == first.status and again.actions == ()


def test_the_stable_tracks_drift_comes_from_its_largest_window() -> None:
    from modelops.retraining.observed import PodDrift, stable_drift

    assert stable_drift(STABLE_REV, 600, [PodDrift(0, {})]) is None
    seen = stable_drift(STABLE_REV, 600, [PodDrift(80, {"a": 0.9}, 0.5), PodDrift(300, {"a": 0.05, "b": 0.02}, 0.01)],
                        prediction_bins=3)
    assert seen is not None and seen.revision == STABLE_REV
    assert [(r.series, r.psi, r.samples, r.bins) for r in seen.readings] == [
        ("a", 0.05, 300, 10), ("b", 0.02, 300, 10), ("prediction", 0.01, 300, 3)]
