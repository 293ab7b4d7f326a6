"""The request log never blocks: a full queue drops and counts; sampling logs about the given share;
files rotate by rows and carry the feature names."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from modelops.serving.datalog import RequestLog, RequestLogConfig


class Counts:
    def __init__(self) -> None:
        self.by: dict[str, int] = {}

    def inc(self, outcome: str, n: int = 1) -> None:
        self.by[outcome] = self.by.get(outcome, 0) + n


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path) -> None:
    counts = Counts()
    log = RequestLog(RequestLogConfig(f"file://{tmp_path}", queue_items=3), ["a"], "m", "1", "r", counts)
    # No writer thread: nothing drains the queue, as when storage hangs.
    results = [log.offer(f"id{i}", np.zeros((2, 1)), np.zeros(2)) for i in range(5)]
    assert results == [True, True, True, False, False]
    assert log.dropped == 4 and counts.by == {"queued": 6, "dropped": 4}


def test_sampling_logs_about_the_given_share(tmp_path: Path) -> None:
    log = RequestLog(RequestLogConfig(f"file://{tmp_path}", sample_rate=0.25, queue_items=10_000), ["a"], "m", "1",
                     "r", rng=random.Random(1))
    taken = sum(log.offer(str(i), np.zeros((1, 1)), np.zeros(1)) for i in range(4000))
    assert 900 < taken < 1100


def test_files_rotate_by_rows_and_name_the_features(tmp_path: Path) -> None:
    log = RequestLog(RequestLogConfig(f"file://{tmp_path}", max_rows=4), ["x1", "x2"], "m", "1", "r").start()
    for i in range(10):
        log.offer(f"id{i}", np.array([[i, -i]], dtype=np.float64), np.array([i % 2]))
    log.close()
    files = sorted((tmp_path / "requests").glob("*.parquet"))
    assert len(files) == 3  # 4 + 4 + 2 rows
    table = pq.read_table(io.BytesIO(files[0].read_bytes()))
    assert table.schema.metadata[b"modelops.features"] == b'["x1", "x2"]'
    assert table.column("x2").to_pylist() == [0.0, -1.0, -2.0, -3.0]
    assert table.column("_prediction").to_pylist() == ["0", "1", "0", "1"]


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"uri": "/plain/path"}, "--log-requests-to"),
    ({"uri": "file:///x", "sample_rate": 1.5}, "--log-sample-rate"),
])
def test_bad_configuration_names_the_flag(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        RequestLogConfig(**kwargs)  # type: ignore[arg-type]
