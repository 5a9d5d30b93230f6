"""Live-call tracking, fed with the recorded Asterisk 22 events."""

from __future__ import annotations

from pathlib import Path

from ivr.ami import TRACKED_EVENTS, AmiMessage, AmiParser, CallEnd, CallTracker, DialOutcome

FIXTURES = Path(__file__).parent.parent / "fixtures"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def events_of(name: str) -> list[AmiMessage]:
    """Every event of a recorded AMI session."""
    return [m for m in AmiParser().feed((FIXTURES / name).read_bytes()) if m.is_event]


def run(tracker: CallTracker, events: list[AmiMessage]) -> list[CallEnd]:
    """Apply events in order and collect the calls they ended."""
    return [end for end in map(tracker.apply, events) if end is not None]


def event(**headers: str) -> AmiMessage:
    """A hand-made event (keyword order is header order)."""
    return AmiMessage.from_pairs(tuple(headers.items()))


def test_legacy_96119_call_ends_once() -> None:
    """The forwarded 96119 call ends with one summary: caller, dialled line, ticket, dials."""
    clock = FakeClock(100.0)
    tracker = CallTracker("pbx1", monotonic=clock, wall_clock=clock)
    events = events_of("call-legacy-96119-ami.txt")
    first_hangup = next(i for i, e in enumerate(events) if e.event == "Hangup")
    assert run(tracker, events[:first_hangup]) == []
    (live,) = tracker.snapshot()
    assert (live.caller_number, live.dialled, live.state, live.ticket) == (
        "13900001111", "96119", "Up", "T-1",
    )
    assert len(live.channels) == 4
    clock.now = 130.0
    (end,) = run(tracker, events[first_hangup:])
    assert (end.linkedid, end.node, end.caller_number, end.dialled) == (
        "1795380949.2", "pbx1", "13900001111", "96119",
    )
    assert end.ticket == "T-1"
    assert end.duration == 30.0
    assert end.hangup_cause == "16"
    assert DialOutcome("Local/119@emergency-00000002;1", "ANSWER") in end.dial_outcomes
    assert tracker.active_count == 0


def test_dial_outcomes_and_queue_abandon() -> None:
    """Three calls end: the failover dials keep their statuses, the queue caller abandoned."""
    tracker = CallTracker("pbx2")
    ends = {end.linkedid: end for end in run(tracker, events_of(
        "dial-outcomes-queue-redirect-ami.txt"))}
    assert set(ends) == {"1795382136.10410", "1795382136.10412", "1795382136.10414"}
    dialler = ends["1795382136.10410"]
    assert dialler.caller_name == "张三丰"
    assert [d.status for d in dialler.dial_outcomes][1:] == [
        "BUSY", "CONGESTION", "NOANSWER", "ANSWER",
    ]
    queued = ends["1795382136.10414"]
    assert (queued.caller_name, queued.queue, queued.queue_result) == (
        "李四", "hotline-agents", "abandoned",
    )
    assert ends["1795382136.10412"].caller_number == "13500005555"
    assert tracker.active_count == 0


def test_only_hotline_variables_tracked() -> None:
    """VarSet of HOTLINE_* variables fills the call; other variables are ignored."""
    tracker = CallTracker("pbx1")
    common = {"Channel": "PJSIP/trunk-1", "Uniqueid": "1.1", "Linkedid": "1.1"}
    tracker.apply(event(Event="Newchannel", **common, Exten="12312", CallerIDNum="13811112222"))
    for variable, value in [
        ("HOTLINE_MENU", "root"), ("HOTLINE_MENU", "complaint"), ("HOTLINE_ROUTE", "queue"),
        ("HOTLINE_TARGET", "hotline-agents"), ("HOTLINE_TICKET", "T-9"), ("OTHER", "x"),
    ]:
        tracker.apply(event(Event="VarSet", **common, Variable=variable, Value=value))
    tracker.apply(event(Event="Newexten", **common, Context="ivr", Exten="s", Application="AGI"))
    live = tracker.get("1.1")
    assert live is not None
    assert (live.menu, live.route, live.target, live.ticket, live.dialled) == (
        "complaint", "queue", "hotline-agents", "T-9", "12312",
    )
    assert (live.context, live.application) == ("ivr", "AGI")
    end = tracker.apply(event(Event="Hangup", **common, Cause="16"))
    assert end is not None and end.menu_path == ("root", "complaint")


def test_untracked_events_ignored() -> None:
    """Events outside TRACKED_EVENTS leave the table alone."""
    tracker = CallTracker("pbx1")
    assert "AGIExecStart" not in TRACKED_EVENTS
    tracker.apply(event(Event="AGIExecStart", Channel="X", Uniqueid="1.1", Linkedid="1.1"))
    assert tracker.active_count == 0


