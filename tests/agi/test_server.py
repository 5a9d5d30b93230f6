"""FastAgiServer over loopback: hostile connections cost only themselves, calls are isolated,
and closing lets calls finish before cancelling them."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import structlog

from ivr.agi import AgiHangup, AgiSession, FastAgiServer
from tests.agi.harness import (
    BOUND,
    Connect,
    StartServer,
    play_asterisk,
    read_until_closed,
    recording,
)
from tests.agi.transcripts import load

SIP_CALL = load("sip-forwarded-96119-fastagi.txt")
ENV = b"agi_channel: SIP/t-1\nagi_uniqueid: 1795380949.3\n\n"


async def sip_script(session: AgiSession) -> str:
    """The typed calls that produce the SIP recording's commands."""
    await session.get_full_variable(
        "${REDIRECTING(from-num)}|${REDIRECTING(reason)}|${REDIRECTING(count)}"
        "|${CALLERID(dnid)}|${CALLERID(rdnis)}|${HOTLINE_DIALED}"
    )
    await session.get_variable("SIP_HEADER(Diversion)")
    digit = await session.wait_for_digit(5.0)
    await session.set_variable("HOTLINE_ROUTE", "emergency-119")
    with contextlib.suppress(AgiHangup):
        await session.wait_for_digit(8.0)
    return f"{session.env.uniqueid}:{digit}"


async def _never_called(session: AgiSession) -> None:
    raise AssertionError(f"handler ran for a rejected connection: {dict(session.env)}")


@pytest.mark.parametrize(
    ("sent", "then_close", "options"),
    [
        (b"agi_channel: SIP/a\nagi_uniq", True, {}),
        (b"agi_channel: SIP/a\nagi_uniqueid: 1.1\n", True, {}),  # no closing blank line
        (b"GET / HTTP/1.1\r\nHost: hotline\r\n\r\n", False, {}),
        (bytes(range(256)) * 4, False, {}),
        (b"agi_channel: " + b"x" * 10_000, False, {}),  # one line over line_limit
        (b"".join(b"agi_k%d: v\n" % i for i in range(3000)), False, {}),  # endless header
        (b"agi_callerid: 110\nagi_callerid: 13900001111\n\n", False, {}),  # injected duplicate
        (b"", False, {"header_timeout": 0.2}),  # silent client
        (b"agi_channel: SIP/a\n", False, {"header_timeout": 0.2}),  # stalls mid-header
    ],
    ids=[
        "truncated-line", "truncated-block", "http", "binary", "long-line", "endless-header",
        "duplicate-key", "silent", "stalled",
    ],
)
async def test_bad_connections_are_rejected(
    serve: StartServer,
    connect: Connect,
    sent: bytes,
    then_close: bool,
    options: dict[str, float],
) -> None:
    """A truncated, foreign, binary, endless, duplicated or silent header is closed and counted,
    and never reaches the handler."""
    server = await serve(_never_called, **options)
    reader, writer = await connect(server.port, sent)
    if then_close:
        writer.write_eof()
    assert await read_until_closed(reader) == b""
    assert server.rejected_connections == 1
    assert server.active_sessions == 0


async def test_good_call_completes_while_bad_clients_are_stuck(
    serve: StartServer, connect: Connect
) -> None:
    """Silent and half-sent connections waiting on their header do not delay a real call."""
    handler, outcome = recording(sip_script)
    server = await serve(handler, header_timeout=30.0)
    stuck = [
        await connect(server.port, b""),
        await connect(server.port, b"agi_channel: SIP/a\nagi_uniq"),
        await connect(server.port, b"agi_channel: SIP/b\n"),
    ]
    await asyncio.wait_for(play_asterisk(server.port, SIP_CALL), BOUND)
    assert await asyncio.wait_for(outcome, BOUND) == "1795381948.0:1"
    assert server.rejected_connections == 0
    await server.close(grace=0.0)  # the stuck ones are cancelled and closed
    for reader, _writer in stuck:
        assert await read_until_closed(reader) == b""


