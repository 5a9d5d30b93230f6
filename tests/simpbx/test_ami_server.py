"""The AMI side of the simulated PBX, read by a raw-socket client and compared with recordings."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ivr.simpbx import CallScript
from ivr.simpbx._event_filters import FilterSet, parse_filter

from .conftest import AmiClient, header_names, headers, read_ami_blocks


def _recorded_orders(fixtures_dir: Path) -> dict[str, set[tuple[str, ...]]]:
    orders: dict[str, set[tuple[str, ...]]] = {}
    for name in ("call-legacy-96119-ami.txt", "dial-outcomes-queue-redirect-ami.txt"):
        for block in read_ami_blocks(fixtures_dir / name):
            if block.startswith("Event: "):
                orders.setdefault(headers(block)["Event"], set()).add(tuple(header_names(block)))
    return orders


def _is_pong(block: str) -> bool:
    return "Ping: Pong" in block


async def test_login_accepted_then_fully_booted(responder_factory, pbx_for) -> None:
    """A right login gets the banner, the accepted reply with its ActionID, then FullyBooted."""
    pbx = await pbx_for(responder_factory())
    client = await AmiClient.connect(pbx.ami_port)
    assert client.banner == b"Asterisk Call Manager/11.0.0\r\n"
    assert (
        await client.login()
        == "Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted"
    )
    booted = await client.block()
    assert header_names(booted) == ["Event", "Privilege", "Uptime", "LastReload", "Status"]
    client.send(Action="Ping", ActionID="2")
    *events, pong = await client.until(_is_pong)
    assert [headers(b)["Event"] for b in events] == ["SuccessfulAuth"]
    assert header_names(pong) == ["Response", "ActionID", "Ping", "Timestamp"]
    await client.close()


async def test_wrong_secret_is_refused_and_closed(responder_factory, pbx_for) -> None:
    """A wrong secret answers Authentication failed and the server closes the connection."""
    pbx = await pbx_for(responder_factory())
    client = await AmiClient.connect(pbx.ami_port)
    assert (
        await client.login("nope")
        == "Response: Error\r\nActionID: 1\r\nMessage: Authentication failed"
    )
    assert await asyncio.wait_for(client.reader.read(), 5) == b""
    await client.close()


async def test_call_events_in_recorded_format(
    responder_factory, pbx_for, fixtures_dir: Path
) -> None:
    """One call's events reach a client in the recorded header order, with the Chinese name as
    UTF-8."""
    responder = responder_factory(
        ['SET VARIABLE HOTLINE_ROUTE "queue"', 'SET VARIABLE HOTLINE_TARGET "hotline-agents"']
    )
    pbx = await pbx_for(responder)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="on")
    await client.block()  # FullyBooted
    record = await pbx.place_call(CallScript("13600004444", "李四", dialled="12312"))
    blocks = await client.until(lambda b: b.startswith("Event: Hangup\r\n"))
    orders = _recorded_orders(fixtures_dir)
    names = [headers(b)["Event"] for b in blocks]
    for wanted in (
        "Newchannel",
        "Newexten",
        "VarSet",
        "Newstate",
        "QueueCallerJoin",
        "QueueCallerLeave",
        "HangupRequest",
        "Hangup",
        "AGIExecStart",
        "AGIExecEnd",
    ):
        assert wanted in names, wanted
    for block in blocks:
        name = headers(block)["Event"]
        if name in orders:
            assert tuple(header_names(block)) in orders[name], name
    newchannel = next(b for b in blocks if b.startswith("Event: Newchannel\r\n"))
    first = headers(newchannel)
    assert (first["Channel"], first["Uniqueid"], first["Linkedid"]) == (
        record.channel,
        record.uniqueid,
        record.linkedid,
    )
    assert "CallerIDName: 李四\r\n" in newchannel
    dialled = [headers(b) for b in blocks if "Variable: __HOTLINE_DIALED" in b]
    assert dialled and dialled[0]["Value"] == "12312"
    hangup = headers(blocks[-1])
    assert (hangup["Cause"], hangup["Cause-txt"]) == ("16", "Normal Clearing")
    await client.close()


async def test_filter_and_event_mask(responder_factory, pbx_for) -> None:
    """Include and exclude filters and the Events mask decide which events a client receives."""
    pbx = await pbx_for(responder_factory())
    only_new = await AmiClient.connect(pbx.ami_port)
    no_exten = await AmiClient.connect(pbx.ami_port)
    silent = await AmiClient.connect(pbx.ami_port)
    agent_only = await AmiClient.connect(pbx.ami_port)
    for client in (only_new, no_exten, agent_only):
        await client.login(events="call,dialplan,agent")
    await silent.login(events="off")
    only_new.send(Action="Filter", ActionID="2", Operation="Add", Filter="Event: Newchannel")
    no_exten.send(Action="Filter", ActionID="2", Operation="Add", Filter="!Event: Newexten")
    agent_only.send(Action="Events", ActionID="2", EventMask="agent")
    assert (await only_new.block()).endswith("ActionID: 2\r\nMessage: Success")
    assert (await no_exten.block()).endswith("ActionID: 2\r\nMessage: Success")
    assert await agent_only.block() == "Response: Success\r\nActionID: 2\r\nEvents: On"
    await pbx.place_call(CallScript("13800000000"))
    seen = {}
    for client in (only_new, no_exten, silent, agent_only):
        client.send(Action="Ping", ActionID="9")
        seen[client] = {headers(b).get("Event") for b in (await client.until(_is_pong))[:-1]}
        await client.close()
    assert seen[only_new] == {"Newchannel"}
    assert "Newexten" not in seen[no_exten] and {"Newchannel", "VarSet", "Hangup"} <= seen[no_exten]
    assert seen[silent] == set()
    assert seen[agent_only] == {
        "QueueCallerJoin",
        "AgentCalled",
        "QueueCallerLeave",
        "AgentConnect",
        "AgentComplete",
    }


async def _events_seen(clients: list[AmiClient]) -> list[list[dict[str, str]]]:
    """Each client's events up to a Ping's answer (the server writes in order), as headers."""
    seen = []
    for client in clients:
        client.send(Action="Ping", ActionID="99")
        seen.append([headers(b) for b in (await client.until(_is_pong))[:-1]])
        await client.close()
    return seen


async def test_match_criteria_filters_like_asterisk(responder_factory, pbx_for) -> None:
    """Advanced filters (MatchCriteria): a name alone; a header matched by regex; an exclude
    applied to what the includes let in; an exclude alone."""
    responder = responder_factory(
        ['SET VARIABLE HOTLINE_ROUTE "queue"', 'SET VARIABLE HOTLINE_TARGET "hotline-agents"']
    )
    pbx = await pbx_for(responder)
    criteria: list[list[tuple[str, str]]] = [
        [("name(Newchannel)", "")],
        [
            (
                "action(include),name(VarSet),header(Variable),method(regex)",
                "^_*HOTLINE_(ROUTE|DIALED)$",
            )
        ],
        [
            ("name(Newexten)", ""),
            ("action(exclude),name(Newexten),header(Application),method(regex)", "^(Set|Answer)$"),
        ],
        [
            ("action(exclude),name(VarSet)", ""),
            ("action(exclude),header(Application),method(starts_with)", "Go"),
        ],
    ]
    clients = []
    for filters in criteria:
        client = await AmiClient.connect(pbx.ami_port)
        await client.login(events="call,dialplan,agent")
        for number, (match, expression) in enumerate(filters, start=2):
            client.send(Action="Filter", ActionID=str(number), Operation="Add",
                        MatchCriteria=match, Filter=expression)
            assert await client.block() == (
                f"Response: Success\r\nActionID: {number}\r\nMessage: Success")
        clients.append(client)
    await pbx.place_call(CallScript("13800000000", dialled="12345"))
    names, varsets, extens, excluded = await _events_seen(clients)
    assert [e["Event"] for e in names] == ["Newchannel", "Newchannel"]  # the caller, the agent
    assert [(e["Variable"], e["Value"]) for e in varsets] == [
        ("__HOTLINE_DIALED", "12345"), ("HOTLINE_ROUTE", "queue")]
    assert [e["Application"] for e in extens] == ["AGI", "GotoIf", "Goto", "Queue"]
    assert "VarSet" not in {e["Event"] for e in excluded}
    assert {"Newchannel", "Newstate", "QueueCallerJoin", "Hangup"} <= {e["Event"] for e in excluded}
    assert [e["Application"] for e in excluded if e["Event"] == "Newexten"] == [
        "Set", "Answer", "AGI", "Queue"]


def test_filter_precedence_of_asterisks_own_unit_test() -> None:
    """main/manager.c's eventfilter_test_matching, filters and verdicts as Asterisk has them."""
    filters = FilterSet()
    for criteria, pattern in [
        ("eventfilter(name(VarSet),method(none))", ""),
        ("eventfilter(name(Newchannel),method(regex))", "X[XYZ]X"),
        ("eventfilter(name(Newchannel),method(regex))", "X[abc]X"),
        ("eventfilter(name(Newchannel),header(Someheader),method(regex))", "ZZZ"),
        ("eventfilter(action(exclude),name(Newchannel),method(regex))", "X[a]X"),
        ("eventfilter(action(exclude),name(Newchannel),method(regex))", "X[Z]X"),
        ("eventfilter(action(exclude),name(VarSet),header(Channel),method(regex))", "YYY"),
    ]:
        filters.add(parse_filter(criteria, pattern))
    for payload, sent in [
        ("Event: Newchannel\r\nChannel: XXX\r\nSomeheader: YYY\r\n", True),
        ("Event: Newchannel\r\nChannel: XZX\r\nSomeheader: YYY\r\n", False),
        ("Event: Newchannel\r\nChannel: XaX\r\nSomeheader: YYY\r\n", False),
        ("Event: Newchannel\r\nChannel: XbX\r\nSomeheader: YYY\r\n", True),
        ("Event: Newchannel\r\nChannel: XcX\r\nSomeheader: YYY\r\n", True),
        ("Event: Newchannel\r\nChannel: YYY\r\nSomeheader: YYY\r\n", False),
        ("Event: Newchannel\r\nChannel: YYY\r\nSomeheader: ZZZ\r\n", True),
        ("Event: VarSet\r\nChannel: XXX\r\nSomeheader: YYY\r\n", True),
        ("Event: VarSet\r\nChannel: YYY\r\nSomeheader: YYY\r\n", False),
    ]:
        assert filters.passes(payload) is sent, payload


