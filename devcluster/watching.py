"""List + watch of one kind in one namespace, in a background thread, that survives API server
restarts (it lists again after any break) and hands every object it sees to a callback.

Used by the fleet benchmark (benchmarks/controller/fleet.py: Ready counts, when a canary
Deployment appeared) and the fault tests (tests/e2e/test_faults.py: every Deployment UID per
revision, the status at each change).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

PAGE = 500


class Watcher:
    """Follows one kind in one namespace with list + watch (re-listing after any break) and calls
    `on_object(event_type, obj, seen_at)` for every object listed or changed."""

    def __init__(self, api: Any, namespace: str, group: str, version: str, plural: str,
                 on_object: Callable[[str, dict[str, Any], float], None], label_selector: str | None = None) -> None:
        from kubernetes import client

        self.custom = client.CustomObjectsApi(api)
        self.args = (group, version, namespace, plural)
        self.on_object = on_object
        self.selector = label_selector
        self.stopped = threading.Event()
        self.synced = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self.thread.start()
        if not self.synced.wait(120):
            raise RuntimeError(f"could not list {self.args[3]} in {self.args[2]}")
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()

    def _list(self) -> str:
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"limit": PAGE}
            if token:
                kw["_continue"] = token
            if self.selector:
                kw["label_selector"] = self.selector
            page = self.custom.list_namespaced_custom_object(*self.args, **kw)
            now = time.monotonic()
            for item in page.get("items", []):
                self.on_object("LISTED", item, now)
            token = page["metadata"].get("continue")
            if not token:
                return str(page["metadata"]["resourceVersion"])

    def _run(self) -> None:
        from kubernetes import watch

        while not self.stopped.is_set():
            try:
                version = self._list()
                self.synced.set()
                while not self.stopped.is_set():
                    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
                        self.custom.list_namespaced_custom_object, *self.args, resource_version=version,
                        timeout_seconds=3600, allow_watch_bookmarks=True,
                        **({"label_selector": self.selector} if self.selector else {}))
                    for event in stream:
                        obj = event["object"]
                        if event["type"] == "ERROR":
                            raise RuntimeError(str(obj))
                        version = obj["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            self.on_object(event["type"], obj, time.monotonic())
                        if self.stopped.is_set():
                            return
            except Exception:  # the API server restarted, the version expired...: list again
                if self.stopped.wait(0.5):
                    return
