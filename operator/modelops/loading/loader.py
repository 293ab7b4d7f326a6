"""Load a model directory safely: the one way a model file becomes an estimator.

Called by the model server (``modelops serve``) before it forks its workers, by ``modelops evaluate``
and the retraining Job (both models of the gate are loaded as the server loads them), and by the
benchmark to time model loading. Safety rules: a joblib file (a pickle: loading runs code) is
opened only after its sha256 matches; a skops file is loaded with an explicit list of trusted
types and refused if it holds others; a model trained with another scikit-learn minor version
(or numpy major version) is refused unless the caller allows it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelops.artifacts.digest import sha256_file
from modelops.artifacts.model_dir import METADATA_FILE, SHA256_FILE, ModelMetadata, find_model_file, read_sha256

log = logging.getLogger(__name__)

# Types that skops does not trust by default but that our trainer produces. Everything else a
# skops file asks for is refused, unless the operator of the server names it (`modelops serve
# --trust-type`, which the tests use for their deliberately bad models). Keep this list short.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


class ModelLoadError(Exception):
    """The model directory cannot be served; the message says why and what to do."""


@dataclass
class LoadedModel:
    model: Any
    metadata: ModelMetadata
    path: Path
    sha256: str
    load_seconds: float


def _major_minor(version: str) -> tuple[int, int]:
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return (-1, -1)


def check_versions(metadata: ModelMetadata) -> list[str]:
    """Problems that make the model unsafe to trust in this runtime (empty when compatible)."""
    import sklearn

    problems: list[str] = []
    trained = metadata.versions.get("scikit-learn")
    if trained is None:
        problems.append("metadata.json does not say which scikit-learn version trained the model")
    elif _major_minor(trained) != _major_minor(sklearn.__version__):
        problems.append(f"model was trained with scikit-learn {trained} but this server runs {sklearn.__version__}")
    trained_np = metadata.versions.get("numpy")
    if trained_np is not None and trained_np.split(".")[0] != np.__version__.split(".")[0]:
        problems.append(f"model was trained with numpy {trained_np} but this server runs {np.__version__}")
    return problems


def load_model_dir(
    directory: Path,
    sha256: str | None = None,
    allow_version_mismatch: bool = False,
    trusted_types: Sequence[str] = (),
) -> LoadedModel:
    """Verify and load ``directory``. ``sha256`` overrides the digest in ``model.sha256``;
    ``trusted_types`` are trusted in a skops file besides ``TRUSTED_TYPES``."""
    started = time.perf_counter()
    try:
        model_path, fmt = find_model_file(directory)
    except (FileNotFoundError, ValueError) as exc:
        raise ModelLoadError(str(exc)) from exc
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise ModelLoadError(f"{meta_path} is missing; the server needs the trainer's metadata")
    try:
        metadata = ModelMetadata.model_validate(json.loads(meta_path.read_text()))
    except (ValueError, OSError) as exc:
        raise ModelLoadError(f"{meta_path} is not valid model metadata: {exc}") from exc
    if metadata.format != fmt:
        raise ModelLoadError(f"metadata.json says format {metadata.format} but the directory holds {model_path.name}")

    expected = (sha256 or "").strip().lower() or read_sha256(directory)
    actual = sha256_file(model_path)
    if fmt == "joblib" and not expected:
        raise ModelLoadError(
            f"refusing to load {model_path}: joblib files run code when loaded and no sha256 was given "
            f"(pass --sha256 or provide {SHA256_FILE})"
        )
    if expected and expected != actual:
        raise ModelLoadError(f"sha256 mismatch for {model_path}: expected {expected}, actual {actual}")

    problems = check_versions(metadata)
    if problems:
        if not allow_version_mismatch:
            raise ModelLoadError(
                "; ".join(problems) + ". Retrain the model with this runtime, or pass --allow-version-mismatch "
                "to serve it anyway"
            )
        for problem in problems:
            log.warning("serving despite version mismatch: %s", problem)

    import warnings

    with warnings.catch_warnings():
        # The version check above already decided; don't let sklearn's pickle warning spam logs.
        warnings.simplefilter("ignore")
        if fmt == "joblib":
            import joblib

            model = joblib.load(model_path)
        else:
            model = _load_skops(model_path, (*TRUSTED_TYPES, *trusted_types))
    n_in = getattr(model, "n_features_in_", None)
    if n_in is None:
        n_in = getattr(getattr(model, "estimator", None), "n_features_in_", None)
    if n_in is not None and int(n_in) != len(metadata.features):
        raise ModelLoadError(f"the model expects {n_in} features but metadata.json lists {len(metadata.features)}")
    return LoadedModel(model, metadata, model_path, actual, time.perf_counter() - started)


def _load_skops(path: Path, trusted: Sequence[str]) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=str(path))
    refused = sorted(set(untrusted) - set(trusted))
    if refused:
        raise ModelLoadError(f"refusing to load {path}: it contains types that are not trusted: {', '.join(refused)}")
    return skops.io.load(str(path), trusted=[t for t in untrusted if t in trusted])
