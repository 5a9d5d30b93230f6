"""Whole recorded Asterisk 22 sessions replayed over loopback against typed session calls.

The test client plays Asterisk: it checks that every command the handler sends is byte for byte
the recorded one, and answers with the recorded reply lines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ivr.agi import AgiCommandError, AgiHangup, AgiSession
from tests.agi.harness import BOUND, StartServer, play_asterisk, recording
from tests.agi.transcripts import load

T = TypeVar("T")


async def _replay(serve: StartServer, name: str, script: Callable[[AgiSession], Awaitable[T]]) -> T:
    handler, outcome = recording(script)
    server = await serve(handler)
    await asyncio.wait_for(play_asterisk(server.port, load(name)), BOUND)
    return await asyncio.wait_for(outcome, BOUND)


async def test_replay_legacy_96119_call(serve: StartServer) -> None:
    """The 96119 session: values, a missing prompt, a digit, a 510, a dial, and the final HANGUP."""

    async def script(session: AgiSession) -> list[object]:
        got: list[object] = [session.env.uniqueid]
        await session.answer()
        got.append(await session.get_variable("HOTLINE_DIALED"))
        got.append(
            await session.get_full_variable(
                "${CALLERID(num)}|${REDIRECTING(from-num)}|${CALLERID(dnid)}"
            )
        )
        got.append(await session.stream_file("no-such-prompt", "0123456789*#"))
        got.append(await session.get_data("silence/1", 3.0, 1))
        got.append(await session.wait_for_digit(3.0))
        await session.set_variable("HOTLINE_TICKET", "T-1")
        got.append((await session.exec("Verbose", "hello from agi")).result)
        await session.noop()
        try:
            await session.run(b"BOGUS COMMAND\n")
        except AgiCommandError as exc:
            got.append(exc.reply.code)
        got.append(await session.get_data("silence/1", 8.0, 1))
        got.append((await session.exec("Dial", "Local/119@emergency", "20", timeout=60)).result)
        got.append(await session.get_variable("DIALSTATUS"))
        await session.hangup()
        got.append(session.hung_up)
        try:
            await session.noop()
        except AgiHangup:
            got.append(session.hung_up)
        return got

    assert await _replay(serve, "call-legacy-96119-fastagi.txt", script) == [
        "1795380949.3", "96119", "13900001111||", None, None, "1", "0", 510, None, "-1",
        "ANSWER", False, True,
    ]


async def test_replay_redirect_during_wait_for_digit(serve: StartServer) -> None:
    """520 usage replies raise with their text; WAIT FOR DIGIT's -1 plus HANGUP ends the call
    and no further command reaches the socket."""

    async def script(session: AgiSession) -> list[object]:
        got: list[object] = []
        await session.answer()
        for raw in (b"GET DATA\n", b"SAY NUMBER abc\n"):
            try:
                await session.run(raw)
            except AgiCommandError as exc:
                got.append((exc.reply.code, exc.reply.text.splitlines()[-1]))
        got.append(await session.get_variable("CALLERID(name)"))
        try:
            await session.wait_for_digit(20.0)
        except AgiHangup:
            got.append(session.hung_up)
        try:
            await session.noop()
        except AgiHangup:
            got.append("refused")
        return got

    assert await _replay(serve, "redirect-during-fastagi.txt", script) == [
        (520, "End of proper usage."), (520, "End of proper usage."), "曹女士", True, "refused",
    ]


async def test_replay_dial_outcomes(serve: StartServer) -> None:
    """Five emergency-route dials: result 0 after each failed dial, -1 after the answered one."""

    async def script(session: AgiSession) -> list[tuple[str, str | None, str | None]]:
        got = []
        for target in (
            ("Local/119@emergency-routes",),
            ("Local/110@emergency-routes",),
            ("Local/120@emergency-routes", "3"),
            ("Nonexistent/119",),
            ("Local/122@emergency-routes",),
        ):
            reply = await session.exec("Dial", *target, timeout=60)
            got.append(
                (
                    reply.result,
                    await session.get_variable("DIALSTATUS"),
                    await session.get_variable("HANGUPCAUSE"),
                )
            )
        return got

    assert await _replay(serve, "dial-outcomes-fastagi.txt", script) == [
        ("0", "BUSY", "0"),
        ("0", "CONGESTION", "0"),
        ("0", "NOANSWER", "0"),
        ("0", "CHANUNAVAIL", "66"),
        ("-1", "ANSWER", "16"),
    ]


async def test_replay_sip_forwarded_call(serve: StartServer) -> None:
    """The SIP call forwarded from 96119: redirecting data, the Diversion header, digit 1."""

    async def script(session: AgiSession) -> list[object]:
        got: list[object] = [session.env.rdnis]
        got.append(
            await session.get_full_variable(
                "${REDIRECTING(from-num)}|${REDIRECTING(reason)}|${REDIRECTING(count)}"
                "|${CALLERID(dnid)}|${CALLERID(rdnis)}|${HOTLINE_DIALED}"
            )
        )
        got.append(await session.get_variable("SIP_HEADER(Diversion)"))
        got.append(await session.wait_for_digit(5.0))
        await session.set_variable("HOTLINE_ROUTE", "emergency-119")
        try:
            await session.wait_for_digit(8.0)
        except AgiHangup:
            got.append(session.hung_up)
        return got

    assert await _replay(serve, "sip-forwarded-96119-fastagi.txt", script) == [
        "96119",
        "96119|cfu|0|12345|96119|12345",
        "<sip:96119@127.0.0.1>;reason=unconditional;counter=1",
        "1",
        True,
    ]
