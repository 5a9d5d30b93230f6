"""The commit wait of a call: bounded, never cancelling, one timer for all the calls."""

from __future__ import annotations

import asyncio

from ivr.callflow import _BoundedWaits


async def test_returns_when_the_future_is_done() -> None:
    waits = _BoundedWaits(5.0)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()
    loop.call_later(0.01, future.set_result, True)
    started = loop.time()
    await waits.settled_within(future)
    assert future.done() and loop.time() - started < 1.0


async def test_gives_up_after_the_bound_without_cancelling() -> None:
    waits = _BoundedWaits(0.05)
    loop = asyncio.get_running_loop()
    slow: list[asyncio.Future[bool]] = [loop.create_future() for _ in range(3)]
    started = loop.time()
    await asyncio.gather(*(waits.settled_within(f) for f in slow))
    assert 0.04 <= loop.time() - started < 1.0
    assert not any(f.done() for f in slow)
    slow[0].set_result(True)  # a late commit touches no waiter
    await asyncio.sleep(0)


async def test_each_wait_has_its_own_deadline() -> None:
    waits = _BoundedWaits(0.1)
    loop = asyncio.get_running_loop()
    done_early: asyncio.Future[bool] = loop.create_future()
    first = asyncio.ensure_future(waits.settled_within(done_early))
    await asyncio.sleep(0.06)
    late: asyncio.Future[bool] = loop.create_future()
    second_started = loop.time()
    second = asyncio.ensure_future(waits.settled_within(late))
    done_early.set_result(True)
    await first
    await second
    assert loop.time() - second_started >= 0.09  # not woken by the first wait's deadline
    assert not late.done()


async def test_a_done_future_does_not_wait() -> None:
    waits = _BoundedWaits(5.0)
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    future.set_result(False)
    await waits.settled_within(future)
