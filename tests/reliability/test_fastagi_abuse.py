"""FastAGI abuse at scale: two thousand idle and slowloris connections against a running server
while good calls go on. Good calls complete; once the bad clients are timed out, the server's
file descriptors and Python memory are back where they were. And a peer that is not the PBX
(another loopback address) is turned away."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import time
import tracemalloc
from collections.abc import Iterator

import pytest
import structlog

from ivr.agi import AgiSession, FastAgiServer

IDLE = 1500  # connect and say nothing
SLOW = 500  # send the header a byte at a time, never finishing it
GOOD_ROUNDS = 20  # rounds of good calls; slowloris clients send one byte after each round
GOOD_PER_ROUND = 5
HEADER_TIMEOUT_S = 0.5
BOUND_S = 20.0  # a safety bound on the waits; none comes near it when green
ENV = b"agi_channel: PJSIP/carrier-1\nagi_uniqueid: 1795380949.%d\n\n"
FD_MARGIN = 8
MEMORY_MARGIN = 512 * 1024  # bytes of Python memory allowed to stay (caches, free lists)
# Two thousand "rejected" warnings would only slow the test down; the counters are checked.
QUIET = structlog.wrap_logger(
    structlog.PrintLogger(), wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL)
)


async def good_session(session: AgiSession) -> None:
    """A short real call: one prompt, one key."""
    await session.stream_file("hotline/zh/welcome-12345", "123")
    await session.wait_for_digit(5.0)


async def good_call(port: int, n: int) -> float:
    """Play Asterisk for one call; the seconds from our last reply to the server's close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(ENV % n)
        assert (await reader.readline()).startswith(b"STREAM FILE ")
        writer.write(b"200 result=0 endpos=16000\n")
        assert (await reader.readline()).startswith(b"WAIT FOR DIGIT ")
        replied = time.perf_counter()
        writer.write(b"200 result=49\n")
        assert await reader.read() == b""
        return time.perf_counter() - replied
    finally:
        writer.close()
        await writer.wait_closed()


def open_fds() -> int:
    """File descriptors open in this process now."""
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def enough_descriptors() -> Iterator[None]:
    """Room for both ends of every connection in this one process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * (IDLE + SLOW) + 1024
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the open-file limit ({hard}) is below {needed}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def connect_many(
    port: int, count: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """``count`` connections, opened a few hundred at a time (the listen backlog is finite)."""
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    while len(opened) < count:
        batch = min(200, count - len(opened))
        opened += await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", port) for _ in range(batch))
        )
    return opened


async def closed_by_server(reader: asyncio.StreamReader) -> None:
    """Return once the server has closed this connection (a reset counts)."""
    with contextlib.suppress(ConnectionError):
        await reader.read()


async def abuse_round(port: int) -> tuple[list[float], int]:
    """One wave of 2,000 bad clients while good calls run, until the server has closed every
    bad one; the good calls' latencies and this process's descriptors at the height of it."""
    bad = await connect_many(port, IDLE + SLOW)
    try:
        fds_during = open_fds()
        slow = bad[IDLE:]
        latencies: list[float] = []
        header = b"agi_channel: PJSIP/slowloris\nagi_uniqueid: 1.1\n"
        for round_ in range(GOOD_ROUNDS):
            latencies += await asyncio.gather(*(
                good_call(port, 100 * round_ + n) for n in range(GOOD_PER_ROUND)
            ))  # fmt: skip
            for _reader, writer in slow:
                if not writer.is_closing():
                    writer.write(header[round_ % len(header):][:1])
        # One after the other, with no task per client: the test itself leaves nothing behind.
        for reader, _writer in bad:
            await closed_by_server(reader)
    finally:
        for _reader, writer in bad:
            writer.close()
        for _reader, writer in bad:
            await _closed(writer)
    return latencies, fds_during


async def _closed(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):  # the server reset it: closed all the same
        await writer.wait_closed()


def now_used() -> tuple[int, int]:
    """Descriptors open and Python memory traced (0 when not tracing), after a collection."""
    gc.collect()
    return open_fds(), tracemalloc.get_traced_memory()[0]


@pytest.mark.usefixtures("enough_descriptors")
async def test_idle_and_slowloris_thousands_while_good_calls_run() -> None:
    """2,000 idle and slowloris clients cost the good calls nothing, are all timed out, and
    leave the server's descriptors where they were and its memory where the wave before left
    it (the first wave grows asyncio's own tables to their high-water mark)."""
    server = FastAgiServer(good_session, host="127.0.0.1", port=0, backlog=4096,
                           header_timeout=HEADER_TIMEOUT_S, logger=QUIET)  # fmt: skip
    await server.start()
    try:
        async with asyncio.timeout(BOUND_S):
            await good_call(server.port, 0)  # lazy imports and first allocations
            fds_before, _ = now_used()
            first, fds_during = await abuse_round(server.port)
            tracemalloc.start()  # from here on, whatever the second wave leaves behind is seen
            fds_after_first, memory_after_first = now_used()
            second, _ = await abuse_round(server.port)
            fds_after, memory_after = now_used()
    finally:
        await server.close(grace=0.0)
        tracemalloc.stop()
    assert len(first) == len(second) == GOOD_ROUNDS * GOOD_PER_ROUND
    assert server.rejected_connections == 2 * (IDLE + SLOW)
    assert server.active_sessions == 0
    assert fds_during >= fds_before + IDLE + SLOW  # they really were open (our ends at least)
    assert fds_after_first <= fds_before + FD_MARGIN and fds_after <= fds_before + FD_MARGIN
    assert memory_after <= memory_after_first + MEMORY_MARGIN, memory_after - memory_after_first


async def test_only_configured_peers() -> None:
    """A connection from 127.0.0.2, not in allowed_peers, is closed unheard; 127.0.0.1 is served."""
    served: list[str] = []

    async def handler(session: AgiSession) -> None:
        served.append(session.env.uniqueid)

    server = FastAgiServer(handler, host="127.0.0.1", port=0,
                           allowed_peers=frozenset({"127.0.0.1"}))  # fmt: skip
    await server.start()
    try:
        async with asyncio.timeout(BOUND_S):
            for source, n in (("127.0.0.2", 1), ("127.0.0.1", 2)):
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", server.port, local_addr=(source, 0)
                )
                writer.write(ENV % n)
                await closed_by_server(reader)
                writer.close()
    finally:
        await server.close(grace=0.0)
    assert served == ["1795380949.2"]
    assert server.rejected_connections == 1
