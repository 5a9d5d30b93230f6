"""Live-call tracking from AMI events, sans-I/O: events in, frozen call summaries out.

A call is Asterisk's ``Linkedid``: every channel created for it (the caller's leg, the
IVR leg, each emergency or agent leg) shares it. The call ends when its last channel
hangs up; :meth:`CallTracker.apply` then returns a :class:`CallEnd`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ivr._frozen import fast_init
from ivr.ami._parser import AmiMessage

__all__ = [
    "TRACKED_EVENTS",
    "CallEnd",
    "CallTracker",
    "DialOutcome",
    "EventConsumer",
    "LiveCall",
]

TRACKED_EVENTS: frozenset[str] = frozenset(
    {
        "Newchannel",
        "Newstate",
        "NewCallerid",
        "VarSet",
        "Newexten",
        "DialEnd",
        "QueueCallerJoin",
        "QueueCallerLeave",
        "QueueCallerAbandon",
        "Hangup",
    }
)

# Channel variables the generated dialplan sets for us; all others are noise here.
HOTLINE_VARIABLES = frozenset(
    {"HOTLINE_DIALED", "HOTLINE_ROUTE", "HOTLINE_TARGET", "HOTLINE_TICKET", "HOTLINE_MENU"}
)
_UNKNOWN = "<unknown>"


@fast_init
@dataclass(frozen=True, slots=True)
class DialOutcome:
    """One ``Dial`` attempt of the call and how it ended (``ANSWER``, ``BUSY`` ...)."""

    destination: str
    status: str


@dataclass(frozen=True, slots=True)
class LiveCall:
    """What is known now about a call in progress."""

    linkedid: str
    node: str
    caller_number: str
    caller_name: str
    dialled: str
    state: str  # the caller leg's ChannelStateDesc: Down, Ring, Up ...
    menu: str
    route: str
    target: str
    ticket: str
    queue: str
    context: str
    exten: str
    application: str
    started_monotonic: float
    started_wall: float
    channels: tuple[str, ...]


@fast_init
@dataclass(frozen=True, slots=True)
class CallEnd:
    """Summary of a finished call; ``vanished`` when it ended while the link was down."""

    linkedid: str
    node: str
    caller_number: str
    caller_name: str
    dialled: str
    menu_path: tuple[str, ...]
    route: str
    target: str
    ticket: str
    queue: str
    queue_result: str  # "" (never queued or still waiting), "abandoned" or "left"
    dial_outcomes: tuple[DialOutcome, ...]
    hangup_cause: str
    hangup_cause_text: str
    started_monotonic: float
    started_wall: float
    ended_monotonic: float
    ended_wall: float
    vanished: bool = False

    @property
    def duration(self) -> float:
        """Seconds from the first channel to the last hangup."""
        return self.ended_monotonic - self.started_monotonic


@dataclass(slots=True)
class _Call:
    # Values read off the events, never the events themselves: a call held in the IVR for
    # minutes would keep kilobytes of them.
    linkedid: str
    first_uniqueid: str
    started_monotonic: float
    started_wall: float
    first_exten: str = ""
    channels: dict[str, str] = field(default_factory=dict)  # Uniqueid -> channel name
    caller_number: str = ""
    caller_name: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    menu_path: list[str] = field(default_factory=list)
    state: str = ""
    # The latest Newexten of any leg, as its bytes (AmiMessage.raw) when it has them: where the
    # call is (context, extension, application) is read from it when asked (GET /calls), not
    # at each step of the dialplan. Read again each time: the event is not kept parsed.
    location: AmiMessage | bytes | None = None
    dials: list[DialOutcome] = field(default_factory=list)
    queue: str = ""
    queue_result: str = ""
    hangup_cause: str = ""
    hangup_cause_text: str = ""


class EventConsumer(Protocol):
    """The tracker's handler of one event name: the event, its ``Uniqueid`` if read already."""

    def __call__(self, event: AmiMessage, uniqueid: str | None = None, /) -> CallEnd | None: ...


def _parse_duration(value: str) -> float:
    """``HH:MM:SS`` from ``CoreShowChannel`` to seconds (0 when unreadable)."""
    try:
        hours, minutes, seconds = (int(part) for part in value.split(":"))
    except ValueError:
        return 0.0
    return float(hours * 3600 + minutes * 60 + seconds)


