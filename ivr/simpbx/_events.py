"""AMI events of simulated calls, in the header order of recorded Asterisk 22 traffic."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from ivr.simpbx._channel import Channel

CAUSE_TEXT: Mapping[int, str] = MappingProxyType(
    {
        0: "Unknown",
        16: "Normal Clearing",
        17: "User busy",
        18: "No user responding",
        19: "User alerting, no answer",
        21: "Call Rejected",
        34: "Circuit/channel congestion",
        66: "Channel not implemented",
    }
)
NORMAL_CLEARING = 16


class EventBus(Protocol):
    """Where formatted events go: the AMI server, or nowhere."""

    def wants(self, event_class: str) -> bool:
        """Whether any logged-in client's mask lets events of ``event_class`` through."""
        ...

    def publish(self, event_class: str, text: str) -> None:
        """Hand one complete event (ending in a blank line) to every interested client."""
        ...


class NoBus:
    """The bus of a PBX without AMI clients: formats nothing."""

    def wants(self, event_class: str) -> bool:
        """Nobody wants anything."""
        return False

    def publish(self, event_class: str, text: str) -> None:
        """Drop the event."""


def event_text(name: str, privilege: str, body: str) -> str:
    """One event: ``Event``, ``Privilege``, the body's CRLF-ended lines, a blank line."""
    return f"Event: {name}\r\nPrivilege: {privilege},all\r\n{body}\r\n"


