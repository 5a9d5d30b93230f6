"""Callbacks placed with AMI Originate through the simulated PBX, in hours, rate- and
retry-bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.aftercall.callbacks import CallbackPolicy, CallbackScheduler
from ivr.ami.errors import AmiConnectionLost
from ivr.ami.link import AmiLink
from ivr.ami.protocol import AmiResponse
from ivr.dialplan.model import Schedule, TimeRange
from ivr.simpbx import SimulatedPbx
from ivr.tickets.model import Disposition
from ivr.tickets.sqlite import SqliteTicketStore
from ivr.tickets.store import CallbackReason
from tests.tickets.conftest import build_ticket

SHANGHAI = ZoneInfo("Asia/Shanghai")
WORKDAY = (*((TimeRange(9 * 60, 17 * 60),) for _ in range(5)), (), ())
HOURS = Schedule(id="callbacks", timezone="Asia/Shanghai", weekly=WORKDAY)
THURSDAY_10 = datetime(2024, 5, 9, 10, 0, tzinfo=SHANGHAI)


class Clock:
    """A settable clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteTicketStore]:
    """A store with three abandoned calls (callers 1380000000n) and one served call."""
    ticket_store = SqliteTicketStore(tmp_path / "t.db")
    await ticket_store.start()
    for n in range(3):
        await ticket_store.submit(build_ticket(n, disposition=Disposition.ABANDONED,
                                               caller_number=f"1380000000{n}"))  # fmt: skip
    await ticket_store.submit(build_ticket(9))
    try:
        yield ticket_store
    finally:
        await ticket_store.close()


@pytest.fixture
async def pbx_link() -> AsyncIterator[tuple[SimulatedPbx, AmiLink]]:
    """The simulated PBX and a logged-in AMI link to it."""
    async with SimulatedPbx(agi_port=1) as pbx:
        link = AmiLink(host="127.0.0.1", port=pbx.ami_port, username="hotline",
                       secret="hotline-secret", ping_interval=60)  # fmt: skip
        await link.start()
        try:
            await link.wait_connected(5)
            yield pbx, link
        finally:
            await link.close()


async def test_callbacks_placed_in_hours_within_rate(
    store: SqliteTicketStore, pbx_link: tuple[SimulatedPbx, AmiLink]
) -> None:
    """Due callbacks are originated at two a minute, only in working hours, and logged as
    answered."""
    pbx, link = pbx_link
    clock = Clock(THURSDAY_10.replace(hour=20))
    scheduler = CallbackScheduler(store, link, HOURS, CallbackPolicy(rate_per_minute=2),
                                  clock=clock)  # fmt: skip
    assert await scheduler.run_once() == 0  # closed in the evening
    clock.now = THURSDAY_10
    assert await scheduler.run_once() == 2
    assert await scheduler.run_once() == 0  # the minute's budget is spent
    clock.now += timedelta(seconds=30)
    assert await scheduler.run_once() == 1
    assert [o.channel for o in pbx.originated] == [
        "PJSIP/13800000000@trunk", "PJSIP/13800000001@trunk", "PJSIP/13800000002@trunk",
    ]
    assert await store.callbacks_due(10, now=clock.now + timedelta(days=1)) == []
    log = await store.callback_log(build_ticket(0).ticket_id)
    assert [(a.attempt, a.result) for a in log] == [(1, "answered")]


async def test_failed_callbacks_retried_up_to_the_limit(
    store: SqliteTicketStore, pbx_link: tuple[SimulatedPbx, AmiLink]
) -> None:
    """A callback the PBX cannot place is retried after retry_after, then given up."""
    _pbx, link = pbx_link
    clock = Clock(THURSDAY_10)
    policy = CallbackPolicy(channel="Nowhere/{number}", max_attempts=2,
                            retry_after=timedelta(minutes=30), rate_per_minute=100)  # fmt: skip
    scheduler = CallbackScheduler(store, link, HOURS, policy, clock=clock)
    assert await scheduler.run_once() == 3
    assert await scheduler.run_once() == 0  # not due again yet
    clock.now += timedelta(minutes=31)
    assert await scheduler.run_once() == 3
    clock.now += timedelta(minutes=31)
    assert await scheduler.run_once() == 0  # given up after two attempts
    log = await store.callback_log(build_ticket(1).ticket_id)
    assert [(a.attempt, a.result) for a in log] == [(1, "failed"), (2, "failed")]


class LostLink:
    """An AMI client whose link drops while each Originate waits for its answer."""

    def __init__(self) -> None:
        self.sent: list[Mapping[str, str]] = []

    async def send_action(
        self, action: Mapping[str, str], *, timeout: float | None = None
    ) -> AmiResponse:
        self.sent.append(action)
        raise AmiConnectionLost("link dropped while waiting")


async def test_lost_answer_is_never_resent(store: SqliteTicketStore) -> None:
    """An Originate whose answer was lost is logged as unknown and never sent again."""
    lost = LostLink()
    clock = Clock(THURSDAY_10)
    scheduler = CallbackScheduler(store, lost, HOURS, CallbackPolicy(rate_per_minute=100),
                                  clock=clock)  # fmt: skip
    assert await scheduler.run_once() == 3
    clock.now += timedelta(hours=2)
    assert await scheduler.run_once() == 0
    assert len(lost.sent) == 3
    log = await store.callback_log(build_ticket(2).ticket_id)
    assert [(a.attempt, a.result) for a in log] == [(1, "unknown")]
    # A review call asked for later is placed as a new callback.
    assert await store.request_callback(build_ticket(9).ticket_id, CallbackReason.REVIEW)
    assert await scheduler.run_once() == 1
    assert "HOTLINE_CALLBACK_REASON=review" in lost.sent[-1]["Variable"]
