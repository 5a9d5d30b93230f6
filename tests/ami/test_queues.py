"""Queue figures: each wait in an agent queue ends answered, abandoned or exited, with its
length."""

from __future__ import annotations

from ivr.ami._parser import AmiMessage
from ivr.ami.queues import QueueJoined, QueueLeft, QueueStats


def event(name: str, uniqueid: str = "1.1", **headers: str) -> AmiMessage:
    return AmiMessage.from_pairs([("Event", name), ("Uniqueid", uniqueid), *headers.items()])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_answered_caller_counts_asterisks_hold_time() -> None:
    """Join, Leave, then AgentConnect: answered after the HoldTime Asterisk reports."""
    stats = QueueStats()
    assert stats.apply(event("QueueCallerJoin", Queue="hotline-agents")) == QueueJoined(
        "hotline-agents"
    )
    assert stats.apply(event("QueueCallerLeave", Queue="hotline-agents")) is None
    assert stats.apply(event("AgentConnect", Queue="hotline-agents", HoldTime="12")) == QueueLeft(
        "hotline-agents", "answered", 12.0)
    assert stats.waiting == 0


def test_an_abandoning_caller_is_counted_once() -> None:
    """Abandon comes before Leave; the Leave and the Hangup after it change nothing."""
    stats = QueueStats()
    stats.apply(event("QueueCallerJoin", Queue="q"))
    assert stats.apply(event("QueueCallerAbandon", Queue="q", HoldTime="40")) == QueueLeft(
        "q", "abandoned", 40.0)
    assert stats.apply(event("QueueCallerLeave", Queue="q")) is None
    assert stats.apply(event("Hangup")) is None


def test_a_caller_leaving_without_an_agent_has_exited() -> None:
    """Leave with no AgentConnect, then the channel moves on: exited, timed by our clock."""
    clock = Clock()
    stats = QueueStats(clock)
    stats.apply(event("QueueCallerJoin", Queue="q"))
    clock.now += 30
    stats.apply(event("QueueCallerLeave", Queue="q"))
    assert stats.apply(event("Newexten", Context="hotline-route")) == QueueLeft("q", "exited", 30.0)


def test_other_callers_and_channels_are_not_confused() -> None:
    """Events of a channel that never joined a queue are ignored."""
    stats = QueueStats()
    stats.apply(event("QueueCallerJoin", "1.1", Queue="q"))
    assert stats.apply(event("AgentConnect", "2.2", Queue="q", HoldTime="3")) is None
    assert stats.apply(event("Hangup", "2.2")) is None
    assert stats.waiting == 1
