"""Emergency hand-off to 110 / 119 / 120 / 122, with failover across the configured targets.

The hand-off runs inside the caller's FastAGI session (``EXEC Dial``) so that every attempt's
DIALSTATUS is seen at once and the next target is tried without a round trip through the
dialplan. Nothing else (ticket, HTTP, logging sinks) runs before the first Dial is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from call_transfer._failover import (
    AgiDialer,
    DialAttempt,
    DialTargetLike,
    OutcomeMixin,
    dial_in_order,
    predial_option,
)

__all__ = ["AgiDialer", "DialAttempt", "DialTargetLike", "HandoffResult", "hand_off"]


@dataclass(frozen=True, slots=True)
class HandoffResult(OutcomeMixin):
    """The outcome of an emergency hand-off (``answered``, ``last_target``, ``last_status``)."""

    service: str
    attempts: tuple[DialAttempt, ...]
    caller_gone: bool  # the caller hung up before any target answered


async def hand_off(
    session: AgiDialer,
    service: str,
    targets: Sequence[DialTargetLike],
    *,
    line: str = "",
    path: Sequence[str] = (),
) -> HandoffResult:
    """Dial ``targets`` in order until one answers; the caller's own number goes with the call.

    Asterisk's Dial keeps the caller's CallerID on the outgoing leg, so the emergency centre
    can call back. With ``line``, the line and the menu ``path`` travel with each attempt
    through Dial's pre-dial Gosub (``b()``), which the generated dialplan turns into channel
    variables and SIP headers. A hangup of the caller ends the hand-off (a normal outcome).
    """
    options = predial_option(line, path) if line else ""
    sequence = await dial_in_order(session, targets, options=options)
    return HandoffResult(service, sequence.attempts, sequence.caller_gone)
