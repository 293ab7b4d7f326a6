"""The feedback join in shared memory: bounded by count and time, labels matched by (id, row), and the
rolling accuracy / MAE the supervisor computes from the joined outcomes."""

from __future__ import annotations

import numpy as np
import pytest
from modelops.serving.feedback import FeedbackError, FeedbackJournal, Label, QualityMonitor, parse_feedback


class Gauges:
    def __init__(self) -> None:
        self.quality: float | None = None
        self.samples = -1

    def set_quality(self, value: float) -> None:
        self.quality = value

    def set_samples(self, samples: int) -> None:
        self.samples = samples


def test_a_label_joins_the_prediction_of_another_worker_once() -> None:
    journal = FeedbackJournal(workers=2, capacity=8, join_window_s=60, classes=["setosa", "versicolor"])
    journal.record(0, "a", np.array(["setosa", "versicolor"]), now=100.0)
    counts = journal.join(1, [Label("a", 1, "versicolor"), Label("a", 0, "versicolor")], now=101.0)
    assert counts.as_dict() == {"joined": 2, "unknown": 0, "expired": 0}
    assert journal.join(1, [Label("a", 1, "versicolor")], now=101.0).unknown == 1  # consumed
    gauges = Gauges()
    value, samples = QualityMonitor(journal, 600, gauges).collect(102.0)
    assert (value, samples) == (0.5, 2) and gauges.quality == 0.5


def test_the_ring_forgets_beyond_its_capacity_and_labels_expire() -> None:
    journal = FeedbackJournal(workers=1, capacity=4, join_window_s=10, classes=[0, 1, 2])
    for i in range(6):
        journal.record(0, f"r{i}", np.array([i % 3]), now=float(i))
    counts = journal.join(0, [Label("r0", 0, 0), Label("r1", 0, 1)], now=6.0)
    assert counts.unknown == 2  # overwritten by r4, r5
    counts = journal.join(0, [Label("r2", 0, 2), Label("r5", 0, 2.0)], now=13.0)
    assert (counts.expired, counts.joined) == (1, 1)  # r2 is 11 s old; 2.0 names class 2


def test_mae_for_a_regressor_and_the_window_drops_old_outcomes() -> None:
    journal = FeedbackJournal(workers=1, capacity=16, join_window_s=100, classes=None)
    journal.record(0, "x", np.array([1.0, 2.0, 3.0]), now=0.0)
    journal.join(0, [Label("x", 0, 2.0), Label("x", 1, 2.0)], now=1.0)
    gauges = Gauges()
    monitor = QualityMonitor(journal, window_s=10, gauges=gauges)
    assert monitor.collect(2.0) == (0.5, 2)
    journal.join(0, [Label("x", 2, 7.0)], now=20.0)
    assert monitor.collect(21.0) == (4.0, 1)
    assert monitor.collect(40.0) == (None, 0)
    assert gauges.quality is not None and np.isnan(gauges.quality) and gauges.samples == 0


@pytest.mark.parametrize(("body", "field"), [
    (b'{"feedback": [{"id": "a", "label": 1}, {"label": 2}]}', "feedback[1].id is required"),
    (b'{"id": "", "label": 1}', "id must be a non-empty string"),
    (b'{"id": true, "label": 1}', "id must be"),
    (b'{"id": "a", "label": []}', "label must not be an empty list"),
    (b'{"feedback": {"id": "a"}}', "'feedback' must be a non-empty list"),
])
def test_malformed_bodies_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(FeedbackError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_feedback(body, regression=False)


def test_labels_of_a_batch_body_keep_their_rows() -> None:
    labels = parse_feedback(b'{"feedback": [{"id": 7, "label": [1, 2]}, {"id": "b", "label": "x"}]}', False)
    assert labels == [Label("7", 0, 1), Label("7", 1, 2), Label("b", 0, "x")]
