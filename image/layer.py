"""Append one layer of Python code to an OCI image archive, without buildah (image/build.sh, step 4).

`make image` builds each role's dependencies with buildah (the Containerfile with
DEPENDENCIES_ONLY=1: the virtualenv in /opt/modelops without the project) and caches that archive by
everything but the project's own source. This script then puts the project on top as ONE layer:

* ``--wheel W``: the wheel is installed (the ``installer`` library) into a staging tree laid out
  as the image's virtualenv (``/opt/modelops/lib/python3.11/site-packages``, scripts in
  ``/opt/modelops/bin`` with ``#!/opt/modelops/bin/python3``);
* ``--package DIR``: a plain package directory is copied into the same site-packages (the test
  image's ``modelops_testing``);
* every ``.py`` is compiled for the image's Python 3.11 as an unchecked-hash pyc (the root
  filesystem is read-only at run time: a pyc Python cannot trust would be recompiled in memory on
  every start);
* each top-level package and ``.dist-info`` directory starts with an OCI opaque whiteout
  (``.wh..wh..opq``), so the layer replaces the directory wholesale: a module deleted from the
  source is gone from the image even if a lower layer had it;
* the layer is a deterministic tar (sorted, root-owned, one mtime, gzip without a timestamp), so the
  same source gives the same digest; the new config (diff_ids, history, labels, created) and
  manifest are written with the base's blobs into a new OCI archive naming ``--ref``.

    python image/layer.py --base deps.oci.tar --out dist/x.oci.tar --ref docker.io/library/x:0.1.0 \\
        --wheel image/wheels/modelops_operator-0.1.0-py3-none-any.whl --created 1700000000 \\
        --label org.opencontainers.image.revision=abc123

An output archive that already holds the same manifest is left alone ("unchanged"). Python 3.11 on
the host (the pycs' magic number must be the image's); ``installer`` for ``--wheel``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import py_compile
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import IO, Any

PREFIX = PurePosixPath("/opt/modelops")
PYTHON = "python3.11"
SITE = PREFIX / "lib" / PYTHON / "site-packages"
INTERPRETER = str(PREFIX / "bin" / "python3")
IMAGE_PYTHON = (3, 11)
OPAQUE = ".wh..wh..opq"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"


def rel(path: PurePosixPath) -> Path:
    """An absolute image path as a path relative to a staging root."""
    return Path(*path.parts[1:])


def install_wheel(wheel: Path, staging: Path) -> list[str]:
    """Install ``wheel`` into ``staging`` as the image's virtualenv would hold it; the top-level
    names it put into site-packages (packages, modules, its .dist-info)."""
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    schemes = {"purelib": str(SITE), "platlib": str(SITE), "scripts": str(PREFIX / "bin"),
               "data": str(PREFIX), "headers": str(PREFIX / "include" / PYTHON)}
    destination = SchemeDictionaryDestination(schemes, interpreter=INTERPRETER, script_kind="posix",
                                              destdir=str(staging))
    with WheelFile.open(wheel) as source:
        install(source, destination, additional_metadata={"INSTALLER": b"modelops image/layer.py\n"})
    return sorted(p.name for p in (staging / rel(SITE)).iterdir())


def copy_package(package: Path, staging: Path) -> list[str]:
    """Copy the package directory ``package`` (sources and data, no caches) into site-packages."""
    target = staging / rel(SITE) / package.name
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    return [package.name]


def compile_tree(staging: Path) -> int:
    """Unchecked-hash pycs for every .py under the staging site-packages, with in-image file names."""
    count = 0
    site = staging / rel(SITE)
    for source in sorted(site.rglob("*.py")):
        in_image = SITE / source.relative_to(site).as_posix()
        py_compile.compile(str(source), dfile=str(in_image), doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        count += 1
    return count


def layer_tar(staging: Path, opaque: list[PurePosixPath], mtime: int) -> bytes:
    """The staging tree as an uncompressed, reproducible layer tar, with an opaque whiteout first
    in each directory of ``opaque``."""
    buf = io.BytesIO()
    opaque_set = {rel(p).as_posix() for p in opaque}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.size, ti.mtime = kind, mode, size, mtime
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            return ti

        paths = sorted(staging.rglob("*"), key=lambda p: p.relative_to(staging).as_posix())
        for path in paths:
            name = path.relative_to(staging).as_posix()
            if path.is_symlink():
                ti = info(name, tarfile.SYMTYPE, 0o777)
                ti.linkname = os.readlink(path)
                tar.addfile(ti)
            elif path.is_dir():
                tar.addfile(info(name, tarfile.DIRTYPE, 0o755))
                if name in opaque_set:
                    tar.addfile(info(f"{name}/{OPAQUE}", tarfile.REGTYPE, 0o644))
            else:
                executable = path.stat().st_mode & 0o111
                data = path.read_bytes()
                tar.addfile(info(name, tarfile.REGTYPE, 0o755 if executable else 0o644, len(data)), io.BytesIO(data))
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def read_layout(archive: tarfile.TarFile) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(index, manifest, config) of the one image in an OCI archive."""

    def member(name: str) -> Any:
        f = archive.extractfile(name)
        if f is None:
            raise SystemExit(f"{archive.name}: no {name}")
        return json.loads(f.read())

    index = member("index.json")
    if len(index["manifests"]) != 1:
        raise SystemExit(f"{archive.name}: expected one image in index.json, found {len(index['manifests'])}")
    manifest = member("blobs/" + index["manifests"][0]["digest"].replace(":", "/"))
    config = member("blobs/" + manifest["config"]["digest"].replace(":", "/"))
    return index, manifest, config


