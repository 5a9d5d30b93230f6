"""The AMI link against the simulated PBX through a fault-injecting proxy: dead links found,
reconnects with backoff, resynchronisation, byte-split UTF-8, several nodes, a wrong secret."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ivr.ami import AmiLink, AmiMessage
from ivr.dialplan import Dialplan
from ivr.simpbx import CallScript, SimulatedPbx
from tests.faults.proxy import FaultProxy
from tests.faults.service import STORE, WAIT_S, Node, running_service
from tests.integration.conftest import SECRET


class Changes:
    """Records link callbacks and lets a test wait for the n-th one."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._changed = asyncio.Event()

    async def __call__(self, _link: AmiLink) -> None:
        self.times.append(time.monotonic())
        self._changed.set()

    async def wait_count(self, count: int) -> None:
        async with asyncio.timeout(WAIT_S):
            while len(self.times) < count:
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
async def pbx() -> AsyncIterator[SimulatedPbx]:
    """A simulated PBX with no FastAGI service (its calls fall back to the queue)."""
    async with SimulatedPbx(agi_port=1, ami_secret=SECRET) as started:
        yield started


@pytest.fixture
async def proxy(pbx: SimulatedPbx) -> AsyncIterator[FaultProxy]:
    """A fault proxy in front of the PBX's AMI port."""
    async with FaultProxy("127.0.0.1", pbx.ami_port) as started:
        yield started


@pytest.fixture
async def make_link(proxy: FaultProxy) -> AsyncIterator[Callable[..., AmiLink]]:
    """Build AMI links through the proxy, closed at the end."""
    links: list[AmiLink] = []

    def build(**options: Any) -> AmiLink:
        settings: dict[str, Any] = {
            "host": "127.0.0.1", "port": proxy.port, "username": "hotline", "secret": SECRET,
            "node": "sim", "backoff_base": 0.02, "backoff_cap": 0.2, "action_timeout": 1.0,
        }
        link = AmiLink(**(settings | options))
        links.append(link)
        return link

    yield build
    for link in links:
        await link.close()


async def test_half_open_link_declared_dead_within_two_pings(
    proxy: FaultProxy, make_link: Callable[..., AmiLink]
) -> None:
    """A link that silently stops carrying bytes is declared down within two ping intervals."""
    interval = 0.2
    down = Changes()
    link = make_link(ping_interval=interval, on_disconnected=down)
    await link.start()
    await link.wait_connected(WAIT_S)
    cut_at = time.monotonic()
    proxy.half_open()
    await down.wait_count(1)
    # Scheduling slack on a loaded machine, but far below the next ping interval.
    assert down.times[0] - cut_at <= 2 * interval + 0.1


@pytest.mark.parametrize("fault", ["drop", "reset"])
async def test_reconnects_after_drop_or_reset(
    proxy: FaultProxy, make_link: Callable[..., AmiLink], fault: str
) -> None:
    """A closed or reset connection is followed by a new login on a fresh connection."""
    up, down = Changes(), Changes()
    link = make_link(on_connected=up, on_disconnected=down)
    await link.start()
    await up.wait_count(1)
    getattr(proxy, fault)()
    await down.wait_count(1)
    await up.wait_count(2)
    assert proxy.connections == 2 and link.reconnects == 1
    assert (await link.send_action({"Action": "Ping"})).get("Ping") == "Pong"


async def test_backoff_grows_to_its_cap(
    proxy: FaultProxy, make_link: Callable[..., AmiLink], caplog: pytest.LogCaptureFixture
) -> None:
    """Refused connections are retried with delays under an exponential, capped ceiling."""
    attempts: list[tuple[int, float]] = []
    retried = asyncio.Event()

    def on_retry(_link: AmiLink, attempt: int, delay: float) -> None:
        attempts.append((attempt, delay))
        if len(attempts) >= 6:
            retried.set()

    proxy.refuse_new()
    link = make_link(on_retry=on_retry, backoff_base=0.001, backoff_cap=0.01)
    caplog.set_level(logging.INFO, logger="ivr.ami")
    await link.start()
    await asyncio.wait_for(retried.wait(), WAIT_S)
    for attempt, delay in attempts[:6]:
        assert 0 <= delay <= min(0.01, 0.001 * 2**attempt)
    assert [attempt for attempt, _ in attempts[:6]] == [1, 2, 3, 4, 5, 6]
    assert re.search(r"AMI reconnect to 127\.0\.0\.1:\d+ \(sim\), attempt 3 in", caplog.text)
    proxy.refuse_new(False)
    await link.wait_connected(WAIT_S)


async def test_wrong_secret_is_an_auth_error_retried_with_backoff(
    proxy: FaultProxy, make_link: Callable[..., AmiLink], caplog: pytest.LogCaptureFixture
) -> None:
    """A refused login is logged as an authentication error and tried again, never connected."""
    caplog.set_level(logging.WARNING, logger="ivr.ami")
    link = make_link(secret="wrong")
    await link.start()
    async with asyncio.timeout(WAIT_S):
        await proxy.wait_connections(3)
    assert not link.connected
    assert link.last_error.startswith("authentication failed")
    assert "AMI login to sim refused: Authentication failed" in caplog.text