def test_match_methods_and_the_bang() -> None:
    """exact, starts_with, ends_with, contains on a header's value (blanks after the colon
    skipped, empty values never match); a leading '!' excludes unless action() says."""
    event = "Event: VarSet\r\nChannel: ABC\r\nEmpty: \r\nVariable: __HOTLINE_X\r\n\r\n"

    def sent(criteria: str, pattern: str) -> bool:
        filters = FilterSet()
        filters.add(parse_filter(criteria, pattern))
        return filters.passes(event)

    assert sent("eventfilter(name(VarSet),header(Channel),method(exact))", "ABC")
    assert not sent("eventfilter(name(VarSet),header(Channel),method(exact))", "AB")
    assert sent("eventfilter(header(Channel),method(starts_with))", "AB")
    assert sent("eventfilter(header(Channel),method(ends_with))", "BC")
    assert sent("eventfilter(header(Variable:),method(contains))", "HOTLINE")
    assert sent("eventfilter(header(Event),method(exact))", "VarSet")  # the first line too
    assert not sent("eventfilter(header(Empty),method(none))", "")
    assert not sent("eventfilter(name(Newexten),method(none))", "")
    assert not sent("eventfilter(name(varset),method(none))", "")  # names are case sensitive
    assert not sent("eventfilter(name(VarSet),header(Channel),method(exact))", "!ABC")
    assert sent("eventfilter(action(include),header(Channel),method(exact))", "!ABC")
    assert sent("eventfilter", "^Event: VarSet[[:space:]]")
    assert not sent("eventfilter", "!Channel: ABC")


