"""The transfer actions of the simulated PBX answer with Asterisk 22's texts."""

from __future__ import annotations

import asyncio

from ivr.simpbx import CallScript
from tests.simpbx.conftest import AmiClient


async def test_transfer_actions_answer_like_asterisk(responder_factory, pbx_for) -> None:
    """BlindTransfer of an unbridged caller is invalid, Atxfer is queued, a missing ExtraChannel is
    named."""
    responder = responder_factory(["WAIT FOR DIGIT 20000", "NOOP"])
    pbx = await pbx_for(responder)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="off")
    call = asyncio.create_task(pbx.place_call(CallScript("13900001111", keys=("hold",))))
    try:
        (channel,) = await asyncio.wait_for(pbx.wait_holding(1), 5)
        client.send(Action="BlindTransfer", ActionID="1", Channel=channel, Exten="110")
        assert await client.block() == "Response: Error\r\nActionID: 1\r\nMessage: Transfer invalid"
        client.send(Action="BlindTransfer", ActionID="2", Channel="PJSIP/x-1", Exten="110")
        assert await client.block() == (
            "Response: Error\r\nActionID: 2\r\nMessage: Channel specified does not exist")
        client.send(Action="Atxfer", ActionID="3", Channel=channel)
        assert (
            await client.block()
            == "Response: Error\r\nActionID: 3\r\nMessage: No extension specified"
        )
        client.send(Action="Atxfer", ActionID="4", Channel=channel, Exten="8001", Context="agents")
        assert await client.block() == (
            "Response: Success\r\nActionID: 4\r\nMessage: Atxfer successfully queued")
        client.send(Action="Redirect", ActionID="5", Channel=channel, Context="c", Exten="1",
                    Priority="1", ExtraChannel="PJSIP/agent-9")
        assert await client.block() == (
            "Response: Error\r\nActionID: 5\r\nMessage: ExtraChannel does not exist: PJSIP/agent-9")
        assert pbx.holding_channels() == [channel]  # nothing moved the caller
        assert [a.name for a in pbx.ami_actions][-5:] == [
            "blindtransfer", "blindtransfer", "atxfer", "atxfer", "redirect"]
        pbx.hangup(channel)
        await asyncio.wait_for(call, 5)
    finally:
        call.cancel()
    await client.close()
