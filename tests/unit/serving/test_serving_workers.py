"""How many workers `modelops serve` starts by default: CPUs, capped by a pod's CPU limit."""

from __future__ import annotations

import os

from modelops.serving.server import default_workers


def test_default_workers_follows_cgroup_quota() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert default_workers("max 100000\n") == cpus
    assert default_workers("50000 100000\n") == 1  # half a CPU still needs one worker
    assert default_workers("100000 100000") == 1
    assert default_workers(f"{(cpus + 8) * 100000} 100000") == cpus  # never more than we can run on
    assert default_workers("garbage") == cpus
