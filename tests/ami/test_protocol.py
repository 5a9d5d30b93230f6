"""AmiProtocol on a real socket: a large read is handled in slices, in order, reading paused."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from panoramisk.actions import Action

from ivr.ami import AmiLink, AmiMessage
from ivr.ami.protocol import AmiProtocol, ParsedMessage

BOUND = 5.0


@contextlib.asynccontextmanager
async def _on_a_socket(protocol: AmiProtocol) -> AsyncIterator[asyncio.Transport]:
    """``protocol`` reading one end of a socket pair; the transport and both ends closed after."""
    ours, theirs = socket.socketpair()
    try:
        transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
            lambda: protocol, ours
        )
        yield transport
        transport.close()
    finally:
        theirs.close()


async def test_a_large_read_is_handled_in_slices_in_order() -> None:
    """A read of many events is handled a slice per loop turn: other work runs in between."""
    loop = asyncio.get_running_loop()
    link = AmiLink(host="127.0.0.1", port=5038, username="u", secret="s", node="n")
    seen: list[str] = []
    marks: list[int] = []
    done = asyncio.Event()

    def on_event(event: AmiMessage) -> None:
        seen.append(event.get("Uniqueid"))
        if len(seen) == 1:
            loop.call_soon(lambda: marks.append(len(seen)))  # other work, queued meanwhile
        if len(seen) == 100:
            done.set()

    link.subscribe("*", on_event)
    protocol = AmiProtocol(factory=link.manager, slice_size=8)
    async with _on_a_socket(protocol) as transport:
        data = b"".join(b"Event: Newstate\r\nUniqueid: %d\r\n\r\n" % n for n in range(100))
        protocol.data_received(b"Asterisk Call Manager/11.0.0\r\n" + data)
        assert len(seen) == 50 and protocol.backlog == 50  # half of what waits
        assert not transport.is_reading()  # type: ignore[attr-defined]
        await asyncio.wait_for(done.wait(), BOUND)
        assert seen == [str(n) for n in range(100)]
        assert marks and marks[0] < 100  # the queued work did not wait for the whole read
        assert protocol.backlog == 0 and transport.is_reading()  # type: ignore[attr-defined]


async def test_a_growing_backlog_is_worked_down_by_half_each_turn() -> None:
    """Each turn takes half of what waits (within the bounds): 4,000 events take 11 turns,
    not 4,000 / slice_size, so a PBX that sends faster than one slice per turn is kept up
    with; no turn takes more than ``max_slice``."""
    loop = asyncio.get_running_loop()
    link = AmiLink(host="127.0.0.1", port=5038, username="u", secret="s", node="n")
    per_turn: list[int] = []
    done = asyncio.Event()
    total = 4000

    def on_event(event: AmiMessage) -> None:
        if not per_turn or per_turn[-1] < 0:
            per_turn.append(0)
            loop.call_soon(lambda: per_turn.append(-1))  # marks the end of this turn
        per_turn[-1] += 1
        if event.get("Uniqueid") == str(total - 1):
            done.set()

    link.subscribe("*", on_event)
    protocol = AmiProtocol(factory=link.manager, slice_size=8, max_slice=1000)
    async with _on_a_socket(protocol):
        data = b"".join(b"Event: Newstate\r\nUniqueid: %d\r\n\r\n" % n for n in range(total))
        protocol.data_received(data)
        await asyncio.wait_for(done.wait(), BOUND)
        turns = [n for n in per_turn if n > 0]
        assert sum(turns) == total
        assert turns[:3] == [1000, 1000, 1000]  # capped at max_slice
        assert turns[3:] == [500, 250, 125, 63, 31, 16, 8, 7]  # at least slice_size


def test_slice_bounds_are_checked() -> None:
    """A slice of 0, or a minimum above the maximum, is refused at construction."""
    with pytest.raises(ValueError, match="slice_size"):
        AmiProtocol(slice_size=0)
    with pytest.raises(ValueError, match="slice_size"):
        AmiProtocol(slice_size=64, max_slice=32)


async def test_a_small_read_is_handled_at_once() -> None:
    """A read within one slice is handled before data_received returns."""
    link = AmiLink(host="127.0.0.1", port=5038, username="u", secret="s", node="n")
    seen: list[str] = []
    link.subscribe("*", lambda event: seen.append(event.event))
    protocol = AmiProtocol(factory=link.manager)
    async with _on_a_socket(protocol):
        protocol.data_received(b"Event: Hangup\r\nUniqueid: 1\r\n\r\nEvent: Newexten\r\n\r\n")
        assert seen == ["Hangup", "Newexten"] and protocol.backlog == 0


async def test_handlers_registered_later_are_dispatched_by_name() -> None:
    """Patterns are matched once per event name, yet handlers added later still get events."""
    link = AmiLink(host="127.0.0.1", port=5038, username="u", secret="s", node="n")
    seen: list[str] = []
    link.subscribe("*", lambda event: seen.append(f"all:{event.event}"))
    protocol = AmiProtocol(factory=link.manager)
    async with _on_a_socket(protocol):
        protocol.data_received(b"Event: Hangup\r\n\r\nEvent: VarSet\r\n\r\n")
        link.subscribe("Hang*", lambda event: seen.append(f"hang:{event.event}"))  # new pattern
        link.subscribe("*", lambda event: seen.append(f"all2:{event.event}"))  # known pattern
        protocol.data_received(b"Event: Hangup\r\n\r\nEvent: VarSet\r\n\r\n")
        assert seen == [
            "all:Hangup", "all:VarSet",
            "all:Hangup", "all2:Hangup", "hang:Hangup", "all:VarSet", "all2:VarSet",
        ]


def _count_panoramisk_messages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the events a panoramisk Message is made for, from now on."""
    made: list[str] = []
    make = ParsedMessage.__init__

    def counted(self: ParsedMessage, original: AmiMessage) -> None:
        made.append(original.event or original.response)
        make(self, original)

    monkeypatch.setattr(ParsedMessage, "__init__", counted)
    return made