def test_resync_closes_vanished_and_adopts_listed_calls() -> None:
    """After a reconnect, calls missing from CoreShowChannels end; listed calls are adopted."""
    clock = FakeClock(1000.0)
    tracker = CallTracker("pbx1", monotonic=clock, wall_clock=clock)
    tracker.apply(event(Event="Newchannel", Channel="PJSIP/a", Uniqueid="9.1", Linkedid="9.1",
                        CallerIDNum="13900009999"))
    listing = [
        m for m in events_of("dial-outcomes-queue-redirect-ami.txt")
        if m.event == "CoreShowChannel"
    ]
    (vanished,) = tracker.resync(listing)
    assert (vanished.linkedid, vanished.caller_number, vanished.vanished) == (
        "9.1", "13900009999", True,
    )
    calls = {call.linkedid: call for call in tracker.snapshot()}
    assert set(calls) == {"1795382136.10410", "1795382136.10412", "1795382136.10414"}
    quiet = calls["1795382136.10412"]
    assert (quiet.caller_name, quiet.state, len(quiet.channels)) == ("王五", "Down", 2)
    assert calls["1795382136.10410"].started_monotonic == 1000.0 - 2
    # A second listing without the queue call ends it, and keeps the others.
    remaining = [m for m in listing if m.get("Linkedid") != "1795382136.10414"]
    (gone,) = tracker.resync(remaining)
    assert (gone.linkedid, gone.caller_name) == ("1795382136.10414", "李四")
    assert tracker.active_count == 2


def test_inherited_variable_names_are_tracked() -> None:
    """Set(__HOTLINE_DIALED=...) is reported with underscores and still names the dialled line."""
    tracker = CallTracker("pbx1")
    common = {"Channel": "PJSIP/trunk-1", "Uniqueid": "1.1", "Linkedid": "1.1"}
    tracker.apply(event(Event="Newchannel", **common, Exten="12345", CallerIDNum="13811112222"))
    tracker.apply(event(Event="VarSet", **common, Variable="__HOTLINE_DIALED", Value="96119"))
    live = tracker.get("1.1")
    assert live is not None and live.dialled == "96119"


def test_other_variables_and_dial_begins_touch_no_call() -> None:
    """A VarSet of another variable or a DialBegin neither creates a call nor changes one.
    (DialBegin is not even asked of Asterisk: only a Dial's end says how it went.)"""
    assert "DialBegin" not in TRACKED_EVENTS
    tracker = CallTracker("pbx1")
    common = {"Channel": "PJSIP/trunk-1", "Uniqueid": "1.1", "Linkedid": "1.1"}
    tracker.apply(event(Event="VarSet", **common, Variable="__OTHER", Value="x"))
    tracker.apply(event(Event="DialBegin", **common, DestChannel="Local/119@e-1"))
    assert tracker.active_count == 0
    tracker.apply(event(Event="VarSet", **common, Variable="__HOTLINE_ROUTE", Value="queue"))
    live = tracker.get("1.1")
    assert live is not None and live.route == "queue"
    tracker.apply(event(Event="DialBegin", **common, DestChannel="Local/119@e-1"))
    tracker.apply(event(Event="DialEnd", **common, DestChannel="Local/119@e-1",
                        DialStatus="BUSY"))
    end = tracker.apply(event(Event="Hangup", **common, Cause="16"))
    assert end is not None and end.dial_outcomes == (DialOutcome("Local/119@e-1", "BUSY"),)


