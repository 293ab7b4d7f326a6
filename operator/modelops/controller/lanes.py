"""Two lanes for the blocking API calls of reconciles: a person's edit or command, and routine work.

On two cores the apiserver's CPU is what an edit waits for when a hundred canaries step at once, and
the edit's two writes (status, then the canary Deployment) should not queue behind or share it with
sixteen routine ones. A reconcile runs inside `lane(urgent)`; its calls go through `run`:
- urgent calls, and calls made outside any reconcile (the leader Lease), run on a pool of their own
  (as large as the workers that may take urgent keys), so they never wait for a routine call's thread;
- while an urgent reconcile is in flight, a routine call holds before it starts, for at most
  `hold` seconds: routine work slows for a moment, it never stops. An urgent reconcile that waits on
  something other than the API (a Prometheus query) steps `aside` meanwhile;
- at most `routine_limit` routine calls are in flight at once, so an edit's write arrives at an
  apiserver with a few writes ahead of it, not sixteen; on two cores more would not go faster.

Used by `modelops.controller.kube.Kube`; pure asyncio and threads, unit-tested on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")
URGENT_THREADS = 4
ROUTINE_HOLD_SECONDS = 0.5
ROUTINE_LIMIT = 8

# The lane of the current task's reconcile; None outside one.
_LANE: ContextVar[str | None] = ContextVar("modelops_lane", default=None)


class Lanes:
    def __init__(self, threads: int, urgent_threads: int = URGENT_THREADS,
                 hold: float = ROUTINE_HOLD_SECONDS, routine_limit: int = ROUTINE_LIMIT) -> None:
        self.hold = hold
        routine_threads = max(1, min(routine_limit, threads))
        self._routine_slots = asyncio.Semaphore(routine_threads)
        self._routine = ThreadPoolExecutor(max_workers=routine_threads, thread_name_prefix="kube")
        self._urgent = ThreadPoolExecutor(max_workers=urgent_threads, thread_name_prefix="kube-urgent")
        self._in_flight = 0  # urgent reconciles running
        self._clear = asyncio.Event()
        self._clear.set()

    @property
    def urgent_in_flight(self) -> int:
        return self._in_flight

    @contextlib.contextmanager
    def lane(self, urgent: bool) -> Iterator[None]:
        """Run the current task's reconcile in the urgent or the routine lane."""
        token = _LANE.set("urgent" if urgent else "routine")
        if urgent:
            self._enter()
        try:
            yield
        finally:
            _LANE.reset(token)
            if urgent:
                self._leave()

    @contextlib.contextmanager
    def aside(self) -> Iterator[None]:
        """The current urgent reconcile waits on something else: routine calls need not hold for it."""
        urgent = _LANE.get() == "urgent"
        if urgent:
            self._leave()
        try:
            yield
        finally:
            if urgent:
                self._enter()

    def _enter(self) -> None:
        self._in_flight += 1
        self._clear.clear()

    def _leave(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._clear.set()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(fn, *args, **kwargs)
        if _LANE.get() != "routine":
            return await loop.run_in_executor(self._urgent, call)
        async with self._routine_slots:
            if self._in_flight:  # looked at with a slot in hand: a call that waited for one holds too
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._clear.wait(), self.hold)
            return await loop.run_in_executor(self._routine, call)
