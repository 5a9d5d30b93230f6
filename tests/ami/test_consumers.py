"""The service's AMI event handler (``ivr.app.event_consumers``) dispatches by name straight to
the tracker's and the queue figures' handlers: it must end the same calls and move the same
queue series as giving every event to ``CallTracker.apply`` and ``QueueStats.apply``."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from ivr.ami import AmiMessage, AmiParser, CallEnd, CallTracker
from ivr.ami.queues import QueueJoined, QueueLeft, QueueStats
from ivr.app import event_consumers
from ivr.metrics import Metrics

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _event(name: str, uniqueid: str, linkedid: str, **headers: str) -> AmiMessage:
    pairs = [
        ("Event", name),
        ("Channel", f"PJSIP/{uniqueid}"),
        ("ChannelStateDesc", "Up"),
        ("CallerIDNum", "13800000000"),
        ("CallerIDName", "<unknown>"),
        ("Context", "from-pstn"),
        ("Exten", "12345"),
        ("Uniqueid", uniqueid),
        ("Linkedid", linkedid),
        *headers.items(),
    ]
    return AmiMessage.from_pairs(tuple(pairs))


def _call(n: int) -> list[AmiMessage]:
    """One call's events; ``n`` picks how its wait in the queue ends."""
    caller, agent = f"1.{n}", f"2.{n}"
    wait_end = {
        0: [
            _event("QueueCallerLeave", caller, caller, Queue="q1"),
            _event("AgentConnect", caller, caller, Queue="q1", HoldTime="7"),
        ],
        1: [
            _event("QueueCallerAbandon", caller, caller, Queue="q1", HoldTime="31"),
            _event("QueueCallerLeave", caller, caller, Queue="q1"),
        ],
        2: [
            _event("QueueCallerLeave", caller, caller, Queue="q1"),
            _event("Newexten", caller, caller, Context="after", Application="Playback"),
        ],
        3: [],  # hangs up waiting
    }[n % 4]
    return [
        _event("Newchannel", caller, caller, ChannelStateDesc="Ring"),
        _event("VarSet", caller, caller, Variable="__HOTLINE_DIALED", Value="12345"),
        _event("VarSet", caller, caller, Variable="AGISTATUS", Value="SUCCESS"),
        _event("Newstate", caller, caller, CallerIDName=f"caller {n}"),
        _event("Newexten", caller, caller, Application="AGI"),
        _event("VarSet", caller, caller, Variable="HOTLINE_MENU", Value="root"),
        _event("VarSet", caller, caller, Variable="HOTLINE_ROUTE", Value="queue"),
        _event("Newexten", caller, caller, Application="Queue"),
        _event("QueueCallerJoin", caller, caller, Queue="q1" if n % 3 else "q2"),
        _event("Newchannel", agent, caller, ChannelStateDesc="Down"),
        _event("DialBegin", caller, caller, DestChannel=f"PJSIP/{agent}"),
        _event("Newstate", agent, caller),
        *wait_end,
        _event("DialEnd", caller, caller, DestChannel=f"PJSIP/{agent}", DialStatus="ANSWER"),
        _event("AGIExecStart", caller, caller),
        _event("Hangup", caller, caller, Cause="16", **{"Cause-txt": "Normal Clearing"}),
        _event("Hangup", agent, caller, Cause="17"),
    ]


def _sessions() -> list[list[AmiMessage]]:
    recorded = (FIXTURES / "dial-outcomes-queue-redirect-ami.txt").read_bytes()
    calls = [_call(n) for n in range(12)]
    # Interleaved, so that calls overlap in the tables.
    interleaved = [e for step in zip(*calls, strict=False) for e in step]
    return [[m for m in AmiParser().feed(recorded) if m.is_event], interleaved]


def _queue_samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value  # type: ignore[misc]
        for family in registry.collect()
        if family.name.startswith("hotline_queue")
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


@pytest.mark.parametrize("session", _sessions(), ids=["recorded", "twelve-calls"])
def test_the_handler_does_what_apply_does(session: list[AmiMessage]) -> None:
    def tracker() -> CallTracker:
        return CallTracker("pbx1", monotonic=lambda: 5.0, wall_clock=lambda: 7.0)

    registry, ends = CollectorRegistry(), list[CallEnd]()
    handle = event_consumers(Metrics(registry), tracker(), ends.append, "pbx1")
    for message in session:
        handle(message)

    expected_registry, expected_ends = CollectorRegistry(), list[CallEnd]()
    metrics, reference, queues = Metrics(expected_registry), tracker(), QueueStats()
    for message in session:
        end = reference.apply(message)
        if end is not None:
            expected_ends.append(end)
        waited = queues.apply(message)
        if isinstance(waited, QueueJoined):
            metrics.queue_call_joined(waited.queue)
        elif isinstance(waited, QueueLeft):
            metrics.queue_call_left(waited.queue, waited.result, waited.wait_seconds)

    assert ends == expected_ends
    assert len(ends) >= 3
    # Waits that end without Asterisk's HoldTime are timed with the clock: close, not equal.
    samples = _queue_samples(registry)
    assert samples == pytest.approx(_queue_samples(expected_registry), abs=1.0)
    assert samples
