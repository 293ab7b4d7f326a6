"""The one artifact store: read, write and list what a URI names, for file://, pvc://, s3:// and http(s)://.

Used by the fetch step (modelops.artifacts.fetch), the server's request log (modelops.serving.datalog),
``modelops dataset build`` and the retraining Job (modelops.training), so every one of them gets the
same rules:

- a read larger than ``max_bytes`` or slower in total than ``max_seconds`` is abandoned. The read runs
  in a thread of its own and the caller waits on it with the deadline, so a server that stalls or
  drips bytes cannot hold a read past the deadline (a socket timeout alone bounds each recv, not the
  whole transfer);
- an https:// URL never follows a redirect to anything but https://;
- boto3 gets explicit connect and read timeouts (its defaults are 60 s each, retried);
- a write is whole or absent: a temp file renamed, or one S3 PUT;
- every failure is an :class:`~modelops.artifacts.errors.ArtifactError` naming the URI.

``pvc://<claim>/<path>`` is the claim mounted at ``<pvc_root>/<claim>``; ``s3://`` reads its credentials
and endpoint from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``:
a Secret the pod reads via envFrom). boto3 is imported only when an s3:// URI is used.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from modelops.artifacts import uri as uris
from modelops.artifacts.errors import ArtifactError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK = 1 << 20
DEFAULT_MAX_BYTES = 4 * 1024**3
DEFAULT_MAX_SECONDS = 900.0
DEFAULT_TIMEOUT = 60.0
USER_AGENT = "modelops"

# An open source: the stream and the length it declares (None: not declared).
Opened = tuple[BinaryIO, int | None]


class _NoDowngrade(urllib.request.HTTPRedirectHandler):
    """Follow redirects, except from https:// to anything that is not https://."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        if req.full_url.startswith("https://") and not newurl.lower().startswith("https://"):
            raise ArtifactError(f"{req.full_url}: refusing the redirect ({code}) from https:// to {newurl}",
                                final=True)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_NoDowngrade)


def s3_client(timeout: float = DEFAULT_TIMEOUT) -> S3Client:
    """A client of its own (boto3's default session caches the credentials it found first), with path-style
    addressing (every S3-compatible server takes it: MinIO, moto, Ceph, AWS) and bounded waits."""
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                    connect_timeout=timeout, read_timeout=timeout)
    return boto3.session.Session().client("s3", config=config)