class CallTracker:
    """The table of live calls of one Asterisk node, kept from its AMI events.

    Pure: no I/O; the clocks are injectable so tests control time.
    """

    def __init__(
        self,
        node: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.node = node
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._calls: dict[str, _Call] = {}
        self._call_of_channel: dict[str, str] = {}  # Uniqueid -> Linkedid
        # One handler per event name, found with one lookup.
        self._consumers: dict[str, EventConsumer] = {
            "Newchannel": self._on_channel_event,
            "Newstate": self._on_channel_event,
            "NewCallerid": self._on_channel_event,
            "VarSet": self._on_varset,
            "Newexten": self._on_newexten,
            "DialEnd": self._on_dial,
            "QueueCallerJoin": self._on_queue_join,
            "QueueCallerLeave": self._on_queue_leave,
            "QueueCallerAbandon": self._on_queue_abandon,
            "Hangup": self._on_hangup,
        }

    @property
    def active_count(self) -> int:
        """Number of calls in progress."""
        return len(self._calls)

    def get(self, linkedid: str) -> LiveCall | None:
        """The live call with this Linkedid, if any."""
        call = self._calls.get(linkedid)
        return None if call is None else self._live(call)

    def snapshot(self) -> list[LiveCall]:
        """Every call in progress, oldest first."""
        return [self._live(call) for call in self._calls.values()]

    # -- events ------------------------------------------------------------------------

    def apply(self, event: AmiMessage, uniqueid: str | None = None) -> CallEnd | None:
        """Update the table from one event; return the summary if it ended a call.

        ``uniqueid``, the event's ``Uniqueid`` when the caller has read it already.
        """
        consumer = self._consumers.get(event.event)
        return None if consumer is None else consumer(event, uniqueid)

    def consumer(self, name: str) -> EventConsumer | None:
        """What :meth:`apply` does with an event named ``name`` (None: nothing), for a caller
        that dispatches on names itself. Only ``Hangup``'s returns a :class:`CallEnd`."""
        return self._consumers.get(name)

    def joined_queue(self, event: AmiMessage, uniqueid: str, queue: str) -> None:
        """A ``QueueCallerJoin`` whose ``Uniqueid`` and ``Queue`` the caller has read (the
        queue figures need them too)."""
        if uniqueid:
            call = self._call(event, uniqueid)
            call.queue = queue
            call.queue_result = ""

    def _on_channel_event(self, event: AmiMessage, uniqueid: str | None = None) -> None:
        # Newchannel, Newstate, NewCallerid: what they say of the channel is all they bring.
        # A known channel's Newstate brings its state only: Asterisk reports a change of
        # caller id with a NewCallerid of its own, so its copy there is not read again.
        if uniqueid is None:
            uniqueid = event.get("Uniqueid")
        if not uniqueid:
            return
        call, new = self._channel(event, uniqueid)
        if uniqueid == call.first_uniqueid:
            if new or event.event != "Newstate":
                self._update_caller(call, event)
            else:
                call.state = event.get("ChannelStateDesc", call.state)

    def _on_varset(self, event: AmiMessage, uniqueid: str | None = None) -> None:
        # Without the event filter (an older Asterisk) every VarSet of the dialplan comes:
        # read the name before anything else, so the others cost one header lookup.
        variable = event.get("Variable").lstrip("_")
        if variable not in HOTLINE_VARIABLES:
            return
        if uniqueid is None:
            uniqueid = event.get("Uniqueid")
        if not uniqueid:
            return
        call = self._call(event, uniqueid)
        # Set(__X=...) makes X inherited, and Asterisk reports it with the underscores:
        # ``variable`` is stripped of them.
        value = event.get("Value")
        call.variables[variable] = value
        if variable == "HOTLINE_MENU" and value and call.menu_path[-1:] != [value]:
            call.menu_path.append(value)

    def _on_newexten(self, event: AmiMessage, uniqueid: str | None = None) -> None:
        if uniqueid is None:
            uniqueid = event.get("Uniqueid")
        if uniqueid:
            self._call(event, uniqueid).location = event.raw or event

    def _on_queue_join(self, event: AmiMessage, uniqueid: str | None = None) -> None:
        if uniqueid is None:
            uniqueid = event.get("Uniqueid")
        if uniqueid:
            self.joined_queue(event, uniqueid, event.get("Queue"))

    def _on_queue_abandon(self, event: AmiMessage, uniqueid: str | None = None) -> None:
        if uniqueid is None:
            uniqueid = event.get("Uniqueid")
        if uniqueid:
            self._call(event, uniqueid).queue_result = "abandoned"

    def _on_queue_leave(self, event: AmiMessage, uniqueid: str | None = None) -> None:
        if uniqueid is None:
            uniqueid = event.get("Uniqueid")
        if uniqueid:
            call = self._call(event, uniqueid)
            # Leave follows Abandon for an abandoned caller; alone it means an agent took it
            # or the caller was moved out of the queue.
            if not call.queue_result:
                call.queue_result = "left"

    def _call(self, event: AmiMessage, uniqueid: str) -> _Call:
        """The call of the event's channel; a channel first seen is updated from the event
        (whatever the event, what it says of a new channel counts)."""
        linkedid = self._call_of_channel.get(uniqueid)
        if linkedid:  # nearly always: a channel already known, looked up without a tuple
            call = self._calls.get(linkedid)
            if call is not None and uniqueid in call.channels:
                return call
        call, new = self._channel(event, uniqueid)
        if new and uniqueid == call.first_uniqueid:
            self._update_caller(call, event)
        return call

    def _channel(self, event: AmiMessage, uniqueid: str) -> tuple[_Call, bool]:
        """The call an event's channel belongs to, both created on first sight (then True).

        Calls that began before we connected are picked up from any channel event. The
        caller updates a new channel from the event: a ``Newchannel`` is then read once, not
        once here and once more as a channel update.
        """
        linkedid = self._call_of_channel.get(uniqueid) or event.get("Linkedid") or uniqueid
        call = self._calls.get(linkedid)
        if call is None:
            call = _Call(
                linkedid, uniqueid, self._monotonic(), self._wall_clock(), event.get("Exten")
            )
            self._calls[linkedid] = call
        if uniqueid not in call.channels:
            call.channels[uniqueid] = event.get("Channel")
            self._call_of_channel[uniqueid] = linkedid
            return call, True
        return call, False

    @staticmethod
    def _update_caller(call: _Call, event: AmiMessage) -> None:
        # The first channel is the caller's leg: its state and caller id are the call's. What
        # the other legs' events say of themselves is not kept (nothing reads it), so their
        # headers are not even looked up.
        call.state = event.get("ChannelStateDesc", call.state)
        call.caller_number = _caller_id(event.get("CallerIDNum")) or call.caller_number
        call.caller_name = _caller_id(event.get("CallerIDName")) or call.caller_name

    def _on_dial(self, event: AmiMessage, uniqueid: str | None = None) -> None:
        # A Dial from Originate has no calling channel, only the destination's ids.
        linkedid = event.get("Linkedid") or event.get("DestLinkedid")
        call = self._calls.get(linkedid)
        if call is None:
            return
        call.dials.append(DialOutcome(event.get("DestChannel"), event.get("DialStatus")))

    def _on_hangup(self, event: AmiMessage, uniqueid: str | None = None) -> CallEnd | None:
        if uniqueid is None:
            uniqueid = event.get("Uniqueid")
        if not uniqueid:
            return None
        linkedid = self._call_of_channel.pop(uniqueid, None)
        call = self._calls.get(linkedid) if linkedid else None
        if call is None:
            return None
        call.channels.pop(uniqueid, None)
        if uniqueid == call.first_uniqueid or not call.hangup_cause:
            call.hangup_cause = event.get("Cause")
            call.hangup_cause_text = event.get("Cause-txt")
        if call.channels:
            return None
        del self._calls[call.linkedid]
        return self._end(call, vanished=False)

    # -- resynchronisation --------------------------------------------------------------

    def resync(self, channels: Sequence[AmiMessage]) -> list[CallEnd]:
        """Rebuild the table from ``CoreShowChannel`` events listed after a reconnect.

        Calls no longer listed ended while the link was down: they are closed and
        returned. Listed calls keep what was known of them; unknown ones are added.
        """
        listed: dict[str, list[AmiMessage]] = {}
        for event in channels:
            if event.event == "CoreShowChannel" and event.get("Uniqueid"):
                listed.setdefault(event.get("Linkedid") or event.get("Uniqueid"), []).append(event)
        ended: list[CallEnd] = []
        for linkedid in [known for known in self._calls if known not in listed]:
            call = self._calls.pop(linkedid)
            for uniqueid in call.channels:
                self._call_of_channel.pop(uniqueid, None)
            ended.append(self._end(call, vanished=True))
        for linkedid, events in listed.items():
            self._resync_call(linkedid, events)
        return ended

    def _resync_call(self, linkedid: str, events: list[AmiMessage]) -> None:
        # The caller's leg is the channel that gave the call its id, else the oldest one.
        events.sort(key=lambda e: (e.get("Uniqueid") != linkedid, _uniqueid_order(e)))
        call = self._calls.get(linkedid)
        if call is None:
            first = events[0]
            age = max(_parse_duration(e.get("Duration")) for e in events)
            call = _Call(
                linkedid=linkedid,
                first_uniqueid=first.get("Uniqueid"),
                started_monotonic=self._monotonic() - age,
                started_wall=self._wall_clock() - age,
                first_exten=first.get("Exten"),
            )
            self._calls[linkedid] = call
        wanted = {event.get("Uniqueid") for event in events}
        for gone in [uniqueid for uniqueid in call.channels if uniqueid not in wanted]:
            del call.channels[gone]
            self._call_of_channel.pop(gone, None)
        for event in events:
            uniqueid = event.get("Uniqueid")
            call.channels.setdefault(uniqueid, event.get("Channel"))
            self._call_of_channel[uniqueid] = linkedid
            if uniqueid == call.first_uniqueid:
                self._update_caller(call, event)
        if call.first_uniqueid not in call.channels:
            call.first_uniqueid = events[0].get("Uniqueid")

    # -- views --------------------------------------------------------------------------

    def _live(self, call: _Call) -> LiveCall:
        variables = call.variables
        kept = call.location
        location = AmiMessage.from_raw(kept) if isinstance(kept, bytes) else kept
        if location is None:
            context = exten = application = ""
        else:
            context, exten, application = (
                location.get("Context"), location.get("Exten"), location.get("Application")
            )
        return LiveCall(
            linkedid=call.linkedid,
            node=self.node,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            dialled=variables.get("HOTLINE_DIALED") or call.first_exten,
            state=call.state,
            menu=variables.get("HOTLINE_MENU", ""),
            route=variables.get("HOTLINE_ROUTE", ""),
            target=variables.get("HOTLINE_TARGET", ""),
            ticket=variables.get("HOTLINE_TICKET", ""),
            queue=call.queue,
            context=context,
            exten=exten,
            application=application,
            started_monotonic=call.started_monotonic,
            started_wall=call.started_wall,
            channels=tuple(call.channels.values()),
        )

    def _end(self, call: _Call, *, vanished: bool) -> CallEnd:
        variables = call.variables
        # In field order: 19 keyword arguments would cost a third more than the call does
        # (tests/ami/test_tracker.py checks every field).
        return CallEnd(
            call.linkedid,
            self.node,
            call.caller_number,
            call.caller_name,
            variables.get("HOTLINE_DIALED") or call.first_exten,  # dialled
            tuple(call.menu_path),
            variables.get("HOTLINE_ROUTE", ""),
            variables.get("HOTLINE_TARGET", ""),
            variables.get("HOTLINE_TICKET", ""),
            call.queue,
            call.queue_result,
            tuple(call.dials),
            call.hangup_cause,
            call.hangup_cause_text,
            call.started_monotonic,
            call.started_wall,
            self._monotonic(),  # ended_monotonic
            self._wall_clock(),  # ended_wall
            vanished,
        )


def _caller_id(value: str) -> str:
    return "" if value == _UNKNOWN else value


def _uniqueid_order(event: AmiMessage) -> tuple[int, int]:
    """Uniqueids are ``<epoch>.<sequence>``; compare them as numbers, not as text."""
    seconds, _, sequence = event.get("Uniqueid").partition(".")
    try:
        return int(seconds), int(sequence or 0)
    except ValueError:
        return (0, 0)
