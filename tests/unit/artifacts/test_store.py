"""The artifact store's rules hold for every reader, not only `modelops fetch`: a deadline that a stalled
server cannot outlast, the size cap, no https->http redirect, http(s) read-only, and bounded boto3 waits.
Real sockets and files; the http servers are the standard library's."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelops.artifacts.errors import ArtifactError
from modelops.artifacts.store import ArtifactStore, s3_client

BODY = b"x" * 4096


class _Stalling(http.server.BaseHTTPRequestHandler):
    """Declares the whole body, sends 100 bytes, then says nothing for `stall` seconds."""

    stall = 5.0

    def do_GET(self) -> None:
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/data.csv")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        try:
            self.wfile.write(BODY[:100])
            self.wfile.flush()
            if self.path.startswith("/stall"):
                time.sleep(self.stall)
            self.wfile.write(BODY[100:])
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def web() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stalling)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_stalled_read_is_abandoned_at_the_deadline_not_at_the_socket_timeout(web: str, tmp_path: Path) -> None:
    # Given a 30 s socket timeout and a 0.5 s deadline, a server that stalls mid-body for 5 s
    store = ArtifactStore(max_seconds=0.5, timeout=30.0)
    started = time.monotonic()
    with pytest.raises(ArtifactError, match="not downloaded within --max-time") as caught:
        store.local_copy(f"{web}/stall/data.csv", tmp_path)
    # is given up on at the deadline, while the read is still blocked.
    assert time.monotonic() - started < 2.0
    assert caught.value.final
    assert not list(tmp_path.iterdir())  # no partial file


def test_a_read_blocked_with_no_timeout_of_its_own_ends_at_the_deadline(tmp_path: Path) -> None:
    # Given a file whose writer sent 100 bytes and then hangs (a FIFO: a read there has no timeout at
    # all, like a stuck network volume),
    import os

    fifo = tmp_path / "stuck.csv"
    os.mkfifo(fifo)
    release = threading.Event()

    def writer() -> None:
        with fifo.open("wb") as out:
            out.write(BODY[:100])
            out.flush()
            release.wait(10)

    threading.Thread(target=writer, daemon=True).start()
    started = time.monotonic()
    try:
        # a read with a 0.5 s deadline returns to its caller at the deadline,
        with pytest.raises(ArtifactError, match="abandoned after 100 bytes"):
            ArtifactStore(max_seconds=0.5).read_bytes(fifo.as_uri())
        assert time.monotonic() - started < 2.0
    finally:
        release.set()  # and the reading thread ends once the writer lets go


def test_a_complete_download_is_whole(web: str, tmp_path: Path) -> None:
    path = ArtifactStore().local_copy(f"{web}/fast/data.csv", tmp_path)
    assert path == tmp_path / "data.csv" and path.read_bytes() == BODY


def test_dataset_downloads_obey_the_size_cap(web: str, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=f"{len(BODY)} bytes is more than --max-bytes 1000"):
        ArtifactStore(max_bytes=1000).local_copy(f"{web}/fast/data.csv", tmp_path)
    local = tmp_path / "big.csv"
    local.write_bytes(BODY)
    with pytest.raises(ArtifactError, match="larger than --max-bytes 1000"):
        ArtifactStore(max_bytes=1000).read_bytes(local.as_uri())


def test_https_never_redirects_to_http_for_any_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stalling)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ArtifactError, match=r"refusing the redirect \(302\) from https:// to http://") as caught:
            ArtifactStore().local_copy(f"https://127.0.0.1:{server.server_address[1]}/redirect", tmp_path)
        assert caught.value.final
    finally:
        server.shutdown()
        server.server_close()


def test_http_is_read_only_and_unknown_schemes_are_refused(tmp_path: Path) -> None:
    store = ArtifactStore()
    with pytest.raises(ArtifactError, match="read-only"):
        store.write_bytes("https://models.example/x.csv", b"")
    with pytest.raises(ArtifactError, match="read-only"):
        store.list_files("http://models.example/served")
    with pytest.raises(ArtifactError, match="unsupported scheme 'ftp'"):
        store.read_bytes("ftp://host/x.csv")


def test_missing_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="does not exist") as caught:
        ArtifactStore().read_bytes((tmp_path / "nope").as_uri())
    assert caught.value.missing


def test_writes_are_whole_and_listing_skips_temp_files(tmp_path: Path) -> None:
    store = ArtifactStore(pvc_root=tmp_path)
    store.write_bytes("pvc://logs/served/requests/a.parquet", b"1")
    (tmp_path / "logs" / "served" / "requests" / ".b.parquet.part").write_bytes(b"half")
    assert store.list_files("pvc://logs/served", ".parquet") == ["pvc://logs/served/requests/a.parquet"]
    assert store.read_bytes("pvc://logs/served/requests/a.parquet") == b"1"


def test_boto3_gets_explicit_timeouts(s3: str) -> None:
    config = s3_client(timeout=7.0).meta.config
    assert config.connect_timeout == 7.0 and config.read_timeout == 7.0
    store = ArtifactStore(timeout=3.0)
    store.write_bytes("s3://models/t/x.bin", b"abc")
    assert store.read_bytes("s3://models/t/x.bin") == b"abc"
    assert store.list_files("s3://models/t") == ["s3://models/t/x.bin"]
    with pytest.raises(ArtifactError, match="does not exist") as caught:
        store.read_bytes("s3://models/t/missing.bin")
    assert caught.value.missing