async def test_utf8_names_intact_when_every_byte_is_split(
    pbx: SimulatedPbx, proxy: FaultProxy, make_link: Callable[..., AmiLink]
) -> None:
    """Chinese caller names reach event handlers intact when each byte arrives alone."""
    names: list[str] = []
    seen = asyncio.Event()

    def on_newchannel(event: AmiMessage) -> None:
        names.append(event.get("CallerIDName"))
        seen.set()

    link = make_link(events="call")
    link.subscribe("Newchannel", on_newchannel)
    await link.start()
    await link.wait_connected(WAIT_S)
    proxy.split_every_byte()
    await pbx.place_call(CallScript("13800138000", caller_name="张三丰·测试"))
    await asyncio.wait_for(seen.wait(), WAIT_S)
    assert names[0] == "张三丰·测试"


async def test_resync_closes_calls_that_ended_while_away(
    tmp_path: Path, shipped_dialplan: Dialplan
) -> None:
    """After a reconnect the tracker drops calls that ended meanwhile and keeps live ones."""
    async with (
        SimulatedPbx(agi_port=0, ami_secret=SECRET) as pbx,
        FaultProxy("127.0.0.1", pbx.ami_port) as proxy,
        running_service(tmp_path, shipped_dialplan, [Node("sim", proxy.port)], [pbx]) as service,
    ):
        await service.link("sim").wait_connected(WAIT_S)
        calls = [
            asyncio.create_task(pbx.place_call(CallScript(f"1380013800{n}", keys=("hold",))))
            for n in range(2)
        ]
        async with asyncio.timeout(WAIT_S):
            ending, staying = await pbx.wait_holding(2)
        await service.wait_tracked("sim", lambda tracker: tracker.active_count == 2)
        proxy.half_open()  # the service hears nothing from now on
        pbx.hangup(ending)
        await asyncio.wait_for(calls[0], WAIT_S)
        proxy.drop()
        proxy.pass_through()
        async with asyncio.timeout(WAIT_S):
            await pbx.wait_for_ami_action("CoreShowChannels", 2)
        # Its answer comes after the listing's, so the resync that reads it has run by then.
        await service.link("sim").send_action({"Action": "Ping"})
        assert service.tracker("sim").active_count == 1
        (live,) = service.tracker("sim").snapshot()
        assert staying in live.channels
        pbx.hangup(staying)
        await asyncio.wait_for(calls[1], WAIT_S)


async def test_one_node_down_leaves_the_other_untouched(
    tmp_path: Path, shipped_dialplan: Dialplan
) -> None:
    """With one of two nodes unreachable, the other's link and calls carry on."""
    async with SimulatedPbx(agi_port=0, ami_secret=SECRET) as east, SimulatedPbx(
        agi_port=0, ami_secret=SECRET
    ) as west, FaultProxy("127.0.0.1", west.ami_port) as west_proxy:
        west_proxy.refuse_new()
        nodes = [Node("east", east.ami_port), Node("west", west_proxy.port)]
        async with running_service(tmp_path, shipped_dialplan, nodes, [east, west]) as service:
            await service.link("east").wait_connected(WAIT_S)
            call = asyncio.create_task(east.place_call(CallScript("13800138000", keys=("hold",))))
            async with asyncio.timeout(WAIT_S):
                (channel,) = await east.wait_holding(1)
            await service.wait_tracked("east", lambda tracker: tracker.active_count == 1)
            async with asyncio.timeout(WAIT_S):
                await west_proxy.wait_connections(2)  # west keeps trying, east is unaffected
            assert service.link("east").connected and not service.link("west").connected
            assert service.link("east").reconnects == 0
            east.hangup(channel)
            assert (await asyncio.wait_for(call, WAIT_S)).destination == "hangup"


async def test_calls_go_on_while_the_ami_link_is_down(
    tmp_path: Path, shipped_dialplan: Dialplan
) -> None:
    """FastAGI does not need AMI: with the link refused, calls still route and get their ticket."""
    async with SimulatedPbx(agi_port=0, ami_secret=SECRET) as pbx, FaultProxy(
        "127.0.0.1", pbx.ami_port
    ) as proxy:
        proxy.refuse_new()
        async with running_service(
            tmp_path, shipped_dialplan, [Node("sim", proxy.port)], [pbx]
        ) as service:
            async with asyncio.timeout(WAIT_S):
                await proxy.wait_connections(2)  # the link keeps trying, and failing
            assert not service.link("sim").connected
            records = await asyncio.gather(*(
                pbx.place_call(CallScript(f"1390000{n:04d}", keys=("1",))) for n in range(5)
            ))
            assert all(r.destination == "queue:hotline-agents" and not r.fallback for r in records)
            store = service.app[STORE]
            await store.flush()
            tickets = [await store.get(f"T-{r.linkedid}") for r in records]
            assert all(t is not None and t.disposition.value == "agent" for t in tickets)
