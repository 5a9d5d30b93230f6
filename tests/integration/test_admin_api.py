"""The admin API: a bearer token guards it; tickets and live calls are readable through it."""

from __future__ import annotations

import asyncio
import json

from ivr.app import LINKS, STORE
from ivr.simpbx import CallScript
from ivr.tickets.model import Disposition

from .conftest import Hotline


async def test_admin_routes_need_the_token(hotline: Hotline) -> None:
    """Without the token, or with a wrong one, the admin routes answer 401; /metrics stays open."""
    assert (await hotline.http_get("/tickets", token=None))[0] == 401
    assert (await hotline.http_get("/calls", token="wrong"))[0] == 401
    assert (await hotline.http_get("/metrics", token=None))[0] == 200


async def test_tickets_are_listed_and_filtered(hotline: Hotline) -> None:
    """GET /tickets filters by line; GET /tickets/{id} returns one ticket as JSON."""
    record, _ = await hotline.call(CallScript(caller_number="13900001111", keys=("1",)))
    await hotline.call(CallScript(caller_number="13500005555", dialled="12312", keys=("1",)))
    status, body = await hotline.http_get("/tickets?line=12312")
    assert status == 200
    tickets = json.loads(body)["tickets"]
    assert [t["dialled_line"] for t in tickets] == ["12312"]
    status, body = await hotline.http_get(f"/tickets/T-{record.linkedid}")
    assert status == 200 and json.loads(body)["caller_number"] == "13900001111"
    assert (await hotline.http_get("/tickets/T-nope"))[0] == 404
    assert (await hotline.http_get("/tickets?since=yesterday"))[0] == 400


async def test_a_call_in_the_ivr_shows_in_the_live_view(hotline: Hotline) -> None:
    """GET /calls lists a call waiting in the IVR with its line and caller; it leaves on hangup."""
    in_ivr = asyncio.Event()
    link = hotline.app[LINKS][0]
    link.subscribe(
        "Newexten", lambda event: in_ivr.set() if event.get("Application") == "AGI" else None
    )
    call = asyncio.create_task(
        hotline.pbx.place_call(
            CallScript(caller_number="13911112222", dialled="96119", keys=("hold",))
        )
    )
    await asyncio.wait_for(in_ivr.wait(), 5)
    status, body = await hotline.http_get("/calls")
    assert status == 200
    [live] = json.loads(body)["calls"]
    assert (live["caller_number"], live["dialled"], live["node"]) == ("13911112222", "96119", "sim")
    status, body = await hotline.http_get(f"/calls/{live['linkedid']}")
    assert status == 200 and json.loads(body)["linkedid"] == live["linkedid"]
    await link.send_action({"Action": "Hangup", "Channel": live["channels"][0]})
    record = await asyncio.wait_for(call, 5)
    await hotline.app[STORE].flush()
    ticket = await hotline.app[STORE].get(f"T-{record.linkedid}")
    assert ticket is not None and ticket.disposition is Disposition.ABANDONED
    assert (await hotline.http_get("/calls/nope"))[0] == 404
