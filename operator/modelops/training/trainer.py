"""Train a scikit-learn pipeline and write a model directory (`modelops train`).

Run by retraining Jobs and by whoever makes demo models. Output: the model file (joblib or
skops), ``model.sha256`` and ``metadata.json`` with everything the server needs to validate
inputs, refuse an incompatible runtime and watch for drift.
"""

from __future__ import annotations

import io
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from modelops.artifacts.model_dir import (
    METADATA_FILE,
    MODEL_FILES,
    FeatureInfo,
    ModelMetadata,
    atomic_write_bytes,
    keep_only,
    write_sha256,
)
from modelops.drift import categorical_baseline, numeric_baseline

BUILTIN_DATASETS = ("iris", "wine", "breast_cancer", "diabetes")
ESTIMATORS = ("linear", "forest", "hgb")


@dataclass
class TrainOptions:
    dataset: str
    output: Path
    format: Literal["joblib", "skops"] = "joblib"
    target: str | None = None
    version: str = "1"
    name: str | None = None
    task: Literal["auto", "classification", "regression"] = "auto"
    estimator: str = "linear"
    seed: int = 0
    test_size: float = 0.25
    bins: int = 10
    shuffle_labels: bool = False
    # Wraps the fitted model before it is written (gets the model and the dataset). The product never
    # sets it; tests use it for deliberately slow or failing models (tests/models/modelops_testing).
    wrap: Callable[[Any, Dataset], Any] | None = None
    # More options recorded in metadata.json's ``options`` (whoever sets ``wrap`` says what it did).
    extra: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)  # recorded in metadata.json as is


@dataclass
class Dataset:
    X: npt.NDArray[np.float64]
    y: npt.NDArray[Any]
    feature_names: list[str]
    feature_dtypes: list[str]
    name: str


def load_dataset(spec: str, target: str | None = None) -> Dataset:
    """A built-in scikit-learn dataset by name, or a CSV / Parquet file, a path or any URI the artifact
    store reads (target column = ``target`` or the last column). Feature columns must be numeric."""
    if "://" in spec:
        import tempfile

        from modelops.artifacts.errors import ArtifactError
        from modelops.artifacts.store import ArtifactStore

        with tempfile.TemporaryDirectory(prefix="modelops-dataset-") as scratch:
            try:
                local = ArtifactStore().local_copy(spec, Path(scratch))
            except ArtifactError as error:
                raise ValueError(f"dataset {error}") from None  # `modelops train` reports bad input as exit 2
            data = load_dataset(str(local), target)
        data.name = spec
        return data
    if spec in BUILTIN_DATASETS:
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{spec}")()
        X = np.asarray(bunch.data, dtype=np.float64)
        names = [_clean_name(str(n)) for n in bunch.feature_names]
        return Dataset(X, np.asarray(bunch.target), names, ["float64"] * len(names), spec)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"dataset {spec!r} is neither one of {', '.join(BUILTIN_DATASETS)} nor a file")
    import pandas as pd

    if path.suffix.lower() == ".csv":
        frame = pd.read_csv(path)
    elif path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        raise ValueError(f"dataset file {path} must end in .csv or .parquet")
    if frame.shape[1] < 2:
        raise ValueError(f"{path} needs at least one feature column and a target column")
    target_col = target if target is not None else str(frame.columns[-1])
    if target_col not in frame.columns:
        raise ValueError(f"target column {target_col!r} not in {path} (columns: {list(frame.columns)})")
    features = frame.drop(columns=[target_col])
    non_numeric = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise ValueError(f"feature columns must be numeric; these are not: {non_numeric}")
    y = frame[target_col].to_numpy()
    return Dataset(
        features.to_numpy(dtype=np.float64),
        y,
        [str(c) for c in features.columns],
        [str(features[c].dtype) for c in features.columns],
        str(path),
    )


def infer_task(y: npt.NDArray[Any]) -> Literal["classification", "regression"]:
    if y.dtype.kind in "OUSb":
        return "classification"
    if y.dtype.kind == "f" and not np.all(np.equal(np.mod(y, 1), 0)):
        return "regression"
    # Integer targets: few distinct values means classes.
    return "classification" if np.unique(y).size <= max(20, int(0.05 * y.size)) else "regression"


def build_pipeline(task: str, estimator: str, seed: int) -> Any:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, not {estimator!r}")
    est: Any
    if task == "classification":
        if estimator == "linear":
            from sklearn.linear_model import LogisticRegression

            est = LogisticRegression(max_iter=2000)
        elif estimator == "forest":
            from sklearn.ensemble import RandomForestClassifier

            est = RandomForestClassifier(n_estimators=50, random_state=seed, n_jobs=1)
        else:
            from sklearn.ensemble import HistGradientBoostingClassifier

            est = HistGradientBoostingClassifier(random_state=seed)
    else:
        if estimator == "linear":
            from sklearn.linear_model import Ridge

            est = Ridge(alpha=1.0)
        elif estimator == "forest":
            from sklearn.ensemble import RandomForestRegressor

            est = RandomForestRegressor(n_estimators=50, random_state=seed, n_jobs=1)
        else:
            from sklearn.ensemble import HistGradientBoostingRegressor

            est = HistGradientBoostingRegressor(random_state=seed)
    if estimator == "hgb":
        # Gradient boosting handles NaN itself; a scaler would too but adds nothing.
        return Pipeline([("model", est)])
    return Pipeline([("scaler", StandardScaler()), ("model", est)])


