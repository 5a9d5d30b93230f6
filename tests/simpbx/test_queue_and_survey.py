"""Agent queues, the post-call survey, callbacks and the native fallback of the simulated PBX."""

from __future__ import annotations

import asyncio

from ivr.simpbx import CallScript

from .conftest import AmiClient, header_names, headers

TICKET = "T-1795382136.1"
ROUTE = ['SET VARIABLE HOTLINE_ROUTE "queue"', 'SET VARIABLE HOTLINE_TARGET "hotline-agents"',
         f'SET VARIABLE HOTLINE_TICKET "{TICKET}"']
SURVEY = ['STREAM FILE survey "123"', "WAIT FOR DIGIT 5000"]
SNAPSHOT = ["Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
            "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten",
            "Priority", "Uniqueid", "Linkedid"]
AGENT_EVENTS = ("QueueCallerJoin", "AgentCalled", "QueueCallerLeave", "AgentConnect",
                "AgentComplete", "QueueCallerAbandon")


def _by_script(env: dict[str, str]) -> list[str]:
    """The IVR session routes to the queue; the survey session asks once."""
    return SURVEY if env["agi_network_script"] == "survey" else ROUTE


async def _agent_events(client: AmiClient) -> list[str]:
    blocks = await client.until(
        lambda b: b.startswith("Event: Hangup\r\n") and "agent-1001" not in b
    )
    return [b for b in blocks if headers(b)["Event"] in AGENT_EVENTS]


async def test_answered_call_emits_agent_events_in_asterisk_order(
    responder_factory, pbx_for
) -> None:
    """Join, AgentCalled, Leave, AgentConnect, AgentComplete; AgentConnect as app_queue packs it."""
    pbx = await pbx_for(responder_factory(ROUTE))
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="agent,call")
    record = await pbx.place_call(CallScript("13600004444", "李四", queue_wait_s=12, talk_s=95))
    events = await _agent_events(client)
    assert [headers(b)["Event"] for b in events] == list(AGENT_EVENTS[:5])
    connect = events[3]
    assert header_names(connect) == [
        "Event",
        "Privilege",
        *SNAPSHOT,
        *(f"Dest{h}" for h in SNAPSHOT),
        "Queue",
        "Interface",
        "MemberName",
        "HoldTime",
        "RingTime",
    ]
    fields = headers(connect)
    assert (fields["Uniqueid"], fields["Linkedid"], fields["DestLinkedid"]) == (
        record.uniqueid, record.linkedid, record.linkedid)
    assert (fields["Queue"], fields["Interface"], fields["MemberName"], fields["HoldTime"],
            fields["RingTime"]) == ("hotline-agents", "PJSIP/agent-1001", "agent-1001", "12", "3")
    complete = headers(events[4])
    assert (complete["HoldTime"], complete["TalkTime"], complete["Reason"]) == (
        "12",
        "95",
        "caller",
    )
    assert header_names(events[4])[-6:] == [
        "Queue",
        "Interface",
        "MemberName",
        "HoldTime",
        "TalkTime",
        "Reason",
    ]
    await client.close()


async def test_abandoned_call_reports_its_hold_time(responder_factory, pbx_for) -> None:
    """A caller who gives up: QueueCallerAbandon with HoldTime, then QueueCallerLeave; no agent."""
    pbx = await pbx_for(responder_factory(ROUTE))
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="agent,call")
    record = await pbx.place_call(
        CallScript("13600004444", queue_outcome="abandoned", queue_wait_s=41)
    )
    events = await _agent_events(client)
    assert [headers(b)["Event"] for b in events] == ["QueueCallerJoin", "QueueCallerAbandon",
                                                     "QueueCallerLeave"]
    assert (
        headers(events[1])["HoldTime"] == "41" and headers(events[1])["Uniqueid"] == record.uniqueid
    )
    assert (record.destination, record.survey_status) == ("abandoned-in-queue:hotline-agents", "")
    await client.close()


async def test_agent_hangs_up_and_the_caller_rates(responder_factory, pbx_for) -> None:
    """With survey keys the agent ends the call and a survey session gets the ticket and the
    keys."""
    responder = responder_factory(_by_script)
    pbx = await pbx_for(responder)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="agent,call")
    record = await pbx.place_call(CallScript("13600004444", survey_keys=("2",)))
    assert headers((await _agent_events(client))[-1])["Reason"] == "agent"
    survey = await responder.session(1)
    assert (survey.env["agi_network_script"], survey.env["agi_arg_1"]) == ("survey", TICKET)
    assert survey.env["agi_request"].endswith("/survey")
    assert (survey.env["agi_context"], survey.env["agi_extension"]) == ("hotline-route", "queue")
    assert survey.replies == [["200 result=50 endpos=8000"], ["200 result=0"]]
    assert (record.destination, record.survey_status) == ("queue:hotline-agents", "SUCCESS")
    assert record.survey_commands == tuple(SURVEY) and record.survey_prompts == ("survey",)
    assert record.commands == tuple(ROUTE) and record.variables["QUEUESTATUS"] == "CONTINUE"
    await client.close()


