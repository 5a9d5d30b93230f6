"""A line that hands off to 110/119/120/122 at once has its ticket while the Dial lasts,
written only after the Dial was sent: a process killed during an emergency call loses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivr.agi.connection import AgiConnection
from ivr.app import STORE
from ivr.dialplan import load_dialplan
from ivr.simpbx import CallScript
from ivr.tickets.model import Disposition, Ticket
from tests.integration.conftest import DIALPLANS, running_hotline
from tests.transfer.held_dial import AT_ONCE_LINE, AT_ONCE_TARGET, hold_dials, write_at_once_line

BOUND_S = 5.0


async def test_ticket_is_in_the_store_while_the_emergency_dial_lasts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provisional ticket is committed during the Dial, submitted after the Dial line
    left for Asterisk; the final ticket replaces it when the emergency call ends."""
    plan = load_dialplan([DIALPLANS, write_at_once_line(tmp_path)])
    dials = hold_dials(monkeypatch)
    events: list[tuple[str, str]] = []  # what reached the socket and the store, in order
    write = AgiConnection.write

    def recording_write(connection: AgiConnection, data: bytes) -> None:
        if data.startswith(b"EXEC Dial"):
            events.append(("written", data.decode().split(",", 1)[0]))
        write(connection, data)

    monkeypatch.setattr(AgiConnection, "write", recording_write)
    async with running_hotline(tmp_path, plan) as hotline:
        store = hotline.app[STORE]
        submit = store.submit
        tickets: list[Ticket] = []
        provisional = asyncio.Event()

        def recording_submit(ticket: Ticket) -> asyncio.Future[bool]:
            events.append(("submitted", ticket.disposition.value))
            tickets.append(ticket)
            if ticket.disposition is Disposition.IN_PROGRESS:
                provisional.set()
            return submit(ticket)

        monkeypatch.setattr(store, "submit", recording_submit)
        call = asyncio.create_task(
            hotline.pbx.place_call(CallScript("13800138000", dialled=AT_ONCE_LINE))
        )
        try:
            async with asyncio.timeout(BOUND_S):
                (channel,) = await hotline.pbx.wait_holding(1)
                await provisional.wait()
                await store.flush()
            during = await store.get(tickets[0].ticket_id)
            still_dialling = hotline.pbx.holding_channels()
        finally:
            dials.release()
        async with asyncio.timeout(BOUND_S):
            record = await call
            await store.flush()
        after = await store.get(tickets[0].ticket_id)
    assert still_dialling == [channel]
    assert events == [
        ("written", f'EXEC Dial "{AT_ONCE_TARGET}'),
        ("submitted", Disposition.IN_PROGRESS.value),
        ("submitted", Disposition.EMERGENCY.value),
    ]
    assert during is not None and during.linkedid == record.linkedid
    assert (during.disposition, during.route_kind, during.route_target) == (
        Disposition.IN_PROGRESS, "emergency", "fire",
    )
    assert record.commands[0].startswith("EXEC Dial")  # nothing came before the Dial
    assert record.destination == f"dial:{AT_ONCE_TARGET}"
    assert after is not None
    assert (after.disposition, after.emergency_target, after.emergency_result) == (
        Disposition.EMERGENCY, AT_ONCE_TARGET, "ANSWER",
    )