async def test_concurrent_calls(serve: StartServer) -> None:
    """Fifty recorded calls replayed at once all complete with their own results."""
    results: list[str] = []

    async def handler(session: AgiSession) -> None:
        results.append(await sip_script(session))

    server = await serve(handler)
    await asyncio.wait_for(
        asyncio.gather(*(play_asterisk(server.port, SIP_CALL) for _ in range(50))), BOUND
    )
    assert results == ["1795381948.0:1"] * 50
    assert server.active_sessions == 0


async def test_handler_crash_is_logged_and_isolated(serve: StartServer, connect: Connect) -> None:
    """An exception escaping one call's handler is logged with its uniqueid and closes only
    that call."""
    completed: list[str] = []

    async def handler(session: AgiSession) -> None:
        if session.env.uniqueid == "crash.1":
            raise RuntimeError("bug in a menu")
        completed.append(await sip_script(session))

    server = await serve(handler)
    with structlog.testing.capture_logs() as logs:
        reader, _writer = await connect(server.port, b"agi_uniqueid: crash.1\n\n")
        assert await read_until_closed(reader) == b""
        await asyncio.wait_for(play_asterisk(server.port, SIP_CALL), BOUND)
    assert completed == ["1795381948.0:1"]
    crashes = [entry for entry in logs if entry["event"] == "fastagi.handler_crashed"]
    assert len(crashes) == 1
    assert crashes[0]["uniqueid"] == "crash.1"
    assert crashes[0]["log_level"] == "error"


@pytest.mark.parametrize(("allowed", "accepted"), [("127.0.0.1", True), ("192.0.2.7", False)])
async def test_allowed_peers(
    serve: StartServer, connect: Connect, allowed: str, accepted: bool
) -> None:
    """A peer outside ``allowed_peers`` is closed at once; a listed one gets its call."""
    calls: list[str] = []

    async def handler(session: AgiSession) -> None:
        calls.append(session.env.uniqueid)

    server = await serve(handler, allowed_peers=frozenset({allowed}))
    reader, _writer = await connect(server.port, ENV)
    assert await read_until_closed(reader) == b""
    assert calls == (["1795380949.3"] if accepted else [])
    assert server.rejected_connections == (0 if accepted else 1)


async def test_close_waits_for_calls_within_grace(serve: StartServer, connect: Connect) -> None:
    """close() stops accepting, and a call that ends within the grace period ends normally."""

    async def script(session: AgiSession) -> str:
        await session.noop()
        return "finished"

    handler, outcome = recording(script)
    server = await serve(handler)
    port = server.port
    reader, writer = await connect(port, ENV)
    assert await asyncio.wait_for(reader.readline(), BOUND) == b"NOOP\n"
    assert server.active_sessions == 1
    closing = asyncio.create_task(server.close(grace=BOUND))
    with pytest.raises(OSError, match="Connect call failed"):
        await connect(port, ENV)
    writer.write(b"200 result=0\n")
    assert await asyncio.wait_for(outcome, BOUND) == "finished"
    await asyncio.wait_for(closing, BOUND)
    assert server.active_sessions == 0


async def test_close_cancels_calls_after_grace(serve: StartServer, connect: Connect) -> None:
    """A call still running when the grace period ends is cancelled and its socket closed."""
    handler, outcome = recording(lambda session: session.wait_for_digit(60.0))
    server = await serve(handler)
    reader, _writer = await connect(server.port, ENV)
    assert await asyncio.wait_for(reader.readline(), BOUND) == b"WAIT FOR DIGIT 60000\n"
    await asyncio.wait_for(server.close(grace=0.05), BOUND)
    assert await read_until_closed(reader) == b""
    assert server.active_sessions == 0
    assert not outcome.done()  # cancelled, so the script never returned


async def test_port_zero_binds_a_real_port() -> None:
    """With port=0 the server reports the port the system chose, and refuses a second start."""
    server = FastAgiServer(_never_called, port=0)
    await server.start()
    try:
        assert server.port > 0
        with pytest.raises(RuntimeError):
            await server.start()
    finally:
        await server.close()
