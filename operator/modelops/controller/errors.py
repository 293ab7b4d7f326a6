"""API errors as people read them: a condition reason and the API server's own message."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException


def error_reason(error: BaseException) -> tuple[str, str]:
    """A condition reason and a one-line message for a failed API call, for status and Events."""
    if isinstance(error, ApiException):
        detail = error.reason or ""
        try:
            body = json.loads(error.body or "{}")
            detail = body.get("message") or detail
        except (TypeError, ValueError):
            pass
        reason = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid",
                  429: "TooManyRequests"}.get(int(error.status or 0), "APIError")
        return reason, f"{error.status} {detail}"[:1024]
    return "ReconcileError", f"{type(error).__name__}: {error}"[:1024]


def namespace_terminating(error: BaseException) -> bool:
    """A create refused because its namespace is being deleted (403, cause NamespaceTerminating).

    Nothing is wrong with the ModelDeployment: the namespace controller is about to delete it too.
    Re-creating children, marking it Degraded or backing off only fights that deletion.
    """
    if not isinstance(error, ApiException) or error.status != 403:
        return False
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        return False
    causes = (body.get("details") or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes if isinstance(c, dict)) or \
        "because it is being terminated" in str(body.get("message", ""))
