"""The work-order system down while calls run, end to end through the service: calls route as
usual, their tickets wait in the outbox through many failed attempts (minutes compressed into a
small backoff), and each is delivered exactly once when the receiver answers again. A call still
in the IVR is not delivered until its final ticket exists."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from ivr.app import FASTAGI, STORE, build_app, start
from ivr.config import FastAgiConfig, HttpConfig, ServiceConfig, TicketsConfig
from ivr.dialplan import load_dialplan
from ivr.simpbx import CallScript, SimulatedPbx
from ivr.tickets.delivery import DeliveryWorker
from ivr.tickets.model import ticket_id_for
from ivr.tickets.open311 import Open311Config, Open311Receiver, ServiceCodes
from tests.integration.conftest import DIALPLANS, WORKING_HOURS
from tests.tickets.fake_open311 import fake_open311

CALLS = 10
FAILED_ATTEMPTS = 3  # per ticket while the receiver is down
BOUND_S = 20.0


async def test_receiver_down_then_back(tmp_path: Path) -> None:
    """Calls route while every POST fails; then each ticket is delivered once, and the call
    that was still in the IVR only once its final ticket is written."""
    pbx = SimulatedPbx(agi_port=0)
    await pbx.start()
    config = ServiceConfig(
        fastagi=FastAgiConfig(host="127.0.0.1", port=0, allowed_peers=frozenset({"127.0.0.1"})),
        http=HttpConfig(host="127.0.0.1", port=0, token="t"),
        tickets=TicketsConfig(path=tmp_path / "tickets.sqlite3"),
        dialplans=DIALPLANS,
    )
    app = build_app(config, load_dialplan([DIALPLANS]), clock=lambda: WORKING_HOURS)
    runner = await start(app, "127.0.0.1", 0)
    holding: asyncio.Task[object] | None = None
    try:
        pbx.agi_port = app[FASTAGI].port
        store = app[STORE]
        async with fake_open311() as fake, aiohttp.ClientSession() as http:
            fake.default_answer = "500"  # the work-order system is down
            receiver = Open311Receiver(http, Open311Config(
                base_url=fake.url, api_key="k3y", service_codes=ServiceCodes("000"),
                timeout_s=1))  # fmt: skip
            worker = DeliveryWorker(store, receiver, max_attempts=1000, backoff_base_s=0.01,
                                    backoff_cap_s=0.05, poll_s=0.02, lease_s=5.0)  # fmt: skip
            store.add_commit_listener(worker.notify)
            await worker.start()
            try:
                async with asyncio.timeout(BOUND_S):
                    holding = asyncio.create_task(
                        pbx.place_call(CallScript("13900009999", keys=("hold",)))
                    )
                    (channel,) = await pbx.wait_holding(1)
                    records = [await pbx.place_call(CallScript(f"1390000{n:04d}", keys=("1",)))
                               for n in range(CALLS)]  # fmt: skip
                    ids = [ticket_id_for(r.linkedid) for r in records]
                    await fake.wait_for(
                        lambda: all(fake.posts[t] >= FAILED_ATTEMPTS for t in ids)
                    )
                    assert fake.created == {}
                    fake.default_answer = "created"  # back
                    await fake.wait_for(lambda: len(fake.created) == CALLS)
                    pbx.hangup(channel)
                    held = await holding
                    await fake.wait_for(lambda: len(fake.created) == CALLS + 1)
            finally:
                await worker.close()
            counts = await store.outbox_counts()
    finally:
        if holding is not None and not holding.done():
            holding.cancel()
        await runner.cleanup()
        await pbx.close()
    assert [(r.destination, r.fallback) for r in records] == [
        ("queue:hotline-agents", False)
    ] * CALLS
    held_id = ticket_id_for(held.linkedid)  # type: ignore[attr-defined]
    assert fake.by_ticket() == {**dict.fromkeys(ids, 1), held_id: 1}
    assert fake.posts[held_id] == 1  # nothing was posted while the call was in the IVR
    assert (counts.pending, counts.delivered, counts.dead) == (0, CALLS + 1, 0)
