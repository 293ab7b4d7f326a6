"""Where the training tools read and write: file:// and pvc:// URIs as local paths, http(s) downloads.

Called by `modelops retrain-job` and `modelops evaluate` (modelops.training.retrain_job). pvc://<claim>/<path>
resolves under the claim's mount point (`--pvc-root`/<claim>, where the Job builder mounts it), the
same rule the serving pods' fetch step follows. s3:// is refused with a message saying so until the
object-storage client lands.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.parse
import urllib.request
from pathlib import Path, PurePosixPath

CHUNK = 1 << 20


class StorageError(Exception):
    """A URI cannot be read or written; the message names it."""


def local_path(uri: str, pvc_root: Path) -> Path | None:
    """The local path of a file:// or pvc:// URI; None for http(s)://."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.netloc + parsed.path))
    if parsed.scheme == "pvc":
        rel = PurePosixPath(urllib.parse.unquote(parsed.path.lstrip("/")))
        if not parsed.netloc or not rel.parts or ".." in rel.parts:
            raise StorageError(f"{uri}: expected pvc://<claim>/<path inside the volume> without '..'")
        return pvc_root / parsed.netloc / Path(*rel.parts)
    if parsed.scheme in ("http", "https"):
        return None
    if parsed.scheme == "s3":
        raise StorageError(f"{uri}: s3:// is not supported by this build of the training tools yet")
    raise StorageError(f"{uri}: unsupported scheme {parsed.scheme!r} (use file://, pvc:// or http(s)://)")


def readable(uri: str, pvc_root: Path, scratch: Path) -> Path:
    """A local file holding the data at `uri` (downloaded into `scratch` when remote)."""
    path = local_path(uri, pvc_root)
    if path is not None:
        if not path.exists():
            raise StorageError(f"{uri}: {path} does not exist")
        return path
    name = PurePosixPath(urllib.parse.urlsplit(uri).path).name or "download"
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / name
    try:
        with urllib.request.urlopen(uri, timeout=60) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out, CHUNK)
    except OSError as error:
        raise StorageError(f"{uri}: download failed: {error}") from error
    return target


def writable_dir(uri: str, pvc_root: Path) -> Path:
    """The local directory an output URI names (created)."""
    path = local_path(uri, pvc_root)
    if path is None:
        raise StorageError(f"{uri}: output must be file:// or pvc:// (http is read-only)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_path(path: Path) -> str:
    """The sha256 of a file, or of a directory's files (names and contents, in sorted order)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
