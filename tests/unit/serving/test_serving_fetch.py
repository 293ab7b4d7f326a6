"""`modelops fetch`: file://, pvc:// and http:// sources, digest verification, no partial files."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from modelops.artifacts.errors import ArtifactError
from modelops.artifacts.fetch import fetch_model
from modelops.cli.main import main


@pytest.fixture()
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def digest(d: Path) -> str:
    return (d / "model.sha256").read_text().strip()


def assert_clean(out: Path) -> None:
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "model.joblib", "model.sha256"]


def test_file_uri(iris_joblib: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["fetch", f"file://{iris_joblib}/model.joblib", "--sha256", digest(iris_joblib), "--output", str(out)])
    assert code == 0
    assert_clean(out)
    assert (out / "model.joblib").read_bytes() == (iris_joblib / "model.joblib").read_bytes()
    assert (out / "metadata.json").read_bytes() == (iris_joblib / "metadata.json").read_bytes()


def test_pvc_uri(iris_joblib: Path, tmp_path: Path) -> None:
    pvc_root = tmp_path / "pvc"
    (pvc_root / "models" / "iris").mkdir(parents=True)
    for name in ("model.joblib", "metadata.json"):
        (pvc_root / "models" / "iris" / name).write_bytes((iris_joblib / name).read_bytes())
    out = tmp_path / "out"
    fetch_model("pvc://models/iris/model.joblib", digest(iris_joblib), out, pvc_root=pvc_root)
    assert_clean(out)
    with pytest.raises(ArtifactError, match=r"must not contain '\.\.'"):
        fetch_model("pvc://models/../etc/model.joblib", digest(iris_joblib), out, pvc_root=pvc_root)


def test_http_uri(iris_joblib: Path, tmp_path: Path, http_root: tuple[str, Path]) -> None:
    base, root = http_root
    (root / "v1").mkdir()
    (root / "v1" / "iris.joblib").write_bytes((iris_joblib / "model.joblib").read_bytes())
    out = tmp_path / "out"
    fetch_model(f"{base}/v1/iris.joblib", digest(iris_joblib), out)
    # No metadata.json beside it on the server: fine, only the model comes.
    assert sorted(p.name for p in out.iterdir()) == ["model.joblib", "model.sha256"]
    with pytest.raises(ArtifactError, match="HTTP 404"):
        fetch_model(f"{base}/v1/missing.joblib", digest(iris_joblib), out, retries=0)


def test_mismatch_names_both_digests_and_leaves_nothing(
    iris_joblib: Path, tmp_path: Path, http_root: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, root = http_root
    (root / "model.joblib").write_bytes(b"not the model")
    out = tmp_path / "out"
    wrong = "ab" * 32
    assert main(["fetch", f"{base}/model.joblib", "--sha256", wrong, "--output", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"expected {wrong}" in err
    assert "actual " + __import__("hashlib").sha256(b"not the model").hexdigest() in err
    assert list(out.iterdir()) == []  # neither the file nor a temp file


def test_mismatch_keeps_previous_good_model(iris_joblib: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    fetch_model(f"file://{iris_joblib}/model.joblib", digest(iris_joblib), out)
    before = (out / "model.joblib").read_bytes()
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(b"evil")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch_model(f"file://{bad}", digest(iris_joblib), out)
    assert (out / "model.joblib").read_bytes() == before
    assert_clean(out)


@pytest.mark.parametrize(
    ("uri", "sha", "message"),
    [
        ("ftp://host/model.joblib", "a" * 64, "unsupported scheme"),
        ("file:///nowhere/model.joblib", "a" * 64, "does not exist"),
        ("file:///tmp/model.txt", "a" * 64, "must end in .joblib or .skops"),
        ("file:///tmp/model.joblib", "xyz", "64 hex digits"),
    ],
)
def test_bad_arguments(uri: str, sha: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=message):
        fetch_model(uri, sha, tmp_path / "out")


def test_unreachable_http_fails_after_retries(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(ArtifactError, match="Connection refused"):
        fetch_model(f"http://127.0.0.1:{port}/model.joblib", "a" * 64, tmp_path / "o", retries=0, timeout=2)


def test_skops_without_digest_is_fetched_and_joblib_is_refused(iris_joblib: Path, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.skops").write_bytes(b"not really skops; fetch never deserialises")
    out = tmp_path / "out"
    assert main(["fetch", f"file://{src}/model.skops", "--output", str(out)]) == 0
    assert (out / "model.skops").read_bytes() == (src / "model.skops").read_bytes()
    assert len(digest(out)) == 64  # recorded, so serve can report it
    with pytest.raises(ArtifactError, match="--sha256 is required"):
        fetch_model(f"file://{iris_joblib}/model.joblib", None, tmp_path / "out2")
