"""Artifact URIs: ``file://``, ``pvc://<claim>/<path>``, ``s3://<bucket>/<key>`` and ``http(s)://``.

The one place that parses them. Pure (the standard library only), so the API's validators, the pod
builders (modelops.resources), the store and the fetch step all agree on what a URI names: above all
that ``pvc://<claim>/<path>`` is the file ``<pvc root>/<claim>/<path>``, because the builders mount the
claim there, and that no pvc:// URI reaches outside its claim.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path, PurePosixPath

from modelops.artifacts.errors import ArtifactError

PVC_ROOT = "/mnt/pvc"
SCHEMES = ("file", "pvc", "s3", "http", "https")
# http(s) is read-only: nothing we run owns a web server to write to.
WRITABLE_SCHEMES = ("file", "pvc", "s3")
LOCAL_SCHEMES = ("file", "pvc")
# A PersistentVolumeClaim name is a DNS-1123 subdomain.
_CLAIM = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def scheme(uri: str) -> str:
    """The scheme of ``uri``, lower-case; '' when it has none (a plain path)."""
    return urllib.parse.urlsplit(uri).scheme.lower() if "://" in uri else ""


def parse_pvc_uri(uri: str) -> tuple[str, PurePosixPath]:
    """``pvc://<claim>/<path>`` -> (claim, relative path). Refuses '..', absolute paths and bad claim names
    in either part, so a URI can never reach outside the claim's mount."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "pvc":
        raise ArtifactError(f"{uri}: not a pvc:// URI")
    claim = urllib.parse.unquote(parsed.netloc)
    if not claim:
        raise ArtifactError(f"{uri}: the claim is missing (expected pvc://<claim>/<path>; an absolute path "
                            "is not a claim)")
    if "/" in claim or claim in (".", "..") or len(claim) > 253 or not _CLAIM.match(claim):
        raise ArtifactError(f"{uri}: claim {claim!r} is not a PersistentVolumeClaim name "
                            "(lower-case DNS-1123 subdomain, no '..' or '/')")
    raw = urllib.parse.unquote(parsed.path)
    if raw.startswith("//"):
        raise ArtifactError(f"{uri}: the path inside claim {claim!r} must be relative, got {raw[1:]!r}")
    rel = PurePosixPath(raw.lstrip("/"))
    if ".." in rel.parts:
        raise ArtifactError(f"{uri}: the path inside claim {claim!r} must not contain '..'")
    return claim, rel


def pvc_claim(uri: str) -> str | None:
    """The claim a pvc:// URI lives on (unchecked: the API has checked it), else None."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "pvc":
        return None
    return parsed.netloc or None


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://<bucket>/<key>`` -> (bucket, key); the key may be '' (the whole bucket)."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ArtifactError(f"{uri}: expected s3://<bucket>/<key>")
    return parsed.netloc, urllib.parse.unquote(parsed.path.lstrip("/"))


def local_path(uri: str, pvc_root: Path | str = PVC_ROOT) -> Path | None:
    """The local file or folder a file:// or pvc:// URI names; None for s3:// and http(s)://."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.netloc + parsed.path))
    if parsed.scheme == "pvc":
        claim, rel = parse_pvc_uri(uri)
        return Path(pvc_root) / claim / Path(*rel.parts)
    if parsed.scheme in ("s3", "http", "https"):
        return None
    raise ArtifactError(f"{uri}: unsupported scheme {parsed.scheme!r} (use file://, pvc://, s3:// or http(s)://)")


def join(uri: str, *parts: str) -> str:
    """``uri`` with path parts appended (no normalisation: '..' stays '..', and is refused later)."""
    base = uri.rstrip("/")
    return "/".join([base, *(p.strip("/") for p in parts)])


def sibling(uri: str, name: str) -> str:
    """The URI of ``name`` in the same folder as ``uri`` (query and fragment dropped)."""
    parsed = urllib.parse.urlsplit(uri)
    path = parsed.path.rsplit("/", 1)[0] + "/" + name
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path, "", ""))


def basename(uri: str) -> str:
    """The last path segment of ``uri`` ('' for a bare host or bucket)."""
    return PurePosixPath(urllib.parse.urlsplit(uri).path).name
