"""The work queue: a key queued once however many events arrive, one worker per key, a key added
while handled runs once more after, delayed adds keep the soonest, and failures back off per key."""

from __future__ import annotations

import asyncio

from modelops.controller.workqueue import Backoff, WorkQueue


async def test_a_key_is_queued_once_however_many_events_arrive() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(100):
        queue.add("a")
    queue.add("b")
    assert queue.depth == 2
    assert await queue.get() == "a"
    assert await queue.get() == "b"
    assert queue.depth == 0


async def test_a_key_added_while_handled_runs_once_more_after_and_never_in_parallel() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    queue.add("a")
    assert queue.depth == 0  # not handed to a second worker while the first holds it
    queue.done(key)
    assert queue.depth == 1
    assert await queue.get() == "a"
    queue.done("a")
    assert queue.depth == 0


async def test_a_delayed_add_keeps_the_soonest_and_an_immediate_add_wins() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 30.0)
    queue.add_after("a", 0.05)
    queue.add_after("a", 60.0)
    got = await asyncio.wait_for(queue.get(), timeout=5)
    assert got == "a"
    queue.done("a")
    await asyncio.sleep(0.1)
    assert queue.depth == 0  # the later timers were dropped, not kept


async def test_workers_waiting_on_an_empty_queue_wake_for_new_keys() -> None:
    queue: WorkQueue[str] = WorkQueue()
    waiters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0.01)
    for key in ("x", "y", "z"):
        queue.add(key)
    got = await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    assert sorted(got) == ["x", "y", "z"]


def test_backoff_doubles_per_failure_up_to_the_cap_and_forget_resets_it() -> None:
    backoff = Backoff(base=0.5, cap=10.0)
    delays = [backoff.next_delay("k") for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert backoff.next_delay("other") == 0.5  # per key
    backoff.forget("k")
    assert backoff.next_delay("k") == 0.5


async def test_cancel_drops_a_pending_delayed_add() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("gone", 0.05)
    queue.cancel("gone")
    await asyncio.sleep(0.1)
    assert queue.depth == 0


async def test_an_urgent_key_goes_ahead_of_routine_ones_and_is_moved_up_if_already_waiting() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "c"):
        queue.add(key)
    queue.add("d", urgent=True)
    queue.add("c", urgent=True)  # already waiting at the back: moved ahead, still queued once
    assert queue.depth == 4
    assert [await queue.get() for _ in range(4)] == ["d", "c", "a", "b"]


async def test_an_urgent_add_while_the_key_is_handled_runs_it_next_ahead_of_routine_keys() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("b")
    queue.add("a", urgent=True)
    queue.done(key)
    first, second = await queue.get(), await queue.get()
    assert [first, second] == ["a", "b"]
    queue.done(first)
    queue.done(second)
    queue.add("c")
    queue.add("a")  # routine again once handled: urgency does not stick
    assert [await queue.get(), await queue.get()] == ["c", "a"]


def test_a_cap_bounds_one_delay_without_resetting_the_backoff() -> None:
    backoff = Backoff(base=1.0, cap=300.0)
    delays = [backoff.next_delay("k") for _ in range(10)]
    assert delays[-1] == 300.0
    assert backoff.next_delay("k", cap=30.0) == 30.0  # a problem a person fixes: look again soon
    assert backoff.next_delay("k") == 300.0  # the count went on
    assert Backoff(base=1.0, cap=10.0).next_delay("k", cap=30.0) == 1.0  # never above the base curve
