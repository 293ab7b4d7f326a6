"""A work queue of object keys, as client-go's: a key is queued at most once however many events
arrive, one worker handles a key at a time (a key added while it is being handled runs again once
after), failures come back with per-key exponential backoff, and delayed adds keep only the soonest.
An urgent add (a person's edit or command) goes ahead of the routine work (pod events, timers,
resyncs): with a hundred canaries stepping, an edit waits for the workers, not for the whole queue,
and workers that take only urgent keys (`next(urgent_only=True)`) mean it need not wait for a busy
worker to finish either.

Used by `modelops.controller.runner`: watch events and requeue requests `add` keys, a fixed number of
workers `get` them. Pure asyncio, no I/O; unit-tested on its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class Backoff:
    """Per-key exponential backoff: base * 2^failures, capped."""

    def __init__(self, base: float = 0.5, cap: float = 300.0) -> None:
        self.base = base
        self.cap = cap
        self.failures: dict[Hashable, int] = {}

    def next_delay(self, key: Hashable, cap: float | None = None) -> float:
        """The delay before `key`'s next try; `cap` (if lower) bounds it for this failure."""
        n = self.failures.get(key, 0)
        self.failures[key] = n + 1
        return float(min(self.cap if cap is None else min(cap, self.cap), self.base * (2 ** min(n, 40))))

    def forget(self, key: Hashable) -> None:
        self.failures.pop(key, None)

    def count(self, key: Hashable) -> int:
        return self.failures.get(key, 0)


class WorkQueue(Generic[K]):
    def __init__(self, backoff: Backoff | None = None,
                 on_wait: Callable[[float, bool], None] = lambda seconds, urgent: None) -> None:
        self.backoff = backoff or Backoff()
        self._queue: deque[K] = deque()
        self._urgent: deque[K] = deque()  # handed out before `_queue`
        self._urgent_keys: set[K] = set()  # queued (or to be re-queued by `done`) as urgent
        self._queued_at: dict[K, float] = {}  # queued keys (the "dirty" set) and when they were added
        self._processing: set[K] = set()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        lock = asyncio.Lock()
        self._ready = asyncio.Condition(lock)  # any key: the general workers
        self._urgent_ready = asyncio.Condition(lock)  # urgent keys: the reserved workers
        self._on_wait = on_wait
        self._shutdown = False

    def __len__(self) -> int:
        return self.depth

    @property
    def depth(self) -> int:
        return len(self._queue) + len(self._urgent)

    def add(self, key: K, urgent: bool = False) -> None:
        """Queue `key` now, unless it is already queued; a key being handled runs again after.

        `urgent` puts it ahead of routine keys, and moves it there if it already waits among them."""
        if self._shutdown:
            return
        if key in self._queued_at:
            if urgent and key not in self._urgent_keys:
                self._urgent_keys.add(key)
                if key not in self._processing:
                    self._queue.remove(key)  # O(n), but only once per edit
                    self._urgent.append(key)
                    asyncio.get_running_loop().create_task(self._notify(urgent=True))
            return
        self._queued_at[key] = time.monotonic()
        if urgent:
            self._urgent_keys.add(key)
        if key in self._processing:
            return  # `done` queues it
        self._push(key)

    def _push(self, key: K) -> None:
        urgent = key in self._urgent_keys
        (self._urgent if urgent else self._queue).append(key)
        asyncio.get_running_loop().create_task(self._notify(urgent))

    def add_after(self, key: K, delay: float) -> None:
        """Queue `key` after `delay` seconds; an earlier pending add wins over a later one."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._timers[key] = (due, loop.call_at(due, self._fire, key))

    def add_rate_limited(self, key: K, cap: float | None = None) -> float:
        """Queue `key` after its backoff (at most `cap` seconds, if given); returns the delay."""
        delay = self.backoff.next_delay(key, cap)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """The key succeeded: its next failure starts the backoff again."""
        self.backoff.forget(key)

    def cancel(self, key: K) -> None:
        """Drop a pending delayed add (the object is gone)."""
        pending = self._timers.pop(key, None)
        if pending is not None:
            pending[1].cancel()

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def _notify(self, urgent: bool) -> None:
        async with self._ready:
            # Wake one of each kind for an urgent key: whichever comes first takes it, the other
            # finds the queue as it is and waits again.
            if urgent:
                self._urgent_ready.notify()
            self._ready.notify()

    async def get(self) -> K:
        """The next key to handle; the caller must call `done(key)` afterwards."""
        key, _ = await self.next()
        return key

    async def next(self, urgent_only: bool = False) -> tuple[K, bool]:
        """The next key and whether it was queued as urgent; `urgent_only` waits for an urgent one."""
        async with self._ready:
            if urgent_only:
                while not self._urgent:
                    await self._urgent_ready.wait()
            else:
                while not self._queue and not self._urgent:
                    await self._ready.wait()
            urgent = bool(self._urgent)
            key = self._urgent.popleft() if urgent else self._queue.popleft()
        self._urgent_keys.discard(key)
        added = self._queued_at.pop(key, time.monotonic())
        self._on_wait(time.monotonic() - added, urgent)
        self._processing.add(key)
        return key, urgent

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._queued_at:
            self._push(key)

    def shutdown(self) -> None:
        self._shutdown = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
