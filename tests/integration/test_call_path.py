"""A citizen's call end to end: PBX -> FastAGI -> IVR -> route -> ticket, over real sockets."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

from ivr.ami import AmiMessage, CallEnd, CallTracker
from ivr.app import LINKS, STORE
from ivr.dialplan import Dialplan
from ivr.simpbx import CallScript
from ivr.tickets.model import Disposition, ticket_id_for

from .conftest import Hotline, running_hotline


async def test_12345_consult_reaches_the_agent_queue_with_a_ticket(hotline: Hotline) -> None:
    """Key 1 on 12345 sends the caller to the general agent queue and writes a consult ticket."""
    record, ticket = await hotline.call(
        CallScript(caller_number="13900001111", caller_name="曹女士", keys=("1",))
    )
    assert record.destination == "queue:hotline-agents" and not record.fallback
    assert record.variables["HOTLINE_ROUTE"] == "queue"
    assert record.variables["HOTLINE_TICKET"] == f"T-{record.linkedid}"
    assert ticket is not None
    assert (ticket.dialled_line, ticket.request_kind, ticket.disposition) == (
        "12345", "consult", Disposition.AGENT,
    )
    assert (ticket.caller_number, ticket.caller_name) == ("13900001111", "曹女士")
    assert ticket.ivr_path == ("root", "root:1")


async def test_96119_dialled_fire_now_hands_off_to_119(hotline: Hotline) -> None:
    """On 96119, key 1 (fire now) dials the first 119 route and tickets the hand-off."""
    record, ticket = await hotline.call(
        CallScript(caller_number="13700003333", dialled="96119", keys=("1",))
    )
    assert record.dial_attempts == (("Local/119@emergency-routes", "ANSWER"),)
    assert ticket is not None
    assert ticket.dialled_line == "96119" and ticket.source_label.startswith("96119")
    assert ticket.disposition is Disposition.EMERGENCY
    assert (ticket.emergency_service, ticket.emergency_result) == ("fire", "ANSWER")
    assert ticket.urgency == "urgent"


async def test_96119_forwarded_by_the_carrier_is_recognised(hotline: Hotline) -> None:
    """A call forwarded from 96119 to 12345 runs the 96119 menu: key 2 files a fire-safety
    report."""
    record, ticket = await hotline.call(
        CallScript(
            caller_number="13600002222", dialled="12345", forwarded_from="96119", keys=("2",)
        )
    )
    assert record.destination == "queue:hotline-fire-safety"
    assert ticket is not None
    assert (ticket.dialled_line, ticket.request_kind) == ("96119", "report")


async def test_12312_commerce_complaint(hotline: Hotline) -> None:
    """12312 is its own line: its menu sends a complaint to the commerce queue."""
    record, ticket = await hotline.call(
        CallScript(caller_number="13500005555", dialled="12312", keys=("1",))
    )
    assert record.destination == "queue:hotline-commerce"
    assert ticket is not None
    assert (ticket.dialled_line, ticket.request_kind) == ("12312", "complaint")


async def test_emergency_fails_over_to_the_second_route(hotline: Hotline) -> None:
    """A busy first 119 route moves the hand-off to the second one; the ticket says which."""
    record, ticket = await hotline.call(
        CallScript(caller_number="13800008888", keys=("9", "2"),
                   dial_outcomes={"Local/119@emergency-routes": "BUSY"})
    )
    assert record.dial_attempts == (
        ("Local/119@emergency-routes", "BUSY"), ("PJSIP/119@emergency-trunk-b", "ANSWER"),
    )
    assert ticket is not None and ticket.emergency_target == "PJSIP/119@emergency-trunk-b"
    assert hotline.metric("hotline_emergency_handoffs_total", service="fire",
                          result="failed_over") == 1


async def test_every_emergency_route_failing_reaches_the_supervisor(hotline: Hotline) -> None:
    """When no 110 route answers, the caller hears the fallback and goes to the supervisor queue."""
    record, ticket = await hotline.call(
        CallScript(caller_number="13800008888", keys=("9", "1"),
                   dial_outcomes={"Local/110@emergency-routes": "CONGESTION",
                                  "PJSIP/110@emergency-trunk-b": "CHANUNAVAIL"})
    )
    assert [status for _, status in record.dial_attempts] == ["CONGESTION", "CHANUNAVAIL"]
    assert "hotline/zh/emergency-failed" in record.prompts
    assert record.destination == "queue:hotline-supervisor"
    assert ticket is not None and ticket.emergency_result == "CHANUNAVAIL"
    assert hotline.metric("hotline_emergency_handoffs_total", service="police",
                          result="all_failed") == 1


async def test_a_silent_caller_reaches_a_human(hotline: Hotline) -> None:
    """Pressing nothing re-asks, then hands the caller to the default queue: never silence."""
    record, ticket = await hotline.call(CallScript(caller_number="13300004444"))
    assert record.destination == "queue:hotline-agents" and not record.fallback
    assert record.prompts.count("hotline/zh/timeout") == 2
    assert ticket is not None and ticket.extra["route_reason"] == "timeout"
    assert hotline.metric("hotline_ivr_timeouts_total", menu="root") == 3


async def test_wrong_keys_reach_a_human(hotline: Hotline) -> None:
    """Wrong keys re-ask with the invalid-key prompt, then hand the caller to an agent."""
    record, ticket = await hotline.call(
        CallScript(caller_number="13300004444", keys=("7", "5", "7"))
    )
    assert record.destination == "queue:hotline-agents"
    assert record.prompts.count("hotline/zh/invalid") == 2
    assert ticket is not None and ticket.extra["route_reason"] == "invalid"


async def test_key_8_speaks_english_and_tickets_it(hotline: Hotline) -> None:
    """Key 8 on 12345 replays the welcome in English, and the ticket records the language."""
    record, ticket = await hotline.call(CallScript(caller_number="13300005555", keys=("8", "1")))
    assert record.prompts[:2] == ("hotline/zh/welcome-12345", "hotline/en/welcome-12345")
    assert "hotline/en/transferring" in record.prompts
    assert not any(prompt.startswith("hotline/zh/") for prompt in record.prompts[1:])
    assert record.destination == "queue:hotline-agents"
    assert ticket is not None
    assert ticket.language == "en"
    assert ticket.ivr_path == ("root", "root:8", "root:1")


async def test_a_hangup_mid_menu_still_makes_a_ticket(hotline: Hotline) -> None:
    """A caller who hangs up in a submenu leaves an abandoned-in-IVR ticket with the path so far."""
    record, ticket = await hotline.call(
        CallScript(caller_number="13200007777", keys=("2", "hangup"))
    )
    assert record.destination == "abandoned-in-ivr"
    assert ticket is not None
    assert ticket.disposition is Disposition.ABANDONED
    assert ticket.ivr_path == ("root", "root:2", "complaint")
    assert ticket.route_kind == ""


async def test_service_down_falls_back_to_the_default_queue(hotline: Hotline) -> None:
    """With the FastAGI server gone, the dialplan (AGISTATUS FAILURE) still reaches an agent."""
    await hotline.runner.cleanup()
    record = await hotline.pbx.place_call(CallScript(caller_number="13100009999", keys=("1",)))
    assert record.agi_status == "FAILURE"
    assert record.fallback and record.destination == "queue:hotline-agents"


async def test_metrics_and_health_after_calls(hotline: Hotline) -> None:
    """/metrics counts calls by line and outcome; /healthz names the dialplan; /readyz is ready."""
    await hotline.call(CallScript(caller_number="13900001111", keys=("1",)))
    await hotline.call(CallScript(caller_number="13900001111", dialled="12312", keys=("1",)))
    status, body = await hotline.http_get("/metrics")
    assert status == 200
    assert 'hotline_calls_total{line="12345",outcome="agent"} 1.0' in body
    assert 'hotline_calls_total{line="12312",outcome="agent"} 1.0' in body
    assert 'hotline_tickets_total{backend="sqlite",result="created"} 2.0' in body
    assert 'hotline_ami_connected{node="sim"} 1.0' in body
    status, body = await hotline.http_get("/healthz")
    assert status == 200 and json.loads(body)["dialplan"]["version"]
    status, body = await hotline.http_get("/readyz")
    assert status == 200 and json.loads(body)["checks"] == {
        "fastagi": True, "ami": True, "tickets": True,
    }


async def test_calls_run_concurrently_each_with_its_own_ticket(hotline: Hotline) -> None:
    """Fifty calls at once each get their route and exactly one ticket."""
    scripts = [CallScript(caller_number=f"1390000{n:04d}", keys=("1",)) for n in range(50)]
    records = await asyncio.gather(*(hotline.pbx.place_call(s) for s in scripts))
    store = hotline.app[STORE]
    await store.flush()
    assert len({r.linkedid for r in records}) == 50
    assert all(r.destination == "queue:hotline-agents" for r in records)
    assert await store.count() == 50
    tickets = [await store.get(ticket_id_for(r.linkedid)) for r in records]
    assert {t.caller_number for t in tickets if t is not None} == {s.caller_number for s in scripts}


async def test_hostile_caller_data_is_cleaned_before_the_ticket(hotline: Hotline) -> None:
    """Quotes, |, ${...} and bidi controls in a caller name never reach the ticket."""
    record, ticket = await hotline.call(
        CallScript(caller_number="139-0000-1111", caller_name='曹"|${EXTEN}\u202e女士', keys=("1",))
    )
    assert record.destination == "queue:hotline-agents"
    assert ticket is not None
    assert (ticket.caller_number, ticket.caller_name) == ("13900001111", "曹EXTEN女士")


async def test_the_route_is_set_by_one_mset_route_last(hotline: Hotline) -> None:
    """The three route variables go in one EXEC MSet, HOTLINE_ROUTE last, each with its VarSet."""
    seen: list[tuple[str, str]] = []
    route_seen = asyncio.Event()

    def on_varset(event: AmiMessage) -> None:
        variable = event.get("Variable")
        if variable.startswith("HOTLINE_") and variable != "HOTLINE_MENU":
            seen.append((variable, event.get("Value")))
            if variable == "HOTLINE_ROUTE":
                route_seen.set()

    hotline.app[LINKS][0].subscribe("VarSet", on_varset)
    record, _ = await hotline.call(CallScript(caller_number="13900001111", keys=("1",)))
    ticket = f"T-{record.linkedid}"
    route_commands = [c for c in record.commands if "HOTLINE_ROUTE" in c]
    assert route_commands == [
        f'EXEC MSet "HOTLINE_TICKET={ticket},HOTLINE_TARGET=hotline-agents,HOTLINE_ROUTE=queue"'
    ]
    await asyncio.wait_for(route_seen.wait(), 5.0)
    assert seen == [
        ("HOTLINE_TICKET", ticket),
        ("HOTLINE_TARGET", "hotline-agents"),
        ("HOTLINE_ROUTE", "queue"),
    ]
    assert record.destination == "queue:hotline-agents"


async def test_a_value_mset_would_split_goes_by_set_variable(
    tmp_path: Path, shipped_dialplan: Dialplan
) -> None:
    """A queue name with a comma is set verbatim by SET VARIABLEs, HOTLINE_ROUTE last."""
    queues = dict(shipped_dialplan.queues)
    queues["general"] = replace(queues["general"], asterisk_queue="hotline-agents,r")
    plan = replace(shipped_dialplan, queues=queues)
    async with running_hotline(tmp_path, plan) as running:
        record, _ = await running.call(CallScript(caller_number="13900001111", keys=("1",)))
    assert [c for c in record.commands if "HOTLINE_" in c and "MENU" not in c] == [
        f'SET VARIABLE HOTLINE_TICKET "T-{record.linkedid}"',
        'SET VARIABLE HOTLINE_TARGET "hotline-agents,r"',
        'SET VARIABLE HOTLINE_ROUTE "queue"',
    ]
    assert record.variables["HOTLINE_TARGET"] == "hotline-agents,r"


async def test_a_menu_call_is_tracked_from_the_filtered_events(hotline: Hotline) -> None:
    """With the service's AMI filters (send_filter), a two-level menu call (12345, keys 2 then
    1) is tracked with its HOTLINE variables to the queue, from a stream without the
    dialplan's own VarSets (AGISTATUS) and without the Newexten of its bookkeeping steps."""
    received: list[AmiMessage] = []
    ends: list[CallEnd] = []
    ended = asyncio.Event()
    tracker = CallTracker("sim")  # fed exactly what the service's own tracker is fed

    def on_event(event: AmiMessage) -> None:
        received.append(event)
        end = tracker.apply(event)
        if end is not None:
            ends.append(end)
            ended.set()

    hotline.app[LINKS][0].subscribe("*", on_event)
    record, ticket = await hotline.call(CallScript(caller_number="13900002222", keys=("2", "1")))
    await asyncio.wait_for(ended.wait(), 5.0)
    assert record.destination.startswith("queue:") and ticket is not None
    [end] = ends
    assert (end.linkedid, end.dialled, end.route, end.ticket) == (
        record.linkedid, "12345", "queue", f"T-{record.linkedid}")
    assert (end.target, end.queue, end.queue_result) == (
        record.variables["HOTLINE_TARGET"], record.destination.removeprefix("queue:"), "left")
    variables = [e.get("Variable") for e in received if e.event == "VarSet"]
    assert "AGISTATUS" not in variables
    assert {"__HOTLINE_DIALED", "HOTLINE_TICKET", "HOTLINE_TARGET", "HOTLINE_ROUTE"} <= set(
        variables)
    applications = [e.get("Application") for e in received if e.event == "Newexten"]
    assert applications == ["AGI", "Queue"]
    assert hotline.metric(
        "hotline_queue_calls_total", queue=end.queue, result="answered") == 1.0