def _s3_missing(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code in ("NoSuchKey", "404", "NotFound")


def _s3_error(uri: str, exc: BaseException) -> ArtifactError:
    if _s3_missing(exc):
        return ArtifactError(f"{uri}: does not exist", missing=True)
    return ArtifactError(f"{uri}: {exc}")


@dataclass(frozen=True)
class ArtifactStore:
    """Where pvc:// claims are mounted, and the caps every read obeys."""

    pvc_root: Path = Path(uris.PVC_ROOT)
    max_bytes: int = DEFAULT_MAX_BYTES
    max_seconds: float = DEFAULT_MAX_SECONDS
    timeout: float = DEFAULT_TIMEOUT  # one network operation: connect, or one read

    def local_path(self, uri: str) -> Path | None:
        return uris.local_path(uri, self.pvc_root)

    def is_local(self, uri: str) -> bool:
        return self.local_path(uri) is not None

    # -- reading -----------------------------------------------------------------------------------
    def _opener(self, uri: str) -> Callable[[], Opened]:
        """What opens ``uri``; called in the reading thread, so that opening counts against the deadline."""
        path = self.local_path(uri)
        timeout = min(self.timeout, self.max_seconds)
        if path is not None:
            local = path

            def open_local() -> Opened:
                try:
                    return local.open("rb"), None
                except FileNotFoundError:
                    raise ArtifactError(f"{uri}: {local} does not exist", missing=True) from None
                except IsADirectoryError:
                    raise ArtifactError(f"{uri}: {local} is a directory, not a file", final=True) from None
                except OSError as exc:
                    raise ArtifactError(f"{uri}: {exc}") from None

            return open_local
        if uris.scheme(uri) == "s3":
            def open_s3() -> Opened:
                bucket, key = uris.split_s3(uri)
                try:
                    obj = s3_client(timeout).get_object(Bucket=bucket, Key=key)
                except Exception as exc:  # botocore's many classes: no credentials, no such key, endpoint down
                    raise _s3_error(uri, exc) from None
                length = obj.get("ContentLength")
                return obj["Body"], int(length) if length is not None else None  # type: ignore[return-value]

            return open_s3

        def open_http() -> Opened:
            request = urllib.request.Request(uri, headers={"User-Agent": USER_AGENT})
            try:
                response = _OPENER.open(request, timeout=timeout)
            except urllib.error.HTTPError as exc:
                raise ArtifactError(f"{uri}: HTTP {exc.code} {exc.reason}", missing=exc.code == 404) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                raise ArtifactError(f"{uri}: {exc}") from None
            length = response.headers.get("Content-Length")
            return response, int(length) if length is not None and length.isdigit() else None

        return open_http

    def chunks(self, uri: str, deadline: float | None = None, max_bytes: int | None = None) -> Iterator[bytes]:
        """The bytes at ``uri`` in chunks, within ``max_bytes`` (default: the store's) and before
        ``deadline`` (a time.monotonic() value; default: ``max_seconds`` from now)."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        until = time.monotonic() + self.max_seconds if deadline is None else deadline
        size = 0
        transfer = _Transfer(self._opener(uri))
        try:
            declared = transfer.next(until, uri)
            if isinstance(declared, int) and declared > limit:
                raise ArtifactError(f"{uri}: {declared} bytes is more than --max-bytes {limit}", final=True)
            while (chunk := transfer.next(until, uri, size)) is not None:
                assert isinstance(chunk, bytes)
                size += len(chunk)
                if size > limit:
                    raise ArtifactError(f"{uri}: larger than --max-bytes {limit}; download abandoned", final=True)
                yield chunk
        finally:
            transfer.stop()

    def read_bytes(self, uri: str, max_bytes: int | None = None) -> bytes:
        return b"".join(self.chunks(uri, max_bytes=max_bytes))

    def download_temp(self, uri: str, target: Path, deadline: float | None = None) -> tuple[str, Path]:
        """Stream ``uri`` into a temp file beside ``target``: (its sha256, the temp file). The caller renames
        it into place once the digest is checked, so a partial or tampered file never sits at ``target``."""
        digest = hashlib.sha256()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.chunks(uri, deadline):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest.hexdigest(), Path(tmp)

    def download(self, uri: str, target: Path) -> str:
        """``uri`` copied to ``target`` whole; returns its sha256."""
        digest, tmp = self.download_temp(uri, target)
        os.replace(tmp, target)
        return digest

    def local_copy(self, uri: str, scratch: Path) -> Path:
        """A local file holding what ``uri`` names: the file itself for file:// and pvc://, else a download
        into ``scratch`` (named after the URI's last segment, so its suffix still says CSV or Parquet)."""
        path = self.local_path(uri)
        if path is not None:
            if not path.exists():
                raise ArtifactError(f"{uri}: {path} does not exist", missing=True)
            return path
        target = scratch / (uris.basename(uri) or "download")
        self.download(uri, target)
        return target

    # -- writing -----------------------------------------------------------------------------------
    def _writable(self, uri: str) -> Path | None:
        if uris.scheme(uri) not in uris.WRITABLE_SCHEMES:
            raise ArtifactError(f"{uri}: only file://, pvc:// and s3:// can be written or listed "
                                "(http(s) is read-only)")
        return self.local_path(uri)

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = self._writable(uri)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                _atomic_copy(path, lambda out: out.write(data))
            except OSError as exc:
                raise ArtifactError(f"{uri}: {exc}") from None
            return
        bucket, key = uris.split_s3(uri)
        try:
            s3_client(self.timeout).put_object(Bucket=bucket, Key=key, Body=data)
        except Exception as exc:
            raise _s3_error(uri, exc) from None

    def upload(self, source: Path, uri: str) -> None:
        """Copy the local file ``source`` to ``uri`` (whole or not at all)."""
        path = self._writable(uri)
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                with source.open("rb") as src:
                    _atomic_copy(path, lambda out: shutil.copyfileobj(src, out, CHUNK))
                return
            bucket, key = uris.split_s3(uri)
            with source.open("rb") as src:
                s3_client(self.timeout).put_object(Bucket=bucket, Key=key, Body=src)
        except ArtifactError:
            raise
        except Exception as exc:
            raise _s3_error(uri, exc) from None

    # -- listing -----------------------------------------------------------------------------------
    def list_files(self, uri: str, suffix: str = "") -> list[str]:
        """URIs of the files under folder ``uri`` (recursively) ending in ``suffix``, sorted; hidden files
        (a writer's temp files) left out."""
        path = self._writable(uri)
        if path is not None:
            if not path.is_dir():
                return []
            return sorted(
                uris.join(uri, str(p.relative_to(path)))
                for p in path.rglob(f"*{suffix}")
                if p.is_file() and not p.name.startswith(".")
            )
        bucket, prefix = uris.split_s3(uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        out: list[str] = []
        try:
            for page in s3_client(self.timeout).get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                                        Prefix=prefix):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if key.endswith(suffix) and not key.rsplit("/", 1)[-1].startswith("."):
                        out.append(f"s3://{bucket}/{key}")
        except Exception as exc:
            raise _s3_error(uri, exc) from None
        return sorted(out)


def _atomic_copy(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write`` into a temp file beside ``path``, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_EOF = object()


class _Transfer:
    """One read in a thread of its own, handing chunks over a small queue.

    The caller waits on the queue with its deadline, so a stalled or dripping source cannot hold it
    past the deadline. The thread owns the stream and closes it itself: closing a buffered stream from
    another thread while a read holds its lock would block the caller until that read returns.
    """

    def __init__(self, opener: Callable[[], Opened]) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=4)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(opener,), name="artifact-read", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, opener: Callable[[], Opened]) -> None:
        try:
            stream, declared = opener()
        except BaseException as exc:
            self._put(exc)
            return
        try:
            with stream:
                if not self._put(declared):
                    return
                # read1: whatever has arrived, so a drip is handed on as it comes.
                read = getattr(stream, "read1", stream.read)
                while not self._stopped.is_set():
                    chunk = read(CHUNK)
                    if not chunk:
                        self._put(_EOF)
                        return
                    if not self._put(bytes(chunk)):
                        return
        except BaseException as exc:
            self._put(exc)

    def next(self, deadline: float, uri: str, received: int = 0) -> object:
        """The next item (declared length first, then chunks); None at the end of the stream."""
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise queue.Empty
            item = self._queue.get(timeout=remaining)
        except queue.Empty:
            raise ArtifactError(f"{uri}: not downloaded within --max-time; download abandoned after {received} bytes",
                                final=True) from None
        if item is _EOF:
            return None
        if isinstance(item, ArtifactError):
            raise item
        if isinstance(item, BaseException):
            raise ArtifactError(f"{uri}: {item}") from None
        return item

    def stop(self) -> None:
        self._stopped.set()
