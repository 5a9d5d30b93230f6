"""Live transfers over AMI through the HTTP API, against the simulated PBX behind a fault proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from call_transfer.live import LiveTransfers, TransferRefused, TransferUnavailable
from ivr.dialplan import Dialplan
from ivr.simpbx import CallRecord, CallScript, SimulatedPbx
from tests.faults.proxy import TO_CLIENT, FaultProxy
from tests.faults.service import WAIT_S, Node, Service, running_service
from tests.integration.conftest import SECRET


@dataclass
class Rig:
    """A simulated PBX, a fault proxy in front of its AMI port, and the service."""

    pbx: SimulatedPbx
    proxy: FaultProxy
    service: Service

    async def holding_call(
        self, caller: str = "13800138000"
    ) -> tuple[str, str, asyncio.Task[CallRecord]]:
        """Place a call that holds in the IVR; returns its Linkedid, channel and the call task."""
        task = asyncio.create_task(self.pbx.place_call(CallScript(caller, keys=("hold",))))
        held = set(self.pbx.holding_channels())
        async with asyncio.timeout(WAIT_S):
            channels = await self.pbx.wait_holding(len(held) + 1)
        channel = next(name for name in channels if name not in held)

        def tracked(tracker: object) -> bool:
            return any(channel in call.channels for call in self.service.tracker("sim").snapshot())

        await self.service.wait_tracked("sim", tracked)
        call = next(c for c in self.service.tracker("sim").snapshot() if channel in c.channels)
        return call.linkedid, channel, task


@pytest.fixture
async def rig(tmp_path: Path, shipped_dialplan: Dialplan) -> AsyncIterator[Rig]:
    """The service's AMI link reaching the simulated PBX through a fault proxy."""
    async with SimulatedPbx(agi_port=0, ami_secret=SECRET) as pbx, FaultProxy(
        "127.0.0.1", pbx.ami_port
    ) as proxy, running_service(
        tmp_path, shipped_dialplan, [Node("sim", proxy.port)], [pbx], action_timeout=0.3
    ) as service:
        await service.link("sim").wait_connected(WAIT_S)
        yield Rig(pbx, proxy, service)


async def test_blind_transfer_to_110_is_confirmed(rig: Rig) -> None:
    """A blind transfer with "to": "110" redirects the caller to the 110 link and answers 200."""
    linkedid, channel, call = await rig.holding_call()
    status, body = await rig.service.post(
        f"/calls/{linkedid}/transfer", {"mode": "blind", "to": "110"}
    )
    assert (status, body["outcome"], body["action"]) == (200, "done", "Redirect")
    record = await asyncio.wait_for(call, WAIT_S)
    assert record.destination == "redirect:hotline-110-link,110,1"
    assert record.channel == channel


async def test_transfer_cut_while_pending_happens_once(rig: Rig) -> None:
    """A Redirect whose answer is lost with the link is reported unknown (502) and never re-sent."""
    linkedid, _channel, call = await rig.holding_call()
    rig.proxy.half_open(TO_CLIENT)  # Asterisk's answer will not come back
    post = asyncio.create_task(rig.service.post(
        f"/calls/{linkedid}/transfer", {"mode": "blind", "to": "8001", "context": "agents"}
    ))
    async with asyncio.timeout(WAIT_S):
        await rig.pbx.wait_for_ami_action("Redirect")
    rig.proxy.drop()
    rig.proxy.pass_through()
    status, body = await asyncio.wait_for(post, WAIT_S)
    assert (status, body["outcome"]) == (502, "unknown")
    async with asyncio.timeout(WAIT_S):
        await rig.pbx.wait_for_ami_action("Login", 2)
    await rig.service.link("sim").wait_connected(WAIT_S)
    async with asyncio.timeout(WAIT_S):
        await rig.pbx.wait_for_ami_action("CoreShowChannels", 2)  # resync ran after the Redirect
    assert rig.pbx.ami_action_count("Redirect") == 1
    assert (await asyncio.wait_for(call, WAIT_S)).destination == "redirect:agents,8001,1"


