"""A ticket (工单): the one record every call leaves in the work-order system."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from ivr._frozen import fast_init


class Disposition(enum.StrEnum):
    """How the call left the IVR."""

    AGENT = "agent"  # sent to an agent queue (or a department)
    EMERGENCY = "emergency_handoff"  # handed to 110 / 119 / 120 / 122
    ABANDONED = "abandoned_in_ivr"  # caller hung up before a route was chosen
    SELF_SERVED = "self_served"  # information played, nothing more needed
    CALLBACK = "callback_requested"
    MESSAGE = "message_left"
    SERVICE_ERROR = "service_error"  # our fault; the dialplan fallback took the caller
    # Provisional: written when the call starts, replaced by the call's final ticket. Never
    # delivered nor called back; left by a dead process, it becomes SERVICE_ERROR on restart.
    IN_PROGRESS = "in_progress"


@fast_init
@dataclass(frozen=True, slots=True)
class Ticket:
    """Everything the hotline records about one call.

    ``linkedid`` is Asterisk's id of the whole call and the idempotency key: a second
    ticket for the same Linkedid is the same ticket. ``ticket_id`` is derived from it.
    Timestamps are timezone-aware.
    """

    ticket_id: str
    linkedid: str
    uniqueid: str
    caller_number: str
    caller_name: str
    dialled_line: str  # the number the citizen dialled: 12345 or a legacy line
    source_label: str  # e.g. "96119 消防隐患举报"
    ivr_path: tuple[str, ...]  # e.g. ("root", "root:2", "complaint", "complaint:1")
    request_kind: str  # a RequestKind value
    urgency: str  # an Urgency value
    sla_due: datetime | None
    route_kind: str  # a RouteKind value, "" if no route was chosen
    route_target: str
    disposition: Disposition
    started_at: datetime
    ended_at: datetime
    emergency_service: str = ""  # "fire", ... when an emergency hand-off happened
    emergency_target: str = ""  # the dial string that answered, or the last one tried
    emergency_result: str = ""  # DIALSTATUS of the last attempt: ANSWER, BUSY, ...
    recording: str = ""  # reference to a recording or message, if any
    node: str = ""  # the PBX node the call came from
    language: str = "zh"
    extra: dict[str, str] = field(default_factory=dict)
    satisfaction: str = ""  # post-call survey: a Satisfaction value, "" if not answered


class Satisfaction(enum.StrEnum):
    """The caller's answer to the post-call survey (key 1, 2 or 3)."""

    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"


def ticket_id_for(linkedid: str) -> str:
    """The ticket id for a call: stable, so a retried write can never make a second ticket."""
    return "T-" + linkedid