class CallEvents:
    """Formats the events of calls and publishes them; skips the work when nobody listens."""

    __slots__ = ("_bus",)

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def _emit(self, name: str, event_class: str, body: str) -> None:
        self._bus.publish(event_class, event_text(name, event_class, body))

    def newchannel(self, channel: Channel) -> None:
        """A channel appeared."""
        if self._bus.wants("call"):
            self._emit("Newchannel", "call", channel.snapshot())

    def newstate(self, channel: Channel) -> None:
        """A channel changed state (Ring -> Up ...)."""
        if self._bus.wants("call"):
            self._emit("Newstate", "call", channel.snapshot())

    def newexten(self, channel: Channel) -> None:
        """A channel runs a dialplan application."""
        if self._bus.wants("dialplan"):
            self._emit(
                "Newexten",
                "dialplan",
                f"{channel.snapshot()}Extension: {channel.exten}\r\n"
                f"Application: {channel.application}\r\nAppData: {channel.app_data}\r\n",
            )

    def var_set(self, channel: Channel, name: str, value: str) -> None:
        """A channel variable was set."""
        if self._bus.wants("dialplan"):
            self._emit(
                "VarSet", "dialplan", f"{channel.snapshot()}Variable: {name}\r\nValue: {value}\r\n"
            )

    def dtmf(self, channel: Channel, digit: str) -> None:
        """The caller pressed ``digit`` (a begin and an end event, as RFC 2833 gives them)."""
        if self._bus.wants("dtmf"):
            snap = channel.snapshot()
            self._emit("DTMFBegin", "dtmf", f"{snap}Digit: {digit}\r\nDirection: Received\r\n")
            self._emit(
                "DTMFEnd",
                "dtmf",
                f"{snap}Digit: {digit}\r\nDurationMs: 100\r\nDirection: Received\r\n",
            )

    def agi_exec(
        self, channel: Channel, command_id: int, command: str, code: str, result: str
    ) -> None:
        """An AGI command ran (its start and end events)."""
        if self._bus.wants("agi"):
            head = f"{channel.snapshot()}CommandId: {command_id}\r\nCommand: {command}\r\n"
            self._emit("AGIExecStart", "agi", head)
            self._emit("AGIExecEnd", "agi", f"{head}ResultCode: {code}\r\nResult: {result}\r\n")

    def dial_begin(self, channel: Channel, dest: Channel, dial_string: str) -> None:
        """``channel`` starts dialling ``dest``."""
        if self._bus.wants("call"):
            self._emit(
                "DialBegin",
                "call",
                f"{channel.snapshot()}{dest.dest_snapshot()}DialString: {dial_string}\r\n",
            )

    def dial_end(self, channel: Channel, dest: Channel, status: str) -> None:
        """The dial of ``dest`` ended with DIALSTATUS ``status``."""
        if self._bus.wants("call"):
            self._emit(
                "DialEnd",
                "call",
                f"{channel.snapshot()}{dest.dest_snapshot()}DialStatus: {status}\r\n",
            )

    def hangup(self, channel: Channel, cause: int, *, requested: bool = True) -> None:
        """The channel is hung up: ``HangupRequest`` (when the far end asked) then ``Hangup``."""
        if self._bus.wants("call"):
            snap = channel.snapshot()
            if requested:
                self._emit("HangupRequest", "call", f"{snap}Cause: {cause}\r\n")
            self._emit(
                "Hangup",
                "call",
                f"{snap}Cause: {cause}\r\nCause-txt: {CAUSE_TEXT.get(cause, 'Unknown')}\r\n",
            )

    def soft_hangup_request(self, channel: Channel, cause: int) -> None:
        """The dialplan or an AGI ``HANGUP`` asked for the channel to end."""
        if self._bus.wants("call"):
            self._emit("SoftHangupRequest", "call", f"{channel.snapshot()}Cause: {cause}\r\n")

    def queue_join(self, channel: Channel, queue: str, position: int, count: int) -> None:
        """The caller entered ``queue``."""
        if self._bus.wants("agent"):
            self._emit(
                "QueueCallerJoin",
                "agent",
                f"{channel.snapshot()}Queue: {queue}\r\nPosition: {position}\r\nCount: {count}\r\n",
            )

    def queue_abandon(self, channel: Channel, queue: str, position: int, hold_time: int) -> None:
        """The caller hung up while waiting in ``queue``."""
        if self._bus.wants("agent"):
            self._emit(
                "QueueCallerAbandon",
                "agent",
                f"{channel.snapshot()}Queue: {queue}\r\nPosition: {position}\r\n"
                f"OriginalPosition: {position}\r\nHoldTime: {hold_time}\r\n",
            )

    def agent_called(
        self, channel: Channel, agent: Channel, queue: str, interface: str, member: str
    ) -> None:
        """A queue member's phone rings for the caller (``AgentCalled``)."""
        if self._bus.wants("agent"):
            self._emit(
                "AgentCalled",
                "agent",
                _member_headers(channel, agent, queue, interface, member),
            )

    def agent_connect(
        self,
        channel: Channel,
        agent: Channel,
        queue: str,
        interface: str,
        member: str,
        hold_time: int,
        ring_time: int,
    ) -> None:
        """A queue member answered and is bridged to the caller (``AgentConnect``).

        The caller's headers, the agent's prefixed ``Dest``, then the fields in the order
        app_queue packs them: Queue, Interface, MemberName, HoldTime, RingTime (seconds).
        """
        if self._bus.wants("agent"):
            self._emit(
                "AgentConnect",
                "agent",
                _member_headers(channel, agent, queue, interface, member)
                + f"HoldTime: {hold_time}\r\nRingTime: {ring_time}\r\n",
            )

    def agent_complete(
        self,
        channel: Channel,
        agent: Channel,
        queue: str,
        interface: str,
        member: str,
        hold_time: int,
        talk_time: int,
        reason: str,
    ) -> None:
        """The conversation ended (``AgentComplete``); ``reason`` is caller, agent or transfer."""
        if self._bus.wants("agent"):
            self._emit(
                "AgentComplete",
                "agent",
                _member_headers(channel, agent, queue, interface, member)
                + f"HoldTime: {hold_time}\r\nTalkTime: {talk_time}\r\nReason: {reason}\r\n",
            )

    def queue_leave(self, channel: Channel, queue: str, position: int, count: int) -> None:
        """The caller left ``queue`` (to an agent, or gone)."""
        if self._bus.wants("agent"):
            self._emit(
                "QueueCallerLeave",
                "agent",
                f"{channel.snapshot()}Queue: {queue}\r\nPosition: {position}\r\nCount: {count}\r\n",
            )


def _member_headers(
    channel: Channel, agent: Channel, queue: str, interface: str, member: str
) -> str:
    """What app_queue's member events start with: the caller, the agent as Dest*, the member."""
    return (
        f"{channel.snapshot()}{agent.dest_snapshot()}Queue: {queue}\r\n"
        f"Interface: {interface}\r\nMemberName: {member}\r\n"
    )
