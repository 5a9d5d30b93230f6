"""The supervised AMI link, against a scripted AMI server over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from ivr.ami import (
    AmiActionError,
    AmiConnectionLost,
    AmiLink,
    AmiMessage,
    AmiNotConnected,
    AmiTimeout,
    event_whitelist_filter,
)
from ivr.ami.events import EventFilter
from ivr.simpbx import CallScript, SimulatedPbx

from .conftest import FakeAmi, frame

FAST = {"ping_interval": 0.05, "action_timeout": 0.5, "backoff_base": 0.01, "backoff_cap": 0.05}


class Recorder:
    """Collects link callbacks and lets a test await the n-th one."""

    def __init__(self) -> None:
        self.calls: list[AmiLink] = []
        self._changed = asyncio.Event()

    async def __call__(self, link: AmiLink) -> None:
        self.calls.append(link)
        self._changed.set()

    async def wait_count(self, count: int) -> None:
        """Wait until at least ``count`` callbacks happened."""
        async def reached() -> None:
            while len(self.calls) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(reached(), 5)


@pytest.fixture
async def make_link(fake_ami: FakeAmi) -> AsyncIterator[Callable[..., AmiLink]]:
    """Build links to the fake server; every link built is closed after the test."""
    links: list[AmiLink] = []

    def build(**overrides: Any) -> AmiLink:
        options: dict[str, Any] = {
            "host": "127.0.0.1", "port": fake_ami.port, "username": "hotline",
            "secret": "s3cret", **FAST, **overrides,
        }
        link = AmiLink(**options)
        links.append(link)
        return link

    yield build
    for link in links:
        await link.close()


async def test_login_first_then_connected(
    fake_ami: FakeAmi, make_link: Callable[..., AmiLink]
) -> None:
    """Login is the first action, with the event mask; on_connected is awaited after it."""
    connected = Recorder()
    link = make_link(on_connected=connected, events="call,agent")
    await link.start()
    _, login = await fake_ami.next_action("Login")
    await connected.wait_count(1)
    assert link.connected and link.version == "11.0.0"
    assert fake_ami.current.actions[0] is login
    credentials = (login["Username"], login["Secret"], login["Events"])
    assert credentials == ("hotline", "s3cret", "call,agent")


async def test_filters_sent_after_login(
    fake_ami: FakeAmi, make_link: Callable[..., AmiLink]
) -> None:
    """Configured event filters are added right after Login, before the link is up: a legacy
    one with Filter alone, an advanced one with its MatchCriteria."""
    whitelist = EventFilter.legacy(event_whitelist_filter(["Newchannel", "Hangup"]))
    varset = EventFilter.match(
        name="VarSet", header="Variable", method="starts_with", expression="HOTLINE_"
    )
    link = make_link(event_filters=[whitelist, varset])
    await link.start()
    await link.wait_connected(5)
    names = [action["Action"] for action in fake_ami.current.actions]
    assert names[:3] == ["Login", "Filter", "Filter"]
    legacy, advanced = fake_ami.current.actions[1:3]
    assert legacy["Filter"] == "^Event: (Hangup|Newchannel)[[:space:]]"
    assert "MatchCriteria" not in legacy and legacy["Operation"] == "Add"
    assert advanced["MatchCriteria"] == (
        "action(include),name(VarSet),header(Variable),method(starts_with)"
    )
    assert (advanced["Filter"], advanced["Operation"]) == ("HOTLINE_", "Add")


async def test_simulated_pbx_sends_only_what_the_link_filters_let_through() -> None:
    """Against the simulated PBX, the link's advanced filters decide what arrives: Newexten
    by name less Set, VarSet of one variable only, Hangup; nothing else."""
    pbx = SimulatedPbx(agi_port=0)  # no FastAGI server: AGISTATUS=FAILURE, then the fallback
    await pbx.start()
    received: list[AmiMessage] = []
    hung_up = asyncio.Event()

    def record(event: AmiMessage) -> None:
        received.append(event)
        if event.event == "Hangup":
            hung_up.set()

    link = AmiLink(
        host="127.0.0.1", port=pbx.ami_port, username="hotline", secret="hotline-secret",
        event_filters=[
            EventFilter.match(name="Newexten"),
            EventFilter.match(name="Hangup"),
            EventFilter.match(
                name="VarSet", header="Variable", method="regex", expression="^_*HOTLINE_DIALED$"
            ),
            EventFilter.match(
                action="exclude", name="Newexten", header="Application", method="exact",
                expression="Set",
            ),
        ],
        **FAST,
    )
    link.subscribe("*", record)
    try:
        await link.start()
        await link.wait_connected(5)
        filters = [a.headers for a in pbx.ami_actions if a.name == "filter"]
        assert [f.get("matchcriteria") for f in filters] == [
            "action(include),name(Newexten),method(none)",
            "action(include),name(Hangup),method(none)",
            "action(include),name(VarSet),header(Variable),method(regex)",
            "action(exclude),name(Newexten),header(Application),method(exact)",
        ]
        call = await pbx.place_call(CallScript("13800000000"))
        await asyncio.wait_for(hung_up.wait(), 5)
    finally:
        await link.close()
        await pbx.close()
    assert call.agi_status == "FAILURE"
    calls = [e for e in received if e.event != "FullyBooted"]
    assert {e.event for e in calls} == {"Newexten", "VarSet", "Hangup"}
    assert [e.get("Variable") for e in calls if e.event == "VarSet"] == ["__HOTLINE_DIALED"]
    applications = [e.get("Application") for e in calls if e.event == "Newexten"]
    assert "Set" not in applications and applications[:3] == ["Answer", "AGI", "GotoIf"]


async def test_wrong_secret_warns_and_retries(
    fake_ami: FakeAmi, make_link: Callable[..., AmiLink], caplog: pytest.LogCaptureFixture
) -> None:
    """A refused login logs one warning without traceback, retries, and connects once fixed."""
    fake_ami.secret = "other"
    link = make_link()
    with caplog.at_level(logging.INFO, logger="ivr.ami"):
        await link.start()
        await fake_ami.next_action("Login")
        await fake_ami.next_action("Login")
        assert not link.connected
        fake_ami.secret = "s3cret"
        await link.wait_connected(5)
    refused = [r for r in caplog.records if "Authentication failed" in r.getMessage()]
    assert refused and all(r.levelno == logging.WARNING and r.exc_info is None for r in refused)
    assert link.reconnects >= 2
    assert not any(a["Action"] == "Ping" for c in fake_ami.connections[:2] for a in c.actions)


async def test_answered_pings_keep_the_link(
    fake_ami: FakeAmi, make_link: Callable[..., AmiLink]
) -> None:
    """While pings are answered the link stays on its first connection."""
    link = make_link()
    await link.start()
    for _ in range(3):
        await fake_ami.next_action("Ping")
    assert link.connected
    assert len(fake_ami.connections) == 1 and link.reconnects == 0


async def test_unanswered_ping_drops_and_reconnects(
    fake_ami: FakeAmi, make_link: Callable[..., AmiLink]
) -> None:
    """A Ping left unanswered for one interval declares the link dead; it reconnects."""
    lost = Recorder()
    link = make_link(on_disconnected=lost)
    fake_ami.answer_pings = False
    await link.start()
    await link.wait_connected(5)
    loop = asyncio.get_running_loop()
    up_at = loop.time()
    await lost.wait_count(1)
    # Detected within two ping intervals (plus scheduling slack on a busy machine).
    assert loop.time() - up_at < 2 * link.ping_interval + 0.5
    await fake_ami.current.closed.wait()
    fake_ami.answer_pings = True
    assert (await fake_ami.next_connection()).number == 1
    assert (await fake_ami.next_connection()).number == 2
    await link.wait_connected(5)
    assert link.reconnects >= 1


async def test_chinese_event_byte_by_byte(
    fake_ami: FakeAmi, make_link: Callable[..., AmiLink]
) -> None:
    """An event written one byte per write reaches the handler with its Chinese name whole."""
    received: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
    link = make_link()
    link.subscribe("Newchannel", received.set_result)
    await link.start()
    await link.wait_connected(5)
    await fake_ami.send(
        frame(("Event", "Newchannel"), ("Channel", "PJSIP/trunk-0001"),
              ("CallerIDName", "曹女士"), ("Linkedid", "1.1")),
        byte_by_byte=True,
    )
    event = await asyncio.wait_for(received, 5)
    assert (event.event, event.get("CallerIDName")) == ("Newchannel", "曹女士")


async def test_raising_handler_is_isolated(
    fake_ami: FakeAmi, make_link: Callable[..., AmiLink]
) -> None:
    """Handlers that raise (plain or coroutine) are counted; others and later events still run."""
    seen: list[str] = []
    both_seen = asyncio.Event()

    def broken(event: AmiMessage) -> None:
        raise RuntimeError("handler bug")

    async def broken_async(event: AmiMessage) -> None:
        raise RuntimeError("async handler bug")

    def record(event: AmiMessage) -> None:
        seen.append(event.get("Uniqueid"))
        if len(seen) == 2:
            both_seen.set()

    link = make_link()
    link.subscribe("Hangup", broken)
    link.subscribe("Hang*", broken_async)
    link.subscribe("Hangup", record)
    await link.start()
    await link.wait_connected(5)
    await fake_ami.send(frame(("Event", "Hangup"), ("Uniqueid", "1.1")))
    await fake_ami.send(frame(("Event", "Hangup"), ("Uniqueid", "1.2")))
    await asyncio.wait_for(both_seen.wait(), 5)
    answer = await link.send_action({"Action": "Command", "Command": "core show channels"})
    assert seen == ["1.1", "1.2"]
    assert link.handler_errors == 4
    assert link.connected and len(fake_ami.connections) == 1
    assert answer.output == ("8 active channels", "10416 calls processed")


async def test_reconnect_after_server_closes(
    fake_ami: FakeAmi, make_link: Callable[..., AmiLink]
) -> None:
    """When Asterisk closes the link, on_disconnected runs, then it logs in again."""
    connected, lost = Recorder(), Recorder()
    link = make_link(on_connected=connected, on_disconnected=lost)
    await link.start()
    await connected.wait_count(1)
    await fake_ami.drop()
    await lost.wait_count(1)
    await connected.wait_count(2)
    assert link.connected and link.reconnects >= 1
    assert next(a["Action"] for a in fake_ami.connections[1].actions) == "Login"


async def test_pending_action_fails_and_is_not_resent(
    fake_ami: FakeAmi, make_link: Callable[..., AmiLink]
) -> None:
    """An action waiting when the link drops fails with AmiConnectionLost and is never re-sent."""
    connected = Recorder()
    link = make_link(on_connected=connected)
    await link.start()
    await connected.wait_count(1)
    redirect = asyncio.create_task(
        link.send_action({"Action": "Redirect", "Channel": "Local/s@caller-quiet-1;2",
                          "Context": "redirect-target", "Exten": "s", "Priority": "1"},
                         timeout=5)
    )
    await fake_ami.next_action("Redirect")
    await fake_ami.drop()
    with pytest.raises(AmiConnectionLost):
        await redirect
    await connected.wait_count(2)
    # A round trip on the new connection: anything re-sent would have arrived before it.
    await link.send_action({"Action": "CoreSettings"})
    names = [action["Action"] for action in fake_ami.connections[1].actions]
    assert "Redirect" not in names and "CoreSettings" in names


async def test_action_errors_timeouts_and_lists(
    fake_ami: FakeAmi, make_link: Callable[..., AmiLink]
) -> None:
    """Error answers raise AmiActionError, silence AmiTimeout, list actions gather events."""
    link = make_link()
    with pytest.raises(AmiNotConnected):
        await link.send_action({"Action": "Ping"})
    await link.start()
    await link.wait_connected(5)
    with pytest.raises(AmiActionError, match="Invalid/unknown command"):
        await link.send_action({"Action": "NoSuchAction"})
    with pytest.raises(AmiTimeout):
        await link.send_action({"Action": "Redirect", "Channel": "X"}, timeout=0.05)
    listing = await link.send_action({"Action": "CoreShowChannels"})
    assert [e.event for e in listing.events] == ["CoreShowChannel", "CoreShowChannelsComplete"]
    assert listing.events[0].get("CallerIDName") == "李四"
    with pytest.raises(ValueError, match="contains a line end"):
        await link.send_action({"Action": "Originate", "CallerID": "x\r\nAction: Logoff"})
    assert link.connected


async def test_close_ends_the_link(fake_ami: FakeAmi, make_link: Callable[..., AmiLink]) -> None:
    """close() drops the connection and later actions raise AmiNotConnected."""
    link = make_link()
    await link.start()
    await link.wait_connected(5)
    await link.close()
    await fake_ami.current.closed.wait()
    assert not link.connected
    with pytest.raises(AmiNotConnected):
        await link.send_action({"Action": "Ping"})


async def test_wait_connected_times_out_without_server(
    make_link: Callable[..., AmiLink], fake_ami: FakeAmi
) -> None:
    """With the listener gone, wait_connected raises AmiTimeout instead of hanging."""
    await fake_ami.stop()
    link = make_link()
    await link.start()
    with pytest.raises(AmiTimeout):
        await link.wait_connected(0.2)
