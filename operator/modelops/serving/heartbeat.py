"""Worker heartbeats in shared memory: how the model server notices a worker that is stuck.

Created by the supervisor (modelops.serving.server) before it forks, so every worker and the
supervisor see the same anonymous shared mapping. Each worker's event loop beats a few times a
second (modelops.serving.dataplane.DataPlane._tick) and marks when its current ``predict`` started
(modelops.serving.batching.Batcher). A worker is *stuck* when its loop has not beaten, or its model
has been predicting, for longer than the predict timeout. Any worker answers readiness false
while one is stuck (so the pod leaves the Service), and the supervisor restarts a worker stuck
for much longer (which also ends the requests it held).
"""

from __future__ import annotations

import mmap
import time

import numpy as np

# Columns of the shared table: when the loop last beat, when the running predict started (0: none).
BEAT = 0
PREDICT_SINCE = 1


class Heartbeats:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._mem = mmap.mmap(-1, max(1, workers) * 2 * 8)
        self.table = np.frombuffer(self._mem, dtype=np.float64).reshape(max(1, workers), 2)

    def reset(self, index: int, now: float | None = None) -> None:
        """A (re)started worker: fresh beat, nothing predicting."""
        self.table[index, BEAT] = time.monotonic() if now is None else now
        self.table[index, PREDICT_SINCE] = 0.0

    def beat(self, index: int) -> None:
        self.table[index, BEAT] = time.monotonic()

    def predicting(self, index: int, since: float) -> None:
        """``since``: monotonic start of the running predict, or 0 when it ended."""
        self.table[index, PREDICT_SINCE] = since

    def stuck_for(self, index: int, now: float) -> float:
        """Seconds worker ``index`` has been unresponsive (0 when it is fine)."""
        beat, since = self.table[index]
        silent = now - beat if beat > 0 else 0.0
        busy = now - since if since > 0 else 0.0
        return float(max(silent, busy, 0.0))

    def stuck(self, now: float, timeout: float) -> list[tuple[int, float]]:
        """(worker, seconds) of every worker stuck for longer than ``timeout``."""
        out = []
        for index in range(self.workers):
            seconds = self.stuck_for(index, now)
            if seconds > timeout:
                out.append((index, seconds))
        return out
