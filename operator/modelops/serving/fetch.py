"""`modelops fetch`: the init step of a serving pod, bringing a model file into a directory.

Run as the serving pod's init container (same image). Supports ``file://``, ``pvc://<claim>/<path>``
(the claim, mounted read-only at ``<--pvc-root>/<claim>`` by the Deployment builder), ``s3://<bucket>/<key>``
(boto3; credentials and endpoint from the environment, i.e. ``spec.model.credentialsSecret``) and
``http(s)://``. The model file is streamed into a temp file while hashing; only when its sha256
matches is it renamed into place, so a partial or tampered file never sits where the server would
load it. The sibling ``metadata.json`` comes too.

Limits: a download larger than ``max_bytes`` or slower in total than ``max_seconds`` is abandoned;
an https:// URL never follows a redirect to plain http://; a ``pvc://`` URI with '..', an absolute
path or an invalid claim name is refused before anything is opened.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from modelops.resources.storage import StorageURIError, parse_pvc_uri
from modelops.training.artifact import METADATA_FILE, MODEL_FILES, SHA256_FILE, atomic_write_bytes

CHUNK = 1 << 20
MAX_METADATA_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_BYTES = 4 * 1024**3
DEFAULT_MAX_SECONDS = 900.0


class FetchError(Exception):
    """The model could not be fetched or did not verify; the message says which and why."""


def _local_path(uri: str, pvc_root: Path) -> Path | None:
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.netloc + parsed.path))
    if parsed.scheme == "pvc":
        try:
            claim, rel = parse_pvc_uri(uri)
        except StorageURIError as exc:
            raise FetchError(str(exc)) from None
        if not rel.parts:
            raise FetchError(f"{uri}: expected pvc://<claim>/<path inside the volume>")
        return pvc_root / claim / Path(*rel.parts)
    if parsed.scheme in ("http", "https", "s3"):
        return None
    raise FetchError(f"{uri}: unsupported scheme {parsed.scheme!r} (use file://, pvc://, s3:// or http(s)://)")


class _Final(FetchError):
    """A failure a retry cannot mend (too large, too slow overall, a refused redirect)."""


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    """Follow redirects, except from https:// to anything that is not https://."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        if req.full_url.startswith("https://") and not newurl.lower().startswith("https://"):
            raise _Final(f"{req.full_url}: refusing the redirect ({code}) from https:// to {newurl}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_NoDowngrade)


@contextmanager
def _open(uri: str, pvc_root: Path, timeout: float) -> Iterator[BinaryIO]:
    path = _local_path(uri, pvc_root)
    if path is not None:
        try:
            with path.open("rb") as fh:
                yield fh
        except FileNotFoundError:
            raise FetchError(f"{uri}: {path} does not exist") from None
        except IsADirectoryError:
            raise FetchError(f"{uri}: {path} is a directory, not a model file") from None
        return
    if uri.startswith("s3://"):
        with _open_s3(uri) as body:
            yield body
        return
    request = urllib.request.Request(uri, headers={"User-Agent": "modelops-fetch"})
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            yield resp
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{uri}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise FetchError(f"{uri}: {exc}") from None


@contextmanager
def _open_s3(uri: str) -> Iterator[BinaryIO]:
    from modelops.serving import objectstore

    try:
        bucket, key = objectstore.split_s3(uri)
        body = objectstore.s3_client().get_object(Bucket=bucket, Key=key)["Body"]
    except objectstore.StoreError as exc:
        raise FetchError(str(exc)) from None
    except Exception as exc:  # botocore's errors: no credentials, no such key, endpoint down
        if objectstore._s3_missing(exc):
            raise FetchError(f"{uri}: does not exist") from None
        raise FetchError(f"{uri}: {exc}") from None
    try:
        yield body  # type: ignore[misc]
    finally:
        body.close()


def _sibling(uri: str, name: str) -> str:
    parsed = urllib.parse.urlsplit(uri)
    path = parsed.path.rsplit("/", 1)[0] + "/" + name
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path, "", ""))


