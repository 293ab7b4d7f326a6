"""Reconcile errors become conditions a person reads: Ready=False and Stalled=True with the reason."""

from __future__ import annotations

import datetime as dt

from modelops.api.status import ModelDeploymentStatus
from modelops.controller.status import REASON_SERVICE_NOT_OWNED, invalid_spec, with_error

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def test_an_error_sets_ready_false_and_stalled_true_with_its_reason_and_keeps_the_rest() -> None:
    status = ModelDeploymentStatus.model_validate({"phase": "Healthy", "message": "iris v1 serving"})
    marked = with_error(status, REASON_SERVICE_NOT_OWNED, "Service iris is not ours", NOW, 3)
    by_type = {c.type: c for c in marked.conditions}
    assert (by_type["Ready"].status, by_type["Ready"].reason) == ("False", "ServiceNotOwned")
    assert (by_type["Stalled"].status, by_type["Stalled"].reason) == ("True", "ServiceNotOwned")
    assert marked.message == "Service iris is not ours; iris v1 serving"
    assert marked.phase == "Healthy"
    again = with_error(marked.model_copy(update={"message": "iris v1 serving"}), REASON_SERVICE_NOT_OWNED,
                       "Service iris is not ours", NOW + dt.timedelta(minutes=5), 3)
    assert again.conditions == marked.conditions  # no flapping transition time while the error holds


def test_an_invalid_spec_is_stalled_until_it_changes() -> None:
    status = invalid_spec(ModelDeploymentStatus(), "spec.model.uri: bad", NOW, 2)
    assert status.phase == "Failed" and status.observed_generation == 2
    assert {c.type: c.reason for c in status.conditions}["Stalled"] == "InvalidSpec"
