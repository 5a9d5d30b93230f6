"""Emergency hand-off to 110 / 119 / 120 / 122, with failover across the configured targets.

The hand-off runs inside the caller's FastAGI session (``EXEC Dial``) so that every attempt's
DIALSTATUS is seen at once and the next target is tried without a round trip through the
dialplan. Nothing else (ticket, HTTP, logging sinks) runs before the first Dial is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ivr.agi.errors import AgiHangup

from call_transfer import variables

# An answered emergency call keeps the Dial command running for the whole conversation; the
# bound only keeps a wedged channel from holding the session for ever.
_LONGEST_CALL_S = 4 * 3600.0

# Asterisk's Dial answers result=-1 once an answered call has ended (the caller's channel is
# then hung up), and result=0 after a failed attempt, with DIALSTATUS telling why.
_ANSWER = "ANSWER"


class DialTargetLike(Protocol):
    """One dial target of an emergency service, as the dialplan model gives it."""

    @property
    def dial(self) -> str: ...

    @property
    def timeout_s(self) -> int: ...


class AgiDialer(Protocol):
    """The part of an AGI session the hand-off needs."""

    async def exec(self, application: str, *args: str, timeout: float | None = None) -> object: ...

    async def get_variable(self, name: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class DialAttempt:
    """One dial of one target and how it ended."""

    target: str
    status: str  # DIALSTATUS: ANSWER, BUSY, NOANSWER, CONGESTION, CHANUNAVAIL, ...


@dataclass(frozen=True, slots=True)
class HandoffResult:
    """The outcome of an emergency hand-off."""

    service: str
    attempts: tuple[DialAttempt, ...]
    caller_gone: bool  # the caller hung up before any target answered

    @property
    def answered(self) -> bool:
        """Whether a target took the call."""
        return bool(self.attempts) and self.attempts[-1].status == _ANSWER

    @property
    def last_target(self) -> str:
        """The target that answered, or the last one tried."""
        return self.attempts[-1].target if self.attempts else ""

    @property
    def last_status(self) -> str:
        """DIALSTATUS of the last attempt."""
        return self.attempts[-1].status if self.attempts else ""


async def hand_off(
    session: AgiDialer, service: str, targets: tuple[DialTargetLike, ...]
) -> HandoffResult:
    """Dial ``targets`` in order until one answers; the caller's own number goes with the call.

    Asterisk's Dial keeps the caller's CallerID on the outgoing leg, so the emergency centre
    can call back. A hangup of the caller ends the hand-off (a normal outcome).
    """
    attempts: list[DialAttempt] = []
    for target in targets:
        try:
            reply = await session.exec(
                "Dial", target.dial, str(target.timeout_s), timeout=_LONGEST_CALL_S
            )
        except AgiHangup:
            # The caller left while the target rang: nobody answered.
            attempts.append(DialAttempt(target.dial, "CANCEL"))
            return HandoffResult(service, tuple(attempts), caller_gone=True)
        answered_and_ended = getattr(reply, "result", "") == "-1"
        try:
            status = await session.get_variable(variables.DIALSTATUS) or ""
        except AgiHangup:
            status = _ANSWER if answered_and_ended else "CANCEL"
            attempts.append(DialAttempt(target.dial, status))
            return HandoffResult(service, tuple(attempts), caller_gone=status != _ANSWER)
        attempts.append(DialAttempt(target.dial, status))
        if status == _ANSWER:
            return HandoffResult(service, tuple(attempts), caller_gone=False)
    return HandoffResult(service, tuple(attempts), caller_gone=False)
