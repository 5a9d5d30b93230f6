"""The delivery worker against a fake Open311 server and a fake webhook, on both store backends."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ivr.tickets.delivery import DeliveryResult, DeliveryWorker, Outcome, backoff_delay
from ivr.tickets.model import Disposition, Ticket
from ivr.tickets.open311 import (
    Open311Config,
    Open311Receiver,
    ServiceCodes,
    parse_created,
    request_form,
)
from ivr.tickets.webhook import WebhookConfig, WebhookReceiver
from tests.tickets.fake_open311 import FakeOpen311, fake_open311

MakeTicket = Callable[..., Ticket]
BOUND = 10.0  # a safety bound only: every wait ends on an event long before it

CODES = ServiceCodes(default="000", by_key={"96119": "119", "12312/complaint": "312C"})


def open311_config(url: str, timeout_s: float = 2.0) -> Open311Config:
    """The receiver's settings for the fake server at ``url``."""
    return Open311Config(base_url=url, api_key="k3y", service_codes=CODES,
                         default_address="某市", timeout_s=timeout_s)  # fmt: skip


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpen311]:
    """A fake Open311 server on a loopback port."""
    async with fake_open311() as server:
        yield server


async def run_worker(store: Any, receiver: Any, **options: Any) -> DeliveryWorker:
    """A started worker with short test timings, woken by the store's commits."""
    settings: dict[str, Any] = {"backoff_base_s": 0.01, "backoff_cap_s": 0.05, "poll_s": 0.02,
                                "lease_s": 1.0, "rng": random.Random(6)}  # fmt: skip
    worker = DeliveryWorker(store, receiver, **(settings | options))
    store.add_commit_listener(worker.notify)
    await worker.start()
    return worker


def test_request_form_fields(make_ticket: MakeTicket) -> None:
    """The POST form carries the key, the mapped service code, the phone and the attributes."""
    ticket = make_ticket(1, dialled_line="12312", request_kind="complaint",
                         recording="rec/1.wav", extra={"summary": "商家拒绝退款"})  # fmt: skip
    form = request_form(ticket, open311_config("http://x"))
    assert form["api_key"] == "k3y" and form["service_code"] == "312C"
    assert form["phone"] == "13800138000" and form["first_name"] == "张三"
    assert form["attribute[line]"] == "12312"
    assert form["attribute[ivr_path]"] == "root/root:2/complaint/complaint:1"
    assert form["attribute[recording]"] == "rec/1.wav"
    assert form["attribute[linkedid]"] == ticket.linkedid
    assert form["address_string"] == "某市"
    assert "商家拒绝退款" in form["description"] and f"[{ticket.ticket_id}]" in form["description"]
    assert CODES.resolve("96119", "report") == "119"
    assert CODES.resolve("12345", "help") == "000"


@pytest.mark.parametrize(
    ("body", "reference"),
    [
        ('[{"service_request_id": "638344", "service_notice": ""}]', "id:638344"),
        ('[{"token": "12345"}]', "token:12345"),
        ('{"service_request_id": 7}', "id:7"),
        ("[]", None),
        ("<html>", None),
    ],
)
def test_parse_created(body: str, reference: str | None) -> None:
    """Both GeoReport answers (an id or a token) give a reference; anything else gives None."""
    assert parse_created(body) == reference


def test_backoff_grows_with_jitter_and_cap() -> None:
    """Each delay lies in [ceiling/2, ceiling] of a doubling ceiling that stops at the cap."""
    rng = random.Random(1)
    for attempts, ceiling in ((1, 1.0), (2, 2.0), (4, 8.0), (12, 60.0)):
        delay = backoff_delay(attempts, base_s=1.0, cap_s=60.0, rng=rng)
        assert timedelta(seconds=ceiling / 2) <= delay <= timedelta(seconds=ceiling)


async def test_every_ticket_delivered_once(
    any_store: Any, fake: FakeOpen311, http: aiohttp.ClientSession, make_ticket: MakeTicket
) -> None:
    """Committed tickets reach the receiver once each, with the id or token it answered."""
    fake.answers = ["token"]
    worker = await run_worker(any_store, Open311Receiver(http, open311_config(fake.url)))
    try:
        tickets = [make_ticket(n) for n in range(30)]
        await asyncio.gather(*(any_store.submit(t) for t in tickets))
        async with asyncio.timeout(BOUND):
            await worker.wait_for(lambda: worker.delivered == 30)
    finally:
        await worker.close()
    assert fake.by_ticket() == {t.ticket_id: 1 for t in tickets}
    assert sum(fake.posts.values()) == 30
    counts = await any_store.outbox_counts()
    assert (counts.pending, counts.delivered, counts.in_doubt) == (0, 30, 0)


async def test_500_is_retried_and_400_dead_lettered(
    any_store: Any, fake: FakeOpen311, http: aiohttp.ClientSession, make_ticket: MakeTicket
) -> None:
    """A 500 is retried until delivered; a 400 dead-letters the ticket with the server's error."""
    fake.answers = ["500", "500", "created", "400"]
    worker = await run_worker(any_store, Open311Receiver(http, open311_config(fake.url)),
                              concurrency=1)  # fmt: skip
    try:
        good, bad = make_ticket(1), make_ticket(2)
        await any_store.submit(good)
        async with asyncio.timeout(BOUND):
            await worker.wait_for(lambda: worker.delivered == 1)
        await any_store.submit(bad)
        async with asyncio.timeout(BOUND):
            await worker.wait_for(lambda: worker.dead == 1)
    finally:
        await worker.close()
    assert fake.posts == {good.ticket_id: 3, bad.ticket_id: 1}
    assert worker.failed == 3
    counts = await any_store.outbox_counts()
    assert (counts.delivered, counts.dead) == (1, 1)