async def test_caller_who_hangs_up_first_gets_no_survey(responder_factory, pbx_for) -> None:
    """Without survey keys the caller ends the conversation: one AGI session only."""
    responder = responder_factory(_by_script)
    pbx = await pbx_for(responder)
    record = await pbx.place_call(CallScript("13600004444"))
    await responder.session(0)
    assert len(responder.sessions) == 1
    assert (record.survey_status, record.survey_commands, record.destination) == (
        "", (), "queue:hotline-agents")


async def test_caller_hangs_up_during_the_survey(responder_factory, pbx_for) -> None:
    """A hangup at the survey's question ends its session with HANGUP, as for the IVR."""
    responder = responder_factory(_by_script)
    pbx = await pbx_for(responder)
    record = await pbx.place_call(CallScript("13600004444", survey_keys=("hangup",)))
    survey = await responder.session(1)
    assert survey.replies[0] == ["200 result=-1 endpos=8000", "HANGUP"]
    assert record.survey_status == "HANGUP"


async def test_fallback_queue_has_no_survey(responder_factory, pbx_for) -> None:
    """Only the queue route continues to the survey: the safety-net queue hangs up with the
    agent."""
    responder = responder_factory([])
    pbx = await pbx_for(responder)
    record = await pbx.place_call(CallScript("13600004444", survey_keys=("1",)))
    await responder.session(0)
    assert (record.destination, record.fallback, record.survey_status) == (
        "queue:hotline-agents", True, "")
    assert len(responder.sessions) == 1


async def test_originate_into_hotline_callback_queues_the_callee(
    responder_factory, pbx_for
) -> None:
    """An answered callback hears the greeting and waits in the default queue, variables kept."""
    pbx = await pbx_for(responder_factory())
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="call")
    client.send(Action="Originate", ActionID="2", Channel="PJSIP/13800138000@trunk",
                Context="hotline-callback", Exten="s", Priority="1", CallerID="12345",
                Variable=f"HOTLINE_TICKET={TICKET},HOTLINE_CALLBACK_REASON=abandoned", Async="true")
    assert (await client.block()).endswith("Message: Originate successfully queued")
    assert headers(await client.block())["Response"] == "Success"
    client.send(Action="Originate", ActionID="3", Channel="PJSIP/1@trunk", Application="Wait",
                Data="1", Async="true")
    await client.block()
    callback, other = pbx.originated
    assert (callback.queue, callback.prompts) == ("hotline-agents", ("hotline/zh/callback-intro",))
    assert dict(callback.variables) == {
        "HOTLINE_TICKET": TICKET,
        "HOTLINE_CALLBACK_REASON": "abandoned",
    }
    assert (other.queue, other.prompts) == ("", ())
    await client.close()


async def test_native_fallback_reads_one_key_into_hotline_key(pbx_for) -> None:
    """The unreachable-service fallback reads HOTLINE_KEY key by key, each Read with its prompt."""
    paths = {"91": ("Local/110@emergency-routes",)}
    prompts = {"": "hotline/zh/fallback-emergency", "9": "hotline/zh/emergency-menu"}
    pbx = await pbx_for(agi_port=1, agi_connect_timeout=1, native_emergency=paths,
                        native_prompts=prompts)
    client = await AmiClient.connect(pbx.ami_port)
    await client.login(events="dialplan")
    record = await pbx.place_call(CallScript("13800138000", keys=("9", "1")))
    assert record.prompts == ("hotline/zh/fallback-emergency", "hotline/zh/emergency-menu")
    assert record.destination == "dial:Local/110@emergency-routes"
    blocks = await client.until(lambda b: "Application: Dial" in b)
    reads = [headers(b)["AppData"] for b in blocks if "Application: Read" in b]
    assert reads == ["HOTLINE_KEY,hotline/zh/fallback-emergency,1,,1,4",
                     "HOTLINE_KEY,hotline/zh/emergency-menu,1,,1,4"]
    keys = [headers(b)["Value"] for b in blocks if "Variable: HOTLINE_KEY\r\n" in b]
    assert keys == ["9", "1"]
    await client.close()


async def test_server_gone_while_the_caller_holds(pbx_for) -> None:
    """A FastAGI server that closes mid-WAIT ends the hold: the caller reaches the safety net."""
    asked = asyncio.Event()

    async def ask_then_die(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\n", b""):
            pass
        writer.write(b"WAIT FOR DIGIT 5000\n")
        await writer.drain()
        asked.set()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(ask_then_die, "127.0.0.1", 0)
    try:
        pbx = await pbx_for(agi_port=server.sockets[0].getsockname()[1])
        record = await asyncio.wait_for(
            pbx.place_call(CallScript("13800138000", keys=("hold",))), 5
        )
    finally:
        server.close()
        await server.wait_closed()
    assert asked.is_set()
    assert (record.destination, record.fallback) == ("queue:hotline-agents", True)