async def test_bad_match_criteria_refused_like_asterisk(responder_factory, pbx_for) -> None:
    """Filters Asterisk 22 refuses get its answers, and add nothing: the client still gets
    every event."""
    pbx = await pbx_for(responder_factory())
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="call")
    formatted = "Filter was formatted incorrectly.  Check the syntax of the filter given."
    compile_failed = "Filter did not compile.  Check the syntax of the filter given."
    refused = [
        ({"MatchCriteria": "name(VarSet)", "Filter": "HOTLINE"}, formatted),  # method none
        ({"MatchCriteria": "name(VarSet),method(regex)", "Filter": ""}, formatted),
        ({"MatchCriteria": "action(inlude),name(VarSet)", "Filter": ""}, formatted),
        ({"MatchCriteria": "nnnn(yyy)", "Filter": "XXX"}, formatted),
        ({"MatchCriteria": "name(VarSet),method(like)", "Filter": "X"}, formatted),
        ({"MatchCriteria": "action(include)", "Filter": ""}, formatted),  # no name nor header
        ({"MatchCriteria": "header()", "Filter": ""}, formatted),
        ({"Filter": ""}, formatted),  # a legacy filter needs its regex
        ({"Filter": "!"}, formatted),
        ({"MatchCriteria": "method(regex)", "Filter": "XX[X"}, compile_failed),
        ({"Filter": "XX[X"}, compile_failed),
        ({"Operation": "Remove", "Filter": "Event: Hangup"}, "Unknown operation"),
        ({"Operation": "", "Filter": "Event: Hangup"}, "Unknown operation"),  # no default
    ]
    for number, (fields, answer) in enumerate(refused, start=2):
        client.send(Action="Filter", ActionID=str(number), **{"Operation": "Add", **fields})
        assert await client.block() == (
            f"Response: Error\r\nActionID: {number}\r\nMessage: {answer}"), fields
    await pbx.place_call(CallScript("13800000000"))
    [events] = await _events_seen([client])
    assert {"Newchannel", "Newstate", "Hangup"} <= {e["Event"] for e in events}


