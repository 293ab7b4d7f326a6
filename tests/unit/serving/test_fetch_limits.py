"""`modelops fetch` refuses what a safe init step must refuse: https->http redirects, oversized and
endless downloads, and pvc:// URIs whose claim or path would reach outside the claim."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from modelops.artifacts.errors import ArtifactError
from modelops.artifacts.fetch import fetch_model


def digest(d: Path) -> str:
    return (d / "model.sha256").read_text().strip()


def _serve(handler: type[http.server.BaseHTTPRequestHandler], context: ssl.SSLContext | None = None
           ) -> tuple[http.server.ThreadingHTTPServer, int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.fixture()
def servers() -> Iterator[Callable[..., int]]:
    started: list[http.server.ThreadingHTTPServer] = []

    def start(handler: type[http.server.BaseHTTPRequestHandler], context: ssl.SSLContext | None = None) -> int:
        server, port = _serve(handler, context)
        started.append(server)
        return port

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def _handler(body: bytes, location: str | None = None, drip_s: float = 0.0, length: bool = True,
             chunk: int = 1024) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if location is not None:
                self.send_response(302)
                self.send_header("Location", location + self.path)
                self.end_headers()
                return
            if not self.path.endswith(".joblib"):
                self.send_error(404)
                return
            self.send_response(200)
            if length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for i in range(0, len(body), chunk):
                    self.wfile.write(body[i:i + chunk])
                    self.wfile.flush()
                    if drip_s:
                        time.sleep(drip_s)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up, as it should

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture()
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1 that this process trusts (SSL_CERT_FILE)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_https_redirect_to_http_is_refused(iris_joblib: Path, tmp_path: Path, servers, tls) -> None:  # type: ignore[no-untyped-def]
    data = (iris_joblib / "model.joblib").read_bytes()
    plain = servers(_handler(data))
    redirector = servers(_handler(b"", location=f"http://127.0.0.1:{plain}"), tls)
    with pytest.raises(ArtifactError, match=r"refusing the redirect .* from https:// to http://"):
        fetch_model(f"https://127.0.0.1:{redirector}/model.joblib", digest(iris_joblib), tmp_path / "out",
                    retries=0)
    assert not (tmp_path / "out" / "model.joblib").exists()
    # https -> https is an ordinary redirect and is followed.
    secure = servers(_handler(data), tls)
    hop = servers(_handler(b"", location=f"https://127.0.0.1:{secure}"), tls)
    path = fetch_model(f"https://127.0.0.1:{hop}/model.joblib", digest(iris_joblib), tmp_path / "ok", retries=0)
    assert path.read_bytes() == data


def test_a_file_larger_than_max_bytes_is_abandoned(iris_joblib: Path, tmp_path: Path, servers) -> None:  # type: ignore[no-untyped-def]
    data = (iris_joblib / "model.joblib").read_bytes()
    declared = servers(_handler(data))
    with pytest.raises(ArtifactError, match=f"{len(data)} bytes is more than --max-bytes 1000"):
        fetch_model(f"http://127.0.0.1:{declared}/model.joblib", digest(iris_joblib), tmp_path / "a", max_bytes=1000)
    undeclared = servers(_handler(data, length=False))
    with pytest.raises(ArtifactError, match="larger than --max-bytes 1000"):
        fetch_model(f"http://127.0.0.1:{undeclared}/model.joblib", digest(iris_joblib), tmp_path / "b",
                    max_bytes=1000)
    with pytest.raises(ArtifactError, match="larger than --max-bytes"):
        fetch_model(f"file://{iris_joblib}/model.joblib", digest(iris_joblib), tmp_path / "c", max_bytes=1000)
    assert not [p for d in ("a", "b", "c") for p in (tmp_path / d).iterdir()]  # no partial file left


def test_a_download_slower_than_max_time_is_abandoned(iris_joblib: Path, tmp_path: Path, servers) -> None:  # type: ignore[no-untyped-def]
    data = (iris_joblib / "model.joblib").read_bytes()
    assert len(data) > 1000
    drip = servers(_handler(data, drip_s=0.2, chunk=100))  # 100 bytes every 0.2 s, each read inside --timeout
    with pytest.raises(ArtifactError, match="not downloaded within --max-time"):
        fetch_model(f"http://127.0.0.1:{drip}/model.joblib", digest(iris_joblib), tmp_path / "out", timeout=5,
                    max_seconds=0.5)


@pytest.mark.parametrize(("uri", "needle"), [
    ("pvc://../etc/model.joblib", "claim '..' is not a PersistentVolumeClaim name"),
    ("pvc:///etc/model.joblib", "the claim is missing"),
    ("pvc://%2E%2E/etc/model.joblib", "claim '..'"),
    ("pvc://Models/iris/model.joblib", "claim 'Models' is not a PersistentVolumeClaim name"),
    ("pvc://models//etc/model.joblib", "must be relative"),
    ("pvc://models/iris/../../etc/model.joblib", "must not contain '..'"),
])
def test_pvc_uri_outside_its_claim_is_refused(uri: str, needle: str, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=needle.replace(".", r"\.").replace("(", r"\(")):
        fetch_model(uri, "0" * 64, tmp_path / "out", pvc_root=tmp_path / "pvc")
