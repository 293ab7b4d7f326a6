"""s3:// against a real S3-compatible server on loopback (moto's server, over HTTP, through boto3):
`modelops fetch`, the request log and `modelops dataset build` with credentials from the environment,
as a pod gets them from `spec.model.credentialsSecret`. The server is tests/unit/conftest.py's."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from modelops.artifacts.errors import ArtifactError
from modelops.artifacts.fetch import fetch_model
from modelops.artifacts.store import ArtifactStore, s3_client
from modelops.cli.main import main
from modelops.serving.datalog import RequestLog, RequestLogConfig
from modelops.serving.feedback import Label

BUCKET = "models"  # the s3 fixture's bucket (tests/unit/conftest.py)


def test_fetch_from_s3_verifies_the_digest(iris_joblib: Path, tmp_path: Path, s3: str) -> None:
    client = s3_client()
    for name in ("model.joblib", "metadata.json"):
        client.put_object(Bucket=BUCKET, Key=f"iris/1/{name}", Body=(iris_joblib / name).read_bytes())
    sha = (iris_joblib / "model.sha256").read_text().strip()
    out = tmp_path / "out"
    assert main(["fetch", f"s3://{BUCKET}/iris/1/model.joblib", "--sha256", sha, "--output", str(out)]) == 0
    assert (out / "model.joblib").read_bytes() == (iris_joblib / "model.joblib").read_bytes()
    assert (out / "metadata.json").exists()
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch_model(f"s3://{BUCKET}/iris/1/model.joblib", "0" * 64, tmp_path / "bad", retries=0)
    with pytest.raises(ArtifactError, match="does not exist"):
        fetch_model(f"s3://{BUCKET}/iris/9/model.joblib", sha, tmp_path / "missing", retries=0)


def test_fetch_without_credentials_fails_clearly(tmp_path: Path, s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pod whose Secret is missing its keys: the error names the URI and the missing credentials."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ArtifactError, match=r"s3://models/iris/1/model.joblib: Unable to locate credentials"):
        fetch_model(f"s3://{BUCKET}/iris/1/model.joblib", "0" * 64, tmp_path / "out", retries=0)


def test_request_log_to_s3_then_dataset_build(s3: str, tmp_path: Path) -> None:
    uri = f"s3://{BUCKET}/served/iris"
    logger = RequestLog(RequestLogConfig(uri, sample_rate=1.0, max_rows=10), ["a", "b"], "iris", "1", "r1",
                        rng=random.Random(0)).start()
    rng = np.random.default_rng(0)
    labels = []
    for i in range(25):
        rows = rng.normal(size=(2, 2))
        assert logger.offer(f"req-{i}", rows, np.array([i % 3, (i + 1) % 3]))
        if i % 5:
            labels.append(Label(f"req-{i}", 1, i % 2))
    logger.labels(labels)
    logger.close()
    assert logger.dropped == 0 and logger.failed_files == 0 and logger.written_rows == 50 + len(labels)
    files = ArtifactStore().list_files(uri, ".parquet")
    assert len([f for f in files if "/requests/" in f]) >= 5  # rotated at 10 rows per file
    out = f"s3://{BUCKET}/datasets/iris.parquet"
    assert main(["dataset", "build", "--from", uri, "--out", out, "--target", "y"]) == 0
    data = ArtifactStore().read_bytes(out)
    frame = pd.read_parquet(io.BytesIO(data))
    assert list(frame.columns) == ["a", "b", "y"]
    assert len(frame) == len(labels)
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(ArtifactStore().read_bytes(out)).hexdigest()
