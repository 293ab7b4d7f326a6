"""The model directory format shared by the trainer (writer), the fetch step and the server (readers).

A model directory holds ``model.joblib`` or ``model.skops`` (never both), ``model.sha256`` (the hex
digest of that file) and ``metadata.json`` (:class:`ModelMetadata`). Only the format lives here; turning
the file into an estimator, with its safety checks, is modelops.loading's. Pure but for local files:
the API may import it without pulling any network client.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelops.artifacts.errors import ArtifactError

ModelFormat = Literal["joblib", "skops"]
MODEL_FILES: dict[str, str] = {"joblib": "model.joblib", "skops": "model.skops"}
SHA256_FILE = "model.sha256"
METADATA_FILE = "metadata.json"
MAX_METADATA_BYTES = 16 * 1024 * 1024


class FeatureInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    dtype: str


class ModelMetadata(BaseModel):
    """What the trainer knows about a model and the server needs to serve and watch it."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    name: str
    version: str
    format: ModelFormat
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


def model_file_for(name: str, source: str = "") -> str:
    """The file name a model called ``name`` (a URI's last segment) takes in a model directory; ``source``
    (the URI) is named in the error."""
    if name.endswith(".skops"):
        return MODEL_FILES["skops"]
    if name.endswith((".joblib", ".pkl")):
        return MODEL_FILES["joblib"]
    raise ArtifactError(f"{source or name}: the model file name must end in .joblib or .skops")


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


def keep_only(directory: Path, model_file: str) -> None:
    """Remove the other format's model file: a directory holding both would be ambiguous."""
    for name in MODEL_FILES.values():
        if name != model_file:
            (directory / name).unlink(missing_ok=True)


def write_sha256(directory: Path, digest: str) -> None:
    atomic_write_bytes(directory / SHA256_FILE, (digest + "\n").encode())


def read_sha256(directory: Path) -> str:
    """The digest recorded in ``model.sha256`` (lower-case), or '' when there is none."""
    path = directory / SHA256_FILE
    if not path.is_file():
        return ""
    words = path.read_text().split()
    return words[0].lower() if words else ""


def find_model_file(directory: Path) -> tuple[Path, ModelFormat]:
    """The model file in ``directory``; exactly one format must be present."""
    found = [(directory / name, fmt) for fmt, name in MODEL_FILES.items() if (directory / name).is_file()]
    if not found:
        raise FileNotFoundError(f"no model.joblib or model.skops in {directory}")
    if len(found) > 1:
        raise ValueError(f"{directory} holds both model.joblib and model.skops; keep one")
    path, fmt = found[0]
    return path, "joblib" if fmt == "joblib" else "skops"


def publish_order(directory: Path) -> list[Path]:
    """The files of a model directory in the order they are copied to a store: the model first and
    metadata.json last, so a reader that finds the metadata finds the model it describes."""
    files = [directory / name for name in (*MODEL_FILES.values(), SHA256_FILE, METADATA_FILE)]
    return [f for f in files if f.is_file()]
