"""Children are created with a plain POST (cheaper for the API server) and changed later by server-side
apply: before the first apply, what the create set moves from the operator's Update entry to its Apply
entry, so the apply can remove a field it no longer sets (client-go's csaupgrade does the same). The
move is a JSON patch that tests every entry it touches and nothing else."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelops.controller.kube import FIELD_MANAGER, managed_fields_patch

PREFIX = "/metadata/managedFields/"


class PatchTestFailed(Exception):
    """A JSON patch `test` operation did not hold: the API server refuses the whole patch."""


def apply_patch(entries: list[dict[str, Any]], ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RFC 6902 test / replace / remove on managedFields, as the API server applies them: all or nothing."""
    out = copy.deepcopy(entries)
    for op in ops:
        assert op["path"].startswith(PREFIX)
        index, *field = op["path"][len(PREFIX):].split("/")
        i = int(index)
        if op["op"] == "test":
            if out[i][field[0]] != op["value"]:
                raise PatchTestFailed(op["path"])
        elif op["op"] == "replace":
            out[i][field[0]] = op["value"]
        elif op["op"] == "remove" and not field:
            del out[i]
        else:
            raise AssertionError(f"unexpected operation {op}")
    return out


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
    entries = [controller, _entry(FIELD_MANAGER, "Update", CREATED), scaled]
    ops = managed_fields_patch(entries, FIELD_MANAGER)
    assert ops is not None
    out = apply_patch(entries, ops)
    assert out == [controller, _entry(FIELD_MANAGER, "Apply", CREATED), scaled]
    # Status and scale writes are other entries (subresources): neither tested nor touched.
    assert not any(op["path"].startswith((f"{PREFIX}0", f"{PREFIX}2")) for op in ops)


def test_a_controllers_status_write_in_between_does_not_fail_the_patch() -> None:
    entries = [_entry(FIELD_MANAGER, "Update", CREATED),
               _entry("kube-controller-manager", "Update", {"f:status": {}}, subresource="status")]
    ops = managed_fields_patch(entries, FIELD_MANAGER)
    assert ops is not None
    later = copy.deepcopy(entries)
    later[1]["time"] = "2026-12-07T01:00:05Z"
    later[1]["fieldsV1"] = {"f:status": {"f:readyReplicas": {}}}
    assert apply_patch(later, ops) == [_entry(FIELD_MANAGER, "Apply", CREATED), later[1]]


def test_our_entries_changed_in_between_fail_the_patch() -> None:
    entries = [_entry(FIELD_MANAGER, "Update", CREATED)]
    ops = managed_fields_patch(entries, FIELD_MANAGER)
    assert ops is not None
    # Someone applied in between: entry 0 is now an Apply entry of another manager.
    with pytest.raises(PatchTestFailed):
        apply_patch([_entry("kubectl", "Apply", {"f:spec": {}}), *entries], ops)


def test_update_entries_merge_into_an_existing_apply_entry() -> None:
    applied = {"f:metadata": {"f:labels": {"f:revision": {}}}, "f:spec": {"f:selector": {}}}
    later = {"f:metadata": {"f:annotations": {"f:note": {}}}}
    entries = [_entry(FIELD_MANAGER, "Update", CREATED), _entry(FIELD_MANAGER, "Apply", applied),
               _entry(FIELD_MANAGER, "Update", later)]
    ops = managed_fields_patch(entries, FIELD_MANAGER)
    assert ops is not None
    out = apply_patch(entries, ops)
    assert out == [_entry(FIELD_MANAGER, "Apply", {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}, "f:revision": {}}, "f:annotations": {"f:note": {}}},
        "f:spec": {"f:replicas": {}, "f:template": {}, "f:selector": {}}})]


def test_nothing_to_change_when_the_object_was_applied_or_is_someone_elses() -> None:
    assert managed_fields_patch([_entry(FIELD_MANAGER, "Apply", CREATED)], FIELD_MANAGER) is None
    assert managed_fields_patch([_entry("kubectl-create", "Update", CREATED)], FIELD_MANAGER) is None
    assert managed_fields_patch([], FIELD_MANAGER) is None


def test_an_update_entry_of_another_api_version_is_dropped_not_merged() -> None:
    entries = [_entry(FIELD_MANAGER, "Apply", {"f:spec": {}}),
               _entry(FIELD_MANAGER, "Update", CREATED, api_version="apps/v1beta2")]
    ops = managed_fields_patch(entries, FIELD_MANAGER)
    assert ops is not None
    assert apply_patch(entries, ops) == [_entry(FIELD_MANAGER, "Apply", {"f:spec": {}})]
