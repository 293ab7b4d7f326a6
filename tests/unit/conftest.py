"""Fixtures shared by the unit tests of several rooms: a real S3-compatible server on loopback.

moto's server, over HTTP, reached through boto3 with credentials and endpoint from the environment, as
a pod gets them from its credentials Secret (`spec.model.credentialsSecret`,
`spec.retraining.job.credentialsSecret`). Used by the serving tests (fetch, the request log) and the
retraining tests (dataset, holdout and output on s3://).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from modelops.artifacts.store import s3_client

BUCKET = "models"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture()
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The environment a pod gets from its credentials Secret; a fresh bucket."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "modelops-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "modelops-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never look for instance credentials
    client = s3_client()
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)
    return s3_endpoint
