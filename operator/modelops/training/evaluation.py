"""`modelops evaluate`: score a candidate and the current model on the same frozen holdout, and gate.

Called by the `evaluate` command and by `modelops retrain-job` after training. Both models are
loaded the way the server loads them (sha256 verified before a joblib file is opened) and predict
the same holdout rows; the candidate passes when it reaches the bound (minValue, or maxValue for
mae) and beats the current model by minImprovement in the metric's good direction.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from modelops.artifacts import uri as uris
from modelops.artifacts.store import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS
from modelops.retraining.result import GateOutcome
from modelops.training.trainer import load_dataset

METRICS = ("accuracy", "f1", "r2", "mae")
LOWER_IS_BETTER = frozenset({"mae"})


class EvaluationError(Exception):
    """A model or the holdout cannot be scored; the message says which."""


@dataclass(frozen=True)
class GateRule:
    metric: str
    min_value: float | None = None
    max_value: float | None = None
    min_improvement: float = 0.0

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise EvaluationError(f"--metric must be one of {METRICS}, not {self.metric!r}")
        if self.metric in LOWER_IS_BETTER and self.min_value is not None:
            raise EvaluationError(f"{self.metric} is lower-is-better: use --max-value, not --min-value")
        if self.metric not in LOWER_IS_BETTER and self.max_value is not None:
            raise EvaluationError(f"{self.metric} is higher-is-better: use --min-value, not --max-value")


def score(metric: str, y_true: npt.NDArray[Any], y_pred: npt.NDArray[Any]) -> float:
    from sklearn import metrics

    if metric == "accuracy":
        return float(metrics.accuracy_score(y_true, y_pred))
    if metric == "f1":
        return float(metrics.f1_score(y_true, y_pred, average="macro"))
    if metric == "r2":
        return float(metrics.r2_score(y_true, y_pred))
    if metric == "mae":
        return float(metrics.mean_absolute_error(y_true, y_pred))
    raise EvaluationError(f"unknown metric {metric!r}")


def judge(rule: GateRule, candidate: float, current: float | None) -> GateOutcome:
    """Whether `candidate` passes `rule` against `current` (None: no current model to beat)."""
    lower = rule.metric in LOWER_IS_BETTER
    reasons: list[str] = []
    if rule.min_value is not None and candidate < rule.min_value:
        reasons.append(f"{rule.metric} {candidate:.4g} < minValue {rule.min_value:g}")
    if rule.max_value is not None and candidate > rule.max_value:
        reasons.append(f"{rule.metric} {candidate:.4g} > maxValue {rule.max_value:g}")
    if current is not None:
        gain = (current - candidate) if lower else (candidate - current)
        if gain < rule.min_improvement:
            reasons.append(f"improvement {gain:+.4g} over current {current:.4g} < minImprovement "
                           f"{rule.min_improvement:g}")
    message = "; ".join(reasons) if reasons else "passed"
    return GateOutcome(metric=rule.metric, candidate=candidate, current=current, passed=not reasons, message=message)


def load_model(uri_or_dir: str, sha256: str | None, pvc_root: Path, max_bytes: int = DEFAULT_MAX_BYTES,
               max_seconds: float = DEFAULT_MAX_SECONDS) -> Any:
    """A model directory, or a model file URI fetched (and verified) like a serving pod does."""
    from modelops.artifacts.errors import ArtifactError
    from modelops.artifacts.fetch import fetch_model
    from modelops.loading.loader import ModelLoadError, load_model_dir

    try:
        path = uris.local_path(uri_or_dir, pvc_root) if "://" in uri_or_dir else Path(uri_or_dir)
        if path is not None and path.is_dir():
            return load_model_dir(path, sha256)
        with tempfile.TemporaryDirectory(prefix="modelops-eval-") as tmp:
            fetch_model(uri_or_dir if "://" in uri_or_dir else path.as_uri() if path else uri_or_dir,
                        sha256, Path(tmp), pvc_root, max_bytes=max_bytes, max_seconds=max_seconds)
            return load_model_dir(Path(tmp), sha256)
    except (ArtifactError, ModelLoadError, OSError) as error:
        raise EvaluationError(f"cannot load model {uri_or_dir}: {error}") from error


def holdout_rows(path: Path, target: str | None, feature_names: list[str]) -> tuple[npt.NDArray[np.float64],
                                                                                     npt.NDArray[Any]]:
    """The holdout's features in the model's feature order, and its labels."""
    data = load_dataset(str(path), target)
    if data.feature_names == feature_names:
        return data.X, data.y
    index = {name: i for i, name in enumerate(data.feature_names)}
    missing = [n for n in feature_names if n not in index]
    if missing:
        raise EvaluationError(f"holdout {path} lacks the model's feature columns {missing}")
    return data.X[:, [index[n] for n in feature_names]], data.y


def evaluate(candidate: Any, current: Any | None, holdout: Path, target: str | None, rule: GateRule) -> GateOutcome:
    """Score both loaded models (modelops.loading.loader.LoadedModel) on the holdout and judge."""
    X, y = holdout_rows(holdout, target, candidate.metadata.feature_names)
    candidate_score = score(rule.metric, y, candidate.model.predict(X))
    current_score = None
    if current is not None:
        Xc, yc = holdout_rows(holdout, target, current.metadata.feature_names)
        current_score = score(rule.metric, yc, current.model.predict(Xc))
    return judge(rule, candidate_score, current_score)