def test_call_end_fields() -> None:
    """Every field of the summary holds what the call's events said, each its own."""
    times = iter([100.0, 1_700_000_000.0, 160.0, 1_700_000_060.0])
    tracker = CallTracker("pbx1", monotonic=lambda: next(times), wall_clock=lambda: next(times))
    common = {"Channel": "PJSIP/trunk-1", "Uniqueid": "1.1", "Linkedid": "1.1"}
    agent = {"Channel": "PJSIP/agent-1", "Uniqueid": "1.2", "Linkedid": "1.1"}
    tracker.apply(event(Event="Newchannel", **common, Exten="12345", CallerIDNum="13811112222",
                        CallerIDName="张三"))
    for variable, value in [
        ("__HOTLINE_DIALED", "96119"), ("HOTLINE_MENU", "root"), ("HOTLINE_MENU", "water"),
        ("HOTLINE_ROUTE", "queue"), ("HOTLINE_TARGET", "agents"), ("HOTLINE_TICKET", "T-1"),
    ]:
        tracker.apply(event(Event="VarSet", **common, Variable=variable, Value=value))
    tracker.apply(event(Event="QueueCallerJoin", **common, Queue="hotline-agents"))
    tracker.apply(event(Event="Newchannel", **agent, CallerIDNum="1001"))
    tracker.apply(event(Event="DialEnd", **common, DestChannel="PJSIP/agent-1",
                        DialStatus="ANSWER"))
    tracker.apply(event(Event="QueueCallerLeave", **common, Queue="hotline-agents"))
    assert tracker.apply(event(Event="Hangup", **agent, Cause="17")) is None
    end = tracker.apply(event(Event="Hangup", **common, Cause="16",
                              **{"Cause-txt": "Normal Clearing"}))
    assert end == CallEnd(
        linkedid="1.1",
        node="pbx1",
        caller_number="13811112222",
        caller_name="张三",
        dialled="96119",
        menu_path=("root", "water"),
        route="queue",
        target="agents",
        ticket="T-1",
        queue="hotline-agents",
        queue_result="left",
        dial_outcomes=(DialOutcome("PJSIP/agent-1", "ANSWER"),),
        hangup_cause="16",
        hangup_cause_text="Normal Clearing",
        started_monotonic=100.0,
        started_wall=1_700_000_000.0,
        ended_monotonic=160.0,
        ended_wall=1_700_000_060.0,
    )


def test_location_and_a_call_first_seen_in_a_newstate_from_the_wire() -> None:
    """A call first seen in a Newstate (begun before the link came up) takes its caller id from
    it; GET /calls' location is the latest Newexten of the call, read off the wire."""
    tracker = CallTracker("pbx1")
    channel = (b"Channel: PJSIP/trunk-7\r\nChannelStateDesc: Up\r\nCallerIDNum: 13711112222\r\n"
               b"CallerIDName: \xe7\x8e\x8b\xe4\xba\x94\r\nUniqueid: 7.1\r\nLinkedid: 7.1\r\n")
    stream = (b"Event: Newstate\r\n" + channel + b"\r\n"
              + b"Event: Newexten\r\n" + channel
              + b"Context: ivr\r\nExten: s\r\nApplication: AGI\r\n\r\n"
              + b"Event: Newexten\r\n" + channel
              + b"Context: queues\r\nExten: 1\r\nApplication: Queue\r\n\r\n")
    for message in AmiParser().feed(stream):
        tracker.apply(message)
    live = tracker.get("7.1")
    assert live is not None
    assert (live.caller_number, live.caller_name, live.state) == ("13711112222", "王五", "Up")
    assert (live.context, live.exten, live.application) == ("queues", "1", "Queue")
    # Kept as the event's bytes, and read again at each look: a poll of GET /calls does not
    # leave every call's event parsed (kilobytes a call).
    assert type(tracker._calls["7.1"].location) is bytes
    assert tracker.get("7.1") == live


def test_a_long_caller_leg_keeps_its_latest_state_and_caller_id() -> None:
    """State is the latest the caller leg's events said, caller id the latest its Newchannel
    and NewCallerid events said (an empty or <unknown> caller id says nothing; no state header
    says nothing), however many came. A Newstate's copy of the caller id is not read: Asterisk
    reports a change of it with a NewCallerid."""
    tracker = CallTracker("pbx1")
    common = {"Channel": "PJSIP/trunk-1", "Uniqueid": "1.1", "Linkedid": "1.1"}
    state, number, name = "", "", ""
    for n in range(50):
        kind = "Newchannel" if n == 0 else ("Newstate", "NewCallerid")[n % 2]
        headers = dict(common)
        if n % 7 != 3:
            headers["ChannelStateDesc"] = f"state {n}"
            state = f"state {n}"
        headers["CallerIDNum"] = "<unknown>" if n % 5 == 4 else f"138{n:08d}" if n < 30 else ""
        headers["CallerIDName"] = "李四" if n in (11, 12) else "<unknown>"
        if kind != "Newstate":
            number = headers["CallerIDNum"] if n % 5 != 4 and n < 30 else number
            name = "李四" if n == 11 else name
        tracker.apply(event(Event=kind, **headers))
        tracker.apply(event(Event="Newstate", Channel="PJSIP/agent-1", Uniqueid="1.2",
                            Linkedid="1.1", ChannelStateDesc="Up", CallerIDNum="1001"))
        live = tracker.get("1.1")
        assert live is not None
        assert (live.state, live.caller_number, live.caller_name) == (state, number, name), n
    tracker.apply(event(Event="Hangup", Channel="PJSIP/agent-1", Uniqueid="1.2", Linkedid="1.1"))
    end = tracker.apply(event(Event="Hangup", **common))
    assert end is not None and (end.caller_number, end.caller_name) == (number, name)
