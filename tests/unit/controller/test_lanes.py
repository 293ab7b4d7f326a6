"""The API call lanes: an urgent reconcile's calls never wait for routine threads, and routine calls
hold while an urgent reconcile is in flight, for a bounded time only."""

from __future__ import annotations

import asyncio
import threading
import time

from modelops.controller.lanes import Lanes


def _thread_name() -> str:
    return threading.current_thread().name


async def test_urgent_calls_and_calls_outside_a_reconcile_run_on_their_own_threads() -> None:
    lanes = Lanes(threads=1, urgent_threads=1, hold=0.2)
    gate = threading.Event()
    with lanes.lane(urgent=False):
        blocked = asyncio.ensure_future(lanes.run(gate.wait, 5))  # the only routine thread, busy
    await asyncio.sleep(0.05)
    with lanes.lane(urgent=True):
        name = await asyncio.wait_for(lanes.run(_thread_name), timeout=2)
    assert name.startswith("kube-urgent")
    assert (await asyncio.wait_for(lanes.run(_thread_name), timeout=2)).startswith("kube-urgent")
    gate.set()
    assert await blocked
    with lanes.lane(urgent=False):
        assert (await lanes.run(_thread_name)).startswith("kube_")


async def test_a_routine_call_holds_while_an_urgent_reconcile_is_in_flight() -> None:
    lanes = Lanes(threads=2, hold=5.0)
    order: list[str] = []
    urgent_done = asyncio.Event()

    async def urgent() -> None:
        with lanes.lane(urgent=True):
            await urgent_done.wait()
            await lanes.run(order.append, "urgent")

    async def routine() -> None:
        with lanes.lane(urgent=False):
            await lanes.run(order.append, "routine")

    first = asyncio.create_task(urgent())
    await asyncio.sleep(0.01)
    assert lanes.urgent_in_flight == 1
    second = asyncio.create_task(routine())
    await asyncio.sleep(0.1)
    assert order == []  # held
    urgent_done.set()
    await asyncio.wait_for(asyncio.gather(first, second), timeout=5)
    assert order == ["urgent", "routine"]
    assert lanes.urgent_in_flight == 0


async def test_the_hold_is_bounded() -> None:
    lanes = Lanes(threads=2, hold=0.2)
    never = asyncio.Event()

    async def stuck_urgent() -> None:
        with lanes.lane(urgent=True):
            await never.wait()

    stuck = asyncio.create_task(stuck_urgent())
    await asyncio.sleep(0.01)
    started = time.monotonic()
    with lanes.lane(urgent=False):
        await asyncio.wait_for(lanes.run(lambda: None), timeout=5)
    assert time.monotonic() - started >= 0.2
    stuck.cancel()


async def test_an_urgent_reconcile_waiting_on_prometheus_holds_nothing_meanwhile() -> None:
    lanes = Lanes(threads=2, hold=5.0)
    with lanes.lane(urgent=True):
        assert lanes.urgent_in_flight == 1
        with lanes.aside():
            assert lanes.urgent_in_flight == 0
            with lanes.lane(urgent=False):
                await asyncio.wait_for(lanes.run(lambda: None), timeout=1)  # not held
        assert lanes.urgent_in_flight == 1
    with lanes.lane(urgent=False), lanes.aside():  # a routine reconcile's aside changes nothing
        assert lanes.urgent_in_flight == 0


async def test_routine_calls_in_flight_are_bounded_and_urgent_ones_are_not() -> None:
    lanes = Lanes(threads=16, urgent_threads=8, routine_limit=2)
    gate = threading.Event()
    running = 0
    most = 0
    lock = threading.Lock()

    def busy() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        gate.wait(5)
        with lock:
            running -= 1

    async def routine() -> None:
        with lanes.lane(urgent=False):
            await lanes.run(busy)

    calls = [asyncio.create_task(routine()) for _ in range(6)]
    await asyncio.sleep(0.1)
    assert most == 2
    with lanes.lane(urgent=True):
        await asyncio.wait_for(lanes.run(lambda: None), timeout=2)  # not behind the routine ones
    gate.set()
    await asyncio.wait_for(asyncio.gather(*calls), timeout=5)
    assert most == 2
