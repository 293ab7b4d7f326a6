"""The model directory format shared by the trainer (writer), the fetcher and the server (readers).

A model directory holds ``model.joblib`` or ``model.skops``, ``model.sha256`` (the hex digest of
that file) and ``metadata.json`` (:class:`ModelMetadata`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MODEL_FILES: dict[str, str] = {"joblib": "model.joblib", "skops": "model.skops"}
SHA256_FILE = "model.sha256"
METADATA_FILE = "metadata.json"
CHUNK = 1 << 20


class FeatureInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    dtype: str


class ModelMetadata(BaseModel):
    """What the trainer knows about a model and the server needs to serve and watch it."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    name: str
    version: str
    format: Literal["joblib", "skops"]
    task: Literal["classification", "regression"]
    features: list[FeatureInfo]
    classes: list[Any] = Field(default_factory=list)
    allow_nan: bool = False
    versions: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    baseline: dict[str, dict[str, Any]] = Field(default_factory=dict)
    prediction_baseline: dict[str, Any] | None = None
    examples: list[list[float]] = Field(default_factory=list)
    sha256: str = ""
    dataset: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(
        default_factory=dict,
        description="Where a retrained model came from: dataset URI/sha256/rows, holdout sha256, image, args, "
        "the trigger's evidence and the parent model's sha256.",
    )

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp file in the same directory and rename, so readers never see a partial file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def find_model_file(directory: Path) -> tuple[Path, Literal["joblib", "skops"]]:
    """The model file in ``directory``; exactly one format must be present."""
    found = [(directory / name, fmt) for fmt, name in MODEL_FILES.items() if (directory / name).is_file()]
    if not found:
        raise FileNotFoundError(f"no model.joblib or model.skops in {directory}")
    if len(found) > 1:
        raise ValueError(f"{directory} holds both model.joblib and model.skops; keep one")
    path, fmt = found[0]
    return path, "joblib" if fmt == "joblib" else "skops"
