"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Started by `modelops.controller.runner` when `--leader-elect` is on (the default). Every replica
keeps its informers warm; only the holder of the Lease runs workers. A candidate takes the Lease
when its record has not changed for a whole lease duration *as measured by its own clock* (no
trust in other machines' clocks); the holder renews every `retry` seconds and gives up, stopping
the process, when it could not renew for `renew_deadline`. A clean shutdown releases the Lease so
a standby takes over at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from modelops.controller.kube import Kube

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseConfig:
    namespace: str
    name: str = "modelops-operator"
    identity: str = ""
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def _micro_time(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, kube: Kube, config: LeaseConfig, on_started: Callable[[], Awaitable[None]],
                 on_stopped: Callable[[], None], on_change: Callable[[bool], None] = lambda leading: None) -> None:
        self.kube = kube
        self.config = config
        self.on_started = on_started
        self.on_stopped = on_stopped
        self.on_change = on_change
        self.leading = False
        self._observed: tuple[Any, ...] | None = None  # (holder, renewTime, transitions) as last seen
        self._observed_at = 0.0  # monotonic time the record last changed in our eyes
        self._last_renew = 0.0

    async def run(self) -> None:
        """Acquire, then renew until the Lease is lost (then `on_stopped`, which ends the process)."""
        cfg = self.config
        while not self.leading:
            if await self._try_acquire_or_renew():
                self.leading = True
                self._last_renew = time.monotonic()
                log.info("became leader (Lease %s/%s, identity %s)", cfg.namespace, cfg.name, cfg.identity)
                self.on_change(True)
                await self.on_started()
                break
            await asyncio.sleep(cfg.retry_period)
        while True:
            await asyncio.sleep(cfg.retry_period)
            if await self._try_acquire_or_renew():
                self._last_renew = time.monotonic()
                continue
            if time.monotonic() - self._last_renew > cfg.renew_deadline:
                log.error("lost the leader Lease %s/%s: could not renew for %.0fs", cfg.namespace, cfg.name,
                          cfg.renew_deadline)
                self.leading = False
                self.on_change(False)
                self.on_stopped()
                return

    async def release(self) -> None:
        """Hand the Lease over at once (clean shutdown)."""
        if not self.leading:
            return
        self.leading = False
        self.on_change(False)
        try:
            lease = await self.kube.call(self.kube.get_lease, self.config.namespace, self.config.name)
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return
            lease["spec"]["holderIdentity"] = None
            lease["spec"]["leaseDurationSeconds"] = 1
            await self.kube.call(self.kube.replace_lease, lease)
        except Exception as error:  # best effort; the lease lapses anyway
            log.warning("could not release the leader Lease: %s", error)

    async def _try_acquire_or_renew(self) -> bool:
        try:
            return await asyncio.wait_for(self._attempt(), timeout=self.config.retry_period * 2)
        except Exception as error:  # any failure is "not renewed"; the deadline decides
            log.warning("leader election: %s", error)
            return False

    async def _attempt(self) -> bool:
        cfg, kube = self.config, self.kube
        now = dt.datetime.now(dt.UTC)
        lease = await kube.call(kube.get_lease, cfg.namespace, cfg.name)
        mine = {"holderIdentity": cfg.identity, "leaseDurationSeconds": round(cfg.lease_duration),
                "acquireTime": _micro_time(now), "renewTime": _micro_time(now), "leaseTransitions": 0}
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": cfg.name, "namespace": cfg.namespace}, "spec": mine}
            return await kube.call(kube.create_lease, body)
        spec = lease.get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed = record
            self._observed_at = time.monotonic()
        holder = spec.get("holderIdentity")
        duration = float(spec.get("leaseDurationSeconds") or cfg.lease_duration)
        if holder and holder != cfg.identity and time.monotonic() - self._observed_at < duration:
            return False  # held by someone else, and still fresh in our eyes
        if holder == cfg.identity:
            mine["acquireTime"] = spec.get("acquireTime") or mine["acquireTime"]
            mine["leaseTransitions"] = int(spec.get("leaseTransitions") or 0)
        else:
            mine["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        lease["spec"] = mine
        # The resourceVersion in metadata makes this a compare-and-swap: two candidates never both win.
        return await kube.call(kube.replace_lease, lease)
