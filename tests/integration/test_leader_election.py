"""Leader election on a real coordination.k8s.io Lease: one holder at a time, a standby takes over
once the holder stops renewing for a lease duration, and a clean release hands over at once."""

from __future__ import annotations

import asyncio
import time

import pytest
from modelops.controller.kube import Kube
from modelops.controller.leader import LeaderElector, LeaseConfig

from devcluster.localcluster import Cluster

pytestmark = pytest.mark.integration


class Candidate:
    def __init__(self, kube: Kube, namespace: str, identity: str, duration: float = 3.0) -> None:
        self.started_at: float | None = None
        self.lost = False
        self.elector = LeaderElector(kube, LeaseConfig(namespace=namespace, name="test-lease", identity=identity,
                                                       lease_duration=duration, renew_deadline=duration * 2 / 3,
                                                       retry_period=0.4),
                                     self._started, self._stopped)

    async def _started(self) -> None:
        self.started_at = time.monotonic()

    def _stopped(self) -> None:
        self.lost = True


async def _until(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


def test_one_leader_at_a_time_and_a_standby_takes_over(
        cluster: Cluster, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))

    async def scenario() -> None:
        kube = Kube(threads=4)
        first, second = Candidate(kube, namespace, "first"), Candidate(kube, namespace, "second")
        first_task = asyncio.create_task(first.elector.run())
        await _until(lambda: first.started_at is not None, 10)
        second_task = asyncio.create_task(second.elector.run())
        await asyncio.sleep(3.5)  # more than a lease duration: the holder keeps renewing
        assert second.started_at is None and not first.lost
        # The holder dies without releasing (kill -9): the standby waits out the lease, then leads.
        first_task.cancel()
        died = time.monotonic()
        await _until(lambda: second.started_at is not None, 15)
        assert second.started_at is not None and second.started_at - died >= 2.0
        lease = await kube.call(kube.get_lease, namespace, "test-lease")
        assert lease is not None and lease["spec"]["holderIdentity"] == "second"
        assert lease["spec"]["leaseTransitions"] == 1
        # A clean shutdown hands over at once.
        third = Candidate(kube, namespace, "third", duration=30.0)
        third_task = asyncio.create_task(third.elector.run())
        await asyncio.sleep(1.0)
        assert third.started_at is None
        second_task.cancel()
        await second.elector.release()
        released = time.monotonic()
        await _until(lambda: third.started_at is not None, 10)
        assert third.started_at is not None and third.started_at - released < 5.0
        third_task.cancel()

    asyncio.run(scenario())
