"""Department transfer (按责转办): a department's dial targets in order, from inside the AGI.

The same failover as the emergency hand-off: each target's DIALSTATUS is seen at once and
the next one tried; the result is what the ticket records. When no target answers, the
caller is still on the line and the call flow sends them on (the default queue).
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

__all__ = ["TransferResult", "transfer"]


@dataclass(frozen=True, slots=True)
class TransferResult(OutcomeMixin):
    """The outcome of a department transfer (``answered``, ``last_target``, ``last_status``)."""

    attempts: tuple[DialAttempt, ...]
    caller_gone: bool  # the caller hung up before any target answered


async def transfer(
    session: AgiDialer,
    targets: Sequence[DialTargetLike],
    *,
    line: str = "",
    path: Sequence[str] = (),
) -> TransferResult:
    """Dial a department's ``targets`` in order until one answers.

    ``targets`` are objects with ``.dial`` and ``.timeout_s`` (the dialplan model's
    ``DialTarget``). With ``line``, the line and menu ``path`` go along as for an emergency.
    """
    options = predial_option(line, path) if line else ""
    sequence = await dial_in_order(session, targets, options=options)
    return TransferResult(sequence.attempts, sequence.caller_gone)
