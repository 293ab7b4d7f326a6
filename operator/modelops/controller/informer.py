"""Informers: one list-then-watch per kind (and per watched namespace), with server-side label
selectors, keeping a slim copy of every object in memory.

Started by `modelops.controller.runner`; the reconciler reads only from the `Store`s these fill, so
an idle fleet costs the API server one open watch per kind, not a request per object. Like
client-go's reflector: list, then watch from the list's resourceVersion with bookmarks; on `410 Gone`
(or any broken stream) list again and replace the store, reporting what vanished meanwhile.

Each informer runs its blocking HTTP stream in a thread of its own (the official client is
synchronous) and hands every change to the event loop with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from modelops.controller.errors import error_reason

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]
# (event type, slim object); event type is ADDED, MODIFIED or DELETED.
Listener = Callable[[str, Obj], None]
WATCH_TIMEOUT_SECONDS = 290
# A relist after an API outage waits at most this (plus jitter): at 30 s, a replica that took over after
# a 17 s kube-apiserver restart reconciled nothing for 83 s. A list per kind every 5 s is light load.
MAX_BACKOFF_SECONDS = 5.0


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


@dataclass(frozen=True)
class Source:
    """How to list and watch one kind: `call(namespace|None, **kwargs)` is a list call of the client."""

    kind: str
    api_version: str
    call: Callable[..., Any]
    label_selector: str | None = None


class Store:
    """The objects of one kind, by (namespace, name), with secondary indexes (e.g. owner UID).

    Only touched on the event loop, so it needs no lock.
    """

    def __init__(self, indexers: dict[str, Callable[[Obj], list[str]]] | None = None) -> None:
        self.objects: dict[Key, Obj] = {}
        self.indexers = indexers or {}
        self.indexes: dict[str, dict[str, set[Key]]] = {name: {} for name in self.indexers}

    def get(self, namespace: str, name: str) -> Obj | None:
        return self.objects.get((namespace, name))

    def values(self) -> list[Obj]:
        return list(self.objects.values())

    def all_keys(self) -> list[Key]:
        return list(self.objects)

    def by_index(self, index: str, value: str) -> list[Obj]:
        return [self.objects[k] for k in self.indexes[index].get(value, ()) if k in self.objects]

    def put(self, key: Key, obj: Obj) -> None:
        self.remove(key)
        self.objects[key] = obj
        for name, indexer in self.indexers.items():
            for value in indexer(obj):
                self.indexes[name].setdefault(value, set()).add(key)

    def remove(self, key: Key) -> Obj | None:
        old = self.objects.pop(key, None)
        if old is not None:
            for name, indexer in self.indexers.items():
                for value in indexer(old):
                    keys = self.indexes[name].get(value)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del self.indexes[name][value]
        return old

    def __len__(self) -> int:
        return len(self.objects)


_INTERN_MAX = 64  # names, namespaces, labels, uids; not messages


def compact(value: Any) -> Any:
    """`value` with every key and every short string interned: each watch event is parsed on its own,
    so without this 3,000 objects hold 3,000 copies of "metadata", of the namespace, of each label.
    It halves the memory of the slimmed caches."""
    if isinstance(value, dict):
        return {sys.intern(k): compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value]
    if isinstance(value, str) and len(value) <= _INTERN_MAX:
        return sys.intern(value)
    return value


class Informer:
    """Keeps `store` equal to the objects `source` selects in `namespace` (None: all namespaces)."""

    def __init__(self, source: Source, namespace: str | None, store: Store, loop: asyncio.AbstractEventLoop,
                 slim: Callable[[Obj], Obj], listener: Listener,
                 on_request: Callable[[str, str], None] = lambda verb, code: None) -> None:
        self.source = source
        self.namespace = namespace
        self.store = store
        self.loop = loop
        self.slim = slim
        self.listener = listener
        self.on_request = on_request
        self.synced = asyncio.Event()
        self.stopping = threading.Event()
        self.available = True  # False while the kind is not served (e.g. Gateway API CRDs absent)
        self._thread = threading.Thread(target=self._run, name=f"informer-{source.kind}-{namespace or 'all'}",
                                        daemon=True)
        self._response: Any = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        response = self._response
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if sock is not None:
            # Shut the socket down rather than close the response: closing an SSL stream blocks on the
            # lock the watch thread holds while it reads, so a SIGTERM waited for the next event.
            # The plain socket's shutdown wakes that read without touching the SSL object.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    # ------------------------------------------------------------ thread side

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"_preload_content": False}
        if self.source.label_selector:
            kwargs["label_selector"] = self.source.label_selector
        return kwargs

    def _list(self) -> tuple[list[Obj], str]:
        response = self.source.call(self.namespace, **self._kwargs(), _request_timeout=(10, 120))
        try:
            body = json.loads(response.data)
        finally:
            response.release_conn()
        self.on_request("list", "2xx")
        items = []
        for item in body.get("items") or []:
            item.setdefault("apiVersion", self.source.api_version)
            item.setdefault("kind", self.source.kind)
            items.append(compact(self.slim(item)))
        return items, str((body.get("metadata") or {}).get("resourceVersion") or "")

    def _run(self) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                items, version = self._list()
                self.available = True
                self.loop.call_soon_threadsafe(self._replace, items)
                backoff = 0.5
                self._watch(version)
            except _Expired:
                continue  # history moved on: list again at once
            except ApiException as error:
                self.on_request("list", str(error.status))
                if error.status == 404:
                    # The kind is not served (yet): look again later, quietly.
                    self.available = False
                    self.loop.call_soon_threadsafe(self._replace, [])
                    self._sleep(30.0)
                    continue
                # The API's own message names what was refused (e.g. the RBAC rule a 403 lacks).
                log.warning("%s informer: %s; retrying in %.1fs", self.source.kind, error_reason(error)[1],
                            backoff)
                self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            except Exception as error:  # a broken connection of any kind: list again
                if self.stopping.is_set():
                    return
                log.warning("%s informer: %s; listing again in %.1fs", self.source.kind, error, backoff)
                self._sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _sleep(self, seconds: float) -> None:
        self.stopping.wait(seconds * (0.8 + 0.4 * random.random()))

    def _watch(self, version: str) -> None:
        """Follow the stream until it ends; return to re-watch, raise to re-list."""
        while not self.stopping.is_set():
            started = time.monotonic()
            response = self.source.call(
                self.namespace, **self._kwargs(), watch=True, resource_version=version,
                allow_watch_bookmarks=True, timeout_seconds=WATCH_TIMEOUT_SECONDS,
                _request_timeout=(10, WATCH_TIMEOUT_SECONDS + 30))
            self.on_request("watch", "2xx")
            self._response = response
            try:
                for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        code = int(obj.get("code") or 0)
                        if code == 410:
                            raise _Expired(obj.get("message", "resourceVersion expired"))
                        raise RuntimeError(f"watch error {code}: {obj.get('message')}")
                    new_version = (obj.get("metadata") or {}).get("resourceVersion")
                    if new_version:
                        version = str(new_version)
                    if kind == "BOOKMARK":
                        continue
                    obj.setdefault("apiVersion", self.source.api_version)
                    obj.setdefault("kind", self.source.kind)
                    self.loop.call_soon_threadsafe(self._apply, str(kind), compact(self.slim(obj)))
            finally:
                self._response = None
                response.release_conn()
            if time.monotonic() - started < 1.0 and not self.stopping.is_set():
                self._sleep(1.0)  # a stream that ends at once must not spin

    # ------------------------------------------------------------ loop side

    def _replace(self, items: list[Obj]) -> None:
        # Several informers (one per watched namespace) may share a store: replace only our part.
        fresh = {key_of(o): o for o in items}
        ours = [k for k in self.store.objects if self.namespace is None or k[0] == self.namespace]
        gone = [old for k in ours if k not in fresh and (old := self.store.remove(k)) is not None]
        for key, obj in fresh.items():
            self.store.put(key, obj)
        for obj in gone:
            self.listener("DELETED", obj)
        for obj in items:
            self.listener("ADDED", obj)
        self.synced.set()

    def _apply(self, kind: str, obj: Obj) -> None:
        key = key_of(obj)
        if kind == "DELETED":
            self.store.remove(key)
        else:
            self.store.put(key, obj)
        self.listener(kind, obj)


class _Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""
