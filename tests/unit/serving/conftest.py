"""Model directories trained once per session for the serving unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from modelops.training.trainer import TrainOptions, train


@pytest.fixture(scope="session")
def iris_joblib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("iris_joblib")
    train(TrainOptions(dataset="iris", output=out, format="joblib"))
    return out


@pytest.fixture(scope="session")
def iris_skops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("iris_skops")
    train(TrainOptions(dataset="iris", output=out, format="skops"))
    return out
