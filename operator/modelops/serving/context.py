"""What a model-server worker needs from its supervisor, as data: :class:`WorkerContext`.

Built once by the supervisor (modelops.serving.server) after loading the model and before
forking; each forked worker (modelops.serving.worker) reads only this, never the supervisor, so
the two modules do not import each other. Also the two derived views of the model the workers
serve: its :class:`~modelops.serving.protocol.ModelSpec` and its OIP v2 metadata answer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from modelops.loading.loader import LoadedModel
from modelops.serving.dataplane import WorkerConfig
from modelops.serving.drift_monitor import SharedRing
from modelops.serving.feedback import FeedbackPlumbing
from modelops.serving.heartbeat import Heartbeats
from modelops.serving.predictor import Predictor
from modelops.serving.protocol import ModelSpec


@dataclass(frozen=True)
class WorkerContext:
    predictor: Predictor
    spec: ModelSpec
    metadata: dict[str, Any]  # the OIP v2 model metadata answer
    revision: str
    task: str  # "classification" or "regression"
    prediction_labels: list[Any]  # classes, or the regression baseline's bin edges (metrics buckets)
    config: WorkerConfig  # the limits, with index -1: :meth:`worker_config` fills it in
    ring: SharedRing  # rows and predictions to the supervisor's drift monitor
    heartbeats: Heartbeats
    feedback: FeedbackPlumbing
    host: str
    backlog: int
    grpc_port: int | None  # None: no gRPC

    def worker_config(self, index: int) -> WorkerConfig:
        return dataclasses.replace(self.config, index=index)


def model_spec(loaded: LoadedModel, predictor: Predictor, name: str, version: str, max_rows: int,
               allow_nan: bool | None) -> ModelSpec:  # fmt: skip
    """What decoding needs to know about the model (``allow_nan`` None: what its metadata says)."""
    meta = loaded.metadata
    classes = predictor.classes
    if meta.task == "regression":
        datatype = "FP64"
    elif classes is not None and classes.dtype.kind in "iu":
        datatype = "INT64"
    elif classes is not None and classes.dtype.kind == "f":
        datatype = "FP64"
    else:
        datatype = "BYTES"
    return ModelSpec(
        name=name,
        version=version,
        feature_names=meta.feature_names,
        max_rows=max_rows,
        allow_nan=meta.allow_nan if allow_nan is None else allow_nan,
        predict_datatype=datatype,
        has_proba=predictor.has_proba,
        classes=list(meta.classes),
    )


def metadata_doc(spec: ModelSpec, loaded: LoadedModel, revision: str) -> dict[str, Any]:
    """The OIP v2 model metadata answer."""
    n = spec.n_features
    outputs = [{"name": "predict", "datatype": spec.predict_datatype, "shape": [-1]}]
    if spec.has_proba:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(spec.classes)]})
    return {
        "name": spec.name,
        "versions": [spec.version],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, n]}],
        "outputs": outputs,
        "parameters": {
            "revision": revision,
            "sha256": loaded.sha256,
            "features": spec.feature_names,
            "classes": spec.classes,
            "task": loaded.metadata.task,
        },
    }


def prediction_labels(loaded: LoadedModel) -> list[Any]:
    """Classes of a classifier; the prediction baseline's bin edges of a regressor."""
    meta = loaded.metadata
    if meta.task == "classification":
        return list(meta.classes)
    pb = meta.prediction_baseline or {}
    return list(pb.get("edges", []))
