"""After-call work end to end: the survey after an agent hangs up, and callbacks into
``hotline-callback``, through the real service and the simulated PBX over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from ivr.aftercall.callbacks import CallbackPolicy
from ivr.app import ABANDONS, LINKS, STORE
from ivr.config import CallbacksConfig
from ivr.dialplan import Dialplan
from ivr.simpbx import CallScript
from ivr.tickets.model import Disposition, Satisfaction, ticket_id_for
from ivr.tickets.store import CallbackResult

from .conftest import Hotline, running_hotline

AGENT = ("0",)  # 12345's root menu: 0 is an agent (queue general = hotline-agents)


def agent_call(*survey_keys: str) -> CallScript:
    """A 12345 call put through to an agent; ``survey_keys`` answer the survey."""
    return CallScript("13800138000", keys=AGENT, survey_keys=survey_keys)


@pytest.mark.parametrize(("survey_keys", "rating"), [
    (("1",), Satisfaction.SATISFIED),
    (("9", "2"), Satisfaction.BASICALLY_SATISFIED),  # a wrong key, then the second try
    (("-", "3"), Satisfaction.DISSATISFIED),  # silence, then the second try
])  # fmt: skip
async def test_survey_answer_is_written_to_the_ticket(
    hotline: Hotline, survey_keys: tuple[str, ...], rating: Satisfaction
) -> None:
    """The agent hangs up, the caller rates, the rating lands on the call's ticket."""
    record, ticket = await hotline.call(agent_call(*survey_keys))
    assert ticket is not None and ticket.disposition == Disposition.AGENT
    assert ticket.satisfaction == rating
    assert record.survey_status == "SUCCESS"
    assert record.survey_prompts[-1] == "hotline/zh/survey-thanks"


async def test_no_key_twice_leaves_the_ticket_unrated(hotline: Hotline) -> None:
    """Silence at both tries ends the survey normally, with no rating and no thanks."""
    record, ticket = await hotline.call(agent_call("-", "-"))
    assert ticket is not None and ticket.satisfaction == ""
    assert record.survey_status == "SUCCESS"
    assert record.survey_prompts == (
        "hotline/zh/survey",
        "hotline/zh/survey-invalid",
        "hotline/zh/survey",
    )


async def test_caller_who_hangs_up_after_the_agent_gets_no_survey(hotline: Hotline) -> None:
    """The caller ends the conversation: no survey session, the ticket stays unrated."""
    record, ticket = await hotline.call(agent_call())
    assert (record.destination, record.survey_status, record.survey_commands) == (
        "queue:hotline-agents", "", ())
    assert ticket is not None and ticket.satisfaction == ""
    assert all(not command.startswith("STREAM FILE survey") for command in record.commands)


@pytest.fixture
async def with_callbacks(tmp_path: Path, shipped_dialplan: Dialplan) -> AsyncIterator[Hotline]:
    """The service with a callback scheduler in office hours, beside the simulated PBX."""
    # A short pass interval: the test waits for the Originate, not for the clock.
    callbacks = CallbacksConfig(
        schedule="office-hours", policy=replace(CallbackPolicy(), poll_s=0.02)
    )
    async with running_hotline(tmp_path, shipped_dialplan, callbacks=callbacks) as running:
        yield running


async def test_abandoned_call_is_called_back_into_hotline_callback(with_callbacks: Hotline) -> None:
    """An IVR hang-up is called back once, in hours, into hotline-callback and the agent queue."""
    hotline, pbx = with_callbacks, with_callbacks.pbx
    first, ticket = await hotline.call(CallScript("13800138001", keys=("hangup",)))
    assert ticket is not None and ticket.disposition == Disposition.ABANDONED
    await asyncio.wait_for(pbx.wait_for_ami_action("Originate", 1), 5)
    # A second abandoned call: its Originate comes from a later pass of the scheduler, so the
    # first attempt's result is on record once it arrives.
    second, _ = await hotline.call(CallScript("13800138002", keys=("hangup",)))
    await asyncio.wait_for(pbx.wait_for_ami_action("Originate", 2), 5)
    originates = [a.headers for a in pbx.ami_actions if a.name == "originate"]
    assert [(o["channel"], o["context"], o["exten"]) for o in originates] == [
        ("PJSIP/13800138001@trunk", "hotline-callback", "s"),
        ("PJSIP/13800138002@trunk", "hotline-callback", "s")]
    callback = pbx.originated[0]
    assert (callback.queue, callback.prompts) == ("hotline-agents", ("hotline/zh/callback-intro",))
    assert callback.variables == {"HOTLINE_TICKET": ticket_id_for(first.linkedid),
                                  "HOTLINE_CALLBACK_REASON": "abandoned"}
    log = await hotline.app[STORE].callback_log(ticket_id_for(first.linkedid))
    assert [(entry.attempt, entry.result) for entry in log] == [(1, CallbackResult.ANSWERED)]
    assert pbx.ami_action_count("Originate") == 2  # the answered callback is not placed again
    assert second.linkedid != first.linkedid


async def test_a_caller_abandoning_the_queue_is_owed_a_callback(hotline: Hotline) -> None:
    """A caller who hangs up waiting for an agent gets their ticket marked for a call back."""
    link = hotline.app[LINKS][0]
    hung_up = asyncio.Event()
    link.subscribe("QueueCallerAbandon", lambda event: hung_up.set())
    ended = asyncio.Event()
    link.subscribe("Hangup", lambda event: ended.set())
    record, _ticket = await hotline.call(
        CallScript(caller_number="13900001111", keys=("1",), queue_outcome="abandoned")
    )
    assert record.destination.startswith("abandoned-in-queue")
    await asyncio.wait_for(hung_up.wait(), 5)
    await asyncio.wait_for(ended.wait(), 5)
    await hotline.app[ABANDONS].drain()
    due = await hotline.app[STORE].callbacks_due(10)
    assert [(item.ticket.ticket_id, str(item.reason)) for item in due] == [
        (f"T-{record.linkedid}", "abandoned")
    ]
