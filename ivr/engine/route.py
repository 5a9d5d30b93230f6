"""Where a call goes when the IVR is done with it: the engine's output, the ticket's input."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ivr._frozen import fast_init


class RequestKind(enum.StrEnum):
    """The five kinds of citizen request a 12345 ticket can be."""

    CONSULT = "consult"  # 咨询
    HELP = "help"  # 求助
    COMPLAINT = "complaint"  # 投诉
    REPORT = "report"  # 举报
    SUGGESTION = "suggestion"  # 建议


class Urgency(enum.StrEnum):
    """How fast the work-order system must respond; drives the SLA due time."""

    URGENT = "urgent"
    NORMAL = "normal"


class RouteKind(enum.StrEnum):
    """What the service tells Asterisk to do with the caller."""

    QUEUE = "queue"  # an agent queue of the 12345 centre
    EMERGENCY = "emergency"  # hand-off to 110 / 119 / 120 / 122
    DEPARTMENT = "department"  # transfer to an agency's queue or number
    INFO = "info"  # information played, caller self-served
    MESSAGE = "message"  # caller leaves a voice message
    CALLBACK = "callback"  # caller asks to be called back
    HANGUP = "hangup"  # the menu ends the call


class RouteReason(enum.StrEnum):
    """Why the engine chose the route: the caller's choice or a fallback."""

    SELECTED = "selected"
    TIMEOUT = "timeout"  # no key pressed, retries used up
    INVALID = "invalid"  # wrong keys, retries used up
    CLOSED = "closed"  # outside business hours


@fast_init
@dataclass(frozen=True, slots=True)
class Route:
    """The engine's decision for one call.

    ``target`` names a configured object: a queue id for QUEUE/MESSAGE/CALLBACK, an
    emergency service id ("police", "fire", "ambulance", "traffic") for EMERGENCY, a
    department id for DEPARTMENT, a prompt id for INFO, "" for HANGUP.
    """

    kind: RouteKind
    target: str
    request_kind: RequestKind
    urgency: Urgency
    reason: RouteReason = RouteReason.SELECTED
