"""Request-path cost of the feedback journal and the request log (what every answered inference pays).

Run: `.venv/bin/python -m benchmarks.bench_feedback`. Prints microseconds per call, median of 5 runs,
for the shapes a server sees (a 1-row and a 64-row request; a 1-label and a 1,000-label feedback body)
with the default ring (65,536 rows per worker) and 2 workers.
"""

from __future__ import annotations

import statistics
import tempfile
import timeit

import numpy as np
from modelops.serving.datalog import RequestLog, RequestLogConfig
from modelops.serving.feedback import FeedbackJournal, Label, new_request_id


def _us(stmt: object, number: int) -> float:
    runs = [timeit.timeit(stmt, number=number) / number * 1e6 for _ in range(5)]  # type: ignore[arg-type]
    return statistics.median(runs)


def main() -> None:
    journal = FeedbackJournal(workers=2, capacity=65536, join_window_s=3600, classes=[0, 1, 2])
    one, many = np.array([1]), np.arange(64) % 3
    counter = iter(range(10**9))
    for i in range(65536):  # a full ring, as on a busy server
        journal.record(i % 2, f"warm-{i}", one)
    print(f"new request id              {_us(new_request_id, 20000):8.2f} us")
    print(f"record 1-row request        {_us(lambda: journal.record(0, str(next(counter)), one), 20000):8.2f} us")
    print(f"record 64-row request       {_us(lambda: journal.record(0, str(next(counter)), many), 5000):8.2f} us")
    ids = [f"warm-{i}" for i in range(65536)]
    print(f"join 1 label                {_us(lambda: journal.join(1, [Label(ids[7], 0, 1)]), 500):8.2f} us")
    batch = [Label(ids[i], 0, 1) for i in range(0, 65536, 65)][:1000]
    print(f"join 1,000-label body       {_us(lambda: journal.join(1, batch), 20):8.2f} us")
    with tempfile.TemporaryDirectory() as tmp:
        log = RequestLog(RequestLogConfig(f"file://{tmp}", queue_items=10**7), ["a", "b", "c", "d"], "m", "1", "r")
        row = np.zeros((1, 4))
        print(f"request log offer (rate 1)  {_us(lambda: log.offer('x', row, one), 20000):8.2f} us")


if __name__ == "__main__":
    main()
