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


async def test_a_reserved_worker_takes_only_urgent_keys_and_no_wake_up_is_lost() -> None:
    waits: list[tuple[float, bool]] = []
    queue: WorkQueue[str] = WorkQueue(on_wait=lambda seconds, urgent: waits.append((seconds, urgent)))
    reserved = asyncio.create_task(queue.next(urgent_only=True))
    general = [asyncio.create_task(queue.next()) for _ in range(2)]
    await asyncio.sleep(0.01)
    queue.add("routine")
    await asyncio.sleep(0.01)
    assert not reserved.done()  # a routine key is not for the reserved worker
    queue.add("edit", urgent=True)
    queue.add("routine-2")
    got = await asyncio.wait_for(asyncio.gather(*general), timeout=5)
    edit = await asyncio.wait_for(reserved, timeout=5) if ("edit", True) not in got else None
    handed = sorted([*got, *([edit] if edit else [])])
    # Every key reached a worker: the reserved one or a general one, whoever woke first.
    assert {k for k, _ in handed} >= {"routine", "edit"} and ("edit", True) in handed
    assert sorted(u for _, u in waits) == sorted(u for _, u in handed)
    for task in (reserved, *general):
        task.cancel()


async def test_a_key_moved_up_to_urgent_wakes_a_reserved_worker() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")  # routine, waiting: no general worker is free
    await asyncio.sleep(0.01)
    reserved = asyncio.create_task(queue.next(urgent_only=True))
    await asyncio.sleep(0.01)
    assert not reserved.done()
    queue.add("a", urgent=True)
    assert await asyncio.wait_for(reserved, timeout=5) == ("a", True)
    assert queue.depth == 0