async def test_unanswered_transfer_times_out_as_unknown(rig: Rig) -> None:
    """A Redirect without an answer in time is reported unknown (504) and sent once."""
    linkedid, _channel, call = await rig.holding_call()
    rig.proxy.half_open(TO_CLIENT)
    status, body = await rig.service.post(
        f"/calls/{linkedid}/transfer", {"mode": "blind", "to": "8001"}
    )
    assert (status, body["outcome"]) == (504, "unknown")
    assert rig.pbx.ami_action_count("Redirect") == 1
    await asyncio.wait_for(call, WAIT_S)


async def test_bad_requests_send_nothing(rig: Rig) -> None:
    """Unknown calls, bad bodies and an attended transfer without an agent leg send no action."""
    linkedid, channel, call = await rig.holding_call()
    assert (await rig.service.post("/calls/1.2/transfer", {"mode": "blind", "to": "1"}))[0] == 404
    assert (await rig.service.post(f"/calls/{linkedid}/transfer", {"mode": "x", "to": "1"}))[
        0
    ] == 400
    assert (await rig.service.post(f"/calls/{linkedid}/transfer", ["blind"]))[0] == 400
    bad_context = {"mode": "blind", "to": "1", "context": "a,b"}
    assert (await rig.service.post(f"/calls/{linkedid}/transfer", bad_context))[0] == 400
    attended = {"mode": "attended", "to": "8001"}
    assert (await rig.service.post(f"/calls/{linkedid}/transfer", attended))[0] == 409
    assert (await rig.service.post(f"/calls/{linkedid}/three-way", {"with": "110"}))[0] == 409
    assert rig.pbx.ami_action_count("Redirect") + rig.pbx.ami_action_count("Atxfer") == 0
    rig.pbx.hangup(channel)
    await asyncio.wait_for(call, WAIT_S)


async def test_actions_answer_only_on_success(rig: Rig) -> None:
    """Atxfer is confirmed when queued; Asterisk's errors and a missing node are raised as such."""
    transfers = LiveTransfers(lambda node: rig.service.link("sim") if node == "sim" else None)
    _linkedid, channel, call = await rig.holding_call()
    done = await transfers.attended("sim", channel, exten="8001", context="agents", timeout=WAIT_S)
    assert done.message == "Atxfer successfully queued"
    with pytest.raises(TransferRefused, match="Channel does not exist"):
        await transfers.blind("sim", "PJSIP/nobody-1", context="a", exten="1", timeout=WAIT_S)
    with pytest.raises(TransferUnavailable):
        await transfers.blind("elsewhere", channel, context="a", exten="1", timeout=WAIT_S)
    rig.pbx.hangup(channel)
    await asyncio.wait_for(call, WAIT_S)


async def test_three_way_originates_into_conference_then_redirects(rig: Rig) -> None:
    """A three-way call first brings 110 into a ConfBridge, then moves the caller there."""
    transfers = LiveTransfers(lambda node: rig.service.link(node))
    linkedid, channel, call = await rig.holding_call()
    done = await transfers.three_way(
        "sim", linkedid, caller_channel=channel, agent_channel="", with_number="110",
        ring_timeout=5, timeout=WAIT_S,
    )
    assert done.action == "Redirect"
    conference = linkedid.replace(".", "")
    (originated,) = rig.pbx.originated
    assert originated.channel == "Local/110@hotline-outbound"
    assert originated.destination == f"Application: ConfBridge\r\nData: hotline-{conference}\r\n"
    record = await asyncio.wait_for(call, WAIT_S)
    assert record.destination == f"redirect:hotline-conference,{conference},1"
    names = [action.name for action in rig.pbx.ami_actions]
    assert names.index("originate") < names.index("redirect")
