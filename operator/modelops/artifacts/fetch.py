"""`modelops fetch`: the init step of a serving pod, bringing a model file into a model directory.

Run as the serving pod's init container (same image), and by ``modelops evaluate`` for a model given by
URI. Any URI the store reads (modelops.artifacts.store): ``file://``, ``pvc://<claim>/<path>`` (the claim,
mounted read-only at ``<pvc_root>/<claim>`` by the Deployment builder), ``s3://<bucket>/<key>``
(credentials and endpoint from the environment, i.e. ``spec.model.credentialsSecret``) and
``http(s)://``. The model file is streamed into a temp file while hashing; only when its sha256 matches
is it renamed into place, so a partial or tampered file never sits where the server would load it. The
sibling ``metadata.json`` comes too, when there is one.

Limits: the store's (``max_bytes``, a deadline of ``max_seconds`` for the whole fetch, retries included;
no https->http redirect); a ``pvc://`` URI with '..', an absolute path or an invalid claim name is
refused before anything is opened.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from modelops.artifacts import uri as uris
from modelops.artifacts.errors import ArtifactError
from modelops.artifacts.model_dir import (
    MAX_METADATA_BYTES,
    METADATA_FILE,
    MODEL_FILES,
    atomic_write_bytes,
    keep_only,
    model_file_for,
    write_sha256,
)
from modelops.artifacts.store import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS, ArtifactStore


def _expected_digest(uri: str, sha256: str | None, model_file: str) -> str | None:
    expected = sha256.strip().lower() if sha256 is not None else None
    if expected is None:
        # A skops file may come without one (loading it runs no code; the server checks its types);
        # a joblib file may not, as the CRD also rules.
        if model_file == MODEL_FILES["joblib"]:
            raise ArtifactError(f"{uri}: a joblib file is a pickle; --sha256 is required to fetch it")
    elif len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise ArtifactError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    return expected


def fetch_model(
    uri: str,
    sha256: str | None,
    output: Path,
    pvc_root: Path = Path(uris.PVC_ROOT),
    timeout: float = 60.0,
    retries: int = 3,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> Path:
    """Fetch ``uri`` into ``output`` as model.joblib / model.skops, verified; returns its path."""
    model_file = model_file_for(uris.basename(uri), uri)
    expected = _expected_digest(uri, sha256, model_file)
    store = ArtifactStore(pvc_root=pvc_root, max_bytes=max_bytes, max_seconds=max_seconds, timeout=timeout)
    local = store.is_local(uri)  # also refuses an unsupported scheme or a pvc:// URI leaving its claim
    output.mkdir(parents=True, exist_ok=True)
    target = output / model_file
    deadline = time.monotonic() + max_seconds
    attempt = 0
    while True:
        try:
            actual, tmp = store.download_temp(uri, target, deadline)
            break
        except ArtifactError as exc:
            attempt += 1
            # A local file does not get better by waiting; a network source may.
            if attempt > retries or local or exc.final:
                raise
            pause = min(2.0**attempt, 10.0)
            if time.monotonic() + pause >= deadline:
                raise
            time.sleep(pause)
    if expected is not None and actual != expected:
        tmp.unlink(missing_ok=True)
        raise ArtifactError(f"sha256 mismatch for {uri}: expected {expected}, actual {actual}")
    os.replace(tmp, target)
    keep_only(output, model_file)
    write_sha256(output, actual)
    metadata_uri = uris.sibling(uri, METADATA_FILE)
    try:
        data = store.read_bytes(metadata_uri, max_bytes=MAX_METADATA_BYTES)
    except ArtifactError as exc:
        if not exc.missing:
            raise
    else:
        atomic_write_bytes(output / METADATA_FILE, data)
    return target
