"""Children are created with a plain POST (cheaper for the API server) and changed later by server-side
apply: before the first apply, what the create set moves from the operator's Update entry to its Apply
entry, so the apply can remove a field it no longer sets (client-go's csaupgrade does the same)."""

from __future__ import annotations

from typing import Any

from modelops.controller.kube import FIELD_MANAGER, applied_managed_fields


def _entry(manager: str, operation: str, fields: dict[str, Any], api_version: str = "apps/v1",
           subresource: str | None = None) -> dict[str, Any]:
    entry = {"manager": manager, "operation": operation, "apiVersion": api_version, "fieldsType": "FieldsV1",
             "fieldsV1": fields, "time": "2026-12-07T01:00:00Z"}
    if subresource:
        entry["subresource"] = subresource
    return entry


CREATED = {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:replicas": {}, "f:template": {}}}


def test_a_created_object_is_handed_to_the_apply_entry_and_others_keep_theirs() -> None:
    controller = _entry("kube-controller-manager", "Update", {"f:status": {"f:replicas": {}}}, subresource="status")
    scaled = _entry(FIELD_MANAGER, "Update", {"f:spec": {"f:replicas": {}}}, subresource="scale")
    entries = [_entry(FIELD_MANAGER, "Update", CREATED), controller, scaled]
    out = applied_managed_fields(entries, FIELD_MANAGER)
    assert out is not None
    applied = [e for e in out if e["manager"] == FIELD_MANAGER and e["operation"] == "Apply"]
    assert len(applied) == 1 and applied[0]["fieldsV1"] == CREATED
    # Status and scale writes are other entries (subresources): untouched.
    assert controller in out and scaled in out
    assert not any(e["manager"] == FIELD_MANAGER and e["operation"] == "Update" and "subresource" not in e
                   for e in out)


def test_an_update_entry_merges_into_an_existing_apply_entry() -> None:
    applied = {"f:metadata": {"f:labels": {"f:revision": {}}}, "f:spec": {"f:selector": {}}}
    out = applied_managed_fields([_entry(FIELD_MANAGER, "Apply", applied), _entry(FIELD_MANAGER, "Update", CREATED)],
                                 FIELD_MANAGER)
    assert out is not None and len(out) == 1
    assert out[0]["operation"] == "Apply"
    assert out[0]["fieldsV1"] == {"f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:revision": {}}},
                                  "f:spec": {"f:replicas": {}, "f:template": {}, "f:selector": {}}}


def test_nothing_to_change_when_the_object_was_applied_or_is_someone_elses() -> None:
    assert applied_managed_fields([_entry(FIELD_MANAGER, "Apply", CREATED)], FIELD_MANAGER) is None
    assert applied_managed_fields([_entry("kubectl-create", "Update", CREATED)], FIELD_MANAGER) is None
    assert applied_managed_fields([], FIELD_MANAGER) is None


def test_an_update_entry_of_another_api_version_is_dropped_not_merged() -> None:
    out = applied_managed_fields([_entry(FIELD_MANAGER, "Apply", {"f:spec": {}}),
                                  _entry(FIELD_MANAGER, "Update", CREATED, api_version="apps/v1beta2")], FIELD_MANAGER)
    assert out == [_entry(FIELD_MANAGER, "Apply", {"f:spec": {}})]