def current_manifest(out: Path) -> str | None:
    """The manifest digest an existing output archive names, if it is a readable OCI archive."""
    try:
        with tarfile.open(out) as tar:
            f = tar.extractfile("index.json")
            return str(json.loads(f.read())["manifests"][0]["digest"]) if f else None
    except (OSError, KeyError, tarfile.TarError, ValueError, IndexError):
        return None


def write_archive(base: tarfile.TarFile, out: Path, keep: set[str], blobs: dict[str, bytes],
                  index: dict[str, Any], mtime: int) -> None:
    """``out``: the base's blobs named in ``keep``, the new ``blobs``, oci-layout and ``index``."""
    partial = out.with_name(out.name + ".partial")
    with open(partial, "wb") as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, data: bytes | None = None, fileobj: IO[bytes] | None = None, size: int = 0) -> None:
            ti = tarfile.TarInfo(name)
            ti.mode, ti.mtime = 0o644, mtime
            if data is not None:
                ti.size = len(data)
                fileobj = io.BytesIO(data)
            else:
                ti.size = size
            tar.addfile(ti, fileobj)

        for m in base.getmembers():
            if m.isfile() and m.name.startswith("blobs/") and m.name.split("/", 1)[1].replace("/", ":") in keep:
                add(m.name, fileobj=base.extractfile(m), size=m.size)
        for digest, data in sorted(blobs.items()):
            add("blobs/" + digest.replace(":", "/"), data)
        add("oci-layout", canonical({"imageLayoutVersion": "1.0.0"}))
        add("index.json", canonical(index))
    partial.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image/layer.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="OCI archive the layer goes on")
    parser.add_argument("--out", type=Path, required=True, help="OCI archive to write")
    parser.add_argument("--ref", required=True, help="image name in the new archive's index.json")
    parser.add_argument("--wheel", type=Path, action="append", default=[], help="wheel to install")
    parser.add_argument("--package", type=Path, action="append", default=[], help="package dir to copy")
    parser.add_argument("--created", type=int, default=int(os.environ.get("SOURCE_DATE_EPOCH", "0")),
                        help="creation time and file mtime (seconds since the epoch)")
    parser.add_argument("--label", action="append", default=[], help="KEY=VALUE set in the config's labels")
    ns = parser.parse_args(argv)
    if sys.version_info[:2] != IMAGE_PYTHON:
        raise SystemExit(f"image/layer.py: Python {IMAGE_PYTHON[0]}.{IMAGE_PYTHON[1]} is needed (the image's); "
                         f"this is {sys.version.split()[0]}")
    if not ns.wheel and not ns.package:
        parser.error("nothing to add: give --wheel and/or --package")
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="modelops-layer-") as tmp:
        staging = Path(tmp)
        (staging / rel(SITE)).mkdir(parents=True)
        top: list[str] = []
        for wheel in ns.wheel:
            top += install_wheel(wheel, staging)
        for package in ns.package:
            top += copy_package(package.resolve(), staging)
        modules = compile_tree(staging)
        opaque = [SITE / name for name in sorted(set(top)) if (staging / rel(SITE) / name).is_dir()]
        tar = layer_tar(staging, opaque, ns.created)

    layer = gzip.compress(tar, compresslevel=6, mtime=0)
    diff_id, digest = sha256(tar), sha256(layer)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns.created))
    what = ", ".join([w.name for w in ns.wheel] + [f"{p.name}/" for p in ns.package])

    with tarfile.open(ns.base) as base:
        _, manifest, config = read_layout(base)
        config = json.loads(json.dumps(config))
        config["created"] = created
        config.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(diff_id)
        config.setdefault("history", []).append({
            "created": created,
            "created_by": f"image/layer.py: {what} into {SITE} ({modules} unchecked-hash pycs)",
            "comment": "opaque: " + " ".join(str(p) for p in opaque),
        })
        labels = config.setdefault("config", {}).setdefault("Labels", {}) or {}
        for label in ns.label:
            key, sep, value = label.partition("=")
            if not sep:
                parser.error(f"--label {label!r}: expected KEY=VALUE")
            labels[key] = value
        config["config"]["Labels"] = labels
        config_blob = canonical(config)
        new_manifest = dict(manifest)
        new_manifest["config"] = {"mediaType": CONFIG_MEDIA_TYPE, "digest": sha256(config_blob),
                                  "size": len(config_blob)}
        new_manifest["layers"] = [*manifest["layers"], {"mediaType": LAYER_MEDIA_TYPE, "digest": digest,
                                                        "size": len(layer)}]
        manifest_blob = canonical(new_manifest)
        new_index = {"schemaVersion": 2, "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE, "digest": sha256(manifest_blob), "size": len(manifest_blob),
            "annotations": {REF_ANNOTATION: ns.ref}}]}
        if current_manifest(ns.out) == sha256(manifest_blob):
            state = "unchanged"
        else:
            keep = {layer["digest"] for layer in manifest["layers"]}
            blobs = {digest: layer, sha256(config_blob): config_blob, sha256(manifest_blob): manifest_blob}
            write_archive(base, ns.out, keep, blobs, new_index, ns.created)
            state = "written"
    print(f"{ns.out}: {state}; layer {digest[7:19]} ({len(layer) / 1e6:.1f} MB, {modules} modules: {what}) "
          f"on {len(manifest['layers'])} base layers, in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
