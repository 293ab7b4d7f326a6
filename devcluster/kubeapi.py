"""A small JSON client of the API server for the harness (the load generator, Prometheus's discovery)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config


class ApiError(Exception):
    """A Kubernetes API request answered with an unexpected status."""

    def __init__(self, status: int, body: str, what: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class KubeAPI:
    """A minimal JSON client of the API server (plain dicts, watches as iterators), thread-safe.

    The kubernetes package's models convert every object; the harness only needs a few paths, and
    plain dicts keep what it reads and writes exactly as the API sends it. Used by
    devcluster/traffic.py and devcluster/prometheus.py.
    """

    def __init__(self, kubeconfig: str | Path) -> None:
        cfg = k8s_client.Configuration()
        # The kubernetes loader understands every kubeconfig form (paths, inline data, tokens).
        k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        self.server = cfg.host.rstrip("/")
        self.verify: str | bool = cfg.ssl_ca_cert or True
        self.cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file else None
        auth = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
        self.headers = {"Authorization": auth} if auth else {}
        self._local = threading.local()

    def _session(self) -> requests.Session:
        # One session per thread: requests sessions are not guaranteed thread-safe.
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # No environment: REQUESTS_CA_BUNDLE would replace the cluster's CA, and a proxy
            # variable must never route API (or pod) traffic off this machine.
            session.trust_env = False
            session.verify = self.verify
            session.cert = self.cert
            session.headers.update(self.headers)
            self._local.session = session
        return session

    def request(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None,
                content_type: str = "application/json", timeout: float = 30) -> dict[str, Any]:
        data = json.dumps(body) if body is not None else None
        resp = self._session().request(method, self.server + path, data=data, params=params, timeout=timeout,
                                       headers={"Content-Type": content_type})
        if resp.status_code >= 300:
            raise ApiError(resp.status_code, resp.text, f"{method} {path}")
        return resp.json() if resp.content else {}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", path, params=params or None)

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, body, content_type="application/merge-patch+json")

    def watch(self, path: str, params: dict[str, Any], stop: threading.Event) -> Iterator[dict[str, Any]]:
        """Events of one watch request (ends when the server closes it, or soon after `stop` is set)."""
        params = {**params, "watch": "1", "allowWatchBookmarks": "true"}
        params.setdefault("timeoutSeconds", 10)
        with self._session().get(self.server + path, params=params, stream=True,
                                 timeout=(10, params["timeoutSeconds"] + 15)) as resp:
            if resp.status_code >= 300:
                raise ApiError(resp.status_code, resp.text, f"WATCH {path}")
            for line in resp.iter_lines():
                if stop.is_set():
                    return
                if line:
                    yield json.loads(line)
