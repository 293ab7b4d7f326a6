"""Read, write and list files named by a storage URI: ``file://``, ``pvc://<claim>/<path>`` or ``s3://``.

Used in pods by ``modelops fetch`` (model files), the request log of ``modelops serve``
(modelops.serving.datalog) and ``modelops dataset build`` (modelops.training.served_data).
``pvc://`` is the claim mounted under /mnt/pvc (modelops.resources.storage); ``s3://`` goes through
boto3, which reads its credentials and endpoint from the environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, ...: a Secret the pod reads via envFrom).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelops.resources.storage import PVC_ROOT, StorageURIError, parse_pvc_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SCHEMES = ("file", "pvc", "s3")


class StoreError(Exception):
    """A storage operation failed; the message names the URI."""


def local_path(uri: str, pvc_root: Path | str = PVC_ROOT) -> Path | None:
    """The local file of a file:// or pvc:// URI; None for s3://."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.netloc + parsed.path))
    if parsed.scheme == "pvc":
        try:
            claim, rel = parse_pvc_uri(uri)
        except StorageURIError as exc:
            raise StoreError(str(exc)) from None
        return Path(pvc_root) / claim / Path(*rel.parts)
    if parsed.scheme == "s3":
        return None
    raise StoreError(f"{uri}: unsupported scheme {parsed.scheme!r} (use file://, pvc:// or s3://)")


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StoreError(f"{uri}: expected s3://<bucket>/<key>")
    return parsed.netloc, urllib.parse.unquote(parsed.path.lstrip("/"))


def s3_client() -> S3Client:
    import boto3

    # boto3 honours AWS_ENDPOINT_URL(_S3) itself; path-style addressing works with every
    # S3-compatible server (MinIO, moto, Ceph) and with AWS.
    from botocore.config import Config

    # A session of its own: boto3's default session caches the credentials it found first.
    session = boto3.session.Session()
    return session.client("s3", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))


def join(uri: str, *parts: str) -> str:
    """``uri`` with path parts appended (no normalisation: '..' stays '..', and is refused later)."""
    base = uri.rstrip("/")
    return "/".join([base, *(p.strip("/") for p in parts)])


def write_bytes(uri: str, data: bytes) -> None:
    path = local_path(uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)  # readers never see half a file
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{uri}: {exc}") from None
        return
    bucket, key = split_s3(uri)
    try:
        s3_client().put_object(Bucket=bucket, Key=key, Body=data)
    except Exception as exc:  # botocore raises many unrelated classes
        raise StoreError(f"{uri}: {exc}") from None


def read_bytes(uri: str, limit: int | None = None) -> bytes:
    path = local_path(uri)
    try:
        if path is not None:
            with path.open("rb") as fh:
                return fh.read(-1 if limit is None else limit)
        bucket, key = split_s3(uri)
        body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        return bytes(body.read() if limit is None else body.read(limit))
    except FileNotFoundError:
        raise StoreError(f"{uri}: does not exist") from None
    except StoreError:
        raise
    except Exception as exc:
        if _s3_missing(exc):
            raise StoreError(f"{uri}: does not exist") from None
        raise StoreError(f"{uri}: {exc}") from None


def list_files(uri: str, suffix: str = "") -> list[str]:
    """URIs of the files under directory ``uri`` (recursively) ending in ``suffix``, sorted."""
    path = local_path(uri)
    if path is not None:
        if not path.is_dir():
            return []
        return sorted(
            join(uri, str(p.relative_to(path)))
            for p in path.rglob(f"*{suffix}")
            if p.is_file() and not p.name.startswith(".")
        )
    bucket, prefix = split_s3(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    out: list[str] = []
    try:
        for page in s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith(suffix) and not key.rsplit("/", 1)[-1].startswith("."):
                    out.append(f"s3://{bucket}/{key}")
    except Exception as exc:
        raise StoreError(f"{uri}: {exc}") from None
    return sorted(out)


def _s3_missing(exc: Any) -> bool:
    response = getattr(exc, "response", None)
    code = (response or {}).get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code in ("NoSuchKey", "404", "NotFound")
