"""API errors read as a person would: the reason and the API server's own message."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException
from modelops.controller.errors import error_reason, namespace_terminating


def _api_error(status: int, body: dict[str, object]) -> ApiException:
    error = ApiException(status=status, reason="Forbidden" if status == 403 else "Error")
    error.body = json.dumps(body)
    return error


# What kube-apiserver answers a create in a namespace being deleted (NamespaceLifecycle admission).
TERMINATING = {
    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
    "message": 'deployments.apps "iris-5d8f" is forbidden: unable to create new content in namespace models '
               "because it is being terminated",
    "details": {"name": "iris-5d8f", "group": "apps", "kind": "deployments",
                "causes": [{"reason": "NamespaceTerminating", "message": "namespace models is being terminated",
                            "field": "metadata.namespace"}]},
}
RBAC = {
    "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
    "message": 'jobs.batch is forbidden: User "system:serviceaccount:modelops-system:modelops-operator" cannot '
               'create resource "jobs" in API group "batch" in the namespace "models"',
    "details": {"group": "batch", "kind": "jobs"},
}


def test_a_create_in_a_terminating_namespace_is_told_apart_from_a_missing_permission() -> None:
    assert namespace_terminating(_api_error(403, TERMINATING))
    without_causes = {**TERMINATING, "details": {}}
    assert namespace_terminating(_api_error(403, without_causes))  # older servers: the message says it
    assert not namespace_terminating(_api_error(403, RBAC))
    assert not namespace_terminating(_api_error(409, TERMINATING))
    assert not namespace_terminating(ValueError("because it is being terminated"))


def test_error_reason_carries_the_api_message() -> None:
    reason, message = error_reason(_api_error(403, RBAC))
    assert reason == "Forbidden"
    assert message.startswith("403 jobs.batch is forbidden: User ") and 'cannot create resource "jobs"' in message
    assert error_reason(ApiException(status=500, reason="Internal")) == ("APIError", "500 Internal")