async def test_dead_letter_after_max_attempts(
    any_store: Any, fake: FakeOpen311, http: aiohttp.ClientSession, make_ticket: MakeTicket
) -> None:
    """A receiver that keeps failing gets exactly max_attempts tries, then the ticket is dead."""
    fake.default_answer = "500"
    worker = await run_worker(any_store, Open311Receiver(http, open311_config(fake.url)),
                              max_attempts=3)  # fmt: skip
    try:
        ticket = make_ticket(1)
        await any_store.submit(ticket)
        async with asyncio.timeout(BOUND):
            await worker.wait_for(lambda: worker.dead == 1)
    finally:
        await worker.close()
    assert fake.posts == {ticket.ticket_id: 3}


async def test_receiver_down_then_up(
    any_store: Any, http: aiohttp.ClientSession, make_ticket: MakeTicket
) -> None:
    """While nothing listens, attempts fail and are retried; once the server is up, all arrive."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/georeport/v2"
    worker = await run_worker(any_store, Open311Receiver(http, open311_config(url)))
    try:
        tickets = [make_ticket(n) for n in range(5)]
        await asyncio.gather(*(any_store.submit(t) for t in tickets))
        async with asyncio.timeout(BOUND):
            await worker.wait_for(lambda: worker.failed >= 10)
        assert worker.delivered == 0
        fake = FakeOpen311()
        app = web.Application()
        app.router.add_post("/georeport/v2/requests.json", fake.post_request)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with asyncio.timeout(BOUND):
                await worker.wait_for(lambda: worker.delivered == 5)
        finally:
            await runner.cleanup()
    finally:
        await worker.close()
    assert fake.by_ticket() == {t.ticket_id: 1 for t in tickets}
    assert worker.dead == 0


async def test_slow_answer_is_looked_up_not_posted_again(
    any_store: Any, fake: FakeOpen311, http: aiohttp.ClientSession, make_ticket: MakeTicket
) -> None:
    """An answer that never comes leaves the ticket in doubt; the lookup finds it, no second
    POST."""
    fake.answers = ["hold"]
    receiver = Open311Receiver(http, open311_config(fake.url, timeout_s=0.2))
    worker = await run_worker(any_store, receiver, lease_s=0.5)
    try:
        ticket = make_ticket(1)
        await any_store.submit(ticket)
        async with asyncio.timeout(BOUND):
            await worker.wait_for(lambda: worker.delivered == 1)
    finally:
        await worker.close()
    assert fake.posts == {ticket.ticket_id: 1}
    assert fake.lookups >= 1 and worker.reconciled == 1
    assert fake.by_ticket() == {ticket.ticket_id: 1}


class FakeWebhook:
    """A JSON endpoint that keeps one record per Idempotency-Key and answers as scripted."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict[str, Any]] = {}
        self.statuses: list[int] = []
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        status = self.statuses.pop(0) if self.statuses else 201
        key = request.headers["Idempotency-Key"]
        if status >= 300:
            return web.json_response({"error": "scripted"}, status=status)
        if key in self.by_key:
            return web.json_response({"error": "duplicate"}, status=409)
        self.by_key[key] = await request.json()
        return web.json_response({"id": f"WO-{len(self.by_key)}"}, status=status)


async def test_webhook_idempotency_key_and_statuses(
    any_store: Any, http: aiohttp.ClientSession, make_ticket: MakeTicket
) -> None:
    """The webhook gets the Linkedid as key; 503 retries, 409 counts as delivered, 422 is dead."""
    hook = FakeWebhook()
    app = web.Application()
    app.router.add_post("/tickets", hook.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/tickets"
    receiver = WebhookReceiver(http, WebhookConfig(url=url))
    try:
        ticket = make_ticket(1, disposition=Disposition.EMERGENCY)
        # A 409 for a key the receiver has is success: what a re-send after a crash gets.
        assert await receiver.deliver(ticket) == DeliveryResult.delivered("WO-1")
        assert await receiver.deliver(ticket) == DeliveryResult(Outcome.DELIVERED)
        assert hook.by_key[ticket.linkedid]["disposition"] == "emergency_handoff"
        assert hook.by_key[ticket.linkedid]["ivr_path"] == list(ticket.ivr_path)

        hook.statuses = [503, 201, 422]
        worker = await run_worker(any_store, receiver, concurrency=1)
        try:
            await any_store.submit(make_ticket(2))
            async with asyncio.timeout(BOUND):
                await worker.wait_for(lambda: worker.delivered == 1)
            await any_store.submit(make_ticket(3))
            async with asyncio.timeout(BOUND):
                await worker.wait_for(lambda: worker.dead == 1)
        finally:
            await worker.close()
        assert set(hook.by_key) == {ticket.linkedid, make_ticket(2).linkedid}
    finally:
        await runner.cleanup()