def _model_name(uri: str) -> str:
    name = PurePosixPath(urllib.parse.urlsplit(uri).path).name
    if name.endswith(".skops"):
        return MODEL_FILES["skops"]
    if name.endswith((".joblib", ".pkl")):
        return MODEL_FILES["joblib"]
    raise FetchError(f"{uri}: the model file name must end in .joblib or .skops")


def fetch_model(
    uri: str,
    sha256: str | None,
    output: Path,
    pvc_root: Path = Path("/mnt/pvc"),
    timeout: float = 60.0,
    retries: int = 3,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> Path:
    """Fetch ``uri`` into ``output`` as model.joblib / model.skops, verified; returns its path.

    A skops file may come without an expected digest (loading it runs no code; the server checks its
    types); a joblib file may not, as the CRD also rules.
    """
    target_name = _model_name(uri)
    expected = sha256.strip().lower() if sha256 is not None else None
    if expected is None:
        if target_name == MODEL_FILES["joblib"]:
            raise FetchError(f"{uri}: a joblib file is a pickle; --sha256 is required to fetch it")
    elif len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise FetchError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    output.mkdir(parents=True, exist_ok=True)
    target = output / target_name
    deadline = time.monotonic() + max_seconds
    attempt = 0
    while True:
        try:
            actual, tmp = _download(uri, pvc_root, min(timeout, max_seconds), target, max_bytes, deadline)
            break
        except FetchError as exc:
            attempt += 1
            if attempt > retries or _local_path(uri, pvc_root) is not None or isinstance(exc, _Final):
                raise
            pause = min(2.0**attempt, 10.0)
            if time.monotonic() + pause >= deadline:
                raise
            time.sleep(pause)
    if expected is not None and actual != expected:
        tmp.unlink(missing_ok=True)
        raise FetchError(f"sha256 mismatch for {uri}: expected {expected}, actual {actual}")
    os.replace(tmp, target)
    return _finish(uri, pvc_root, timeout, output, target, actual)


def _download(uri: str, pvc_root: Path, timeout: float, target: Path, max_bytes: int = DEFAULT_MAX_BYTES,
              deadline: float | None = None) -> tuple[str, Path]:
    """Stream into a temp file beside ``target``; returns the digest and the temp file, which
    becomes ``target`` only after the caller has checked the digest."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, _open(uri, pvc_root, timeout) as src:
            declared = getattr(src, "headers", None)
            length = declared.get("Content-Length") if declared is not None else None
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise _Final(f"{uri}: {length} bytes is more than --max-bytes {max_bytes}")
            # read1: whatever has arrived, so a slow drip cannot hold one read past the deadline.
            read = getattr(src, "read1", src.read)
            while chunk := read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise _Final(f"{uri}: larger than --max-bytes {max_bytes}; download abandoned")
                if deadline is not None and time.monotonic() > deadline:
                    raise _Final(f"{uri}: not downloaded within --max-time; download abandoned after {size} bytes")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest(), Path(tmp)


def _finish(uri: str, pvc_root: Path, timeout: float, output: Path, target: Path, digest: str) -> Path:
    # Only one model format may sit in the directory.
    for name in MODEL_FILES.values():
        if name != target.name:
            (output / name).unlink(missing_ok=True)
    atomic_write_bytes(output / SHA256_FILE, (digest + "\n").encode())
    try:
        with _open(_sibling(uri, METADATA_FILE), pvc_root, timeout) as src:
            data = src.read(MAX_METADATA_BYTES + 1)
        if len(data) > MAX_METADATA_BYTES:
            raise FetchError(f"{_sibling(uri, METADATA_FILE)} is larger than {MAX_METADATA_BYTES} bytes")
        atomic_write_bytes(output / METADATA_FILE, data)
    except FetchError as exc:
        if "does not exist" not in str(exc) and "HTTP 404" not in str(exc):
            raise
    return target
