"""`kubectl modelops status` and `history` views, rendered from realistic statuses at a fixed `now`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from modelops.cli.kubectl_view import human_duration, render_history, render_status

from .statuses import NOW, V1, V2, V3, aborted, canary_at_step_2, healthy


def lines_of(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


def section(text: str, title: str) -> list[str]:
    """The lines of one titled block of the view (up to the next blank line)."""
    lines = lines_of(text)
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i]), len(lines))
    return lines[start:end]


def test_healthy_says_what_serves_and_shows_no_canary() -> None:
    text = render_status(healthy(), NOW)
    assert lines_of(text)[:5] == [
        "Name:         iris",
        "Namespace:    ml-prod",
        "Model:        iris v1 (skops, pvc://models/iris/1/model.skops), 4 replicas",
        "Phase:        Healthy",
        f"Message:      iris v1 ({V1}) serving on 4/4 pods",
    ]
    assert section(text, "Stable:") == ["Stable:", f"  Revision:   {V1}", "  Version:    1", "  Pods:       4/4 ready"]
    assert "Canary:" not in text and "Analysis:" not in text
    assert section(text, "Conditions:")[2] == "  Ready         True     Healthy      45m ago   (the message above)"
    assert section(text, "History:")[2] == f"  {V1}   1         Deployed   -        2025-03-04T09:15:00Z (45m ago)"


def test_canary_in_a_timed_pause_shows_weight_step_countdown_and_analysis() -> None:
    text = render_status(canary_at_step_2(), NOW)
    canary = section(text, "Canary:")
    assert canary[:6] == [
        "Canary:",
        f"  Revision:   {V2}",
        "  Version:    2",
        "  State:      running",
        "  Weight:     25% desired, 25% observed",
        "  Pods:       1/1 ready",
    ]
    # Started at 09:59:10 with a 2m pause; now is 10:00:00.
    assert canary[6] == "  Step:       2/4 pause 2m, started 50s ago; 70s left (until 2025-03-04T10:01:10Z)"
    assert canary[7:] == [
        "  Steps:",
        "       done  1. setWeight 25",
        "     NOW ->  2. pause 2m",
        "             3. setWeight 50",
        "             4. pause until promoted",
    ]
    analysis = section(text, "Analysis:")
    assert analysis[0] == "Analysis:     Running (runs: 2 successful, 0 failed, 1 inconclusive; last 20s ago)"
    assert analysis[1].split() == ["METRIC", "VALUE", "STABLE", "LIMIT", "VERDICT", "SAMPLES", "MEASURED"]
    assert analysis[2].split() == ["errors", "0.0041", "0.0038", "max", "0.02", "Successful", "412", "20s", "ago"]
    assert analysis[3].split()[:3] == ["p99", "0.1873", "0.1702"]
    assert "max 0.25, stable +20% (0.20424)" in analysis[3]
    assert len(analysis) == 4  # successful metrics need no explanation lines


def test_aborted_canary_names_the_failed_metric_and_the_degraded_condition() -> None:
    text = render_status(aborted(), NOW)
    assert "Phase:        Aborted" in text
    canary = section(text, "Canary:")
    assert "  State:      ABORTED: p99 = 0.412 above max 0.25 (stable 0.17)" in canary
    assert "  Weight:     0% desired, 0% observed" in canary
    assert "  Step:       3/4 setWeight 50, started 3m ago" in canary  # no countdown for a stopped canary
    assert "    STOPPED  3. setWeight 50" in canary
    analysis = section(text, "Analysis:")
    assert analysis[0].startswith("Analysis:     Failed (runs: 3 successful, 2 failed")
    assert analysis[3].split()[:3] == ["p99", "0.412", "0.17"] and "Failed" in analysis[3]
    assert analysis[-1] == "  p99: p99 = 0.412 above max 0.25 (stable 0.17)"
    conditions = section(text, "Conditions:")
    degraded = next(line for line in conditions if line.lstrip().startswith("Degraded"))
    assert degraded.split()[:5] == ["Degraded", "True", "AnalysisFailed", "90s", "ago"]
    ready = next(line for line in conditions if line.lstrip().startswith("Ready"))
    assert f"iris v1 ({V1}) serving on 4/4 pods" in ready  # differs from the status message: shown in full


def test_status_history_shows_the_newest_entries_when_there_are_many() -> None:
    obj = aborted()
    first = obj["status"]["history"][0]
    obj["status"]["history"] = [dict(first, revision=f"r{i:08d}", at="2025-03-01T08:00:00Z") for i in range(8)]
    history = section(render_status(obj, NOW), "History")
    assert history[0] == "History (newest 5 of 8):"
    assert [line.split()[0] for line in history[2:]] == [f"r{i:08d}" for i in range(3, 8)]


def test_desired_and_observed_weight_that_differ_say_the_router_is_catching_up() -> None:
    obj = canary_at_step_2()
    obj["status"]["canary"].update(weight=50, observedWeight=25, stepIndex=2)
    text = render_status(obj, NOW)
    assert "  Weight:     50% desired, 25% observed (router catching up)" in text
    assert "  Step:       3/4 setWeight 50, started 50s ago" in text


def test_open_pause_waits_for_promote_and_a_user_pause_is_said() -> None:
    obj = canary_at_step_2()
    obj["status"]["canary"].update(stepIndex=3, paused=True)
    text = render_status(obj, NOW)
    assert "  Step:       4/4 pause until promoted, started 50s ago; waiting for promote" in text
    assert "  State:      paused by user (resume or promote)" in text


def test_timed_pause_past_its_end_shows_zero_left() -> None:
    obj = canary_at_step_2()
    text = render_status(obj, NOW + timedelta(minutes=5))
    assert "0s left (until 2025-03-04T10:01:10Z)" in text


def test_before_the_first_reconcile_the_view_says_so() -> None:
    obj = healthy()
    obj["status"] = {}
    text = render_status(obj, NOW)
    assert "Phase:        -" in text
    assert "no status yet: the operator has not reconciled this object" in text
    assert "Stable:       none yet" in text
    assert "Generation:   2 (status is for none)" in text


def test_status_behind_spec_shows_the_generation_gap() -> None:
    obj = healthy()
    obj["metadata"]["generation"] = 3
    assert "Generation:   3 (status is for 2)" in render_status(obj, NOW)
    assert "Generation" not in render_status(healthy(), NOW)


def test_a_spec_that_does_not_parse_still_renders_status() -> None:
    obj = canary_at_step_2()
    obj["spec"]["rollout"]["steps"] = "not a list"
    text = render_status(obj, NOW)
    assert "Model:        (spec does not parse)" in text
    assert "  Step:       2 (spec does not parse)" in text
    assert "Analysis:     Running" in text


def test_previous_revision_baking_and_a_pinned_undo_are_shown() -> None:
    obj = healthy()
    obj["status"]["previous"] = {"revision": V2, "modelVersion": "2", "until": "2025-03-04T10:10:00Z"}
    obj["status"]["pinned"] = {"revision": V1, "modelVersion": "1", "replaces": V3}
    text = render_status(obj, NOW)
    assert f"Previous:     v2 ({V2}) kept for a quick undo until 2025-03-04T10:10:00Z (in 10m)" in text
    assert f"Pinned:       v1 ({V1}) by undo, until spec moves on from {V3}" in text


def test_history_lists_all_entries_oldest_first_and_what_serves_now() -> None:
    text = render_history(aborted(), NOW)
    lines = lines_of(text)
    assert lines[0].split() == ["REVISION", "VERSION", "OUTCOME", "REASON", "AT"]
    assert [line.split()[:3] for line in lines[1:5]] == [
        [V1, "1", "Deployed"], [V2, "2", "Promoted"], [V2, "2", "Rolledback"], [V3, "3", "Aborted"]]
    assert lines[4].endswith("2025-03-04T09:58:30Z (90s ago)")
    assert "p99 = 0.412 above max 0.25 (stable 0.17)" in lines[4]
    assert lines[-2:] == [f"stable now: v1 ({V1})", f"canary now: v3 ({V3})"]


def test_history_of_a_fresh_object_says_there_is_none() -> None:
    obj = healthy()
    obj["status"] = {}
    assert render_history(obj, NOW) == "no history yet for iris\n"


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (59, "59s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
    (9 * 3600 + 60, "9h"), (26 * 3600, "1d2h"), (10 * 86400 + 3600, "10d"), (-5, "0s"),
])
def test_durations_read_like_kubectl_ages(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