def runtime_versions() -> dict[str, str]:
    import joblib
    import sklearn

    return {
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _to_builtin(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def train(opts: TrainOptions) -> ModelMetadata:
    """Train, evaluate on a held-out split, then refit on all data and write the model directory."""
    from sklearn.model_selection import train_test_split

    if opts.format not in MODEL_FILES:
        raise ValueError(f"format must be joblib or skops, not {opts.format!r}")
    data = load_dataset(opts.dataset, opts.target)
    task = infer_task(data.y) if opts.task == "auto" else opts.task
    if opts.estimator != "hgb" and not np.all(np.isfinite(data.X)):
        raise ValueError("the dataset has missing or infinite feature values; use --estimator hgb")
    rng = np.random.default_rng(opts.seed)
    stratify = data.y if task == "classification" else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        data.X, data.y, test_size=opts.test_size, random_state=opts.seed, stratify=stratify
    )
    if opts.shuffle_labels:
        # A deliberately worse model: labels no longer belong to their rows.
        y_tr = rng.permutation(y_tr)
    model = build_pipeline(task, opts.estimator, opts.seed).fit(X_tr, y_tr)
    metrics = _evaluate(task, model, X_te, y_te)
    # Refit on everything for the served model (still shuffled if asked: the point is a bad model).
    y_all = rng.permutation(data.y) if opts.shuffle_labels else data.y
    model = build_pipeline(task, opts.estimator, opts.seed).fit(data.X, y_all)
    served: Any = model if opts.wrap is None else opts.wrap(model, data)

    baseline = {
        name: numeric_baseline(data.X[:, i], bins=opts.bins).to_dict() for i, name in enumerate(data.feature_names)
    }
    preds = model.predict(data.X)
    classes: list[Any] = []
    if task == "classification":
        classes = [_to_builtin(c) for c in model.classes_]
        prediction_baseline = categorical_baseline(preds, classes).to_dict()
    else:
        prediction_baseline = numeric_baseline(preds, bins=opts.bins).to_dict()

    opts.output.mkdir(parents=True, exist_ok=True)
    model_bytes = _serialize(served, opts.format)
    import hashlib

    digest = hashlib.sha256(model_bytes).hexdigest()
    keep_only(opts.output, MODEL_FILES[opts.format])
    atomic_write_bytes(opts.output / MODEL_FILES[opts.format], model_bytes)
    write_sha256(opts.output, digest)
    options = {
        "estimator": opts.estimator,
        "seed": opts.seed,
        "shuffle_labels": opts.shuffle_labels,
        **opts.extra,
    }
    meta = ModelMetadata(
        name=opts.name or Path(data.name).stem.replace("_", "-"),
        version=opts.version,
        format=opts.format,
        task=task,
        features=[FeatureInfo(name=n, dtype=d) for n, d in zip(data.feature_names, data.feature_dtypes, strict=True)],
        classes=classes,
        allow_nan=opts.estimator == "hgb",
        versions=runtime_versions(),
        metrics=metrics,
        baseline=baseline,
        prediction_baseline=prediction_baseline,
        examples=[[float(v) for v in row] for row in X_te[:5]],
        sha256=digest,
        dataset=data.name,
        options=options,
        lineage={**opts.lineage, "rows": int(data.X.shape[0])} if opts.lineage else {},
    )
    atomic_write_bytes(opts.output / METADATA_FILE, (json.dumps(meta.model_dump(), indent=2) + "\n").encode())
    return meta


def _evaluate(task: str, model: Any, X: npt.NDArray[np.float64], y: npt.NDArray[Any]) -> dict[str, float]:
    from sklearn import metrics

    pred = model.predict(X)
    if task == "classification":
        return {
            "accuracy": float(metrics.accuracy_score(y, pred)),
            "f1_macro": float(metrics.f1_score(y, pred, average="macro")),
            "test_rows": float(len(y)),
        }
    return {
        "r2": float(metrics.r2_score(y, pred)),
        "mae": float(metrics.mean_absolute_error(y, pred)),
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, pred))),
        "test_rows": float(len(y)),
    }


def _serialize(model: Any, fmt: str) -> bytes:
    if fmt == "joblib":
        import joblib

        buf = io.BytesIO()
        joblib.dump(model, buf)
        return buf.getvalue()
    import skops.io

    data: bytes = skops.io.dumps(model)
    return data


def _clean_name(name: str) -> str:
    """'sepal length (cm)' -> 'sepal_length_cm': names usable as tensor names and column names."""
    import re

    return re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_")