async def test_redirect_during_wait_for_digit(responder_factory, pbx_for) -> None:
    """A Redirect of a caller waiting in WAIT FOR DIGIT answers -1 then HANGUP and moves the
    call."""
    responder = responder_factory(["WAIT FOR DIGIT 20000", "NOOP"])
    pbx = await pbx_for(responder)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="off")
    call = asyncio.create_task(pbx.place_call(CallScript("13900001111", "曹女士", keys=("hold",))))
    try:
        await asyncio.wait_for(responder.env_received.wait(), 5)
        channel = responder.sessions[0].env["agi_channel"]
        client.send(Action="CoreShowChannels", ActionID="3")
        listing = await client.until(lambda b: b.startswith("Event: CoreShowChannelsComplete"))
        assert (
            headers(listing[1])["Channel"] == channel and headers(listing[-1])["ListItems"] == "1"
        )
        client.send(
            Action="Redirect",
            ActionID="4",
            Channel=channel,
            Context="redirect-target",
            Exten="s",
            Priority="1",
        )
        assert (
            await client.block()
            == "Response: Success\r\nActionID: 4\r\nMessage: Redirect successful"
        )
        record = await asyncio.wait_for(call, 5)
    finally:
        call.cancel()
    session = await responder.session()
    assert session.replies == [["200 result=-1", "HANGUP"], ["200 result=0"]]
    assert record.destination == "redirect:redirect-target,s,1"
    await client.close()


async def test_other_actions_answer_like_asterisk(responder_factory, pbx_for) -> None:
    """Unknown channel, unknown action, unknown technology, Command, QueueStatus and Logoff use
    Asterisk's texts."""
    pbx = await pbx_for(responder_factory())
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="call")
    client.send(
        Action="Redirect",
        ActionID="5",
        Channel="No/Such-0001",
        Context="x",
        Exten="s",
        Priority="1",
    )
    assert (
        await client.block()
        == "Response: Error\r\nActionID: 5\r\nMessage: Channel does not exist: No/Such-0001"
    )
    client.send(Action="NoSuchAction", ActionID="6")
    assert await client.block() == (
        "Response: Error\r\nActionID: 6\r\nMessage: Invalid/unknown command: NoSuchAction. "
        "Use Action: ListCommands to show available commands."
    )
    client.send(
        Action="Originate",
        ActionID="7",
        Channel="Nonexistent/abc",
        Application="Wait",
        Data="1",
        Async="true",
    )
    assert (
        await client.block()
        == "Response: Success\r\nActionID: 7\r\nMessage: Originate successfully queued"
    )
    failure = headers(await client.block())
    assert (failure["Event"], failure["Response"], failure["Reason"], failure["Uniqueid"]) == (
        "OriginateResponse", "Failure", "0", "<unknown>")
    client.send(Action="Command", ActionID="8", Command="core show channels")
    assert header_names(await client.block()) == [
        "Response",
        "ActionID",
        "Message",
        "Output",
        "Output",
        "Output",
    ]
    client.send(Action="QueueStatus", ActionID="9")
    status = await client.until(lambda b: b.startswith("Event: QueueStatusComplete"))
    assert headers(status[-1])["ListItems"] == "0"
    client.send(Action="Logoff", ActionID="10")
    assert (
        await client.block()
        == "Response: Goodbye\r\nActionID: 10\r\nMessage: Thanks for all the fish."
    )
    assert await asyncio.wait_for(client.reader.read(), 5) == b""
    await client.close()


async def test_stalled_client_does_not_hold_calls(responder_factory, pbx_for) -> None:
    """A client that never reads loses events past its buffer while calls keep completing."""
    pbx = await pbx_for(responder_factory(), ami_buffer_limit=0)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="on")
    # Each event carries a ~6 MB caller name: the first one overflows the socket buffers.
    record = await pbx.place_call(CallScript("13800000000", "名" * 2_000_000))
    assert record.destination == "queue:hotline-agents" and pbx.dropped_events > 0
    await client.close()