async def test_subscriptions_get_events_without_a_panoramisk_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A link subscription gets the AmiMessage itself, no panoramisk Message made for it; a
    callback registered with panoramisk gets one, in registration order with the rest."""
    made = _count_panoramisk_messages(monkeypatch)
    link = AmiLink(host="127.0.0.1", port=5038, username="u", secret="s", node="n")
    seen: list[tuple[str, ...]] = []
    link.subscribe("*", lambda event: seen.append(("all", event.event)))
    link.manager.register_event(
        "Hang*",
        lambda manager, message: seen.append(
            ("panoramisk", message["uniqueid"], str(message.manager is link.manager))
        ),
    )
    link.subscribe("Hang*", lambda event: seen.append(("hang", event.get("Uniqueid"))))
    link.subscribe("*", lambda event: seen.append(("all2", type(event).__name__)))
    protocol = AmiProtocol(factory=link.manager)
    async with _on_a_socket(protocol):
        protocol.data_received(b"Event: Newexten\r\n\r\nEvent: Hangup\r\nUniqueid: 1.1\r\n\r\n")
        assert seen == [
            ("all", "Newexten"), ("all2", "AmiMessage"),
            ("all", "Hangup"), ("all2", "AmiMessage"),
            ("panoramisk", "1.1", "True"), ("hang", "1.1"),
        ]
        assert made == ["Hangup"]  # for the panoramisk callback only, once for all of them


async def test_events_skip_the_panoramisk_message_while_an_action_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While an action waits for its answer, events without an ActionID still go straight to
    the subscriptions; the answer completes the action."""
    made = _count_panoramisk_messages(monkeypatch)
    link = AmiLink(host="127.0.0.1", port=5038, username="u", secret="s", node="n")
    seen: list[str] = []
    link.subscribe("*", lambda event: seen.append(event.event))
    protocol = AmiProtocol(factory=link.manager)
    async with _on_a_socket(protocol):
        ping = Action({"Action": "Ping"})
        answer = protocol.send(ping, as_list=None)
        protocol.data_received(
            b"Event: Newexten\r\n\r\n"
            + f"Response: Success\r\nActionID: {ping.action_id}\r\nPing: Pong\r\n\r\n".encode()
            + b"Event: Hangup\r\n\r\n"
        )
        result = await asyncio.wait_for(answer, BOUND)
        assert result.original.get("Ping") == "Pong"
        assert seen == ["Newexten", "Hangup"]
        assert made == ["Success"]  # the answer only


async def _dispatched(*, only_subscription: bool) -> tuple[list[str], int]:
    """What a "*" subscription's handler (and what it registers meanwhile) sees of ten events:
    a handler that raises, returns a coroutine, registers under "*" and under a new pattern,
    and closes the link mid-read. With ``only_subscription`` False, a pattern that matches
    nothing is registered too: the same events then go through the general dispatch."""
    link = AmiLink(host="127.0.0.1", port=5038, username="u", secret="s", node="n")
    seen: list[str] = []

    async def later() -> None:
        seen.append("coroutine")

    def on_event(event: AmiMessage) -> object:
        number = event.get("N")
        seen.append(f"all:{event.event}:{number}")
        if number == "2":
            raise RuntimeError("a handler bug")
        if number == "3":
            return later()
        if number == "4":
            link.subscribe("*", lambda event: seen.append(f"all2:{event.get('N')}"))
        if number == "6":
            link.subscribe("Hang*", lambda event: seen.append(f"hang:{event.get('N')}"))
        if number == "8":
            protocol.close()
        return None

    link.subscribe("*", on_event)
    if not only_subscription:
        link.subscribe("NoSuchEvent", lambda event: seen.append("never"))
    protocol = AmiProtocol(factory=link.manager)
    async with _on_a_socket(protocol):
        assert (protocol._only_subscription(link.manager) is not None) is only_subscription
        names = [b"Newexten", b"Hangup"] * 5
        protocol.data_received(
            b"".join(b"Event: %s\r\nN: %d\r\n\r\n" % (name, n) for n, name in enumerate(names))
        )
        await asyncio.sleep(0)  # the coroutine handler's task runs
    return seen, protocol.handler_errors


async def test_one_subscription_is_dispatched_as_the_general_registry_is() -> None:
    """The dispatch for the service's one "*" subscription gives what the general dispatch
    gives: same calls in the same order, errors counted, coroutines run, registrations made by
    a handler seen at once (one under "*" for the very event that made it), and closing stops
    the read."""
    fast = await _dispatched(only_subscription=True)
    assert fast == await _dispatched(only_subscription=False)
    assert fast == (
        [
            "all:Newexten:0", "all:Hangup:1", "all:Newexten:2", "all:Hangup:3",
            "all:Newexten:4", "all2:4", "all:Hangup:5", "all2:5",
            "all:Newexten:6", "all2:6", "all:Hangup:7", "all2:7", "hang:7",
            "all:Newexten:8", "all2:8", "coroutine",
        ],
        1,
    )
